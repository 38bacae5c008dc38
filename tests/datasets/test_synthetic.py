"""The built-in synthetic dataset: layout, determinism, and an independent check of its
ground truth (numpy + cv2.remap only, no renderer or geometry-package code)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import run_tool
from scipy.stats import spearmanr

from datasets import synthetic
from datasets.synthetic import (
    build_scene,
    camera_motion,
    generate_dataset,
    load_scene,
    render_frame,
)
from datasets.synthetic import writer as synthetic_writer

H, W, FRAMES = 64, 80, 8


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ds"
    generate_dataset(root, seed=0, scenes=2, frames=FRAMES, val_scenes=1, test_scenes=1,
                     height=H, width=W, progress=False, workers=1)
    return root


def _rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _png16(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.dtype == np.uint16 and img.shape == (H, W), path
    return img


def _scenes(root: Path) -> list[str]:
    names = []
    for split in ("train.txt", "val.txt"):
        names += (root / "training" / split).read_text().split()
    return names


def _poses(scene_dir: Path) -> np.ndarray:
    """poses.txt -> camera-to-world [F,4,4]."""
    rows = np.loadtxt(scene_dir / "poses.txt").reshape(-1, 3, 4)
    T = np.tile(np.eye(4), (len(rows), 1, 1))
    T[:, :3] = rows
    return T


# ------------------------------------------------------------------ layout and API
def test_layout_is_complete(data: Path) -> None:
    summary = json.loads((data / "summary.json").read_text())
    assert (data / "README.txt").read_text().count("seed 0") >= 1
    train = (data / "training" / "train.txt").read_text().split()
    val = (data / "training" / "val.txt").read_text().split()
    assert train == ["train_000_driving", "train_001_handheld"] == summary["train"]
    assert val == ["val_000_handheld"] == summary["val"]
    for name in train + val:
        d = data / "training" / name
        frames = sorted(p.stem for p in d.glob("*.jpg"))
        assert frames == [f"{i:06d}" for i in range(FRAMES)]
        for sub in ("depth", "leres_depth", "dynamic"):
            assert sorted(p.stem for p in (d / sub).glob("*.png")) == frames, sub
        for stem in frames:
            assert _rgb(d / f"{stem}.jpg").shape == (H, W, 3)
            depth = _png16(d / "depth" / f"{stem}.png")
            assert depth.min() > 0  # always geometry, never sky
            prior = _png16(d / "leres_depth" / f"{stem}.png")
            assert prior.max() == 60000 and prior.min() > 0
            dyn = cv2.imread(str(d / "dynamic" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert dyn.dtype == np.uint8 and dyn.shape == (H, W)
            assert set(np.unique(dyn)) <= {0, 255}
        K = np.loadtxt(d / "cam.txt")
        f = (0.8 if "driving" in name else 0.9) * W
        np.testing.assert_allclose(K, [[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
        T = _poses(d)
        assert T.shape == (FRAMES, 4, 4)
        np.testing.assert_allclose(T[0], np.eye(4), atol=1e-6)
        for R in T[:, :3, :3]:
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
            assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-6)
    test = data / "testing"
    stems = sorted(p.stem for p in (test / "color").glob("*.jpg"))
    assert len(stems) == FRAMES == summary["num_test_images"]  # stride 1 for 8 frames
    assert sorted(p.stem for p in (test / "depth").glob("*.png")) == stems
    assert sorted(p.stem for p in (test / "seg_mask").glob("*.png")) == stems
    colours = np.loadtxt(test / "seg_mask" / "dynamic_colors.txt", ndmin=2)
    assert colours.shape[1] == 3 and len(colours) >= 1
    for stem in stems:
        assert _rgb(test / "color" / f"{stem}.jpg").shape == (H, W, 3)
        _png16(test / "depth" / f"{stem}.png")
        seg = _rgb(test / "seg_mask" / f"{stem}.png")
        painted = seg.reshape(-1, 3)[seg.reshape(-1, 3).any(1)]
        assert all((c == colours).all(1).any() for c in np.unique(painted, axis=0))
    assert not list(data.parent.glob(".*tmp*"))  # the temporary folder was renamed


def test_depth_ranges_and_motion(data: Path) -> None:
    summary = json.loads((data / "summary.json").read_text())
    for s in summary["scenes"]:
        assert 1 <= s["num_dynamic_objects"] <= 3
        assert s["depth_max"] < 65.0 and s["depth_min"] > 0.5
        if s["kind"] == "driving":
            assert s["depth_max"] > 15.0
        else:
            assert s["depth_max"] < 10.0
    for name in _scenes(data):
        T = _poses(data / "training" / name)
        steps = np.linalg.norm(np.diff(T[:, :3, 3], axis=0), axis=1)
        rel = np.linalg.inv(T[:-1]) @ T[1:]
        angles = np.degrees(np.arccos(np.clip((np.trace(rel[:, :3, :3], axis1=1, axis2=2)
                                               - 1) / 2, -1, 1)))
        if "driving" in name:
            assert np.all((steps > 0.2) & (steps < 1.2)), steps
            assert np.median(angles) < 3.0
        else:
            assert np.all(steps < 0.2), steps
            assert np.median(angles) > 2.0, angles
    # a constant prediction must be clearly wrong (depth varies a lot within images)
    assert 0.2 < summary["constant_depth_abs_rel"] < 1.5


def test_camera_motion_hand_computed() -> None:
    # camera-to-world poses: each frame pans 2° (about the camera's y axis) and moves 1 cm
    a = np.radians(2.0)
    poses = np.zeros((5, 3, 4))
    for f in range(5):
        c, s = np.cos(a * f), np.sin(a * f)
        poses[f, :, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        poses[f, :, 3] = [0.01 * f, 0.0, 0.0]
    m = camera_motion(poses)
    assert m["rotation_deg"] == pytest.approx(2.0) and m["pan_deg"] == pytest.approx(2.0)
    assert m["tilt_deg"] == pytest.approx(0.0, abs=1e-9)
    assert m["roll_deg"] == pytest.approx(0.0, abs=1e-9)
    assert m["translation_cm"] == pytest.approx(1.0)


def test_nyu_kind_is_rotation_dominated() -> None:
    """The ``nyu`` scenes: the rooms of ``handheld``, with the camera panning and tilting
    by degrees a frame, barely rolling, and moving far less."""
    nyu = [camera_motion(build_scene("nyu", s, 40, 16, 20).poses) for s in range(4)]
    hand = [camera_motion(build_scene("handheld", s, 40, 16, 20).poses) for s in range(4)]
    mean = {k: {name: np.mean([m[name] for m in ms]) for name in ms[0]}
            for k, ms in (("nyu", nyu), ("handheld", hand))}
    assert mean["nyu"]["translation_cm"] < 3.0 < mean["handheld"]["translation_cm"]
    assert mean["nyu"]["pan_deg"] > 1.5 and mean["nyu"]["tilt_deg"] > 1.5
    assert mean["nyu"]["roll_deg"] < mean["nyu"]["pan_deg"] / 2
    ratio = {k: v["rotation_deg"] / v["translation_cm"] for k, v in mean.items()}
    assert ratio["nyu"] > 1.5 * ratio["handheld"]
    scene = build_scene("nyu", 0, 4, 16, 20)
    assert scene.K[0, 0] == pytest.approx(0.9 * 20)  # the rooms' camera


def test_projection_convention_hand_computed() -> None:
    """A bare box room seen from its centre, identity pose: the pixel-centre ray (row i,
    col j) meets the far wall (z = 5) at depth 5, the floor (y = 1.5) at depth
    1.5 · f / (i − cy), and a sphere of radius 1 at (0, 0, 3) at depth 2 on its axis."""
    scene = build_scene("handheld", 1, 2, 21, 31)
    scene.objects = []
    scene.poses = np.tile(np.hstack([np.eye(3), np.zeros((3, 1))]), (2, 1, 1))
    scene.room_lo, scene.room_hi = np.array([-50.0, -50.0, -5.0]), np.array([50.0, 1.5, 5.0])
    scene.K = np.array([[10.0, 0, 15], [0, 10.0, 10], [0, 0, 1]])
    scene._dirs = None
    depth = render_frame(scene, 0).depth
    assert depth[10, 15] == pytest.approx(5.0, rel=1e-6)
    for i in (14, 17, 20):  # 1.5 · 10 / (i − 10) < 5 → floor
        assert depth[i, 15] == pytest.approx(15.0 / (i - 10), rel=1e-5)
        assert depth[i, 3] == pytest.approx(15.0 / (i - 10), rel=1e-5)  # z-depth, not range
    scene.objects = [synthetic.Primitive("sphere", np.array([0.0, 0.0, 3.0]), np.ones(3), 0)]
    depth = render_frame(scene, 0).depth
    assert depth[10, 15] == pytest.approx(2.0, rel=1e-6)


def test_deterministic(data: Path, tmp_path: Path) -> None:
    # two worker processes render the frames in another order: same bytes
    generate_dataset(tmp_path / "same", seed=0, scenes=1, frames=FRAMES, val_scenes=0,
                     test_scenes=0, height=H, width=W, progress=False, workers=2)
    generate_dataset(tmp_path / "other", seed=1, scenes=1, frames=FRAMES, val_scenes=0,
                     test_scenes=0, height=H, width=W, progress=False, workers=1)
    for rel in ("000003.jpg", "depth/000003.png", "leres_depth/000003.png", "poses.txt"):
        ref = (data / "training" / "train_000_driving" / rel).read_bytes()
        assert (tmp_path / "same" / "training" / "train_000_driving" / rel).read_bytes() == ref
        assert (tmp_path / "other" / "training" / "train_000_driving" / rel).read_bytes() != ref


# ------------------------------------------------------------------ independent GT check
def _warp(root: Path, name: str, t: int) -> dict[str, np.ndarray]:
    """Warp frame t+1 into frame t with the GT depth of t and the GT relative pose."""
    d = root / "training" / name
    K = np.loadtxt(d / "cam.txt")
    T = _poses(d)
    ref_T_tgt = np.linalg.inv(T[t + 1]) @ T[t]
    img_t = _rgb(d / f"{t:06d}.jpg").astype(np.float32) / 255
    img_r = _rgb(d / f"{t + 1:06d}.jpg").astype(np.float32) / 255
    depth_t = _png16(d / "depth" / f"{t:06d}.png").astype(np.float64) / 1000
    depth_r = _png16(d / "depth" / f"{t + 1:06d}.png").astype(np.float32) / 1000
    dyn_t = cv2.imread(str(d / "dynamic" / f"{t:06d}.png"), cv2.IMREAD_UNCHANGED) > 0
    dyn_r = cv2.imread(str(d / "dynamic" / f"{t + 1:06d}.png"), cv2.IMREAD_UNCHANGED)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    pix = np.stack([u, v, np.ones_like(u)], 0).reshape(3, -1)
    X = np.linalg.inv(K) @ pix * depth_t.reshape(1, -1)
    Xr = ref_T_tgt[:3, :3] @ X + ref_T_tgt[:3, 3:]
    z = Xr[2]
    ur = (K[0, 0] * Xr[0] / z + K[0, 2]).reshape(H, W).astype(np.float32)
    vr = (K[1, 1] * Xr[1] / z + K[1, 2]).reshape(H, W).astype(np.float32)
    warped = cv2.remap(img_r, ur, vr, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    depth_at = cv2.remap(depth_r, ur, vr, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    dyn_at = cv2.remap(dyn_r, ur, vr, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    inside = (ur >= 0) & (ur <= W - 1) & (vr >= 0) & (vr <= H - 1) & (z.reshape(H, W) > 0)
    # visible in t+1: the point's depth there agrees with t+1's depth map (no occlusion)
    visible = np.abs(depth_at - z.reshape(H, W)) < 0.03 * z.reshape(H, W) + 0.01
    flow = np.hypot(ur - u, vr - v)
    return {"err": np.abs(warped - img_t).mean(-1), "plain": np.abs(img_r - img_t).mean(-1),
            "static": inside & visible & ~dyn_t & (dyn_at == 0),
            "dynamic": inside & dyn_t, "flow": flow}


@pytest.mark.parametrize("name", ["train_000_driving", "train_001_handheld",
                                  "val_000_handheld"])
def test_gt_warp_reproduces_static_pixels(data: Path, name: str) -> None:
    static_err, plain, moved, dyn_err = [], [], [], []
    for t in range(FRAMES - 1):
        w = _warp(data, name, t)
        static_err.append(w["err"][w["static"]])
        plain.append(w["plain"][w["static"]])
        moved.append(w["flow"][w["static"]] >= 1.0)
        dyn_err.append(w["err"][w["dynamic"]])
    static_err, plain, moved, dyn_err = (np.concatenate(x)
                                         for x in (static_err, plain, moved, dyn_err))
    assert static_err.size > 0.5 * (FRAMES - 1) * H * W
    assert np.median(static_err) < 0.04
    assert np.median(static_err) < 0.5 * np.median(plain)
    # where the camera motion moves the image by a pixel or more, the frames differ and
    # the GT warp must explain most of it (sub-pixel flow only shows JPEG and sensor noise)
    assert moved.sum() > 0.2 * moved.size
    assert np.median(static_err[moved]) < 0.35 * np.median(plain[moved])
    # the moving objects do not follow the camera motion: their warp error is much larger
    assert dyn_err.size >= 30, "no moving object in view"
    assert np.median(dyn_err) > 2 * np.median(static_err)


# ------------------------------------------------------------------ dynamic masks
def test_masks_are_exactly_the_moving_objects(data: Path) -> None:
    colours = np.loadtxt(data / "testing" / "seg_mask" / "dynamic_colors.txt", ndmin=2)
    scene = load_scene(data, "test_000_driving")
    seen = 0
    for t in range(FRAMES):
        stem = f"test_000_driving_{t:06d}"
        seg = _rgb(data / "testing" / "seg_mask" / f"{stem}.png")
        dynamic = (seg[:, :, None, :] == colours[None, None]).all(-1).any(-1)
        gt = _png16(data / "testing" / "depth" / f"{stem}.png")
        full, static = render_frame(scene, t), render_frame(scene, t, dynamic=False)
        np.testing.assert_array_equal(np.rint(full.depth.astype(np.float64) * 1000), gt)
        np.testing.assert_array_equal(dynamic, full.depth != static.depth)
        seen += dynamic.sum()
    assert seen > 0
    for name in _scenes(data):
        scene = load_scene(data, name)
        for t in (0, FRAMES - 1):
            mask = cv2.imread(str(data / "training" / name / "dynamic" / f"{t:06d}.png"),
                              cv2.IMREAD_UNCHANGED) > 0
            full, static = render_frame(scene, t), render_frame(scene, t, dynamic=False)
            np.testing.assert_array_equal(mask, full.depth != static.depth)
            # without the moving objects the static world is unchanged elsewhere
            np.testing.assert_array_equal(full.image[~mask & ~_dilate(mask)],
                                          static.image[~mask & ~_dilate(mask)])


def test_static_renders_the_same_scenes_without_the_moving_objects(data: Path,
                                                                     tmp_path: Path) -> None:
    assert run_tool("generate_synthetic_dataset", [
        "--output_dir", str(tmp_path / "static"), "--seed", "0", "--scenes", "2", "--frames",
        str(FRAMES), "--val_scenes", "1", "--test_scenes", "1", "--height", str(H),
        "--width", str(W), "--static"]) == 0
    root = tmp_path / "static"
    summary = json.loads((root / "summary.json").read_text())
    assert summary["moving_objects"] is False
    assert all(s["num_dynamic_objects"] == 0 for s in summary["scenes"])
    assert "--static" in (root / "README.txt").read_text()
    scene = load_scene(data, "train_001_handheld")  # the scene with its moving objects
    assert scene.num_moving > 0
    static_scene = load_scene(root, "train_001_handheld")
    assert static_scene.num_moving == 0
    for t in (0, FRAMES - 1):
        expected = render_frame(scene, t, dynamic=False)
        np.testing.assert_array_equal(static_scene.poses, scene.poses)
        depth = _png16(root / "training" / "train_001_handheld" / "depth" / f"{t:06d}.png")
        np.testing.assert_array_equal(np.rint(expected.depth.astype(np.float64) * 1000), depth)
        mask = cv2.imread(str(root / "training" / "train_001_handheld" / "dynamic" /
                              f"{t:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert not mask.any()
    assert not any(_rgb(p).any() for p in (root / "testing" / "seg_mask").glob("*.png"))


def _dilate(mask: np.ndarray) -> np.ndarray:
    # colour is averaged over 2×2 samples: pixels next to an object edge may mix
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


# ------------------------------------------------------------------ prior
def test_prior_is_correlated_but_imperfect(data: Path) -> None:
    for name in _scenes(data):
        d = data / "training" / name
        for t in range(0, FRAMES, 3):
            gt_inv = 1000.0 / _png16(d / "depth" / f"{t:06d}.png").astype(np.float64)
            prior_inv = 1.0 / _png16(d / "leres_depth" / f"{t:06d}.png").astype(np.float64)
            rho = spearmanr(gt_inv.ravel(), prior_inv.ravel())[0]
            assert rho > 0.8, (name, t, rho)
            A = np.stack([prior_inv.ravel(), np.ones(gt_inv.size)], 1)
            coef, *_ = np.linalg.lstsq(A, gt_inv.ravel(), rcond=None)
            resid = gt_inv.ravel() - A @ coef
            assert np.sqrt(np.mean(resid**2)) > 0.03 * gt_inv.std()  # not a copy


# ------------------------------------------------------------------ CLI
def test_cli_refuses_non_empty_and_overwrites(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    args = ["--output_dir", str(out), "--scenes", "1", "--frames", "3", "--val_scenes", "0",
            "--test_scenes", "1", "--img_height", "16", "--img_width", "24", "--seed", "3"]
    assert run_tool("generate_synthetic_dataset", args) == 0
    assert len(list((out / "training" / "train_000_driving").glob("*.jpg"))) == 3
    assert len(list((out / "testing" / "color").glob("*.jpg"))) == 3
    stamp = (out / "summary.json").read_bytes()
    capsys.readouterr()
    assert run_tool("generate_synthetic_dataset", args) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and "\n" not in err
    assert (out / "summary.json").read_bytes() == stamp
    assert run_tool("generate_synthetic_dataset", [*args, "--overwrite", "--motion",
                                                   "handheld"]) == 0
    assert (out / "training" / "train_000_handheld").is_dir()
    assert not (out / "training" / "train_000_driving").exists()
    assert run_tool("generate_synthetic_dataset", [*args, "--overwrite", "--motion",
                                                   "nyu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [s["kind"] for s in summary["scenes"]] == ["nyu", "nyu"]
    assert summary["scenes"][0]["camera_motion"]["translation_cm"] > 0
    assert "a frame" in (out / "README.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]  # no temp folders left
    assert run_tool("generate_synthetic_dataset", [*args, "--motion", "flying"]) == 2
    assert "invalid choice: 'flying'" in capsys.readouterr().err


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(task):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic_writer, "_render_task", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "x", scenes=1, frames=2, val_scenes=0, test_scenes=0,
                         height=16, width=16, progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []
