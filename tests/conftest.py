"""Shared fixtures: tiny synthetic datasets rendered once per test session, a checkpoint.
Shared helpers are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TINY, write_checkpoint


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


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised V1 checkpoint in our layout (state_dict + hyper_parameters)."""


    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "v1.ckpt", model_version="v1",
                            resnet_layers=18)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 training scene (driving) × 6 frames, 1 val, 1 test, 64×80: read-only for the tools."""
    from datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("synthetic_1x6_64x80") / "data"
    generate_dataset(root, scenes=1, frames=6, val_scenes=1, test_scenes=1, height=64,
                     width=80, progress=False)
    return root
