"""Helpers shared by the tests (fixtures are in conftest.py): the repository root, the tools
loaded by path, tiny training runs, small hand-made datasets and cameras."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import scipy.sparse
import torch

ROOT = Path(__file__).resolve().parents[1]

# A tiny synthetic dataset: 2 training scenes (one driving, one hand-held) x 6 frames,
# 1 validation and 1 test scene, 64x80.
TINY = dict(scenes=2, frames=6, val_scenes=1, test_scenes=1, height=64, width=80,
            progress=False)


@cache
def cli(name: str) -> ModuleType:
    """The command-line tool ``<name>.py`` at the repository root, or ``scripts/<name>.py``,
    loaded by path under a private module name (``test.py`` would shadow the stdlib's
    ``test`` package if imported by name)."""
    path = ROOT / f"{name}.py"
    if not path.is_file():
        path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_cli_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_train_args(dataset: Path, log_dir: Path, *extra: str) -> list[str]:
    """train.py flags for a few CPU steps on the tiny dataset."""
    return ["--dataset_dir", str(dataset), "--dataset_name", "synthetic", "--no_pretrain",
            "--img_height", "64", "--img_width", "80", "--batch_size", "2",
            "--epoch_size", "2", "--num_epochs", "1", "--num_workers", "0",
            "--accelerator", "cpu", "--log_dir", str(log_dir), "--log_every_n_steps", "1",
            *extra]


def write_checkpoint(path: Path, **options: object) -> Path:
    """A checkpoint as train.py writes them (state_dict and hyper_parameters) of a network
    built with ``options`` and initialised with seed 0, without ImageNet weights."""
    from systems import build_model

    torch.manual_seed(0)
    model = build_model({"no_pretrain": True, **options})
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)},
               path)
    return path


def tensorboard_scalars(run_dir: Path, tag: str) -> list[float]:
    """The values logged under ``tag`` in a run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return [s.value for s in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def intrinsics(B: int = 1, H: int = 16, W: int = 20, f: float = 20.0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A pinhole K ``[B,3,3]`` with fy = 1.1 fx and the principal point at the centre."""
    K = torch.tensor([[f, 0.0, W / 2], [0.0, 1.1 * f, H / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return K.expand(B, 3, 3).clone()


def plane_depth(normal: Sequence[float], d: float, K_inv: torch.Tensor, H: int, W: int
                ) -> torch.Tensor:
    """Depth ``[B,1,H,W]`` of the plane n·X = d seen through ``K_inv`` ``[B,3,3]``:
    ``D = d / (n·K⁻¹[u,v,1])``."""
    from geometry import backproject

    n = torch.as_tensor(normal, dtype=K_inv.dtype)
    n = n / n.norm()
    rays = backproject(torch.ones(K_inv.shape[0], 1, H, W, dtype=K_inv.dtype), K_inv)
    return d / (n.view(1, 3, 1, 1) * rays).sum(dim=1, keepdim=True)


# ---- a hand-made dataset in the published layout -----------------------------------------
FRAME_H, FRAME_W = 32, 40
CAM = np.array([[30.0, 0.0, 20.0], [0.0, 30.0, 16.0], [0.0, 0.0, 1.0]], np.float32)


def frame_code(scene: int, frame: int) -> int:
    """The grey level that identifies a frame (its image is that level plus a little noise)."""
    return 10 + 20 * frame + 120 * scene


def write_dataset(root: Path, frames: Sequence[int] = (6, 6),
                  gt_size: tuple[int, int] = (FRAME_H, FRAME_W),
                  frame_index: Sequence[int] | None = None) -> Path:
    """DATASET/training with one scene per entry of ``frames``; train.txt lists them all,
    val.txt the last one, which has nyu depth/*.png. Every frame has a leres_depth prior
    whose brightest column is the frame number. Returns DATASET/training."""
    rng = np.random.default_rng(0)
    train = root / "training"
    names = [f"scene_{s}" for s in range(len(frames))]
    for s, (name, n) in enumerate(zip(names, frames)):
        scene = train / name
        (scene / "leres_depth").mkdir(parents=True)
        np.savetxt(scene / "cam.txt", CAM)
        if frame_index is not None:
            (scene / "frame_index.txt").write_text("".join(f"{i}\n" for i in frame_index))
        if s == len(frames) - 1:
            (scene / "depth").mkdir()
        for i in range(n):
            noise = rng.integers(-3, 4, (FRAME_H, FRAME_W, 3))
            img = (frame_code(s, i) + noise).astype(np.uint8)
            cv2.imwrite(str(scene / f"{i:06d}.jpg"), img)
            prior = np.full((FRAME_H, FRAME_W), 30000, np.uint16)
            prior[:, i] = 60000
            cv2.imwrite(str(scene / "leres_depth" / f"{i:06d}.png"), prior)
            if s == len(frames) - 1:
                gt = np.full(gt_size, 5000 * (i + 1), np.uint16)  # nyu: (i+1) metres
                cv2.imwrite(str(scene / "depth" / f"{i:06d}.png"), gt)
    (train / "train.txt").write_text("\n".join(names) + "\n")
    (train / "val.txt").write_text(names[-1] + "\n")
    return train


RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def write_test_split(root: Path, with_masks: bool = True) -> Path:
    """DATASET/testing with two images ("a": .npy GT, "b": sparse .npz GT, both 20x30) and,
    with_masks, seg masks in which red and blue are dynamic (rows 0-3 red, 4-7 green,
    rows 8-9 of columns 0-2 blue). Returns DATASET/testing."""
    test = root / "testing"
    for sub in ("color", "depth", "seg_mask"):
        (test / sub).mkdir(parents=True)
    for k, name in enumerate(["a", "b"]):
        cv2.imwrite(str(test / "color" / f"{name}.png"),
                    np.full((FRAME_H, FRAME_W, 3), 100, np.uint8))
        gt = np.zeros((20, 30), np.float32)  # GT at its own resolution
        gt[5:, :] = 10.0 + k
        if k == 0:
            np.save(test / "depth" / f"{name}.npy", gt)
        else:  # kitti test GT may also be an .npz
            scipy.sparse.save_npz(test / "depth" / f"{name}.npz", scipy.sparse.csr_matrix(gt))
        if with_masks:
            rgb = np.zeros((20, 30, 3), np.uint8)
            rgb[:4, :] = RED
            rgb[4:8, :] = GREEN
            rgb[8:10, :3] = BLUE
            cv2.imwrite(str(test / "seg_mask" / f"{name}.png"), rgb[..., ::-1])  # to BGR
    if with_masks:
        (test / "seg_mask" / "dynamic_colors.txt").write_text("255 0 0\n0 0 255\n")
    else:
        (test / "seg_mask").rmdir()
    return test


def run_tool(name: str, argv: Sequence[str]) -> int:
    """Run tool ``name`` as its ``__main__`` does, returning the exit status instead of
    exiting: a user error prints its one line to stderr and gives 2."""
    from utils.cli import report_user_errors

    return report_user_errors(f"{name}.py", lambda: cli(name).main(list(argv)))


class ImageBoard:
    """Stands in for TensorBoard's SummaryWriter: records add_image calls."""

    def __init__(self) -> None:
        self.images: dict[str, np.ndarray] = {}

    def add_image(self, tag: str, img: np.ndarray, step: int, dataformats: str) -> None:
        assert dataformats == "HWC"
        self.images[tag] = img


# ---- hostile inputs (docs/reliability.md) -------------------------------------------------
def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root``: compared before and after a
    tool runs, it shows that no input changed and nothing appeared."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_png_bomb(path: Path, side: int = 30000) -> Path:
    """A valid 8-bit grey PNG of ``side × side`` zeros: under 1 MB on disk for 30000 (what
    zlib makes of 900 MB of zeros), 900 MB once decoded, 10.8 GB as float32 RGB. Written
    row by row, never held in memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then the row's zeros
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def inference_peak_rss(argv: Sequence[str]) -> tuple[int, int]:
    """Run inference.py with ``argv`` in a child of a fresh interpreter; returns its exit
    status and its peak resident memory in bytes (``getrusage(RUSAGE_CHILDREN)`` of that
    interpreter, which has no other child)."""
    import json
    import subprocess
    import sys

    probe = ("import json, resource, subprocess, sys; "
             "code = subprocess.run([sys.executable, 'inference.py', *sys.argv[1:]], "
             "stdout=subprocess.DEVNULL).returncode; "
             "print(json.dumps([code, resource.getrusage(resource.RUSAGE_CHILDREN)"
             ".ru_maxrss * 1024]))")
    out = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    code, peak = json.loads(out.strip().splitlines()[-1])
    return code, peak
