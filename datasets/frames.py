"""Input frames for inference: the images of a folder, or the frames of a video, one at a time.

A frame that cannot be read is not an exception that ends the run: it comes through as a
:class:`Frame` with an ``error`` for the caller to report and skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.formats import (
    IMAGE_SUFFIXES,
    DatasetError,
    check_image_file,
    list_images,
    read_image,
)

__all__ = ["Frame", "folder_frames", "size_problem", "video_frames"]


@dataclass
class Frame:
    """One input: its output name and RGB image ``[H,W,3]`` float32 0..255, or why not."""

    name: str
    image: np.ndarray | None = None
    error: str | None = None


def size_problem(height: int, width: int, min_side: int, max_side: int) -> str | None:
    """Why an input of ``height × width`` is not used, or None: a side shorter than
    ``min_side`` or longer than ``max_side`` (inference.py's --min/--max_image_size)."""
    if min(height, width) < min_side or max(height, width) > max_side:
        return f"size {width}x{height} outside {min_side}..{max_side} pixels a side"
    return None


def folder_frames(path: Path, min_side: int = 1, max_side: int = 8192
                  ) -> tuple[Iterator[Frame], int]:
    """The images of a folder, sorted by name (or one image file), and their count.

    An image whose header declares a side outside ``min_side..max_side`` comes through
    as an error before it is decoded, so a decompression bomb costs a few bytes of reading.
    """
    paths = [path] if path.is_file() else list_images(path)
    if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DatasetError(f"not a .jpg or .png image: {path}")
    if not paths:
        raise DatasetError(f"no .jpg/.png images in {path}")

    def frames() -> Iterator[Frame]:
        for p in paths:
            try:
                header = check_image_file(p, max_pixels=None)  # the sides say more
                why = size_problem(header.height, header.width, min_side, max_side)
                if why is not None:
                    yield Frame(p.stem, error=f"{p.name}: {why} (from its header; not decoded)")
                    continue
                yield Frame(p.stem, read_image(p, max_pixels=max_side * max_side))
            except DatasetError as err:
                yield Frame(p.stem, error=f"{p.name}: {err}")
    return frames(), len(paths)


def video_frames(path: Path, min_side: int = 1, max_side: int = 8192
                 ) -> tuple[Iterator[Frame], int, float]:
    """The frames of a video (OpenCV/FFmpeg), named ``<video name>_000000`` …, their count
    (0 if unknown) and frame rate (0 if unknown). A frame size outside
    ``min_side..max_side`` (from the container, before any frame is decoded) is a
    DatasetError."""
    if not path.is_file():
        raise DatasetError(f"no such video file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"cannot open {path} as a video")
    size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)
                                                               or 0))
    why = size_problem(*size, min_side, max_side) if min(size) > 0 else None
    if why is not None:
        cap.release()
        raise DatasetError(f"{path}: frame {why} (--min_image_size/--max_image_size)")
    count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def frames() -> Iterator[Frame]:
        index = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                yield Frame(f"{path.stem}_{index:06d}",
                            np.ascontiguousarray(bgr[:, :, 2::-1], dtype=np.float32))
                index += 1
        finally:
            cap.release()
    return frames(), count, fps
