"""Readers for the files of a dataset (SPEC §4): images, ground-truth depth, priors, intrinsics.

Every reader returns plain numpy arrays and turns a bad file into a `DatasetError` whose
message names the file, so that the command-line scripts can print one line instead of a
traceback (see `utils.cli`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse

__all__ = [
    "GT_DEPTH_SUFFIXES",
    "IMAGE_SUFFIXES",
    "DatasetError",
    "gt_depth_suffixes",
    "list_images",
    "read_gt_depth",
    "read_image",
    "read_intrinsics",
    "read_motion_mask",
    "read_prior",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Ground-truth file suffixes accepted per `--dataset_name`, in the order they are looked for.
# "synthetic" is the built-in dataset (datasets/synthetic.py): PNG millimetres or metres in
# .npy/.npz, so that its generator may use either.
GT_DEPTH_SUFFIXES: dict[str, tuple[str, ...]] = {
    "nyu": (".png",),
    "bonn": (".png",),
    "tum": (".png",),
    "kitti": (".npz", ".npy"),
    "ddad": (".npz", ".npy"),
    "synthetic": (".png", ".npy", ".npz"),
}

# 16-bit PNG ground truth: stored value / scale = metres.
_PNG_DEPTH_SCALE = {"nyu": 5000.0, "bonn": 1000.0, "tum": 1000.0, "synthetic": 1000.0}


class DatasetError(ValueError):
    """A dataset file or folder is missing, malformed or inconsistent (the message names it)."""


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from err


def _is_truncated(data: bytes) -> bool:
    """Whether an encoded JPEG/PNG lacks its end marker.

    OpenCV decodes a truncated JPEG without an error (it fills the rest with grey and only
    prints a warning), so the end is checked here. For JPEG, the end-of-image marker must
    follow the last start-of-scan marker: entropy-coded data never contains 0xFFD9 (0xFF is
    byte-stuffed), and bytes appended after a complete image are tolerated.
    """
    if data[:2] == b"\xff\xd8":
        return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-64:]
    return False


def _decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode an image file with OpenCV; unreadable, truncated or empty -> DatasetError."""
    data = _read_bytes(path)
    if not data:
        raise DatasetError(f"empty image file: {path}")
    if _is_truncated(data):
        raise DatasetError(f"truncated image file: {path}")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if img is None or img.size == 0:
        raise DatasetError(f"cannot decode image file: {path}")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as RGB.

    Returns: ``[H,W,3]`` float32 in 0..255. Grey images are repeated over the 3 channels, an
    alpha channel is dropped and 16-bit images are scaled to 0..255.
    """
    path = Path(path)
    img = _decode(path)
    if img.dtype == np.uint16:
        img = img.astype(np.float32) * (255.0 / 65535.0)
    elif img.dtype == np.uint8:
        img = img.astype(np.float32)
    else:
        raise DatasetError(f"unsupported image type {img.dtype} (want 8 or 16 bit): {path}")
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 1:
        img = np.repeat(img, 3, axis=2)
    elif channels == 3:
        img = img[:, :, ::-1]  # OpenCV decodes to BGR
    elif channels == 4:
        img = img[:, :, 2::-1]  # BGRA -> RGB, alpha dropped
    else:
        raise DatasetError(f"unsupported number of channels {channels}: {path}")
    return np.ascontiguousarray(img, dtype=np.float32)


def _clean_depth(depth: np.ndarray) -> np.ndarray:
    """float32 with non-finite and negative values set to 0 (the "invalid" value)."""
    depth = np.asarray(depth, dtype=np.float32)
    depth = np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(depth, 0.0)


def _load_npz(path: Path) -> np.ndarray:
    """A depth map saved by `scipy.sparse.save_npz`, or a dense `np.savez` (its first array)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = archive.files
            if not keys:
                raise DatasetError(f"empty .npz file: {path}")
            # the entries that scipy.sparse.save_npz writes
            if "format" in keys and "shape" in keys:
                return scipy.sparse.load_npz(path).toarray()
            return archive[keys[0]]
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise DatasetError(f"cannot read depth file {path}: {err}") from err


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"cannot read depth file {path}: {err}") from err


def _check_2d(depth: np.ndarray, path: Path) -> np.ndarray:
    depth = np.squeeze(depth)
    if depth.ndim != 2:
        raise DatasetError(f"depth map must be 2-D, got shape {depth.shape}: {path}")
    return depth


def gt_depth_suffixes(dataset_name: str) -> tuple[str, ...]:
    """The ground-truth file suffixes of ``dataset_name``; unknown name -> DatasetError."""
    if dataset_name not in GT_DEPTH_SUFFIXES:
        raise DatasetError(f"unknown dataset name {dataset_name!r} "
                           f"(choices: {', '.join(GT_DEPTH_SUFFIXES)})")
    return GT_DEPTH_SUFFIXES[dataset_name]


def _read_png_depth(path: Path, scale: float, dataset_name: str) -> np.ndarray:
    if path.suffix.lower() != ".png":
        raise DatasetError(f"{dataset_name} ground truth must be a 16-bit .png: {path}")
    raw = _decode(path)
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise DatasetError(f"{dataset_name} ground truth must be a single-channel 16-bit PNG, "
                           f"got {raw.dtype} with shape {raw.shape}: {path}")
    return raw.astype(np.float32) / scale


def _read_array_depth(path: Path, dataset_name: str) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".npy":
        return _load_npy(path)
    raise DatasetError(f"{dataset_name} ground truth must be .npz or .npy: {path}")


def read_gt_depth(path: str | Path, dataset_name: str) -> np.ndarray:
    """Read a ground-truth depth map with the encoding of ``dataset_name`` (SPEC §4).

    nyu: 16-bit PNG / 5000; bonn, tum: 16-bit PNG / 1000; kitti, ddad: ``scipy.sparse``
    ``.npz`` (training/validation), ``.npy`` or dense ``.npz`` (testing), in metres;
    synthetic: 16-bit PNG / 1000 or ``.npy``/``.npz`` in metres.
    Returns: ``[H,W]`` float32 metres, 0 where invalid.
    """
    path = Path(path)
    if dataset_name in ("nyu", "bonn", "tum"):
        depth = _read_png_depth(path, _PNG_DEPTH_SCALE[dataset_name], dataset_name)
    elif dataset_name in ("kitti", "ddad"):
        depth = _read_array_depth(path, dataset_name)
    elif dataset_name == "synthetic":
        if path.suffix.lower() == ".png":
            depth = _read_png_depth(path, _PNG_DEPTH_SCALE[dataset_name], dataset_name)
        else:
            depth = _read_array_depth(path, dataset_name)
    else:
        raise DatasetError(f"unknown dataset name {dataset_name!r} "
                           f"(choices: {', '.join(GT_DEPTH_SUFFIXES)})")
    return _clean_depth(_check_2d(depth, path))


def read_prior(path: str | Path) -> np.ndarray:
    """Read a single-image relative depth prior (V3, ``leres_depth/*.png`` or ``.npy``).

    The published LeReS PNGs are 16-bit with a per-image maximum of 60000; only
    scale-invariant quantities are used, so each map is divided by its own maximum.
    Returns: ``[H,W]`` float32 in [0, 1] (max 1), 0 where invalid (all zeros if nothing is
    valid).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        prior = _load_npy(path)
    elif suffix == ".png":
        prior = _decode(path)
        if prior.dtype not in (np.uint8, np.uint16):
            raise DatasetError(f"unsupported prior type {prior.dtype}: {path}")
    else:
        raise DatasetError(f"prior must be a .png or .npy file: {path}")
    prior = _clean_depth(_check_2d(prior, path))
    peak = float(prior.max())
    return prior / peak if peak > 0 else prior


def read_motion_mask(path: str | Path) -> np.ndarray:
    """Read a moving-object mask (``training/<scene>/dynamic/*.png``, as the synthetic
    generator writes them): any non-zero pixel is on a moving object.

    Returns: ``[H,W]`` float32, 1 on moving objects and 0 elsewhere.
    """
    path = Path(path)
    mask = _decode(path, cv2.IMREAD_GRAYSCALE)
    return (mask > 0).astype(np.float32)


def read_intrinsics(path: str | Path) -> np.ndarray:
    """Read ``cam.txt``: 9 whitespace-separated numbers, the 3×3 matrix K in pixels.

    Returns: ``[3,3]`` float32. Raises DatasetError if the file has not exactly 9 numbers or
    if fx or fy is not positive.
    """
    path = Path(path)
    text = _read_bytes(path).decode("utf-8", errors="replace")
    try:
        values = [float(tok) for tok in text.split()]
    except ValueError as err:
        raise DatasetError(f"intrinsics file must hold 9 numbers ({err}): {path}") from err
    if len(values) != 9:
        raise DatasetError(f"intrinsics file must hold 9 numbers (3×3 K), "
                           f"got {len(values)}: {path}")
    K = np.array(values, dtype=np.float32).reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise DatasetError(f"intrinsics must have finite values and fx, fy > 0: {path}")
    return K


def list_images(folder: str | Path) -> list[Path]:
    """The ``*.jpg``, ``*.jpeg`` and ``*.png`` files of ``folder`` (any case), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
