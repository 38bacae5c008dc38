"""VideoDataModule: loaders, batch shapes and epoch length on a tiny generated dataset."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
from helpers import CAM, FRAME_H, FRAME_W, write_dataset

from config import parse_options
from datasets.data_module import EpochSampler, ResumableLoader, VideoDataModule
from datasets.formats import DatasetError
from datasets.video_folder import TrainFolder, ValidationDepthSet

H, W = FRAME_H, FRAME_W


def make_opts(dataset_dir: Path, *flags: str) -> argparse.Namespace:
    """train.py's options for the hand-made nyu dataset at 16x20, batch 2, 3 batches (a
    size below the networks' minimum, which the parser refuses: the loaders alone are
    tested here, so it is set after parsing)."""
    opts = parse_options(["--dataset_dir", str(dataset_dir), "--dataset_name", "nyu",
                          "--batch_size", "2", "--epoch_size", "3", "--num_workers", "0",
                          *flags])
    opts.img_height, opts.img_width = 16, 20
    return opts


def test_train_loader_shapes_and_epoch_size(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    dm = VideoDataModule(make_opts(tmp_path))
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableLoader) and isinstance(loader.sampler, EpochSampler)
    assert len(loader) == 3
    batches = list(loader)
    assert len(batches) == 3
    batch = batches[0]
    assert batch["tgt"].shape == (2, 3, 16, 20)
    assert len(batch["refs"]) == 2 and all(r.shape == (2, 3, 16, 20) for r in batch["refs"])
    assert batch["K"].shape == (2, 3, 3) and batch["K_inv"].shape == (2, 3, 3)
    assert "tgt_prior" not in batch
    torch.testing.assert_close(batch["K"] @ batch["K_inv"], torch.eye(3).expand(2, 3, 3),
                               atol=1e-5, rtol=1e-5)
    # zoom 1–1.15 on 40×32 then resize to 20×16: fx between 0.5 and 0.575 of cam.txt's
    fx = batch["K"][:, 0, 0]
    assert torch.all(fx >= CAM[0, 0] * 0.5 - 1e-4) and torch.all(fx <= CAM[0, 0] * 0.575 + 1e-4)


def test_v3_loads_priors(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    dm = VideoDataModule(make_opts(tmp_path, "--model_version", "v3", "--val_mode", "photo"))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["tgt_prior"].shape == (2, 1, 16, 20)
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch["tgt_prior"].shape == (2, 1, 16, 20)


def test_val_loader_depth_mode(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    dm = VideoDataModule(make_opts(tmp_path))
    dm.setup("validate")
    assert isinstance(dm.val_set, ValidationDepthSet) and dm.train_set is None
    loader = dm.val_dataloader()
    assert len(loader) == 6  # one GT map per batch: sizes may differ within a dataset
    batch = next(iter(loader))
    assert batch["tgt"].shape == (1, 3, 16, 20)
    assert batch["gt_depth"].shape == (1, H, W)
    torch.testing.assert_close(batch["gt_depth"], torch.ones(1, H, W))  # frame 0: 1 m


def test_val_loader_photo_mode(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    dm = VideoDataModule(make_opts(tmp_path, "--val_mode", "photo"))
    dm.setup("fit")
    assert isinstance(dm.val_set, TrainFolder)
    batches = list(dm.val_dataloader())
    assert len(dm.val_set) == 4 and len(batches) == 2  # val.txt's scene, batch_size 2
    assert batches[0]["tgt"].shape == (2, 3, 16, 20)
    # validation is not augmented: K is cam.txt's, halved by the resize
    torch.testing.assert_close(batches[0]["K"][0],
                               torch.from_numpy(CAM) * torch.tensor([[0.5], [0.5], [1.0]]))


def test_missing_dataset_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("train.txt")):
        VideoDataModule(make_opts(tmp_path / "missing")).setup("fit")
