"""SC-Depth V3: self-supervised depth in dynamic scenes with a single-image depth prior
(arXiv 2211.03660; docs/method.md).

V1's photometric and geometry losses fail on moving objects: the self-discovered mask
(1 − D_diff) only removes them from the photometric loss, so nothing supervises their depth,
and smoothness blurs every boundary. V3 takes the missing signal from a relative depth map
per training image (``leres_depth/``, e.g. LeReS or DPT), known only up to scale, and uses
only what survives an unknown scale:

1. **normal matching** ``mean|n(D_pred) − n(D_prior)|`` — surface normals are
   scale-invariant and carry the prior's geometric detail (and replace V1's smoothness);
2. **dynamic-region confidence** — for each reference, ``1 − D_diff`` of the t→r warp (1 where
   the warp cannot check the pixel), averaged over references: low where the scene moved;
3. **mask ranking** — the 20 % least confident pixels (the moving objects) are paired with
   reliable ones, plus global random pairs; the prediction must order each pair as the prior
   does (ratio > 1.15): the prior tells whether a car is in front of the road even when the
   warps cannot;
4. **edge-guided normal ranking** — pairs of points on both sides of image and normal edges;
   the predicted normals must be as similar (``|n_A·n_B|``) as the prior's: sharp boundaries.

Total: ``photo + 0.1·geometry + 0.1·normal_matching + 0.1·mask_rank + 0.1·normal_rank``;
no smoothness term.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datasets.formats import denormalize_image
from losses.normals import normal_matching_loss
from losses.ranking import MaskRankingLoss, NormalRankingLoss, dynamic_confidence
from options import TrainingOptions
from systems.v1 import SCDepthV1, StepContext
from utils.visualization import colorize_depth

__all__ = ["PriorStepContext", "SCDepthV3"]

# Seeds for the per-step generator are drawn below 2**63 (torch.Generator.manual_seed's range).
_SEED_BOUND = 2**62


@dataclass
class PriorStepContext(StepContext):
    """V1's context plus the detached dynamic-region confidence ``[B,1,H,W]``."""

    confidence: Tensor | None = None


class SCDepthV3(SCDepthV1):
    """SC-Depth V3: V1's photometric + geometry losses plus the three prior losses.

    The batch must hold ``tgt_prior`` ``[B,1,H,W]`` (relative depth, larger = farther, any
    scale; ``VideoDataModule`` loads it for ``model_version v3``) and ``K_inv`` ``[B,3,3]``.
    The networks are V1's: the state dict has exactly V1's keys, so V1 checkpoints load.
    """

    def __init__(self, hparams: argparse.Namespace | Mapping[str, Any] | TrainingOptions
                 ) -> None:
        super().__init__(hparams)
        opts = self.opts
        # The normals of the prior take the role of the smoothness prior (V3 §3.3).
        self.loss_weights.pop("smooth_loss", None)
        self.loss_weights["normal_matching_loss"] = opts.normal_matching_weight
        self.loss_weights["mask_rank_loss"] = opts.mask_rank_weight
        self.loss_weights["normal_rank_loss"] = opts.normal_rank_weight
        self.mask_ranking_loss = MaskRankingLoss(normalize=opts.rank_normalize,
                                                 global_pairs=opts.mask_rank_global_pairs)
        self.normal_ranking_loss = NormalRankingLoss(sampling=opts.normal_rank_sampling)
        # Confidence of pixels no warp can check: 1 (public code) or 0.
        self.unchecked_confidence = 0.0 if opts.unchecked_unreliable else 1.0

    def step_generator(self, device: torch.device) -> torch.Generator:
        """A fresh generator for the ranking losses' pair sampling, seeded from the global
        (CPU) torch RNG.

        ``--seed`` seeds the global RNG, so the pairs are repeatable on any device, and the
        sampling runs on the data's device without drawing from (and so shifting) that
        device's own RNG stream.
        """
        seed = int(torch.randint(0, _SEED_BOUND, (1,)).item())
        return torch.Generator(device=device).manual_seed(seed)

    def loss_terms(self, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], PriorStepContext]:
        """V1's photo and geometry terms (no smoothness) and the three V3 terms."""
        if "tgt_prior" not in batch:
            raise KeyError("SC-Depth V3 needs the depth prior batch['tgt_prior'] "
                           "(leres_depth/*.png; load the data with model_version v3)")
        terms, base = super().loss_terms(batch)
        pairs = base.photo.pairs_tr
        confidence = dynamic_confidence([p.depth_diff for p in pairs], [p.valid for p in pairs],
                                        self.unchecked_confidence)
        tgt_depth = base.tgt_depth
        generator = self.step_generator(tgt_depth.device)
        # Normals (cross products, normalisation) and ratios are computed in float32 even
        # under mixed precision: bf16's 8-bit mantissa cannot resolve neighbouring points.
        with torch.autocast(tgt_depth.device.type, enabled=False):
            depth = tgt_depth.float()
            prior = batch["tgt_prior"].float()
            K_inv = batch["K_inv"].float()
            image = batch["tgt"].float()
            terms["normal_matching_loss"] = normal_matching_loss(depth, prior, K_inv)
            ranking = self.mask_ranking_loss(depth, prior, confidence.float(), generator)
            terms["mask_rank_loss"] = ranking.loss
            terms["normal_rank_loss"] = self.normal_ranking_loss(
                depth, prior, image, K_inv, generator)
        context = PriorStepContext.extending(base, confidence=confidence)
        # how much of the image the warps can vouch for
        context.logs["confidence_mean"] = confidence.mean()
        if "tgt_dynamic" in batch and ranking.unreliable.numel() > 0:
            # Does the ranking look at the moving objects? The share of moving-object pixels
            # among the unreliable ones, against their share of the image (chance level).
            dynamic = batch["tgt_dynamic"].reshape(tgt_depth.shape[0], -1) > 0.5
            picked = dynamic.gather(1, ranking.unreliable)
            context.logs["unreliable_dynamic_share"] = picked.float().mean()
            context.logs["dynamic_fraction"] = dynamic.float().mean()
        return terms, context

    def log_train_images(self, batch: Mapping[str, Any], context: PriorStepContext) -> None:
        """V1's input/depth pair, and target | prior | confidence (first sample)."""
        super().log_train_images(batch, context)
        tb = self._tensorboard()
        if tb is None or self.global_rank != 0:
            return
        confidence = (context.confidence[0, 0].float().cpu().numpy() * 255).astype(np.uint8)
        strip = np.concatenate([denormalize_image(batch["tgt"][0]),
                                colorize_depth(batch["tgt_prior"][0]),
                                np.repeat(confidence[:, :, None], 3, axis=2)], axis=1)
        tb.add_image("train/target_prior_confidence", strip, self.global_step,
                     dataformats="HWC")
