"""Tests of losses.photometric: SSIM, masked_mean and the V1 photometric/geometry loss."""

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from geometry import inverse_warp, pose_vec2mat
from losses.photometric import (
    SSIM,
    PairErrors,
    PhotoGeometryLoss,
    PhotoGeometryOutput,
    masked_mean,
)

H, W = 16, 20


def intrinsics(B: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    K = torch.tensor([[10.0, 0.0, 9.5], [0.0, 10.0, 7.5], [0.0, 0.0, 1.0]], dtype=dtype)
    return K.expand(B, 3, 3).clone()


def pose(B: int, tx: float = 0.0, ty: float = 0.0, tz: float = 0.0,
         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return pose_vec2mat(torch.tensor([[tx, ty, tz, 0.0, 0.0, 0.0]], dtype=dtype).expand(B, 6))


def texture(B: int, seed: int = 0) -> torch.Tensor:
    """A smooth random texture in the range of normalised images (about −2..2)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(B, 3, H // 2, W // 2, generator=g) * 4 - 2
    return F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)


def rendered_pair(B: int = 2, shift: int = 2, depth: float = 2.0):
    """A fronto-parallel textured plane seen from two cameras `shift` pixels apart.

    With ref_T_tgt = [I | (tx,0,0)], target pixel u lands at u + fx·tx/D in the reference,
    so the reference image is the target shifted right: ref(u + shift) = tgt(u).
    """
    tx = shift * depth / 10.0  # fx = 10
    tgt = texture(B)
    ref = torch.roll(tgt, shifts=shift, dims=-1)
    d = torch.full((B, 1, H, W), depth)
    return tgt, ref, d, pose(B, tx=tx), pose(B, tx=-tx)


# ----------------------------------------------------------------------------- SSIM


def test_ssim_of_an_image_with_itself_is_zero():
    x = texture(2)
    assert torch.allclose(SSIM()(x, x), torch.zeros_like(x), atol=1e-6)


def test_ssim_constant_pair_hand_value():
    # Constant images: σ = 0, so SSIM = (2ab + C1)·C2 / ((a² + b² + C1)·C2).
    a, b = 0.2, 0.5
    C1 = 0.01**2
    expected = (1 - (2 * a * b + C1) / (a * a + b * b + C1)) / 2
    # float64: in float32 the cancellation in E[x²] − μ² is ~1e-8, not small against C2.
    x = torch.full((1, 3, 9, 10), a, dtype=torch.float64)
    out = SSIM()(x, torch.full_like(x, b))
    assert out.shape == (1, 3, 9, 10)
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-9)


def test_ssim_range_and_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.rand(1, 2, 8, 9, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 2, 8, 9, dtype=torch.float64, requires_grad=True)
    out = SSIM()(x, y)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.autograd.gradcheck(SSIM(), (x, y))


# ----------------------------------------------------------------------------- masked_mean



def test_fused_ssim_equals_the_five_pool_reference():
    # The fused path (separable mean filter over the stacked moments, channels_last) is the
    # same mean filter as five 7×7 pools; only the summation order differs.
    torch.manual_seed(3)
    x, y = torch.rand(2, 3, 20, 23), torch.rand(2, 3, 20, 23)
    fused, reference = SSIM(fused=True)(x, y), SSIM(fused=False)(x, y)
    assert fused.shape == reference.shape == x.shape
    assert torch.allclose(fused, reference, atol=1e-5)
    xd = x[:1, :, :9, :10].double().requires_grad_()
    yd = y[:1, :, :9, :10].double().requires_grad_()
    assert torch.autograd.gradcheck(SSIM(fused=True), (xd, yd))


def test_fused_ssim_local_mean_hand_value():
    # A 7×7 window sees a single 1 among zeros: every local mean covering it is 1/49.
    ssim = SSIM(fused=True)
    x = torch.zeros(1, 1, 13, 13)
    x[0, 0, 6, 6] = 1.0
    mu_x = ssim.local_means(x, x)[0]  # unpadded input: 7×7 output
    assert torch.allclose(mu_x, torch.full((1, 1, 7, 7), 1 / 49))


def test_masked_mean_values_and_degenerate_case():
    x = torch.arange(200.0).reshape(1, 1, 10, 20).requires_grad_()
    mask = torch.zeros(1, 1, 10, 20)
    mask[..., :10, :15] = 1  # 150 pixels
    assert torch.isclose(masked_mean(x, mask), x.detach()[mask > 0].mean())

    few = torch.zeros_like(mask)
    few[..., 0, :50 // 10] = 1  # 5 pixels < 100
    out = masked_mean(x, few)
    assert out.item() == 0
    out.backward()  # still attached to the graph
    assert torch.all(x.grad == 0)
    assert masked_mean(x, few, min_count=5).item() == x.detach()[few > 0].mean().item()


def test_masked_mean_ignores_non_finite_values_outside_the_mask():
    x = torch.ones(1, 1, 10, 20)
    x[..., 0, 0] = float("inf")
    x[..., 0, 1] = float("nan")
    mask = torch.ones_like(x)
    mask[..., 0, :2] = 0
    assert masked_mean(x, mask).item() == 1.0
    assert masked_mean(x, torch.zeros_like(x)).item() == 0.0


# ----------------------------------------------------------------------------- the loss


def unpack(out: PhotoGeometryOutput) -> tuple[torch.Tensor, torch.Tensor, PhotoGeometryOutput]:
    return out.photo_loss, out.geometry_loss, out


def run_loss(loss: PhotoGeometryLoss, tgt, ref, tgt_depth, ref_depth, T, T_inv):
    B = tgt.shape[0]
    return unpack(loss(tgt, [ref], tgt_depth, [ref_depth], [T], [T_inv], intrinsics(B)))


def test_identical_frames_identity_pose_give_zero_losses():
    # The auto-mask keeps a pixel only where warping beats not warping at all; with identical
    # frames the two errors are equal, every pixel would be dropped and the loss would be 0
    # trivially, so the mask is disabled to test that the errors themselves vanish.
    B = 2
    x = texture(B)
    d = torch.full((B, 1, H, W), 3.0)
    photo, geo, info = run_loss(PhotoGeometryLoss(no_auto_mask=True), x, x, d, d, pose(B),
                                pose(B))
    assert info.logs["valid_fraction"] > 0.9
    assert photo.abs().item() < 1e-5
    assert geo.abs().item() < 1e-6
    # And with the auto-mask on, no pixel improves (strictly) on the unwarped frame: all dropped.
    photo, geo, info = run_loss(PhotoGeometryLoss(), x, x, d, d, pose(B), pose(B))
    assert info.logs["valid_fraction"].item() == 0
    assert photo.item() == 0 and geo.item() == 0


def test_true_pose_explains_rendered_pair_far_better_than_zero_pose():
    tgt, ref, d, T, T_inv = rendered_pair()
    # No auto-mask: with a zero pose the warped error equals the unwarped one, the auto-mask
    # would drop every pixel and the zero-pose loss would be a meaningless 0.
    loss = PhotoGeometryLoss(no_auto_mask=True)
    photo_true, geo_true, info_true = run_loss(loss, tgt, ref, d, d, T, T_inv)
    photo_zero, _, _ = run_loss(loss, tgt, ref, d, d, pose(2), pose(2))
    assert info_true.logs["valid_fraction"] > 0.8
    assert photo_true < 0.3 * photo_zero
    assert geo_true < 1e-5
    # With the auto-mask on, the true pose keeps almost all pixels.
    _, _, info_auto = run_loss(PhotoGeometryLoss(), tgt, ref, d, d, T, T_inv)
    assert info_auto.logs["valid_fraction"] > 0.8


def test_info_contents():
    tgt, ref, d, T, T_inv = rendered_pair()
    loss = PhotoGeometryLoss()
    info = loss(tgt, [ref, ref], d, [d, d], [T, T], [T_inv, T_inv], intrinsics(2))
    assert len(info.pairs_tr) == 2
    for pair in info.pairs_tr:
        assert isinstance(pair, PairErrors)
        for f in dataclasses.fields(pair):
            assert getattr(pair, f.name).shape == (2, 1, H, W)
    assert not info.logs["valid_fraction"].requires_grad
    assert info.photo_map.shape == info.valid_map.shape == (2, 1, H, W)


def test_no_ssim_photo_is_the_pure_l1_path():
    torch.manual_seed(1)
    tgt, ref, d, T, _ = rendered_pair()
    ref = ref + 0.3 * torch.rand_like(ref)  # make the errors non-trivial
    K = intrinsics(2)
    warped, _, projected, computed = inverse_warp(ref, d, d, T, K)
    l1 = (tgt - warped).abs().clamp(0, 1).mean(1, keepdim=True)
    weight = 1 - (computed - projected).abs() / (computed + projected)
    pair = PhotoGeometryLoss(no_ssim=True).pairwise(tgt, ref, d, d, T, K)
    assert torch.allclose(pair.photo, l1 * weight, atol=1e-6)
    pair_ssim = PhotoGeometryLoss().pairwise(tgt, ref, d, d, T, K)
    assert not torch.allclose(pair_ssim.photo, pair.photo, atol=1e-3)


def test_no_dynamic_mask_removes_the_depth_weighting():
    # Identity pose, tgt depth 2, ref depth 3: D_diff = 1/5 everywhere inside.
    B = 2
    tgt, ref = texture(B, seed=1), texture(B, seed=2)
    tgt_depth, ref_depth = torch.full((B, 1, H, W), 2.0), torch.full((B, 1, H, W), 3.0)
    K, T = intrinsics(B), pose(B)
    weighted = PhotoGeometryLoss().pairwise(tgt, ref, tgt_depth, ref_depth, T, K)
    plain = PhotoGeometryLoss(no_dynamic_mask=True).pairwise(tgt, ref, tgt_depth, ref_depth,
                                                              T, K)
    assert torch.allclose(weighted.depth_diff, torch.full((B, 1, H, W), 0.2))
    assert torch.allclose(weighted.photo, 0.8 * plain.photo, atol=1e-6)
    assert plain.photo.mean() > 0.05


def test_dynamic_mask_is_detached():
    # Identity pose: the warped image does not depend on the reference depth, which then
    # reaches the photometric error only through the (1 − D_diff) weight, detached.
    B = 1
    tgt, ref = texture(B, seed=1), texture(B, seed=2)
    tgt_depth = torch.full((B, 1, H, W), 2.0)
    ref_depth = torch.full((B, 1, H, W), 3.0, requires_grad=True)
    pair = PhotoGeometryLoss().pairwise(tgt, ref, tgt_depth, ref_depth, pose(B), intrinsics(B))
    pair.photo.sum().backward()
    assert torch.all(ref_depth.grad == 0)
    pair = PhotoGeometryLoss().pairwise(tgt, ref, tgt_depth, ref_depth, pose(B), intrinsics(B))
    pair.depth_diff.sum().backward()  # the geometry term itself does train depth
    assert ref_depth.grad.abs().sum() > 0


def test_no_auto_mask_keeps_pixels_of_a_static_camera_pair():
    # A static camera: both frames are the same image, the predicted motion is small but
    # non-zero. Warping cannot beat "no motion", so the auto-mask removes the pixels.
    B = 2
    x = texture(B)
    d = torch.full((B, 1, H, W), 2.0)
    T, T_inv = pose(B, tx=0.05), pose(B, tx=-0.05)
    _, _, info_auto = run_loss(PhotoGeometryLoss(), x, x, d, d, T, T_inv)
    _, _, info_all = run_loss(PhotoGeometryLoss(no_auto_mask=True), x, x, d, d, T, T_inv)
    assert info_auto.logs["valid_fraction"] < 0.05
    assert info_all.logs["valid_fraction"] > 0.9


def per_pixel_best_view(pairs):
    """Best-view selection written as plain loops, to check the vectorised one."""
    photo = np.stack([p.photo.detach().numpy() for p in pairs])
    depth_diff = np.stack([p.depth_diff.detach().numpy() for p in pairs])
    valid = np.stack([p.valid.detach().numpy() for p in pairs])
    color = np.stack([p.color_diff.detach().numpy() for p in pairs])
    n, B, _, h, w = photo.shape
    out_p, out_d, out_v = (np.zeros((B, 1, h, w)) for _ in range(3))
    for b in range(B):
        for i in range(h):
            for j in range(w):
                best = min(range(n), key=lambda k: color[k, b, 0, i, j])
                out_p[b, 0, i, j] = photo[best, b, 0, i, j]
                out_d[b, 0, i, j] = depth_diff[best, b, 0, i, j]
                out_v[b, 0, i, j] = valid[best, b, 0, i, j]
    return out_p, out_d, out_v


def two_ref_setup():
    """A target with two references (one shifted left, one right) and imperfect depths.

    A black corner of the target is invalid in every candidate (no data in either direction).
    """
    B, shift, D = 2, 2, 2.0
    tx = shift * D / 10.0
    tgt = texture(B, seed=3)
    tgt[..., :3, :3] = 0
    refs = [torch.roll(tgt, shifts=shift, dims=-1), torch.roll(tgt, shifts=-shift, dims=-1)]
    g = torch.Generator().manual_seed(7)
    refs = [r + 0.2 * torch.rand(r.shape, generator=g) for r in refs]
    tgt_depth = D + 0.3 * torch.rand(B, 1, H, W, generator=g)
    ref_depths = [D + 0.3 * torch.rand(B, 1, H, W, generator=g) for _ in refs]
    poses = [pose(B, tx=tx), pose(B, tx=-tx)]
    poses_inv = [pose(B, tx=-tx), pose(B, tx=tx)]
    return tgt, refs, tgt_depth, ref_depths, poses, poses_inv, intrinsics(B)


def all_pairs(loss, tgt, refs, tgt_depth, ref_depths, poses, poses_inv, K):
    pairs = []
    for r, rd, T, T_inv in zip(refs, ref_depths, poses, poses_inv):
        pairs.append(loss.pairwise(tgt, r, tgt_depth, rd, T, K))
        pairs.append(loss.pairwise(r, tgt, rd, tgt_depth, T_inv, K))
    return pairs


def test_best_view_picks_lowest_colour_error_and_takes_its_validity():
    args = two_ref_setup()
    loss = PhotoGeometryLoss()
    photo, geo, info = unpack(loss(*args))
    pairs = all_pairs(loss, *args)
    exp_p, exp_d, exp_v = per_pixel_best_view(pairs)
    assert 0.5 < exp_v.mean() < 1  # some pixels have no valid candidate, most have one
    # The test discriminates: choosing among the valid candidates only would keep pixels
    # whose best-looking view is invalid.
    valid_any = torch.cat([p.valid for p in pairs], dim=1).amax(1, keepdim=True)
    assert (valid_any.numpy() > exp_v).any()
    np.testing.assert_allclose(info.valid_map.numpy(), exp_v)
    np.testing.assert_allclose(info.photo_map.numpy()[exp_v > 0], exp_p[exp_v > 0],
                               atol=1e-6)
    np.testing.assert_allclose(photo.item(), exp_p[exp_v > 0].mean(), rtol=1e-5)
    np.testing.assert_allclose(geo.item(), exp_d[exp_v > 0].mean(), rtol=1e-5)


def test_no_min_optimize_averages_over_all_candidates():
    args = two_ref_setup()
    loss = PhotoGeometryLoss(no_min_optimize=True)
    photo, geo, _ = unpack(loss(*args))
    pairs = all_pairs(loss, *args)
    photo_all = torch.cat([p.photo for p in pairs], dim=1)
    dd_all = torch.cat([p.depth_diff for p in pairs], dim=1)
    valid_all = torch.cat([p.valid for p in pairs], dim=1)
    assert torch.isclose(photo, photo_all[valid_all > 0].mean())
    assert torch.isclose(geo, dd_all[valid_all > 0].mean())
    photo_min = PhotoGeometryLoss()(*args).photo_loss
    assert photo_min < photo  # the best view is better than the average view


def test_everything_masked_gives_finite_zero_losses_and_gradients():
    # A huge sideways motion: every target pixel projects outside the reference image.
    B = 1
    tgt, ref = texture(B, seed=4), texture(B, seed=5)
    tgt_depth = torch.full((B, 1, H, W), 1.0, requires_grad=True)
    ref_depth = torch.full((B, 1, H, W), 1.0, requires_grad=True)
    T, T_inv = pose(B, tx=100.0), pose(B, tx=-100.0)
    photo, geo, info = run_loss(PhotoGeometryLoss(), tgt, ref, tgt_depth, ref_depth, T, T_inv)
    assert info.logs["valid_fraction"].item() == 0
    assert photo.item() == 0 and geo.item() == 0
    (photo + geo).backward()
    assert torch.isfinite(tgt_depth.grad).all() and torch.isfinite(ref_depth.grad).all()


def test_pairwise_gradcheck_float64():
    torch.manual_seed(2)
    B, h, w = 1, 8, 9
    dt = torch.float64
    K = torch.tensor([[[6.0, 0.0, 4.0], [0.0, 6.0, 3.5], [0.0, 0.0, 1.0]]], dtype=dt)
    tgt = torch.rand(B, 3, h, w, dtype=dt, requires_grad=True)
    ref = torch.rand(B, 3, h, w, dtype=dt, requires_grad=True)
    tgt_depth = (torch.rand(B, 1, h, w, dtype=dt) + 1).requires_grad_()
    ref_depth = (torch.rand(B, 1, h, w, dtype=dt) + 1).requires_grad_()
    vec = torch.tensor([[0.11, -0.06, 0.04, 0.02, -0.03, 0.01]], dtype=dt, requires_grad=True)
    # The dynamic mask is detached by design, which a numerical Jacobian cannot know about.
    loss = PhotoGeometryLoss(no_dynamic_mask=True)

    def fn(tgt, ref, tgt_depth, ref_depth, vec):
        pair = loss.pairwise(tgt, ref, tgt_depth, ref_depth, pose_vec2mat(vec), K)
        return pair.photo, pair.depth_diff

    assert torch.autograd.gradcheck(fn, (tgt, ref, tgt_depth, ref_depth, vec), eps=1e-6,
                                    atol=1e-5)
