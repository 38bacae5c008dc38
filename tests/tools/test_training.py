"""tools/training.py: no lost work. Validation at the end of --max_steps, last.ckpt every n
steps and on SIGTERM, and --resume in the middle of an epoch at the right epoch and step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, run_tool, tensorboard_scalars, tiny_train_args

from datasets.data_module import EpochSampler
from tools.training import check_devices
from utils.checkpoint import load_checkpoint
from utils.errors import UsageError

EPOCH = 6  # batches an epoch


def args(dataset: Path, log_dir: Path, name: str, *extra: str) -> list[str]:
    return tiny_train_args(dataset, log_dir, "--exp_name", name, "--seed", "0",
                           "--epoch_size", str(EPOCH), "--num_epochs", "2",
                           "--log_images_every_n_steps", "0", "--limit_val_batches", "2",
                           *extra)


def test_devices_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    check_devices(4, "cpu")
    check_devices("auto", "cpu")
    for devices, message in ((5, "1 to 4 processes"), (0, "1 to 4"), ([0, 1], "names GPUs")):
        with pytest.raises(UsageError, match=message):
            check_devices(devices, "cpu")
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    check_devices([0, 1], "gpu")
    with pytest.raises(UsageError, match="2 GPU"):
        check_devices([2], "gpu")


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochSampler(50, 12, seed=3), EpochSampler(50, 12, seed=3)
    first = list(a)
    assert first == list(b) and len(a) == 12
    second = list(a)  # iterated again without set_epoch: the next epoch
    assert second != first
    b.set_epoch(1)
    assert list(b) == second
    b.set_epoch(1)
    b.skip = 5  # a run resumed after 5 draws of epoch 1 gets the other 7
    assert list(b) == second[5:] and len(b) == 12
    assert list(EpochSampler(50, 12, seed=4)) != first


@pytest.mark.slow  # training runs
def test_max_steps_inside_an_epoch_validates_and_keeps_a_best_checkpoint(
        tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tool("train", args(tiny_dataset, tmp_path, "short", "--max_steps", "3")) == 0
    run = tmp_path / "short" / "version_0"
    assert tensorboard_scalars(run, "val/abs_rel"), "no validation at the end of --max_steps"
    best = list(run.glob("epoch=0-val_loss=*.ckpt"))
    assert len(best) == 1 and load_checkpoint(run / "last.ckpt")["global_step"] == 3
    assert f"best {best[0]}" in capsys.readouterr().out
    assert tensorboard_scalars(run, "lr-Adam")  # the learning rate is logged
    # the best checkpoint keeps the weights and options, last.ckpt also what --resume needs
    light, full = load_checkpoint(best[0]), load_checkpoint(run / "last.ckpt")
    assert "optimizer_states" not in light and "callbacks" not in light
    assert light["hyper_parameters"] == full["hyper_parameters"]
    assert light["state_dict"].keys() == full["state_dict"].keys()
    assert "optimizer_states" in full and "callbacks" in full
    assert best[0].stat().st_size < 0.4 * (run / "last.ckpt").stat().st_size
    # a best checkpoint is evaluated like any other, and refused by --resume with a way out
    assert run_tool("test", ["--dataset_dir", str(tiny_dataset), "--ckpt_path", str(best[0]),
                             "--device", "cpu"]) == 0
    capsys.readouterr()
    assert run_tool("train", args(tiny_dataset, tmp_path, "short", "--resume",
                                  str(best[0]))) == 2
    err = capsys.readouterr().err
    assert "holds only the weights" in err and f"--ckpt_path {best[0]}" in err


@pytest.mark.slow  # a training run
def test_fp16_best_checkpoints_evaluate_like_fp32_ones(tiny_dataset: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    import torch

    assert run_tool("train", args(tiny_dataset, tmp_path, "half", "--max_steps", "2",
                                  "--fp16_best_checkpoints")) == 0
    run = tmp_path / "half" / "version_0"
    (best,) = run.glob("epoch=*-val_loss=*.ckpt")
    light, full = load_checkpoint(best), load_checkpoint(run / "last.ckpt")
    floats = {k: v for k, v in light["state_dict"].items() if v.is_floating_point()}
    assert floats and all(v.dtype == torch.float16 for v in floats.values())
    counters = [k for k, v in light["state_dict"].items() if not v.is_floating_point()]
    assert counters and all(light["state_dict"][k].dtype == torch.int64 for k in counters)
    assert all(v.dtype == torch.float32 for v in full["state_dict"].values()
               if v.is_floating_point())  # last.ckpt keeps fp32 for --resume
    # the same weights to fp16 precision: the last step's, as best and last are one step
    for k, v in floats.items():
        torch.testing.assert_close(v.float(), full["state_dict"][k], rtol=1e-3, atol=1e-4)
    assert best.stat().st_size < 0.55 * 0.4 * (run / "last.ckpt").stat().st_size
    # test.py casts them back: the AbsRel of the fp32 weights to 3 decimals
    results = {}
    for name, path in (("half", best), ("full", run / "last.ckpt")):
        out = tmp_path / f"{name}.json"
        assert run_tool("test", ["--dataset_dir", str(tiny_dataset), "--ckpt_path", str(path),
                                 "--device", "cpu", "--output_json", str(out)]) == 0
        results[name] = json.loads(out.read_text())["full"]["abs_rel"]
    assert results["half"] == pytest.approx(results["full"], abs=1e-3)
    # and --resume takes the run on from last.ckpt
    assert run_tool("train", args(tiny_dataset, tmp_path, "half", "--max_steps", "3",
                                  "--fp16_best_checkpoints", "--resume")) == 0
    assert load_checkpoint(run / "last.ckpt")["global_step"] == 3


def test_max_minutes_stops_on_time_with_a_validation_and_last_ckpt(
        tiny_dataset: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    assert run_tool("train", args(tiny_dataset, tmp_path, "timed", "--num_epochs", "1000",
                                  "--max_minutes", "0.1")) == 0
    assert time.monotonic() - start < 120  # 1000 epochs would take far longer
    run = tmp_path / "timed" / "version_0"
    step = load_checkpoint(run / "last.ckpt")["global_step"]
    assert 0 < step < 1000 * EPOCH
    # a validation at every epoch end and one where the time ran out, mid-epoch
    assert len(tensorboard_scalars(run, "val/abs_rel")) == -(-step // EPOCH)
    assert list(run.glob("epoch=*-val_loss=*.ckpt"))


@pytest.mark.slow  # a training process stopped by SIGTERM, then resumed
def test_sigterm_writes_last_ckpt_and_resume_continues_at_that_step(
        tiny_dataset: Path, tmp_path: Path) -> None:
    argv = args(tiny_dataset, tmp_path, "term", "--ckpt_every_n_steps", "2")
    run = tmp_path / "term" / "version_0"
    log = tmp_path / "out.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "train.py", *argv], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        start = time.monotonic()
        # last.ckpt of step 2 (--ckpt_every_n_steps) exists: the run is in epoch 0, step 3+
        while not (run / "last.ckpt").is_file():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() - start < 600
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=300)
    finally:
        proc.kill()
    output = log.read_text()
    assert code == 143, output
    assert "SIGTERM: stopping after this step" in output and "Traceback" not in output
    assert "weights_only" not in output  # Lightning's note when a full save is not asked for
    left = load_checkpoint(run / "last.ckpt")
    step = left["global_step"]
    assert left["epoch"] == 0 and 2 <= step < EPOCH, "SIGTERM came after epoch 0"
    assert left["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["batches_done"] == step

    # resumed mid-epoch: epoch 0 goes on at its step, then epoch 1; no unresumable loader
    resumed = subprocess.run([sys.executable, "train.py", *argv, "--resume"], cwd=ROOT,
                             capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, PYTHONWARNINGS="default"))
    assert resumed.returncode == 0, resumed.stderr
    assert "not resumable" not in resumed.stderr + resumed.stdout
    final = load_checkpoint(run / "last.ckpt")
    assert (final["epoch"], final["global_step"]) == (1, 2 * EPOCH)
    losses = {s for s in range(2 * EPOCH)
              if s in {int(e) for e in _logged_steps(run, "train/total_loss")}}
    assert losses == set(range(2 * EPOCH))  # every step logged once across both runs


def _logged_steps(run: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: list[int] = []
    for events in run.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        if tag in acc.Tags()["scalars"]:
            steps += [e.step for e in acc.Scalars(tag)]
    return steps


def test_bf16_on_a_cpu_that_emulates_it_is_noted_before_anything_runs(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("torch.ops.mkldnn._is_mkldnn_bf16_supported", lambda: False)
    (tmp_path / "logs").write_text("a file, not a folder")  # refused right after the note
    status = run_tool("train", args(tiny_dataset, tmp_path / "logs", "bf16", "--precision",
                                    "bf16-mixed"))
    err = capsys.readouterr().err
    assert status == 2 and "--log_dir" in err.splitlines()[-1]
    assert "note: --precision bf16-mixed: this CPU has no native bf16" in err
