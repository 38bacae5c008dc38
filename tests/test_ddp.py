"""Two CPU processes (gloo) train through Lightning's DDP for one step and validate.

Lightning's DDP launcher re-executes the script for the second rank, so train.py runs in a
subprocess here, as a user would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, tiny_train_args

pytestmark = pytest.mark.slow  # two training processes


def test_train_ddp_two_cpu_processes(tiny_dataset: Path, tmp_path: Path) -> None:
    args = tiny_train_args(tiny_dataset, tmp_path / "logs", "--devices", "2",
                           "--epoch_size", "1", "--limit_val_batches", "1", "--seed", "0",
                           "--exp_name", "ddp")
    # one thread per rank: two ranks share the machine's cores
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "logs" / "ddp" / "version_0"
    assert (run_dir / "last.ckpt").is_file()
    # the monitored checkpoint exists only if val_loss was logged (synchronised over ranks)
    best = list(run_dir.glob("epoch=*-val_loss=*.ckpt"))
    assert len(best) == 1, sorted(p.name for p in run_dir.iterdir())

    from utils.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / "last.ckpt")
    # epoch_size counts batches per process (not one pass over the data split in two):
    # one step on each, one optimizer step in all
    assert ckpt["global_step"] == 1
    assert ckpt["hyper_parameters"]["devices"] == "2"
