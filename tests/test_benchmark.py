"""Smoke runs of scripts/benchmark.py (one step, tiny images) and the frame cache.

No timing is asserted: only that every figure is produced, positive and well-formed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli

pytestmark = pytest.mark.slow  # benchmark runs, some in subprocesses

benchmark = cli("benchmark")

KEYS = {"version", "mode", "precision", "height", "width", "batch_size", "device", "torch",
        "threads", "train_step_s", "infer_img_s", "peak_mem_mb", "peak_mem_kind"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors on a shared CPU: one thread is faster
    yield
    torch.set_num_threads(threads)


def test_compare_json_records(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model_version", "v1", "--img_height", "64", "--img_width", "80", "--batch_size", "2",
            "--steps", "1", "--warmup", "0", "--device", "cpu", "--compare", "--json",
            "--threads", "1"]
    assert benchmark.main(argv) == 0  # each configuration in a spawned process
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert [(r["mode"], r["precision"]) for r in records] == [
        ("plain", "32"), ("fast", "32"), ("fast", "bf16-mixed")]
    for r in records:
        assert r.keys() >= KEYS
        assert (r["height"], r["width"], r["batch_size"], r["device"]) == (64, 80, 2, "cpu")
        assert r["train_step_s"] > 0 and r["infer_img_s"] > 0 and r["peak_mem_mb"] > 0
        assert r["threads"] == 1 and r["torch"] == torch.__version__
        assert r["isolated"] is True
        # the allocator is tuned only in the fast runs' own processes (glibc: always here)
        assert r["malloc_tuning"] == (r["mode"] == "fast" and sys.platform == "linux")
    table = benchmark.format_table(records)
    assert table.count("\n") >= 4 and "bf16-mixed" in table and "plain" in table


def test_compare_plan_adds_fp16_on_cuda() -> None:
    parser = benchmark.get_parser()
    cpu = benchmark.planned_runs(parser.parse_args(["--compare", "--device", "cpu"]))
    cuda = benchmark.planned_runs(parser.parse_args(["--compare", "--device", "cuda:0"]))
    assert cpu == [("plain", "32"), ("fast", "32"), ("fast", "bf16-mixed")]
    assert cuda == [*cpu, ("fast", "16-mixed")]


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_train_step_of_later_versions(version: str) -> None:
    """V2 (ARN) and V3 (needs tgt_prior, K_inv) run through the same harness."""
    args = benchmark.get_parser().parse_args(
        ["--model_version", version, "--img_height", "64", "--img_width", "64", "--batch_size", "2",
         "--steps", "1", "--warmup", "0", "--device", "cpu", "--skip", "infer",
         "--in_process"])
    (record,) = benchmark.run(args)
    assert record["train_step_s"] > 0 and "infer_img_s" not in record
    assert record["isolated"] is False and record["malloc_tuning"] is False
    assert record["mode"] == "fast" and record["precision"] == "32"


def test_synthetic_batch_format() -> None:
    batch = benchmark.synthetic_batch("v3", 2, 32, 48, torch.device("cpu"))
    assert batch["tgt"].shape == (2, 3, 32, 48)
    assert len(batch["refs"]) == 2 and batch["refs"][0].shape == (2, 3, 32, 48)
    assert batch["K"].shape == (2, 3, 3)
    torch.testing.assert_close(batch["K"] @ batch["K_inv"], torch.eye(3).expand(2, 3, 3))
    assert batch["tgt_prior"].shape == (2, 1, 32, 48) and (batch["tgt_prior"] > 0).all()
    assert "tgt_prior" not in benchmark.synthetic_batch("v1", 2, 32, 48, torch.device("cpu"))


def test_plain_and_fast_hparams() -> None:
    plain = benchmark.model_hparams("v1", "plain", compile_=True)
    fast = benchmark.model_hparams("v1", "fast")
    assert plain["no_batched_forwards"] and plain["no_channels_last"] and not plain["compile"]
    assert plain["no_fused_ssim"] and not fast["no_fused_ssim"]
    assert not fast["no_batched_forwards"] and not fast["no_channels_last"]
    with pytest.raises(ValueError):
        benchmark.model_hparams("v1", "both")
    with pytest.raises(ValueError, match="CUDA"):
        benchmark.autocast_context("16-mixed", torch.device("cpu"))


def test_data_pipeline_throughput(tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
                                  ) -> None:
    args = benchmark.get_parser().parse_args(
        ["--data", "--dataset_dir", str(tiny_dataset), "--workers", "0", "--img_height", "64",
         "--img_width", "80", "--batch_size", "2", "--steps", "2", "--warmup", "1",
         "--skip", "train", "infer", "--cache_frames"])
    records = benchmark.run_data(args)
    assert len(records) == 1
    assert records[0]["workers"] == 0 and records[0]["cache_frames"] is True
    assert records[0]["data_samples_s"] > 0


def test_frame_cache_returns_equal_copies(tiny_dataset: Path) -> None:
    """--cache_frames: the same samples as without it, decoded once, safe to modify."""
    from datasets.formats import read_image
    from datasets.video_folder import FrameCache, TrainFolder, ValidationDepthSet

    root = tiny_dataset / "training"
    plain, cached = TrainFolder(root), TrainFolder(root, cache_frames=True)
    for _ in range(2):  # second pass: every frame from the cache
        for i in (0, 1):
            a, b = plain[i], cached[i]
            torch.testing.assert_close(a["tgt"], b["tgt"], rtol=0, atol=0)
            for ra, rb in zip(a["refs"], b["refs"]):
                torch.testing.assert_close(ra, rb, rtol=0, atol=0)
    assert cached.cache.hits > 0 and cached.cache.misses == len(cached.cache)

    val_plain = ValidationDepthSet(root, "synthetic")
    val_cached = ValidationDepthSet(root, "synthetic", cache_frames=True)
    for _ in range(2):
        torch.testing.assert_close(val_plain[0]["gt_depth"], val_cached[0]["gt_depth"])
        torch.testing.assert_close(val_plain[0]["tgt"], val_cached[0]["tgt"], rtol=0, atol=0)

    cache = FrameCache()
    path = plain.samples[0][1]
    first = cache.get(path, read_image)
    first[:] = -1.0  # a caller's modification must not reach the cache
    again = cache.get(path, read_image)
    np.testing.assert_array_equal(again, read_image(path))
    assert again.dtype == np.float32 and cache.nbytes == again.size  # kept as uint8

    small = FrameCache(max_bytes=again.size)  # room for one frame: LRU eviction
    small.get(path, read_image)
    small.get(plain.samples[1][1], read_image)
    assert len(small) == 1 and small.nbytes <= small.max_bytes


def test_conv_macs_hand_computed() -> None:
    """3→8 3×3 on 4×5 (padding 1): 8·4·5 outputs × 3·9 = 4320; 6→4 1×1 in two groups on
    2×2: 4·2·2 outputs × 3 = 48; a network that is absent is not listed."""
    model = torch.nn.Module()
    model.depth_net = torch.nn.Conv2d(3, 8, 3, padding=1)
    model.pose_net = torch.nn.Conv2d(6, 4, 1, groups=2)
    x, y = torch.zeros(1, 3, 4, 5), torch.zeros(1, 6, 2, 2)
    counts = benchmark.conv_macs(model, lambda: (model.depth_net(x), model.pose_net(y)))
    assert counts == {"depth_net": 4320, "pose_net": 48}
    model.depth_net(x)  # the hooks are gone
    assert benchmark.conv_macs(model, lambda: None) == {"depth_net": 0, "pose_net": 0}


def test_step_bound_keeps_pose_networks_at_fp32_peak() -> None:
    gmac = {"depth_net": 190.0, "pose_net": 156.0}
    peaks = {"32": 100.0, "bf16-mixed": 200.0}
    assert benchmark.step_bound_s(gmac, peaks, "32") == pytest.approx(3.46)
    assert benchmark.step_bound_s(gmac, peaks, "bf16-mixed") == pytest.approx(0.95 + 1.56)


def test_roofline_record_counts_every_frame_and_pair(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """A V1 step runs DepthNet on the 3 frames of each sample, forward and backward (3×),
    so its DepthNet work is 9 × batch × one image's inference; the bounds are the work at
    the measured peaks."""
    argv = ["--model_version", "v1", "--img_height", "64", "--img_width", "96", "--batch_size", "2",
            "--steps", "1", "--warmup", "0", "--device", "cpu", "--roofline", "--json",
            "--threads", "1", "--in_process", "--skip", "infer"]
    assert benchmark.main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.strip()]
    run, roof = records
    assert roof["kind"] == "roofline" and roof["device"] == "cpu"
    assert roof["train_gmac"]["depth_net"] == pytest.approx(9 * 2 * roof["infer_gmac_per_img"])
    assert set(roof["train_gmac"]) == {"depth_net", "pose_net"}
    assert set(roof["peak_gmac_s"]) == {"32", "bf16-mixed"}
    assert all(v > 0 for v in roof["peak_gmac_s"].values())
    for p, bound in roof["train_bound_s"].items():
        assert bound == pytest.approx(benchmark.step_bound_s(roof["train_gmac"],
                                                             roof["peak_gmac_s"], p))
        assert roof["infer_bound_img_s"][p] == pytest.approx(
            roof["peak_gmac_s"][p] / roof["infer_gmac_per_img"])
    text = benchmark.format_table([run, roof])
    assert "roofline:" in text and "at most" in text and "bf16-mixed: step >=" in text


def test_time_to_accuracy_trains_for_the_budget_and_scores(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets.synthetic import generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, seed=0, scenes=1, frames=8, val_scenes=1, test_scenes=1,
                     height=64, width=80, progress=False)
    # one path keeps the test short; the plain path's flags are what train.py must accept
    paths = {"plain-fp32": benchmark.TTA_PATHS["plain-fp32"]}
    monkeypatch.setattr(benchmark, "TTA_PATHS", paths)
    assert benchmark.main(["--time_to_accuracy", "0.05", "--dataset_dir", str(data),
                           "--device", "cpu", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    assert [(r["path"], r["seed"]) for r in records] == [("plain-fp32", 0)]
    r = records[0]
    assert r["steps"] > 0 and r["s_per_step"] == pytest.approx(3.0 / r["steps"])
    assert 0 < r["abs_rel"]["full"] < 10
    table = benchmark.format_time_to_accuracy(
        [r, {**r, "seed": 1, "abs_rel": {**r["abs_rel"], "full": r["abs_rel"]["full"] + 0.2}}])
    assert "seeds [0, 1]" in table and f"{r['abs_rel']['full'] + 0.1:.4f} ± 0.1000" in table
