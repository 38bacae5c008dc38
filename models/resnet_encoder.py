"""ResNet encoder shared by DepthNet, PoseNet and RectifyNet, and offline ImageNet weights.

The torchvision ResNet is kept whole (including ``fc``, which is never evaluated) inside
``ResnetEncoder.encoder`` so that the state-dict keys match the checkpoints released for
the public implementation (``*.encoder.encoder.conv1.weight`` …).

Pretrained weights are never downloaded: they are read from a file given by path
(``--encoder_weights FILE``) or from the torch hub cache, where torchvision itself keeps
them (``torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision.models as tvm
from torch import nn

from utils.errors import UserError

__all__ = [
    "PretrainedWeightsError",
    "ResnetEncoder",
    "imagenet_weights_file",
    "load_imagenet_state_dict",
]

# num_layers -> (constructor, ImageNet weights enum entry whose url names the cached file).
_RESNETS: dict[int, tuple[Callable[..., tvm.ResNet], tvm.WeightsEnum]] = {
    18: (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
    34: (tvm.resnet34, tvm.ResNet34_Weights.IMAGENET1K_V1),
    50: (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1),
    101: (tvm.resnet101, tvm.ResNet101_Weights.IMAGENET1K_V1),
    152: (tvm.resnet152, tvm.ResNet152_Weights.IMAGENET1K_V1),
}


class PretrainedWeightsError(UserError, RuntimeError):
    """ImageNet weights are unavailable offline; the message says which file to put where."""


def _check_num_layers(num_layers: int) -> None:
    if num_layers not in _RESNETS:
        raise ValueError(
            f"resnet_layers must be one of {sorted(_RESNETS)}, got {num_layers}"
        )


def imagenet_weights_file(num_layers: int) -> Path:
    """Where torchvision caches the ImageNet weights of ResNet-``num_layers``.

    Returns ``torch.hub.get_dir()/checkpoints/<file name of the torchvision url>``, e.g.
    ``~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth``. The file may not exist.
    """
    _check_num_layers(num_layers)
    file_name = Path(urlparse(_RESNETS[num_layers][1].url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # missing, truncated, not a torch file, unsafe pickle
        raise PretrainedWeightsError(
            f"cannot read {what} '{path}': {type(err).__name__}: {err}".replace("\n", " ")
        ) from err
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise PretrainedWeightsError(f"{what} '{path}' is not a state dict of tensors")
    return state


def load_imagenet_state_dict(
    num_layers: int, weights_path: str | Path | None = None
) -> dict[str, torch.Tensor]:
    """Load torchvision's ImageNet state dict of ResNet-``num_layers`` without downloading.

    Args:
        num_layers: 18 or 50 (34, 101 and 152 work too).
        weights_path: a torchvision ResNet state-dict file (``--encoder_weights``); when
            None the torch hub cache is used (see ``imagenet_weights_file``).

    Returns:
        The state dict (keys of ``torchvision.models.resnetN()``, including ``fc``).

    Raises:
        PretrainedWeightsError: the file is missing or unreadable; the one-line message
            names the file and, for the hub cache, the directory to put it into.
    """
    _check_num_layers(num_layers)
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(
                f"encoder weights file '{path}' (--encoder_weights) does not exist; "
                f"give a torchvision ResNet-{num_layers} state dict, or pass --no_pretrain"
            )
        return _read_state_dict(path, "encoder weights file")

    path = imagenet_weights_file(num_layers)
    if not path.is_file():
        raise PretrainedWeightsError(
            f"ImageNet weights for ResNet-{num_layers} are not available offline: put "
            f"{path.name} (from {_RESNETS[num_layers][1].url}) into {path.parent} "
            f"(i.e. {path}), or pass --encoder_weights FILE, or --no_pretrain"
        )
    return _read_state_dict(path, "ImageNet weights file")


class ResnetEncoder(nn.Module):
    """ResNet feature pyramid; ``num_input_images`` images are stacked along channels.

    Inputs are already normalised by the data pipeline (``(x/255 - 0.45) / 0.225``), so no
    normalisation happens here.

    Attributes:
        encoder: the torchvision ResNet (``fc`` kept for state-dict compatibility only).
        num_ch_enc: channels of the five features, e.g. ``[64, 64, 128, 256, 512]``.
    """

    def __init__(
        self,
        num_layers: int = 18,
        num_input_images: int = 1,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        _check_num_layers(num_layers)
        if num_input_images < 1:
            raise ValueError(f"num_input_images must be >= 1, got {num_input_images}")
        # weights=None: torchvision's own random initialisation (used with --no_pretrain).
        self.encoder = _RESNETS[num_layers][0](weights=None)
        if num_input_images > 1:
            conv1 = nn.Conv2d(
                3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False
            )
            # Same init torchvision gives its conv layers.
            nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
            self.encoder.conv1 = conv1

        expansion = 4 if num_layers > 34 else 1
        self.num_ch_enc = np.array([64, 64 * expansion, 128 * expansion, 256 * expansion,
                                    512 * expansion])

        if pretrained:
            state = dict(load_imagenet_state_dict(num_layers, weights_path))
            if num_input_images > 1 and "conv1.weight" in state:
                # Repeat the RGB filters for every image and divide by their number, so that
                # n identical images give the same activations as one image did in ImageNet.
                w = state["conv1.weight"]
                state["conv1.weight"] = torch.cat([w] * num_input_images, 1) / num_input_images
            try:
                self.encoder.load_state_dict(state)
            except RuntimeError as err:
                source = weights_path if weights_path is not None else (
                    imagenet_weights_file(num_layers))
                msg = str(err).replace("\n", " ")
                raise PretrainedWeightsError(
                    f"'{source}' is not a torchvision ResNet-{num_layers} state dict: {msg}"
                ) from err

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encode images.

        Args:
            x: ``[B,3*num_input_images,H,W]`` normalised images.

        Returns:
            Five features, at strides 2, 4, 8, 16, 32 with ``num_ch_enc`` channels
            (``[B,64,H/2,W/2]``, ``[B,C1,H/4,W/4]``, … ``[B,C4,H/32,W/32]``).
        """
        enc = self.encoder
        f0 = enc.relu(enc.bn1(enc.conv1(x)))
        f1 = enc.layer1(enc.maxpool(f0))
        f2 = enc.layer2(f1)
        f3 = enc.layer3(f2)
        f4 = enc.layer4(f3)
        return [f0, f1, f2, f3, f4]
