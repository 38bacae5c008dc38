"""PoseNet: two images -> 6-DoF relative pose (docs/method.md, Networks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.resnet_encoder import ResnetEncoder

__all__ = ["PoseDecoder", "PoseNet"]

# Pose and rotation networks always use ResNet-18, whatever --resnet_layers says.
POSE_RESNET_LAYERS = 18

# Scales the raw pose output. A freshly initialised network outputs values of order 0.1–1;
# read as metres and radians, that would make the first warps fall far outside the image.
# Scaling by 0.01 keeps the initial motion small, so the warps start near the identity and
# the photometric loss gives useful gradients from the first step (training is stable).
POSE_SCALE = 0.01


class PoseDecoder(nn.Module):
    """Regresses ``n_out`` numbers from the last encoder feature (global average of a conv map).

    Args:
        num_ch_enc: encoder channels (only the last is used).
        n_out: number of outputs (6 for a pose, 3 for ARN's rotation).
    """

    def __init__(self, num_ch_enc: np.ndarray | list[int], n_out: int = 6) -> None:
        super().__init__()
        self.n_out = n_out
        self.conv_squeeze = nn.Conv2d(int(num_ch_enc[-1]), 256, 1)
        self.convs_pose = nn.ModuleList([
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.Conv2d(256, n_out, 1),
        ])
        self.relu = nn.ReLU()

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: encoder features (last ``[B,C,h,w]``) -> ``[B,n_out]`` (unscaled)."""
        out = self.relu(self.conv_squeeze(features[-1]))
        for i, conv in enumerate(self.convs_pose):
            out = conv(out)
            if i < len(self.convs_pose) - 1:
                out = self.relu(out)
        # Averaged in fp32: a bf16 mean of many small values loses the motion's low bits.
        return out.float().mean(dim=(2, 3))


class PoseNet(nn.Module):
    """``PoseNet(tgt, ref)`` -> pose vector ``[B,6]`` = ``tx,ty,tz,rx,ry,rz`` of ``ref_T_tgt``.

    Args:
        pretrained: start the encoder from torchvision's ImageNet ResNet-18 (offline).
        weights_path: file with those weights (``--encoder_weights``); None: torch hub cache.
    """

    def __init__(self, pretrained: bool = False, weights_path: str | Path | None = None) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(POSE_RESNET_LAYERS, 2, pretrained, weights_path)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc, 6)

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        """img1 (target), img2 (reference): ``[B,3,H,W]`` normalised -> pose ``[B,6]``."""
        x = torch.cat([img1, img2], 1)
        return POSE_SCALE * self.decoder(self.encoder(x))
