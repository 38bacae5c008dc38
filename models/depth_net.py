"""DepthNet: ResNet encoder + U-Net decoder, one image -> depth (docs/method.md, Networks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.resnet_encoder import ResnetEncoder
from options import MIN_INPUT_SIZE

__all__ = ["ELU", "Conv3x3", "ConvBlock", "DepthDecoder", "DepthNet", "elu", "fold_batch_norm",
           "saturated"]

# Disparity range of the output head: disp in (MIN_DISP, MIN_DISP + DISP_SCALE), so depth
# lies in (1/10.01, 100).
DISP_SCALE = 10.0
MIN_DISP = 0.01


def saturated(depth: torch.Tensor, tol: float = 1e-4) -> torch.Tensor:
    """Where DepthNet's ``depth`` (any shape) sits at an end of its range: the head's sigmoid
    within ``tol`` of 1 (depth within 0.01 % of the 0.1 m floor) or of 0 (beyond about 91 m for
    the default tol). There the sigmoid's gradient ``s(1 − s)`` is below ``tol``, so training
    hardly moves those pixels back. Returns a bool tensor of the same shape."""
    s = (1.0 / depth.float() - MIN_DISP) / DISP_SCALE
    return (s < tol) | (s > 1.0 - tol)


def elu(x: torch.Tensor) -> torch.Tensor:
    """ELU as ``max(x, exp(min(x, 0)) − 1)``: exactly ELU (α = 1), since ``e^x − 1 ≥ x``
    everywhere with equality only at 0.

    Why not ``F.elu``: PyTorch's CPU ELU evaluates ``expm1`` without vectorising it, which
    made the decoder's ELUs a large share of a bf16 DepthNet forward (docs/performance.md);
    ``exp`` is vectorised. ``exp(m) − 1`` loses relative precision only for |m| ≪ 1, where
    its absolute error (one ulp of 1) is what the following convolution sees.
    """
    return torch.maximum(x, torch.exp(x.clamp(max=0)) - 1)


class _ELUFunction(torch.autograd.Function):
    """:func:`elu` with ELU's own backward, ``grad · (min(y, 0) + 1)`` (= e^x for x < 0, 1
    above), which needs only the output: as little saved memory as ``nn.ELU(inplace=True)``
    instead of the three tensors autograd would keep for the composite."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = elu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad * (y.clamp(max=0) + 1)


class ELU(nn.Module):
    """ELU (α = 1) through :func:`elu` on the CPU; a parameter-free drop-in for ``nn.ELU``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: any shape -> ELU(x), same shape and dtype."""
        if x.device.type != "cpu":
            # On a GPU PyTorch's ELU is one fused kernel, while the composite is four and,
            # under CUDA autocast (which runs exp in fp32), returns fp32 activations that
            # the next convolution casts back.
            return F.elu(x)
        # Tracing (TorchScript/ONNX export) records the plain tensor ops; the custom backward
        # only matters when a graph is being built.
        if x.requires_grad and torch.is_grad_enabled() and not torch.jit.is_tracing():
            return _ELUFunction.apply(x)
        return elu(x)


def fold_batch_norm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that follows a convolution into that convolution, in place.

    In eval mode BatchNorm is a fixed per-channel affine map (running statistics), so
    ``bn(conv(x))`` equals one convolution with scaled weights and a shifted bias; folding
    saves a full pass over each activation. Training would change the statistics, so this
    is for frozen copies only (:meth:`DepthNet.inference_copy`). Pairs are found by
    torchvision's ResNet naming: ``bnK`` follows ``convK`` in the same module, and a
    ``Sequential`` holds ``(conv, bn)`` in order (the residual ``downsample``). The folded
    BatchNorm becomes ``nn.Identity``.

    Raises:
        ValueError: the module is in training mode, or a BatchNorm2d has no convolution to
            fold into.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if module.training:
        raise ValueError("fold_batch_norm needs a module in eval mode")
    for parent in list(module.modules()):
        names = [name for name, _ in parent.named_children()]
        for i, name in enumerate(names):
            bn = getattr(parent, name)
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            if isinstance(parent, nn.Sequential):
                conv_name = names[i - 1] if i > 0 else ""
            else:
                conv_name = "conv" + name[2:] if name.startswith("bn") else ""
            conv = getattr(parent, conv_name, None) if conv_name else None
            if not isinstance(conv, nn.Conv2d):
                raise ValueError(f"fold_batch_norm: no convolution precedes BatchNorm {name!r}")
            setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(parent, name, nn.Identity())
    return module


class Conv3x3(nn.Module):
    """3×3 convolution with reflection padding 1 (keeps the size, no zero-padding border)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B,Cin,H,W]`` -> ``[B,Cout,H,W]``."""
        # Padding copies values, so it is exact in any dtype; but CPU autocast lists
        # reflection_pad2d as an fp32 op, and under bf16 it would upcast the activation only
        # for the convolution to cast it back: two full copies per layer (docs/performance.md).
        # Outside autocast the pad keeps the activation's dtype.
        with torch.autocast(x.device.type, enabled=False):
            x = self.pad(x)
        return self.conv(x)


class ConvBlock(nn.Module):
    """Conv3x3 followed by ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = ELU()

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
        self.num_layers = num_layers
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
        # A no-op except in a reduced-precision inference copy, whose weights are bf16/fp16.
        x = x.to(self.encoder.encoder.conv1.weight.dtype)
        disp = self.decoder(self.encoder(x), out_size=tuple(x.shape[-2:]))
        return 1.0 / disp

    def inference_copy(self, dtype: torch.dtype = torch.float32) -> DepthNet:
        """A frozen copy for evaluation and inference, on the same device.

        BatchNorm is folded into the convolutions (:func:`fold_batch_norm`), gradients are
        off, the layout is channels_last, and with ``dtype`` bf16/fp16 the weights are
        stored in it: autocast would otherwise cast every weight again at every call, and
        the copy needs no autocast. The disparity head stays fp32 as in mixed-precision
        training. Outputs equal ``self.eval()``'s up to rounding; the copy returns depth in
        fp32 whatever ``dtype``.

        The copy is built from the state dict, so it works on a ``.compile()``-d network
        too (and is not compiled itself).
        """
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
        device = self.encoder.encoder.conv1.weight.device
        net = DepthNet(self.num_layers)
        net.load_state_dict(self.state_dict())
        net = fold_batch_norm(net.to(device).eval()).requires_grad_(False)
        net.to(memory_format=torch.channels_last)
        if dtype != torch.float32:
            net.to(dtype)
            net.decoder.dispconvs.float()
        return net
