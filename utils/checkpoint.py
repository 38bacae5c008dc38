"""Checkpoint files: loading them safely (ours and the ones published for the public
SC-Depth code) and writing them so that they are complete or absent.

Checkpoints are untrusted input: they are read with `weights_only=True`, and the only class
the unpickler may build is `argparse.Namespace`, which the published files use for their
`hyper_parameters`. Anything else is refused with a message, never unpickled. A file that
is neither a zip archive (what `torch.save` writes) nor a pickle is refused before PyTorch
reads it, and so is a zip whose entries declare more bytes than a checkpoint can hold (a
2 MB file that inflates to gigabytes): PyTorch would inflate them in full before any check.
"""

from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from utils.errors import UserError
from utils.io import OutputError

SAFE_GLOBALS = [argparse.Namespace]

# Limits on what a checkpoint's zip entries declare, checked before PyTorch inflates them.
# Our largest file (V2, ResNet-50, with Adam's moments) holds about 0.7 GB. torch.save stores
# the entries uncompressed, and weights hardly compress, so a file that inflates to many
# times its size is a zip bomb, not a checkpoint. Raise them here (or pass max_bytes=).
MAX_CHECKPOINT_BYTES = 4 << 30
MAX_INFLATION = 4

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = 0x80  # the first byte of the legacy (pre-zip) torch.save format


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreadable or not one of ours / the published ones."""


def _check_container(path: Path, max_bytes: int) -> None:
    """Refuse a file torch.load should not be given: empty, neither a zip nor a pickle, a
    broken zip, or zip entries declaring more than ``max_bytes`` (or MAX_INFLATION times the
    file's size) once inflated."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
        if magic == _ZIP_MAGIC:
            with zipfile.ZipFile(path) as archive:
                declared = sum(info.file_size for info in archive.infolist())
        elif magic[:1] == bytes([_PICKLE_PROTOCOL]):
            return
        else:
            what = "an empty file" if not magic else "neither a zip archive nor a pickle"
            raise CheckpointError(f"{path} is not a PyTorch checkpoint ({what})")
    except OSError as err:
        raise CheckpointError(f"unreadable checkpoint {path}: {err.strerror or err}") from None
    except zipfile.BadZipFile as err:
        raise CheckpointError(f"unreadable checkpoint {path}: broken zip archive ({err})"
                              ) from None
    limit = min(max_bytes, MAX_INFLATION * path.stat().st_size + (1 << 20))
    if declared > limit:
        raise CheckpointError(
            f"refused to load {path}: its entries declare {declared / 2**20:.0f} MiB once "
            f"inflated, {declared / max(path.stat().st_size, 1):.0f} times its "
            f"{path.stat().st_size / 2**20:.1f} MiB on disk, beyond the limit of "
            f"{limit / 2**20:.0f} MiB (a zip bomb?); a real checkpoint this large: raise "
            "utils.checkpoint.MAX_CHECKPOINT_BYTES / MAX_INFLATION")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict:
    """Read a `.ckpt` (or plain state-dict) file with the restricted unpickler, after its
    container was checked (type, declared sizes against ``max_bytes``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    _check_container(path, max_bytes)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unknown reason"
        raise CheckpointError(
            f"refused to load {path}: it needs objects outside the allow-list "
            f"(tensors, containers, argparse.Namespace): {first}") from None
    except Exception as err:  # whatever breaks torch.load on an untrusted file is the file's
        detail = str(err).strip().splitlines()[0] if str(err).strip() else "no detail"
        raise CheckpointError(f"unreadable checkpoint {path}: {type(err).__name__}: "
                              f"{detail}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dictionary")
    return ckpt


def checkpoint_hparams(ckpt: dict) -> dict[str, Any]:
    """The training options stored in a checkpoint, as a plain dict (Namespace or dict)."""
    hp = ckpt.get("hyper_parameters", {}) or {}
    if isinstance(hp, argparse.Namespace):
        hp = vars(hp)
    return dict(hp)


def checkpoint_state_dict(ckpt: dict) -> dict[str, torch.Tensor]:
    """The network weights: a Lightning checkpoint's `state_dict`, or the dict itself."""
    state = ckpt.get("state_dict", ckpt)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def infer_model_version(ckpt: dict) -> str:
    """v1/v2/v3 from the stored options, else from the weights (ARN keys mean V2)."""
    version = checkpoint_hparams(ckpt).get("model_version")
    if version in ("v1", "v2", "v3"):
        return version
    if any(k.startswith("rectify_net.") for k in checkpoint_state_dict(ckpt)):
        return "v2"
    return "v1"


def infer_resnet_layers(ckpt: dict) -> int:
    """18 or 50, read from the shape of the DepthNet decoder's first convolution."""
    weight = checkpoint_state_dict(ckpt).get("depth_net.decoder.upconvs0.0.conv.conv.weight")
    if weight is None:
        return int(checkpoint_hparams(ckpt).get("resnet_layers", 18))
    return 50 if weight.shape[1] == 2048 else 18


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, with files that are complete or absent.

    Lightning's own writer commits through a temporary file in the system temp folder; when
    that is another file system (a tmpfs /tmp), the final move is a copy that a `kill -9` can
    cut short, leaving a truncated last.ckpt. This one writes `.<name>.tmp` next to the
    target, fsyncs it and renames it over the target (`os.replace`, atomic within a file
    system): a crash or a failing save leaves the previous file as it was.
    """

    def save_checkpoint(self, checkpoint: dict, path: str | Path,
                        storage_options: object | None = None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options is not supported")
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as err:  # a full disk: one line, the previous file as it was
            raise OutputError(f"cannot write checkpoint {path}: {err.strerror or err}"
                              ) from None
        finally:
            tmp.unlink(missing_ok=True)
