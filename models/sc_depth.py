"""The SC-Depth systems: one LightningModule owns networks, optimiser, validation and logging.

`SCDepthV1` is the base; the later papers are thin subclasses that add what their section
adds (V2: the auto-rectify network, V3: the single-image depth prior). A training step is
`loss_terms(batch) -> {name: scalar}`; the total is the weighted sum with the weights of
`self.loss_weights`, so a subclass adds a term by adding a name and a weight.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from config import PRECISIONS
from geometry import pose_vec2mat
from losses.metrics import DepthEvaluator, metrics_for_logging
from losses.photometric import PhotoGeometryLoss
from losses.smoothness import edge_aware_smoothness
from models.depth_net import DepthNet
from models.pose_net import PoseNet
from utils.visualization import colorize_depth, denormalize_image


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN/Inf: training stops instead of writing a poisoned checkpoint."""


def _as_dict(hparams: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    return dict(vars(hparams)) if isinstance(hparams, argparse.Namespace) else dict(hparams)


class SCDepthV1(pl.LightningModule):
    """SC-Depth V1: photometric loss + geometry consistency + edge-aware smoothness."""

    def __init__(self, hparams: argparse.Namespace | Mapping[str, Any]) -> None:
        super().__init__()
        hp = _as_dict(hparams)
        # Stored in every checkpoint as a plain dict, so our files load with weights_only.
        self.save_hyperparameters(hp)
        pretrained = not hp.get("no_pretrain", False)
        weights = hp.get("encoder_weights")
        self.depth_net = DepthNet(int(hp.get("resnet_layers", 18)), pretrained, weights)
        self.pose_net = PoseNet(pretrained, weights if int(hp.get("resnet_layers", 18)) == 18
                                else None)
        self.photo_geometry_loss = PhotoGeometryLoss(
            no_ssim=hp.get("no_ssim", False),
            no_auto_mask=hp.get("no_auto_mask", False),
            no_dynamic_mask=hp.get("no_dynamic_mask", False),
            no_min_optimize=hp.get("no_min_optimize", False),
            fused_ssim=not hp.get("no_fused_ssim", False),
        )
        self.loss_weights: dict[str, float] = {
            "photo_loss": hp.get("photo_weight", 1.0),
            "geometry_loss": hp.get("geometry_weight", 0.1),
            "smooth_loss": hp.get("smooth_weight", 0.1),
        }
        self.dataset_name = hp.get("dataset_name", "kitti")
        self.val_mode = hp.get("val_mode", "depth")
        self._evaluator: DepthEvaluator | None = None
        self._val_losses: list[float] = []
        # The fast path (scripts/benchmark.py measures it against the plain one).
        self.batched_forwards = not hp.get("no_batched_forwards", False)
        self.channels_last = not hp.get("no_channels_last", False)
        self.pose_autocast = hp.get("pose_autocast", False)

    def apply_fast_path(self) -> None:
        """channels_last weights and, with --compile, compiled networks (in place, so the
        state-dict keys stay those of the published checkpoints)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.hparams.get("compile", False):
            for name in ("depth_net", "pose_net", "rectify_net"):
                if hasattr(self, name):
                    getattr(self, name).compile()

    def setup(self, stage: str) -> None:
        self.apply_fast_path()

    # ----------------------------------------------------------------- inference
    def forward(self, img: Tensor) -> Tensor:
        """img: [B,3,H,W] normalised -> depth [B,1,H,W]."""
        return self.depth_net(self._prepare(img))

    def inference_net(self, precision: str = "32") -> DepthNet:
        """The depth network as ``test.py``, ``inference.py`` and the benchmark run it: a
        frozen :meth:`DepthNet.inference_copy` (BatchNorm folded, weights in the dtype of
        ``precision``, no autocast needed) on this model's device. Same depth as
        ``self.eval()(img)`` up to rounding."""
        return self.depth_net.inference_copy(precision_dtype(precision, self.device))

    def _prepare(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def predict_depths(self, tgt: Tensor, refs: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Depth of the target and of each reference (tgt [B,3,H,W] -> [B,1,H,W]).

        With batched forwards (the default) the target and the references go through
        DepthNet as one batch of (1+N)·B images: one call instead of 1+N. BatchNorm then
        normalises with the statistics of all frames of the step together (and updates its
        running averages once per step instead of 1+N times); the frames come from the same
        clips, so these statistics estimate the same distribution with less noise.
        """
        if not self.batched_forwards:
            return self.depth_net(self._prepare(tgt)), [self.depth_net(self._prepare(r))
                                                        for r in refs]
        depths = self.depth_net(self._prepare(torch.cat([tgt, *refs]))).split(tgt.shape[0])
        return depths[0], list(depths[1:])

    def predict_poses(self, tgt: Tensor, refs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """`ref_T_tgt` and `tgt_T_ref` [B,3,4] for each reference: two separate predictions,
        as in the paper (the inverse is not taken). Batched forwards stack the 2N pairs
        into one PoseNet call (same BatchNorm remark as for the depths)."""
        with self.pose_precision():
            return self._predict_poses(tgt, refs)

    def _predict_poses(self, tgt: Tensor, refs: list[Tensor]
                       ) -> tuple[list[Tensor], list[Tensor]]:
        if not self.batched_forwards:
            poses = [pose_vec2mat(self.pose_net(self._prepare(tgt), self._prepare(r)))
                     for r in refs]
            poses_inv = [pose_vec2mat(self.pose_net(self._prepare(r), self._prepare(tgt)))
                         for r in refs]
            return poses, poses_inv
        n = len(refs)
        first = self._prepare(torch.cat([tgt] * n + refs))
        second = self._prepare(torch.cat(refs + [tgt] * n))
        mats = pose_vec2mat(self.pose_net(first, second).float()).split(tgt.shape[0])
        return list(mats[:n]), list(mats[n:])

    def pose_precision(self) -> contextlib.AbstractContextManager:
        """The networks that predict camera motion (PoseNet, V2's ARN) run in fp32 even under
        mixed precision, unless ``--pose_autocast``. Measured (demo config, 600 steps, test
        AbsRel): a bf16 PoseNet gave 0.267-0.272 in three runs against 0.240 / 0.251 in fp32;
        bf16 with PoseNet in fp32 gave 0.238 and 0.266 (the spread between runs is large, see
        the README). The poses drive every warp."""
        return contextlib.nullcontext() if self.pose_autocast else self.full_precision()

    def full_precision(self) -> torch.autocast:
        """Losses run in fp32 under mixed precision: warping, SSIM and the depth ratios
        lose too much in bf16/fp16 (grid_sample coordinates alone need > 8 mantissa bits)."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    # ------------------------------------------------------------------ training
    def loss_terms(self, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The unweighted loss terms of a batch, and what subclasses/loggers may reuse."""
        tgt, refs, K = batch["tgt"], list(batch["refs"]), batch["K"]
        tgt_depth, ref_depths = self.predict_depths(tgt, refs)
        poses, poses_inv = self.predict_poses(tgt, refs)
        tgt_depth, ref_depths = tgt_depth.float(), [d.float() for d in ref_depths]
        poses, poses_inv = [p.float() for p in poses], [p.float() for p in poses_inv]
        with self.full_precision():
            photo, geometry, info = self.photo_geometry_loss(
                tgt, refs, tgt_depth, ref_depths, poses, poses_inv, K)
            terms = {"photo_loss": photo, "geometry_loss": geometry}
            if self.loss_weights.get("smooth_loss", 0.0) > 0:
                terms["smooth_loss"] = edge_aware_smoothness(tgt_depth, tgt)
        context = {"tgt_depth": tgt_depth, "ref_depths": ref_depths, "poses": poses,
                   "poses_inv": poses_inv, "refs": refs, "info": info}
        return terms, context

    def total_loss(self, terms: Mapping[str, Tensor]) -> Tensor:
        return sum(self.loss_weights[name] * value for name, value in terms.items())

    def check_finite(self, terms: Mapping[str, Tensor]) -> None:
        for name, value in terms.items():
            if not torch.isfinite(value.detach()).all():
                raise NonFiniteLossError(
                    f"{name} is {value.item()} at step {self.global_step}; training stopped "
                    "(the last good checkpoint is kept)")

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        terms, context = self.loss_terms(batch)
        self.check_finite(terms)
        loss = self.total_loss(terms)
        logs = {f"train/{k}": v.detach() for k, v in terms.items()}
        logs["train/total_loss"] = loss.detach()
        for key, value in context["info"].items():
            if isinstance(value, Tensor) and value.numel() == 1:
                logs[f"train/{key}"] = value.detach().float()
            elif isinstance(value, float | int):
                logs[f"train/{key}"] = float(value)
        logs.update(self.extra_train_logs(context))
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False,
                      batch_size=batch["tgt"].shape[0])
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, logger=False,
                 batch_size=batch["tgt"].shape[0])
        every = int(self.hparams.get("log_images_every_n_steps", 0) or 0)
        if every > 0 and self.global_step % every == 0:
            self.log_train_images(batch, context)
        return loss

    def extra_train_logs(self, context: Mapping[str, Any]) -> dict[str, Tensor]:
        """Scalars a subclass adds to the training log (V2: rotations before/after)."""
        return {}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=float(self.hparams.get("lr", 1e-4)))

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._evaluator = DepthEvaluator(self.dataset_name)
        self._val_losses = []

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        if self.val_mode == "depth":
            depth = self(batch["tgt"])
            self._evaluator.update(depth.float(), batch["gt_depth"])
        else:
            terms, context = self.loss_terms(batch)
            depth = context["tgt_depth"]
            self._val_losses.append(float(terms["photo_loss"]))
        if batch_idx < 2:
            self.log_image_pair(f"val/input_depth_{batch_idx}", batch["tgt"][0], depth[0])

    def on_validation_epoch_end(self) -> None:
        if self.val_mode == "depth":
            results = self._evaluator.compute()
            if results["num_images"] == 0:
                return
            logs = {f"val/{k}": v for k, v in metrics_for_logging(results).items()}
            val_loss = results["full"]["abs_rel"]
        else:
            val_loss = float(np.mean(self._val_losses)) if self._val_losses else math.nan
            logs = {"val/photo_loss": val_loss}
        self.log_dict(logs, sync_dist=True)
        # The checkpoint monitor: AbsRel in depth mode, the photometric loss in photo mode.
        self.log("val_loss", val_loss, prog_bar=True, sync_dist=True)

    # ------------------------------------------------------------------- testing
    def on_test_epoch_start(self) -> None:
        self._evaluator = DepthEvaluator(self.dataset_name)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        depth = self(batch["tgt"])
        self._evaluator.update(depth.float(), batch["gt_depth"], batch.get("dynamic"))

    def test_results(self) -> dict[str, Any]:
        return self._evaluator.compute()

    # ------------------------------------------------------------------- logging
    def _tensorboard(self):
        logger = self.logger
        experiment = getattr(logger, "experiment", None) if logger is not None else None
        return experiment if hasattr(experiment, "add_image") else None

    def log_image_pair(self, tag: str, img: Tensor, depth: Tensor) -> None:
        """Input and colour-mapped depth side by side."""
        tb = self._tensorboard()
        if tb is None or self.global_rank != 0:
            return
        strip = np.concatenate([denormalize_image(img), colorize_depth(depth)], axis=1)
        tb.add_image(tag, strip, self.global_step, dataformats="HWC")

    def log_train_images(self, batch: Mapping[str, Any], context: Mapping[str, Any]) -> None:
        self.log_image_pair("train/input_depth", batch["tgt"][0], context["tgt_depth"][0])


def model_class(version: str) -> type[SCDepthV1]:
    """The system class of a version; later versions live in their own modules."""
    if version == "v1":
        return SCDepthV1
    elif version == "v2":
        from models.sc_depth_v2 import SCDepthV2

        return SCDepthV2
    elif version == "v3":
        from models.sc_depth_v3 import SCDepthV3

        return SCDepthV3
    else:
        raise ValueError(f"unknown model version {version!r}; choose v1, v2 or v3")


def build_model(opts: argparse.Namespace | Mapping[str, Any]) -> SCDepthV1:
    hp = _as_dict(opts)
    return model_class(hp.get("model_version", "v1"))(hp)


def load_from_checkpoint(path: str, map_location: str | torch.device = "cpu",
                         overrides: Mapping[str, Any] | None = None) -> SCDepthV1:
    """Build the right version from a checkpoint (ours or a published one) and load it
    strictly. The architecture is read from the file, not from command-line defaults."""
    from utils.checkpoint import (
        checkpoint_hparams,
        checkpoint_state_dict,
        infer_model_version,
        infer_resnet_layers,
        load_checkpoint,
    )

    ckpt = load_checkpoint(path, map_location="cpu")
    hp = checkpoint_hparams(ckpt)
    hp.update(overrides or {})
    hp.update(model_version=infer_model_version(ckpt), resnet_layers=infer_resnet_layers(ckpt),
              no_pretrain=True, encoder_weights=None)
    model = model_class(hp["model_version"])(hp)
    model.load_state_dict(checkpoint_state_dict(ckpt), strict=True)
    model.apply_fast_path()
    return model.to(map_location).eval()


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype of a precision name: "32" fp32, "bf16-mixed" bf16 (CPU or GPU),
    "16-mixed" fp16 (GPU only). Raises ValueError for 16-mixed off CUDA (CPU fp16
    convolutions are emulated and slow) and for unknown names."""
    if precision == "32":
        return torch.float32
    if precision == "bf16-mixed":
        return torch.bfloat16
    if precision == "16-mixed":
        if device.type != "cuda":
            raise ValueError("16-mixed needs a CUDA device (use bf16-mixed on the CPU)")
        return torch.float16
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Lightning's mixed precision for our own training-step loops (the benchmark): autocast
    to :func:`precision_dtype`'s dtype, nothing for "32". The depth head and the pose
    average stay fp32 inside the networks."""
    dtype = precision_dtype(precision, device)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` is the first GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
