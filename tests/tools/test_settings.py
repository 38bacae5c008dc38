"""Right by default: the tools take the model, the dataset and the input size from the
checkpoint; flags and --config still win, with a note when they differ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_tool, write_checkpoint

from tools.predictor import checkpoint_settings, resolve_settings
from utils.checkpoint import load_checkpoint
from utils.errors import UsageError

# Not the size of any dataset's entry: a default would show.
H, W = 48, 64


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A V3 checkpoint trained (here: initialised) at 48x64 on the synthetic dataset."""
    return write_checkpoint(tmp_path_factory.mktemp("small") / "v3.ckpt", model_version="v3",
                            dataset_name="synthetic", img_height=H, img_width=W)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "train.txt"
    path.write_text(f"dataset_name = synthetic\nmodel_version = v3\nimg_height = {H}\n"
                    f"img_width = {W}\nbatch_size = 2\nlr = 2e-4\n")
    return path


def test_settings_come_from_the_checkpoint(small_ckpt: Path) -> None:
    stored = checkpoint_settings(load_checkpoint(small_ckpt))
    assert stored == {"model_version": "v3", "resnet_layers": 18,
                      "dataset_name": "synthetic", "img_height": H, "img_width": W}
    settings = resolve_settings(stored, {})
    assert (settings.img_height, settings.img_width, settings.notes) == (H, W, ())
    given = resolve_settings(stored, {"img_height": 96, "dataset_name": "synthetic"})
    assert given.img_height == 96 and given.img_width == W
    assert given.notes == ("note: --img_height 96 differs from the checkpoint's 48; "
                           "using 96",)
    with pytest.raises(UsageError, match="ResNet-18"):
        resolve_settings(stored, {"resnet_layers": 50})


def test_a_checkpoint_without_settings_uses_kitti_with_a_note() -> None:
    settings = resolve_settings({"model_version": "v1", "resnet_layers": 18}, {})
    assert settings.dataset_name == "kitti" and (settings.img_height, settings.img_width) == (
        256, 832)
    assert "does not name its dataset" in settings.notes[0]


def test_test_py_without_config_gives_the_numbers_with_it(small_ckpt: Path, config: Path,
                                                         tiny_dataset: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    results = {}
    for name, extra in (("bare", []), ("config", ["--config", str(config)])):
        out = tmp_path / f"{name}.json"
        assert run_tool("test", ["--dataset_dir", str(tiny_dataset), "--ckpt_path",
                                 str(small_ckpt), "--device", "cpu", "--num_workers", "0",
                                 "--output_json", str(out), *extra]) == 0
        results[name] = json.loads(out.read_text())
    assert results["bare"] == results["config"]
    printed = capsys.readouterr().out
    assert f"dataset synthetic, input {H}x{W}" in printed and "note:" not in printed


def test_inference_and_export_use_the_checkpoint_size(small_ckpt: Path, tiny_dataset: Path,
                                                      tmp_path: Path) -> None:
    assert run_tool("inference", ["--input_dir", str(tiny_dataset / "testing" / "color"),
                                  "--output_dir", str(tmp_path / "out"), "--ckpt_path",
                                  str(small_ckpt), "--device", "cpu", "--save_depth"]) == 0
    depth = np.load(next((tmp_path / "out").glob("*.npy")))
    assert depth.shape == (H, W)  # network resolution: the checkpoint's, not kitti's
    assert run_tool("export", ["--ckpt_path", str(small_ckpt), "--output_dir",
                               str(tmp_path / "exp"), "--format", "torchscript"]) == 0
    info = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert info["input"]["shape"] == ["B", 3, H, W]


def test_a_flag_that_differs_is_used_with_a_note(small_ckpt: Path, tiny_dataset: Path,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tool("inference", ["--input_dir", str(tiny_dataset / "testing" / "color"),
                                  "--output_dir", str(tmp_path / "out"), "--ckpt_path",
                                  str(small_ckpt), "--device", "cpu", "--save_depth",
                                  "--img_height", "64", "--img_width", "80"]) == 0
    assert np.load(next((tmp_path / "out").glob("*.npy"))).shape == (64, 80)
    printed = capsys.readouterr().out
    assert "note: --img_height 64 differs from the checkpoint's 48; using 64" in printed


@pytest.fixture(scope="module")
def small_v2_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_checkpoint(tmp_path_factory.mktemp("small_v2") / "v2.ckpt",
                            model_version="v2", dataset_name="synthetic", img_height=H,
                            img_width=W)
    return path


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # five tools twice
@pytest.mark.parametrize("tool", ["inference", "eval_pose", "export", "generate_pseudo_depth",
                                  "eval_rectification"])
def test_every_tool_gives_without_config_what_it_gives_with_it(
        tool: str, small_ckpt: Path, small_v2_ckpt: Path, config: Path, tiny_dataset: Path,
        tmp_path: Path) -> None:
    import shutil

    results = {}
    for name, extra in (("bare", []), ("config", ["--config", str(config)])):
        out = tmp_path / name
        ckpt = ["--ckpt_path", str(small_ckpt)]
        if tool == "inference":
            argv = ["--input_dir", str(tiny_dataset / "testing" / "color"), "--output_dir",
                    str(out), "--device", "cpu", "--save_depth", "--save_vis"]
        elif tool == "eval_pose":
            argv = ["--dataset_dir", str(tiny_dataset), "--device", "cpu", "--output_json",
                    str(out / "pose.json"), "--output_dir", str(out / "traj")]
        elif tool == "export":
            argv = ["--output_dir", str(out), "--format", "torchscript"]
        elif tool == "generate_pseudo_depth":
            data = tmp_path / f"data_{name}"
            shutil.copytree(tiny_dataset, data)
            argv = ["--dataset_dir", str(data), "--backend", "checkpoint", "--device", "cpu",
                    "--output_subdir", "prior"]
        else:
            ckpt = ["--ckpt_path", str(small_v2_ckpt)]
            extra = [] if name == "bare" else ["--config", str(config)]
            argv = ["--dataset_dir", str(tiny_dataset), "--device", "cpu", "--output_json",
                    str(out / "rect.json")]
        assert run_tool(tool, [*argv, *ckpt, *extra]) == 0
        if tool == "generate_pseudo_depth":
            results[name] = {k: v for k, v in _outputs(data / "training").items()
                             if "/prior/" in k}
        elif tool == "export":
            results[name] = json.loads((out / "export.json").read_text())
        else:
            results[name] = _outputs(out)
    assert results["bare"] and results["bare"] == results["config"]
