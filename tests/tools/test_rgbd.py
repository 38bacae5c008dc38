"""export_rgbd.py and scripts/rgbd_odometry.py: a video as a TUM RGB-D sequence at one scale,
and RGB-D odometry on it (Open3D, optional)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import run_tool, write_checkpoint

from datasets.formats import read_intrinsics, read_poses, read_tum_trajectory
from geometry import scale_intrinsics
from tools.predictor import Predictor
from tools.rgbd import ground_plane_height, open3d_or_none, orbslam2_settings, read_associations
from utils.errors import UsageError

H, W = 48, 64  # the checkpoint's size: the output size of the export


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("rgbd_ckpt") / "v1.ckpt", model_version="v1",
                            dataset_name="synthetic", img_height=H, img_width=W)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One rendered hand-held validation scene of 24 frames, 96x128, with GT depth and poses,
    and nothing moving but the camera (frame-to-frame odometry assumes a static world)."""
    from datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("rgbd_seq") / "data"
    generate_dataset(root, seed=2, scenes=1, frames=24, val_scenes=1, test_scenes=0,
                     height=96, width=128, motion="handheld", progress=False,
                     moving_objects=False)
    return root / "training" / "val_000_handheld"


@pytest.mark.parametrize("pitch_deg", [0.0, 45.0])
def test_ground_plane_height_of_a_rendered_floor(pitch_deg: float) -> None:
    K = np.array([[60.0, 0, 39.5], [0, 60.0, 29.5], [0, 0, 1]])
    v = np.mgrid[0:60, 0:80][0].astype(np.float64)
    # a floor 1.5 below a camera pitched down by θ (OpenCV axes, y down): its normal in the
    # camera frame is n = (0, cos θ, sin θ), and the z-depth of pixel ray (x, y, 1) is
    # 1.5 / (n · ray) where the ray meets the floor
    theta = np.deg2rad(pitch_deg)
    facing = np.cos(theta) * (v - 29.5) / 60.0 + np.sin(theta)
    depth = np.where(facing > 0.03, 1.5 / np.maximum(facing, 1e-9), 0.0)
    assert ground_plane_height(depth, K) == pytest.approx(1.5, rel=1e-3)
    with pytest.raises(UsageError, match="no ground plane"):  # a wall ahead is no floor
        ground_plane_height(np.full((60, 80), 2.0), K)


def test_orbslam2_settings_read_back_with_opencv(tmp_path: Path) -> None:
    K = np.array([[100.0, 0, 63.5], [0, 101.0, 47.5], [0, 0, 1]])
    path = tmp_path / "s.yaml"
    path.write_text(orbslam2_settings(K, 128, 96, 10.0, 5000.0, close_depth=4.0))
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    assert [fs.getNode(k).real() for k in ("Camera.fx", "Camera.fy", "Camera.cx", "Camera.cy")
            ] == [100.0, 101.0, 63.5, 47.5]
    assert fs.getNode("DepthMapFactor").real() == 5000.0
    # ORB-SLAM2's close/far threshold: ThDepth · bf / fx
    th = fs.getNode("ThDepth").real() * fs.getNode("Camera.bf").real() / 100.0
    assert th == pytest.approx(4.0)


def test_the_export_reads_back_with_tum_conventions_at_one_scale(
        small_ckpt: Path, sequence: Path, tmp_path: Path) -> None:
    out = tmp_path / "rgbd"
    assert run_tool("export_rgbd", ["--ckpt_path", str(small_ckpt), "--input_dir",
                                    str(sequence), "--output_dir", str(out), "--device", "cpu",
                                    "--fps", "10"]) == 0
    info = json.loads((out / "export.json").read_text())
    assert info["frames"] == 24 and info["size"] == [H, W]
    assert info["scale_from"].startswith("GT depth of the first frame")
    assert 0 <= info["scale_consistency"]["drift"] < 1
    rows = read_associations(out)
    assert [round(t, 6) for t, _, _ in rows] == [round(i / 10, 6) for i in range(24)]
    assert all(r.name == d.name and r.parent.name == "rgb" and d.parent.name == "depth"
               for _, r, d in rows)
    # depth ÷ factor = metres = one scale × the network's depth, for every frame
    predictor = Predictor.from_checkpoint(small_ckpt, "cpu")
    images = sorted(sequence.glob("*.jpg"))
    net = predictor.predict([str(p) for p in images], resolution="network")
    for (_, _, depth_file), pred in zip(rows, net):
        metres = cv2.imread(str(depth_file), cv2.IMREAD_UNCHANGED) / info["depth_factor"]
        np.testing.assert_allclose(metres, pred * info["depth_scale"], atol=1.5e-4)
    # intrinsics and settings of the output size
    K = scale_intrinsics(read_intrinsics(sequence / "cam.txt").astype(np.float64), W / 128,
                         H / 96)
    np.testing.assert_allclose(read_intrinsics(out / "cam.txt"), K, rtol=1e-5)
    fs = cv2.FileStorage(str(out / "orbslam2_rgbd.yaml"), cv2.FILE_STORAGE_READ)
    assert fs.getNode("Camera.fx").real() == pytest.approx(K[0, 0], rel=1e-5)
    assert (fs.getNode("Camera.width").real(), fs.getNode("Camera.height").real()) == (W, H)
    # GT trajectory and depth travel along
    _, gt = read_tum_trajectory(out / "groundtruth.txt")
    np.testing.assert_allclose(gt, read_poses(sequence / "poses.txt"), atol=1e-6)
    assert len(list((out / "depth_gt").glob("*.png"))) == 24


def test_a_video_needs_a_scale_and_intrinsics(small_ckpt: Path, sequence: Path,
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    for p in sorted(sequence.glob("*.jpg"))[:4]:
        writer.write(cv2.imread(str(p)))
    writer.release()
    base = ["--ckpt_path", str(small_ckpt), "--input_video", str(video), "--output_dir",
            str(tmp_path / "o"), "--device", "cpu"]
    assert run_tool("export_rgbd", [*base, "--cam_txt", str(sequence / "cam.txt")]) == 2
    assert "needs a scale" in capsys.readouterr().err
    assert run_tool("export_rgbd", [*base, "--depth_scale", "2"]) == 2
    assert "intrinsics" in capsys.readouterr().err
    cam = str(sequence / "cam.txt")
    assert run_tool("export_rgbd", [*base, "--depth_scale", "2", "--cam_txt", cam]) == 0
    info = json.loads((tmp_path / "o" / "export.json").read_text())
    assert info["depth_scale"] == 2.0 and info["fps"] == 10.0 and info["frames"] == 4


def test_camera_height_fixes_the_scale_from_the_road(small_ckpt: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A depth network that is right up to scale (GT / 7, standing in for the prediction):
    the camera's true height above the rendered road must give back the factor 7."""
    import tools.rgbd as rgbd
    from datasets.synthetic import generate_dataset, load_scene

    root = tmp_path / "street"
    generate_dataset(root, seed=5, scenes=1, frames=3, val_scenes=0, test_scenes=0,
                     height=96, width=128, motion="driving", progress=False,
                     moving_objects=False)
    scene_dir = root / "training" / "train_000_driving"
    scene = load_scene(root, "train_000_driving")
    height = float(scene.room_hi[1] - scene.poses[0, 1, 3])  # road plane y minus camera y

    def predict(predictor, frames, batch_size, skipped):
        for index, frame in enumerate(frames):
            gt = cv2.imread(str(scene_dir / "depth" / f"{frame.name}.png"),
                            cv2.IMREAD_UNCHANGED) / 1000
            yield index, frame, cv2.resize(gt, (W, H), interpolation=cv2.INTER_NEAREST) / 7

    monkeypatch.setattr(rgbd, "_predict", predict)
    out = tmp_path / "rgbd"
    assert run_tool("export_rgbd", ["--ckpt_path", str(small_ckpt), "--input_dir",
                                    str(scene_dir), "--output_dir", str(out), "--device", "cpu",
                                    "--camera_height", str(height)]) == 0
    info = json.loads((out / "export.json").read_text())
    assert info["scale_from"] == f"a ground plane {height} m below the camera in the first frame"
    assert info["depth_scale"] == pytest.approx(7, rel=0.01)


def test_unreadable_frames_leave_gaps_and_bad_scales_are_refused(
        small_ckpt: Path, sequence: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    scene = tmp_path / "scene"
    shutil.copytree(sequence, scene)
    (scene / "000002.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "rgbd"
    base = ["--ckpt_path", str(small_ckpt), "--input_dir", str(scene), "--device", "cpu",
            "--fps", "10"]
    assert run_tool("export_rgbd", [*base, "--output_dir", str(out)]) == 0
    assert "skipped 1 unreadable frames" in capsys.readouterr().out
    info = json.loads((out / "export.json").read_text())
    assert info["frames"] == 23 and len(info["skipped"]) == 1 and "000002" in info["skipped"][0]
    kept = [i for i in range(24) if i != 2]
    rows = read_associations(out)
    assert [round(t, 6) for t, _, _ in rows] == [round(i / 10, 6) for i in kept]
    _, gt = read_tum_trajectory(out / "groundtruth.txt")
    np.testing.assert_allclose(gt, read_poses(sequence / "poses.txt")[kept], atol=1e-6)
    # the first frame's GT has no valid pixel: no scale can be fixed on it
    cv2.imwrite(str(scene / "depth" / "000000.png"), np.zeros((96, 128), np.uint16))
    assert run_tool("export_rgbd", [*base, "--output_dir", str(tmp_path / "o2")]) == 2
    assert "cannot fix the scale on the first frame 000000" in capsys.readouterr().err
    # poses.txt for another number of frames is refused before any prediction
    np.savetxt(scene / "poses.txt", np.tile(np.eye(4)[:3].reshape(1, 12), (5, 1)))
    assert run_tool("export_rgbd", [*base, "--output_dir", str(tmp_path / "o3")]) == 2
    assert "has 5 poses for 24 frames" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_depth_beyond_the_16_bit_range_is_no_depth(small_ckpt: Path, sequence: Path,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rgbd"
    gt = cv2.imread(str(sequence / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED) / 1000
    factor = round(65535 / np.median(gt[gt > 0]))  # the 16-bit range ends mid-room
    assert run_tool("export_rgbd", ["--ckpt_path", str(small_ckpt), "--input_dir",
                                    str(sequence), "--output_dir", str(out), "--device", "cpu",
                                    "--depth_factor", str(factor), "--output_resolution",
                                    "input"]) == 0
    share = json.loads((out / "export.json").read_text())["beyond_range_share"]
    assert share > 0.01
    assert (f"{100 * share:.1f} % of the depth lies beyond {65535 / factor:.1f} m"
            in capsys.readouterr().out)
    png = cv2.imread(str(out / "depth_gt" / "000000.png"), cv2.IMREAD_UNCHANGED)
    beyond = gt > 65535 / factor
    assert 0.3 < beyond.mean() < 0.7
    # no saturated, wrong depth: what is out of range is 0, the rest exact to the unit
    np.testing.assert_array_equal(png == 0, beyond | (gt == 0))
    np.testing.assert_allclose(png[~beyond] / factor, gt[~beyond], atol=1 / factor)


@pytest.mark.slow
def test_odometry_on_gt_depth_recovers_the_rendered_trajectory(small_ckpt: Path, sequence: Path,
                                                                tmp_path: Path) -> None:
    """The tracker's conventions end to end (Open3D's transform, the chaining, the TUM
    timestamps): on GT depth the 24-frame hand-held path (0.77 m, several degrees of rotation a
    frame) comes back within 2.5 % of its length; a constant depth does far worse."""
    if open3d_or_none() is None:
        pytest.skip("Open3D is not installed (optional: pip install open3d)")
    out = tmp_path / "rgbd"
    assert run_tool("export_rgbd", ["--ckpt_path", str(small_ckpt), "--input_dir",
                                    str(sequence), "--output_dir", str(out), "--device", "cpu",
                                    "--output_resolution", "input"]) == 0
    assert run_tool("rgbd_odometry", ["--rgbd_dir", str(out), "--baselines", "--fuse",
                                      str(out / "mesh.ply")]) == 0
    results = json.loads((out / "odometry.json").read_text())
    assert set(results) == {"predicted", "gt_depth", "constant_depth", "gt_path_m"}
    path = results["gt_path_m"]
    assert path > 0.5
    gt = results["gt_depth"]
    assert gt["failed_pairs"] == 0
    assert gt["ate_sim3"] < 0.025 * path and gt["ate_rigid"] < 0.025 * path
    assert abs(gt["scale"] - 1) < 0.05  # GT depth gives metric motion
    assert results["constant_depth"]["ate_sim3"] > 3 * gt["ate_sim3"]
    stamps, poses = read_tum_trajectory(out / "trajectory_gt_depth.txt")
    np.testing.assert_allclose(stamps, np.arange(24) / 30, atol=1e-6)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)
    assert (out / "mesh.ply").stat().st_size > 0
    # the measurement script: export and tracking per scene and checkpoint, in one table
    table = tmp_path / "rgbd.json"
    assert run_tool("measure_rgbd_tracking", [
        "--dataset_dir", str(sequence.parent.parent), "--ckpt", f"A={small_ckpt}",
        "--output_json", str(table)]) == 0
    row = json.loads(table.read_text())["val_000_handheld"]
    assert set(row) == {"gt_path_m", "gt_depth", "constant_depth", "A"}
    assert row["gt_path_m"] == pytest.approx(path)
    assert 0 <= row["A"]["scale_drift"] < 1 and row["A"]["failed_pairs"] <= 23
