"""Coloured point clouds from depth maps, written as binary PLY (MeshLab, CloudCompare, Open3D).

Points are in the camera frame with OpenCV axes (x right, y down, z forward), in the units
of the depth map; back-projection is ``geometry.backproject`` (``X = D(p)·K⁻¹·[u, v, 1]ᵀ``
at pixel centres ``(u, v) = (column, row)``), the same as the warps use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geometry import backproject
from utils.io import write_atomic

__all__ = ["depth_to_points", "read_ply", "write_ply"]

# One vertex of the files written here: what every PLY viewer reads as a coloured point.
_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def depth_to_points(depth: np.ndarray, K: np.ndarray, image: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every valid pixel of a depth map.

    depth: ``[H,W]`` (> 0 and finite where valid); K: ``[3,3]`` intrinsics of this
    resolution; image: ``[H,W,3]`` RGB (0..255, any dtype) for the colours, default grey.
    Returns ``points [N,3]`` float32 and ``colors [N,3]`` uint8 of the N valid pixels, in
    row-major pixel order.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be [H,W], got shape {depth.shape}")
    H, W = depth.shape
    K_inv = torch.linalg.inv(torch.as_tensor(np.asarray(K, dtype=np.float64)))[None]
    pts = backproject(torch.from_numpy(depth.astype(np.float64))[None, None], K_inv)
    pts = pts[0].reshape(3, -1).T.numpy().astype(np.float32)
    valid = (np.isfinite(depth) & (depth > 0)).reshape(-1)
    if image is None:
        colors = np.full((H * W, 3), 128, dtype=np.uint8)
    else:
        image = np.asarray(image)
        if image.shape != (H, W, 3):
            raise ValueError(f"image must be [H,W,3] = {(H, W, 3)}, got {image.shape}")
        colors = np.clip(np.rint(image.astype(np.float32)), 0, 255).astype(np.uint8)
        colors = colors.reshape(-1, 3)
    return pts[valid], colors[valid]


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Write a binary little-endian PLY with vertices ``x y z red green blue``.

    points: ``[N,3]`` (stored as float32); colors: ``[N,3]`` uint8 RGB (default grey).
    The file is written under a temporary name and renamed, so a reader never sees half
    of it. Returns the path.
    """
    path = Path(path)
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [N,3], got shape {points.shape}")
    if colors is None:
        colors = np.full(points.shape, 128, dtype=np.uint8)
    colors = np.asarray(colors)
    if colors.shape != points.shape:
        raise ValueError(f"colors must be [N,3] like points, got shape {colors.shape}")
    vertices = np.empty(len(points), dtype=_VERTEX)
    vertices["x"], vertices["y"], vertices["z"] = points[:, 0], points[:, 1], points[:, 2]
    colors = colors.astype(np.uint8)
    vertices["red"], vertices["green"], vertices["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(points)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\n"
              "end_header\n").encode("ascii")
    return write_atomic(path, header + vertices.tobytes())


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a PLY written by :func:`write_ply`: ``(points [N,3] float32, colors [N,3] uint8)``.

    Only that layout is accepted (binary little-endian, float x y z, uchar red green blue);
    anything else raises ValueError.
    """
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"not a PLY file: {path}")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"not a binary little-endian PLY: {path}")
    props = [line.split()[-1] for line in header if line.startswith("property")]
    if props != list(_VERTEX.names):
        raise ValueError(f"unexpected PLY properties {props}: {path}")
    count = next(int(line.split()[-1]) for line in header if line.startswith("element vertex"))
    body = data[end + len(b"end_header\n"):]
    if len(body) != count * _VERTEX.itemsize:
        raise ValueError(f"PLY body holds {len(body)} bytes, expected "
                         f"{count * _VERTEX.itemsize}: {path}")
    v = np.frombuffer(body, dtype=_VERTEX)
    points = np.stack([v["x"], v["y"], v["z"]], axis=1)
    colors = np.stack([v["red"], v["green"], v["blue"]], axis=1)
    return points, colors
