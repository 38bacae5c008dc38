"""generate_valid_frame_index.py: kept frames, the signed-difference fix, files and errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import cli

gvfi = cli("generate_valid_frame_index")


H, W = 8, 10


def _write_scene(scene: Path, greys: list[np.ndarray], ext: str = ".png") -> None:
    scene.mkdir(parents=True)
    for i, grey in enumerate(greys):
        img = np.repeat(grey[:, :, None], 3, axis=2)  # grey colour image: every channel equal
        assert cv2.imwrite(str(scene / f"{i:06d}{ext}"), img)


def _flat(value: int) -> np.ndarray:
    return np.full((H, W), value, dtype=np.uint8)


def _index(scene: Path) -> list[int]:
    return [int(line) for line in (scene / "frame_index.txt").read_text().split()]


def test_static_frames_are_dropped(tmp_path, capsys):
    # frames 0 and 1 identical, 2 differs strongly, 3 equals 2 -> keep 0 and 2
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (H, W), dtype=np.uint8)
    b = (255 - a).astype(np.uint8)
    b[np.abs(a.astype(int) - 128) <= 6] = 255  # near mid-grey 255 - a is too close to a
    scene = tmp_path / "training" / "scene1"
    _write_scene(scene, [a, a, b, b])
    assert gvfi.main(["--dataset_dir", str(tmp_path)]) == 0
    assert _index(scene) == [0, 2]
    assert "kept 2 of 4 frames" in capsys.readouterr().out


def test_signed_difference_no_uint8_wraparound(tmp_path):
    # 5 -> 250 -> 5: both directions are a change of 245. In uint8, 5 - 250 wraps to 11,
    # below the threshold of 20 used here, so the wrapping code would drop one of the frames.
    assert gvfi.changed_fraction(_flat(5), _flat(250), 20) == 1.0
    assert gvfi.changed_fraction(_flat(250), _flat(5), 20) == 1.0
    assert np.abs(_flat(5) - _flat(250)).max() == 11  # what the uint8 subtraction gives
    scene = tmp_path / "training" / "s"
    _write_scene(scene, [_flat(5), _flat(250), _flat(5)])
    assert gvfi.main(["--dataset_dir", str(tmp_path), "--pixel_threshold", "20"]) == 0
    assert _index(scene) == [0, 1, 2]


def test_changed_fraction_threshold_and_fraction():
    prev = _flat(100)
    cur = prev.copy()
    cur[:, :3] = 111   # 30% of the pixels change by 11 (> 10)
    cur[:, 3:5] = 110  # 20% change by exactly 10: not counted
    assert gvfi.changed_fraction(prev, cur, 10) == pytest.approx(0.3)
    # min_fraction is a strict bound: exactly 0.3 is not enough, above it is
    assert gvfi.select_frames(iter([prev, cur]), 10, 0.3) == [0]
    assert gvfi.select_frames(iter([prev, cur]), 10, 0.29) == [0, 1]


def test_compares_with_last_kept_frame():
    # each step changes 20% of the pixels: never enough alone, but frame 2 differs from the
    # kept frame 0 on 40% of them -> kept; frame 3 differs from frame 2 on 20% only.
    frames = [_flat(0) for _ in range(4)]
    frames[1][:, :2] = 50
    frames[2][:, :4] = 50
    frames[3][:, :6] = 50
    assert gvfi.select_frames(iter(frames), 10, 0.3) == [0, 2]


def test_scene_lists_and_atomic_write(tmp_path):
    training = tmp_path / "training"
    for name in ("t1", "v1", "unlisted"):
        _write_scene(training / name, [_flat(0), _flat(200)], ext=".jpg")
    (training / "train.txt").write_text("t1\n")
    (training / "val.txt").write_text("v1\n\n")
    (training / "t1" / "frame_index.txt").write_text("stale\n")
    assert gvfi.main(["--dataset_dir", str(tmp_path)]) == 0
    assert _index(training / "t1") == [0, 1]
    assert _index(training / "v1") == [0, 1]
    assert not (training / "unlisted" / "frame_index.txt").exists()
    leftovers = [p.name for p in training.rglob("*.tmp")]
    assert leftovers == []


def test_missing_dataset_dir_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert gvfi.main(["--dataset_dir", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("generate_valid_frame_index.py: error:")
    assert str(missing) in err[0]


def test_listed_scene_missing_is_named(tmp_path, capsys):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "train.txt").write_text("ghost\n")
    assert gvfi.main(["--dataset_dir", str(tmp_path)]) == 2
    assert "ghost" in capsys.readouterr().err


def test_frames_of_different_sizes_are_an_error(tmp_path, capsys):
    scene = tmp_path / "training" / "s"
    scene.mkdir(parents=True)
    cv2.imwrite(str(scene / "0.png"), _flat(0))
    cv2.imwrite(str(scene / "1.png"), np.zeros((H + 1, W), dtype=np.uint8))
    assert gvfi.main(["--dataset_dir", str(tmp_path)]) == 2
    assert "frame 1" in capsys.readouterr().err


def test_help_on_every_option():
    for action in gvfi.build_parser()._actions:
        assert action.help, action.dest
