"""Trajectory alignment and odometry errors (Umeyama similarity, ATE, KITTI-style RPE).

Conventions (the same as the rest of ``geometry``, OpenCV camera axes):

- A trajectory is ``poses [N,4,4]`` (or ``[N,3,4]``) of **camera-to-world** transforms
  ``world_T_cam_i``, the format of KITTI odometry ``poses.txt``: the position of camera i
  is ``poses[i, :3, 3]``.
- A relative motion ``T_{i→j}`` maps points from camera i's frame into camera j's frame
  (``ref_T_tgt`` with tgt = i, ref = j: what ``PoseNet(I_i, I_j)`` predicts), so
  ``T_{i→j} = inv(world_T_cam_j) · world_T_cam_i`` and, chaining,
  ``world_T_cam_{i+1} = world_T_cam_i · inv(T_{i→i+1})``.
- A similarity ``(s, R, t)`` maps a point ``x`` to ``s·R·x + t``.

Unlike the batched torch functions of ``geometry.camera`` these are evaluation tools: they
take and return numpy arrays and compute in float64 (trajectories are short, and chained
poses lose precision quickly in float32).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "KITTI_RPE_LENGTHS",
    "absolute_trajectory_error",
    "align_trajectory",
    "apply_similarity",
    "chain_relative_poses",
    "frame_to_frame_rpe",
    "kitti_rpe",
    "relative_motions",
    "rotation_angle",
    "rpe_lengths",
    "to_homogeneous",
    "trajectory_distances",
    "umeyama_alignment",
]

# Sub-sequence lengths of the KITTI odometry benchmark, metres.
KITTI_RPE_LENGTHS = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0)


def _points(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must be [N,3], got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or Inf")
    return arr


def umeyama_alignment(src: np.ndarray, dst: np.ndarray, with_scale: bool = True,
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity that best maps ``src`` onto ``dst`` in the least-squares sense.

    Umeyama (PAMI 1991): minimises ``Σ‖dst_i − (s·R·src_i + t)‖²`` over a rotation R
    (det +1: a reflection is never returned, even when it would fit better), a scale s > 0
    and a translation t.

    src, dst: ``[N,3]`` corresponding points, N ≥ 1. with_scale: False fixes s = 1 (a rigid
    alignment, for trajectories whose scale is known). Returns ``(s, R [3,3], t [3])``.

    Degenerate inputs: when ``src`` has no spread (one point, or all equal, e.g. a
    zero-motion trajectory) no rotation or scale is defined; then R = I, s = 1 and t moves
    src's centroid onto dst's, which is still a least-squares optimum. Collinear points
    leave the rotation about their line free; the SVD picks one of the optimal ones.
    """
    src, dst = _points(src, "src"), _points(dst, "dst")
    if src.shape != dst.shape:
        raise ValueError(f"src and dst must have the same shape, got {src.shape} and "
                         f"{dst.shape}")
    n = src.shape[0]
    if n < 1:
        raise ValueError("need at least one point pair")
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = float((src_c ** 2).sum() / n)
    # Relative to the data's magnitude, so that a tiny but real trajectory still counts.
    if var_src <= 1e-24 * max(1.0, float((src ** 2).sum() / n)):
        return 1.0, np.eye(3), mu_dst - mu_src
    cov = dst_c.T @ src_c / n
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0  # the optimal orthogonal matrix is a reflection: take the best rotation
    R = U @ S @ Vt
    s = float(np.trace(np.diag(D) @ S) / var_src) if with_scale else 1.0
    t = mu_dst - s * R @ mu_src
    return s, R, t


def apply_similarity(points: np.ndarray, s: float, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """points: ``[N,3]`` -> ``s·R·points + t`` ``[N,3]``."""
    return s * np.asarray(points, dtype=np.float64) @ np.asarray(R).T + np.asarray(t)


def to_homogeneous(poses: np.ndarray) -> np.ndarray:
    """poses: ``[N,3,4]`` or ``[N,4,4]`` -> ``[N,4,4]`` float64 (last row 0 0 0 1)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(f"poses must be [N,3,4] or [N,4,4], got shape {poses.shape}")
    out = np.tile(np.eye(4), (poses.shape[0], 1, 1))
    out[:, :3, :] = poses[:, :3, :]
    return out


def _inv(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ``[...,4,4]`` (R^T, −R^T t): exact, no general inverse."""
    out = np.zeros_like(T)
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -(Rt @ T[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def chain_relative_poses(motions: np.ndarray) -> np.ndarray:
    """Camera-to-world poses from consecutive relative motions.

    motions: ``[N-1,3,4]`` or ``[N-1,4,4]``, ``motions[i] = T_{i→i+1}`` (maps points of
    camera i into camera i+1, what ``PoseNet(I_i, I_{i+1})`` predicts). Returns ``[N,4,4]``
    ``world_T_cam_i`` with the world frame = camera 0:
    ``P_0 = I``, ``P_{i+1} = P_i · inv(T_{i→i+1})``.
    """
    motions = to_homogeneous(motions) if len(motions) else np.zeros((0, 4, 4))
    poses = [np.eye(4)]
    for T in motions:
        poses.append(poses[-1] @ _inv(T))
    return np.stack(poses)


def relative_motions(poses: np.ndarray) -> np.ndarray:
    """The inverse of :func:`chain_relative_poses`: ``[N,4,4]`` camera-to-world ->
    ``[N-1,4,4]`` ``T_{i→i+1} = inv(P_{i+1}) · P_i``."""
    P = to_homogeneous(poses)
    return _inv(P[1:]) @ P[:-1]


def align_trajectory(poses: np.ndarray, s: float, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Camera-to-world poses moved by the world similarity ``x -> s·R·x + t``.

    poses: ``[N,3,4]`` or ``[N,4,4]`` -> ``[N,4,4]``: rotation ``R·R_i``, position
    ``s·R·c_i + t``. Relative motions between aligned poses keep their rotation and have
    their translation scaled by s (what monocular odometry needs before it is scored).
    """
    P = to_homogeneous(poses)
    out = P.copy()
    out[:, :3, :3] = R @ P[:, :3, :3]
    out[:, :3, 3] = apply_similarity(P[:, :3, 3], s, R, t)
    return out


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """Angle (radians) of rotation matrices ``[...,3,3]`` (trace formula, clipped)."""
    R = np.asarray(R, dtype=np.float64)
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def trajectory_distances(poses: np.ndarray) -> np.ndarray:
    """Cumulative path length ``[N]`` (metres along the camera centres, starting at 0)."""
    c = to_homogeneous(poses)[:, :3, 3]
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def absolute_trajectory_error(gt: np.ndarray, pred: np.ndarray, with_scale: bool = True,
                              ) -> dict:
    """ATE: RMSE of the camera positions after aligning ``pred`` to ``gt``.

    gt, pred: ``[N,3,4]`` or ``[N,4,4]`` camera-to-world. The alignment is the similarity
    (with_scale=True, monocular) or rigid transform of :func:`umeyama_alignment` on the
    positions. Returns ``{"ate": metres, "scale": s, "R": [3,3], "t": [3],
    "aligned": [N,4,4] aligned pred}``.
    """
    gt_h, pred_h = to_homogeneous(gt), to_homogeneous(pred)
    if gt_h.shape != pred_h.shape:
        raise ValueError(f"gt and pred trajectories differ in length: {len(gt_h)} and "
                         f"{len(pred_h)}")
    s, R, t = umeyama_alignment(pred_h[:, :3, 3], gt_h[:, :3, 3], with_scale)
    aligned = align_trajectory(pred_h, s, R, t)
    err = np.linalg.norm(aligned[:, :3, 3] - gt_h[:, :3, 3], axis=1)
    return {"ate": float(np.sqrt(np.mean(err ** 2))), "scale": s, "R": R, "t": t,
            "aligned": aligned}


def rpe_lengths(total_length: float) -> tuple[float, ...]:
    """Sub-sequence lengths for :func:`kitti_rpe`.

    The KITTI lengths 100…800 m that are shorter than the trajectory; when even 100 m does
    not fit (short sequences, indoor scenes), eight lengths spaced 10 %…80 % of the
    trajectory's own length instead, so that the figures stay defined.
    """
    standard = tuple(length for length in KITTI_RPE_LENGTHS if length < total_length)
    if standard:
        return standard
    if total_length <= 0:
        return ()
    return tuple(total_length * k / 10.0 for k in range(1, 9))


def kitti_rpe(gt: np.ndarray, pred: np.ndarray, lengths: tuple[float, ...] | None = None,
              step: int | None = None) -> dict:
    """Relative pose error as the KITTI odometry benchmark computes it.

    gt, pred: ``[N,3,4]``/``[N,4,4]`` camera-to-world (pred already aligned: its scale must
    match gt's). For every first frame i (every ``step`` frames) and every length L, the
    last frame j is the first whose path distance from i (measured on gt) reaches L; the
    error ``E = inv(inv(gt_i)·gt_j) · (inv(pred_i)·pred_j)`` gives the translation error
    ``‖t(E)‖ / L`` and the rotation error ``angle(E) / L``, averaged over all (i, L).

    lengths: default :func:`rpe_lengths` of the gt path. step: default 10 frames (KITTI's
    value at 10 fps) for sequences of 100 frames or more, 1 for shorter ones.
    Returns ``{"t_err": %, "r_err": °/100 m, "lengths": the lengths, "num": pairs}``;
    t_err/r_err are NaN when no pair fits.
    """
    G, P = to_homogeneous(gt), to_homogeneous(pred)
    if G.shape != P.shape:
        raise ValueError(f"gt and pred trajectories differ in length: {len(G)} and {len(P)}")
    dist = trajectory_distances(G)
    if lengths is None:
        lengths = rpe_lengths(float(dist[-1]))
    if step is None:
        step = 10 if len(G) >= 100 else 1
    t_errs, r_errs = [], []
    for i in range(0, len(G), step):
        for length in lengths:
            j = int(np.searchsorted(dist, dist[i] + length))
            if j >= len(G):
                continue
            E = _inv(_inv(G[i]) @ G[j]) @ (_inv(P[i]) @ P[j])
            t_errs.append(np.linalg.norm(E[:3, 3]) / length)
            r_errs.append(rotation_angle(E[:3, :3]) / length)
    if not t_errs:
        return {"t_err": float("nan"), "r_err": float("nan"), "lengths": tuple(lengths),
                "num": 0}
    return {"t_err": float(np.mean(t_errs) * 100.0),
            "r_err": float(np.degrees(np.mean(r_errs)) * 100.0),
            "lengths": tuple(float(v) for v in lengths), "num": len(t_errs)}


def frame_to_frame_rpe(gt: np.ndarray, pred: np.ndarray) -> dict:
    """The simple RPE between consecutive frames.

    gt, pred: ``[N,3,4]``/``[N,4,4]`` camera-to-world, pred aligned. Returns
    ``{"trans_rmse": m, "rot_mean": degrees}`` of ``E_i = inv(ΔG_i)·ΔP_i`` with
    ``ΔX_i = inv(X_i)·X_{i+1}`` (NaN for fewer than 2 frames).
    """
    G, P = to_homogeneous(gt), to_homogeneous(pred)
    if G.shape != P.shape:
        raise ValueError(f"gt and pred trajectories differ in length: {len(G)} and {len(P)}")
    if len(G) < 2:
        return {"trans_rmse": float("nan"), "rot_mean": float("nan")}
    dG = _inv(G[:-1]) @ G[1:]
    dP = _inv(P[:-1]) @ P[1:]
    E = _inv(dG) @ dP
    trans = np.linalg.norm(E[:, :3, 3], axis=1)
    return {"trans_rmse": float(np.sqrt(np.mean(trans ** 2))),
            "rot_mean": float(np.degrees(rotation_angle(E[:, :3, :3]).mean()))}
