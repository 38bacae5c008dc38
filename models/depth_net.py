"""DepthNet: ResNet encoder + U-Net decoder, one image -> depth (SPEC §1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.resnet_encoder import ResnetEncoder

__all__ = ["Conv3x3", "ConvBlock", "DepthDecoder", "DepthNet"]

# Disparity range of the output head: disp in (MIN_DISP, MIN_DISP + DISP_SCALE), so depth
# lies in (1/10.01, 100).
DISP_SCALE = 10.0
MIN_DISP = 0.01
# Smallest image side for which the stride-32 feature is 2 pixels wide, the least that
# ReflectionPad2d(1) accepts.
MIN_INPUT_SIZE = 33


class Conv3x3(nn.Module):
    """3×3 convolution with reflection padding 1 (keeps the size, no zero-padding border)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B,Cin,H,W]`` -> ``[B,Cout,H,W]``."""
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """Conv3x3 followed by ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B,Cin,H,W]`` -> ``[B,Cout,H,W]``."""
        return self.nonlin(self.conv(x))


class DepthDecoder(nn.Module):
    """U-Net decoder producing the disparity at full resolution.

    ``dispconvs`` holds heads for scales 0–3 so that released checkpoints load strictly;
    only the scale-0 head is evaluated.
    """

    def __init__(self, num_ch_enc: np.ndarray | list[int]) -> None:
        super().__init__()
        self.num_ch_enc = np.asarray(num_ch_enc)
        self.num_ch_dec = np.array([16, 32, 64, 128, 256])
        self.upconvs0 = nn.ModuleList()
        self.upconvs1 = nn.ModuleList()
        for i in range(4, -1, -1):
            c_in = self.num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            c_out = self.num_ch_dec[i]
            self.upconvs0.append(ConvBlock(int(c_in), int(c_out)))
            c_skip = self.num_ch_enc[i - 1] if i > 0 else 0
            self.upconvs1.append(ConvBlock(int(c_out + c_skip), int(c_out)))
        self.dispconvs = nn.ModuleList(
            [Conv3x3(int(self.num_ch_dec[s]), 1) for s in range(4)]
        )

    def forward(
        self, features: list[torch.Tensor], out_size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Decode encoder features into disparity.

        Args:
            features: the five encoder features (``ResnetEncoder.forward``).
            out_size: ``(H, W)`` of the last upsampling; default twice the size of
                ``features[0]``. Giving the input size keeps odd sizes exact.

        Returns:
            disp: ``[B,1,H,W]`` in ``(0.01, 10.01)``.
        """
        x = features[-1]
        for cnt, i in enumerate(range(4, -1, -1)):
            x = self.upconvs0[cnt](x)
            if i > 0:
                skip = features[i - 1]
                # Upsampling to the skip's size (rather than exactly ×2) lets any input size
                # work; for multiples of 32 it is the same ×2 bilinear upsampling.
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = torch.cat([x, skip], 1)
            elif out_size is not None:
                x = F.interpolate(x, size=tuple(out_size), mode="bilinear", align_corners=False)
            else:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.upconvs1[cnt](x)
        # The head (a 16->1 convolution: negligible cost) runs in fp32 under mixed precision:
        # bf16's 8-bit mantissa would quantise the disparity into coarse steps.
        with torch.autocast(x.device.type, enabled=False):
            return DISP_SCALE * torch.sigmoid(self.dispconvs[0](x.float())) + MIN_DISP


class DepthNet(nn.Module):
    """One image -> depth.

    Args:
        num_layers: ResNet depth of the encoder (``--resnet_layers``, 18 or 50).
        pretrained: start the encoder from torchvision's ImageNet weights (offline).
        weights_path: file with those weights (``--encoder_weights``); None: torch hub cache.
    """

    def __init__(
        self,
        num_layers: int = 18,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(num_layers, 1, pretrained, weights_path)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B,3,H,W]`` normalised image -> depth ``[B,1,H,W]`` in ``(0.1, 100)``.

        Any ``H, W >= 33`` works (the stride-32 feature must be at least 2×2 for the
        decoder's reflection padding); multiples of 32 are the usual choice.
        """
        if min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"DepthNet needs images of at least {MIN_INPUT_SIZE}×{MIN_INPUT_SIZE} pixels, "
                f"got {tuple(x.shape[-2:])}"
            )
        disp = self.decoder(self.encoder(x), out_size=tuple(x.shape[-2:]))
        return 1.0 / disp
