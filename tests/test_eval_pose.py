"""eval_pose.py: pose chaining through the batched pipeline, the figures, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import cli

from datasets.formats import DatasetError, read_poses, read_tum_trajectory
from datasets.transforms import Resize
from geometry import pose_vec2mat
from options import training_options
from systems import SCDepthV1
from tools.pose_evaluation import evaluate_scene, find_scenes, format_results
from tools.predictor import Predictor
from utils.errors import UsageError

eval_pose = cli("eval_pose")

SIZE = ["--img_height", "48", "--img_width", "64", "--device", "cpu"]


# Per-frame motions T_{t→t+1} of a hand-made, non-planar sequence (a planar one could be
# mirrored by a rotation and hide a wrong chaining order).
MOTIONS = torch.tensor([[0.02 * t, 0.05, -0.5 + 0.03 * t, 0.01, 0.04 - 0.01 * t, 0.02]
                        for t in range(7)], dtype=torch.float64)


class OraclePoseNet(torch.nn.Module):
    """Returns MOTIONS[t] for the pair (frame t, frame t+1); frame t is an image of constant
    grey level 20 + 20 t, so the pair order and the batching are checked too."""

    @staticmethod
    def index(img: torch.Tensor) -> torch.Tensor:
        grey = (img.mean(dim=(1, 2, 3)) * 0.225 + 0.45) * 255.0
        return torch.round((grey - 20.0) / 20.0).long()

    def forward(self, tgt: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        t, r = self.index(tgt), self.index(ref)
        assert torch.equal(r, t + 1), (t, r)
        return MOTIONS[t].float()


class OracleModel(torch.nn.Module):
    """A system whose PoseNet is the oracle; poses are read as SC-Depth V1 reads them."""

    opts = training_options({})
    relative_pose = SCDepthV1.relative_pose

    def __init__(self) -> None:
        super().__init__()
        self.pose_net = OraclePoseNet()


class OraclePredictor:
    """A Predictor at 32x48 whose system is the oracle (no DepthNet: the scene has no GT)."""

    device = torch.device("cpu")
    prepare = Predictor.prepare

    def __init__(self) -> None:
        self.model = OracleModel()
        self._resize = Resize(32, 48)


@pytest.fixture
def oracle_scene(tmp_path) -> Path:
    scene = tmp_path / "training" / "oracle"
    scene.mkdir(parents=True)
    poses = [np.eye(4)]
    for T in pose_vec2mat(MOTIONS).numpy():
        H = np.eye(4)
        H[:3] = T
        poses.append(poses[-1] @ np.linalg.inv(H))  # camera t+1 seen from the world
    for t in range(8):
        cv2.imwrite(str(scene / f"{t:06d}.png"), np.full((64, 80, 3), 20 + 20 * t, np.uint8))
    np.savetxt(scene / "poses.txt", np.stack(poses)[:, :3, :].reshape(8, 12))
    return scene


def test_chaining_through_the_batched_pipeline_recovers_the_trajectory(oracle_scene):
    result = evaluate_scene(OraclePredictor(), oracle_scene, "synthetic", batch_size=3)
    pred, zero = result["prediction"], result["zero_motion"]
    assert result["frames"] == 8 and "depth_scale" not in result
    assert pred["ate"] < 1e-6 and pred["f2f_t"] < 1e-6 and pred["f2f_r"] < 1e-4
    assert pred["rpe_t"] < 1e-4 and not np.isfinite(pred["rpe_r"])  # < 100 m: no °/100 m
    assert pred["scale"] == pytest.approx(1.0, abs=1e-6)
    assert zero["ate"] > 0.5 and zero["rpe_t"] > 50.0


def test_a_trajectory_running_backwards_is_flagged(oracle_scene):
    class Backwards(OraclePoseNet):
        def forward(self, tgt: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
            motion = super().forward(tgt, ref).clone()
            motion[:, :3] *= -1  # the translation's sign not learned yet
            return motion

    predictor = OraclePredictor()
    predictor.model.pose_net = Backwards()
    result = evaluate_scene(predictor, oracle_scene, "synthetic", batch_size=3)
    assert result["translation_agreement"] < -0.9
    assert any("run against the camera" in w for w in result["warnings"])
    assert "warning: the predicted translations run against" in format_results([result])
    good = evaluate_scene(OraclePredictor(), oracle_scene, "synthetic", batch_size=3)
    assert good["translation_agreement"] == pytest.approx(1.0) and good["warnings"] == []


def test_read_poses_errors(tmp_path):
    path = tmp_path / "poses.txt"
    path.write_text("1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0\n")
    with pytest.raises(DatasetError, match=r"poses\.txt:2: expected 12"):
        read_poses(path)
    path.write_text("1 0 0 0 0 1 0 0 0 0 1 x\n")
    with pytest.raises(DatasetError, match="not a list of numbers"):
        read_poses(path)
    path.write_text("1 0 0 0 0 1 0 0 0 0 1 2.5\n\n")
    poses = read_poses(path)
    assert poses.shape == (1, 4, 4) and poses[0, 2, 3] == 2.5 and poses[0, 3, 3] == 1.0


def test_pose_count_must_match_frames(oracle_scene):
    lines = (oracle_scene / "poses.txt").read_text().splitlines()
    (oracle_scene / "poses.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match="7 poses for 8 frames"):
        evaluate_scene(OraclePredictor(), oracle_scene, "synthetic", batch_size=3)


def test_cli_on_synthetic_sequences(dataset, ckpt, tmp_path, capsys):
    plot, out_json = tmp_path / "traj.png", tmp_path / "pose.json"
    assert eval_pose.main(["--dataset_dir", str(dataset), "--ckpt_path", str(ckpt),
                           "--dataset_name", "synthetic", "--scene", "train_000_driving",
                           "val_000_handheld", "--plot", str(plot), "--output_json",
                           str(out_json), "--infer_batch_size", "4", "--output_dir",
                           str(tmp_path / "traj"), *SIZE]) == 0
    printed = capsys.readouterr().out
    assert "ATE (m)" in printed and "zero motion" in printed and "RPE t(%)" in printed
    assert "depth scale consistency" in printed
    results = json.loads(out_json.read_text())
    assert [r["scene"] for r in results] == ["train_000_driving", "val_000_handheld"]
    for r in results:
        assert r["frames"] == 6
        for key in ("ate", "rpe_t", "f2f_t", "f2f_r"):
            assert np.isfinite(r["prediction"][key]) and np.isfinite(r["zero_motion"][key])
        # a few metres of path: no rotation error per 100 m
        assert (r["length_m"] < 100 and r["prediction"]["rpe_r"] is None) or not np.isfinite(
            r["prediction"]["rpe_r"])
        # the trajectories for evo: GT in both formats equals poses.txt
        gt = read_poses(dataset / "training" / r["scene"] / "poses.txt")
        stamps, tum = read_tum_trajectory(tmp_path / "traj" / f"{r['scene']}.gt.tum")
        np.testing.assert_allclose(tum, gt, atol=1e-7)
        assert stamps.tolist() == list(range(6))
        np.testing.assert_allclose(read_poses(tmp_path / "traj" / f"{r['scene']}.gt.kitti"),
                                   gt, atol=1e-8)
        pred = read_poses(tmp_path / "traj" / f"{r['scene']}.pred.kitti")
        np.testing.assert_allclose(read_tum_trajectory(
            tmp_path / "traj" / f"{r['scene']}.pred.tum")[1], pred, atol=1e-7)
        assert np.allclose(pred[0], np.eye(4))
        assert 0 <= r["depth_scale"]["spread"] < 1
        assert r["depth_scale"]["frames"] == 6
    image = cv2.imread(str(plot))
    assert image.shape == (480, 960, 3)
    # GT is drawn in green, the prediction in red (OpenCV reads BGR).
    assert np.any(np.all(image == (0, 160, 0), axis=2))
    assert np.any(np.all(image == (0, 0, 220), axis=2))


def test_default_scenes_and_errors(dataset, tmp_path):
    assert [p.name for p in find_scenes(dataset, None)] == ["val_000_handheld"]
    with pytest.raises(UsageError, match=r"no poses\.txt"):
        find_scenes(dataset, ["nope"])
    with pytest.raises(UsageError, match="no training/"):
        find_scenes(tmp_path, None)
    with pytest.raises(UsageError, match="--ckpt_path is required"):
        eval_pose.main(["--dataset_dir", str(dataset)])
