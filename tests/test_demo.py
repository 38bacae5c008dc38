"""scripts/demo.py: the precision it trains in when none is given."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import cli

demo = cli("demo")


@pytest.mark.parametrize("native_bf16", [True, False])
def test_cpu_precision_is_bf16_only_where_native(monkeypatch: pytest.MonkeyPatch,
                                                 native_bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native_bf16)
    assert demo.default_precision() == ("bf16-mixed" if native_bf16 else "32")


def test_gpu_precision_is_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    # the demo's small steps are launch-bound on a GPU: bf16 saves no time, costs accuracy
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert demo.default_precision() == "32"


@pytest.mark.slow
def test_demo_draws_unseen_test_frames_before_and_after_training(
        tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datasets.formats import read_image

    data = tiny_dataset
    config = tmp_path / "tiny.txt"
    config.write_text("dataset_name = synthetic\nno_pretrain = true\nimg_height = 48\n"
                      "img_width = 64\nbatch_size = 2\nepoch_size = 2\nnum_epochs = 1\n"
                      "num_workers = 0\nseed = 0\naccelerator = cpu\n")
    out = tmp_path / "out"
    assert demo.main(["--dataset_dir", str(data), "--output_dir", str(out),
                      "--config", str(config), "--precision", "32"]) == 0

    printed = capsys.readouterr().out
    for row in ("constant depth", "untrained network", "trained SC-Depth V1"):
        assert row in printed
    picture = read_image(out / "test_frames.jpg")
    n = min(demo.PICTURES, len(list((data / "testing" / "color").iterdir())))
    # per frame: the untrained row above the trained one, 4 tiles of the network size
    assert picture.shape == (2 * n * 48, 4 * 64, 3)
    assert (out / "trained_metrics.json").is_file()
