"""RectifyNet (ARN, SC-Depth V2): two images -> the rotation between them
(docs/method.md, Networks)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.pose_net import POSE_RESNET_LAYERS, PoseDecoder
from models.resnet_encoder import ResnetEncoder

__all__ = ["RectifyNet"]


class RectifyNet(nn.Module):
    """``RectifyNet(img1, img2)`` -> euler angles ``[B,3]`` (``rx, ry, rz``).

    Same encoder and decoder as PoseNet, run at half resolution (rotation is a global,
    low-frequency cue) and without PoseNet's 0.01 output scale.

    Args:
        pretrained: start the encoder from torchvision's ImageNet ResNet-18 (offline).
        weights_path: file with those weights (``--encoder_weights``); None: torch hub cache.
    """

    def __init__(self, pretrained: bool = False, weights_path: str | Path | None = None) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(POSE_RESNET_LAYERS, 2, pretrained, weights_path)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc, 3)

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        """img1, img2: ``[B,3,H,W]`` normalised -> rotation ``[B,3]``."""
        x = torch.cat([img1, img2], 1)
        H, W = x.shape[-2:]
        x = F.interpolate(x, size=(H // 2, W // 2), mode="bilinear", align_corners=True)
        return self.decoder(self.encoder(x))
