"""Reliability of train.py: kill -9 and --resume, NaN/Inf losses, atomic checkpoints, --seed.

The train.py runs use the tiny generated dataset (2 scenes x 6 frames, 64x80) on the CPU,
3 steps an epoch. Per-step losses are read back from the TensorBoard event files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, cli, tiny_train_args
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from losses.photometric import PhotoGeometryLoss
from systems import NonFiniteLossError, build_model
from utils.checkpoint import AtomicCheckpointIO, load_checkpoint
from utils.cli import run_main

train = cli("train")

STEPS = 3  # optimizer steps an epoch
EPOCHS = 2


def run_args(dataset: Path, log_dir: Path, exp_name: str, *extra: str) -> list[str]:
    """The seeded 2-epoch run every test here starts from (overrides come last)."""
    return tiny_train_args(dataset, log_dir, "--exp_name", exp_name, "--seed", "0",
                           "--epoch_size", str(STEPS), "--num_epochs", str(EPOCHS),
                           "--log_images_every_n_steps", "0", "--limit_val_batches", "2",
                           *extra)


def step_losses(event_file: Path) -> dict[int, float]:
    """step -> train/total_loss of one TensorBoard event file."""
    acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
    acc.Reload()
    if "train/total_loss" not in acc.Tags()["scalars"]:
        return {}
    return {e.step: e.value for e in acc.Scalars("train/total_loss")}


def run_losses(run_dir: Path) -> list[dict[int, float]]:
    """The per-step losses of each event file of a run folder, oldest file first."""
    files = sorted(run_dir.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    return [step_losses(f) for f in files]


def adam_state(ckpt: dict) -> dict[int, dict[str, torch.Tensor]]:
    return ckpt["optimizer_states"][0]["state"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: EPOCHS epochs in one go, in this process."""
    log_dir = tmp_path_factory.mktemp("runs")
    assert train.main(run_args(tiny_dataset, log_dir, "ref")) == 0
    return log_dir / "ref" / "version_0"


# -------------------------------------------------------------------- kill -9 and resume
def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 600.0) -> float:
    start = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"train.py exited ({proc.returncode}) before {what}")
        if time.monotonic() - start > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic()


def _seconds_per_step(progress: str, bar: str) -> float:
    """The step time that tqdm shows at the end of a progress bar (`1.2s/it`, `0.8it/s`)."""
    rates = re.findall(re.escape(bar) + r"[^\r\n]*?([\d.]+)(s/it|it/s)", progress)
    assert rates, f"no {bar!r} in the output of train.py"
    value, unit = float(rates[-1][0]), rates[-1][1]
    return value if unit == "s/it" else 1.0 / max(value, 1e-3)


@pytest.mark.slow  # training runs, kill -9
def test_kill_9_mid_epoch_then_resume_joins_the_uninterrupted_run(
        uninterrupted: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    args = run_args(tiny_dataset, tmp_path, "killed")
    run_dir = tmp_path / "killed" / "version_0"
    output = tmp_path / "output.txt"
    with output.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        def progress() -> str:
            return output.read_bytes().decode(errors="replace")

        # The progress bar names epoch 1 once epoch 0 is over and its last.ckpt written;
        # then about one step more (epoch 0's rate), so that the kill comes in the second
        # step of epoch 1, with one optimizer step of the epoch done and lost.
        _wait_for(lambda: "Epoch 1:" in progress(), proc, "epoch 1")
        time.sleep(_seconds_per_step(progress(), "Epoch 0: 100%"))
        assert proc.poll() is None, "train.py finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # What the kill left: epoch 0's last.ckpt, complete; no checkpoint of epoch 1.
    left = load_checkpoint(run_dir / "last.ckpt")
    assert (left["epoch"], left["global_step"]) == (0, STEPS), \
        "killed too late: epoch 1 had already ended"
    assert not list(run_dir.glob("epoch=1-*.ckpt"))
    assert adam_state(left)[0]["step"].item() == STEPS

    # a kill in the middle of a checkpoint write leaves its temporary file: --resume removes it
    stale = run_dir / ".last.ckpt.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    assert train.main([*args, "--resume"]) == 0
    assert not stale.exists()

    # The resumed run logs from the step where last.ckpt stopped, and its losses are
    # those of the uninterrupted run, exactly: epoch 1 is replayed sample for sample.
    reference = run_losses(uninterrupted)[-1]
    assert sorted(reference) == list(range(EPOCHS * STEPS))
    resumed = run_losses(run_dir)[-1]
    assert sorted(resumed) == list(range(STEPS, EPOCHS * STEPS))
    assert resumed == {step: reference[step] for step in resumed}

    # Step counter and optimizer continued where last.ckpt left them: the final states
    # equal the uninterrupted run's (a fresh Adam would count STEPS steps, not 2·STEPS,
    # and have other moments).
    final, ref = load_checkpoint(run_dir / "last.ckpt"), load_checkpoint(uninterrupted /
                                                                        "last.ckpt")
    assert (final["epoch"], final["global_step"]) == (ref["epoch"], ref["global_step"]) \
        == (EPOCHS - 1, EPOCHS * STEPS)
    assert not list(run_dir.glob("last-v*.ckpt"))
    state, ref_state = adam_state(final), adam_state(ref)
    assert state.keys() == ref_state.keys()
    for key, value in state.items():
        assert value["step"].item() == EPOCHS * STEPS
        assert torch.equal(value["exp_avg"], ref_state[key]["exp_avg"])
        assert torch.equal(value["exp_avg_sq"], ref_state[key]["exp_avg_sq"])
    for name, weight in final["state_dict"].items():
        assert torch.equal(weight, ref["state_dict"][name]), name


# ------------------------------------------------------------------ atomic checkpoints
@pytest.mark.slow  # training runs, kill -9
def test_failing_save_leaves_the_previous_checkpoint_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()
    targets = []
    real_save = torch.save

    def dies_half_way(obj: object, f: object, *args: object, **kwargs: object) -> None:
        targets.append(Path(f.name))
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    # it wrote next to the target (so the final rename is atomic), never to the target
    assert targets[0].parent == tmp_path and targets[0] != path
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]

    monkeypatch.setattr(torch, "save", real_save)
    io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    assert load_checkpoint(path)["global_step"] == 2


# ------------------------------------------------------------------------ NaN / Inf loss
@pytest.mark.slow  # training runs, kill -9
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
        uninterrupted: Path, tiny_dataset: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "nan" / "version_0"
    run_dir.mkdir(parents=True)
    last = run_dir / "last.ckpt"
    shutil.copy(uninterrupted / "last.ckpt", last)
    digest = hashlib.sha256(last.read_bytes()).hexdigest()

    original = PhotoGeometryLoss.forward

    def poisoned(self: PhotoGeometryLoss, *args: object, **kwargs: object) -> object:
        out = original(self, *args, **kwargs)
        return dataclasses.replace(out, photo_loss=out.photo_loss * math.nan)

    monkeypatch.setattr(PhotoGeometryLoss, "forward", poisoned)
    argv = run_args(tiny_dataset, tmp_path, "nan", "--num_epochs", str(EPOCHS + 1), "--resume")
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: train.main(argv), "train.py")
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("train.py: error: photo_loss is nan at step "
                          f"{EPOCHS * STEPS};"), err
    # the last good checkpoint is untouched and finite
    assert hashlib.sha256(last.read_bytes()).hexdigest() == digest
    kept = load_checkpoint(last)
    assert kept["global_step"] == EPOCHS * STEPS
    assert all(torch.isfinite(t).all() for t in kept["state_dict"].values()
               if t.is_floating_point())


# ------------------------------------------------- last.ckpt when validation stops improving
@pytest.mark.slow  # training runs
@pytest.mark.parametrize("every", [4, 2])
def test_last_ckpt_holds_the_end_when_validation_stops_improving(
        every: int, tiny_dataset: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the first validation ranks among the best, as in a long run whose val_loss has
    # stopped improving: Lightning then writes last.ckpt neither at the later validations
    # nor at the end. --ckpt_every_n_steps 4 last saves at step 4 of 6, 2 in the middle of
    # the last step: last.ckpt must still be the end of the run, and --resume with one
    # epoch more must train that epoch.
    from pytorch_lightning.callbacks import ModelCheckpoint

    monkeypatch.setattr(ModelCheckpoint, "check_monitor_top_k",
                        lambda self, trainer, current=None: trainer.current_epoch == 0)
    first = run_args(tiny_dataset, tmp_path, "run", "--ckpt_every_n_steps", str(every))
    assert train.main(first) == 0
    last = tmp_path / "run" / "version_0" / "last.ckpt"
    assert [p.name[:8] for p in last.parent.glob("epoch=*.ckpt")] == ["epoch=0-"]  # the best
    ended = load_checkpoint(last)
    assert ended["global_step"] == EPOCHS * STEPS
    assert train.main([*first, "--num_epochs", str(EPOCHS + 1), "--resume"]) == 0
    assert load_checkpoint(last)["global_step"] == (EPOCHS + 1) * STEPS


# --------------------------------------------------------------------------- --seed
@pytest.mark.slow  # training runs, kill -9
def test_seed_repeats_the_loss_curve(uninterrupted: Path, tiny_dataset: Path,
                                     tmp_path: Path) -> None:
    assert train.main(run_args(tiny_dataset, tmp_path, "again", "--num_epochs", "1")) == 0
    again = run_losses(tmp_path / "again" / "version_0")[-1]
    reference = run_losses(uninterrupted)[-1]
    assert sorted(again) == list(range(STEPS))
    assert again == {step: reference[step] for step in again}
    assert len(set(again.values())) == STEPS  # a real curve, not one repeated value


# ------------------------------------------------------- finite losses on edge batches
def _edge_batch(kind: str, B: int = 2, H: int = 40, W: int = 48) -> dict[str, object]:
    gen = torch.Generator().manual_seed(0)
    tgt = torch.rand(B, 3, H, W, generator=gen) * 2 - 1
    refs = [torch.rand(B, 3, H, W, generator=gen) * 2 - 1 for _ in range(2)]
    if kind in ("edge_free", "all_masked"):
        # flat grey frames: no image gradient, SSIM variances 0; identical frames make the
        # auto-mask drop every pixel
        tgt = torch.full((B, 3, H, W), 0.25)
        refs = [tgt.clone(), tgt.clone()]
    K = torch.tensor([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]]).expand(B, 3, 3)
    return {"tgt": tgt, "refs": refs, "K": K.clone(), "K_inv": torch.linalg.inv(K)}


@pytest.fixture(scope="module")
def v1_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model({"model_version": "v1", "no_pretrain": True}).train()


@pytest.mark.parametrize("kind", ["all_masked", "out_of_view", "zero_motion", "edge_free",
                                  "near", "far"])
def test_loss_terms_finite_on_edge_batches(kind: str, v1_model: torch.nn.Module,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    model = v1_model
    model.zero_grad(set_to_none=True)
    predict_depths, predict_poses = model.predict_depths, model.predict_poses
    scale = {"near": 1e-3, "far": 1e3}.get(kind, 1.0)

    def depths(tgt: torch.Tensor, refs: list[torch.Tensor]) -> tuple:
        d, ds = predict_depths(tgt, refs)
        return d * scale, [r * scale for r in ds]

    def poses(tgt: torch.Tensor, refs: list[torch.Tensor]) -> tuple:
        p, p_inv = predict_poses(tgt, refs)
        if kind == "zero_motion":
            # identity, still attached to the network so that gradients flow
            eye = torch.eye(3, 4).expand_as(p[0])
            return [eye + 0 * q for q in p], [eye + 0 * q for q in p_inv]
        if kind == "out_of_view":
            # 1 km sideways: no target pixel lands inside a reference view
            shift = torch.zeros_like(p[0])
            shift[:, 0, 3] = 1000.0
            return [q + shift for q in p], [q - shift for q in p_inv]
        return p, p_inv

    monkeypatch.setattr(model, "predict_depths", depths)
    monkeypatch.setattr(model, "predict_poses", poses)
    terms, context = model.loss_terms(_edge_batch(kind))
    assert set(terms) == {"photo_loss", "geometry_loss", "smooth_loss"}
    for name, value in terms.items():
        assert torch.isfinite(value), (kind, name, value)
    if kind in ("all_masked", "out_of_view"):
        # the case is really reached: no pixel is left for the photometric loss
        assert context.logs["valid_fraction"].item() == 0.0
    model.total_loss(terms).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, "no gradient reached the networks"
    assert all(torch.isfinite(g).all() for g in grads), kind


@pytest.mark.parametrize(("term", "value"), [("geometry_loss", math.inf),
                                             ("smooth_loss", -math.inf),
                                             ("photo_loss", math.nan)])
def test_check_finite_names_the_term_and_step(term: str, value: float,
                                              v1_model: torch.nn.Module) -> None:
    terms = {"photo_loss": torch.tensor(0.2), "geometry_loss": torch.tensor(0.1),
             "smooth_loss": torch.tensor(0.05)}
    model = v1_model
    model.check_finite(terms)  # finite: no error
    terms[term] = torch.tensor(value)
    with pytest.raises(NonFiniteLossError, match=f"^{term} is {value} at step 0;"):
        model.check_finite(terms)
