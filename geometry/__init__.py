"""Camera geometry: pixel grids, back-projection, projection, warps, poses, intrinsics."""

from geometry.camera import (
    backproject,
    inverse_warp,
    pixel_grid,
    pixels_to_grid,
    project,
    rotation_warp,
    transform_points,
)
from geometry.direct_alignment import refine_rotation
from geometry.intrinsics import crop_intrinsics, flip_intrinsics, scale_intrinsics
from geometry.normals import depth_to_normals
from geometry.pose import euler2mat, mat2euler, pose_vec2mat

__all__ = [
    "backproject",
    "crop_intrinsics",
    "depth_to_normals",
    "euler2mat",
    "flip_intrinsics",
    "inverse_warp",
    "mat2euler",
    "pixel_grid",
    "pixels_to_grid",
    "pose_vec2mat",
    "project",
    "refine_rotation",
    "rotation_warp",
    "scale_intrinsics",
    "transform_points",
]
from geometry.alignment import (  # noqa: F401  (trajectory evaluation, numpy)
    absolute_trajectory_error,
    align_trajectory,
    chain_relative_poses,
    frame_to_frame_rpe,
    kitti_rpe,
    relative_motions,
    umeyama_alignment,
)
