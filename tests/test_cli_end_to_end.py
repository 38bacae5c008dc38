"""train.py -> last.ckpt -> test.py metrics -> inference.py depth, on a generated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, tiny_train_args

pytestmark = pytest.mark.slow  # a training run through train.py

inference = cli("inference")
test_script = cli("test")
train = cli("train")



@pytest.fixture(scope="module")
def trained_v1(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    assert train.main(tiny_train_args(tiny_dataset, log_dir, "--exp_name", "e2e",
                                      "--seed", "0")) == 0
    return log_dir / "e2e" / "version_0"


def test_train_writes_checkpoints_and_logs(trained_v1: Path) -> None:
    assert (trained_v1 / "last.ckpt").is_file()
    assert list(trained_v1.glob("epoch=*-val_loss=*.ckpt")), "no best-k checkpoint"
    assert list(trained_v1.glob("events.out.tfevents.*")), "no TensorBoard log"


def test_test_py_prints_metrics(trained_v1: Path, tiny_dataset: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "metrics.json"
    assert test_script.main(["--dataset_dir", str(tiny_dataset), "--dataset_name", "synthetic",
                             "--ckpt_path", str(trained_v1 / "last.ckpt"), "--img_height", "64",
                             "--img_width", "80", "--num_workers", "0",
                             "--output_json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "abs_rel" in printed and "dynamic" in printed and "static" in printed
    results = json.loads(out_json.read_text())
    n_test = len(list((tiny_dataset / "testing" / "color").iterdir()))
    assert results["num_images"] == n_test
    assert 0.0 < results["full"]["abs_rel"] < 1.0
    assert 0.0 <= results["full"]["a1"] <= 1.0


def test_test_py_bf16_metrics_close_to_fp32(trained_v1: Path, tiny_dataset: Path,
                                           tmp_path: Path) -> None:
    results = {}
    for precision in ("32", "bf16-mixed"):
        out_json = tmp_path / f"{precision}.json"
        assert test_script.main(["--dataset_dir", str(tiny_dataset), "--dataset_name",
                                 "synthetic", "--ckpt_path", str(trained_v1 / "last.ckpt"),
                                 "--img_height", "64", "--img_width", "80", "--num_workers",
                                 "0", "--device", "cpu", "--infer_precision", precision,
                                 "--output_json", str(out_json)]) == 0
        results[precision] = json.loads(out_json.read_text())["full"]["abs_rel"]
    assert results["bf16-mixed"] == pytest.approx(results["32"], abs=0.01)


def test_inference_writes_depth_named_after_inputs(trained_v1: Path, tmp_path: Path) -> None:
    inputs = Path(__file__).parent.parent / "demo" / "input"
    out = tmp_path / "out"
    assert inference.main(["--input_dir", str(inputs), "--output_dir", str(out),
                           "--ckpt_path", str(trained_v1 / "last.ckpt"), "--save-vis",
                           "--save-depth", "--img_height", "64", "--img_width", "96"]) == 0
    for img in sorted(inputs.glob("*.jpg")):
        depth = np.load(out / f"{img.stem}.npy")
        assert depth.shape == (64, 96)  # network resolution, as the public code writes it
        assert np.isfinite(depth).all() and (depth > 0).all()
        assert (out / f"{img.stem}.jpg").is_file()
