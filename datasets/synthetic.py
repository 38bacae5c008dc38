"""The built-in synthetic video dataset: ray-cast scenes with exact ground truth.

No real dataset can be downloaded where this project runs, so the demo, the tests and the
benchmarks use video rendered here. Every frame comes with its exact z-depth, camera pose,
intrinsics and a mask of the independently moving objects, plus a deliberately imperfect
relative-depth prior standing in for LeReS (SC-Depth V3).

Two kinds of scene:

- ``driving`` (KITTI-like): a closed street — ground, building facades on both sides, a far
  wall and a high "sky" ceiling so that every ray hits geometry — with parked cars, poles,
  trees, kiosks and balconies. The camera, 1.4-1.7 m above the ground, moves forward
  0.3-1.0 m a frame with gentle yaw turns and small pitch/roll jitter; depth is 2-60 m.
- ``handheld`` (NYU-like): a furnished room. The camera moves a few cm a frame and rotates
  several degrees a frame about all three axes (smooth random walks); depth is 0.5-8 m.

Both have 1-3 objects that move on their own (cars and bouncing balls on the street, balls
and boxes in the room).

Rendering is vectorised numpy ray casting of analytic primitives (an inner box for the
room/street, boxes with a yaw, spheres, vertical cylinders). Rays go through the pixel
centres of the written K exactly (pixel (row i, col j) at (u, v) = (j, i), OpenCV camera
axes); the direction of a ray is ``R · K⁻¹ [u, v, 1]ᵀ``, so its parameter *is* the z-depth.
Colour is the mean of 2×2 samples per pixel; depth, object ids and the dynamic mask come from
the centre sample (never averaged across an edge). Textures are tileable images (fractal
FFT noise, bricks, checkers, stripes, tiles, windows and the three photos of demo/input)
attached to the surfaces by their (u, v) in metres, and sampled from a mip-mapped atlas with
trilinear filtering (cv2.remap), so that a static point keeps its colour from frame to frame.
Shading is Lambertian from a fixed light plus ambient (no shadows, so moving objects never
change the brightness of static points).

Layout written by :func:`generate_dataset` (SPEC §4, plus ``poses.txt`` and ``dynamic/``)::

    DIR/training/<scene>/000000.jpg …  cam.txt  poses.txt  depth/*.png  leres_depth/*.png
                                       dynamic/*.png
    DIR/training/train.txt  val.txt
    DIR/testing/color/*.jpg  depth/*.png  seg_mask/*.png  seg_mask/dynamic_colors.txt
    DIR/README.txt  DIR/summary.json

Depth PNGs are 16-bit millimetres (the ``bonn``/``tum`` convention, ``--dataset_name
synthetic``); poses are camera-to-world 3×4 matrices relative to the first frame, one a line,
row-major (KITTI odometry format).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

__all__ = [
    "DYNAMIC_COLORS",
    "KINDS",
    "Primitive",
    "RenderedFrame",
    "SyntheticScene",
    "build_scene",
    "default_test_stride",
    "generate_dataset",
    "load_scene",
    "make_prior",
    "render_frame",
]

KINDS = ("driving", "handheld")
MOTIONS = ("mixed", *KINDS)

# Colours of the moving objects in testing/seg_mask (RGB), one per object of a scene.
DYNAMIC_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255),
)

PRIOR_MAX = 60000  # what the published LeReS PNGs hold (SPEC §3 V3)
JPEG_QUALITY = 95
DEPTH_MAX_MM = 65535

_TILE = 256  # texels of a texture tile (the atlas level 0)
_PHOTO_DIR = Path(__file__).resolve().parent.parent / "demo" / "input"
# Supersampling: sample 0 is the pixel centre (depth, ids), samples 1-4 are averaged for colour.
_SAMPLE_OFFSETS = np.array([[0.0, 0.0], [-0.25, -0.25], [0.25, -0.25], [-0.25, 0.25],
                            [0.25, 0.25]], dtype=np.float32)
_LIGHT = np.array([0.35, -0.85, -0.40])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)  # towards the light, world axes (y down)
_AMBIENT, _DIFFUSE = 0.42, 0.58
_SENSOR_NOISE = 0.5  # std of the additive noise, in 8-bit levels
_EPS_T = 1e-3


# --------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------
@dataclass
class Primitive:
    """One analytic object. Coordinates are world metres (OpenCV-like axes: y down).

    kind: "box" (half extents ``size``, rotated by ``yaw`` about the vertical axis),
    "sphere" (radius ``size[0]``) or "cylinder" (vertical; radius ``size[0]``, half height
    ``size[1]``). ``positions`` ``[F,3]`` holds the centre per frame for a moving object
    (``None``: static at ``center``). ``uv_offset`` shifts the texture so that objects that
    share a material do not look identical. ``group`` numbers the moving objects of a scene
    (0, 1, …; a car is two boxes of one group); -1 for static ones.
    """

    kind: str
    center: np.ndarray
    size: np.ndarray
    material: int
    yaw: float = 0.0
    positions: np.ndarray | None = None
    uv_offset: tuple[float, float] = (0.0, 0.0)
    group: int = -1

    @property
    def dynamic(self) -> bool:
        return self.positions is not None

    def center_at(self, index: int) -> np.ndarray:
        return self.center if self.positions is None else self.positions[index]

    def half_extent(self) -> np.ndarray:
        """Half extents ``[3]`` of the world axis-aligned bounding box."""
        if self.kind == "box":
            c, s = abs(math.cos(self.yaw)), abs(math.sin(self.yaw))
            hx, hy, hz = self.size
            return np.array([c * hx + s * hz, hy, s * hx + c * hz])
        if self.kind == "sphere":
            return np.full(3, self.size[0])
        return np.array([self.size[0], self.size[1], self.size[0]])


@dataclass
class SyntheticScene:
    """Everything needed to render any frame of one scene deterministically.

    K: ``[3,3]``; poses: ``[F,3,4]`` camera-to-world (world = internal scene frame);
    room_lo/room_hi: the inner box (``[3]``) the camera lives in; room_materials: material
    of its 6 faces (x-, x+, y- = ceiling, y+ = floor, z-, z+); atlas: mip-mapped texture
    atlas (uint8 ``[h,w,3]`` RGB); texels_per_m: ``[M]``.
    """

    name: str
    kind: str
    seed: int
    height: int
    width: int
    K: np.ndarray
    poses: np.ndarray
    room_lo: np.ndarray
    room_hi: np.ndarray
    room_materials: np.ndarray
    objects: list[Primitive]
    atlas: np.ndarray
    texels_per_m: np.ndarray
    level_y: np.ndarray
    material_names: list[str] = field(default_factory=list)
    _dirs: tuple[np.ndarray, ...] | None = field(default=None, repr=False)

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    @property
    def dynamic_objects(self) -> list[int]:
        """Indices (into ``objects``) of the moving primitives."""
        return [i for i, p in enumerate(self.objects) if p.dynamic]

    @property
    def num_moving(self) -> int:
        """Number of independently moving objects (groups of primitives)."""
        return len({p.group for p in self.objects if p.dynamic})

    def relative_poses(self) -> np.ndarray:
        """Camera-to-world ``[F,3,4]`` relative to the first camera (what poses.txt holds)."""
        T = np.tile(np.eye(4), (self.num_frames, 1, 1))
        T[:, :3, :] = self.poses
        return (np.linalg.inv(T[0]) @ T)[:, :3, :]


@dataclass
class RenderedFrame:
    """image: uint8 ``[H,W,3]`` RGB; depth: float32 ``[H,W]`` z-depth in metres (centre
    sample); object_id: int16 ``[H,W]`` (0-5 faces of the room/street, 6+k object k);
    dynamic: bool ``[H,W]`` (a moving object is seen at the pixel centre)."""

    image: np.ndarray
    depth: np.ndarray
    object_id: np.ndarray
    dynamic: np.ndarray


# --------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------
def _fractal_noise(rng: np.random.Generator, channels: int = 1, slope: float = 0.9,
                   size: int = _TILE) -> np.ndarray:
    """Tileable noise with detail at every scale: white noise shaped to a 1/f^slope
    amplitude spectrum (periodic by construction, since it is built in Fourier space).
    Returns float32 ``[T,T,C]`` with zero mean and unit std per channel."""
    f = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2)
    f[0, 0] = 1.0
    amp = f ** (-slope)
    amp[0, 0] = 0.0
    white = rng.standard_normal((channels, size, size))
    out = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(size, size))
    out -= out.mean(axis=(1, 2), keepdims=True)
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-8
    return np.moveaxis(out, 0, -1).astype(np.float32)


def _colour(rng: np.random.Generator, lo: float = 0.15, hi: float = 0.9) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def _grid_ids(size: int, cells_y: int, cells_x: int, offset_rows: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell index and position inside the cell (0..1) on a ``cells_y × cells_x`` grid."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cy = yy * cells_y / size
    row = np.floor(cy)
    cx = xx * cells_x / size + (0.5 * (row % 2) if offset_rows else 0.0)
    col = np.floor(cx) % cells_x
    cell = (row * cells_x + col).astype(np.int64)
    fy, fx = cy - row, cx - np.floor(cx)
    return cell, fy, fx


def _make_tile(kind: str, rng: np.random.Generator, photos: list[np.ndarray]) -> np.ndarray:
    """One tileable texture, float32 ``[T,T,3]`` RGB in 0..1."""
    T = _TILE
    # slope > 1 keeps contrast at coarse scales too, so that texture survives the mip
    # filtering of distant surfaces
    n = _fractal_noise(rng, 3, slope=rng.uniform(1.0, 1.3))
    grain = 1.0 + 0.22 * n[..., :1] + 0.06 * n  # luminance + a little chroma everywhere
    c1, c2 = _colour(rng), _colour(rng)
    if kind == "noise":
        m = 1.0 / (1.0 + np.exp(-1.6 * _fractal_noise(rng, 1, slope=1.1)))
        img = c1 * (1 - m) + c2 * m
    elif kind == "brick":
        rows, cols = int(rng.choice([4, 8])), int(rng.choice([2, 4]))
        cell, fy, fx = _grid_ids(T, rows, cols, offset_rows=True)
        jitter = rng.uniform(0.75, 1.2, rows * cols).astype(np.float32)[cell]
        mortar = (fy < 0.08) | (fx < 0.04)
        brick = c1 * jitter[..., None]
        img = np.where(mortar[..., None], np.float32(0.8) * np.ones(3, np.float32), brick)
    elif kind in ("checker", "bold"):
        cells = int(rng.choice([4, 8])) if kind == "checker" else 4
        if kind == "bold":  # saturated light against dark: for the moving objects
            c1, c2 = _colour(rng, 0.0, 1.0), _colour(rng, 0.0, 0.25)
            c1[int(rng.integers(3))] = 1.0
        cell, _, _ = _grid_ids(T, cells, cells)
        odd = ((cell // cells + cell % cells) % 2).astype(np.float32)[..., None]
        img = c1 * (1 - odd) + c2 * odd
    elif kind == "stripes":
        period = T // int(rng.choice([4, 8, 16]))
        yy, xx = np.mgrid[0:T, 0:T].astype(np.float32)
        coord = {0: xx, 1: yy, 2: xx + yy}[int(rng.integers(3))]
        s = 0.5 + 0.5 * np.sin(2 * np.pi * coord / period)
        if rng.random() < 0.5:  # hard stripes
            s = (s > 0.5).astype(np.float32)
        img = c1 * (1 - s[..., None]) + c2 * s[..., None]
    elif kind == "tiles":
        cells = int(rng.choice([2, 4, 8]))
        cell, fy, fx = _grid_ids(T, cells, cells)
        tint = rng.uniform(0.7, 1.25, (cells * cells, 1)).astype(np.float32)[cell]
        grout = (fy < 0.05) | (fx < 0.05)
        img = np.where(grout[..., None], c2 * 0.5, c1 * tint)
    elif kind == "windows":
        cell, fy, fx = _grid_ids(T, 2, 2)
        glass = (fy > 0.2) & (fy < 0.8) & (fx > 0.25) & (fx < 0.75)
        frame = (fy > 0.15) & (fy < 0.85) & (fx > 0.2) & (fx < 0.8) & ~glass
        sky = np.array([0.25, 0.35, 0.5], np.float32) * (1.0 + 0.5 * fy[..., None])
        img = np.where(glass[..., None], sky, np.where(frame[..., None], c2 * 1.2, c1))
    elif kind == "sky":
        m = np.clip(0.5 + 0.45 * _fractal_noise(rng, 1, slope=1.2), 0, 1)
        img = np.array([0.35, 0.55, 0.85], np.float32) * (1 - m) + np.float32(0.95) * m
    elif kind == "asphalt":
        img = np.broadcast_to(np.array([0.33, 0.33, 0.35], np.float32), (T, T, 3)).copy()
        grain = 1.0 + 0.35 * n[..., :1] + 0.03 * n
        yy = np.mgrid[0:T, 0:T][1]
        lane = (np.abs(yy - T / 2) < T / 64) & (np.mgrid[0:T, 0:T][0] < T / 2)
        img[lane] = 0.9
    elif kind == "photo":
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = min(h, w)
        y0, x0 = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = photo[y0:y0 + side, x0:x0 + side]
        img = cv2.resize(crop, (T, T), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        grain = 1.0 + 0.08 * n[..., :1]
    else:
        raise ValueError(f"unknown texture kind {kind!r}")
    return np.clip(img * grain, 0.0, 1.0).astype(np.float32)


def _load_photos() -> list[np.ndarray]:
    """The committed demo photos (RGB uint8); none if the folder is missing."""
    photos = []
    for path in sorted(_PHOTO_DIR.glob("*.jpg")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            photos.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return photos


def _build_atlas(tiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mip-mapped atlas: level l holds every tile at ``T>>l`` texels, each padded by one
    wrapped texel on every side (so bilinear filtering wraps), side by side; levels are
    stacked vertically. Returns (atlas uint8 ``[h,w,3]``, y offset of each level)."""
    levels = int(math.log2(_TILE))  # down to 2×2 texels
    pyramids = []
    for tile in tiles:
        pyr = [tile]
        for _ in range(1, levels):
            # exact 2×2 averages keep the tile periodic
            pyr.append(cv2.resize(pyr[-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        pyramids.append(pyr)
    level_y = np.zeros(levels, dtype=np.int64)
    rows = []
    y = 0
    for lev in range(levels):
        size = _TILE >> lev
        row = np.concatenate([p[lev] for p in pyramids], axis=1)
        row = np.round(np.clip(row, 0, 1) * 255).astype(np.uint8)
        level_y[lev] = y
        y += size + 2
        rows.append((row, size))
    atlas = np.zeros((y, len(tiles) * (_TILE + 2), 3), dtype=np.uint8)
    for lev, (row, size) in enumerate(rows):
        for m in range(len(tiles)):
            tile = row[:, m * size:(m + 1) * size]
            x0 = m * (size + 2)
            atlas[level_y[lev]:level_y[lev] + size + 2, x0:x0 + size + 2] = np.pad(
                tile, ((1, 1), (1, 1), (0, 0)), mode="wrap")
    return atlas, level_y


class _Materials:
    """Collects (texture kind, metres per tile) and builds the atlas once."""

    def __init__(self, rng: np.random.Generator, photos: list[np.ndarray]) -> None:
        self.rng, self.photos = rng, photos
        self.tiles: list[np.ndarray] = []
        self.metres: list[float] = []
        self.names: list[str] = []

    def add(self, kind: str, metres: float) -> int:
        if kind == "photo" and not self.photos:
            kind = "noise"
        self.tiles.append(_make_tile(kind, self.rng, self.photos))
        self.metres.append(float(metres))
        self.names.append(kind)
        return len(self.tiles) - 1

    def pick(self, choices: Sequence[str], lo: float, hi: float) -> int:
        return self.add(str(self.rng.choice(list(choices))), self.rng.uniform(lo, hi))


# --------------------------------------------------------------------------------------
# Camera motion
# --------------------------------------------------------------------------------------
def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _smooth(rng: np.random.Generator, n: int, amp: float, min_period: float,
            max_period: float, terms: int = 3) -> np.ndarray:
    """A smooth random signal ``[n]``: a sum of sinusoids, peak amplitude about ``amp``."""
    k = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for _ in range(terms):
        period = rng.uniform(min_period, max_period)
        out += np.sin(2 * np.pi * k / period + rng.uniform(0, 2 * np.pi))
    return out * amp / terms


def _driving_trajectory(rng: np.random.Generator, frames: int, z_far_max: float
                        ) -> tuple[np.ndarray, float]:
    """Camera-to-world ``[F,3,4]`` and the travelled distance, camera starting at z = 0."""
    # forward speed 0.3-1.0 m/frame, capped so that the far wall stays within 60 m at the
    # start and more than 15 m ahead at the end
    speed = min(rng.uniform(0.3, 1.0), max(0.3, (z_far_max - 18.0) / max(frames - 1, 1)))
    steps = speed * (1.0 + _smooth(rng, frames, 0.12, 15, 40))
    z = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    # gentle turns: the car follows a lateral sine (|x| <= 0.8 m), heading = path slope
    amp, wavelength = rng.uniform(0.2, 0.6), rng.uniform(20.0, 40.0)
    phase = rng.uniform(0, 2 * np.pi)
    x = amp * np.sin(2 * np.pi * z / wavelength + phase)
    slope = amp * 2 * np.pi / wavelength * np.cos(2 * np.pi * z / wavelength + phase)
    yaw = np.arctan(slope) + np.deg2rad(_smooth(rng, frames, 1.0, 10, 30))
    pitch = np.deg2rad(_smooth(rng, frames, 0.8, 6, 20))
    roll = np.deg2rad(_smooth(rng, frames, 0.6, 6, 20))
    y = _smooth(rng, frames, 0.02, 4, 12)
    poses = np.zeros((frames, 3, 4))
    for k in range(frames):
        poses[k, :, :3] = _rot_y(yaw[k]) @ _rot_x(pitch[k]) @ _rot_z(roll[k])
        poses[k, :, 3] = (x[k], y[k], z[k])
    return poses, float(z[-1])


def _handheld_trajectory(rng: np.random.Generator, frames: int, safe: np.ndarray
                         ) -> np.ndarray:
    """Camera-to-world ``[F,3,4]`` inside ``|p| <= safe`` (room frame, centre at 0)."""
    pos = rng.uniform(-1.0, 1.0, 3) * safe
    vel = np.zeros(3)
    sigma_v = np.array([0.03, 0.012, 0.03])  # m/frame: "a few cm a frame"
    # several degrees a frame in every axis: AR(1) angular rates, pitch and roll pulled back
    # towards upright so that the camera stays a plausible hand-held one
    sigma_r = np.deg2rad(rng.uniform(3.0, 5.0, 3))
    rho = 0.85
    angles = np.array([rng.uniform(-np.pi, np.pi), 0.0, 0.0])  # yaw, pitch, roll
    rates = rng.standard_normal(3) * sigma_r
    limits = np.deg2rad([np.inf, 50.0, 35.0])
    poses = np.zeros((frames, 3, 4))
    for k in range(frames):
        poses[k, :, :3] = _rot_y(angles[0]) @ _rot_x(angles[1]) @ _rot_z(angles[2])
        poses[k, :, 3] = pos
        vel = 0.8 * vel + 0.6 * sigma_v * rng.standard_normal(3) - 0.01 * pos
        new = pos + vel
        out = np.abs(new) > safe
        vel[out] = -vel[out]
        pos = np.clip(pos + vel, -safe, safe)
        rates = rho * rates + math.sqrt(1 - rho**2) * sigma_r * rng.standard_normal(3)
        rates[1:] -= 0.06 * angles[1:]
        angles = angles + rates
        over = np.abs(angles) > limits
        rates[over] = -rates[over]
        angles = np.clip(angles, -limits, limits)
    return poses


# --------------------------------------------------------------------------------------
# Scene construction
# --------------------------------------------------------------------------------------
def _aabb_distance(points: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Distance ``[N]`` from points ``[N,3]`` to an axis-aligned box."""
    d = np.maximum(np.abs(points - center) - half, 0.0)
    return np.linalg.norm(d, axis=-1)


def _boxes_overlap(c1: np.ndarray, h1: np.ndarray, c2: np.ndarray, h2: np.ndarray,
                   margin: float = 0.02) -> bool:
    return bool(np.all(np.abs(c1 - c2) < h1 + h2 + margin))


class _Placer:
    """Rejection sampling of object groups: keep a clearance from every camera centre,
    stay inside the room, and do not overlap what is placed (incl. the swept boxes of the
    moving objects)."""

    def __init__(self, cameras: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 clearance: float) -> None:
        self.cameras, self.lo, self.hi, self.clearance = cameras, lo, hi, clearance
        self.boxes: list[tuple[np.ndarray, np.ndarray]] = []

    @staticmethod
    def bounds(prims: list[Primitive]) -> tuple[np.ndarray, np.ndarray]:
        mins, maxs = [], []
        for p in prims:
            pos = p.positions if p.positions is not None else p.center[None]
            mins.append(pos.min(0) - p.half_extent())
            maxs.append(pos.max(0) + p.half_extent())
        lo, hi = np.min(mins, 0), np.max(maxs, 0)
        return (lo + hi) / 2, (hi - lo) / 2

    def ok(self, prims: list[Primitive], check_overlap: bool = True) -> bool:
        c, h = self.bounds(prims)
        if np.any(c - h < self.lo - 1e-6) or np.any(c + h > self.hi + 1e-6):
            return False
        for p in prims:
            if p.positions is not None:
                # moving object: clearance from the camera of the same frame
                dist = _aabb_distance(self.cameras, p.positions, p.half_extent())
            else:
                dist = _aabb_distance(self.cameras, p.center, p.half_extent())
            if np.any(dist < self.clearance):
                return False
        return not (check_overlap and any(_boxes_overlap(c, h, c2, h2)
                                          for c2, h2 in self.boxes))

    def add(self, prims: list[Primitive]) -> None:
        self.boxes.append(self.bounds(prims))


def _intrinsics(kind: str, height: int, width: int) -> np.ndarray:
    f = (0.8 if kind == "driving" else 0.9) * width
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)


def _driving_scene(rng: np.random.Generator, frames: int, mats: _Materials
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Primitive]]:
    cam_h = rng.uniform(1.4, 1.7)
    half_w = rng.uniform(5.8, 7.0)
    top = -(rng.uniform(6.0, 9.0) - cam_h)
    poses, travel = _driving_trajectory(rng, frames, 60.0)
    z_far = min(60.0, travel + rng.uniform(18.0, 30.0))
    lo = np.array([-half_w, top, -12.0])
    hi = np.array([half_w, cam_h, z_far])
    room_mats = np.array([
        mats.pick(["brick", "windows", "photo", "tiles"], 4.0, 8.0),   # left facade
        mats.pick(["brick", "windows", "noise", "stripes"], 4.0, 8.0),  # right facade
        mats.add("sky", rng.uniform(25.0, 40.0)),                       # "sky" ceiling
        mats.add("asphalt", rng.uniform(3.0, 5.0)),                     # ground
        mats.pick(["brick", "noise"], 5.0, 9.0),                        # back wall
        mats.pick(["photo", "windows", "brick"], 10.0, 18.0),           # far wall
    ], dtype=np.int64)
    obj_mats = [mats.pick(["checker", "stripes", "noise", "photo", "tiles"], 1.0, 3.0)
                for _ in range(6)]
    cameras = poses[:, :, 3]
    placer = _Placer(cameras, lo + np.array([0.0, 0.0, 0.5]), hi, clearance=0.8)
    objects: list[Primitive] = []
    ground = cam_h

    def box(c: Sequence[float], h: Sequence[float], m: int, yaw: float = 0.0) -> Primitive:
        return Primitive("box", np.asarray(c, float), np.asarray(h, float), m, yaw,
                         uv_offset=tuple(rng.uniform(0, 10, 2)))

    def car(x: float, z: float, m: int) -> list[Primitive]:
        hx, hy, hz = rng.uniform(0.8, 0.95), rng.uniform(0.45, 0.6), rng.uniform(1.9, 2.3)
        lift = 0.25  # the body floats over the (invisible) wheels
        body = box((x, ground - lift - hy, z), (hx, hy, hz), m, rng.uniform(-0.05, 0.05))
        cab_h = rng.uniform(0.3, 0.4)
        cab = box((x, ground - lift - 2 * hy - cab_h, z + rng.uniform(-0.4, 0.2)),
                  (hx * 0.85, cab_h, hz * 0.5), m, body.yaw)
        return [body, cab]

    # moving objects first (they need free lanes), 1-3 of them
    mid = frames // 2
    k = np.arange(frames) - mid
    n_moving = 0
    for i in range(int(rng.integers(1, 4))):
        m = mats.add("bold", rng.uniform(0.8, 1.6))  # a bold pattern makes the motion show
        for _ in range(200):
            style = "cross" if i == 0 else str(rng.choice(["cross", "car", "ball"]))
            z_mid = cameras[mid, 2] + rng.uniform(7.0, 20.0)
            if style == "cross":
                # goes back and forth across the street ahead: lateral motion, which a
                # static-world warp cannot explain (motion along the view barely shows)
                amp = rng.uniform(1.5, 3.5)
                speed = rng.uniform(0.15, 0.3)
                phase = rng.uniform(0, 2 * np.pi)
                xs = rng.uniform(-1.5, 1.5) + amp * (np.sin(speed / amp * k + phase)
                                                     - math.sin(phase))
                size = rng.uniform(0.35, 0.6)
                ys = np.full(frames, ground - 0.03 - size)
                pos = np.stack([xs, ys, np.full(frames, z_mid)], 1)
                if rng.random() < 0.5:
                    prims = [Primitive("sphere", pos[0].copy(), np.full(3, size), m,
                                       positions=pos, uv_offset=tuple(rng.uniform(0, 10, 2)))]
                else:
                    prims = [Primitive("box", pos[0].copy(), np.full(3, size), m,
                                       rng.uniform(0, np.pi), positions=pos,
                                       uv_offset=tuple(rng.uniform(0, 10, 2)))]
            else:
                lane_x = rng.choice([-1.0, 1.0]) * rng.uniform(2.4, 2.6)
                zs = z_mid + rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.3) * k
                if style == "car":
                    prims = car(lane_x, 0.0, m)
                    for p in prims:
                        pos = np.repeat(p.center[None], frames, axis=0)
                        pos[:, 2] += zs
                        p.positions = pos
                else:  # a ball bouncing along a lane
                    r = rng.uniform(0.4, 0.7)
                    period = rng.uniform(8, 16)
                    bounce = rng.uniform(0.3, 1.0) * np.abs(np.sin(np.pi * k / period))
                    pos = np.stack([np.full(frames, lane_x), ground - 0.03 - r - bounce, zs], 1)
                    prims = [Primitive("sphere", pos[0].copy(), np.full(3, r), m,
                                       positions=pos, uv_offset=tuple(rng.uniform(0, 10, 2)))]
            if placer.ok(prims):
                placer.add(prims)
                for p in prims:
                    p.group = n_moving
                n_moving += 1
                objects += prims
                break

    # static street furniture along both sides
    z = lo[2] + 2.0
    while z < hi[2] - 2.0:
        for side in (-1.0, 1.0):
            r = rng.random()
            m = obj_mats[int(rng.integers(len(obj_mats)))]
            zz = z + rng.uniform(-2.0, 2.0)
            if r < 0.35:
                prims = car(side * rng.uniform(4.5, 4.7), zz, m)
            elif r < 0.55:
                rad, hh = rng.uniform(0.1, 0.25), rng.uniform(1.5, 3.0)
                prims = [Primitive("cylinder", np.array([side * (half_w - rng.uniform(0.5, 1.3)),
                                                         ground - hh, zz]),
                                   np.array([rad, hh, rad]), m,
                                   uv_offset=tuple(rng.uniform(0, 10, 2)))]
            elif r < 0.7:
                # tree: trunk and crown
                hh = rng.uniform(1.2, 2.0)
                x = side * (half_w - rng.uniform(1.0, 1.4))
                rad = rng.uniform(1.0, 1.6)
                prims = [Primitive("cylinder", np.array([x, ground - hh, zz]),
                                   np.array([0.2, hh, 0.2]), m),
                         Primitive("sphere", np.array([x, ground - 2 * hh - rad * 0.8, zz]),
                                   np.full(3, rad), obj_mats[int(rng.integers(6))],
                                   uv_offset=tuple(rng.uniform(0, 10, 2)))]
            elif r < 0.8:
                rad = rng.uniform(0.3, 0.6)
                prims = [Primitive("sphere", np.array([side * (half_w - rng.uniform(0.7, 1.3)),
                                                       ground - rad, zz]), np.full(3, rad), m,
                                   uv_offset=tuple(rng.uniform(0, 10, 2)))]
            else:
                h = (rng.uniform(0.8, 1.5), rng.uniform(1.0, 1.5), rng.uniform(1.0, 2.0))
                prims = [box((side * (half_w - 0.1 - h[0]),
                              ground - h[1], zz), h, m)]
            if placer.ok(prims):
                placer.add(prims)
                objects += prims
            # balconies / pillars on the facade give depth edges high up
            if rng.random() < 0.8:
                hh = (rng.uniform(0.4, 0.9), rng.uniform(0.1, 0.5), rng.uniform(1.0, 2.5))
                y = ground - rng.uniform(2.5, 6.0)
                prims = [box((side * (half_w - hh[0]), y, z + rng.uniform(-3, 3)), hh,
                             obj_mats[int(rng.integers(6))])]
                if placer.ok(prims):
                    placer.add(prims)
                    objects += prims
        z += rng.uniform(5.0, 9.0)
    return poses, lo, hi, room_mats, objects


def _handheld_scene(rng: np.random.Generator, frames: int, mats: _Materials
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Primitive]]:
    half_x, half_z = rng.uniform(2.5, 3.6), rng.uniform(3.5, 4.5)
    floor = rng.uniform(1.3, 1.6)
    ceiling = floor - rng.uniform(2.6, 3.1)
    lo = np.array([-half_x, ceiling, -half_z])
    hi = np.array([half_x, floor, half_z])
    # the camera stays >= 1.4 m from the walls and >= 1 m from floor and ceiling
    safe = np.array([half_x - 0.9, min(0.2, -ceiling - 1.0, floor - 1.0), half_z - 0.9])
    poses = _handheld_trajectory(rng, frames, np.maximum(safe, 0.05))
    room_mats = np.array([
        mats.pick(["photo", "brick", "stripes", "noise"], 1.5, 3.0),
        mats.pick(["photo", "tiles", "stripes", "noise"], 1.5, 3.0),
        mats.pick(["tiles", "noise"], 1.5, 3.0),                      # ceiling
        mats.pick(["tiles", "checker", "stripes", "noise"], 1.0, 2.5),  # floor
        mats.pick(["photo", "brick", "noise"], 1.5, 3.0),
        mats.pick(["photo", "windows", "stripes"], 1.5, 3.5),
    ], dtype=np.int64)
    obj_mats = [mats.pick(["checker", "stripes", "noise", "photo", "tiles", "brick"], 0.5, 1.5)
                for _ in range(6)]
    cameras = poses[:, :, 3]
    placer = _Placer(cameras, lo, hi, clearance=0.6)
    objects: list[Primitive] = []

    def pick_mat() -> int:
        return obj_mats[int(rng.integers(len(obj_mats)))]

    def offset() -> tuple[float, float]:
        return tuple(rng.uniform(0, 10, 2))

    mid = frames // 2
    k = np.arange(frames) - mid
    for i in range(int(rng.integers(1, 4))):
        m = mats.add("bold", rng.uniform(0.5, 1.0))
        for attempt in range(300):
            size = rng.uniform(0.15, 0.3)
            if i == 0 and attempt < 200:
                # the first one crosses the middle frame's view, so that it is seen
                centre = cameras[mid] + poses[mid, :, 2] * rng.uniform(1.4, 2.6)
                centre += rng.uniform(-0.3, 0.3, 3)
            else:
                centre = rng.uniform(lo + 0.5, hi - 0.5)
            speed = rng.uniform(0.1, 0.25)
            period = rng.uniform(20, 40)
            direction = rng.standard_normal(3) * np.array([1.0, 0.3, 1.0])
            direction /= np.linalg.norm(direction)
            amp = speed * period / (2 * np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            path = np.sin(2 * np.pi * k / period + phase) - math.sin(phase)
            pos = centre + amp * path[:, None] * direction
            if rng.random() < 0.6:
                prim = Primitive("sphere", pos[0].copy(), np.full(3, size), m,
                                 positions=pos, uv_offset=offset())
            else:
                prim = Primitive("box", pos[0].copy(), np.full(3, size), m,
                                 rng.uniform(0, np.pi), positions=pos, uv_offset=offset())
            if placer.ok([prim]):
                placer.add([prim])
                prim.group = len(objects)
                objects.append(prim)
                break

    def box(c: Sequence[float], h: Sequence[float], m: int, yaw: float = 0.0) -> Primitive:
        return Primitive("box", np.asarray(c, float), np.asarray(h, float), m, yaw,
                         uv_offset=offset())

    n_groups = int(rng.integers(9, 15))
    for _ in range(n_groups * 6):
        if n_groups <= 0:
            break
        r = rng.random()
        x, z = rng.uniform(lo[0] + 0.3, hi[0] - 0.3), rng.uniform(lo[2] + 0.3, hi[2] - 0.3)
        yaw = rng.uniform(0, np.pi)
        m = pick_mat()
        if r < 0.2:  # table: top and four legs
            hx, hz, height = rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.6), rng.uniform(0.7, 0.8)
            c, s = math.cos(yaw), math.sin(yaw)
            prims = [box((x, floor - height, z), (hx, 0.03, hz), m, yaw)]
            for sx, sz in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
                lx, lz = sx * (hx - 0.05), sz * (hz - 0.05)
                prims.append(box((x + c * lx + s * lz, floor - (height - 0.03) / 2,
                                  z - s * lx + c * lz), (0.03, (height - 0.03) / 2, 0.03),
                                 m, yaw))
        elif r < 0.4:  # cabinet
            h = (rng.uniform(0.25, 0.5), rng.uniform(0.4, 1.0), rng.uniform(0.25, 0.6))
            prims = [box((x, floor - h[1], z), h, m, yaw)]
        elif r < 0.55:  # ball on the floor
            rad = rng.uniform(0.15, 0.4)
            prims = [Primitive("sphere", np.array([x, floor - rad, z]), np.full(3, rad), m,
                               uv_offset=offset())]
        elif r < 0.7:  # pillar or barrel
            rad = rng.uniform(0.12, 0.3)
            hh = (floor - ceiling) / 2 if rng.random() < 0.5 else rng.uniform(0.2, 0.6)
            prims = [Primitive("cylinder", np.array([x, floor - hh, z]),
                               np.array([rad, hh, rad]), m, uv_offset=offset())]
        else:  # picture on a wall
            wall = int(rng.integers(4))
            w, h = rng.uniform(0.3, 0.8), rng.uniform(0.25, 0.6)
            y = rng.uniform(ceiling + h + 0.2, floor - h - 0.5)
            m = mats.add("photo", rng.uniform(0.6, 1.6)) if rng.random() < 0.5 else m
            if wall < 2:
                xw = (lo[0] + 0.02) if wall == 0 else (hi[0] - 0.02)
                prims = [box((xw, y, z), (0.02, h, w), m)]
            else:
                zw = (lo[2] + 0.02) if wall == 2 else (hi[2] - 0.02)
                prims = [box((x, y, zw), (w, h, 0.02), m)]
        if placer.ok(prims):
            placer.add(prims)
            objects += prims
            n_groups -= 1
    return poses, lo, hi, room_mats, objects


def build_scene(kind: str, seed: int, frames: int, height: int, width: int,
                name: str = "scene") -> SyntheticScene:
    """Build one scene (geometry, textures, trajectory) deterministically from ``seed``.

    kind: "driving" | "handheld". The camera intrinsics are ``fx = fy = 0.8 W`` (driving) or
    ``0.9 W`` (handheld), ``cx = W/2``, ``cy = H/2``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    mats = _Materials(rng, _load_photos())
    build = _driving_scene if kind == "driving" else _handheld_scene
    poses, lo, hi, room_mats, objects = build(rng, frames, mats)
    atlas, level_y = _build_atlas(mats.tiles)
    return SyntheticScene(
        name=name, kind=kind, seed=int(seed), height=int(height), width=int(width),
        K=_intrinsics(kind, height, width), poses=poses, room_lo=lo, room_hi=hi,
        room_materials=room_mats, objects=objects, atlas=atlas,
        texels_per_m=(_TILE / np.array(mats.metres)).astype(np.float32), level_y=level_y,
        material_names=mats.names)


# --------------------------------------------------------------------------------------
# Ray casting
# --------------------------------------------------------------------------------------
def _camera_dirs(scene: SyntheticScene) -> tuple[np.ndarray, ...]:
    """Camera-frame ray directions ``(x, y, |d|)`` each ``[S,H,W]`` float32, z = 1."""
    if scene._dirs is None:
        H, W = scene.height, scene.width
        K = scene.K
        ii, jj = np.mgrid[0:H, 0:W].astype(np.float32)
        u = jj[None] + _SAMPLE_OFFSETS[:, 0, None, None]
        v = ii[None] + _SAMPLE_OFFSETS[:, 1, None, None]
        x = ((u - K[0, 2]) / K[0, 0]).astype(np.float32)
        y = ((v - K[1, 2]) / K[1, 1]).astype(np.float32)
        norm = np.sqrt(x * x + y * y + 1).astype(np.float32)
        scene._dirs = (x, y, norm)
    return scene._dirs


class _Hits:
    """Per-ray buffers ``[S,H,W]`` of the nearest hit found so far."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.t = np.full(shape, np.inf, np.float32)
        self.oid = np.zeros(shape, np.int16)
        self.mat = np.zeros(shape, np.int16)
        self.u = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self.ndl = np.zeros(shape, np.float32)  # n · light
        self.cos = np.ones(shape, np.float32)  # |n · ray| / |ray|


def _hit_room(hits: _Hits, o: np.ndarray, D: tuple[np.ndarray, ...], norm: np.ndarray,
              scene: SyntheticScene) -> None:
    """Exit point of the rays from the inner box (camera inside)."""
    lo, hi = scene.room_lo - o, scene.room_hi - o
    ts = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            inv = np.float32(1.0) / D[a]
            ts.append(np.maximum(np.float32(lo[a]) * inv, np.float32(hi[a]) * inv))
    tx, ty, tz = ts
    is_x = (tx <= ty) & (tx <= tz)
    is_y = ~is_x & (ty <= tz)
    t = np.minimum(np.minimum(tx, ty), tz)
    P = [np.float32(o[a]) + t * D[a] for a in range(3)]
    hits.t[...] = t
    hits.u[...] = np.where(is_x, P[2], P[0])
    hits.v[...] = np.where(is_y, P[2], P[1])
    Da = np.where(is_x, D[0], np.where(is_y, D[1], D[2]))
    face = np.where(is_x, 0, np.where(is_y, 2, 4)) + (Da > 0)
    hits.oid[...] = face
    hits.mat[...] = scene.room_materials[face]
    # inward normals: +e_a on the low face, -e_a on the high face
    face_ndl = np.array([_LIGHT[0], -_LIGHT[0], _LIGHT[1], -_LIGHT[1], _LIGHT[2], -_LIGHT[2]],
                        dtype=np.float32)
    hits.ndl[...] = face_ndl[face]
    hits.cos[...] = np.abs(Da) / norm


def _screen_box(prim: Primitive, index: int, o: np.ndarray, R: np.ndarray, K: np.ndarray,
                H: int, W: int) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (r0, r1, c0, c1) that may see ``prim``; None when it cannot be seen."""
    c, h = prim.center_at(index), prim.half_extent()
    corners = c + h * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                                for sz in (-1, 1)])
    cam = (corners - o) @ R  # world -> camera: R^T (p - o)
    z = cam[:, 2]
    if np.all(z <= 0):
        return None
    if np.any(z <= 0.05):
        return 0, H, 0, W
    u = K[0, 0] * cam[:, 0] / z + K[0, 2]
    v = K[1, 1] * cam[:, 1] / z + K[1, 2]
    c0, c1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 2, W)
    r0, r1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 2, H)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _hit_object(hits: _Hits, oid: int, prim: Primitive, index: int, o: np.ndarray,
                D: tuple[np.ndarray, ...], norm: np.ndarray, block: tuple[slice, ...]) -> None:
    """Intersect one primitive with the rays of ``block`` and keep the nearer hits."""
    Dx, Dy, Dz = (d[block] for d in D)
    nb = norm[block]
    oc = o - prim.center_at(index)
    f32 = np.float32
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if prim.kind == "sphere":
            r = prim.size[0]
            b = Dx * f32(oc[0]) + Dy * f32(oc[1]) + Dz * f32(oc[2])
            a = nb * nb
            disc = b * b - a * f32(oc @ oc - r * r)
            t = (-b - np.sqrt(disc)) / a
            hit = (disc > 0) & (t > _EPS_T)
        elif prim.kind == "cylinder":
            r, hh = prim.size[0], prim.size[1]
            a = Dx * Dx + Dz * Dz
            b = Dx * f32(oc[0]) + Dz * f32(oc[2])
            disc = b * b - a * f32(oc[0] ** 2 + oc[2] ** 2 - r * r)
            t = (-b - np.sqrt(disc)) / a
            y = f32(oc[1]) + t * Dy
            hit = (disc > 0) & (t > _EPS_T) & (np.abs(y) <= hh)
            cap = None
            if abs(oc[1]) > hh:  # the camera is above or below: one cap faces it
                yc = -hh if oc[1] < 0 else hh
                tc = f32(yc - oc[1]) / Dy
                xc, zc = f32(oc[0]) + tc * Dx, f32(oc[2]) + tc * Dz
                cap = (tc > _EPS_T) & (xc * xc + zc * zc <= r * r) & (~hit | (tc < t))
                t = np.where(cap, tc, t)
                hit = hit | cap
        else:
            c, s = math.cos(prim.yaw), math.sin(prim.yaw)
            Dl = (f32(c) * Dx - f32(s) * Dz, Dy, f32(s) * Dx + f32(c) * Dz)
            ol = np.array([c * oc[0] - s * oc[2], oc[1], s * oc[0] + c * oc[2]])
            tmin, tmax = [], []
            for ax in range(3):
                inv = f32(1.0) / Dl[ax]
                t1 = f32(-prim.size[ax] - ol[ax]) * inv
                t2 = f32(prim.size[ax] - ol[ax]) * inv
                tmin.append(np.minimum(t1, t2))
                tmax.append(np.maximum(t1, t2))
            t = np.maximum(np.maximum(tmin[0], tmin[1]), tmin[2])
            tfar = np.minimum(np.minimum(tmax[0], tmax[1]), tmax[2])
            hit = (t <= tfar) & (t > _EPS_T)
        win = hit & (t < hits.t[block])
        if not win.any():
            return
        tw = t[win]
        dx, dy, dz, nw = Dx[win], Dy[win], Dz[win], nb[win]
        # local hit point (relative to the centre; object-attached texture coordinates)
        px, py, pz = f32(oc[0]) + tw * dx, f32(oc[1]) + tw * dy, f32(oc[2]) + tw * dz
        if prim.kind == "sphere":
            r = f32(prim.size[0])
            u = np.arctan2(pz, px) * r
            v = np.arccos(np.clip(py / r, -1, 1)) * r
            nx, ny, nz = px / r, py / r, pz / r
            ndl = nx * f32(_LIGHT[0]) + ny * f32(_LIGHT[1]) + nz * f32(_LIGHT[2])
            cos = np.abs(nx * dx + ny * dy + nz * dz) / nw
        elif prim.kind == "cylinder":
            r = f32(prim.size[0])
            on_cap = cap[win] if cap is not None else np.zeros(tw.shape, bool)
            u = np.where(on_cap, px, np.arctan2(pz, px) * r)
            v = np.where(on_cap, pz, py)
            nx = np.where(on_cap, 0, px / r)
            nz = np.where(on_cap, 0, pz / r)
            ny = np.where(on_cap, np.sign(oc[1]), 0).astype(np.float32)
            ndl = nx * f32(_LIGHT[0]) + ny * f32(_LIGHT[1]) + nz * f32(_LIGHT[2])
            cos = np.abs(nx * dx + ny * dy + nz * dz) / nw
        else:
            tm = [m[win] for m in tmin]
            is_x = (tm[0] >= tm[1]) & (tm[0] >= tm[2])
            is_y = ~is_x & (tm[1] >= tm[2])
            lx = f32(ol[0]) + tw * Dl[0][win]
            ly = f32(ol[1]) + tw * Dl[1][win]
            lz = f32(ol[2]) + tw * Dl[2][win]
            u = np.where(is_x, lz, lx)
            v = np.where(is_y, lz, ly)
            light_l = np.array([c * _LIGHT[0] - s * _LIGHT[2], _LIGHT[1],
                                s * _LIGHT[0] + c * _LIGHT[2]], dtype=np.float32)
            la = np.where(is_x, light_l[0], np.where(is_y, light_l[1], light_l[2]))
            pa = np.where(is_x, lx, np.where(is_y, ly, lz))
            da = np.where(is_x, Dl[0][win], np.where(is_y, Dl[1][win], Dl[2][win]))
            ndl = np.sign(pa) * la
            cos = np.abs(da) / nw
    sub = [buf[block] for buf in (hits.t, hits.oid, hits.mat, hits.u, hits.v, hits.ndl,
                                  hits.cos)]
    sub[0][win] = tw
    sub[1][win] = oid
    sub[2][win] = prim.material
    sub[3][win] = u + f32(prim.uv_offset[0])
    sub[4][win] = v + f32(prim.uv_offset[1])
    sub[5][win] = ndl
    sub[6][win] = cos


def _shade(scene: SyntheticScene, hits: _Hits, norm: np.ndarray) -> np.ndarray:
    """Colour of the 4 colour samples, averaged: float32 ``[H,W,3]`` in 0..1."""
    H, W = scene.height, scene.width
    t, mat, u, v = hits.t[1:], hits.mat[1:], hits.u[1:], hits.v[1:]
    cos, ndl, nb = hits.cos[1:], hits.ndl[1:], norm[1:]
    tpm = scene.texels_per_m[mat]
    levels = len(scene.level_y)
    # mip level from the texels one pixel covers (the 2×2 samples then only smooth edges);
    # at grazing angles the footprint is stretched, sqrt(cos) trades blur against aliasing
    spacing = np.float32(1.0 / scene.K[0, 0])
    foot = t / nb * spacing * tpm / np.sqrt(np.maximum(cos, np.float32(0.05)))
    lev = np.clip(np.log2(np.maximum(foot, np.float32(1.0))), 0, levels - 1.001)
    l0 = lev.astype(np.int64)
    frac = (lev - l0)[..., None].reshape(4 * H, W, 1)
    su, sv = u * tpm, v * tpm
    scales = (0.5 ** np.arange(levels + 1)).astype(np.float32)
    level_y = np.append(scene.level_y, 0).astype(np.float32)
    colours = []
    for lv in (l0, l0 + 1):
        scale = scales[lv]
        size = np.float32(_TILE) * scale
        x, y = su * scale, sv * scale
        x = x - np.floor(x / size) * size + np.float32(0.5) + mat * (size + 2)
        y = y - np.floor(y / size) * size + np.float32(0.5) + level_y[lv]
        colours.append(cv2.remap(scene.atlas, x.reshape(4 * H, W).astype(np.float32),
                                 y.reshape(4 * H, W).astype(np.float32), cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE))
    c0 = colours[0].astype(np.float32)
    col = c0 + (colours[1].astype(np.float32) - c0) * frac
    shade = (np.float32(_AMBIENT) + np.float32(_DIFFUSE) * np.maximum(ndl, 0)).reshape(
        4 * H, W, 1)
    col = (col * shade).reshape(4, H, W, 3).mean(axis=0)
    return col / np.float32(255.0)


def render_frame(scene: SyntheticScene, index: int, dynamic: bool = True,
                 noise: bool = True) -> RenderedFrame:
    """Render frame ``index`` of ``scene``.

    dynamic=False leaves the moving objects out (what the static world looks like);
    noise=False skips the sensor noise. Returns a :class:`RenderedFrame` (image uint8
    ``[H,W,3]`` RGB, depth float32 ``[H,W]`` metres, object_id int16 ``[H,W]``,
    dynamic bool ``[H,W]``).
    """
    H, W = scene.height, scene.width
    x, y, norm = _camera_dirs(scene)
    R = scene.poses[index, :, :3]
    o = scene.poses[index, :, 3]
    Rf = R.astype(np.float32)
    D = tuple(Rf[a, 0] * x + Rf[a, 1] * y + Rf[a, 2] for a in range(3))
    hits = _Hits(x.shape)
    _hit_room(hits, o, D, norm, scene)
    for k, prim in enumerate(scene.objects):
        if prim.dynamic and not dynamic:
            continue
        box = _screen_box(prim, index, o, R, scene.K, H, W)
        if box is None:
            continue
        block = (slice(None), slice(box[0], box[1]), slice(box[2], box[3]))
        _hit_object(hits, 6 + k, prim, index, o, D, norm, block)
    colour = _shade(scene, hits, norm)
    if noise:
        rng = np.random.default_rng([scene.seed, index, 7])
        colour = colour + rng.standard_normal(colour.shape, np.float32) * np.float32(
            _SENSOR_NOISE / 255.0)
    image = np.clip(np.round(colour * 255), 0, 255).astype(np.uint8)
    oid = hits.oid[0]
    is_dyn = np.zeros(6 + len(scene.objects), bool)
    is_dyn[[6 + k for k in scene.dynamic_objects]] = True
    return RenderedFrame(image=image, depth=hits.t[0].copy(), object_id=oid.copy(),
                         dynamic=is_dyn[oid])


# --------------------------------------------------------------------------------------
# The LeReS-like prior
# --------------------------------------------------------------------------------------
def make_prior(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A relative-depth map made from GT ``depth`` ``[H,W]`` (metres, > 0) that is wrong the
    way a single-image network is: in inverse depth an unknown scale and shift, blurred
    depth boundaries, smooth low-frequency error and 1-2 patches pushed nearer or farther.
    Returns uint16 ``[H,W]``, larger = farther, maximum exactly 60000.

    There is deliberately no per-pixel noise: a network's output is smooth, and i.i.d. noise
    of even 1 % of the depth range swamps the neighbour differences that surface normals are
    made of (it put the prior's normals ~30-40° off the true ones, where a real prior's are
    close), which is not the imperfection V3 is meant to cope with."""
    H, W = depth.shape
    disp = 1.0 / np.maximum(depth.astype(np.float32), 1e-3)
    # errors are sized relative to the image's own inverse-depth range, as a network that
    # predicts normalised relative depth makes them (a wall seen head-on keeps its order)
    lo, hi = float(disp.min()), float(disp.max())
    span = max(hi - lo, 1e-3 * hi)
    d = (disp - lo) / span
    d = cv2.GaussianBlur(d, (0, 0), max(1.0, 0.006 * max(H, W)))  # soft depth edges
    low = cv2.resize(rng.standard_normal((4, 5)).astype(np.float32), (W, H),
                     interpolation=cv2.INTER_CUBIC)
    d = d + 0.04 * low
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):  # wrong regions, pushed nearer or farther
        cy, cx = rng.uniform(0.1, 0.9) * H, rng.uniform(0.1, 0.9) * W
        ry, rx = rng.uniform(0.06, 0.15) * H, rng.uniform(0.06, 0.15) * W
        inside = np.clip(1.5 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2), 0, 1)
        d = d + rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.25) * inside
    disp = lo + span * d
    # the unknown affine map of a relative-depth network, in inverse depth
    scale = rng.uniform(0.5, 2.0)
    shift = rng.uniform(0.05, 0.3) * float(np.median(disp))
    disp = scale * (np.maximum(disp, 0.05 * lo) + shift)
    rel = 1.0 / disp
    out = np.round(rel / rel.max() * PRIOR_MAX)
    return np.clip(out, 1, PRIOR_MAX).astype(np.uint16)


# --------------------------------------------------------------------------------------
# Dataset writer
# --------------------------------------------------------------------------------------
def default_test_stride(test_scenes: int, frames: int, target: int = 30) -> int:
    """Stride that gives about ``target`` test images (at least 1)."""
    return max(1, round(test_scenes * frames / target))


def _scene_kinds(n: int, motion: str, first: str) -> list[str]:
    if motion != "mixed":
        return [motion] * n
    other = KINDS[1] if first == KINDS[0] else KINDS[0]
    return [first if i % 2 == 0 else other for i in range(n)]


def _scene_seed(seed: int, split: str, index: int) -> int:
    code = {"train": 0, "val": 1, "test": 2}[split]
    return int(np.random.SeedSequence([seed, code, index]).generate_state(1)[0])


def _plan(seed: int, scenes: int, frames: int, val_scenes: int, test_scenes: int,
          motion: str) -> list[dict[str, Any]]:
    plan = []
    for split, n, first in (("train", scenes, "driving"), ("val", val_scenes, "handheld"),
                            ("test", test_scenes, "driving")):
        for i, kind in enumerate(_scene_kinds(n, motion, first)):
            plan.append({"name": f"{split}_{i:03d}_{kind}", "split": split, "kind": kind,
                         "seed": _scene_seed(seed, split, i), "frames": frames})
    return plan


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {path}")


def _write_jpg(path: Path, rgb: np.ndarray) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    if not cv2.imwrite(str(path), bgr, params):
        raise OSError(f"could not write {path}")


def _depth_mm(depth: np.ndarray) -> np.ndarray:
    return np.clip(np.round(depth * 1000.0), 0, DEPTH_MAX_MM).astype(np.uint16)


_SCENE_CACHE: dict[str, SyntheticScene] = {}


def _get_scene(entry: dict[str, Any], height: int, width: int) -> SyntheticScene:
    key = f"{entry['name']}:{entry['seed']}:{height}x{width}:{entry['frames']}"
    if key not in _SCENE_CACHE:
        if len(_SCENE_CACHE) >= 2:  # frames arrive scene by scene; keep memory bounded
            _SCENE_CACHE.pop(next(iter(_SCENE_CACHE)))
        _SCENE_CACHE[key] = build_scene(entry["kind"], entry["seed"], entry["frames"],
                                        height, width, entry["name"])
    return _SCENE_CACHE[key]


def _render_task(task: tuple[dict[str, Any], int, int, int, str]) -> dict[str, Any]:
    """Render and write one frame; returns a few statistics for the summary."""
    entry, index, height, width, root = task
    scene = _get_scene(entry, height, width)
    frame = render_frame(scene, index)
    depth = frame.depth
    stats = {"name": entry["name"], "index": index, "depth_min": float(depth.min()),
             "depth_max": float(depth.max()), "dynamic_fraction": float(frame.dynamic.mean())}
    if index == 0:  # every scene renders frame 0: it carries the per-scene facts
        stats["poses"] = scene.relative_poses().reshape(-1, 12)
        stats["num_moving"] = scene.num_moving
    if entry["split"] == "test":
        out = Path(root) / "testing"
        stem = f"{entry['name']}_{index:06d}"
        _write_jpg(out / "color" / f"{stem}.jpg", frame.image)
        _write_png(out / "depth" / f"{stem}.png", _depth_mm(depth))
        seg = np.zeros((height, width, 3), np.uint8)
        for k in scene.dynamic_objects:
            group = scene.objects[k].group
            seg[frame.object_id == 6 + k] = DYNAMIC_COLORS[group % len(DYNAMIC_COLORS)]
        _write_png(out / "seg_mask" / f"{stem}.png", cv2.cvtColor(seg, cv2.COLOR_RGB2BGR))
        valid = depth > 0.1
        med = np.median(depth[valid])
        stats["constant_abs_rel"] = float(np.mean(np.abs(depth[valid] - med) / depth[valid]))
    else:
        out = Path(root) / "training" / entry["name"]
        stem = f"{index:06d}"
        _write_jpg(out / f"{stem}.jpg", frame.image)
        _write_png(out / "depth" / f"{stem}.png", _depth_mm(depth))
        prior_rng = np.random.default_rng([entry["seed"], index, 11])
        _write_png(out / "leres_depth" / f"{stem}.png", make_prior(depth, prior_rng))
        _write_png(out / "dynamic" / f"{stem}.png", frame.dynamic.astype(np.uint8) * 255)
    return stats


def _worker_init() -> None:
    # the pool already uses every core: one OpenCV thread per worker avoids oversubscription
    cv2.setNumThreads(1)


def _run_tasks(tasks: list[tuple], workers: int, bar: tqdm) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for task in tasks:
            yield _render_task(task)
            bar.update()
        return
    # not "fork": a forked child inherits the state of the parent's thread pools (OpenCV,
    # OpenMP of torch) and can deadlock; the fork server is a clean single-threaded process
    # that imports this module once, and workers fork from it cheaply
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
    else:
        ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(workers, initializer=_worker_init)
    try:
        for stats in pool.imap_unordered(_render_task, tasks, chunksize=4):
            yield stats
            bar.update()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _readme(summary: dict[str, Any]) -> str:
    lines = [
        "SC-Depth built-in synthetic dataset (datasets/synthetic.py)",
        "",
        f"seed {summary['seed']}, {summary['height']}x{summary['width']} pixels, "
        f"{summary['frames']} frames per scene, motion '{summary['motion']}'.",
        "Regenerate: python generate_synthetic_dataset.py --output_dir DIR "
        f"--seed {summary['seed']} --scenes {len(summary['train'])} "
        f"--frames {summary['frames']} --val_scenes {len(summary['val'])} "
        f"--test_scenes {summary['test_scenes']} --height {summary['height']} "
        f"--width {summary['width']} --motion {summary['motion']} "
        f"--test_stride {summary['test_stride']}",
        "",
        "Ray-cast scenes with exact ground truth: 'driving' (street, KITTI-like, depth "
        "2-60 m, forward motion) and 'handheld' (room, NYU-like, depth 0.5-8 m, large "
        "rotations). 1-3 objects per scene move on their own.",
        "",
        "training/<scene>/NNNNNN.jpg   RGB frames (JPEG quality 95)",
        "training/<scene>/cam.txt      3x3 intrinsics K (pixel centres at integer (u, v))",
        "training/<scene>/poses.txt    camera-to-world 3x4 per frame, row-major, relative to",
        "                              the first frame (KITTI odometry format, OpenCV axes)",
        "training/<scene>/depth/       GT z-depth, 16-bit PNG in millimetres (0 = invalid)",
        "training/<scene>/leres_depth/ relative depth prior (imperfect on purpose), 16-bit PNG,",
        "                              larger = farther, maximum 60000 per image",
        "training/<scene>/dynamic/     uint8 mask, 255 where a moving object is seen",
        "training/train.txt, val.txt   scene folder names (validation scenes live in training/)",
        "testing/color, testing/depth  test frames and GT depth (16-bit PNG, millimetres)",
        "testing/seg_mask              moving objects painted in the colours of",
        "                              seg_mask/dynamic_colors.txt ('R G B' a line), rest black",
        "summary.json                  parameters and per-scene statistics",
        "",
        "Use --dataset_name synthetic (depth PNG / 1000).",
        "",
        "Scenes:",
    ]
    for s in summary["scenes"]:
        lines.append(f"  {s['name']:<24} {s['split']:<5} {s['kind']:<8} seed {s['seed']}, "
                     f"{s['num_dynamic_objects']} moving objects, depth "
                     f"{s['depth_min']:.2f}-{s['depth_max']:.2f} m")
    return "\n".join(lines) + "\n"


def generate_dataset(output_dir: str | Path, seed: int = 0, scenes: int = 6, frames: int = 60,
                     val_scenes: int = 1, test_scenes: int = 2, height: int = 256,
                     width: int = 320, motion: str = "mixed", test_stride: int | None = None,
                     progress: bool = True, overwrite: bool = False,
                     workers: int | None = None) -> dict[str, Any]:
    """Render the dataset into ``output_dir`` (layout in the module docstring).

    The files are written into a temporary folder next to ``output_dir`` that is renamed at
    the end, so a failure or Ctrl-C leaves nothing half-written. motion: "mixed" (scenes
    alternate driving / handheld), "driving" or "handheld". test_stride: keep every n-th
    frame of the test scenes (default: about 30 test images). workers: processes (default:
    up to 2 for large sets, 1 for small ones). Raises FileExistsError when ``output_dir`` is
    not empty and ``overwrite`` is False. Returns the summary (also in summary.json).
    """
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    if scenes < 1 or frames < 2 or val_scenes < 0 or test_scenes < 0:
        raise ValueError("need scenes >= 1, frames >= 2, val_scenes >= 0, test_scenes >= 0")
    if height < 8 or width < 8:
        raise ValueError(f"image size too small: {height}x{width}")
    if test_stride is None:
        test_stride = default_test_stride(test_scenes, frames)
    if test_stride < 1:
        raise ValueError(f"test_stride must be >= 1, got {test_stride}")
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"output folder {out} is not empty (use --overwrite)")

    plan = _plan(seed, scenes, frames, val_scenes, test_scenes, motion)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tasks = []
    for entry in plan:
        indices = range(0, frames, test_stride) if entry["split"] == "test" else range(frames)
        tasks += [(entry, i, height, width, str(tmp)) for i in indices]
    if workers is None:
        big = len(tasks) * height * width > 2_000_000
        workers = min(2, os.cpu_count() or 1) if big else 1

    success = False
    try:
        train_dir, test_dir = tmp / "training", tmp / "testing"
        for entry in plan:
            if entry["split"] == "test":
                continue
            d = train_dir / entry["name"]
            for sub in ("depth", "leres_depth", "dynamic"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            K = _intrinsics(entry["kind"], height, width)
            np.savetxt(d / "cam.txt", K, fmt="%.6f")
        train_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("color", "depth", "seg_mask"):
            (test_dir / sub).mkdir(parents=True, exist_ok=True)

        stats: dict[str, list[dict[str, Any]]] = {e["name"]: [] for e in plan}
        with tqdm(total=len(tasks), desc="rendering", unit="frame", disable=not progress) as bar:
            for s in _run_tasks(tasks, workers, bar):
                stats[s["name"]].append(s)

        scene_info = []
        n_colours = 0
        for entry in plan:
            ss = stats[entry["name"]]
            first = next(s for s in ss if s["index"] == 0)
            n_dyn = first["num_moving"]
            info = {**entry, "K": _intrinsics(entry["kind"], height, width).tolist(),
                    "num_dynamic_objects": n_dyn,
                    "depth_min": min(s["depth_min"] for s in ss),
                    "depth_max": max(s["depth_max"] for s in ss),
                    "dynamic_fraction": float(np.mean([s["dynamic_fraction"] for s in ss]))}
            if entry["split"] == "test":
                n_colours = max(n_colours, n_dyn)
                info["test_frames"] = sorted(s["index"] for s in ss)
            else:
                np.savetxt(train_dir / entry["name"] / "poses.txt", first["poses"], fmt="%.9f")
            scene_info.append(info)
        colours = [DYNAMIC_COLORS[i % len(DYNAMIC_COLORS)] for i in range(max(n_colours, 1))]
        (test_dir / "seg_mask" / "dynamic_colors.txt").write_text(
            "".join(f"{r} {g} {b}\n" for r, g, b in colours))
        names = {split: [e["name"] for e in plan if e["split"] == split]
                 for split in ("train", "val", "test")}
        (train_dir / "train.txt").write_text("".join(f"{n}\n" for n in names["train"]))
        (train_dir / "val.txt").write_text("".join(f"{n}\n" for n in names["val"]))
        test_stats = [s for n in names["test"] for s in stats[n]]
        summary = {
            "seed": seed, "height": height, "width": width, "frames": frames,
            "motion": motion, "test_stride": test_stride, "test_scenes": test_scenes,
            "train": names["train"], "val": names["val"], "test": names["test"],
            "num_test_images": len(test_stats),
            "dynamic_colors": [list(c) for c in colours],
            "depth_png_scale": 1000.0, "prior_max": PRIOR_MAX,
            "constant_depth_abs_rel": (float(np.mean([s["constant_abs_rel"]
                                                      for s in test_stats]))
                                       if test_stats else None),
            "scenes": scene_info,
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (tmp / "README.txt").write_text(_readme(summary))

        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            if out.is_dir() and not any(out.iterdir()):
                out.rmdir()
            else:
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                out.rename(old)
                tmp.rename(out)
                if old.is_dir():
                    shutil.rmtree(old)
                else:
                    old.unlink()
        if not out.exists():
            tmp.rename(out)
        success = True
    finally:
        _SCENE_CACHE.clear()
        if not success and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return summary


def load_scene(dataset_dir: str | Path, name: str) -> SyntheticScene:
    """Rebuild scene ``name`` of a generated dataset (from its summary.json), e.g. to render
    a frame without the moving objects."""
    summary = json.loads((Path(dataset_dir) / "summary.json").read_text())
    for entry in summary["scenes"]:
        if entry["name"] == name:
            return build_scene(entry["kind"], entry["seed"], entry["frames"],
                               summary["height"], summary["width"], name)
    raise KeyError(f"no scene {name!r} in {dataset_dir}/summary.json")
