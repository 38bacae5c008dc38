"""V1 photometric and geometry-consistency losses (docs/method.md, V1).

For every reference frame and both directions (t→r with ``ref_T_tgt``, r→t with
``tgt_T_ref`` and the roles of the two frames swapped) the source image is inverse-warped
into the "target" view; per pixel, the photometric error (0.15·L1 + 0.85·dSSIM), the depth
inconsistency ``D_diff`` and a validity mask are computed; the best view per pixel (lowest
colour error) is kept and averaged over the valid pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from geometry import inverse_warp

__all__ = ["SSIM", "PairErrors", "PhotoGeometryLoss", "PhotoGeometryOutput", "masked_mean"]


@dataclass
class PairErrors:
    """Per-pixel maps ``[B,1,H,W]`` of one warp direction (source warped into the target).

    photo: photometric error (weighted by the detached ``1 − D_diff`` unless
    ``no_dynamic_mask``); color_diff: ``mean_c |I_t − I_w|``; depth_diff: ``D_diff`` in
    [0, 1]; valid: float {0,1}, inside the image, non-zero warped and target pixels,
    auto-masked unless ``no_auto_mask``.
    """

    photo: torch.Tensor
    color_diff: torch.Tensor
    depth_diff: torch.Tensor
    valid: torch.Tensor


@dataclass
class PhotoGeometryOutput:
    """What :class:`PhotoGeometryLoss` returns.

    photo_loss, geometry_loss: the two scalar losses; pairs_tr: the t→r errors of each
    reference (V3 builds its dynamic-region confidence from them; not detached);
    photo_map, valid_map: the per-pixel photometric error and validity the losses averaged
    (detached; ``[B,1,H,W]``, or ``[B,2N,H,W]`` with ``no_min_optimize``); logs: detached
    scalars to log (``valid_fraction``).
    """

    photo_loss: torch.Tensor
    geometry_loss: torch.Tensor
    pairs_tr: list[PairErrors]
    photo_map: torch.Tensor
    valid_map: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, min_count: int = 100) -> torch.Tensor:
    """Mean of ``x`` over the pixels where ``mask`` is 1; 0 when fewer than ``min_count`` are.

    x, mask: ``[B,1,H,W]`` (any equal shapes). Returns a scalar. The zero of the degenerate
    case stays attached to the graph (so ``backward()`` still works, with zero gradients) and
    the choice is made on the device, without a host synchronisation. Masked-out values never
    reach the result, even when they are not finite.
    """
    mask = mask.to(x.dtype)
    count = mask.sum()
    total = torch.where(mask > 0, x, torch.zeros_like(x)).sum()
    return torch.where(count >= min_count, total / count.clamp(min=1.0), total * 0.0)


class SSIM(nn.Module):
    """Structural dissimilarity with a ``window``×``window`` mean filter on reflection-padded input.

    forward(x ``[B,C,H,W]``, y ``[B,C,H,W]``) -> dssim ``[B,C,H,W]`` = clamp((1 − SSIM)/2, 0, 1).

    ``fused`` (the default) computes the five local moments with one separable mean filter
    (a ``window``×1 then a 1×``window`` average pool: 2·window reads per pixel instead of
    window², the same mean up to float rounding) over the moments stacked along the channels
    and laid out channels_last: several times faster on the CPU than one 7×7 pool per
    moment in NCHW (docs/performance.md). ``fused=False`` is the public code's form: five separate
    ``window``×``window`` pools on NCHW tensors (the reference that benchmarks and tests
    compare against).
    """

    def __init__(
        self, window: int = 7, C1: float = 0.01**2, C2: float = 0.03**2, fused: bool = True
    ) -> None:
        super().__init__()
        self.window = window
        self.C1 = C1
        self.C2 = C2
        self.fused = fused
        self.pad = nn.ReflectionPad2d(window // 2)

    def local_means(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Padded x, y ``[B,C,H+w-1,W+w-1]`` -> mean of x, y, x², y², xy over each window,
        each ``[B,C,H,W]``."""
        moments = (x, y, x * x, y * y, x * y)
        if not self.fused:
            return tuple(F.avg_pool2d(m, self.window, stride=1) for m in moments)
        stats = torch.cat(moments, dim=1).contiguous(memory_format=torch.channels_last)
        stats = F.avg_pool2d(stats, (self.window, 1), stride=1)
        stats = F.avg_pool2d(stats, (1, self.window), stride=1)
        return stats.split(x.shape[1], dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mu_x, mu_y, e_xx, e_yy, e_xy = self.local_means(self.pad(x), self.pad(y))
        sigma_x = e_xx - mu_x * mu_x
        sigma_y = e_yy - mu_y * mu_y
        sigma_xy = e_xy - mu_x * mu_y
        num = (2 * mu_x * mu_y + self.C1) * (2 * sigma_xy + self.C2)
        den = (mu_x * mu_x + mu_y * mu_y + self.C1) * (sigma_x + sigma_y + self.C2)
        return torch.clamp((1 - num / den) / 2, 0, 1)


class PhotoGeometryLoss(nn.Module):
    """Photometric + geometry-consistency loss of SC-Depth V1 with its masks.

    The flags mirror the command-line ablations (``--no_ssim``, ``--no_auto_mask``,
    ``--no_dynamic_mask``, ``--no_min_optimize``).
    """

    def __init__(
        self,
        no_ssim: bool = False,
        no_auto_mask: bool = False,
        no_dynamic_mask: bool = False,
        no_min_optimize: bool = False,
        min_valid_pixels: int = 100,
        fused_ssim: bool = True,
    ) -> None:
        super().__init__()
        self.no_ssim = no_ssim
        self.no_auto_mask = no_auto_mask
        self.no_dynamic_mask = no_dynamic_mask
        self.no_min_optimize = no_min_optimize
        self.min_valid_pixels = min_valid_pixels
        self.ssim = SSIM(fused=fused_ssim)

    def pairwise(
        self,
        tgt_img: torch.Tensor,
        ref_img: torch.Tensor,
        tgt_depth: torch.Tensor,
        ref_depth: torch.Tensor,
        ref_T_tgt: torch.Tensor,
        K: torch.Tensor,
    ) -> PairErrors:
        """Per-pixel errors of one direction: ``ref_img`` warped into the ``tgt_img`` view.

        tgt_img, ref_img: ``[B,3,H,W]``; tgt_depth, ref_depth: ``[B,1,H,W]``;
        ref_T_tgt: ``[B,3,4]``; K: ``[B,3,3]``.
        """
        warped, inside, projected_depth, computed_depth = inverse_warp(
            ref_img, tgt_depth, ref_depth, ref_T_tgt, K
        )
        abs_diff = (tgt_img - warped).abs()
        color_diff = abs_diff.mean(dim=1, keepdim=True)
        l1 = abs_diff.clamp(0, 1)
        if self.no_ssim:
            photo = l1.mean(dim=1, keepdim=True)
        else:
            photo = (0.15 * l1 + 0.85 * self.ssim(tgt_img, warped)).mean(dim=1, keepdim=True)

        # computed_depth ≥ eps and projected_depth ≥ 0, so the ratio lies in [0, 1]; the
        # clamp only guards against a zero denominator.
        depth_diff = (computed_depth - projected_depth).abs() / (
            computed_depth + projected_depth
        ).clamp(min=1e-7)
        depth_diff = depth_diff.clamp(0, 1)

        if not self.no_dynamic_mask:
            # Self-discovered mask: down-weight pixels whose depths disagree (moving objects,
            # occlusions). Detached so that it weights the photometric error without becoming
            # a way to lower it.
            photo = photo * (1 - depth_diff).detach()

        # Zero padding (and black borders) read as "no data": such pixels are not compared.
        valid = (
            (inside > 0)
            & (warped.abs().mean(dim=1, keepdim=True) > 1e-3)
            & (tgt_img.abs().mean(dim=1, keepdim=True) > 1e-3)
        )
        if not self.no_auto_mask:
            # Keep only pixels that warping explains better than not moving at all: this drops
            # a static camera and objects moving with the camera.
            identity_diff = (tgt_img - ref_img).abs().mean(dim=1, keepdim=True)
            valid = valid & (color_diff < identity_diff)

        return PairErrors(photo, color_diff, depth_diff, valid.to(photo.dtype))

    def forward(
        self,
        tgt_img: torch.Tensor,
        ref_imgs: list[torch.Tensor],
        tgt_depth: torch.Tensor,
        ref_depths: list[torch.Tensor],
        poses: list[torch.Tensor],
        poses_inv: list[torch.Tensor],
        K: torch.Tensor,
    ) -> PhotoGeometryOutput:
        """Photometric and geometry losses of a target frame against its references.

        tgt_img: ``[B,3,H,W]``; ref_imgs: list of N ``[B,3,H,W]``; tgt_depth: ``[B,1,H,W]``;
        ref_depths: list of N ``[B,1,H,W]``; poses: list of N ``ref_T_tgt`` ``[B,3,4]``;
        poses_inv: list of N ``tgt_T_ref`` ``[B,3,4]``; K: ``[B,3,3]``.
        """
        pairs_tr, pairs = [], []
        for ref_img, ref_depth, ref_T_tgt, tgt_T_ref in zip(ref_imgs, ref_depths, poses, poses_inv):
            pair_tr = self.pairwise(tgt_img, ref_img, tgt_depth, ref_depth, ref_T_tgt, K)
            pair_rt = self.pairwise(ref_img, tgt_img, ref_depth, tgt_depth, tgt_T_ref, K)
            pairs_tr.append(pair_tr)
            pairs += [pair_tr, pair_rt]

        # Candidates along dim 1: [B,2N,H,W] each.
        photo = torch.cat([p.photo for p in pairs], dim=1)
        depth_diff = torch.cat([p.depth_diff for p in pairs], dim=1)
        valid = torch.cat([p.valid for p in pairs], dim=1)
        if not self.no_min_optimize:
            # Best view per pixel (as the papers): the candidate with the lowest colour
            # error, with ITS photometric error, D_diff and validity. Occlusions and
            # out-of-view regions are usually explained well in at least one view; when the
            # best-looking view is invalid (e.g. auto-masked) the pixel is dropped, not
            # replaced by a worse view.
            color_diff = torch.cat([p.color_diff for p in pairs], dim=1)
            index = color_diff.argmin(dim=1, keepdim=True)
            photo = photo.gather(1, index)
            depth_diff = depth_diff.gather(1, index)
            valid = valid.gather(1, index)

        return PhotoGeometryOutput(
            photo_loss=masked_mean(photo, valid, self.min_valid_pixels),
            geometry_loss=masked_mean(depth_diff, valid, self.min_valid_pixels),
            pairs_tr=pairs_tr,
            photo_map=photo.detach(),
            valid_map=valid.detach(),
            logs={"valid_fraction": valid.detach().mean()},
        )
