"""The LightningDataModule that feeds training and validation."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from datasets.formats import DatasetError
from datasets.transforms import Compose, RandomHorizontalFlip, RandomScaleCrop, Resize, ToTensor
from datasets.video_folder import TrainFolder, ValidationDepthSet

__all__ = ["VideoDataModule"]


class _DrawsForAllProcesses(Sampler[int]):
    """``num_samples`` indices in ``0..size-1`` drawn uniformly with replacement.

    Deliberately not a ``RandomSampler``: under DDP Lightning replaces a RandomSampler by a
    ``DistributedSampler`` over the whole dataset (one pass per epoch, ``epoch_size``
    ignored), while any other sampler is wrapped and its draws are split between the
    processes. Sized for all processes, each gets ``batch_size × epoch_size`` samples.
    """

    def __init__(self, size: int, num_samples: int) -> None:
        self.size = int(size)
        self.num_samples = int(num_samples)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        # seeded from the global RNG like RandomSampler (seed_everything makes it repeatable)
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        generator = torch.Generator().manual_seed(seed)
        return iter(torch.randint(self.size, (self.num_samples,), generator=generator).tolist())


class VideoDataModule(pl.LightningDataModule):
    """Datasets and loaders from ``opts`` (the parsed options of config.py).

    Uses ``dataset_dir``, ``dataset_name``, ``model_version`` (v3 loads the priors),
    ``sequence_length``, ``skip_frames``, ``use_frame_index``, ``img_height``, ``img_width``,
    ``batch_size``, ``epoch_size``, ``num_workers``, ``cache_frames`` and ``val_mode``
    (depth | photo).
    Each training epoch draws ``epoch_size`` batches at random, with replacement (per
    process under DDP).
    """

    def __init__(self, opts: argparse.Namespace) -> None:
        super().__init__()
        self.opts = opts
        if opts.dataset_dir is None:
            raise DatasetError("--dataset_dir is required")
        self.dataset_dir = Path(opts.dataset_dir)
        self.height, self.width = opts.img_height, opts.img_width
        self.with_prior = opts.model_version == "v3"
        # decoded frames kept per process (each loader worker has its own cache)
        self.cache_frames = opts.cache_frames
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

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
                           transform=transform, with_prior=self.with_prior,
                           cache_frames=self.cache_frames,
                           # V3 logs how many moving-object pixels its ranking picks
                           with_motion_masks=self.with_prior)

    def _build_val(self) -> Dataset:
        root = self.dataset_dir / "training"
        if self.opts.val_mode == "depth":
            return ValidationDepthSet(root, self.opts.dataset_name, self._eval_transform(),
                                      cache_frames=self.cache_frames)
        if self.opts.val_mode == "photo":
            # the photometric validation runs the training losses, so V3 needs its priors
            return TrainFolder(root, train=False, sequence_length=self.opts.sequence_length,
                               skip_frames=self.opts.skip_frames,
                               use_frame_index=self.opts.use_frame_index,
                               transform=self._eval_transform(), with_prior=self.with_prior,
                               cache_frames=self.cache_frames)
        raise DatasetError(f"unknown val_mode {self.opts.val_mode!r} (choices: depth, photo)")

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``None``: training and validation)."""
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._build_train()
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._build_val()

    # ---- loaders --------------------------------------------------------------------------
    def _loader(self, dataset: Dataset, batch_size: int, **kwargs: object) -> DataLoader:
        workers = int(self.opts.num_workers)
        return DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                          persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available(), **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        num_samples = self.opts.batch_size * self.opts.epoch_size
        world = int(getattr(self.trainer, "world_size", 1) or 1) if self.trainer else 1
        if world > 1:
            # DDP: draw for all processes; Lightning shards the draws (epoch_size per process)
            sampler: Sampler[int] = _DrawsForAllProcesses(len(self.train_set),
                                                          num_samples * world)
        else:
            sampler = RandomSampler(self.train_set, replacement=True, num_samples=num_samples)
        return self._loader(self.train_set, self.opts.batch_size, sampler=sampler,
                            drop_last=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        # ground-truth maps of one dataset may differ in size, so they are not batched
        batch_size = 1 if self.opts.val_mode == "depth" else self.opts.batch_size
        return self._loader(self.val_set, batch_size, shuffle=False)
