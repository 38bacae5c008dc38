"""datasets/formats.py: every file format, its reader/writer round trip, and the errors that
name the bad file."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.sparse
import torch

from datasets.formats import (
    PRIOR_MAX,
    DatasetError,
    _jpeg_damage,
    check_prior_file,
    companion_files,
    denormalize_image,
    depth_npy_bytes,
    encode_depth_png16,
    encode_motion_mask,
    encode_prior,
    image_header,
    list_frames,
    list_images,
    normalize_image,
    read_depth_npy,
    read_dynamic_colors,
    read_dynamic_mask,
    read_frame_index,
    read_gt_depth,
    read_image,
    read_intrinsics,
    read_motion_mask,
    read_poses,
    read_prior,
    read_scene_list,
    read_tum_trajectory,
    scene_dirs,
    write_dynamic_colors,
    write_frame_index,
    write_intrinsics,
    write_poses,
    write_scene_list,
    write_tum_trajectory,
)


def _png(path: Path, arr: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), arr)
    return path


# ---- headers, size limits, damage (docs/reliability.md) ------------------------------------
def _jpegs() -> dict[str, bytes]:
    """The JPEG variants encoders write: baseline, restart markers, progressive (OpenCV and
    Pillow, optimised tables), grey, with an EXIF segment."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    out = {"baseline": cv2.imencode(".jpg", rgb)[1].tobytes(),
           "restart": cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])[1].tobytes(),
           "progressive": cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
           .tobytes(),
           "grey": cv2.imencode(".jpg", rgb[:, :, 0])[1].tobytes()}
    for name, kwargs in {"pil_progressive": {"progressive": True, "optimize": True},
                         "pil_exif": {"exif": Image.Exif().tobytes()}}.items():
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", **kwargs)
        out[name] = buf.getvalue()
    return out


def test_image_header_gives_size_and_type_without_decoding(tmp_path: Path) -> None:
    for name, data in _jpegs().items():
        (tmp_path / f"{name}.jpg").write_bytes(data)
        header = image_header(tmp_path / f"{name}.jpg")
        assert (header.height, header.width, header.bit_depth) == (60, 80, 8), name
        assert header.channels == (1 if name == "grey" else 3)
    header = image_header(_png(tmp_path / "d.png", np.zeros((5, 7), np.uint16)))
    assert (header.format, header.height, header.width, header.bit_depth, header.channels) \
        == ("png", 5, 7, 16, 1)


def test_jpeg_damage_check_passes_every_encoder_and_finds_a_damaged_middle() -> None:
    for name, data in _jpegs().items():
        assert _jpeg_damage(data) is None, name
        damaged = bytearray(data)
        a = len(data) // 3
        damaged[a:a + 2048] = np.random.default_rng(1).integers(0, 256, 2048, np.uint8).tobytes()
        assert _jpeg_damage(bytes(damaged)) is not None, name


def test_prior_file_header_rules(tmp_path: Path) -> None:
    assert check_prior_file(_png(tmp_path / "a.png", np.ones((4, 6), np.uint16))) == (4, 6)
    np.save(tmp_path / "b.npy", np.ones((1, 4, 6), np.float32))
    assert check_prior_file(tmp_path / "b.npy") == (4, 6)
    with pytest.raises(DatasetError, match="single-channel"):
        check_prior_file(_png(tmp_path / "c.png", np.ones((4, 6, 3), np.uint8)))
    np.save(tmp_path / "d.npy", np.array(["a", "b"]))
    with pytest.raises(DatasetError, match="not numbers"):
        check_prior_file(tmp_path / "d.npy")


def test_text_files_with_a_byte_order_mark_and_others(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    for data in ("a\nb\n".encode("utf-8-sig"), "a\r\nb\r\n".encode("utf-16"),
                 codecs.BOM_UTF16_BE + "a\nb\n".encode("utf-16-be")):
        path.write_bytes(data)
        assert read_scene_list(path) == ["a", "b"]
    path.write_bytes("a\n".encode("utf-16-le"))  # no byte-order mark
    with pytest.raises(DatasetError, match="NUL characters"):
        read_scene_list(path)


def test_singular_intrinsics_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cam.txt"
    path.write_text("10 0 5\n0 10 4\n0 0 0\n")
    with pytest.raises(DatasetError, match="invertible"):
        read_intrinsics(path)


def test_list_frames_refuses_two_frames_of_one_name(tmp_path: Path) -> None:
    for name in ("000000.jpg", "000001.jpg", "000001.png"):
        _png(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    assert len(list_images(tmp_path)) == 3
    with pytest.raises(DatasetError, match="'000001'"):
        list_frames(tmp_path)


# ---- read_image ---------------------------------------------------------------------------
def test_read_image_colour_is_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[1, 2] = (10, 20, 200)  # OpenCV order: blue, green, red
    img = read_image(_png(tmp_path / "c.png", bgr))
    assert img.shape == (4, 5, 3) and img.dtype == np.float32
    np.testing.assert_array_equal(img[1, 2], [200, 20, 10])


def test_read_image_grey_becomes_three_channels(tmp_path: Path) -> None:
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    img = read_image(_png(tmp_path / "g.png", grey))
    assert img.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], grey.astype(np.float32))


def test_read_image_drops_alpha(tmp_path: Path) -> None:
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 1, 2, 3, 77
    img = read_image(_png(tmp_path / "a.png", bgra))
    assert img.shape == (3, 3, 3)
    np.testing.assert_array_equal(img[0, 0], [3, 2, 1])


def test_read_image_16_bit_scaled_to_255(tmp_path: Path) -> None:
    arr = np.array([[0, 257, 65535]], np.uint16)
    img = read_image(_png(tmp_path / "d.png", arr))
    np.testing.assert_allclose(img[0, :, 0], [0.0, 1.0, 255.0], atol=1e-4)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_read_image_truncated_file_is_an_error(tmp_path: Path, ext: str) -> None:
    good = tmp_path / f"good{ext}"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (32, 40, 3), np.uint8))
    data = good.read_bytes()
    bad = tmp_path / f"bad{ext}"
    bad.write_bytes(data[: len(data) // 2])
    assert read_image(good).shape == (32, 40, 3)
    with pytest.raises(DatasetError, match=re.escape(str(bad))):
        read_image(bad)


def test_read_image_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("nope.jpg")):
        read_image(tmp_path / "nope.jpg")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(DatasetError, match=re.escape("junk.png")):
        read_image(junk)


# ---- read_gt_depth ------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "scale"), [("nyu", 5000.0), ("bonn", 1000.0), ("tum", 1000.0)])
def test_read_gt_depth_png(tmp_path: Path, name: str, scale: float) -> None:
    raw = np.array([[0, 5000, 1000], [60000, 2500, 1]], np.uint16)
    depth = read_gt_depth(_png(tmp_path / "d.png", raw), name)
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    np.testing.assert_allclose(depth, raw.astype(np.float64) / scale, rtol=1e-6)
    assert depth[0, 0] == 0.0  # invalid stays 0


def test_read_gt_depth_png_must_be_16_bit(tmp_path: Path) -> None:
    path = _png(tmp_path / "d8.png", np.full((2, 2), 9, np.uint8))
    with pytest.raises(DatasetError, match="16-bit"):
        read_gt_depth(path, "nyu")


def test_read_gt_depth_kitti_sparse_npz(tmp_path: Path) -> None:
    dense = np.zeros((5, 7), np.float32)
    dense[1, 2], dense[4, 6] = 12.5, 80.25
    path = tmp_path / "gt.npz"
    scipy.sparse.save_npz(path, scipy.sparse.csr_matrix(dense))
    depth = read_gt_depth(path, "kitti")
    assert depth.dtype == np.float32
    np.testing.assert_array_equal(depth, dense)


def test_read_gt_depth_ddad_dense_npz_and_npy(tmp_path: Path) -> None:
    dense = np.array([[1.5, 0.0], [np.nan, 150.0]], np.float64)
    np.savez(tmp_path / "gt.npz", depth=dense, other=np.ones(3))
    np.save(tmp_path / "gt.npy", dense)
    expected = np.array([[1.5, 0.0], [0.0, 150.0]], np.float32)  # NaN -> 0 (invalid)
    for name in ("gt.npz", "gt.npy"):
        depth = read_gt_depth(tmp_path / name, "ddad")
        assert depth.dtype == np.float32
        np.testing.assert_array_equal(depth, expected)


def test_read_gt_depth_unknown_dataset_and_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "gt.npy"
    np.save(path, np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"'mars'.*kitti.*nyu.*ddad"):
        read_gt_depth(path, "mars")
    with pytest.raises(DatasetError, match=re.escape("gt.npy")):
        read_gt_depth(path, "nyu")  # nyu ground truth is PNG only
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(DatasetError, match=re.escape("broken.npz")):
        read_gt_depth(broken, "kitti")


# ---- read_prior ---------------------------------------------------------------------------
def test_read_prior_png_normalised_by_max(tmp_path: Path) -> None:
    raw = np.array([[0, 15000], [30000, 60000]], np.uint16)  # LeReS files peak at 60000
    prior = read_prior(_png(tmp_path / "p.png", raw))
    assert prior.dtype == np.float32
    np.testing.assert_allclose(prior, [[0.0, 0.25], [0.5, 1.0]])


def test_read_prior_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([[2.0, 4.0], [8.0, 0.0]], np.float32))
    np.testing.assert_allclose(read_prior(tmp_path / "p.npy"), [[0.25, 0.5], [1.0, 0.0]])
    with pytest.raises(DatasetError, match=r"p\.txt"):
        read_prior(tmp_path / "p.txt")


# ---- read_intrinsics ----------------------------------------------------------------------
def test_read_intrinsics(tmp_path: Path) -> None:
    path = tmp_path / "cam.txt"
    path.write_text("241.7 0 204.2\n0 246.3 59.4\n0 0 1\n")
    K = read_intrinsics(path)
    assert K.dtype == np.float32 and K.shape == (3, 3)
    np.testing.assert_allclose(K, [[241.7, 0, 204.2], [0, 246.3, 59.4], [0, 0, 1]], rtol=1e-6)


@pytest.mark.parametrize("text", ["1 0 2\n0 1 3\n0 0\n", "1 0 2\n0 1 3\n0 0 1 5\n",
                                  "a b c\n", "0 0 2\n0 1 3\n0 0 1\n", "5 0 2\n0 -1 3\n0 0 1\n"])
def test_read_intrinsics_malformed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cam.txt"
    path.write_text(text)
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        read_intrinsics(path)


def test_read_intrinsics_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("cam.txt")):
        read_intrinsics(tmp_path / "cam.txt")


# ---- list_images --------------------------------------------------------------------------
def test_list_images_sorted_case_insensitive(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.jpg", "c.JPEG", "cam.txt", "d.npy"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.JPEG"]
    with pytest.raises(DatasetError, match="missing"):
        list_images(tmp_path / "missing")


# ---- writers and readers are inverses ------------------------------------------------------
def test_intrinsics_round_trip(tmp_path: Path) -> None:
    K = np.array([[241.7, 0, 204.25], [0, 246.3, 59.4], [0, 0, 1]], np.float32)
    np.testing.assert_allclose(read_intrinsics(write_intrinsics(tmp_path / "cam.txt", K)), K)


def test_poses_round_trip_comments_and_errors(tmp_path: Path) -> None:
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, :3, 3] = [[0, 0, 0], [0.1, 0.2, 0.3], [1.0, -2.0, 3.5]]
    path = write_poses(tmp_path / "poses.txt", poses)
    np.testing.assert_allclose(read_poses(path), poses)
    path.write_text("# camera-to-world\n" + path.read_text() + "\n")
    assert read_poses(path).shape == (3, 4, 4)
    path.write_text("1 0 0 0 0 1 0 0 0 0 1 nan\n")
    with pytest.raises(DatasetError, match=r"poses\.txt:1: expected 12 finite"):
        read_poses(path)


def test_scene_list_round_trip_and_names_that_leave_the_dataset(tmp_path: Path) -> None:
    path = write_scene_list(tmp_path / "train.txt", ["a", "b"])
    path.write_text(path.read_text() + "# a comment\n\n")
    assert read_scene_list(path) == ["a", "b"]
    for name in ("../other", "/abs/scene", "a/b", ".."):
        path.write_text(f"a\n{name}\n")
        with pytest.raises(DatasetError, match=re.escape(f"train.txt:2: {name!r}")):
            read_scene_list(path)
    path.write_text("a\n")
    with pytest.raises(DatasetError, match="does not exist"):
        scene_dirs(tmp_path, "train.txt")


def test_frame_index_round_trip(tmp_path: Path) -> None:
    path = write_frame_index(tmp_path / "frame_index.txt", [0, 3, 7])
    assert read_frame_index(path, 8) == [0, 3, 7]
    with pytest.raises(DatasetError, match="out of range"):
        read_frame_index(path, 5)


def test_dynamic_colors_round_trip_comments_and_errors(tmp_path: Path) -> None:
    path = write_dynamic_colors(tmp_path / "dynamic_colors.txt", [(255, 0, 0), (0, 0, 255)])
    np.testing.assert_array_equal(read_dynamic_colors(path), [[255, 0, 0], [0, 0, 255]])
    path.write_text("# cars\n255, 0, 0\n\n0 0 255.0  # pedestrians\n")
    np.testing.assert_array_equal(read_dynamic_colors(path), [[255, 0, 0], [0, 0, 255]])
    for bad in ("255 0\n", "12.5 0 0\n", "256 0 0\n", "red 0 0\n"):
        path.write_text(bad)
        with pytest.raises(DatasetError, match=re.escape(f"{path}:1")):
            read_dynamic_colors(path)


def test_dynamic_mask_matches_colours_and_refuses_another_size(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0] = (255, 0, 0)
    rgb[1] = (0, 255, 0)
    rgb[2, :2] = (0, 0, 255)
    path = _png(tmp_path / "m.png", rgb[..., ::-1])
    mask = read_dynamic_mask(path, np.array([[255, 0, 0], [0, 0, 255]]), (4, 5))
    expected = np.zeros((4, 5), bool)
    expected[0] = True
    expected[2, :2] = True
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(DatasetError, match=r"m\.png is 4x5, its ground truth is 8x10"):
        read_dynamic_mask(path, np.array([[255, 0, 0]]), (8, 10))


def test_motion_mask_round_trip(tmp_path: Path) -> None:
    mask = np.zeros((3, 4), bool)
    mask[1, 2:] = True
    path = _png(tmp_path / "d.png", encode_motion_mask(mask))
    np.testing.assert_array_equal(read_motion_mask(path), mask.astype(np.float32))


def test_prior_round_trip_keeps_invalid_pixels(tmp_path: Path) -> None:
    depth = np.array([[0.0, 1.0], [2.0, 4.0]])
    encoded = encode_prior(depth)
    assert encoded.dtype == np.uint16 and encoded.max() == PRIOR_MAX and encoded[0, 0] == 0
    np.testing.assert_allclose(read_prior(_png(tmp_path / "p.png", encoded)),
                               depth / 4.0, atol=1e-4)
    assert not encode_prior(np.zeros((2, 2))).any()


@pytest.mark.parametrize(("name", "scale"), [("nyu", 5000.0), ("tum", 1000.0)])
def test_depth_png16_round_trip(tmp_path: Path, name: str, scale: float) -> None:
    depth = np.array([[0.0, 1.2345], [7.5, 100.0]], np.float32)  # 100 m saturates
    png = encode_depth_png16(depth, scale)
    assert png.dtype == np.uint16 and png[1, 1] == 65535
    read = read_gt_depth(_png(tmp_path / "gt.png", png), name)
    np.testing.assert_allclose(read[:, 0], depth[:, 0], atol=0.5 / scale)
    assert encode_depth_png16(np.array([[np.nan, -1.0]]), scale).tolist() == [[0, 0]]


def test_depth_npy_round_trip(tmp_path: Path) -> None:
    depth = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "x.npy"
    path.write_bytes(depth_npy_bytes(depth))
    np.testing.assert_array_equal(read_depth_npy(path), depth)
    np.save(path, depth[None])
    np.testing.assert_array_equal(read_depth_npy(path), depth)
    np.save(path, np.zeros((2, 2, 2)))
    with pytest.raises(DatasetError, match=r"x\.npy"):
        read_depth_npy(path)


def test_normalize_and_denormalize_image() -> None:
    img = np.array([[[0.0, 114.75, 255.0]]], np.float32)  # 0.45 * 255 = 114.75
    x = normalize_image(img)
    assert x.shape == (3, 1, 1)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([-2.0, 0.0, 0.55 / 0.225]))
    np.testing.assert_array_equal(denormalize_image(x), [[[0, 115, 255]]])  # rounded


def test_companion_files_by_stem_refuses_two_of_one_name(tmp_path: Path) -> None:
    for name in ("a.npy", "b.npz", "b.txt"):
        (tmp_path / name).write_bytes(b"")
    assert sorted(companion_files(tmp_path, (".npy", ".npz"))) == ["a", "b"]
    (tmp_path / "a.npz").write_bytes(b"")
    with pytest.raises(DatasetError, match="two files share the name 'a'"):
        companion_files(tmp_path, (".npy", ".npz"))
    assert companion_files(tmp_path / "missing", (".npy",)) == {}


def test_tum_trajectory_round_trip(tmp_path: Path) -> None:
    from scipy.spatial.transform import Rotation

    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, :3, :3] = Rotation.from_euler("xyz", [[0, 0, 0], [0.1, -0.2, 0.3],
                                                   [1.0, 0.5, -2.0]]).as_matrix()
    poses[:, :3, 3] = [[0, 0, 0], [1, 2, 3], [-0.5, 0.25, 8]]
    path = write_tum_trajectory(tmp_path / "t.tum", poses, [0.0, 0.1, 0.2])
    first = path.read_text().splitlines()[0].split()
    assert len(first) == 8 and first[-1] == "1.000000000"  # qw of the identity, last
    stamps, back = read_tum_trajectory(path)
    np.testing.assert_allclose(stamps, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(back, poses, atol=1e-8)
    path.write_text("0 1 2 3\n")
    with pytest.raises(DatasetError, match=r"t\.tum:1"):
        read_tum_trajectory(path)
