"""SC-Depth V1, the base system: one LightningModule owns networks, optimiser, validation
and logging.

The later papers are thin subclasses that add what their section adds (``systems.v2``: the
auto-rectify network, ``systems.v3``: the single-image depth prior). A training step is
``loss_terms(batch) -> (terms, context)``: the unweighted loss terms by name and a
:class:`StepContext`; the total is the weighted sum with ``self.loss_weights``, so a
subclass adds a term by adding a name and a weight.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from datasets.formats import denormalize_image
from datasets.registry import dataset_spec
from geometry import pose_vec2mat
from losses.metrics import DepthEvaluator, metrics_for_logging
from losses.photometric import PhotoGeometryLoss, PhotoGeometryOutput
from losses.smoothness import edge_aware_smoothness
from models.depth_net import DepthNet, saturated
from models.pose_net import PoseNet
from options import TrainingOptions, training_options
from utils.runtime import precision_dtype
from utils.visualization import colorize_depth, depth_panel

__all__ = ["NonFiniteLossError", "SCDepthV1", "StepContext"]

# Validation pictures logged to TensorBoard, spread over the validation set.
VAL_PICTURES = 4
# above this share of saturated validation depths the run is warned about (_check_saturation)
SATURATED_WARNING = 0.99


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN/Inf: training stops instead of writing a poisoned checkpoint."""


@dataclass
class StepContext:
    """What a training step computed besides its loss terms, for subclasses and loggers.

    tgt_depth, ref_depths: ``[B,1,H,W]`` (fp32); poses, poses_inv: ``ref_T_tgt`` and
    ``tgt_T_ref`` ``[B,3,4]`` per reference; refs: the reference images the losses used;
    photo: the photometric loss's output; logs: detached scalars logged as ``train/<name>``.
    """

    tgt_depth: Tensor
    ref_depths: list[Tensor]
    poses: list[Tensor]
    poses_inv: list[Tensor]
    refs: list[Tensor]
    photo: PhotoGeometryOutput
    logs: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def extending(cls, base: StepContext, **extra: Any) -> Any:
        """A subclass's context holding ``base``'s fields and ``extra``."""
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
                   **extra)


class SCDepthV1(pl.LightningModule):
    """SC-Depth V1: photometric loss + geometry consistency + edge-aware smoothness.

    hparams: a parsed Namespace, a checkpoint's ``hyper_parameters`` or a dict of a few
    settings; :func:`options.training_options` completes it with the defaults, and the
    complete options are what every checkpoint stores.
    """

    def __init__(self, hparams: argparse.Namespace | Mapping[str, Any] | TrainingOptions
                 ) -> None:
        super().__init__()
        self.opts = opts = training_options(hparams)
        # Stored in every checkpoint as a plain dict, so our files load with weights_only.
        self.save_hyperparameters(dataclasses.asdict(opts))
        pretrained = not opts.no_pretrain
        self.depth_net = DepthNet(opts.resnet_layers, pretrained, opts.encoder_weights)
        # PoseNet is always a ResNet-18, so the file of --encoder_weights fits it only then.
        self.pose_net = PoseNet(pretrained, opts.encoder_weights if opts.resnet_layers == 18
                                else None)
        self.photo_geometry_loss = PhotoGeometryLoss(
            no_ssim=opts.no_ssim,
            no_auto_mask=opts.no_auto_mask,
            no_dynamic_mask=opts.no_dynamic_mask,
            no_min_optimize=opts.no_min_optimize,
            fused_ssim=not opts.no_fused_ssim,
        )
        self.loss_weights: dict[str, float] = {
            "photo_loss": opts.photo_weight,
            "geometry_loss": opts.geometry_weight,
            "smooth_loss": opts.smooth_weight,
        }
        self._evaluator: DepthEvaluator | None = None
        self._val_losses: list[float] = []
        # training steps of this epoch (and of the run) whose masks left no pixel
        self._empty_steps = 0
        self._warned_empty = False
        # The fast path (scripts/benchmark.py measures it against the plain one).
        self.batched_forwards = not opts.no_batched_forwards
        self.channels_last = not opts.no_channels_last

    def apply_fast_path(self) -> None:
        """channels_last weights and, with --compile, compiled networks and photometric loss
        (in place, so the state-dict keys stay those of the published checkpoints). The
        loss (warps, masks, SSIM: many memory-bound element-wise steps) is what inductor
        fuses best on the CPU; the networks' convolutions gain little (docs/performance.md)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.opts.compile:
            for name in ("depth_net", "pose_net", "rectify_net", "photo_geometry_loss"):
                if hasattr(self, name):
                    getattr(self, name).compile()

    def setup(self, stage: str) -> None:
        self.apply_fast_path()

    # ----------------------------------------------------------------- inference
    def forward(self, img: Tensor) -> Tensor:
        """img: [B,3,H,W] normalised -> depth [B,1,H,W]."""
        return self.depth_net(self._prepare(img))

    def inference_net(self, precision: str = "32", compile: bool = False) -> DepthNet:
        """The depth network as ``test.py``, ``inference.py`` and the benchmark run it: a
        frozen :meth:`DepthNet.inference_copy` (BatchNorm folded, weights in the dtype of
        ``precision``, no autocast needed) on this model's device. Same depth as
        ``self.eval()(img)`` up to rounding.

        compile: ``torch.compile`` it (in place) with inductor's weight freezing: the
        weights become constants, so convolutions are fused with the activations after
        them and their weights pre-packed (docs/performance.md). The first call of each
        input shape compiles; only inference (``torch.inference_mode``) is frozen.
        """
        net = self.depth_net.inference_copy(precision_dtype(precision, self.device))
        if compile:
            net.compile(options={"freezing": True})
        return net

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

    @torch.no_grad()
    def relative_pose(self, tgt: Tensor, ref: Tensor, K: Tensor | None = None) -> Tensor:
        """``ref_T_tgt`` ``[B,3,4]`` (float64) of image pairs ``[B,3,H,W]``, as pose
        evaluation reads a trained model: PoseNet's vector, turned into a matrix in float64.
        K ``[B,3,3]``: unused here (V2's ARN may need it)."""
        return pose_vec2mat(self.pose_net(tgt, ref).double())

    def pose_precision(self) -> contextlib.AbstractContextManager:
        """The networks that predict camera motion (PoseNet, V2's ARN) run in fp32 even under
        mixed precision, unless ``--pose_autocast``: the poses drive every warp, and bf16
        poses cost accuracy in our runs (docs/performance.md)."""
        return contextlib.nullcontext() if self.opts.pose_autocast else self.full_precision()

    def full_precision(self) -> torch.autocast:
        """Losses run in fp32 under mixed precision: warping, SSIM and the depth ratios
        lose too much in bf16/fp16 (grid_sample coordinates alone need > 8 mantissa bits)."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    # ------------------------------------------------------------------ training
    def loss_terms(self, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], StepContext]:
        """The unweighted loss terms of a batch, and what subclasses and loggers may reuse."""
        tgt, refs, K = batch["tgt"], list(batch["refs"]), batch["K"]
        tgt_depth, ref_depths = self.predict_depths(tgt, refs)
        poses, poses_inv = self.predict_poses(tgt, refs)
        return self.photometric_terms(tgt, refs, K, tgt_depth, ref_depths, poses, poses_inv)

    def photometric_terms(self, tgt: Tensor, refs: list[Tensor], K: Tensor, tgt_depth: Tensor,
                          ref_depths: list[Tensor], poses: list[Tensor],
                          poses_inv: list[Tensor]) -> tuple[dict[str, Tensor], StepContext]:
        """V1's terms (photometric, geometry consistency, smoothness) of predicted depths
        and poses (shapes as in :class:`StepContext`), computed in fp32."""
        tgt_depth, ref_depths = tgt_depth.float(), [d.float() for d in ref_depths]
        poses, poses_inv = [p.float() for p in poses], [p.float() for p in poses_inv]
        with self.full_precision():
            photo = self.photo_geometry_loss(tgt, refs, tgt_depth, ref_depths, poses,
                                             poses_inv, K)
            terms = {"photo_loss": photo.photo_loss, "geometry_loss": photo.geometry_loss}
            if self.loss_weights.get("smooth_loss", 0.0) > 0:
                terms["smooth_loss"] = edge_aware_smoothness(tgt_depth, tgt)
        context = StepContext(tgt_depth, ref_depths, poses, poses_inv, refs, photo,
                              logs=dict(photo.logs))
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
        self._count_empty(context)
        loss = self.total_loss(terms)
        self.log_step(loss, {**terms, **context.logs}, batch["tgt"].shape[0])
        every = self.opts.log_images_every_n_steps
        if every > 0 and self.global_step % every == 0:
            self.log_train_images(batch, context)
        return loss

    def log_step(self, loss: Tensor, scalars: Mapping[str, Tensor], batch_size: int) -> None:
        """A training step's scalars as ``train/<name>``, its total as ``train/total_loss``
        and as the progress bar's ``loss``."""
        logs = {f"train/{k}": v.detach() for k, v in scalars.items()}
        logs["train/total_loss"] = loss.detach()
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False,
                      batch_size=batch_size)
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, logger=False,
                 batch_size=batch_size)

    def _count_empty(self, context: StepContext) -> None:
        """Identical, black or white frames leave no pixel to the photometric loss (the
        auto-mask drops them all): the loss is 0 and nothing is learnt. Said at the first
        logging step after such a step, counted at the end of each epoch. The count stays
        on the device: reading it every step would stall a GPU."""
        fraction = context.logs.get("valid_fraction")
        if fraction is None:
            return
        self._empty_steps = self._empty_steps + (fraction.detach() == 0).to(torch.int64)
        if (not self._warned_empty and self.global_step % self.opts.log_every_n_steps == 0
                and int(self._empty_steps) > 0):
            self._warned_empty = True
            rank_zero_warn(f"step {self.global_step}: no pixel passed the photometric masks "
                           "(valid_fraction 0, loss 0): identical, black or white frames?")

    def on_train_epoch_end(self) -> None:
        empty = int(self._empty_steps)
        if empty:
            rank_zero_warn(f"epoch {self.current_epoch}: {empty} training steps had no valid "
                           "pixel (valid_fraction 0) and taught nothing")
        self._empty_steps = 0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.opts.lr)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """With ``--fp16_best_checkpoints`` a weights-only checkpoint (a best-k one: only
        ``last.ckpt`` carries the optimizer) stores its floating-point weights in fp16;
        ``load_state_dict`` casts them back into the fp32 parameters."""
        if self.opts.fp16_best_checkpoints and "optimizer_states" not in checkpoint:
            checkpoint["state_dict"] = {
                k: v.half() if v.is_floating_point() else v
                for k, v in checkpoint["state_dict"].items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A resumed run trains with its own ``--lr``, the one its checkpoints record:
        Lightning would restore the optimizer's stored learning rate over it."""
        for state in checkpoint.get("optimizer_states", []):
            for group in state.get("param_groups", []):
                if group.get("lr") != self.opts.lr:
                    rank_zero_info(f"note: --lr {self.opts.lr:g} replaces the checkpoint's "
                                   f"{group['lr']:g}")
                    group["lr"] = self.opts.lr

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._evaluator = DepthEvaluator(dataset_spec(self.opts.dataset_name))
        self._val_losses = []
        # pixels of the predicted depths at an end of DepthNet's range (kept on the device)
        self._val_saturated = torch.zeros((), dtype=torch.int64, device=self.device)
        self._val_pixels = 0

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        if self.opts.val_mode == "depth":
            depth = self(batch["tgt"])
            self._evaluator.update(depth.float(), batch["gt_depth"])
        else:
            terms, context = self.loss_terms(batch)
            depth = context.tgt_depth
            self._val_losses.append(float(terms["photo_loss"]))
        self._val_saturated = self._val_saturated + saturated(depth.detach()).sum()
        self._val_pixels += depth.numel()
        picture = self._val_pictures().get(batch_idx)
        if picture is None:
            return
        if self.opts.val_mode == "depth":
            self.log_depth_panel(f"val/panel_{picture}", batch["tgt"][0], depth[0, 0],
                                 batch["gt_depth"][0])
        else:
            self.log_image_pair(f"val/input_depth_{picture}", batch["tgt"][0], depth[0])

    def _val_pictures(self) -> dict[int, int]:
        """batch index -> picture number: VAL_PICTURES validation batches spread evenly
        over the validation set (whose scenes follow one another)."""
        counts = getattr(self._trainer, "num_val_batches", None) or [0]
        n = int(counts[0]) if counts[0] != float("inf") else VAL_PICTURES
        return {round(k * n / VAL_PICTURES): k for k in range(min(VAL_PICTURES, n))}

    def on_validation_epoch_end(self) -> None:
        self._check_saturation()
        if self.opts.val_mode == "depth":
            results = self._evaluator.compute()
            if results["num_images"] == 0:
                # The dataset check refuses ground truth without a valid pixel; a subset
                # (--limit_val_batches) may still have none. A NaN val_loss ranks last in
                # the checkpoint monitor, where a missing one would end the run.
                rank_zero_warn(f"validation at step {self.global_step}: none of the "
                               f"{results['num_skipped']} frames has a valid ground-truth "
                               "pixel; val_loss is NaN")
                self.log("val_loss", math.nan, prog_bar=True, sync_dist=True)
                return
            logs = {f"val/{k}": v for k, v in metrics_for_logging(results).items()}
            val_loss = results["full"]["abs_rel"]
        else:
            val_loss = float(np.mean(self._val_losses)) if self._val_losses else math.nan
            logs = {"val/photo_loss": val_loss}
        self.log_dict(logs, sync_dist=True)
        # The checkpoint monitor: AbsRel in depth mode, the photometric loss in photo mode.
        self.log("val_loss", val_loss, prog_bar=True, sync_dist=True)

    def _check_saturation(self) -> None:
        """A DepthNet whose output sits at the 0.1 m floor or the 100 m ceiling almost
        everywhere has a saturated head: its gradient has vanished and more training does
        not bring it back (docs/accuracy.md, V2), so the run is said to be lost while it
        still can be stopped. The fraction is logged as ``val/saturated_fraction``."""
        if not self._val_pixels:
            return
        fraction = float(self._val_saturated) / self._val_pixels
        self.log("val/saturated_fraction", fraction, sync_dist=True)
        checking = self._trainer is not None and self._trainer.sanity_checking
        if fraction > SATURATED_WARNING and not checking:
            rank_zero_warn(f"validation at step {self.global_step}: {fraction:.1%} of the "
                           "predicted depths sit at the 0.1 m floor or the 100 m ceiling of "
                           "DepthNet's output, where its gradient vanishes; training will "
                           "hardly move them back (an earlier checkpoint is the place to "
                           "restart from)")

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

    def log_depth_panel(self, tag: str, img: Tensor, depth: Tensor, gt: Tensor) -> None:
        """input | prediction | ground truth | error, on one colour scale."""
        tb = self._tensorboard()
        if tb is None or self.global_rank != 0:
            return
        panel = depth_panel(denormalize_image(img), depth.float().cpu().numpy(),
                            gt.float().cpu().numpy())
        tb.add_image(tag, panel, self.global_step, dataformats="HWC")

    def log_train_images(self, batch: Mapping[str, Any], context: StepContext) -> None:
        self.log_image_pair("train/input_depth", batch["tgt"][0], context.tgt_depth[0])
