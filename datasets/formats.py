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

import codecs
import io
import math
import struct
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import scipy.sparse

from datasets.registry import dataset_spec
from utils.errors import UsageError, UserError
from utils.io import write_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Decompression bombs: a small file may declare any size (a 1 MB PNG of 30000 x 30000
# zeros decodes to 2.7 GB, 11 GB as float32 RGB). Every image, depth map and prior is
# refused before it is decoded when its header declares more pixels than this: 8192 x 8192,
# about 1 GB once decoded to float32 RGB. Raise it here, or per call (`max_pixels=`).
MAX_IMAGE_PIXELS = 8192 * 8192

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

# Ground-truth depth of validation scenes (<scene>/depth/) and of the test split.
GT_DIR = "depth"

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


@dataclass(frozen=True)
class ImageHeader:
    """What a JPEG/PNG file declares in its header, read without decoding it.

    bit_depth: bits per sample once decoded (8 or 16; 12-bit JPEGs say 12); channels: as
    OpenCV decodes the file unchanged (1 grey, 2 grey + alpha, 3 colour, 4 with alpha).
    """

    format: str  # "jpeg" or "png"
    height: int
    width: int
    bit_depth: int
    channels: int

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def describe(self) -> str:
        return f"{self.width}x{self.height}, {self.channels}-channel {self.bit_depth}-bit"


# PNG colour type -> channels as decoded (palette images decode to colour)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, ...): the ones
# whose segment holds the image size
_JPEG_SOF = {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}


def _read_header(fh: BinaryIO, path: Path) -> ImageHeader:
    """The header of the JPEG/PNG open in ``fh`` (at its start); a few small reads."""
    head = fh.read(8)
    if head == _PNG_SIGNATURE:
        ihdr = fh.read(18)  # chunk length, "IHDR", width, height, bit depth, colour type
        if len(ihdr) < 18 or ihdr[4:8] != b"IHDR":
            raise DatasetError(f"corrupt PNG header (no IHDR chunk): {path}")
        width, height = struct.unpack(">II", ihdr[8:16])
        depth, colour = ihdr[16], ihdr[17]
        if colour not in _PNG_CHANNELS:
            raise DatasetError(f"corrupt PNG header (colour type {colour}): {path}")
        header = ImageHeader("png", height, width, 16 if depth == 16 else 8,
                             _PNG_CHANNELS[colour])
    elif head[:2] == _JPEG_SOI:
        header = _read_jpeg_frame_header(fh, path)
    else:
        raise DatasetError(f"not a JPEG or PNG image (unreadable): {path}")
    if header.height == 0 or header.width == 0:
        raise DatasetError(f"image header declares an empty size {header.width}x"
                           f"{header.height}: {path}")
    return header


def _read_jpeg_frame_header(fh: BinaryIO, path: Path) -> ImageHeader:
    """Walk the JPEG marker segments up to the start-of-frame one, which holds the size."""
    fh.seek(2)
    while True:
        byte = fh.read(1)
        if byte != b"\xff":
            raise DatasetError(f"corrupt JPEG header (no marker where one must be): {path}")
        while byte == b"\xff":  # fill bytes may precede a marker
            byte = fh.read(1)
        if not byte:
            break
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a segment
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header came
            break
        length_bytes = fh.read(2)
        if len(length_bytes) < 2 or struct.unpack(">H", length_bytes)[0] < 2:
            break
        length = struct.unpack(">H", length_bytes)[0]
        if marker in _JPEG_SOF:
            frame = fh.read(6)  # precision, height, width, components
            if len(frame) < 6:
                break
            height, width = struct.unpack(">HH", frame[1:5])
            return ImageHeader("jpeg", height, width, frame[0], frame[5])
        fh.seek(length - 2, io.SEEK_CUR)
    raise DatasetError(f"corrupt JPEG header (no frame header with the image size): {path}")


def image_header(path: str | Path) -> ImageHeader:
    """The size and sample type a JPEG/PNG file declares, without decoding it (a few small
    reads at its start). Not a JPEG/PNG, or a corrupt header -> DatasetError."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return _read_header(fh, path)
    except OSError as err:
        raise DatasetError(f"unreadable image {path}: {err.strerror or err}") from None


def _check_pixels(header: ImageHeader, path: Path, max_pixels: int) -> None:
    if header.pixels > max_pixels:
        raise DatasetError(
            f"{path} declares {header.width}x{header.height} pixels "
            f"({header.pixels / 1e6:.0f} Mpx), more than the limit of {max_pixels / 1e6:.0f} "
            "Mpx against decompression bombs; not decoded (a real image this large: raise "
            "datasets.formats.MAX_IMAGE_PIXELS, or resize it)")


def check_image_file(path: Path, max_pixels: int | None = MAX_IMAGE_PIXELS) -> ImageHeader:
    """Raise DatasetError if ``path`` is empty, unreadable, not a JPEG/PNG, truncated or
    larger than ``max_pixels`` (None: the caller checks the size); return its header.

    Reads only the header and the last few KiB: cheap enough for every frame of a large
    dataset before training starts. Damage in the middle of a JPEG is found when it is
    decoded (:func:`read_image`).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
            if size == 0:
                raise DatasetError(f"empty image file {path}")
            if head[:2] != _JPEG_SOI and head != _PNG_SIGNATURE:
                raise DatasetError(f"not a JPEG or PNG image (unreadable): {path}")
            why = _truncation(head, tail)
            if why is not None:
                raise DatasetError(f"{why}: {path}")
            fh.seek(0)
            header = _read_header(fh, path)
    except OSError as err:
        raise DatasetError(f"unreadable image {path}: {err.strerror or err}") from None
    if max_pixels is not None:
        _check_pixels(header, path, max_pixels)
    return header


def _jpeg_damage(data: bytes) -> str | None:
    """Why the marker structure of a JPEG (``data``: the whole file) is damaged, or None.

    OpenCV decodes a JPEG whose middle was overwritten without an error (libjpeg only
    prints a warning and fills in garbage). Inside entropy-coded data every 0xFF byte is
    followed by 0x00 (stuffing), a restart marker 0xD0-0xD7 or another 0xFF, so the next
    real marker after a scan must start a segment (tables, another scan of a progressive
    JPEG) or end the image; the segments are walked by their lengths. A stretch of random
    bytes breaks this almost surely from about 1 KiB on (99% of our trials), less often
    when shorter. Bytes after the end marker are ignored.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(buf)
    ff = np.flatnonzero(buf[:-1] == 0xFF)
    following = buf[ff + 1]
    markers = ff[(following != 0x00) & (following != 0xFF)
                 & ((following < 0xD0) | (following > 0xD7))]
    pos = 2
    while pos + 1 < n:
        if buf[pos] != 0xFF:
            return f"corrupt JPEG data (no marker at byte {pos})"
        marker = int(buf[pos + 1])
        if marker == 0xFF:  # a fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return None
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        if marker < 0xC0 or pos + 3 >= n:
            return f"corrupt JPEG data (marker 0xFF{marker:02X} at byte {pos})"
        end = pos + 2 + (int(buf[pos + 2]) << 8 | int(buf[pos + 3]))
        if marker == 0xDA:  # the scan runs to the next real marker
            k = int(np.searchsorted(markers, end))
            if k == len(markers):
                break
            end = int(markers[k])
        pos = end
    return "truncated JPEG (no end-of-image marker)"


def _decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED,
            max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file with OpenCV; unreadable, truncated, damaged, empty or larger
    than ``max_pixels`` (checked from the header, before decoding) -> DatasetError."""
    data = _read_bytes(path)
    if not data:
        raise DatasetError(f"empty image file: {path}")
    why = _truncation(data[:8], data[-_TAIL_BYTES:])
    if why is not None:
        raise DatasetError(f"{why}: {path}")
    header = _read_header(io.BytesIO(data), path)
    _check_pixels(header, path, max_pixels)
    if header.format == "jpeg":
        why = _jpeg_damage(data)
        if why is not None:
            raise DatasetError(f"{why}: {path}")
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except (cv2.error, MemoryError) as err:
        raise DatasetError(f"cannot decode image file {path}: "
                           f"{type(err).__name__}: {err}".splitlines()[0]) from None
    if img is None or img.size == 0:
        raise DatasetError(f"cannot decode image file: {path}")
    return img


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image as RGB.

    Returns: ``[H,W,3]`` float32 in 0..255. Grey images are repeated over the 3 channels, an
    alpha channel is dropped and 16-bit images are scaled to 0..255. An image that declares
    more than ``max_pixels`` is refused before it is decoded.
    """
    path = Path(path)
    img = _decode(path, max_pixels=max_pixels)
    if img.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"unsupported image type {img.dtype} (want 8 or 16 bit): {path}")
    channels = 1 if img.ndim == 2 else img.shape[2]
    # channel order (and grey to RGB) on the integer image, in one cv2 pass: reversing the
    # channels of the float image with numpy strides cost 18x more
    if channels not in _TO_RGB:
        raise DatasetError(f"unsupported number of channels {channels}: {path}")
    img = cv2.cvtColor(img, _TO_RGB[channels])
    if img.dtype == np.uint16:
        return img.astype(np.float32) * np.float32(255.0 / 65535.0)
    return img.astype(np.float32)


# cv2 conversions to RGB by the decoded image's channel count (OpenCV decodes to BGR/BGRA)
_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}


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

    src = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)
    # the same operations, in place on one fresh copy (never on the caller's array)
    out = torch.empty(src.shape, dtype=torch.float32).copy_(src)
    return out.div_(255.0).sub_(IMAGE_MEAN).div_(IMAGE_STD)


def denormalize_image(img) -> np.ndarray:
    """The inverse of :func:`normalize_image`: ``[3,H,W]`` (tensor or array) -> uint8
    ``[H,W,3]`` RGB, for display."""
    if hasattr(img, "detach"):
        img = img.detach().float().cpu().numpy()
    arr = np.asarray(img).transpose(1, 2, 0) * IMAGE_STD + IMAGE_MEAN
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case), sorted by name; a folder
    that cannot be listed (no permission) -> DatasetError."""
    try:
        return sorted(p for p in folder.iterdir()
                      if p.suffix.lower() in suffixes and p.is_file())
    except OSError as err:
        raise DatasetError(f"cannot list folder {folder}: {err.strerror or err}") from None


def list_images(folder: str | Path) -> list[Path]:
    """The ``*.jpg``, ``*.jpeg`` and ``*.png`` files of ``folder`` (any case), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder: {folder}")
    return _files(folder, IMAGE_SUFFIXES)


def list_frames(scene: str | Path) -> list[Path]:
    """The frames of a scene, sorted by name (:func:`list_images`). Two frames whose names
    differ only in their suffix (``000005.jpg``, ``000005.png``) are a DatasetError: they
    would make a zero-motion pair, and their companion files could not be told apart."""
    frames = list_images(scene)
    files_by_stem(frames)
    return frames


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
    return files_by_stem(_files(folder, suffixes))


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
    """A text file: UTF-8, or UTF-16/UTF-8 with a byte-order mark (what Windows editors
    write); anything else is a DatasetError rather than names full of replacement marks."""
    if not path.is_file():
        raise DatasetError(f"missing {what}: {path}")
    data = _read_bytes(path)
    encoding = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise DatasetError(f"{what} {path} is not UTF-8 text (save it as UTF-8)") from None
    if "\0" in text:
        raise DatasetError(f"{what} {path} holds NUL characters (UTF-16 without a byte-order "
                           "mark? save it as UTF-8)")
    return text


def _lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, content) of the non-blank lines, ``#`` comments removed."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield number, line


def is_folder_name(name: str) -> bool:
    """True when ``name`` names one folder inside another: not empty, no path separator,
    not absolute, not ``.`` or ``..``. Scene names and output subfolders must be, so that
    what a list file or an option names stays inside the dataset."""
    candidate = Path(name)
    return (bool(name) and not candidate.is_absolute() and len(candidate.parts) == 1
            and name not in (".", "..") and "\\" not in name)


def read_scene_list(path: Path) -> list[str]:
    """``train.txt``/``val.txt``: scene folder names, one a line (blank lines and ``#``
    comments ignored). A name must be a folder directly under the list's folder: an absolute
    path or one that leaves it (``..``) is a DatasetError. A scene listed twice is used
    once, with a warning (counting it twice would double its weight unasked)."""
    names: dict[str, int] = {}
    for number, name in _lines(_read_text(path, "scene list")):
        if not is_folder_name(name):
            raise DatasetError(f"{path}:{number}: {name!r} is not a scene folder name "
                               "(one folder under training/, no path)")
        if name in names:
            warnings.warn(f"{path}:{number}: scene {name} is listed again (first on line "
                          f"{names[name]}); it is used once", stacklevel=2)
            continue
        names[name] = number
    return list(names)


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
    # Training inverts K at every step: a singular one would fail there, not here.
    if not np.allclose(K[2], (0.0, 0.0, 1.0)) or abs(np.linalg.det(K.astype(np.float64))) < 1e-9:
        raise DatasetError(f"intrinsics must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] and "
                           f"invertible, got last row {K[2].tolist()}: {path}")
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
    if depth.dtype.kind == "u":  # decoded PNGs: nothing to clean, and two passes saved
        return depth.astype(np.float32)
    depth = np.asarray(depth, dtype=np.float32)
    depth = np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(depth, 0.0)


def _check_elements(shape: Sequence[int], path: Path) -> None:
    """Refuse an array that declares more values than an image may have pixels, before it
    is allocated (a small file can declare any shape)."""
    count = math.prod(int(v) for v in shape)
    if count > MAX_IMAGE_PIXELS:
        raise DatasetError(
            f"{path} declares an array of shape {tuple(int(v) for v in shape)} ({count / 1e6:.0f}"
            f" M values), more than the limit of {MAX_IMAGE_PIXELS / 1e6:.0f} M against "
            "decompression bombs; not loaded (raise datasets.formats.MAX_IMAGE_PIXELS)")


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a ``.npy`` file declares, from its header alone. Not a ``.npy``
    file, not numbers, or more values than MAX_IMAGE_PIXELS -> DatasetError."""
    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
    except (OSError, ValueError, EOFError, SyntaxError) as err:
        raise DatasetError(f"cannot read {path}: {err}".splitlines()[0]) from None
    if dtype.kind not in "biuf":
        raise DatasetError(f"{path} holds {dtype} values, not numbers")
    _check_elements(shape, path)
    return tuple(shape), dtype


def _load_npz(path: Path) -> np.ndarray:
    """A depth map saved by `scipy.sparse.save_npz`, or a dense `np.savez` (its first array).
    Entries that would inflate beyond an image's worth of float64 values are refused first."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = archive.files
            if not keys:
                raise DatasetError(f"empty .npz file: {path}")
            largest = max(info.file_size for info in archive.zip.infolist())
            if largest > 8 * MAX_IMAGE_PIXELS + 4096:
                raise DatasetError(
                    f"{path} holds an entry that inflates to {largest / 2**20:.0f} MiB, more "
                    "than a depth map of datasets.formats.MAX_IMAGE_PIXELS float64 values; "
                    "not loaded")
            # the entries that scipy.sparse.save_npz writes
            if "format" in keys and "shape" in keys:
                _check_elements(archive["shape"].reshape(-1), path)
                return scipy.sparse.load_npz(path).toarray()
            return archive[keys[0]]
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise DatasetError(f"cannot read depth file {path}: {err}") from err


def _load_npy(path: Path) -> np.ndarray:
    npy_header(path)
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
def _check_prior_png(header: ImageHeader, path: Path) -> None:
    if header.channels != 1 or header.bit_depth not in (8, 16):
        raise DatasetError(f"a prior PNG must be single-channel 8- or 16-bit, this one is "
                           f"{header.describe()}: {path}")


def _prior_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in PRIOR_SUFFIXES:
        raise DatasetError(f"prior must be a .png or .npy file: {path}")
    return suffix


def check_prior_file(path: Path) -> tuple[int, int]:
    """The size ``(H, W)`` of a prior, from its header alone: what :func:`read_prior` would
    refuse for its type (empty, truncated, several channels, not numbers, too large) is
    refused here without decoding it."""
    if _prior_suffix(path) == ".png":
        header = check_image_file(path)
        _check_prior_png(header, path)
        return header.height, header.width
    shape = [d for d in npy_header(path)[0] if d != 1]
    if len(shape) != 2:
        raise DatasetError(f"a prior must be a 2-D map, got shape {shape}: {path}")
    return shape[0], shape[1]


def read_prior(path: str | Path) -> np.ndarray:
    """Read a single-image relative depth prior (V3, ``leres_depth/*.png`` or ``.npy``).

    Returns: ``[H,W]`` float32 in [0, 1] (divided by its own maximum: only scale-invariant
    quantities are used), 0 where invalid (all zeros if nothing is valid).
    """
    path = Path(path)
    if _prior_suffix(path) == ".npy":
        prior = _load_npy(path)
    else:
        _check_prior_png(image_header(path), path)
        prior = _decode(path)
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
