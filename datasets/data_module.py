"""The LightningDataModule that feeds training and validation."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import DataLoader, Dataset, Sampler

from datasets.formats import DatasetError
from datasets.transforms import Compose, RandomHorizontalFlip, RandomScaleCrop, Resize, ToTensor
from datasets.video_folder import TrainFolder, ValidationDepthSet

__all__ = ["EpochSampler", "ResumableLoader", "VideoDataModule"]


class EpochSampler(Sampler[int]):
    """``num_samples`` indices in ``0..size-1`` drawn uniformly with replacement, from a
    generator seeded by ``(seed, epoch)``.

    The draws of an epoch are the same in any process, so a run resumed in the middle of an
    epoch goes on with the batches the interrupted run would have drawn (``skip`` leaves out
    those already trained on; ``len`` stays the epoch's, as Lightning counts the epoch).
    Lightning calls :meth:`set_epoch` before each epoch; where it cannot (under DDP it wraps
    this sampler and splits its draws between the processes) each new iteration moves to the
    next epoch itself. Sized for all processes: each gets ``batch_size × epoch_size``.

    Deliberately not a ``RandomSampler``: under DDP Lightning replaces a RandomSampler by a
    ``DistributedSampler`` over the whole dataset (one pass per epoch, ``epoch_size``
    ignored).
    """

    def __init__(self, size: int, num_samples: int, seed: int) -> None:
        self.size, self.num_samples, self.seed = int(size), int(num_samples), int(seed)
        self.epoch = 0
        self.skip = 0  # draws of the current epoch already used (a resumed run)
        self._used = False

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.skip = int(epoch), 0
        self._used = False

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if self._used:  # iterated again without set_epoch: the next epoch
            self.epoch, self.skip = self.epoch + 1, 0
        self._used = True
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        draws = torch.randint(self.size, (self.num_samples,), generator=generator).tolist()
        skip, self.skip = self.skip, 0
        return iter(draws[skip:])


class ResumableLoader(DataLoader):
    """The training loader, resumable in the middle of an epoch (Lightning stores its
    ``state_dict`` in every checkpoint and loads it before the loader is iterated again).

    ``batches_done`` (batches of the current epoch trained on) is kept up to date by the
    trainer (``tools.training``); ``samples_per_batch`` counts the draws of one optimizer
    step over all processes.
    """

    def __init__(self, *args: object, samples_per_batch: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.samples_per_batch = samples_per_batch
        self.batches_done = 0

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.sampler.seed, "epoch": self.sampler.epoch,
                "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: EpochSampler = self.sampler
        sampler.seed, sampler.epoch = state["seed"], state["epoch"]
        sampler.skip = state["batches_done"] * self.samples_per_batch
        sampler._used = False
        self.batches_done = state["batches_done"]


def _init_worker(worker_id: int) -> None:
    """Seed a loader worker's Python, NumPy and torch generators apart from the others
    (Lightning's worker seeding: a forked worker would otherwise repeat its siblings'
    augmentations), and leave Ctrl-C to the main process, which stops training cleanly
    (``tools.training``): a worker killed by it would end the run with a traceback."""
    pl_worker_init_function(worker_id)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        # the training draws: --seed, else drawn once (a resumed run reads it back)
        self.seed = opts.seed if opts.seed is not None else int(np.random.SeedSequence()
                                                                 .generate_state(1)[0])
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    # ---- datasets -------------------------------------------------------------------------
    def _eval_transform(self) -> Compose:
        return Compose([Resize(self.height, self.width), ToTensor()])

    def _build_train(self) -> TrainFolder:
        # The zoom-and-crop resamples straight to the network's size (one resampling), and
        # the flip comes after it, on the smaller image: the same distribution of samples
        # as the public code's flip-then-crop, at a fraction of the cost on large frames.
        transform = Compose([RandomScaleCrop(height=self.height, width=self.width),
                             RandomHorizontalFlip(), ToTensor()])
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
                          persistent_workers=workers > 0, worker_init_fn=_init_worker,
                          pin_memory=torch.cuda.is_available(), **kwargs)

    def train_dataloader(self) -> ResumableLoader:
        if self.train_set is None:
            self.setup("fit")
        world = int(getattr(self.trainer, "world_size", 1) or 1) if self.trainer else 1
        # DDP: draw for all processes; Lightning shards the draws (epoch_size per process)
        sampler = EpochSampler(len(self.train_set),
                               self.opts.batch_size * self.opts.epoch_size * world, self.seed)
        workers = int(self.opts.num_workers)
        return ResumableLoader(self.train_set, batch_size=self.opts.batch_size,
                               sampler=sampler, drop_last=True, num_workers=workers,
                               persistent_workers=workers > 0,
                               pin_memory=torch.cuda.is_available(),
                               worker_init_fn=_init_worker,
                               samples_per_batch=self.opts.batch_size * world)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        # ground-truth maps of one dataset may differ in size, so they are not batched
        batch_size = 1 if self.opts.val_mode == "depth" else self.opts.batch_size
        return self._loader(self.val_set, batch_size, shuffle=False)
