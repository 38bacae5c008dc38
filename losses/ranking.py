"""V3 ranking losses on a single-image depth prior (docs/method.md, V3).

- :func:`dynamic_confidence`: per-pixel confidence that a pixel is static, from the
  depth inconsistency of the t→r warps (pixels no warp can check get 1, as the public code).
- :class:`MaskRankingLoss`: ordinal (farther/nearer) pairs between unreliable (likely
  dynamic) pixels and reliable ones, plus global random pairs, with targets from the prior.
- :class:`NormalRankingLoss`: edge-guided pairs across image and normal edges; the predicted
  normals must agree with the prior's on how similar the two sides of an edge are.

Both losses sample as the method describes by default and can sample as the public code
does instead (``global_pairs="raster"``, ``sampling="public"``); docs/method.md gives the
differences and their measured effect.

Everything is batched: the per-image sampling is done with per-row sorts, ``topk`` and
``gather`` on ``[B, N]`` tensors (no Python loop over images and no host synchronisation).
Random draws use an optional ``torch.Generator`` (on any device; the numbers are moved to the
data's device) so that tests can make the sampling deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from geometry import depth_to_normals

__all__ = [
    "MaskRankingLoss",
    "MaskRankingOutput",
    "NormalRankingLoss",
    "dynamic_confidence",
    "ranking_targets",
]


def _rand(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, returned on ``like``'s."""
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=device).to(like.device)


def _randint(
    low: int,
    high: int,
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """Integers in [low, high) drawn on the generator's device, returned on ``like``'s."""
    device = generator.device if generator is not None else like.device
    return torch.randint(low, high, shape, generator=generator, device=device).to(like.device)


def dynamic_confidence(
    depth_diffs: list[torch.Tensor], valids: list[torch.Tensor], unchecked: float = 1.0
) -> torch.Tensor:
    """Mean over references of ``1 − D_diff`` (t→r direction); ``unchecked`` where the warp
    cannot check the pixel.

    depth_diffs: list of ``[B,1,H,W]`` in [0, 1]; valids: list of ``[B,1,H,W]`` ({0,1} float
    or bool), one per reference. Returns ``[B,1,H,W]`` in [0, 1], detached (it only selects
    pixels, it is not a training signal).

    A pixel that a reference cannot check (it leaves the view, lands on zero padding or is
    auto-masked) gets confidence ``unchecked`` from that reference: 1 by default, as the
    public code does, so that what no warp can judge is not taken for a moving object.
    ``unchecked=0`` (``--unchecked_unreliable``) ranks those pixels as the least reliable:
    under forward motion these are the bottom rows, which leave the view, and the mask
    ranking then treats the road as a moving object (docs/method.md).
    """
    if len(depth_diffs) != len(valids) or not depth_diffs:
        raise ValueError(
            f"need one valid mask per depth_diff and at least one reference, "
            f"got {len(depth_diffs)} depth_diffs and {len(valids)} valids"
        )
    conf = [
        torch.where(valid > 0, 1 - diff, torch.full_like(diff, unchecked))
        for diff, valid in zip(depth_diffs, valids)
    ]
    return torch.stack(conf).mean(dim=0).detach()


def ranking_targets(
    zA: torch.Tensor, zB: torch.Tensor, ratio: float = 1.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordinal targets of point pairs from their prior depths.

    zA, zB: prior depths of the pair's two points (any equal shapes). Returns
    ``(target, keep)`` of that shape: target = +1 where ``zA/zB > ratio`` (A farther),
    −1 where ``zB/zA > ratio``, 0 otherwise; keep is True only where the target is ±1 and
    **both** depths are valid (> 0) (**fix**: the public code combines them with ``|``).
    The ratios are compared as products, so an invalid 0 never divides.
    """
    valid = (zA > 0) & (zB > 0)
    farther = valid & (zA > ratio * zB)
    nearer = valid & (zB > ratio * zA)
    target = farther.to(zA.dtype) - nearer.to(zA.dtype)
    return target, farther | nearer


@dataclass
class MaskRankingOutput:
    """What :class:`MaskRankingLoss` returns.

    loss: the scalar ranking loss; unreliable: ``[B,k]`` flat pixel indices of the pixels it
    took as unreliable (the lowest confidence), for diagnostics such as how many of them lie
    on moving objects.
    """

    loss: torch.Tensor
    unreliable: torch.Tensor


class MaskRankingLoss(nn.Module):
    """Mask ranking loss of SC-DepthV3 (weight ``--mask_rank_weight``).

    Per image, the ``unreliable_fraction`` of pixels with the lowest confidence are paired
    each with a random reliable pixel (one of the others), and ``global_fraction`` of the
    pixels are paired at random. The pair's order comes from the prior
    (:func:`ranking_targets`) and the predicted depths must follow it:
    ``softplus(−target · (dA − dB))``, averaged over the kept pairs of the whole batch.

    ``global_pairs`` says how the global pairs are drawn: ``"spread"`` (the default) draws
    the pixels at random per image and pairs them by a random permutation, so a pair joins
    any two points of the image; ``"raster"`` is the public code's form: two random sets of
    pixels, the same for every image of the batch, each in raster order, the k-th of one
    paired with the k-th of the other, so nearly every pair joins two points of about the
    same row.

    ``normalize=True`` ranks ``d / mean(d)`` per image instead of ``d`` (our option, off by
    default as in the paper). On raw depths the loss is not scale-invariant: a
    self-supervised network's depth unit is arbitrary (set by its initialisation), and where
    that unit makes depth differences small the ordered pairs never saturate, so the loss
    keeps pushing the depth range apart (docs/method.md). On depth divided by its
    (differentiable) image mean, a uniform rescaling of the prediction changes nothing and
    gets no gradient.
    """

    GLOBAL_PAIRS = ("spread", "raster")

    def __init__(
        self,
        unreliable_fraction: float = 0.2,
        global_fraction: float = 0.1,
        ratio: float = 1.15,
        normalize: bool = False,
        global_pairs: str = "spread",
    ) -> None:
        super().__init__()
        if not 0.0 <= unreliable_fraction < 1.0:
            raise ValueError(f"unreliable_fraction must be in [0, 1), got {unreliable_fraction}")
        if not 0.0 <= global_fraction <= 1.0:
            raise ValueError(f"global_fraction must be in [0, 1], got {global_fraction}")
        if global_pairs not in self.GLOBAL_PAIRS:
            raise ValueError(f"global_pairs must be one of {self.GLOBAL_PAIRS}, "
                             f"got {global_pairs!r}")
        self.unreliable_fraction = unreliable_fraction
        self.global_fraction = global_fraction
        self.ratio = ratio
        self.normalize = normalize
        self.global_pairs = global_pairs

    def sample_pairs(
        self, confidence: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat pixel indices of the pairs, per image.

        confidence: ``[B,1,H,W]``. Returns ``(idx_a, idx_b)``, each ``[B,P]`` long in
        [0, H·W), with the unreliable pixels first in ``idx_a`` (their reliable partners in
        ``idx_b``), then the global pairs.
        """
        B = confidence.shape[0]
        N = confidence[0].numel()
        conf = confidence.detach().reshape(B, N)
        k = int(self.unreliable_fraction * N)
        m = int(self.global_fraction * N)
        idx_a, idx_b = [], []
        if k > 0:
            # Ties (e.g. a constant confidence) are broken at random rather than by pixel
            # order: a stable sort of a randomly permuted row.
            shuffle = _rand((B, N), generator, conf).argsort(dim=1)
            order = conf.gather(1, shuffle).sort(dim=1, stable=True).indices
            order = shuffle.gather(1, order)
            reliable = order[:, k:]
            partner = _randint(0, N - k, (B, k), generator, conf)
            idx_a.append(order[:, :k])
            idx_b.append(reliable.gather(1, partner))
        if m > 0 and self.global_pairs == "raster":
            # two random pixel sets shared by the batch, each sorted into raster order
            sets = _rand((2, N), generator, conf).argsort(dim=1)[:, :m].sort(dim=1).values
            idx_a.append(sets[0].expand(B, m))
            idx_b.append(sets[1].expand(B, m))
        elif m > 0:
            points = _rand((B, N), generator, conf).argsort(dim=1)[:, :m]
            permutation = _rand((B, m), generator, conf).argsort(dim=1)
            idx_a.append(points)
            idx_b.append(points.gather(1, permutation))
        if not idx_a:
            empty = torch.zeros(B, 0, dtype=torch.long, device=conf.device)
            return empty, empty
        return torch.cat(idx_a, dim=1), torch.cat(idx_b, dim=1)

    def pair_loss(
        self,
        pred_depth: torch.Tensor,
        prior_depth: torch.Tensor,
        idx_a: torch.Tensor,
        idx_b: torch.Tensor,
    ) -> torch.Tensor:
        """Ranking loss of given pairs.

        pred_depth, prior_depth: ``[B,1,H,W]``; idx_a, idx_b: ``[B,P]`` flat pixel indices.
        Returns the mean of ``softplus(−target·(dA − dB))`` over kept pairs (d divided by its
        image mean with ``normalize``); exactly 0 (still attached to the graph) when no pair
        is kept.
        """
        B = pred_depth.shape[0]
        pred = pred_depth.reshape(B, -1)
        if self.normalize:
            pred = pred / pred.mean(dim=1, keepdim=True)
        prior = prior_depth.detach().reshape(B, -1)
        target, keep = ranking_targets(prior.gather(1, idx_a), prior.gather(1, idx_b), self.ratio)
        diff = pred.gather(1, idx_a) - pred.gather(1, idx_b)
        # softplus(x) = log(1 + exp(x)) without the overflow of exp for large x (fix).
        loss = F.softplus(-target.to(diff.dtype) * diff)
        total = torch.where(keep, loss, torch.zeros_like(loss)).sum()
        return total / keep.sum().clamp(min=1)

    def forward(
        self,
        pred_depth: torch.Tensor,
        prior_depth: torch.Tensor,
        confidence: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> MaskRankingOutput:
        """pred_depth, prior_depth, confidence: ``[B,1,H,W]`` -> the loss and the unreliable
        pixels it used."""
        idx_a, idx_b = self.sample_pairs(confidence, generator)
        k = int(self.unreliable_fraction * confidence[0].numel())
        return MaskRankingOutput(self.pair_loss(pred_depth, prior_depth, idx_a, idx_b),
                                 idx_a[:, :k])


# Sobel kernels for d/du (columns, to the right) and d/dv (rows, downwards).
_SOBEL_U = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_V = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))
# ITU-R BT.601 luma; the per-channel normalisation is the same affine map on every channel,
# so this grey is the normalised grey image (and the edge rule is relative anyway).
_LUMA = (0.299, 0.587, 0.114)


def _sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel Sobel gradients ``(g_u, g_v)``, each ``[B,C,H,W]``.

    Computed on the valid region and zero-padded back to H×W, so the 1-pixel image border
    never counts as an edge (there is no neighbour to compare with).
    """
    C = x.shape[1]
    kernels = torch.tensor((_SOBEL_U, _SOBEL_V), dtype=x.dtype, device=x.device)
    weight = kernels.unsqueeze(1).repeat(C, 1, 1, 1)  # [2C,1,3,3]: (u, v) per channel
    grads = F.pad(F.conv2d(x, weight, groups=C), (1, 1, 1, 1))
    return grads[:, 0::2], grads[:, 1::2]


def _edge_mask(
    magnitude: torch.Tensor, threshold: float, floor: float | torch.Tensor
) -> torch.Tensor:
    """``magnitude ≥ threshold · max`` per image, and above ``floor``.

    magnitude: ``[B,1,H,W]``; floor: a float or a ``[B,1,1,1]`` tensor. Returns bool
    ``[B,1,H,W]``. The floor matters when an image has no real edge: the convolution of a
    flat region is not always exactly 0 (summation order), and ``≥ 0.1·max`` of pure
    rounding noise would turn the whole image into anchors.
    """
    peak = magnitude.amax(dim=(1, 2, 3), keepdim=True)
    return (magnitude >= threshold * peak) & (magnitude > floor)


# Absolute floors for the edge magnitudes: far below a real edge (one grey level of a
# normalised image has a Sobel magnitude of 4/(255·0.225) ≈ 0.07; normals are unit vectors)
# and far above rounding noise. The prior depth has an arbitrary scale, so its floor is
# relative to the image's largest depth.
_IMAGE_EDGE_FLOOR = 1e-4
_NORMAL_EDGE_FLOOR = 1e-4
_DEPTH_EDGE_FLOOR = 1e-6


def _image_edges(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel magnitude ``[B,1,H,W]`` and unit gradient direction ``[B,2,H,W]`` (du, dv) of
    the grey (luma) image."""
    luma = torch.tensor(_LUMA, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    g_u, g_v = _sobel((image * luma).sum(dim=1, keepdim=True))
    magnitude = torch.sqrt(g_u**2 + g_v**2)
    return magnitude, torch.cat([g_u, g_v], dim=1) / magnitude.clamp_min(1e-12)


def _normal_edges(normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge magnitude ``[B,1,H,W]`` and direction ``[B,2,H,W]`` of a normal map.

    The three channels' gradients may point opposite ways, so their sum can cancel. The
    principal direction of the 2×2 structure tensor summed over channels is the line the
    normals change along most; its sign does not matter as points are taken on both sides.
    """
    n_u, n_v = _sobel(normals)
    j_uu = (n_u * n_u).sum(dim=1, keepdim=True)
    j_vv = (n_v * n_v).sum(dim=1, keepdim=True)
    j_uv = (n_u * n_v).sum(dim=1, keepdim=True)
    theta = 0.5 * torch.atan2(2 * j_uv, j_uu - j_vv)
    return torch.sqrt(j_uu + j_vv), torch.cat([torch.cos(theta), torch.sin(theta)], dim=1)


def _public_image_edges(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The public code's image edges: Sobel of the first (red) channel only, and the
    direction ``(|cos θ|, |sin θ|)``: the gradient folded into one quadrant, so an edge
    whose gradient points down-left is sampled down-right."""
    g_u, g_v = _sobel(image[:, :1])
    magnitude = torch.sqrt(g_u**2 + g_v**2)
    return magnitude, torch.cat([g_u.abs(), g_v.abs()], dim=1) / magnitude.clamp_min(1e-12)


def _public_normal_edges(normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The public code's normal edges: the channel means of ``|∂n/∂u|`` and ``|∂n/∂v|``,
    their magnitude, and their (first-quadrant) direction."""
    n_u, n_v = _sobel(normals)
    g_u = n_u.abs().mean(dim=1, keepdim=True)
    g_v = n_v.abs().mean(dim=1, keepdim=True)
    magnitude = torch.sqrt(g_u**2 + g_v**2)
    return magnitude, torch.cat([g_u, g_v], dim=1) / magnitude.clamp_min(1e-12)


class NormalRankingLoss(nn.Module):
    """Edge-guided normal ranking loss of SC-DepthV3 (weight ``--normal_rank_weight``).

    Anchors are pixels on edges of the grey image and on edges of the prior's normals (not
    within ``border`` pixels of the image border), both outside a 3×3-dilated band around
    the prior's depth edges; an edge is a Sobel magnitude ≥ ``edge_threshold`` · its per-image
    maximum. From each anchor, four points a, b, c, d lie in this order along the edge's
    gradient direction, at random integer distances in [``min_dist``, ``max_dist``] px, two
    on each side; for the pairs (a,b), (b,c), (c,d) the loss is
    ``| |n_A·n_B|_prior − |n_A·n_B|_pred |``, averaged over all pairs of the batch.
    At most ``max_anchors`` anchors of each kind are drawn per image to bound the memory;
    pairs that collapse to one pixel or touch an invalid prior pixel are dropped.

    ``sampling="public"`` samples as the public code does instead: image edges of the red
    channel only; directions folded into one quadrant (``|cos θ|, |sin θ|``), for the normals
    from the channel means of ``|∂n/∂u|`` and ``|∂n/∂v|``; as many anchors as edge pixels,
    drawn with replacement; the two points on each side in random order; no pair dropped.
    """

    SAMPLINGS = ("gradient", "public")

    def __init__(
        self,
        edge_threshold: float = 0.1,
        border: int = 5,
        min_dist: int = 3,
        max_dist: int = 19,
        max_anchors: int = 10000,
        sampling: str = "gradient",
    ) -> None:
        super().__init__()
        if not 0 < min_dist <= max_dist:
            raise ValueError(f"need 0 < min_dist <= max_dist, got {min_dist}, {max_dist}")
        if sampling not in self.SAMPLINGS:
            raise ValueError(f"sampling must be one of {self.SAMPLINGS}, got {sampling!r}")
        self.edge_threshold = edge_threshold
        self.border = border
        self.min_dist = min_dist
        self.max_dist = max_dist
        self.max_anchors = max_anchors
        self.sampling = sampling

    @torch.no_grad()
    def anchor_maps(
        self, image: torch.Tensor, prior_depth: torch.Tensor, prior_normals: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Where the anchors are and which way to sample from them.

        image: ``[B,3,H,W]`` (normalised), prior_depth: ``[B,1,H,W]``,
        prior_normals: ``[B,3,H,W]``. Returns ``(image_anchors, normal_anchors,
        image_dir, normal_dir)``: two bool ``[B,1,H,W]`` masks and two unit direction fields
        ``[B,2,H,W]`` (``(du, dv)``, i.e. (column, row) steps).
        """
        public = self.sampling == "public"
        image_mag, image_dir = (_public_image_edges if public else _image_edges)(image)
        normal_mag, normal_dir = (_public_normal_edges if public else _normal_edges)(
            prior_normals)
        H, W = normal_mag.shape[-2:]
        inner = torch.zeros_like(normal_mag, dtype=torch.bool)
        inner[..., self.border : H - self.border, self.border : W - self.border] = True
        # The prior's normals are unreliable at the border (one-sided differences there).
        normal_mag = torch.where(inner, normal_mag, torch.zeros_like(normal_mag))

        # Across a depth discontinuity normals are meaningless: exclude a band around it.
        d_u, d_v = _sobel(prior_depth)
        depth_floor = _DEPTH_EDGE_FLOOR * prior_depth.abs().amax(dim=(1, 2, 3), keepdim=True)
        depth_edges = _edge_mask(torch.sqrt(d_u**2 + d_v**2), self.edge_threshold, depth_floor)
        band = F.max_pool2d(depth_edges.to(image.dtype), 3, stride=1, padding=1) > 0
        # As in the public code the band is removed before the per-image maximum is taken,
        # so the edges left elsewhere are judged against each other, not against the
        # (often strongest) object boundaries.
        zero = torch.zeros_like(image_mag)
        image_anchors = _edge_mask(
            torch.where(band, zero, image_mag), self.edge_threshold, _IMAGE_EDGE_FLOOR
        )
        normal_anchors = _edge_mask(
            torch.where(band, zero, normal_mag), self.edge_threshold, _NORMAL_EDGE_FLOOR
        )
        return image_anchors, normal_anchors, image_dir, normal_dir

    def _anchor_slots(
        self, anchors: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(idx, valid)``, each ``[B,M]``: anchor pixels drawn per image (flat indices) and
        whether the slot holds one (images with fewer anchors than slots get invalid slots
        instead of a ragged batch)."""
        B = anchors.shape[0]
        flat = anchors.reshape(B, -1)
        N = flat.shape[1]
        M = min(self.max_anchors, N)
        if self.sampling == "public":
            # as many draws as edge pixels, with replacement: the r-th edge pixel in raster
            # order, r uniform in [0, count)
            count = flat.sum(dim=1, keepdim=True)
            position = torch.arange(N, device=flat.device).expand(B, N)
            edges_first = torch.where(flat, position, position + N).argsort(dim=1)
            r = (_rand((B, M), generator, anchors) * count).long().clamp(max=N - 1)
            valid = torch.arange(M, device=flat.device).expand(B, M) < count
            return edges_first.gather(1, r), valid
        # a random subset without replacement: the M smallest of random keys, where
        # non-anchors get a key (2) above any random one
        keys = _rand((B, N), generator, anchors)
        keys = torch.where(flat, keys, torch.full_like(keys, 2.0))
        key, idx = keys.topk(M, dim=1, largest=False)
        return idx, key < 1

    def sample_pairs(
        self,
        anchors: torch.Tensor,
        direction: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Point pairs along the gradient direction of (at most ``max_anchors``) anchors.

        anchors: bool ``[B,1,H,W]``, direction: ``[B,2,H,W]`` unit (du, dv). Returns
        ``(idx_a, idx_b, valid)``, each ``[B,3M]``: flat pixel indices of the pairs
        (a,b), (b,c), (c,d) of M anchor slots per image, and whether the slot holds an anchor.
        """
        B, _, H, W = anchors.shape
        idx, valid = self._anchor_slots(anchors, generator)
        M = idx.shape[1]
        step = direction.reshape(B, 2, H * W).gather(2, idx.unsqueeze(1).expand(B, 2, M))
        dist = _randint(self.min_dist, self.max_dist + 1, (B, M, 4), generator, direction)
        if self.sampling == "public":
            offsets = dist * torch.tensor([-1, -1, 1, 1], device=dist.device)
        else:
            near_side = dist[..., :2].sort(dim=-1, descending=True).values  # a beyond b
            far_side = dist[..., 2:].sort(dim=-1).values  # c nearer than d
            offsets = torch.cat([-near_side, far_side], dim=-1)
        offsets = offsets.to(direction.dtype)  # [B,M,4]
        col = (idx % W).unsqueeze(-1) + torch.round(offsets * step[:, 0].unsqueeze(-1)).long()
        row = (idx // W).unsqueeze(-1) + torch.round(offsets * step[:, 1].unsqueeze(-1)).long()
        points = row.clamp(0, H - 1) * W + col.clamp(0, W - 1)  # [B,M,4]: a, b, c, d
        idx_a = points[..., :3].reshape(B, 3 * M)
        idx_b = points[..., 1:].reshape(B, 3 * M)
        valid = valid.unsqueeze(-1).expand(B, M, 3).reshape(B, 3 * M)
        return idx_a, idx_b, valid

    def forward(
        self,
        pred_depth: torch.Tensor,
        prior_depth: torch.Tensor,
        image: torch.Tensor,
        K_inv: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """pred_depth, prior_depth: ``[B,1,H,W]``, image: ``[B,3,H,W]``, K_inv: ``[B,3,3]``.

        Returns a scalar; exactly 0 (attached to the graph) when there is no anchor.
        """
        B = pred_depth.shape[0]
        prior_depth = prior_depth.detach()
        with torch.no_grad():
            prior_normals = depth_to_normals(prior_depth, K_inv)
            image_anchors, normal_anchors, image_dir, normal_dir = self.anchor_maps(
                image, prior_depth, prior_normals
            )
            a_img, b_img, v_img = self.sample_pairs(image_anchors, image_dir, generator)
            a_nrm, b_nrm, v_nrm = self.sample_pairs(normal_anchors, normal_dir, generator)
            idx_a = torch.cat([a_img, a_nrm], dim=1)
            idx_b = torch.cat([b_img, b_nrm], dim=1)
            valid = torch.cat([v_img, v_nrm], dim=1)
            if self.sampling != "public":
                prior_valid = prior_depth.reshape(B, -1) > 0
                valid = (valid & (idx_a != idx_b) & prior_valid.gather(1, idx_a)
                         & prior_valid.gather(1, idx_b))

        def abs_cos(normals: torch.Tensor) -> torch.Tensor:
            flat = normals.reshape(B, 3, -1)
            n_a = flat.gather(2, idx_a.unsqueeze(1).expand(B, 3, idx_a.shape[1]))
            n_b = flat.gather(2, idx_b.unsqueeze(1).expand(B, 3, idx_b.shape[1]))
            return (n_a * n_b).sum(dim=1).abs()

        pred_normals = depth_to_normals(pred_depth, K_inv)
        error = (abs_cos(prior_normals) - abs_cos(pred_normals)).abs()
        total = torch.where(valid, error, torch.zeros_like(error)).sum()
        return total / valid.sum().clamp(min=1)
