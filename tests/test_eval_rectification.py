"""scripts/eval_rectification.py: the per-axis agreement of ARN with the GT rotations, and the
figures of an ARN that predicts no rotation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, run_tool, write_checkpoint

from systems import SCDepthV2


def test_axis_agreement_tells_noise_sign_and_undershoot_apart() -> None:
    axis_agreement = cli("eval_rectification").axis_agreement
    gt = np.array([[-1.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1.0, 0.0, 3.0]])
    pred = np.array([[-0.5, 1.0, 5.0], [0.0, 2.0, 4.0], [0.5, 3.0, 3.0]])
    r = axis_agreement(pred, gt)
    # rx: half the GT (under-shooting): correlation 1, slope 0.5
    assert r["rx"]["corr"] == pytest.approx(1.0) and r["rx"]["slope"] == pytest.approx(0.5)
    # ry: the GT does not vary: neither figure exists
    assert r["ry"] == {"corr": None, "slope": None}
    # rz: 6 - GT (a sign error): correlation -1, slope -1
    assert r["rz"]["corr"] == pytest.approx(-1.0) and r["rz"]["slope"] == pytest.approx(-1.0)
    # noise: [1, -1, 1] against [-1, 0, 1] has covariance 0
    noisy = axis_agreement(np.array([[1.0] * 3, [-1.0] * 3, [1.0] * 3]), gt)
    assert noisy["rx"]["corr"] == pytest.approx(0.0) and noisy["rx"]["slope"] == pytest.approx(0)


def test_an_arn_that_predicts_no_rotation_leaves_the_raw_rotation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from datasets.synthetic import generate_dataset

    generate_dataset(tmp_path / "d", seed=1, scenes=1, frames=5, val_scenes=1, test_scenes=0,
                     height=48, width=64, motion="handheld", progress=False)
    ckpt = write_checkpoint(tmp_path / "v2.ckpt", model_version="v2", dataset_name="synthetic",
                            img_height=48, img_width=64)

    def no_rotation(self, tgt, refs, K):
        zero = tgt.new_zeros(tgt.shape[0], 3)
        return refs, [zero] * len(refs), [zero] * len(refs)

    monkeypatch.setattr(SCDepthV2, "rectify", no_rotation)
    out = tmp_path / "r.json"
    assert run_tool("eval_rectification", ["--ckpt_path", str(ckpt), "--dataset_dir",
                                           str(tmp_path / "d"), "--device", "cpu",
                                           "--output_json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["num_pairs"] == 6  # targets 1..3, each with its two neighbours
    assert r["rot_before"] == 0 and r["angle_raw_deg"] > 1  # hand-held: degrees a frame
    assert r["angle_rectified_deg"] == pytest.approx(r["angle_raw_deg"])
    assert all(a["corr"] is None and a["slope"] == 0 for a in r["per_axis"].values())
    assert "rx: correlation n/a   slope +0.000" in capsys.readouterr().out
