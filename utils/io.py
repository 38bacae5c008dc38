"""Writing output files so that they are complete or absent, never half-written, and checking
output places before any work starts."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from utils.errors import UsageError, UserError

__all__ = ["MIN_FREE_BYTES", "OutputError", "check_output_dir", "check_output_file",
           "refuse_overlap", "remove_stale_temporaries", "staged_folder", "write_atomic"]

# An output folder on a file system with less free space than this is refused up front:
# a full disk would otherwise be found at the first write, after the model has loaded.
MIN_FREE_BYTES = 16 << 20


class OutputError(UserError, OSError):
    """An output file could not be written (a full disk, no permission): one line, and the
    files written before it stay complete. Also an OSError, for callers that catch those."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write `data` under a temporary name in the same folder, then rename it over `path`.

    `os.replace` is atomic within a file system, so a crash or Ctrl-C leaves either the
    previous file or none, never a truncated one that looks complete. The file gets the
    permissions any tool gives a new file (0666 less the umask: 0644 under the usual 022),
    not the private 0600 of a temporary file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        _discard(tmp)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str | Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: str | Path, flag: str) -> Path:
    """The absolute output folder of option ``flag``, refused (UsageError) before any work
    when it cannot be written: it, or a folder above it, is a file; the nearest existing
    folder is not writable; its file system has less than MIN_FREE_BYTES free. Creates
    nothing; symbolic links are resolved, so the result can be compared with the inputs."""
    path = Path(path).expanduser().resolve()
    existing = _existing_ancestor(path)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under the file {existing}"
        raise UsageError(f"{flag} {path} {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {existing} (permission denied or "
                         "a read-only file system)")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise UsageError(f"{flag} {path}: the file system of {existing} is full "
                         f"({free // 2**20} MiB free)")
    return path


def check_output_file(path: str | Path, flag: str) -> Path:
    """:func:`check_output_dir` for an output file: its folder must be writable and the
    path must not be a folder."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder, not a file name")
    check_output_dir(path.parent, flag)
    return path


def refuse_overlap(outputs: Iterable[Path], inputs: Iterable[Path], flag: str) -> None:
    """UsageError when an output path (absolute, as :func:`check_output_dir` returns)
    is one of the input files or folders (resolved here): outputs would overwrite inputs."""
    taken = {Path(p).expanduser().resolve() for p in inputs}
    for out in outputs:
        if out in taken:
            raise UsageError(f"{flag} {out} is an input; the outputs would overwrite it "
                             "(choose another place)")


def remove_stale_temporaries(folder: str | Path, names: Iterable[str] | None = None
                             ) -> list[Path]:
    """Delete the temporary files that an earlier run killed in the middle of a write left
    in ``folder`` (``.<name>.<random>.tmp`` of :func:`write_atomic`, ``.<name>.tmp`` of the
    checkpoint writer), only those of the files ``names`` when given (in a folder of the
    user's, such as a scene); returns them. Two tools writing into one folder at the same
    time is not supported: this would delete the other's file being written."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    allowed = None if names is None else {f".{name}." for name in names}

    def ours(p: Path) -> bool:
        if not (p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()):
            return False
        return allowed is None or any(p.name.startswith(prefix) for prefix in allowed)

    stale = [p for p in folder.iterdir() if ours(p)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def staged_folder(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A folder written in full or not at all: yields a temporary folder next to ``out``
    that replaces ``out`` when the block ends without an error, and is deleted otherwise.

    Raises FileExistsError up front when ``out`` exists and is not an empty folder, unless
    ``overwrite``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"output folder {out} is not empty (use --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
