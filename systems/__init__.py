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
    checkpoint_hparams,
    checkpoint_state_dict,
    infer_model_version,
    infer_resnet_layers,
    load_checkpoint,
)

__all__ = ["SYSTEMS", "NonFiniteLossError", "SCDepthV1", "SCDepthV2", "SCDepthV3",
           "StepContext", "build_model", "load_from_checkpoint", "system_class"]

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
                         overrides: Mapping[str, Any] | None = None) -> SCDepthV1:
    """Build the right version from a checkpoint (ours or a published one) and load it
    strictly, in eval mode. The architecture is read from the file, not from command-line
    defaults; ``overrides`` replace stored options that do not change the networks."""
    ckpt = load_checkpoint(path, map_location="cpu")
    hp = checkpoint_hparams(ckpt)
    hp.update(overrides or {})
    hp.update(model_version=infer_model_version(ckpt), resnet_layers=infer_resnet_layers(ckpt),
              no_pretrain=True, encoder_weights=None)
    model = build_model(hp)
    model.load_state_dict(checkpoint_state_dict(ckpt), strict=True)
    model.apply_fast_path()
    return model.to(map_location).eval()
