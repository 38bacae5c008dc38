"""Textures of the synthetic scenes: tileable images (fractal noise, bricks, checkers,
stripes, tiles, windows and the photos of demo/input), packed into a mip-mapped atlas."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

TILE = 256  # texels of a texture tile (the atlas level 0)
PHOTO_DIR = Path(__file__).resolve().parents[2] / "demo" / "input"


# --------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------
def _fractal_noise(rng: np.random.Generator, channels: int = 1, slope: float = 0.9,
                   size: int = TILE) -> np.ndarray:
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
    T = TILE
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
    for path in sorted(PHOTO_DIR.glob("*.jpg")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            photos.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return photos


def _build_atlas(tiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mip-mapped atlas: level l holds every tile at ``T>>l`` texels, each padded by one
    wrapped texel on every side (so bilinear filtering wraps), side by side; levels are
    stacked vertically. Returns (atlas uint8 ``[h,w,3]``, y offset of each level)."""
    levels = int(math.log2(TILE))  # down to 2×2 texels
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
        size = TILE >> lev
        row = np.concatenate([p[lev] for p in pyramids], axis=1)
        row = np.round(np.clip(row, 0, 1) * 255).astype(np.uint8)
        level_y[lev] = y
        y += size + 2
        rows.append((row, size))
    atlas = np.zeros((y, len(tiles) * (TILE + 2), 3), dtype=np.uint8)
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

