"""Shared fixtures: a tiny synthetic dataset rendered once per test session."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

TINY = dict(scenes=2, frames=6, val_scenes=1, test_scenes=1, height=64, width=80,
            progress=False)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 training scenes (one driving, one hand-held) × 6 frames, 1 val, 1 test, 64×80."""
    from datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny") / "data"
    generate_dataset(root, seed=0, **TINY)
    return root


@pytest.fixture(scope="session")
def tiny_handheld_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny_handheld") / "data"
    generate_dataset(root, seed=1, motion="handheld", **TINY)
    return root


def tiny_train_args(dataset: Path, log_dir: Path, *extra: str) -> list[str]:
    """train.py flags for a few CPU steps on the tiny dataset."""
    return ["--dataset_dir", str(dataset), "--dataset_name", "synthetic", "--no_pretrain",
            "--img_height", "64", "--img_width", "80", "--batch_size", "2",
            "--epoch_size", "2", "--num_epochs", "1", "--num_workers", "0",
            "--accelerator", "cpu", "--log_dir", str(log_dir), "--log_every_n_steps", "1",
            *extra]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised V1 checkpoint in our layout (state_dict + hyper_parameters)."""
    import torch

    from models.sc_depth import build_model

    torch.manual_seed(0)
    model = build_model({"model_version": "v1", "no_pretrain": True, "resnet_layers": 18})
    path = tmp_path_factory.mktemp("ckpt") / "v1.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)},
               path)
    return path


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 training scene (driving) × 6 frames, 1 val, 1 test, 64×80: read-only for the tools."""
    from datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("synthetic_1x6_64x80") / "data"
    generate_dataset(root, scenes=1, frames=6, val_scenes=1, test_scenes=1, height=64,
                     width=80, progress=False)
    return root
