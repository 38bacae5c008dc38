"""scripts/eval_rectification.py: the per-axis agreement of ARN with the GT rotations, the
figures of an ARN (or a PoseNet) that predicts no rotation, and a V1 checkpoint's pose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, run_tool, write_checkpoint

from geometry import euler2mat
from systems import SCDepthV1, SCDepthV2


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


def test_rotation_figures_of_the_truth_and_of_a_known_error() -> None:
    import torch

    rotation_figures = cli("eval_rectification").rotation_figures
    angles = torch.tensor([[0.01, -0.02, 0.03], [-0.02, 0.01, 0.0], [0.03, 0.0, -0.01]],
                          dtype=torch.float64)
    R_gt = euler2mat(angles).numpy()
    exact = rotation_figures(R_gt, R_gt)
    assert exact["angle_residual_deg"] == pytest.approx(0, abs=1e-6)
    assert all(a["corr"] == pytest.approx(1) and a["slope"] == pytest.approx(1)
               for a in exact["per_axis"].values())
    # no rotation predicted: the residual is the GT angle, here |(0.01,-0.02,0.03)| etc.
    none = rotation_figures(np.repeat(np.eye(3)[None], 3, axis=0), R_gt)
    expected = np.degrees(torch.linalg.norm(angles, dim=1).numpy())  # small angles: ~norm
    assert none["angle_residual_deg"] == pytest.approx(expected.mean(), rel=1e-3)


@pytest.fixture(scope="module")
def handheld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("handheld") / "d"
    generate_dataset(root, seed=1, scenes=1, frames=5, val_scenes=1, test_scenes=0,
                     height=48, width=64, motion="handheld", progress=False)
    return root


def no_pose_rotation(self, tgt, ref, K=None):
    import torch

    pose = torch.zeros(tgt.shape[0], 3, 4, dtype=torch.float64)
    pose[:, :, :3] = torch.eye(3)
    return pose


def evaluate(version: str, data: Path, tmp_path: Path, **options: object) -> dict:
    """eval_rectification.py's JSON for a seed-0 checkpoint of ``version`` at 48×64."""
    ckpt = write_checkpoint(tmp_path / f"{version}.ckpt", model_version=version,
                            dataset_name="synthetic", img_height=48, img_width=64, **options)
    out = tmp_path / "r.json"
    assert run_tool("eval_rectification", ["--ckpt_path", str(ckpt), "--dataset_dir",
                                           str(data), "--device", "cpu",
                                           "--output_json", str(out)]) == 0
    return json.loads(out.read_text())


def test_an_arn_that_predicts_no_rotation_leaves_the_raw_rotation(
        handheld: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def no_rotation(self, tgt, refs, K):
        zero = tgt.new_zeros(tgt.shape[0], 3)
        return refs, [zero] * len(refs), [zero] * len(refs)

    monkeypatch.setattr(SCDepthV2, "rectify", no_rotation)
    monkeypatch.setattr(SCDepthV2, "relative_pose", no_pose_rotation)
    r = evaluate("v2", handheld, tmp_path)
    assert r["num_pairs"] == 6  # targets 1..3, each with its two neighbours
    assert r["rot_before"] == 0 and r["angle_raw_deg"] > 1  # hand-held: degrees a frame
    assert r["angle_rectified_deg"] == pytest.approx(r["angle_raw_deg"])
    assert all(a["corr"] is None and a["slope"] == 0 for a in r["per_axis"].values())
    assert r["pose"]["angle_residual_deg"] == pytest.approx(r["angle_raw_deg"])
    assert "rx: correlation n/a   slope +0.000" in capsys.readouterr().out


def test_a_v1_checkpoint_gets_the_pose_figures_only(
        handheld: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(SCDepthV1, "relative_pose", no_pose_rotation)
    r = evaluate("v1", handheld, tmp_path)
    assert "rot_before" not in r and "per_axis" not in r
    assert r["pose"]["angle_residual_deg"] == pytest.approx(r["angle_raw_deg"])
    printed = capsys.readouterr().out
    assert "(v1)" in printed and "ARN" not in printed


def test_a_refined_arn_is_reported_beside_its_own_output(
        handheld: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    # ARN answers 0; --arn_refine then aligns the pairs from there, and the report keeps
    # ARN's own 0 apart from the rotation that rectified.
    monkeypatch.setattr(SCDepthV2, "arn", lambda self, a, b: torch.zeros(a.shape[0], 3))
    monkeypatch.setattr(SCDepthV2, "relative_pose", no_pose_rotation)
    r = evaluate("v2", handheld, tmp_path, arn_refine=True)
    raw = r["arn_unrefined"]
    assert raw["angle_residual_deg"] == pytest.approx(r["angle_raw_deg"])
    assert all(a["corr"] is None for a in raw["per_axis"].values())
    assert r["rot_before"] > 0  # the refined rotation is not ARN's zero
    assert "ARN's own rotation, before --arn_refine" in capsys.readouterr().out
