"""The SC-Depth systems (LightningModules) and the registry of versions above them.

``SYSTEMS`` maps a ``--model_version`` to its class; :func:`build_model` builds one from
options, :func:`load_from_checkpoint` from a checkpoint (ours or a published one).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from options import TrainingOptions, training_options
from systems.v1 import NonFiniteLossError, SCDepthV1, StepContext
from systems.v2 import SCDepthV2
from systems.v3 import SCDepthV3
from utils.checkpoint import (
    CheckpointError,
    checkpoint_hparams,
    checkpoint_state_dict,
    infer_model_version,
    infer_resnet_layers,
    load_checkpoint,
)

__all__ = ["SYSTEMS", "NonFiniteLossError", "SCDepthV1", "SCDepthV2", "SCDepthV3",
           "StepContext", "build_model", "load_from_checkpoint", "load_weights",
           "model_from_checkpoint", "system_class"]

SYSTEMS: dict[str, type[SCDepthV1]] = {"v1": SCDepthV1, "v2": SCDepthV2, "v3": SCDepthV3}


def system_class(version: str) -> type[SCDepthV1]:
    """The system class of a model version (v1, v2, v3)."""
    try:
        return SYSTEMS[version]
    except KeyError:
        raise ValueError(f"unknown model version {version!r}; choose "
                         f"{', '.join(SYSTEMS)}") from None


def build_model(opts: argparse.Namespace | Mapping[str, Any] | TrainingOptions) -> SCDepthV1:
    """The system of ``opts.model_version``, with ``opts`` (completed with the defaults)."""
    opts = training_options(opts)
    return system_class(opts.model_version)(opts)


def load_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                         overrides: Mapping[str, Any] | None = None,
                         model_version: str | None = None) -> SCDepthV1:
    """Build the right version from a checkpoint file (ours or a published one) and load it
    strictly, in eval mode (:func:`model_from_checkpoint`)."""
    return model_from_checkpoint(load_checkpoint(path, map_location="cpu"), path,
                                 map_location, overrides, model_version)


def model_from_checkpoint(ckpt: dict, path: str | Path, map_location: str | torch.device = "cpu",
                          overrides: Mapping[str, Any] | None = None,
                          model_version: str | None = None) -> SCDepthV1:
    """The system of a loaded checkpoint (``utils.checkpoint.load_checkpoint``; ``path``
    names it in errors), loaded strictly, in eval mode.

    The architecture is read from the file, not from command-line defaults: the version
    from its options (or its weights), the encoder depth from its weights. ``model_version``
    asks for another version; it is honoured when the weights fit it (V1 and V3 share their
    networks), else a CheckpointError says what the file holds. ``overrides`` replace stored
    options that do not change the networks.
    """
    stored = infer_model_version(ckpt)
    hp = checkpoint_hparams(ckpt)
    hp.update(overrides or {})
    hp.update(model_version=model_version or stored, resnet_layers=infer_resnet_layers(ckpt),
              no_pretrain=True, encoder_weights=None)
    model = build_model(hp)
    load_weights(model, ckpt, path)
    model.apply_fast_path()
    return model.to(map_location).eval()


def load_weights(model: SCDepthV1, ckpt: dict, path: str | Path) -> None:
    """Load a loaded checkpoint's weights into ``model``, strictly. Weights of another
    version or encoder depth are a one-line CheckpointError saying what the file holds and
    what it was to be loaded into (``path`` names the file)."""
    try:
        model.load_state_dict(checkpoint_state_dict(ckpt), strict=True)
    except RuntimeError as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else "no detail"
        raise CheckpointError(
            f"{path} holds SC-Depth {infer_model_version(ckpt)} with a ResNet-"
            f"{infer_resnet_layers(ckpt)} DepthNet, which cannot be loaded as SC-Depth "
            f"{model.opts.model_version} with ResNet-{model.opts.resnet_layers} ({detail})"
        ) from None
