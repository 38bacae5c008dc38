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
from geometry import rotation_warp
from losses.rotation import (
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
    """V1's context (its ``refs`` are the rectified references) plus, per reference:
    raw_refs (the references as loaded), rot1 = ARN(tgt, r) and rot2 = ARN(tgt, r') ``[B,3]``,
    and rot_from_prediction (whether ARN's own rotation was the consistency label)."""

    raw_refs: list[Tensor] = field(default_factory=list)
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

    def arn(self, img1: Tensor, img2: Tensor) -> Tensor:
        """ARN's rotation ``[B,3]`` (fp32) from img1 to img2, at the pose networks' precision
        (:meth:`pose_precision`)."""
        with self.pose_precision():
            return self.rectify_net(img1, img2).float()

    def rectify(self, tgt: Tensor, refs: list[Tensor], K: Tensor
                ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Remove the rotation between the target and each reference.

        tgt: ``[B,3,H,W]``; refs: list of ``[B,3,H,W]``; K: ``[B,3,3]``.
        Returns ``(rectified r' per ref, rot1 = ARN(tgt, r) [B,3] per ref,
        rot2 = ARN(tgt, r') [B,3] per ref)``.
        """
        B, n = tgt.shape[0], len(refs)
        # All references in one ARN call (as V1 batches its depth and pose forwards).
        tgts, raw, Ks = torch.cat([tgt] * n), torch.cat(refs), torch.cat([K] * n)
        rot1 = self.arn(tgts, raw)
        with self.full_precision():
            rectified = rotation_warp(raw, rot1, Ks)
        rot2 = self.arn(tgts, rectified)
        return list(rectified.split(B)), list(rot1.split(B)), list(rot2.split(B))

    def loss_terms(self, batch: Mapping[str, Any]
                   ) -> tuple[dict[str, Tensor], RectifiedStepContext]:
        """V1's terms on the rectified references plus ARN's two losses (averaged over refs).

        Photo-mode validation calls this too, so it rectifies exactly as training does.
        """
        tgt, refs, K = batch["tgt"], list(batch["refs"]), batch["K"]
        rectified, rot1s, rot2s = self.rectify(tgt, refs, K)

        # ARN's self-supervision, decided for each reference.
        with self.full_precision():
            labels = [select_rotation_target(rot1, ref, ref_rect, K)
                      for ref, ref_rect, rot1 in zip(refs, rectified, rot1s)]
        rot3s = self.arn(torch.cat([w for _, w, _ in labels]), torch.cat(refs)
                         ).split(tgt.shape[0])
        with self.full_precision():
            consistency = torch.stack([rotation_consistency_loss(rot3, rot3_gt)
                                       for rot3, (rot3_gt, _, _) in zip(rot3s, labels)]).mean()
            triplet = torch.stack([rotation_triplet_loss(rot1, rot2)
                                   for rot1, rot2 in zip(rot1s, rot2s)]).mean()

        # V1 on the rectified pairs: depth and pose of r', not of r.
        terms, base = super().loss_terms({**batch, "refs": rectified})
        terms["rot_consistency_loss"] = consistency
        terms["rot_triplet_loss"] = triplet
        used = [u for _, _, u in labels]
        context = RectifiedStepContext.extending(base, raw_refs=refs, rot1=rot1s, rot2=rot2s,
                                                 rot_from_prediction=used)
        # rot_before = mean|rot1|, rot_after = mean|rot2| (radians): ARN works when the
        # second is clearly below the first; and how often ARN's own rotation was the label
        device = rot1s[0].device
        context.logs.update({
            "rot_before": torch.stack([r.detach().abs().mean() for r in rot1s]).mean(),
            "rot_after": torch.stack([r.detach().abs().mean() for r in rot2s]).mean(),
            "rot_label_from_prediction": torch.tensor(float(np.mean(used)), device=device),
        })
        return terms, context

    def log_train_images(self, batch: Mapping[str, Any], context: RectifiedStepContext
                         ) -> None:
        """V1's input/depth pair, and target | reference | rectified reference (first ref)."""
        super().log_train_images(batch, context)
        tb = self._tensorboard()
        if tb is None or self.global_rank != 0:
            return
        strip = np.concatenate([denormalize_image(batch["tgt"][0]),
                                denormalize_image(context.raw_refs[0][0]),
                                denormalize_image(context.refs[0][0])], axis=1)
        tb.add_image("train/target_reference_rectified", strip, self.global_step,
                     dataformats="HWC")
