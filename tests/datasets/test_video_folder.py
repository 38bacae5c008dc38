"""Folder datasets on tiny generated trees (the layout of docs/method.md, Data)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import CAM, FRAME_H, FRAME_W, frame_code, write_dataset, write_test_split

from datasets.formats import DatasetError
from datasets.transforms import Compose, RandomHorizontalFlip, Resize, ToTensor
from datasets.video_folder import TestDepthSet, TrainFolder, ValidationDepthSet

H, W = FRAME_H, FRAME_W


def decode_code(img: torch.Tensor) -> int:
    """Frame code from a normalised [3,H,W] image: its mean grey level, snapped to the code
    grid (steps of 20) to absorb the noise and JPEG."""
    grey = float(((img * 0.225 + 0.45) * 255).mean())
    return 10 + 20 * round((grey - 10) / 20)


def codes(sample: dict) -> tuple[int, list[int]]:
    return decode_code(sample["tgt"]), [decode_code(r) for r in sample["refs"]]


# ---- TrainFolder --------------------------------------------------------------------------
@pytest.mark.parametrize(("seq", "skip", "count"), [(3, 1, 8), (3, 2, 4), (5, 1, 4)])
def test_sample_count(tmp_path: Path, seq: int, skip: int, count: int) -> None:
    ds = TrainFolder(write_dataset(tmp_path), sequence_length=seq, skip_frames=skip)
    assert len(ds) == count


def test_refs_are_in_temporal_order(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    ds = TrainFolder(root, sequence_length=5, skip_frames=1)
    assert codes(ds[0]) == (frame_code(0, 2), [frame_code(0, f) for f in (0, 1, 3, 4)])
    ds = TrainFolder(root, sequence_length=3, skip_frames=2)
    # second scene, last target: frame 3 with refs 1 and 5
    assert codes(ds[3]) == (frame_code(1, 3), [frame_code(1, 1), frame_code(1, 5)])


def test_sample_content(tmp_path: Path) -> None:
    ds = TrainFolder(write_dataset(tmp_path), sequence_length=3)
    sample = ds[0]
    assert set(sample) == {"tgt", "refs", "K", "K_inv"}
    assert sample["tgt"].shape == (3, H, W) and len(sample["refs"]) == 2
    torch.testing.assert_close(sample["K"], torch.from_numpy(CAM))
    torch.testing.assert_close(sample["K"] @ sample["K_inv"], torch.eye(3))


def test_too_short_scene_is_skipped_with_a_warning(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, frames=(6, 3))
    with pytest.warns(UserWarning, match="scene_1"):
        ds = TrainFolder(root, sequence_length=5)
    assert len(ds) == 2
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="no training samples"):
        TrainFolder(root, sequence_length=5, skip_frames=2)


def test_use_frame_index(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, frame_index=[0, 2, 3, 5])
    ds = TrainFolder(root, sequence_length=3, use_frame_index=True)
    assert len(ds) == 4
    assert codes(ds[0]) == (frame_code(0, 2), [frame_code(0, 0), frame_code(0, 3)])
    assert codes(ds[1]) == (frame_code(0, 3), [frame_code(0, 2), frame_code(0, 5)])
    (root / "scene_0" / "frame_index.txt").write_text("0\n9\n")
    with pytest.raises(DatasetError, match=re.escape("frame_index.txt")):
        TrainFolder(root, use_frame_index=True)


def test_prior_paired_by_name(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    # frame 0 is never a target: without its prior, pairing by position would shift by one
    (root / "scene_0" / "leres_depth" / "000000.png").unlink()
    ds = TrainFolder(root, sequence_length=3, with_prior=True)
    for idx, frame in [(0, 1), (3, 4)]:
        prior = ds[idx]["tgt_prior"]
        assert prior.shape == (1, H, W)
        assert int(prior[0, 0].argmax()) == frame  # its brightest column is its frame number
        assert float(prior.max()) == pytest.approx(1.0)
        assert float(prior.min()) == pytest.approx(0.5)


def test_prior_of_another_size_is_resampled_not_blended(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    # frame 1's prior at twice the frame size: its brightest column (1) becomes columns 2-3
    big = np.full((2 * H, 2 * W), 30000, np.uint16)
    big[:, 2:4] = 60000
    cv2.imwrite(str(root / "scene_0" / "leres_depth" / "000001.png"), big)
    prior = TrainFolder(root, sequence_length=3, with_prior=True)[0]["tgt_prior"]
    assert prior.shape == (1, H, W)
    assert set(prior.unique().tolist()) == {0.5, 1.0}  # no blended depth between the two
    assert prior[0, :, 1].eq(1.0).all() and prior.eq(1.0).sum() == H


def test_prior_follows_the_flip(tmp_path: Path) -> None:
    ds = TrainFolder(write_dataset(tmp_path), sequence_length=3, with_prior=True,
                     transform=Compose([RandomHorizontalFlip(p=1.0), ToTensor()]))
    sample = ds[0]
    assert int(sample["tgt_prior"][0, 0].argmax()) == W - 1 - 1
    assert float(sample["K"][0, 2]) == pytest.approx(W - CAM[0, 2])


def write_motion_masks(train: Path, scenes: Sequence[str] = ("scene_0", "scene_1")) -> None:
    """dynamic/<frame>.png for the named scenes: frame i has a moving object in column i."""
    for name in scenes:
        scene = train / name
        (scene / "dynamic").mkdir()
        for path in sorted(scene.glob("*.jpg")):
            mask = np.zeros((H, W), np.uint8)
            mask[:, int(path.stem)] = 255
            cv2.imwrite(str(scene / "dynamic" / f"{path.stem}.png"), mask)


def test_motion_masks_loaded_flipped_and_only_when_every_scene_has_them(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    write_motion_masks(root)
    flip = Compose([RandomHorizontalFlip(p=1.0), ToTensor()])
    ds = TrainFolder(root, sequence_length=3, with_motion_masks=True, transform=flip)
    assert ds.has_motion_masks
    mask = ds[0]["tgt_dynamic"]  # target frame 1, its column 1 flipped to W - 2
    assert mask.shape == (1, H, W) and set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask[0, :, W - 2].all() and mask.sum() == H
    assert "tgt_dynamic" not in TrainFolder(root, sequence_length=3)[0]
    # one scene without masks: none are loaded, so that every batch has the same keys
    other = write_dataset(tmp_path / "partial")
    write_motion_masks(other, scenes=("scene_0",))
    partial = TrainFolder(other, sequence_length=3, with_motion_masks=True)
    assert not partial.has_motion_masks and "tgt_dynamic" not in partial[0]


def test_missing_or_extra_prior_is_named(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    missing = root / "scene_1" / "leres_depth" / "000002.png"
    missing.unlink()
    with pytest.raises(DatasetError, match=re.escape(str(missing))):
        TrainFolder(root, with_prior=True)
    TrainFolder(root, with_prior=False)  # the prior is only needed for V3
    cv2.imwrite(str(missing), np.ones((H, W), np.uint16))
    extra = root / "scene_0" / "leres_depth" / "000099.png"
    cv2.imwrite(str(extra), np.ones((H, W), np.uint16))
    with pytest.raises(DatasetError, match=re.escape(str(extra))):
        TrainFolder(root, with_prior=True)


def test_bad_layout_errors(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    (root / "train.txt").write_text("scene_0\nscene_9\n")
    with pytest.raises(DatasetError, match="scene_9"):
        TrainFolder(root)
    (root / "train.txt").unlink()
    with pytest.raises(DatasetError, match=re.escape("train.txt")):
        TrainFolder(root)


# ---- ValidationDepthSet -------------------------------------------------------------------
def test_validation_depth_set(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, gt_size=(16, 24))
    ds = ValidationDepthSet(root, "nyu", Compose([Resize(8, 10), ToTensor()]))
    assert len(ds) == 6
    sample = ds[2]
    assert sample["tgt"].shape == (3, 8, 10)
    assert sample["gt_depth"].shape == (16, 24) and sample["gt_depth"].dtype == torch.float32
    torch.testing.assert_close(sample["gt_depth"], torch.full((16, 24), 3.0))
    with pytest.raises(ValueError, match="'mars'"):  # a UsageError from the registry
        ValidationDepthSet(root, "mars", ToTensor())


def test_validation_missing_gt_is_named(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    missing = root / "scene_1" / "depth" / "000004.png"
    missing.unlink()
    with pytest.raises(DatasetError, match=re.escape(str(missing))):
        ValidationDepthSet(root, "nyu", ToTensor())


# ---- TestDepthSet -------------------------------------------------------------------------
def test_test_depth_set_with_seg_masks(tmp_path: Path) -> None:
    ds = TestDepthSet(write_test_split(tmp_path), "kitti",
                      Compose([Resize(16, 20), ToTensor()]))
    assert len(ds) == 2
    sample = ds[1]
    assert sample["name"] == "b" and sample["tgt"].shape == (3, 16, 20)
    assert sample["gt_depth"].shape == (20, 30)
    assert float(sample["gt_depth"][10, 0]) == pytest.approx(11.0)
    expected = np.zeros((20, 30), bool)
    expected[:4, :] = True  # red is dynamic, green is not
    expected[8:10, :3] = True  # blue
    np.testing.assert_array_equal(sample["dynamic"].numpy(), expected)
    assert sample["dynamic"].dtype == torch.bool


def test_test_depth_set_without_masks_and_errors(tmp_path: Path) -> None:
    test = write_test_split(tmp_path, with_masks=False)
    sample = TestDepthSet(test, "kitti", ToTensor())[0]
    assert "dynamic" not in sample and sample["name"] == "a"
    missing = test / "depth" / "a.npy"
    missing.unlink()
    with pytest.raises(DatasetError, match=re.escape("a.npz")):  # the expected name is given
        TestDepthSet(test, "kitti", ToTensor())
    np.save(missing, np.ones((4, 4), np.float32))
    (test / "seg_mask").mkdir()
    cv2.imwrite(str(test / "seg_mask" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=re.escape("dynamic_colors.txt")):
        TestDepthSet(test, "kitti", ToTensor())
    (test / "seg_mask" / "dynamic_colors.txt").write_text("255 0\n")
    with pytest.raises(DatasetError, match="R G B"):
        TestDepthSet(test, "kitti", ToTensor())
    (test / "seg_mask" / "dynamic_colors.txt").write_text("255 0 0\n")
    with pytest.raises(DatasetError, match=re.escape("b.png")):  # b has no mask
        TestDepthSet(test, "kitti", ToTensor())
