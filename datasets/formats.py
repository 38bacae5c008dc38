"""Every file format of a dataset and of the tools' outputs: one reader/writer pair each.

The layout (docs/method.md, Data)::

    DATASET/training/<scene>/ 000000.jpg …  cam.txt  [frame_index.txt]  [poses.txt]
                              [depth/]  [leres_depth/]  [dynamic/]
    DATASET/training/train.txt  val.txt
    DATASET/testing/color/  depth/  [seg_mask/ + seg_mask/dynamic_colors.txt]

Readers return plain numpy arrays and turn a bad file into a :class:`DatasetError` whose
message names the file, so that the tools print one line instead of a traceback. Writers
are the readers' inverses (tested as round trips); the text formats are written
atomically. What a dataset name implies (ground-truth codec and suffixes) comes from
``datasets.registry``. Companion files (ground truth, priors, masks) are paired with
frames by name, never by position.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse

from datasets.registry import dataset_spec
from utils.errors import UsageError, UserError
from utils.io import write_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# How images enter the networks and the losses: (x/255 - IMAGE_MEAN) / IMAGE_STD on every
# channel. SC-Depth's constants (the public code's), not ImageNet's per-channel statistics.
IMAGE_MEAN = 0.45
IMAGE_STD = 0.225

# V3 priors (<scene>/leres_depth/*.png): 16-bit relative depth, larger = farther, whose
# per-image maximum is PRIOR_MAX (what the published LeReS files hold); 0 marks an invalid
# pixel. Only scale-invariant quantities are used, so the reader divides by the maximum.
PRIOR_DIR = "leres_depth"
PRIOR_SUFFIXES = (".png", ".npy")
PRIOR_MAX = 60000

# Moving-object masks of training scenes (<scene>/dynamic/*.png, the synthetic generator
# writes them): 255 on moving objects; a training diagnostic only.
MOTION_MASK_DIR = "dynamic"

_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = b"\xff\xd8", b"\xff\xd9", b"\xff\xda"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TAIL_BYTES = 4096  # room for the bytes some encoders append after the end marker


class DatasetError(UserError, ValueError):
    """A dataset file or folder is missing, malformed or inconsistent (the message names it)."""


# ---------------------------------------------------------------------------------- images
def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from err


def _truncation(head: bytes, tail: bytes) -> str | None:
    """Why an encoded JPEG/PNG (its first bytes, its last bytes) is cut short, or None.

    OpenCV decodes a truncated JPEG without an error (it fills the rest with grey and only
    prints a warning), so the end is checked here. For JPEG, the end-of-image marker must
    follow the last start-of-scan marker: entropy-coded data never contains 0xFFD9 (0xFF is
    byte-stuffed), and bytes appended after a complete image are tolerated.
    """
    if head[:2] == _JPEG_SOI:
        if tail.rfind(_JPEG_EOI) < 0 or tail.rfind(_JPEG_EOI) < tail.rfind(_JPEG_SOS):
            return "truncated JPEG (no end-of-image marker)"
    elif head[:8] == _PNG_SIGNATURE and b"IEND" not in tail[-64:]:
        return "truncated PNG (no IEND chunk)"
    return None


def check_image_file(path: Path) -> None:
    """Raise DatasetError if ``path`` is empty, unreadable, not a JPEG/PNG, or truncated.

    Reads only the first 8 and the last few KiB bytes: cheap enough for every frame of a
    large dataset before training starts.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
    except OSError as err:
        raise DatasetError(f"unreadable image {path}: {err.strerror or err}") from None
    if size == 0:
        raise DatasetError(f"empty image file {path}")
    if head[:2] != _JPEG_SOI and head != _PNG_SIGNATURE:
        raise DatasetError(f"not a JPEG or PNG image (unreadable): {path}")
    why = _truncation(head, tail)
    if why is not None:
        raise DatasetError(f"{why}: {path}")


def _decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode an image file with OpenCV; unreadable, truncated or empty -> DatasetError."""
    data = _read_bytes(path)
    if not data:
        raise DatasetError(f"empty image file: {path}")
    why = _truncation(data[:8], data[-_TAIL_BYTES:])
    if why is not None:
        raise DatasetError(f"{why}: {path}")
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


def encode_image(img: np.ndarray, suffix: str) -> bytes:
    """img: ``[H,W,3]`` uint8 RGB or ``[H,W]`` uint8/uint16 -> encoded .jpg/.png bytes."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(suffix, img)
    if not ok:
        raise OSError(f"could not encode a {suffix} image")
    return buf.tobytes()


def write_image(path: str | Path, img: np.ndarray) -> Path:
    """Write ``img`` (as :func:`encode_image` takes it) atomically, in the format of the
    suffix (.jpg or .png)."""
    path = Path(path)
    return write_atomic(path, encode_image(img, path.suffix.lower()))


def normalize_image(img: np.ndarray):
    """``[H,W,3]`` float 0..255 RGB -> ``[3,H,W]`` float32 torch tensor as the networks take
    it: ``(x/255 − IMAGE_MEAN) / IMAGE_STD``."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)
    return (t.contiguous() / 255.0 - IMAGE_MEAN) / IMAGE_STD


def denormalize_image(img) -> np.ndarray:
    """The inverse of :func:`normalize_image`: ``[3,H,W]`` (tensor or array) -> uint8
    ``[H,W,3]`` RGB, for display."""
    if hasattr(img, "detach"):
        img = img.detach().float().cpu().numpy()
    arr = np.asarray(img).transpose(1, 2, 0) * IMAGE_STD + IMAGE_MEAN
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def list_images(folder: str | Path) -> list[Path]:
    """The ``*.jpg``, ``*.jpeg`` and ``*.png`` files of ``folder`` (any case), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# ------------------------------------------------------------------------ pairing by name
def files_by_stem(paths: Iterable[Path]) -> dict[str, Path]:
    """stem -> path; two files with one stem cannot be paired by name, so that is an error."""
    by_stem: dict[str, Path] = {}
    for p in paths:
        if p.stem in by_stem:
            raise DatasetError(f"two files share the name {p.stem!r}: {by_stem[p.stem]}, {p}")
        by_stem[p.stem] = p
    return by_stem


def companion_files(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case), by stem (a duplicate
    stem is an error); an absent folder has none."""
    if not folder.is_dir():
        return {}
    return files_by_stem(p for p in sorted(folder.iterdir())
                         if p.is_file() and p.suffix.lower() in suffixes)


def pair_by_name(images: Sequence[Path], folder: Path, suffixes: Sequence[str],
                 what: str, all_images: Sequence[Path] | None = None) -> list[Path]:
    """For every image, ``folder/<image stem><suffix>``; a missing or extra file -> error.

    ``suffixes``: the accepted file types. ``all_images`` (default ``images``): every image
    that a file in ``folder`` may belong to; a file matching none of them is "extra".
    """
    if not folder.is_dir():
        raise DatasetError(f"missing {what} folder: {folder}")
    files = companion_files(folder, suffixes)
    image_stems = set(files_by_stem(images if all_images is None else all_images))
    extra = sorted(stem for stem in files if stem not in image_stems)
    if extra:
        raise DatasetError(f"{what} file without a matching image: {files[extra[0]]}"
                           + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    paired = []
    for img in images:
        if img.stem not in files:
            raise DatasetError(f"missing {what} file for {img}: "
                               f"expected {folder / (img.stem + suffixes[0])}")
        paired.append(files[img.stem])
    return paired


# ----------------------------------------------------------------------------- text files
def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise DatasetError(f"missing {what}: {path}")
    return _read_bytes(path).decode("utf-8", errors="replace")


def _lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, content) of the non-blank lines, ``#`` comments removed."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield number, line


def read_scene_list(path: Path) -> list[str]:
    """``train.txt``/``val.txt``: scene folder names, one a line (blank lines and ``#``
    comments ignored). A name must be a folder directly under the list's folder: an absolute
    path or one that leaves it (``..``) is a DatasetError."""
    names = []
    for number, name in _lines(_read_text(path, "scene list")):
        candidate = Path(name)
        if candidate.is_absolute() or len(candidate.parts) != 1 or name in (".", ".."):
            raise DatasetError(f"{path}:{number}: {name!r} is not a scene folder name "
                               "(one folder under training/, no path)")
        names.append(name)
    return names


def write_scene_list(path: Path, names: Iterable[str]) -> Path:
    return write_atomic(path, "".join(f"{name}\n" for name in names))


def scene_dirs(root: Path, split_file: str) -> list[Path]:
    """The scene folders named in ``root/split_file``; a missing one -> DatasetError."""
    scenes = [root / name for name in read_scene_list(root / split_file)]
    for scene in scenes:
        if not scene.is_dir():
            raise DatasetError(f"scene listed in {root / split_file} does not exist: {scene}")
    return scenes


def listed_scenes(training: Path) -> list[Path]:
    """The scene folders of ``train.txt`` and ``val.txt`` (either may be absent, not both),
    in order, without repeats; a listed scene that does not exist -> DatasetError."""
    lists = [name for name in ("train.txt", "val.txt") if (training / name).is_file()]
    if not lists:
        raise DatasetError(f"no train.txt or val.txt in {training}")
    scenes = [scene for name in lists for scene in scene_dirs(training, name)]
    return list(dict.fromkeys(scenes))


def read_frame_index(path: Path, num_frames: int) -> list[int]:
    """Integer frame indices of ``frame_index.txt`` (also as floats, as np.savetxt writes)."""
    if not path.is_file():
        raise DatasetError(f"--use_frame_index needs {path}")
    indices = []
    for tok in _read_text(path, "frame index").split():
        try:
            value = float(tok)
        except ValueError as err:
            raise DatasetError(f"not a frame index {tok!r} in {path}") from err
        if not value.is_integer() or not 0 <= value < num_frames:
            raise DatasetError(f"frame index {tok} out of range 0..{num_frames - 1}: {path}")
        indices.append(int(value))
    return indices


def write_frame_index(path: Path, indices: Iterable[int]) -> Path:
    return write_atomic(path, "".join(f"{int(i)}\n" for i in indices))


def read_intrinsics(path: str | Path) -> np.ndarray:
    """Read ``cam.txt``: 9 whitespace-separated numbers, the 3×3 matrix K in pixels.

    Returns: ``[3,3]`` float32. Raises DatasetError if the file has not exactly 9 numbers or
    if fx or fy is not positive.
    """
    path = Path(path)
    text = _read_text(path, "intrinsics file (3x3 K, 9 numbers)")
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


def intrinsics_from(cam_txt: str | Path | None, fx: float | None, fy: float | None,
                    cx: float | None, cy: float | None) -> np.ndarray | None:
    """K ``[3,3]`` float32 from a cam.txt file or from the four numbers (the command lines'
    ``--cam_txt`` or ``--fx --fy --cx --cy``); None when neither is given."""
    values = [fx, fy, cx, cy]
    if cam_txt and any(v is not None for v in values):
        raise UsageError("give either --cam_txt or --fx --fy --cx --cy, not both")
    if cam_txt:
        return read_intrinsics(cam_txt)
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise UsageError("--fx, --fy, --cx and --cy must be given together")
    if fx <= 0 or fy <= 0:
        raise UsageError("--fx and --fy must be positive")
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float32)


def write_intrinsics(path: str | Path, K: np.ndarray) -> Path:
    return write_atomic(path, "".join(" ".join(f"{v:.6f}" for v in row) + "\n"
                                      for row in np.asarray(K, dtype=np.float64)))


def read_poses(path: Path) -> np.ndarray:
    """``poses.txt`` (KITTI odometry format: one camera-to-world 3×4 matrix a line,
    row-major, one line per frame in name order; blank lines and ``#`` comments ignored)
    -> ``[N,4,4]`` float64."""
    poses = []
    for number, line in _lines(_read_text(path, "poses file")):
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise DatasetError(f"{path}:{number}: not a list of numbers") from None
        if len(values) != 12 or not all(math.isfinite(v) for v in values):
            raise DatasetError(f"{path}:{number}: expected 12 finite numbers (a 3x4 "
                               f"camera-to-world matrix), got {len(values)}")
        T = np.eye(4)
        T[:3, :] = np.array(values).reshape(3, 4)
        poses.append(T)
    return np.stack(poses) if poses else np.zeros((0, 4, 4))


def write_poses(path: Path, poses: np.ndarray) -> Path:
    """poses: ``[N,3,4]`` or ``[N,4,4]`` camera-to-world."""
    rows = np.asarray(poses, dtype=np.float64)[:, :3, :].reshape(-1, 12)
    return write_atomic(path, "".join(" ".join(f"{v:.9f}" for v in row) + "\n"
                                      for row in rows))


def write_tum_trajectory(path: Path, poses: np.ndarray, timestamps: Sequence[float]) -> Path:
    """A trajectory in the TUM RGB-D format (what evo and the TUM tools read): one
    ``timestamp tx ty tz qx qy qz qw`` line per pose. poses: ``[N,3,4]``/``[N,4,4]``
    camera-to-world."""
    from scipy.spatial.transform import Rotation

    poses = np.asarray(poses, dtype=np.float64)
    quats = Rotation.from_matrix(poses[:, :3, :3]).as_quat()  # x, y, z, w
    return write_atomic(path, "".join(
        f"{t:.6f} " + " ".join(f"{v:.9f}" for v in (*pose[:3, 3], *q)) + "\n"
        for t, pose, q in zip(timestamps, poses, quats)))


def read_tum_trajectory(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`write_tum_trajectory`: timestamps ``[N]`` and camera-to-world
    poses ``[N,4,4]`` (``#`` comments and blank lines ignored)."""
    from scipy.spatial.transform import Rotation

    rows = []
    for number, line in _lines(_read_text(path, "TUM trajectory")):
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        if len(values) != 8:
            raise DatasetError(f"{path}:{number}: expected 'timestamp tx ty tz qx qy qz qw'")
        rows.append(values)
    data = np.array(rows, dtype=np.float64).reshape(-1, 8)
    poses = np.tile(np.eye(4), (len(data), 1, 1))
    if len(data):
        poses[:, :3, :3] = Rotation.from_quat(data[:, 4:]).as_matrix()
        poses[:, :3, 3] = data[:, 1:4]
    return data[:, 0], poses


# --------------------------------------------------------------------------- depth maps
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
    """The ground-truth file suffixes of ``dataset_name``, in the order they are looked for."""
    return dataset_spec(dataset_name).gt_suffixes


def read_gt_depth(path: str | Path, dataset_name: str) -> np.ndarray:
    """Read a ground-truth depth map with the encoding of ``dataset_name``.

    16-bit PNG: stored value / the dataset's ``png_scale`` (nyu 5000, bonn/tum/synthetic
    1000); ``.npz`` (``scipy.sparse`` or dense) and ``.npy``: metres (kitti, ddad, synthetic).
    Returns: ``[H,W]`` float32 metres, 0 where invalid.
    """
    path = Path(path)
    spec = dataset_spec(dataset_name)
    suffix = path.suffix.lower()
    if suffix not in spec.gt_suffixes:
        raise DatasetError(f"{dataset_name} ground truth must be "
                           f"{' or '.join(spec.gt_suffixes)}: {path}")
    if suffix == ".png":
        raw = _decode(path)
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise DatasetError(f"{dataset_name} ground truth must be a single-channel 16-bit "
                               f"PNG, got {raw.dtype} with shape {raw.shape}: {path}")
        depth = raw.astype(np.float32) / spec.png_scale
    elif suffix == ".npz":
        depth = _load_npz(path)
    else:
        depth = _load_npy(path)
    return _clean_depth(_check_2d(depth, path))


def encode_depth_png16(depth: np.ndarray, scale: float) -> np.ndarray:
    """depth ``[H,W]`` -> uint16 ``round(scale · depth)``, saturated to 0..65535, non-finite
    values 0: with ``scale`` a dataset's ``png_scale``, the inverse of :func:`read_gt_depth`
    (e.g. 1000: millimetres)."""
    value = np.rint(np.asarray(depth, dtype=np.float64) * scale)
    return np.clip(np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0), 0, 65535
                   ).astype(np.uint16)


def read_depth_npy(path: Path) -> np.ndarray:
    """A saved prediction (``inference.py --save_depth``): ``[H,W]`` or ``[1,H,W]`` float ->
    ``[H,W]`` float32."""
    depth = _load_npy(path)
    if depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    if depth.ndim != 2:
        raise DatasetError(f"depth map must be [H,W] or [1,H,W], got {depth.shape}: {path}")
    return depth.astype(np.float32, copy=False)


def depth_npy_bytes(depth: np.ndarray) -> bytes:
    """The ``.npy`` file of a depth map ``[H,W]`` (float32), for an atomic write."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(depth, dtype=np.float32))
    return buf.getvalue()


# ---------------------------------------------------------------------------------- priors
def read_prior(path: str | Path) -> np.ndarray:
    """Read a single-image relative depth prior (V3, ``leres_depth/*.png`` or ``.npy``).

    Returns: ``[H,W]`` float32 in [0, 1] (divided by its own maximum: only scale-invariant
    quantities are used), 0 where invalid (all zeros if nothing is valid).
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


def encode_prior(depth: np.ndarray) -> np.ndarray:
    """uint16 ``[H,W]`` of a relative depth map (larger = farther, 0 or less = invalid):
    scaled so that its maximum is PRIOR_MAX; valid pixels stay ≥ 1 (0 means invalid to the
    reader), an all-invalid map stays all 0."""
    peak = float(depth.max()) if depth.size else 0.0
    if peak <= 0:
        return np.zeros(depth.shape, dtype=np.uint16)
    scaled = np.round(depth / peak * PRIOR_MAX)
    scaled = np.where(depth > 0, np.clip(scaled, 1, PRIOR_MAX), 0)
    return scaled.astype(np.uint16)


# ------------------------------------------------------------------------------- masks
def read_dynamic_colors(path: Path) -> np.ndarray:
    """``seg_mask/dynamic_colors.txt``: one ``R G B`` colour a line (commas allowed, ``#``
    comments and blank lines ignored), integers 0..255. Returns ``[N,3]`` int64."""
    colors = []
    for number, line in _lines(_read_text(path, "dynamic colours file ('R G B' a line)")):
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            values = []
        if (len(values) != 3 or not all(v.is_integer() and 0 <= v <= 255 for v in values)):
            raise DatasetError(f"{path}:{number}: not an 'R G B' colour of integers "
                               f"0..255: {line!r}")
        colors.append([int(v) for v in values])
    return np.array(colors, dtype=np.int64).reshape(-1, 3)


def write_dynamic_colors(path: Path, colors: Iterable[Sequence[int]]) -> Path:
    return write_atomic(path, "".join(f"{r} {g} {b}\n" for r, g, b in colors))


def read_dynamic_mask(path: Path, colors: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A segmentation mask (``seg_mask/<name>.png``, 8-bit RGB): bool ``[H,W]``, True where
    the colour is one of ``colors`` (``[N,3]``). It must have the ground truth's ``shape``
    (H, W): a mask of another size is a DatasetError, not resampled."""
    rgb = _decode(path, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.int64)
    if rgb.shape[:2] != tuple(shape):
        raise DatasetError(f"segmentation mask {path} is {rgb.shape[0]}x{rgb.shape[1]}, its "
                           f"ground truth is {shape[0]}x{shape[1]}")
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colors = np.asarray(colors, dtype=np.int64).reshape(-1, 3)
    wanted = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    return np.isin(codes, wanted)


def read_motion_mask(path: str | Path) -> np.ndarray:
    """A moving-object mask (``<scene>/dynamic/*.png``): any non-zero pixel is on a moving
    object. Returns ``[H,W]`` float32, 1 on moving objects and 0 elsewhere."""
    mask = _decode(Path(path), cv2.IMREAD_GRAYSCALE)
    return (mask > 0).astype(np.float32)


def encode_motion_mask(mask: np.ndarray) -> np.ndarray:
    """bool ``[H,W]`` -> the uint8 PNG content :func:`read_motion_mask` reads (255 on
    moving objects)."""
    return np.asarray(mask, dtype=bool).astype(np.uint8) * 255
