"""generate_pseudo_depth.py: hub (a local hubconf through torch.hub) and checkpoint backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import cli

from datasets.formats import encode_prior, list_images, read_image, read_prior
from systems import build_model
from tools.predictor import Predictor
from tools.pseudo_depth import hub_input_size, to_depth
from utils.cli import run_main
from utils.errors import UsageError

gpd = cli("generate_pseudo_depth")

# A hub repository as torch.hub.load(..., source='local') reads it. The model ignores the
# image and outputs a disparity ramp, 1 at the left column to 2 at the right, [B,H,W]; it
# records the shape and per-channel range of what it was fed.
HUBCONF = '''
dependencies = ["torch"]

import json

import torch
from torch import nn


class RampDisparity(nn.Module):
    def __init__(self, record):
        super().__init__()
        self.record = record
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        B, _, H, W = x.shape
        with open(self.record, "w") as f:
            json.dump({"shape": list(x.shape), "min": x.amin(dim=(0, 2, 3)).tolist(),
                       "max": x.amax(dim=(0, 2, 3)).tolist()}, f)
        ramp = torch.linspace(1.0, 2.0, W, device=x.device).expand(B, H, W)
        return ramp + self.bias


def ramp_disparity(**kwargs):
    return RampDisparity(RECORD)
'''


@pytest.fixture()
def dataset(tiny_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset's training/ without its priors."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset / "training", root / "training")
    for prior_dir in (root / "training").glob("*/leres_depth"):
        shutil.rmtree(prior_dir)
    return root


@pytest.fixture()
def hub_dir(tmp_path: Path) -> Path:
    repo = tmp_path / "hubrepo"
    repo.mkdir()
    record = tmp_path / "hub_input.json"
    (repo / "hubconf.py").write_text(HUBCONF.replace("RECORD", repr(str(record))))
    return repo


def scene_frames(root: Path) -> dict[Path, list[Path]]:
    training = root / "training"
    names = [n for f in ("train.txt", "val.txt")
             for n in (training / f).read_text().split()]
    return {training / n: list_images(training / n) for n in names}


def read_png16(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.dtype == np.uint16 and img.ndim == 2, path
    return img


def hub_args(dataset: Path, hub_dir: Path, *extra: str) -> list[str]:
    return ["--dataset_dir", str(dataset), "--backend", "hub", "--hub_dir", str(hub_dir),
            "--hub_model", "ramp_disparity", "--hub_input_size", "32",
            "--hub_multiple_of", "8", "--device", "cpu", *extra]


def exit_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI as a script; assert exit status 2 and one error line; return it."""
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: gpd.main(argv), gpd.PROG)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"{gpd.PROG}: error: ")
    return err


# ------------------------------------------------------------------------- pure functions
def test_to_depth_inverts_disparity_with_a_relative_floor() -> None:
    disp = np.array([[1.0, 2.0], [4.0, 0.0]])
    # floor 0.01 · 4 = 0.04: the zero disparity becomes the farthest depth, 1/0.04 = 25
    np.testing.assert_allclose(to_depth(disp, "disparity", 0.01), [[1.0, 0.5], [0.25, 25.0]])
    # non-finite outputs are invalid (0); negative disparities are floored, not invalid
    out = to_depth(np.array([np.nan, -3.0, 2.0]), "disparity", 0.1)
    np.testing.assert_allclose(out, [0.0, 5.0, 0.5])
    assert not to_depth(np.array([-1.0, 0.0]), "disparity", 0.01).any()
    np.testing.assert_allclose(to_depth(np.array([2.0, -1.0, np.inf]), "depth", 0.01),
                               [2.0, 0.0, 0.0])


def test_encode_prior_max_60000_and_keeps_valid_pixels_valid() -> None:
    depth = np.array([[1.0, 0.5], [0.25, 25.0]])
    np.testing.assert_array_equal(encode_prior(depth), [[2400, 1200], [600, 60000]])
    tiny = encode_prior(np.array([1e-9, 0.0, 1.0]))
    np.testing.assert_array_equal(tiny, [1, 0, 60000])  # 0 stays "invalid", tiny stays valid
    assert encode_prior(np.zeros((2, 3))).dtype == np.uint16
    assert not encode_prior(np.zeros((2, 3))).any()


def test_hub_input_size_keeps_aspect_and_multiple() -> None:
    assert hub_input_size(64, 80, 32, 8) == (32, 40)
    assert hub_input_size(64, 80, 32, 16) == (32, 48)  # 2.5 multiples round up
    assert hub_input_size(480, 640, 384, 32) == (384, 512)
    assert hub_input_size(256, 832, 518, 14) == (518, 1680)
    assert hub_input_size(10, 10, 4, 32) == (32, 32)


# ------------------------------------------------------------------------------ hub backend
def test_hub_backend_through_torch_hub_local(dataset: Path, hub_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert gpd.main(hub_args(dataset, hub_dir)) == 0
    frames = scene_frames(dataset)
    total = 0
    for scene, images in frames.items():
        outputs = sorted((scene / "leres_depth").iterdir())
        assert [p.name for p in outputs] == [f"{f.stem}.png" for f in images]  # no temp files
        for frame, out in zip(images, outputs):
            png = read_png16(out)
            assert png.shape == read_image(frame).shape[:2]
            assert png.max() == 60000
            # disparity 1 (left) .. 2 (right) -> depth 1 .. 1/2: max at the left column
            assert (png[:, 0] == 60000).all() and (png[:, -1] == 30000).all()
            assert (np.diff(png.astype(np.int64), axis=1) <= 0).all()
            assert read_prior(out).max() == 1.0
            total += 1
    assert f"wrote {total} priors" in capsys.readouterr().out
    # the network saw the --hub_input_size shape, normalised with ImageNet's mean/std
    record = json.loads((tmp_path / "hub_input.json").read_text())
    assert record["shape"][1:] == [3, 32, 40]
    mean, std = np.array(gpd.IMAGENET_CHANNEL_MEAN), np.array(gpd.IMAGENET_CHANNEL_STD)
    assert (np.array(record["min"]) * std + mean >= -1e-5).all()
    assert (np.array(record["max"]) * std + mean <= 1 + 1e-5).all()
    assert min(record["min"]) < 0  # normalised, not raw [0, 1]


def test_hub_depth_output_kind_and_input_size(dataset: Path, hub_dir: Path,
                                              tmp_path: Path) -> None:
    assert gpd.main(hub_args(dataset, hub_dir, "--output_kind", "depth", "--img_height", "48",
                             "--img_width", "64", "--hub_mean", "0.5", "--hub_std", "0.5",
                             "--output_subdir", "dpt", "--infer_batch_size", "2")) == 0
    record = json.loads((tmp_path / "hub_input.json").read_text())
    assert record["shape"][1:] == [3, 48, 64]
    assert min(record["min"]) >= -1 - 1e-5 and max(record["max"]) <= 1 + 1e-5
    scene, images = next(iter(scene_frames(dataset).items()))
    png = read_png16(scene / "dpt" / f"{images[0].stem}.png")
    # the output taken as depth: the farthest is now the right column
    assert (png[:, -1] == 60000).all() and (png[:, 0] == 30000).all()
    assert not (scene / "leres_depth").exists()


def test_skip_existing(dataset: Path, hub_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpd.main(hub_args(dataset, hub_dir)) == 0
    scene, images = next(iter(scene_frames(dataset).items()))
    kept = scene / "leres_depth" / f"{images[0].stem}.png"
    cv2.imwrite(str(kept), np.full((4, 4), 7, np.uint16))  # a marker the rerun must keep
    removed = scene / "leres_depth" / f"{images[1].stem}.png"
    removed.unlink()
    capsys.readouterr()
    assert gpd.main(hub_args(dataset, hub_dir, "--skip_existing")) == 0
    assert "wrote 1 priors" in capsys.readouterr().out
    assert read_png16(kept).max() == 7 and read_png16(removed).max() == 60000
    assert gpd.main(hub_args(dataset, hub_dir, "--skip_existing")) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert gpd.main(hub_args(dataset, hub_dir)) == 0  # without the flag it overwrites
    assert read_png16(kept).max() == 60000


def test_unreadable_frames_are_listed_the_others_written(
        dataset: Path, hub_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene, images = next(iter(scene_frames(dataset).items()))
    images[2].write_bytes(images[2].read_bytes()[:200])  # cut short
    stale = scene / "leres_depth" / f".{images[0].stem}.png.x1y2z3w4.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"half a prior")  # a killed run's
    assert gpd.main(hub_args(dataset, hub_dir)) == 1
    err = capsys.readouterr().err
    assert "1 frames could not be read" in err and str(images[2]) in err
    written = sorted(p.name for p in (scene / "leres_depth").iterdir())
    assert written == [f"{f.stem}.png" for f in images if f != images[2]]


# ----------------------------------------------------------------------- checkpoint backend
def test_checkpoint_backend_matches_the_network(dataset: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    hp = {"model_version": "v1", "no_pretrain": True, "img_height": 64, "img_width": 80,
          "dataset_name": "synthetic"}
    model = build_model(hp).eval()
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp}, ckpt)
    assert gpd.main(["--dataset_dir", str(dataset), "--backend", "checkpoint",
                     "--ckpt_path", str(ckpt), "--device", "cpu"]) == 0

    frames = scene_frames(dataset)
    for scene, images in frames.items():
        assert sorted(p.name for p in (scene / "leres_depth").iterdir()) == \
            [f"{f.stem}.png" for f in images]
    scene, images = next(iter(frames.items()))
    # the frames are 64×80 already: the checkpoint's depth as the Predictor gives it
    (depth,) = Predictor.from_checkpoint(ckpt, "cpu").predict([read_image(images[0])])
    expected = encode_prior(depth.astype(np.float64))
    got = read_png16(scene / "leres_depth" / f"{images[0].stem}.png")
    assert got.max() == 60000
    assert np.abs(got.astype(np.int64) - expected).max() <= 1  # float rounding only


def test_checkpoint_backend_resizes_to_its_training_size(dataset: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    hp = {"model_version": "v1", "no_pretrain": True, "img_height": 48, "img_width": 64}
    model = build_model(hp).eval()
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp}, ckpt)
    assert gpd.main(["--dataset_dir", str(dataset), "--backend", "checkpoint",
                     "--ckpt_path", str(ckpt), "--device", "cpu"]) == 0
    scene, images = next(iter(scene_frames(dataset).items()))
    predictor = Predictor.from_checkpoint(ckpt, "cpu")
    assert (predictor.height, predictor.width) == (48, 64)
    (depth,) = predictor.predict([read_image(images[0])])  # back at the frame's 64×80
    got = read_png16(scene / "leres_depth" / f"{images[0].stem}.png")
    assert got.shape == (64, 80)
    assert np.abs(got.astype(np.int64) - encode_prior(depth.astype(np.float64))).max() <= 1


# ------------------------------------------------------------------------------ user errors
def test_user_errors_are_one_line(dataset: Path, hub_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert "dataset folder not found" in exit_line(
        hub_args(tmp_path / "missing", hub_dir), capsys)
    assert "no hubconf.py" in exit_line(hub_args(dataset, tmp_path), capsys)
    assert "cannot load hub model 'nope'" in exit_line(
        hub_args(dataset, hub_dir, "--hub_model", "nope"), capsys)
    assert "--ckpt_path" in exit_line(
        ["--dataset_dir", str(dataset), "--backend", "checkpoint"], capsys)
    assert "--backend" in exit_line(["--dataset_dir", str(dataset)], capsys)
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in exit_line(hub_args(dataset, hub_dir, "--device", "cuda"),
                                             capsys)
    assert "one value or three" in exit_line(
        hub_args(dataset, hub_dir, "--hub_mean", "0.5", "0.5"), capsys)
    assert "both --img_height and --img_width" in exit_line(
        hub_args(dataset, hub_dir, "--img_height", "64"), capsys)
    with pytest.raises(UsageError, match="min_disparity_ratio"):
        gpd.main(hub_args(dataset, hub_dir, "--min_disparity_ratio", "0"))
    assert not list((dataset / "training").glob("*/leres_depth"))  # nothing half-done


def test_config_file_and_help(dataset: Path, hub_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "prior.txt"
    config.write_text(f"backend = hub\nhub_dir = {hub_dir}\nhub_model = ramp_disparity\n"
                      "hub_input_size = 32\nhub_multiple_of = 8\ndevice = cpu\n"
                      "output_subdir = from_config\n")
    assert gpd.main(["--config", str(config), "--dataset_dir", str(dataset)]) == 0
    assert list((dataset / "training").glob("*/from_config/*.png"))
    with pytest.raises(SystemExit) as exc:
        gpd.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for action in gpd.build_parser()._actions:
        assert action.help, action.dest
    assert "--hub_dir" in text and "--skip_existing" in text
