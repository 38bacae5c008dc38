"""Train SC-Depth V1/V2/V3 on a video dataset (SPEC §6).

    python train.py --config configs/v1/kitti.txt --dataset_dir /data/kitti

Logs and checkpoints go to <log_dir>/<exp_name>/version_N (TensorBoard events, the best
three checkpoints by val_loss and last.ckpt).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from config import parse_options
from utils.cli import UsageError, run_main

if TYPE_CHECKING:  # the heavy imports wait until the options are parsed
    import pytorch_lightning as pl
    from pytorch_lightning.plugins.io import CheckpointIO


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


def seed_epoch(trainer: pl.Trainer, seed: int) -> None:
    """Reseed Python, NumPy, torch and the training sampler from (seed, epoch).

    Called at the start of every training epoch, so that an epoch's samples and
    augmentations depend only on (seed, epoch), not on what ran before in the process: a run
    resumed from the end-of-epoch last.ckpt (after a crash or `kill -9` during the next
    epoch) replays that epoch exactly as the uninterrupted run does. The sampler gets its own
    generator because the global one is also drawn from when Lightning creates the epoch's
    DataLoader iterator, which happens before this hook in the first epoch of a process and
    after it in the others. Exact with --num_workers 0; worker processes are persistent
    and keep the generators they were started with.
    """
    import random

    import numpy as np
    import torch

    epoch_seed = int(np.random.SeedSequence([seed, trainer.current_epoch]).generate_state(1)[0])
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)
    torch.manual_seed(epoch_seed)
    sampler = getattr(trainer.train_dataloader, "sampler", None)
    if sampler is not None and hasattr(sampler, "generator"):
        sampler.generator = torch.Generator().manual_seed(epoch_seed)


def atomic_checkpoint_io() -> CheckpointIO:
    """A Lightning CheckpointIO whose files are complete or absent, never half-written.

    Lightning's own writer commits through a temporary file in the system temp folder; when
    that is another file system (a tmpfs /tmp), the final move is a copy that a `kill -9` can
    cut short, leaving a truncated last.ckpt. This one writes `.<name>.tmp` next to the
    target, fsyncs it and renames it over the target (`os.replace`, atomic within a file
    system): a crash or a failing save leaves the previous file as it was.
    """
    import os

    import torch
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict, path: str | Path,
                            storage_options: object | None = None) -> None:
            if storage_options is not None:
                raise TypeError("storage_options is not supported")
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            try:
                with tmp.open("wb") as fh:
                    torch.save(checkpoint, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)

    return AtomicCheckpointIO()


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, description=__doc__.split("\n")[0])
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required (or dataset_dir = ... in the --config file)")

    # The dataset check first: a mistake in the dataset is reported before the heavy imports.
    from datasets.check import check_dataset

    summary = check_dataset(opts, stage="train")
    if opts.check_only:
        print(summary.describe())
        return 0

    # Heavy imports after parsing, so that --help and option errors answer at once.
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import LambdaCallback, ModelCheckpoint, TQDMProgressBar
    from pytorch_lightning.loggers import TensorBoardLogger

    from datasets.data_module import VideoDataModule
    from models.sc_depth import NonFiniteLossError, build_model
    from utils.checkpoint import SAFE_GLOBALS, checkpoint_state_dict, load_checkpoint

    if not opts.no_malloc_tuning:
        from utils.allocator import keep_freed_memory

        keep_freed_memory()  # before the first large tensor; see utils/allocator.py
    resume_ckpt, resume_version = resolve_resume(opts)
    if resume_ckpt is not None:
        load_checkpoint(resume_ckpt)  # refuses unsafe or broken files before Lightning does
    if opts.seed is not None:
        pl.seed_everything(opts.seed, workers=True)

    model = build_model(opts)
    if opts.ckpt_path and resume_ckpt is None:
        state = checkpoint_state_dict(load_checkpoint(opts.ckpt_path))
        model.load_state_dict(state, strict=True)

    datamodule = VideoDataModule(opts)
    logger = TensorBoardLogger(save_dir=opts.log_dir, name=opts.exp_name,
                               version=resume_version, default_hp_metric=False)
    run_dir = Path(logger.log_dir)
    checkpoint = ModelCheckpoint(dirpath=run_dir, filename="epoch={epoch}-val_loss={val_loss:.4f}",
                                 auto_insert_metric_name=False, monitor="val_loss", mode="min",
                                 save_top_k=3, save_last=True,
                                 # a resumed run (even from a moved folder) keeps updating
                                 # last.ckpt instead of starting last-v1.ckpt
                                 enable_version_counter=False)
    callbacks = [checkpoint, TQDMProgressBar(refresh_rate=10)]
    if opts.seed is not None:
        callbacks.append(LambdaCallback(
            on_train_epoch_start=lambda trainer, _: seed_epoch(trainer, opts.seed)))
    devices = parse_devices(opts.devices)
    many = opts.num_nodes > 1 or (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, list) and len(devices) > 1)
    trainer = pl.Trainer(
        accelerator=opts.accelerator,
        devices=devices,
        num_nodes=opts.num_nodes,
        # The networks keep heads that the loss never uses (ResNet fc, the disparity heads
        # of scales 1-3, for checkpoint compatibility): DDP must be told, or it stops.
        strategy="ddp_find_unused_parameters_true" if many else "auto",
        precision=opts.precision,
        max_epochs=opts.num_epochs,
        max_steps=opts.max_steps,
        limit_val_batches=(int(opts.limit_val_batches) if opts.limit_val_batches > 1
                           else opts.limit_val_batches),
        log_every_n_steps=opts.log_every_n_steps,
        logger=logger,
        callbacks=callbacks,
        plugins=[atomic_checkpoint_io()],
        deterministic=opts.seed is not None and opts.accelerator == "cpu",
        benchmark=opts.seed is None,
        num_sanity_val_steps=1,
    )
    print(f"run directory: {run_dir}", flush=True)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            trainer.fit(model, datamodule=datamodule,
                        ckpt_path=str(resume_ckpt) if resume_ckpt else None, weights_only=True)
    except NonFiniteLossError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    print(f"checkpoints in {run_dir} (last: {run_dir / 'last.ckpt'})")
    return 0


if __name__ == "__main__":
    run_main(main, "train.py")
