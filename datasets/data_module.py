"""The LightningDataModule that feeds training, validation and testing (SPEC §4)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from datasets.depth_io import DatasetError
from datasets.transforms import Compose, RandomHorizontalFlip, RandomScaleCrop, Resize, ToTensor
from datasets.video_folder import TestDepthSet, TrainFolder, ValidationDepthSet

__all__ = ["VideoDataModule"]


def _image_size(opts: argparse.Namespace) -> tuple[int, int]:
    """(height, width) of the network input: the options, else the dataset's default."""
    height, width = getattr(opts, "img_height", None), getattr(opts, "img_width", None)
    if height is None or width is None:
        from config import DEFAULT_SIZES  # the one table of training sizes

        default_h, default_w = DEFAULT_SIZES[opts.dataset_name]
        height = default_h if height is None else height
        width = default_w if width is None else width
    return int(height), int(width)


class VideoDataModule(pl.LightningDataModule):
    """Datasets and loaders from ``opts`` (the parsed options of config.py).

    Uses ``dataset_dir``, ``dataset_name``, ``model_version`` (v3 loads the priors),
    ``sequence_length``, ``skip_frames``, ``use_frame_index``, ``img_height``, ``img_width``,
    ``batch_size``, ``epoch_size``, ``num_workers`` and ``val_mode`` (depth | photo).
    Each training epoch draws ``epoch_size`` batches at random, with replacement.
    """

    def __init__(self, opts: argparse.Namespace) -> None:
        super().__init__()
        self.opts = opts
        if opts.dataset_dir is None:
            raise DatasetError("--dataset_dir is required")
        self.dataset_dir = Path(opts.dataset_dir)
        self.height, self.width = _image_size(opts)
        self.with_prior = opts.model_version == "v3"
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # ---- datasets -------------------------------------------------------------------------
    def _eval_transform(self) -> Compose:
        return Compose([Resize(self.height, self.width), ToTensor()])

    def _build_train(self) -> TrainFolder:
        transform = Compose([RandomHorizontalFlip(), RandomScaleCrop(),
                             Resize(self.height, self.width), ToTensor()])
        return TrainFolder(self.dataset_dir / "training", train=True,
                           sequence_length=self.opts.sequence_length,
                           skip_frames=self.opts.skip_frames,
                           use_frame_index=self.opts.use_frame_index,
                           transform=transform, with_prior=self.with_prior)

    def _build_val(self) -> Dataset:
        root = self.dataset_dir / "training"
        if self.opts.val_mode == "depth":
            return ValidationDepthSet(root, self.opts.dataset_name, self._eval_transform())
        if self.opts.val_mode == "photo":
            # the photometric validation runs the training losses, so V3 needs its priors
            return TrainFolder(root, train=False, sequence_length=self.opts.sequence_length,
                               skip_frames=self.opts.skip_frames,
                               use_frame_index=self.opts.use_frame_index,
                               transform=self._eval_transform(), with_prior=self.with_prior)
        raise DatasetError(f"unknown val_mode {self.opts.val_mode!r} (choices: depth, photo)")

    def _build_test(self) -> TestDepthSet:
        return TestDepthSet(self.dataset_dir / "testing", self.opts.dataset_name,
                            self._eval_transform())

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``None``: training and validation)."""
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._build_train()
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._build_val()
        if stage in ("test", "predict") and self.test_set is None:
            self.test_set = self._build_test()

    # ---- loaders --------------------------------------------------------------------------
    def _loader(self, dataset: Dataset, batch_size: int, **kwargs: object) -> DataLoader:
        workers = int(self.opts.num_workers)
        return DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                          persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available(), **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        sampler = RandomSampler(self.train_set, replacement=True,
                                num_samples=self.opts.batch_size * self.opts.epoch_size)
        return self._loader(self.train_set, self.opts.batch_size, sampler=sampler,
                            drop_last=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        # ground-truth maps of one dataset may differ in size, so they are not batched
        batch_size = 1 if self.opts.val_mode == "depth" else self.opts.batch_size
        return self._loader(self.val_set, batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_set is None:
            self.setup("test")
        return self._loader(self.test_set, 1, shuffle=False)
