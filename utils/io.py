"""Writing output files so that they are complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write `data` under a temporary name in the same folder, then rename it over `path`.

    `os.replace` is atomic within a file system, so a crash or Ctrl-C leaves either the
    previous file or none, never a truncated one that looks complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def encode_image(img: np.ndarray, suffix: str) -> bytes:
    """img: ``[H,W,3]`` uint8 RGB or ``[H,W]`` uint8/uint16 -> encoded .jpg/.png bytes."""
    import cv2

    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(suffix, img)
    if not ok:
        raise OSError(f"could not encode a {suffix} image")
    return buf.tobytes()
