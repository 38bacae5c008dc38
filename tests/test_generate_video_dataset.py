"""generate_video_dataset.py: videos -> a training set that the README's own-video steps
(frame index, photometric validation) train on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import cli, run_tool, tiny_train_args

from datasets.formats import list_images, read_intrinsics, read_scene_list

tool = cli("generate_video_dataset")


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """frames: uint8 BGR ``[H,W,3]``, written as MJPG (OpenCV's build-independent codec)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def noise_video(path: Path, n: int, h: int = 60, w: int = 80) -> Path:
    rng = np.random.default_rng(0)
    return write_video(path, [rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
                              for _ in range(n)])


def test_each_video_is_a_scene_with_its_last_tenth_for_validation(tmp_path: Path) -> None:
    a, b = noise_video(tmp_path / "a.avi", 40), noise_video(tmp_path / "b.avi", 30)
    out = tmp_path / "data"
    assert tool.main(["--input_video", str(a), str(b), "--output_dir", str(out),
                      "--fx", "70", "--fy", "70", "--cx", "40", "--cy", "30",
                      "--max_side", "40"]) == 0
    training = out / "training"
    assert read_scene_list(training / "train.txt") == ["a", "b"]
    assert read_scene_list(training / "val.txt") == ["a_val", "b_val"]
    counts = {s: len(list_images(training / s)) for s in ("a", "a_val", "b", "b_val")}
    assert counts == {"a": 36, "a_val": 4, "b": 27, "b_val": 3}
    assert next(p.name for p in list_images(training / "a_val")) == "000000.jpg"
    assert cv2.imread(str(training / "a" / "000000.jpg")).shape == (30, 40, 3)
    # frames shrunk by 1/2: the intrinsics follow
    np.testing.assert_allclose(read_intrinsics(training / "b_val" / "cam.txt"),
                               [[35, 0, 20], [0, 35, 15], [0, 0, 1]])


def test_every_and_validation_videos(tmp_path: Path) -> None:
    a, v = noise_video(tmp_path / "a.avi", 20), noise_video(tmp_path / "v.avi", 9)
    cam = tmp_path / "cam.txt"
    np.savetxt(cam, [[70, 0, 40], [0, 70, 30], [0, 0, 1]])
    out = tmp_path / "data"
    assert tool.main(["--input_video", str(a), "--val_video", str(v), "--output_dir",
                      str(out), "--cam_txt", str(cam), "--every", "3"]) == 0
    training = out / "training"
    assert read_scene_list(training / "val.txt") == ["v"]
    assert len(list_images(training / "a")) == 7 and len(list_images(training / "v")) == 3


@pytest.mark.parametrize("case, message", [
    ("no_intrinsics", "give the videos' intrinsics"),
    ("wrong_resolution", "principal point (400, 300) lies outside"),
    ("same_name", "same scene name 'a'"),
    ("missing", "no such video file"),
    ("too_short", "fewer than 3 frames"),
])
def test_mistakes_are_one_line_and_leave_nothing(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 case: str, message: str) -> None:
    a = noise_video(tmp_path / "a.avi", 12)
    (tmp_path / "other").mkdir()
    videos = {"same_name": [a, noise_video(tmp_path / "other" / "a.avi", 12)],
              "missing": [tmp_path / "nope.mp4"],
              "too_short": [noise_video(tmp_path / "short.avi", 2)]}.get(case, [a])
    K = [] if case == "no_intrinsics" else (
        ["--fx", "700", "--fy", "700", "--cx", "400", "--cy", "300"]
        if case == "wrong_resolution" else ["--fx", "70", "--fy", "70", "--cx", "40",
                                            "--cy", "30"])
    out = tmp_path / "data"
    assert run_tool("generate_video_dataset", ["--input_video", *map(str, videos),
                                               "--output_dir", str(out), *K]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0]
    assert not out.exists() and not list(tmp_path.glob(".data.*"))


def test_an_existing_dataset_is_kept_unless_overwrite(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    a = noise_video(tmp_path / "a.avi", 12)
    out = tmp_path / "data"
    (out / "mine").mkdir(parents=True)
    args = ["--input_video", str(a), "--output_dir", str(out), "--fx", "70", "--fy", "70",
            "--cx", "40", "--cy", "30"]
    assert run_tool("generate_video_dataset", args) == 2
    assert "not empty" in capsys.readouterr().err and (out / "mine").is_dir()
    assert run_tool("generate_video_dataset", [*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["training"]


@pytest.mark.slow
def test_the_readme_own_video_steps_train(tiny_dataset: Path, tmp_path: Path) -> None:
    """Videos of the synthetic scenes -> frame index -> V1 training validated photometrically."""
    videos = []
    for scene in ("train_000_driving", "train_001_handheld"):
        frames = [cv2.imread(str(p)) for p in list_images(tiny_dataset / "training" / scene)]
        videos.append(write_video(tmp_path / f"{scene}.avi", frames))
    K = read_intrinsics(tiny_dataset / "training" / "train_000_driving" / "cam.txt")
    data = tmp_path / "mine"
    assert tool.main(["--input_video", str(videos[0]), "--val_video", str(videos[1]),
                      "--output_dir", str(data), "--fx", str(K[0, 0]), "--fy", str(K[1, 1]),
                      "--cx", str(K[0, 2]), "--cy", str(K[1, 2])]) == 0
    assert run_tool("generate_valid_frame_index", ["--dataset_dir", str(data)]) == 0
    logs = tmp_path / "logs"
    argv = tiny_train_args(data, logs, "--use_frame_index", "--val_mode", "photo",
                           "--max_steps", "2")
    argv[argv.index("--dataset_name") + 1] = "nyu"  # any name: photometric validation
    assert run_tool("train", argv) == 0
    assert list(logs.glob("*/version_0/last.ckpt"))
