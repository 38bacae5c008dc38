"""Training set-up for train.py: devices, resuming, epoch reseeding and the Lightning
Trainer around a system and the VideoDataModule."""

from __future__ import annotations

import argparse
import datetime
import os
import random
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import (
    Callback,
    LearningRateMonitor,
    ModelCheckpoint,
    TQDMProgressBar,
)
from pytorch_lightning.loggers import TensorBoardLogger

from datasets.data_module import VideoDataModule
from systems import NonFiniteLossError, build_model, load_weights
from utils.allocator import keep_freed_memory
from utils.checkpoint import SAFE_GLOBALS, AtomicCheckpointIO, load_checkpoint
from utils.errors import UsageError
from utils.io import check_output_dir, remove_stale_temporaries
from utils.runtime import check_precision, precision_note

__all__ = ["EpochReseed", "NoLostWork", "TrainingInterruptedError", "check_devices",
           "parse_devices", "resolve_accelerator", "resolve_resume", "train"]


def parse_devices(value: str) -> int | list[int] | str:
    """`auto`, a count (`2`) or a list of indices (`0,1`)."""
    value = str(value).strip()
    if value == "auto":
        return "auto"
    if re.fullmatch(r"\d+", value):
        return int(value)
    if re.fullmatch(r"\d+(,\d+)*,?", value):
        return [int(v) for v in value.split(",") if v]
    raise UsageError(f"--devices {value!r}: use auto, a number, or a list like 0,1")


def resolve_accelerator(accelerator: str) -> str:
    """"cpu" or "gpu" for ``--accelerator`` (auto: a GPU when there is one); gpu without
    a CUDA GPU is a UsageError rather than Lightning's traceback."""
    has_gpu = torch.cuda.is_available()
    if accelerator == "gpu" and not has_gpu:
        raise UsageError("--accelerator gpu: no CUDA GPU is available (use --accelerator cpu)")
    return "gpu" if accelerator == "gpu" or (accelerator == "auto" and has_gpu) else "cpu"


def check_devices(devices: int | list[int] | str, accelerator: str) -> None:
    """``--devices`` must exist on this machine: GPU indices below the GPU count; on the
    CPU, a number of processes no larger than the cores (each trains a copy of the model,
    and more processes than cores only queue behind one another)."""
    if devices == "auto":
        return
    if accelerator == "cpu":
        cores = os.cpu_count() or 1
        if isinstance(devices, list):
            raise UsageError(f"--devices {','.join(map(str, devices))} names GPUs; on the CPU "
                             "give a number of processes")
        if not 1 <= devices <= cores:
            raise UsageError(f"--devices {devices}: training on the CPU takes 1 to {cores} "
                             f"processes here ({cores} cores)")
        return
    count = torch.cuda.device_count()
    wanted = devices if isinstance(devices, list) else list(range(devices))
    if not wanted or max(wanted) >= count:
        raise UsageError(f"--devices {devices}: this machine has {count} GPU(s)")


def _version_number(path: Path) -> int:
    return int(path.name.split("_")[-1]) if re.fullmatch(r"version_\d+", path.name) else -1


def resolve_resume(opts: argparse.Namespace) -> tuple[Path | None, int | None]:
    """The checkpoint to continue from and the run version it belongs to (or None)."""
    if opts.resume is None:
        return None, None
    if opts.resume != "last":
        ckpt = Path(opts.resume)
        if not ckpt.is_file():
            raise UsageError(f"--resume: checkpoint not found: {ckpt}")
        version = _version_number(ckpt.parent)
        return ckpt, (version if version >= 0 else None)
    runs = sorted((p for p in (Path(opts.log_dir) / opts.exp_name).glob("version_*")
                   if (p / "last.ckpt").is_file()), key=_version_number)
    if not runs:
        raise UsageError(f"--resume: no last.ckpt under {Path(opts.log_dir) / opts.exp_name}"
                         "/version_*; pass the checkpoint file instead")
    return runs[-1] / "last.ckpt", _version_number(runs[-1])


class EpochReseed(Callback):
    """Reseed Python, NumPy and torch from (seed, epoch) at the start of every training epoch.

    An epoch's augmentations then depend only on (seed, epoch), not on what ran before in
    the process: a run resumed from an end-of-epoch last.ckpt replays the next epoch exactly
    as the uninterrupted run does (the draws of the samples themselves come from
    ``datasets.data_module.EpochSampler``). Exact with --num_workers 0; worker processes are
    persistent and keep the generators they were started with.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        epoch_seed = int(np.random.SeedSequence([self.seed, trainer.current_epoch])
                         .generate_state(1)[0])
        random.seed(epoch_seed)
        np.random.seed(epoch_seed)
        torch.manual_seed(epoch_seed)


class TrainingInterruptedError(Exception):
    """SIGTERM or Ctrl-C stopped training after last.ckpt was written."""


class NoLostWork(Callback):
    """What keeps a run's work when it is stopped early or cut short.

    - last.ckpt every ``every_n_steps`` optimizer steps (0: only when validating);
    - on SIGTERM (a scheduler's time limit) or Ctrl-C: last.ckpt at the end of the current
      step, then :class:`TrainingInterruptedError` (a second Ctrl-C stops at once);
    - when ``--max_steps`` ends training in the middle of an epoch: a validation first, so
      that there are ``val/*`` figures and a best checkpoint;
    - the training loader learns how many batches of the epoch are done, which every
      checkpoint stores, so that ``--resume`` continues mid-epoch with the right epoch,
      step and draws (``datasets.data_module.ResumableLoader``).
    """

    def __init__(self, last_path: Path, every_n_steps: int) -> None:
        self.last_path, self.every_n_steps = last_path, every_n_steps
        self.signal: str | None = None
        self.saved_step: int | None = None  # where last.ckpt stopped after a signal
        self.checkpointed_step = -1  # the step of the newest checkpoint written
        self._previous: dict[int, object] = {}

    def _request_stop(self, signum: int, frame: object) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C
        self.signal = signal.Signals(signum).name
        print(f"\n{self.signal}: stopping after this step (last.ckpt is written first)",
              file=sys.stderr, flush=True)

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._request_stop)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule,
                     exception: BaseException) -> None:
        """An error ended training (a broken file, a full disk, a bug): the steps since the
        last checkpoint are saved to last.ckpt first. Not after a NaN/Inf loss (the last
        good checkpoint is kept as it is), a second Ctrl-C (stop at once), or under DDP
        (the other processes would wait for this one)."""
        self._restore()
        if (not isinstance(exception, Exception)
                or isinstance(exception, NonFiniteLossError | TrainingInterruptedError)
                or trainer.world_size > 1 or trainer.global_step <= self.checkpointed_step):
            return
        try:
            trainer.save_checkpoint(self.last_path, weights_only=False)
        except Exception as err:  # the original error matters more; say why this failed
            print(f"could not save {self.last_path} after the error: {err}", file=sys.stderr)
            return
        print(f"{type(exception).__name__} at step {trainer.global_step}; {self.last_path} "
              "written first: continue with --resume", file=sys.stderr, flush=True)

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule,
                           checkpoint: dict) -> None:
        self.checkpointed_step = trainer.global_step

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule,
                             batch: object, batch_idx: int) -> None:
        # the previous step is logged by now: stop before this one
        self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        if self.saved_step is not None:
            raise TrainingInterruptedError(
                f"{self.signal} at step {self.saved_step}; {self.last_path} written: "
                "continue with --resume")

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        if hasattr(loader, "batches_done") and not trainer.fit_loop.restarting:
            loader.batches_done = 0

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule,
                           outputs: object, batch: object, batch_idx: int) -> None:
        loader = trainer.train_dataloader
        if hasattr(loader, "batches_done"):
            loader.batches_done = batch_idx + 1
        step = trainer.global_step
        # weights_only=False: last.ckpt is the full checkpoint --resume needs (asked for
        # explicitly, Lightning would otherwise note the default in every run's log)
        if self.signal is not None and self.saved_step is None:
            trainer.save_checkpoint(self.last_path, weights_only=False)
            self.saved_step = step
        elif self.every_n_steps > 0 and step % self.every_n_steps == 0:
            trainer.save_checkpoint(self.last_path, weights_only=False)
        last_of_epoch = batch_idx + 1 >= trainer.num_training_batches
        if 0 < trainer.max_steps <= step and not last_of_epoch:
            trainer.should_stop = True  # Lightning validates before it stops


class BestWeightsLastFull(ModelCheckpoint):
    """The best-k checkpoints keep what evaluation needs, the weights and the options (a
    third of a full checkpoint: Adam's two moments are the rest); ``last.ckpt`` keeps
    everything ``--resume`` needs (optimizer, loops, callbacks, the loader's position)."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        self.save_weights_only = (Path(filepath).name
                                  != self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
        super()._save_checkpoint(trainer, filepath)

    # Lightning writes last.ckpt where it writes the best-k checkpoints (at the end of the
    # training epoch, after its validation, or at the end of a validation within an epoch),
    # but only when one of them was written there: once the validation loss stops
    # improving, last.ckpt would keep an older step (the last --ckpt_every_n_steps save,
    # taken in the middle of a step) and the end of a run would be lost to test.py and
    # --resume. So each of the two hooks also writes last.ckpt when it did not.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def _save_last_if_behind(self, trainer: pl.Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # this step is not saved yet
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def train(opts: argparse.Namespace) -> int:
    """Train with the parsed options of train.py (the dataset already checked); returns the
    exit status."""
    # Everything that can be refused is, before the model is built.
    accelerator = resolve_accelerator(opts.accelerator)
    devices = parse_devices(opts.devices)
    check_devices(devices, accelerator)
    compute = torch.device("cuda" if accelerator == "gpu" else "cpu")
    check_precision(opts.precision, compute, "--precision")
    slow = precision_note(opts.precision, compute, "--precision")
    if slow is not None:
        print(slow, file=sys.stderr)
    check_output_dir(Path(opts.log_dir) / opts.exp_name, "--log_dir")
    if not opts.no_malloc_tuning:
        keep_freed_memory()  # before the first large tensor; see utils/allocator.py
    resume_ckpt, resume_version = resolve_resume(opts)
    # unsafe, broken or other-architecture files are refused here, before Lightning reads them
    source = resume_ckpt or (Path(opts.ckpt_path) if opts.ckpt_path else None)
    weights = load_checkpoint(source) if source is not None else None
    if resume_ckpt is not None:
        for stale in remove_stale_temporaries(resume_ckpt.parent):
            print(f"removed {stale}, left by a run killed while writing it", file=sys.stderr)
    if opts.seed is not None:
        pl.seed_everything(opts.seed, workers=True)

    model = build_model(opts)
    if weights is not None:
        load_weights(model, weights, source)  # refuses another version or encoder first
        if resume_ckpt is not None and "optimizer_states" not in weights:
            raise UsageError(f"--resume: {resume_ckpt} holds only the weights (a best checkpoint); "
                             "resume from the run's last.ckpt, or start a new run from these "
                             f"weights with --ckpt_path {resume_ckpt}")
        del weights

    datamodule = VideoDataModule(opts)
    logger = TensorBoardLogger(save_dir=opts.log_dir, name=opts.exp_name,
                               version=resume_version, default_hp_metric=False)
    run_dir = Path(logger.log_dir)
    checkpoint = BestWeightsLastFull(dirpath=run_dir,
                                     filename="epoch={epoch}-val_loss={val_loss:.4f}",
                                     auto_insert_metric_name=False, monitor="val_loss",
                                     mode="min", save_top_k=3, save_last=True,
                                     # a resumed run (even from a moved folder) keeps
                                     # updating last.ckpt instead of starting last-v1.ckpt
                                     enable_version_counter=False)
    keeper = NoLostWork(run_dir / "last.ckpt", opts.ckpt_every_n_steps)
    callbacks: list[Callback] = [checkpoint, TQDMProgressBar(refresh_rate=10), keeper,
                                 LearningRateMonitor(logging_interval="step")]
    if opts.seed is not None:
        callbacks.append(EpochReseed(opts.seed))
    many = opts.num_nodes > 1 or (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, list) and len(devices) > 1)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=opts.num_nodes,
        # The networks keep heads that the loss never uses (ResNet fc, the disparity heads
        # of scales 1-3, for checkpoint compatibility): DDP must be told, or it stops.
        strategy="ddp_find_unused_parameters_true" if many else "auto",
        precision=opts.precision,
        max_epochs=opts.num_epochs,
        max_steps=opts.max_steps,
        max_time=(datetime.timedelta(minutes=opts.max_minutes) if opts.max_minutes else None),
        val_check_interval=opts.val_every_n_steps,
        check_val_every_n_epoch=None if opts.val_every_n_steps else 1,
        limit_val_batches=(int(opts.limit_val_batches) if opts.limit_val_batches > 1
                           else opts.limit_val_batches),
        log_every_n_steps=opts.log_every_n_steps,
        logger=logger,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        deterministic=opts.seed is not None and accelerator == "cpu",
        benchmark=opts.seed is None,
        num_sanity_val_steps=1,
    )
    print(f"run directory: {run_dir}", flush=True)
    # Checkpoints live beside the TensorBoard events (the public layout), whose file the
    # logger creates before ModelCheckpoint looks: its "not empty" warning would be noise on
    # every run (each run has its own version folder; a resume reuses it on purpose).
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            trainer.fit(model, datamodule=datamodule,
                        ckpt_path=str(resume_ckpt) if resume_ckpt else None, weights_only=True)
        keeper.raise_if_stopped()  # a signal in the last step: training ended anyway
    except NonFiniteLossError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    except TrainingInterruptedError as err:
        print(f"train.py: stopped by {err}", file=sys.stderr)
        return 130 if "SIGINT" in str(err) else 143
    last = run_dir / "last.ckpt"
    print(f"checkpoints in {run_dir}: best {checkpoint.best_model_path or '(none yet)'}"
          + (f" (val_loss {float(checkpoint.best_model_score):.4f})"
             if checkpoint.best_model_score is not None else "")
          + (f", last {last}" if last.is_file() else ", no last.ckpt (no step was trained)"))
    return 0
