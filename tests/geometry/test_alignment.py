"""Umeyama alignment, pose chaining and the ATE / RPE figures on hand-made trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geometry import pose_vec2mat, transform_points
from geometry.alignment import (
    absolute_trajectory_error,
    align_trajectory,
    apply_similarity,
    chain_relative_poses,
    frame_to_frame_rpe,
    kitti_rpe,
    relative_motions,
    rotation_angle,
    rpe_lengths,
    to_homogeneous,
    trajectory_distances,
    umeyama_alignment,
)


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def straight_line(n: int, step: float = 1.0) -> np.ndarray:
    """Camera-to-world poses [n,4,4]: no rotation, moving `step` m along z per frame."""
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 2, 3] = step * np.arange(n)
    return poses


# ---------------------------------------------------------------------------- Umeyama
def test_umeyama_recovers_a_hand_made_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 3))
    R = rot_z(math.radians(30)) @ rot_x(math.radians(-20))
    s, t = 2.5, np.array([1.0, -2.0, 3.0])
    dst = s * src @ R.T + t
    s_hat, R_hat, t_hat = umeyama_alignment(src, dst)
    assert s_hat == pytest.approx(2.5, abs=1e-12)
    np.testing.assert_allclose(R_hat, R, atol=1e-12)
    np.testing.assert_allclose(t_hat, t, atol=1e-12)
    np.testing.assert_allclose(apply_similarity(src, s_hat, R_hat, t_hat), dst, atol=1e-12)


def test_umeyama_rigid_keeps_scale_one_and_finds_the_least_squares_scale_otherwise():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(10, 3))
    R = rot_x(0.7)
    dst = src @ R.T + np.array([0.5, 0.0, -1.0])
    s, R_hat, _ = umeyama_alignment(src, dst, with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(R_hat, R, atol=1e-12)
    # Rigid alignment of a scaled copy: R is still found, s stays 1.
    s, R_hat, _ = umeyama_alignment(src, 3.0 * dst, with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(R_hat, R, atol=1e-12)


def test_umeyama_two_points_hand_computed():
    # x axis of length 1 onto y axis of length 2: s = 2, R maps x to y, residual 0.
    src = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    dst = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    s, R, t = umeyama_alignment(src, dst)
    assert s == pytest.approx(2.0)
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(apply_similarity(src, s, R, t), dst, atol=1e-12)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    dst = src * np.array([-1.0, 1.0, 1.0])  # a mirror image: no rotation fits it exactly
    s, R, t = umeyama_alignment(src, dst)
    assert np.linalg.det(R) == pytest.approx(1.0)
    assert s > 0
    residual = np.linalg.norm(apply_similarity(src, s, R, t) - dst)
    assert residual > 0.1


def test_umeyama_degenerate_source_translates_centroids():
    # One point, or a zero-motion trajectory (all points equal): R = I, s = 1.
    s, R, t = umeyama_alignment(np.array([[1.0, 2.0, 3.0]]), np.array([[0.0, 0.0, 5.0]]))
    assert s == 1.0
    np.testing.assert_array_equal(R, np.eye(3))
    np.testing.assert_allclose(t, [-1.0, -2.0, 2.0])
    dst = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    s, R, t = umeyama_alignment(np.zeros((3, 3)), dst)
    np.testing.assert_allclose(apply_similarity(np.zeros((3, 3)), s, R, t),
                               np.tile([0.0, 0.0, 1.0], (3, 1)))


@pytest.mark.parametrize("src, dst", [
    (np.zeros((3, 2)), np.zeros((3, 2))),            # not 3-D
    (np.zeros((3, 3)), np.zeros((4, 3))),            # different lengths
    (np.zeros((0, 3)), np.zeros((0, 3))),            # empty
    (np.full((3, 3), np.nan), np.zeros((3, 3))),     # NaN
])
def test_umeyama_rejects_bad_input(src, dst):
    with pytest.raises(ValueError):
        umeyama_alignment(src, dst)


# --------------------------------------------------------------------- pose chaining
def test_chain_convention_matches_the_warp_convention():
    """Moving 1 m forward: PoseNet's T_{t→t+1} = [I | (0,0,-1)] (a point 5 m ahead is 4 m
    ahead in the next camera, as geometry.transform_points says); chained, the cameras
    are at z = 0, 1, 2."""
    T = pose_vec2mat(torch.tensor([[0.0, 0.0, -1.0, 0.0, 0.0, 0.0]], dtype=torch.float64))
    point = torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    assert transform_points(point, T)[0, :, 0, 0].tolist() == [0.0, 0.0, 4.0]
    poses = chain_relative_poses(np.repeat(T.numpy(), 2, axis=0))
    np.testing.assert_allclose(poses, straight_line(3), atol=1e-12)


def test_chain_and_relative_motions_round_trip():
    rng = np.random.default_rng(3)
    vec = torch.from_numpy(rng.normal(scale=0.2, size=(6, 6)))
    motions = to_homogeneous(pose_vec2mat(vec).numpy())
    poses = chain_relative_poses(motions)
    assert poses.shape == (7, 4, 4)
    np.testing.assert_allclose(poses[0], np.eye(4))
    np.testing.assert_allclose(relative_motions(poses), motions, atol=1e-12)
    assert chain_relative_poses(np.zeros((0, 3, 4))).shape == (1, 4, 4)


def test_align_trajectory_moves_rotations_and_positions():
    poses = chain_relative_poses(pose_vec2mat(torch.tensor(
        [[0.1, 0.0, -0.5, 0.0, 0.1, 0.0]] * 3, dtype=torch.float64)).numpy())
    R, t = rot_z(0.3), np.array([1.0, 2.0, 3.0])
    aligned = align_trajectory(poses, 2.0, R, t)
    np.testing.assert_allclose(aligned[:, :3, :3], R @ poses[:, :3, :3], atol=1e-12)
    np.testing.assert_allclose(aligned[:, :3, 3], 2.0 * poses[:, :3, 3] @ R.T + t, atol=1e-12)
    # Relative motions keep their rotation; their translation is scaled by s.
    rel, rel_aligned = relative_motions(poses), relative_motions(aligned)
    np.testing.assert_allclose(rel_aligned[:, :3, :3], rel[:, :3, :3], atol=1e-12)
    np.testing.assert_allclose(rel_aligned[:, :3, 3], 2.0 * rel[:, :3, 3], atol=1e-12)


# ------------------------------------------------------------------------- ATE / RPE
def test_rotation_angle_and_distances():
    assert rotation_angle(rot_z(math.pi / 6)) == pytest.approx(math.pi / 6)
    assert rotation_angle(np.eye(3)) == 0.0
    np.testing.assert_allclose(trajectory_distances(straight_line(4, 0.5)), [0, 0.5, 1.0, 1.5])


def test_ate_is_zero_for_a_similar_copy_and_hand_computed_for_zero_motion():
    gt = straight_line(3)
    gt[:, 0, 3] = [0.0, 0.3, 0.1]  # not collinear in x-z
    pred = align_trajectory(gt, 0.25, rot_x(0.4), np.array([3.0, 0.0, 1.0]))
    res = absolute_trajectory_error(gt, pred)
    assert res["ate"] == pytest.approx(0.0, abs=1e-12)
    assert res["scale"] == pytest.approx(4.0)
    # Zero motion: every camera aligned onto the centroid (0, 0, 1): errors 1, 0, 1.
    res = absolute_trajectory_error(straight_line(3), np.tile(np.eye(4), (3, 1, 1)))
    assert res["ate"] == pytest.approx(math.sqrt(2.0 / 3.0))
    with pytest.raises(ValueError, match="differ in length"):
        absolute_trajectory_error(straight_line(3), straight_line(4))


def test_rpe_lengths_kitti_and_short():
    assert rpe_lengths(1000.0) == (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0)
    assert rpe_lengths(250.0) == (100.0, 200.0)
    assert rpe_lengths(50.0) == pytest.approx((5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0))
    assert rpe_lengths(0.0) == ()


def test_kitti_rpe_hand_computed():
    gt = straight_line(11)  # 10 m; lengths 1..8 m land exactly on frames
    exact = kitti_rpe(gt, gt)
    assert exact["t_err"] == 0.0 and exact["r_err"] == 0.0
    assert exact["num"] == sum(11 - L for L in range(1, 9))
    # Half the speed: every sub-sequence misses half its length -> 50 %.
    half = kitti_rpe(gt, straight_line(11, 0.5))
    assert half["t_err"] == pytest.approx(50.0)
    assert half["r_err"] == pytest.approx(0.0, abs=1e-9)
    # Zero motion misses all of it -> 100 %.
    assert kitti_rpe(gt, np.tile(np.eye(4), (11, 1, 1)))["t_err"] == pytest.approx(100.0)
    # A constant 1° yaw offset on the final camera only, over the 1 m sub-sequence
    # (9 -> 10) alone: 1° per metre = 100°/100 m.
    pred = gt.copy()
    pred[10, :3, :3] = rot_z(math.radians(1.0))
    one = kitti_rpe(gt, pred, lengths=(1.0,))
    assert one["r_err"] == pytest.approx(100.0 / 10)  # 1 of the 10 pairs carries 100°/100 m
    nothing = kitti_rpe(straight_line(2), straight_line(2), lengths=(5.0,))
    assert nothing["num"] == 0 and math.isnan(nothing["t_err"])


def test_frame_to_frame_rpe_hand_computed():
    res = frame_to_frame_rpe(straight_line(5), straight_line(5, 0.5))
    assert res["trans_rmse"] == pytest.approx(0.5)
    assert res["rot_mean"] == pytest.approx(0.0, abs=1e-9)
    pred = straight_line(3)
    pred[1, :3, :3] = rot_z(math.radians(2.0))
    res = frame_to_frame_rpe(straight_line(3), pred)
    assert res["rot_mean"] == pytest.approx(2.0)  # 2° in each of the two steps
    assert math.isnan(frame_to_frame_rpe(straight_line(1), straight_line(1))["trans_rmse"])


def _random_walk(n: int, seed: int) -> np.ndarray:
    """A smooth camera-to-world trajectory ``[n,4,4]`` with rotations about every axis."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    angles = np.cumsum(rng.normal(0, 0.05, (n, 3)), axis=0)
    poses[:, :3, :3] = Rotation.from_euler("xyz", angles).as_matrix()
    poses[:, :3, 3] = np.cumsum(rng.normal([0, 0, 0.3], 0.05, (n, 3)), axis=0)
    return poses


def test_ate_and_frame_to_frame_rpe_agree_with_evo() -> None:
    """evo (the standard trajectory tool, a dev dependency) computes the same figures: APE
    after a Sim(3) Umeyama alignment, and RPE over consecutive frames."""
    evo_metrics = pytest.importorskip("evo.core.metrics")
    from evo.core.trajectory import PosePath3D

    gt = _random_walk(40, 0)
    noise = _random_walk(40, 1)
    noise[:, :3, 3] *= 0.05
    pred = gt @ noise  # a drifting estimate ...
    pred[:, :3, 3] *= 0.3  # ... at another scale
    ate = absolute_trajectory_error(gt, pred, with_scale=True)
    f2f = frame_to_frame_rpe(gt, ate["aligned"])

    ref, est = PosePath3D(poses_se3=list(gt)), PosePath3D(poses_se3=list(pred))
    est.align(ref, correct_scale=True)
    ape = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    rpe_t = evo_metrics.RPE(evo_metrics.PoseRelation.translation_part, delta=1,
                            delta_unit=evo_metrics.Unit.frames, all_pairs=False)
    rpe_t.process_data((ref, est))
    rpe_r = evo_metrics.RPE(evo_metrics.PoseRelation.rotation_angle_deg, delta=1,
                            delta_unit=evo_metrics.Unit.frames, all_pairs=False)
    rpe_r.process_data((ref, est))
    assert ate["ate"] == pytest.approx(ape.get_statistic(evo_metrics.StatisticsType.rmse),
                                       abs=1e-6)
    assert f2f["trans_rmse"] == pytest.approx(
        rpe_t.get_statistic(evo_metrics.StatisticsType.rmse), abs=1e-6)
    assert f2f["rot_mean"] == pytest.approx(
        rpe_r.get_statistic(evo_metrics.StatisticsType.mean), abs=1e-6)
