"""inference.py end to end on generated images and videos, and its writers (PNG16, PLY)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import cli

from datasets.formats import DatasetError, encode_depth_png16
from geometry import scale_intrinsics
from systems import load_from_checkpoint
from utils.cli import run_main
from utils.errors import UsageError
from utils.pointcloud import depth_to_points, read_ply, write_ply

inference = cli("inference")

NET = ["--img_height", "48", "--img_width", "64", "--device", "cpu"]
K_IN = np.array([[60.0, 0.0, 45.0], [0.0, 55.0, 35.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """[h,w,3] uint8 BGR: smooth gradients plus noise, so depth is not constant."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], axis=2)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """70x90 inputs in several encodings, plus inputs that must be skipped."""
    d = tmp_path_factory.mktemp("images")
    cv2.imwrite(str(d / "a_colour.jpg"), textured(70, 90, 0))
    cv2.imwrite(str(d / "b_grey.png"), cv2.cvtColor(textured(70, 90, 1), cv2.COLOR_BGR2GRAY))
    rgba = np.concatenate([textured(70, 90, 2), np.full((70, 90, 1), 200, np.uint8)], axis=2)
    cv2.imwrite(str(d / "c_rgba.png"), rgba)
    cv2.imwrite(str(d / "d_16bit.png"), textured(70, 90, 3).astype(np.uint16) * 257)
    (d / "e_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    cv2.imwrite(str(d / "f_tiny.png"), textured(32, 40, 4))
    cv2.imwrite(str(d / "a_colour.png"), textured(70, 90, 5))  # same name as a_colour.jpg
    return d


def run(argv: list[str]) -> int:
    return inference.main([*argv, *NET])


def test_folder_all_outputs_at_network_resolution(ckpt, images, tmp_path, capsys):
    out = tmp_path / "out"
    fx, fy, cx, cy = (str(v) for v in (K_IN[0, 0], K_IN[1, 1], K_IN[0, 2], K_IN[1, 2]))
    assert run(["--input_dir", str(images), "--output_dir", str(out), "--ckpt_path", str(ckpt),
                "--save-depth", "--save-vis", "--vis-side-by-side", "--save-png16",
                "--save-ply", "--fx", fx, "--fy", fy, "--cx", cx, "--cy", cy,
                "--infer_batch_size", "3"]) == 0
    printed = capsys.readouterr().out
    assert "processed 4, skipped 3" in printed
    assert "e_broken.jpg" in printed and "f_tiny.png: size 40x32 outside 64..8192" in printed
    assert "a_colour: another input has the same name" in printed
    names = ["a_colour", "b_grey", "c_rgba", "d_16bit"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}{s}" for n in names for s in (".npy", ".jpg", ".png", ".ply"))

    depth = np.load(out / "a_colour.npy")
    assert depth.shape == (48, 64) and depth.dtype == np.float32
    assert np.all(depth > 0.09) and np.all(depth < 101)
    # The same network on the same preprocessed input gives the same depth.
    model = load_from_checkpoint(str(ckpt))
    from datasets.formats import read_image
    from datasets.transforms import Resize, ToTensor
    imgs, _, _ = Resize(48, 64)([read_image(images / "a_colour.jpg")], np.eye(3), [])
    x = ToTensor()(imgs, np.eye(3), [])[0][0][None]
    with torch.no_grad():
        np.testing.assert_allclose(depth, model(x)[0, 0].numpy(), rtol=1e-5)

    png = cv2.imread(str(out / "a_colour.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (48, 64)
    np.testing.assert_array_equal(
        png, np.clip(np.rint(depth.astype(np.float64) * 1000.0), 0, 65535))
    vis = cv2.imread(str(out / "a_colour.jpg"))
    assert vis.shape == (48, 128, 3)  # input beside the colour map

    points, colors = read_ply(out / "a_colour.ply")
    assert points.shape == (48 * 64, 3) and colors.dtype == np.uint8
    K_net = scale_intrinsics(K_IN, 64 / 90, 48 / 70)
    row, col = 10, 20
    p = points[row * 64 + col]
    z = depth[row, col]
    np.testing.assert_allclose(p, [(col - K_net[0, 2]) / K_net[0, 0] * z,
                                   (row - K_net[1, 2]) / K_net[1, 1] * z, z], rtol=1e-5)


def test_input_resolution_batching_and_scale(ckpt, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    cv2.imwrite(str(images / "a.jpg"), textured(80, 100, 6))  # sizes may differ in a batch
    cv2.imwrite(str(images / "b_grey.png"),
                cv2.cvtColor(textured(70, 90, 1), cv2.COLOR_BGR2GRAY))
    cam = tmp_path / "cam.txt"
    np.savetxt(cam, K_IN)
    outs = {}
    for bs in ("1", "2"):
        out = tmp_path / f"out{bs}"
        assert run(["--input_dir", str(images), "--output_dir", str(out), "--ckpt_path",
                    str(ckpt), "--save-depth", "--save-png16", "--save-ply", "--cam_txt",
                    str(cam), "--output_resolution", "input", "--depth_scale", "2.0",
                    "--infer_batch_size", bs]) == 0
        outs[bs] = out
    d1, d2 = np.load(outs["1"] / "b_grey.npy"), np.load(outs["2"] / "b_grey.npy")
    assert d1.shape == (70, 90) and np.load(outs["1"] / "a.npy").shape == (80, 100)
    np.testing.assert_allclose(d1, d2, rtol=1e-4)  # batching does not change results
    png = cv2.imread(str(outs["1"] / "b_grey.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(
        png, np.clip(np.rint(d1.astype(np.float64) * 2000.0), 0, 65535))
    points, _ = read_ply(outs["1"] / "b_grey.ply")
    assert len(points) == 70 * 90
    np.testing.assert_allclose(points[0], [(0 - 45) / 60 * 2 * d1[0, 0],
                                           (0 - 35) / 55 * 2 * d1[0, 0], 2 * d1[0, 0]],
                               rtol=1e-5)


def test_bf16_inference_is_close_to_fp32(ckpt, images, tmp_path):
    outs = {}
    for precision in ("32", "bf16-mixed"):
        outs[precision] = tmp_path / precision
        assert run(["--input_dir", str(images), "--output_dir", str(outs[precision]),
                    "--ckpt_path", str(ckpt), "--save-depth", "--device", "cpu",
                    "--infer_precision", precision]) == 0
    for name in sorted(p.name for p in outs["32"].glob("*.npy")):
        d32, d16 = np.load(outs["32"] / name), np.load(outs["bf16-mixed"] / name)
        assert d16.dtype == np.float32 and d16.shape == d32.shape
        # bf16 features (~3 significant digits) before the fp32 disparity head
        np.testing.assert_allclose(d16, d32, rtol=0.05)


def test_video_outputs(ckpt, tmp_path, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (90, 70))
    assert writer.isOpened()
    for i in range(5):
        writer.write(textured(70, 90, 10 + i))
    writer.release()
    out = tmp_path / "out"
    assert run(["--input_video", str(video), "--output_dir", str(out), "--ckpt_path",
                str(ckpt), "--save-depth", "--save-video", "--vis-side-by-side", "--save-ply",
                "--fx", "60", "--fy", "55", "--cx", "45", "--cy", "35", "--ply_every", "2",
                "--infer_batch_size", "2"]) == 0
    assert ("processed 5, skipped 0; wrote 5 .npy, 3 .ply, the depth video clip_depth.mp4"
            in capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"clip_{i:06d}.npy" for i in range(5)]
                           + [f"clip_{i:06d}.ply" for i in (0, 2, 4)] + ["clip_depth.mp4"])
    cap = cv2.VideoCapture(str(out / "clip_depth.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 5 and frames[0].shape == (48, 128, 3)


@pytest.mark.parametrize("extra, message", [
    ([], "nothing to write"),
    (["--save-depth", "--input_video", "x.mp4"], "give one input"),
    (["--save-ply"], "--save_ply needs the intrinsics"),
    (["--save-ply", "--fx", "50"], "must be given together"),
    (["--save-video"], "--save_video needs --input_video"),
    (["--save-depth", "--infer_batch_size", "0"], "at least 1"),
    (["--save-depth", "--device", "cpu", "--infer_precision", "16-mixed"],
     "16-mixed needs a CUDA device"),
    (["--save_vis", "--vis_min_depth", "1"], "give both --vis_min_depth"),
    (["--save_vis", "--vis_min_depth", "5", "--vis_max_depth", "2"], "0 < --vis_min_depth"),
    (["--save_vis", "--vis_colorbar"], "--vis_colorbar needs the fixed range"),
])
def test_usage_errors(ckpt, images, tmp_path, extra, message):
    with pytest.raises(UsageError, match=message):
        run(["--input_dir", str(images), "--output_dir", str(tmp_path / "o"), "--ckpt_path",
             str(ckpt), *extra])


def test_fixed_range_colour_maps_with_a_colour_bar(ckpt, images, tmp_path):
    out = tmp_path / "vis"
    assert run(["--input_dir", str(images), "--output_dir", str(out), "--ckpt_path",
                str(ckpt), "--save_vis", "--vis_min_depth", "0.5", "--vis_max_depth", "50",
                "--vis_colorbar"]) == 0
    vis = cv2.imread(str(next(out.glob("*.jpg"))))
    h, w = (int(v) for v in NET[1:4:2])  # the network size run() asks for
    assert vis.shape == (h, w + 16 + 64, 3)  # the map, the bar, its labels


def test_user_errors_are_one_line_exit_2(ckpt, images, tmp_path, capsys):
    for argv in (["--input_dir", str(images), "--output_dir", str(images), "--save-vis"],
                 ["--input_video", str(tmp_path / "missing.mp4"), "--output_dir",
                  str(tmp_path / "o"), "--save-video"]):
        with pytest.raises(SystemExit) as exit_info:
            run_main(lambda argv=argv: run([*argv, "--ckpt_path", str(ckpt)]), "inference.py")
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("inference.py: error: ") and "\n" not in err
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video")
    with pytest.raises(DatasetError, match="cannot open"):
        run(["--input_video", str(garbage), "--output_dir", str(tmp_path / "o"),
             "--ckpt_path", str(ckpt), "--save-depth"])


def test_nothing_processed_returns_1(ckpt, tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert run(["--input_dir", str(d), "--output_dir", str(tmp_path / "o"), "--ckpt_path",
                str(ckpt), "--save-depth"]) == 1
    assert "no input could be processed" in capsys.readouterr().out


# -------------------------------------------------------------------------- writers
def test_depth_png16_hand_computed():
    """--save_png16 writes round(1000 · depth_scale · depth)."""
    depth = np.array([[0.0012, 1.2344, 70.0]])
    np.testing.assert_array_equal(encode_depth_png16(depth, 1000.0), [[1, 1234, 65535]])
    np.testing.assert_array_equal(encode_depth_png16(depth, 2000.0), [[2, 2469, 65535]])


def test_depth_to_points_hand_computed():
    depth = np.array([[2.0, 0.0], [1.0, 4.0]], dtype=np.float32)
    K = np.array([[2.0, 0.0, 0.5], [0.0, 4.0, 0.5], [0.0, 0.0, 1.0]])
    image = np.arange(12, dtype=np.float32).reshape(2, 2, 3) * 20
    points, colors = depth_to_points(depth, K, image)
    # Pixel (row 0, col 1) has no depth and is dropped.
    np.testing.assert_allclose(points, [[-0.5, -0.25, 2.0],      # (u, v) = (0, 0)
                                        [-0.25, 0.125, 1.0],     # (0, 1)
                                        [1.0, 0.5, 4.0]])        # (1, 1)
    np.testing.assert_array_equal(colors, [[0, 20, 40], [120, 140, 160], [180, 200, 220]])


def test_ply_round_trip_and_header(tmp_path):
    points = np.array([[0.0, 1.5, -2.0], [3.25, 4.0, 5.0]], dtype=np.float32)
    colors = np.array([[255, 0, 7], [1, 2, 3]], dtype=np.uint8)
    path = write_ply(tmp_path / "c.ply", points, colors)
    data = path.read_bytes()
    assert data.startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex 2\n")
    assert len(data.split(b"end_header\n", 1)[1]) == 2 * 15
    p, c = read_ply(path)
    np.testing.assert_array_equal(p, points)
    np.testing.assert_array_equal(c, colors)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    with pytest.raises(ValueError):
        write_ply(tmp_path / "bad.ply", points, colors[:1])
