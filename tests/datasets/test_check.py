"""The start-up dataset check: one case per user mistake, each through `train.py`/`test.py`.

Every case asserts the exit status and that the one-line message names the culprit (file or
scene). The dataset is a hand-made layout of tiny 16×20 images.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import ROOT, cli

from config import parse_options
from datasets.check import DatasetSummary, check_dataset, samples_in
from datasets.formats import DatasetError, check_image_file
from datasets.video_folder import TrainFolder
from utils.cli import run_main

test_script = cli("test")
train = cli("train")

H, W = 16, 20
CAM = "10 0 10\n0 10 8\n0 0 1\n"


def _write_jpg(path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    assert ok
    path.write_bytes(data.tobytes())


def _write_png16(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((H, W), value, dtype=np.uint16))


def make_dataset(root: Path, train_frames: tuple[int, ...] = (5, 5), val_frames: int = 4,
                 test_images: int = 2) -> Path:
    """training/s0, s1 (+ priors), training/v0 (+ GT depth), testing/; returns ``root``."""
    rng = np.random.default_rng(0)
    training = root / "training"
    scenes = {f"s{i}": n for i, n in enumerate(train_frames)}
    for name, n in [*scenes.items(), ("v0", val_frames)]:
        scene = training / name
        for i in range(n):
            _write_jpg(scene / f"{i:06d}.jpg", rng)
            _write_png16(scene / "leres_depth" / f"{i:06d}.png", 1000 + i)
            if name == "v0":
                _write_png16(scene / "depth" / f"{i:06d}.png", 2000 + i)
        (scene / "cam.txt").write_text(CAM)
    (training / "train.txt").write_text("\n".join(scenes) + "\n")
    (training / "val.txt").write_text("v0\n")
    for i in range(test_images):
        _write_jpg(root / "testing" / "color" / f"{i:04d}.jpg", rng)
        _write_png16(root / "testing" / "depth" / f"{i:04d}.png", 3000)
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


def run_script(main, prog: str, argv: list[str],
               capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) wrapped exactly as the script runs it: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: main(argv), prog)
    out = capsys.readouterr()
    return int(exc.value.code), out.out, out.err


def train_argv(data: Path, *extra: str) -> list[str]:
    return ["--dataset_dir", str(data), "--dataset_name", "synthetic", "--no_pretrain",
            "--check_only", *extra]


def assert_user_error(code: int, err: str, *culprits: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])


# ----------------------------------------------------------------------- healthy dataset
def test_check_only_prints_counts(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert code == 0, err
    # 2 scenes x 5 frames, sequence 3: targets 1..3 of each scene -> 6 samples
    assert "training: 2 scenes, 10 frames, 6 samples" in out
    assert "validation: 1 scenes, 4 frames, 4 samples" in out
    assert "dataset check passed" in out


@pytest.mark.parametrize(("sequence_length", "skip_frames", "expected"),
                         [(3, 1, 6), (5, 1, 2), (3, 2, 2)])
def test_sample_count_matches_the_dataset(data: Path, sequence_length: int, skip_frames: int,
                                          expected: int) -> None:
    opts = parse_options(["--dataset_dir", str(data), "--dataset_name", "synthetic",
                          "--sequence_length", str(sequence_length), "--skip_frames",
                          str(skip_frames), "--model_version", "v3"])
    summary = check_dataset(opts, "train")
    assert summary.train_samples == expected == 2 * samples_in(5, opts)
    folder = TrainFolder(data / "training", sequence_length=sequence_length,
                         skip_frames=skip_frames, with_prior=True)
    assert len(folder) == summary.train_samples


def test_test_stage_counts_images(data: Path) -> None:
    opts = parse_options(["--dataset_dir", str(data), "--dataset_name", "synthetic"])
    summary = check_dataset(opts, "test")
    assert summary.test_items == 2
    assert "testing: 2 images" in summary.describe()


def test_describe_lists_skipped_scenes() -> None:
    text = DatasetSummary(train_scenes={"a": 3}, train_samples=1, skipped=["b"]).describe()
    assert "training: 1 scenes, 3 frames, 1 samples" in text
    assert "skipped (too short): b" in text


# -------------------------------------------------------------------- one test per mistake
def test_missing_cam_txt(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cam = data / "training" / "s1" / "cam.txt"
    cam.unlink()
    code, _, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert_user_error(code, err, str(cam), "missing")


def test_malformed_cam_txt(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cam = data / "training" / "s0" / "cam.txt"
    cam.write_text("721.5 0 609.5\n0 721.5\n")
    code, _, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert_user_error(code, err, str(cam), "9 numbers")


def test_listed_scene_does_not_exist(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "training" / "val.txt").write_text("v0\nv_missing\n")
    code, _, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert_user_error(code, err, "v_missing", "val.txt")


def test_truncated_image(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = data / "training" / "s1" / "000003.jpg"
    img.write_bytes(img.read_bytes()[: img.stat().st_size // 2])
    code, _, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert_user_error(code, err, str(img), "truncated")


def test_unreadable_image(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = data / "training" / "v0" / "000002.jpg"
    img.write_text("this is not an image\n")
    code, _, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert_user_error(code, err, str(img))


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "truncated PNG"),
    (b"\xff\xd8\xff\xe0" + b"\x12" * 40 + b"\xff\xd9" + b"\xff\xda" + b"\x34" * 40,
     "truncated JPEG"),  # an end marker before the last scan does not end the image
])
def test_check_image_file_rejects(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        check_image_file(path)


def test_check_image_file_accepts_bytes_after_the_end(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    _write_jpg(path, np.random.default_rng(1))
    path.write_bytes(path.read_bytes() + b"\0" * 100)  # padding some cameras append
    check_image_file(path)


def test_v3_prior_missing(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prior = data / "training" / "s0" / "leres_depth" / "000002.png"
    prior.unlink()
    code, _, err = run_script(train.main, "train.py",
                              train_argv(data, "--model_version", "v3"), capsys)
    assert_user_error(code, err, str(data / "training" / "s0" / "000002.jpg"), "prior")
    # V1 does not read priors: the same dataset passes
    assert run_script(train.main, "train.py", train_argv(data), capsys)[0] == 0


def test_v3_prior_without_a_frame(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = data / "training" / "s1" / "leres_depth" / "000099.png"
    _write_png16(extra, 5)
    code, _, err = run_script(train.main, "train.py",
                              train_argv(data, "--model_version", "v3"), capsys)
    assert_user_error(code, err, str(extra))


def test_gt_depth_missing_for_a_validation_frame(data: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (data / "training" / "v0" / "depth" / "000001.png").unlink()
    code, _, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert_user_error(code, err, str(data / "training" / "v0" / "000001.jpg"),
                      "ground-truth depth")
    # photometric validation does not need ground truth
    code, _, err = run_script(train.main, "train.py", train_argv(data, "--val_mode", "photo"),
                              capsys)
    assert code == 0, err


def test_short_scene_is_skipped_with_a_warning(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "data", train_frames=(5, 2))
    with pytest.warns(UserWarning, match="scene s1 .* 2 frames"):
        code, out, err = run_script(train.main, "train.py", train_argv(data), capsys)
    assert code == 0, err
    assert "training: 1 scenes, 5 frames, 3 samples" in out
    assert "skipped (too short): s1" in out


def test_no_scene_long_enough_is_an_error(data: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(UserWarning, match="skipped"):
        code, _, err = run_script(train.main, "train.py",
                                  train_argv(data, "--sequence_length", "7"), capsys)
    assert_user_error(code, err, str(data / "training" / "train.txt"), "shorter")


def test_bad_frame_index(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = data / "training" / "s0" / "frame_index.txt"
    index.write_text("0\n1\n9\n")
    for scene in ("s1", "v0"):
        (data / "training" / scene / "frame_index.txt").write_text("0\n1\n2\n")
    code, _, err = run_script(train.main, "train.py", train_argv(data, "--use_frame_index"),
                              capsys)
    assert_user_error(code, err, str(index), "out of range")


def test_missing_test_ground_truth_through_test_py(data: Path, ckpt: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (data / "testing" / "depth" / "0001.png").unlink()
    code, _, err = run_script(test_script.main, "test.py",
                              ["--dataset_dir", str(data), "--dataset_name", "synthetic",
                               "--ckpt_path", str(ckpt), "--device", "cpu"], capsys)
    assert code == 2
    assert err.startswith("test.py: error: ") and len(err.strip().splitlines()) == 1
    assert str(data / "testing" / "color" / "0001.jpg") in err


# ---------------------------------------------------- real processes: no traceback printed
def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.slow  # a subprocess
def test_unknown_dataset_name_subprocess(data: Path) -> None:
    proc = _run(["train.py", "--dataset_dir", str(data), "--dataset_name", "kitty"])
    assert proc.returncode == 2
    assert "--dataset_name" in proc.stderr and "'kitty'" in proc.stderr
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # a subprocess
def test_dataset_error_subprocess_prints_one_line(data: Path) -> None:
    img = data / "training" / "s0" / "000004.jpg"
    img.write_bytes(img.read_bytes()[:100])
    proc = _run(["train.py", *train_argv(data)])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"train.py: error: truncated JPEG (no end-of-image marker): {img}"]
