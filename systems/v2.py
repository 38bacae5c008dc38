"""SC-Depth V2: the auto-rectify network (ARN) for hand-held video (docs/method.md, V2).

Hand-held indoor video rotates a lot between frames and translates little; the rotation
dominates the image motion, and PoseNet/DepthNet learn depth from the (small) translation
badly. V2 adds a network that predicts the rotation between two frames and removes it
before the V1 losses see the pair:

1. for each reference ``r``: ``rot1 = ARN(tgt, r)``; ``r' = rotation_warp(r, rot1, K)``
   (the reference as seen from a camera rotated like the target); ``rot2 = ARN(tgt, r')``;
2. ARN's self-supervision (:func:`losses.rotation.select_rotation_target`): a rotation
   label ``rot3_gt`` and an image ``w`` rotated by it from ``r``; ``rot3 = ARN(w, r)``;
3. rotation consistency ``mean|rot3 − rot3_gt|`` and rotation triplet
   ``mean(max(|rot2| − |rot1| + 0.05, 0))``;
4. the V1 losses on ``tgt`` and the rectified references ``r'``.

Options of ours, each off by default (docs/method.md, V2): ``--arn_warmup_steps`` (ARN
alone on known rotations first), ``--arn_label_range`` (the span of those rotations),
``--arn_border_crop`` (ARN never sees the empty border of a rotated image),
``--arn_earned_labels`` (ARN's own labels only once it is accurate on known ones) and
``--arn_owns_rotation`` (the photometric warp takes ARN's rotation and PoseNet's
translation), ``--arn_pose_weight`` (ARN regresses the rotation of the whole predicted
pose on the real pairs), ``--arn_frozen`` (ARN trains no more after the warm-up) and
``--arn_refine`` (direct photometric alignment refines ARN's rotation before rectifying).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datasets.formats import denormalize_image
from geometry import euler2mat, mat2euler, refine_rotation, rotation_warp
from losses.rotation import (
    ROT_TRUST_RANGE,
    random_rotation_pair,
    rotation_consistency_loss,
    rotation_triplet_loss,
    select_rotation_target,
)
from models.rectify_net import RectifyNet
from options import TrainingOptions
from systems.v1 import SCDepthV1, StepContext

__all__ = ["RectifiedStepContext", "SCDepthV2"]


@dataclass
class RectifiedStepContext(StepContext):
    """V1's context (its ``refs`` are the references the V1 losses warped: the rectified
    ones, or the raw ones with ``--arn_owns_rotation``) plus, per reference: raw_refs (the
    references as loaded), rectified (``r'``), rot1 = ARN(tgt, r) and rot2 = ARN(tgt, r')
    ``[B,3]``, and rot_from_prediction (whether ARN's own rotation was the consistency
    label)."""

    raw_refs: list[Tensor] = field(default_factory=list)
    rectified: list[Tensor] = field(default_factory=list)
    rot1: list[Tensor] = field(default_factory=list)
    rot2: list[Tensor] = field(default_factory=list)
    rot_from_prediction: list[bool] = field(default_factory=list)


class SCDepthV2(SCDepthV1):
    """SC-Depth V2: V1 on references rectified by the auto-rectify network (ARN)."""

    def __init__(self, hparams: argparse.Namespace | Mapping[str, Any] | TrainingOptions
                 ) -> None:
        super().__init__(hparams)
        opts = self.opts
        # ARN is always a ResNet-18, so the file of --encoder_weights fits it only then.
        weights = opts.encoder_weights if opts.resnet_layers == 18 else None
        self.rectify_net = RectifyNet(not opts.no_pretrain, weights)
        self.loss_weights["rot_consistency_loss"] = opts.rot_c_weight
        self.loss_weights["rot_triplet_loss"] = opts.rot_t_weight
        self.loss_weights["rot_pose_loss"] = opts.arn_pose_weight
        # --arn_earned_labels: running mean of ARN's error on known rotations (radians);
        # None until the first known-rotation step. Kept in the checkpoint (not in the
        # state dict, whose keys are the published ones).
        self.arn_known_error: float | None = None

    def arn(self, img1: Tensor, img2: Tensor) -> Tensor:
        """ARN's rotation ``[B,3]`` (fp32) from img1 to img2, at the pose networks' precision
        (:meth:`pose_precision`); with ``--arn_border_crop`` both images lose that fraction
        of their height and width on each side first. The crop changes no angle: ARN's
        rotation is used with the full image's K."""
        crop = self.opts.arn_border_crop
        if crop > 0:
            H, W = img1.shape[-2:]
            dy, dx = round(crop * H), round(crop * W)
            img1, img2 = img1[..., dy:H - dy, dx:W - dx], img2[..., dy:H - dy, dx:W - dx]
        with self.pose_precision():
            return self.rectify_net(img1, img2).float()

    def _track_known_error(self, error: Tensor) -> None:
        """Fold one step's ``mean|rot3 − rot3_gt|`` on known rotations into the running mean
        that ``--arn_earned_labels`` reads (exponential, about the last 10 steps)."""
        value = float(error.detach())
        previous = self.arn_known_error
        self.arn_known_error = value if previous is None else 0.9 * previous + 0.1 * value

    def labels_earned(self) -> bool:
        """May ARN's own rotation be its label? Always in the paper; with
        ``--arn_earned_labels`` only once its running error on known rotations is below it."""
        threshold = self.opts.arn_earned_labels
        if threshold is None:
            return True
        return self.arn_known_error is not None and self.arn_known_error < threshold

    def arn_frozen(self) -> bool:
        """Is ARN fixed now? Only with ``--arn_frozen``, once the warm-up is over."""
        return self.opts.arn_frozen and self.global_step >= self.opts.arn_warmup_steps

    def rectify(self, tgt: Tensor, refs: list[Tensor], K: Tensor
                ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Remove the rotation between the target and each reference.

        tgt: ``[B,3,H,W]``; refs: list of ``[B,3,H,W]``; K: ``[B,3,3]``.
        Returns ``(rectified r' per ref, rot1 = ARN(tgt, r) [B,3] per ref,
        rot2 = ARN(tgt, r') [B,3] per ref)``; with ``--arn_refine`` rot1 is ARN's rotation
        refined by direct alignment (:func:`geometry.direct_alignment.refine_rotation`).
        """
        B, n = tgt.shape[0], len(refs)
        # All references in one ARN call (as V1 batches its depth and pose forwards).
        tgts, raw, Ks = torch.cat([tgt] * n), torch.cat(refs), torch.cat([K] * n)
        rot1 = self.arn(tgts, raw)
        with self.full_precision():
            if self.opts.arn_refine:
                # Straight-through: the refined rotation rectifies, ARN's gradient (if it
                # trains) is that of its own output.
                rot1 = rot1 + (refine_rotation(tgts, raw, rot1.detach(), Ks) - rot1.detach())
            rectified = rotation_warp(raw, rot1, Ks)
        rot2 = self.arn(tgts, rectified)
        return list(rectified.split(B)), list(rot1.split(B)), list(rot2.split(B))

    def loss_terms(self, batch: Mapping[str, Any]
                   ) -> tuple[dict[str, Tensor], RectifiedStepContext]:
        """V1's terms on the rectified references plus ARN's two losses (averaged over refs).

        Photo-mode validation calls this too, so it rectifies exactly as training does.
        """
        tgt, refs, K = batch["tgt"], list(batch["refs"]), batch["K"]
        if self.arn_frozen():
            with torch.no_grad():
                rectified, rot1s, rot2s = self.rectify(tgt, refs, K)
            arn_terms, used = {}, [False] * len(refs)
        else:
            rectified, rot1s, rot2s = self.rectify(tgt, refs, K)
            arn_terms, used = self.arn_terms(tgt, refs, rectified, rot1s, rot2s, K)

        if self.opts.arn_owns_rotation:
            terms, base = self.owned_rotation_terms(tgt, refs, rectified, rot1s, K)
        else:
            # V1 on the rectified pairs: depth and pose of r', not of r.
            terms, base = super().loss_terms({**batch, "refs": rectified})
            if self.opts.arn_pose_weight > 0:
                terms["rot_pose_loss"] = self.pose_rotation_loss(rot1s, base.poses)
        terms.update(arn_terms)
        context = RectifiedStepContext.extending(base, raw_refs=refs, rectified=rectified,
                                                 rot1=rot1s, rot2=rot2s,
                                                 rot_from_prediction=used)
        # rot_before = mean|rot1|, rot_after = mean|rot2| (radians): ARN works when the
        # second is clearly below the first; and how often ARN's own rotation was the label
        device = rot1s[0].device
        context.logs.update({
            "rot_before": torch.stack([r.detach().abs().mean() for r in rot1s]).mean(),
            "rot_after": torch.stack([r.detach().abs().mean() for r in rot2s]).mean(),
            "rot_label_from_prediction": torch.tensor(float(np.mean(used)), device=device),
        })
        if self.arn_known_error is not None:  # what --arn_earned_labels compares
            context.logs["arn_known_error"] = torch.tensor(self.arn_known_error, device=device)
        return terms, context

    def arn_terms(self, tgt: Tensor, refs: list[Tensor], rectified: list[Tensor],
                  rot1s: list[Tensor], rot2s: list[Tensor], K: Tensor
                  ) -> tuple[dict[str, Tensor], list[bool]]:
        """ARN's two losses (averaged over the references) and, per reference, whether
        ARN's own rotation was the consistency label. Shapes as in :meth:`rectify`."""
        # ARN's self-supervision, decided for each reference.
        trust = ROT_TRUST_RANGE if self.labels_earned() else None
        with self.full_precision():
            labels = [select_rotation_target(rot1, ref, ref_rect, K, trust_range=trust,
                                             max_random=self.opts.arn_label_range)
                      for ref, ref_rect, rot1 in zip(refs, rectified, rot1s)]
        rot3s = self.arn(torch.cat([w for _, w, _ in labels]), torch.cat(refs)
                         ).split(tgt.shape[0])
        used = [u for _, _, u in labels]
        with self.full_precision():
            errors = [rotation_consistency_loss(rot3, rot3_gt)
                      for rot3, (rot3_gt, _, _) in zip(rot3s, labels)]
            consistency = torch.stack(errors).mean()
            triplet = torch.stack([rotation_triplet_loss(rot1, rot2)
                                   for rot1, rot2 in zip(rot1s, rot2s)]).mean()
        known = [e for e, u in zip(errors, used) if not u]
        if self.training and known and self.opts.arn_earned_labels is not None:
            self._track_known_error(torch.stack(known).mean())
        return {"rot_consistency_loss": consistency, "rot_triplet_loss": triplet}, used

    def pose_rotation_loss(self, rot1s: list[Tensor], poses: list[Tensor]) -> Tensor:
        """``--arn_pose_weight``: mean ``|rot1 − mat2euler(R1 · R_p)|`` over the references,
        the label detached. ``R_p`` is the rotation of PoseNet's ``r'_T_tgt`` ``[B,3,4]`` on
        the rectified pair; with ``X_r = R1 · X_r'`` the whole pose's rotation is
        ``R1 · R_p``. Where PoseNet finds no rotation left the label is ``rot1`` and the
        loss has no gradient; where it finds some, ARN is pulled to take it over."""
        with self.full_precision():
            errors = []
            for rot1, pose in zip(rot1s, poses):
                R_p = pose[..., :3].detach().to(rot1.dtype)
                label = mat2euler(euler2mat(rot1.detach()) @ R_p)
                errors.append((rot1 - label).abs().mean())
            return torch.stack(errors).mean()

    def owned_rotation_terms(self, tgt: Tensor, refs: list[Tensor], rectified: list[Tensor],
                             rot1s: list[Tensor], K: Tensor
                             ) -> tuple[dict[str, Tensor], StepContext]:
        """V1's terms on the raw references, warped with ARN's rotation and PoseNet's
        translation (``--arn_owns_rotation``).

        PoseNet sees ``(tgt, r')`` with ``r'`` rectified by the detached ``rot1``, and only
        its translation is kept: ``c'_T_tgt = [I | t]`` and ``tgt_T_c' = [I | t_inv]``. With
        ``X_r = R1 · X_c'`` (``R1 = euler2mat(rot1)``, what ``rotation_warp`` applies):
        ``ref_T_tgt = [R1 | R1 · t]`` and ``tgt_T_ref = [R1ᵀ | t_inv]``. The rotation of every
        warp is ARN's, so the photometric loss trains ARN on the real pairs and no PoseNet
        rotation can make up for ARN's error.
        """
        tgt_depth, ref_depths = self.predict_depths(tgt, refs)
        poses_c, poses_c_inv = self.predict_poses(tgt, [r.detach() for r in rectified])
        poses, poses_inv = [], []
        with self.full_precision():
            for rot1, pose_c, pose_c_inv in zip(rot1s, poses_c, poses_c_inv):
                R1 = euler2mat(rot1)
                t, t_inv = pose_c[..., 3:].float(), pose_c_inv[..., 3:].float()
                poses.append(torch.cat([R1, R1 @ t], dim=-1))
                poses_inv.append(torch.cat([R1.transpose(-1, -2), t_inv], dim=-1))
        return self.photometric_terms(tgt, refs, K, tgt_depth, ref_depths, poses, poses_inv)

    @torch.no_grad()
    def relative_pose(self, tgt: Tensor, ref: Tensor, K: Tensor | None = None) -> Tensor:
        """``ref_T_tgt`` ``[B,3,4]`` (float64): the camera motion V2 predicts, ARN's rotation
        composed with PoseNet's pose on the rectified pair (PoseNet never sees a raw pair in
        training). With ``X_r = R1 · X_r'`` (``R1 = euler2mat(rot1)``) and PoseNet's
        ``r'_T_tgt = [R_p | t_p]``: ``ref_T_tgt = [R1 · R_p | R1 · t_p]``; with
        ``--arn_owns_rotation`` the warps take no ``R_p``, so neither does this. The rotation
        warp needs the intrinsics K ``[B,3,3]`` at the input size."""
        if K is None:
            raise ValueError("V2 poses need K: ARN's rotation warps the reference")
        (rectified,), (rot1,), _ = self.rectify(tgt, [ref], K)
        pose_c = super().relative_pose(tgt, rectified)
        R1 = euler2mat(rot1.double())
        R = R1 if self.opts.arn_owns_rotation else R1 @ pose_c[..., :3]
        return torch.cat([R, R1 @ pose_c[..., 3:]], dim=-1)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        """V1's step, or during ``--arn_warmup_steps`` ARN alone on known rotations."""
        if self.global_step < self.opts.arn_warmup_steps:
            return self.warmup_step(batch)
        if self.arn_frozen():
            # BatchNorm too keeps the statistics ARN was trained with (Lightning puts the
            # whole model back in training mode after each validation).
            self.rectify_net.eval()
        return super().training_step(batch, batch_idx)

    def warmup_step(self, batch: Mapping[str, Any]) -> Tensor:
        """ARN regresses known random rotations (``±--arn_label_range``) of every reference;
        DepthNet and PoseNet get no gradient (Adam leaves parameters without one as they
        are)."""
        refs = torch.cat(list(batch["refs"]))
        K = batch["K"].repeat(len(batch["refs"]), 1, 1)
        with self.full_precision():
            rot_gt, w = random_rotation_pair(refs, K, self.opts.arn_label_range)
        rot3 = self.arn(w, refs)
        with self.full_precision():
            error = rotation_consistency_loss(rot3, rot_gt)
        self.check_finite({"rot_consistency_loss": error})
        if self.opts.arn_earned_labels is not None:
            self._track_known_error(error)
        loss = self.loss_weights["rot_consistency_loss"] * error
        self.log_step(loss, {"rot_consistency_loss": error}, batch["tgt"].shape[0])
        return loss

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.arn_known_error is not None:
            checkpoint["arn_known_error"] = self.arn_known_error

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.arn_known_error = checkpoint.get("arn_known_error")

    def log_train_images(self, batch: Mapping[str, Any], context: RectifiedStepContext
                         ) -> None:
        """V1's input/depth pair, and target | reference | rectified reference (first ref)."""
        super().log_train_images(batch, context)
        tb = self._tensorboard()
        if tb is None or self.global_rank != 0:
            return
        strip = np.concatenate([denormalize_image(batch["tgt"][0]),
                                denormalize_image(context.raw_refs[0][0]),
                                denormalize_image(context.rectified[0][0])], axis=1)
        tb.add_image("train/target_reference_rectified", strip, self.global_step,
                     dataformats="HWC")
