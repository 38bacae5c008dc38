"""Checkpoints in the layout released for the public SC-Depth code load strictly and work in
every tool; a checkpoint that pickles anything else is refused without being unpickled.

The published files are Lightning `.ckpt` dictionaries: `state_dict` with `depth_net.*`,
`pose_net.*` (and `rectify_net.*` for V2) exactly as in tests/fixtures/state_dict_keys.txt,
`hyper_parameters` as a pickled `argparse.Namespace`, plus Lightning's bookkeeping keys.
"""

from __future__ import annotations

import argparse
import ast
import math
import pickle
from pathlib import Path

import pytest
import torch
from helpers import ROOT, cli

from models.depth_net import DepthNet
from models.pose_net import PoseNet
from systems import load_from_checkpoint
from utils.checkpoint import CheckpointError
from utils.cli import run_main

eval_pose = cli("eval_pose")
inference = cli("inference")
test_cli = cli("test")

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "state_dict_keys.txt"
SIZE = ["--img_height", "48", "--img_width", "64", "--device", "cpu"]


def fixture_shapes(resnet_layers: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the public state dict for a DepthNet encoder depth (the fixture's
    ResNet-50 section lists DepthNet only: PoseNet and ARN are always ResNet-18)."""
    shapes: dict[int, dict[str, tuple[int, ...]]] = {}
    section = None
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("# resnet_layers ="):
            section = int(line.split("=")[1])
            shapes[section] = {}
        elif line.strip():
            name, shape = line.split(" ", 1)
            shapes[section][name] = tuple(ast.literal_eval(shape))
    depth = {k: v for k, v in shapes[resnet_layers].items() if k.startswith("depth_net.")}
    return depth | {k: v for k, v in shapes[18].items() if not k.startswith("depth_net.")}


def published_state_dict(resnet_layers: int, prefixes: tuple[str, ...], seed: int = 0,
                         ) -> dict[str, torch.Tensor]:
    """Random weights of plausible magnitude for exactly the fixture's keys."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in fixture_shapes(resnet_layers).items():
        if not name.startswith(prefixes):
            continue
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000, dtype=torch.int64)
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=gen)
        elif name.endswith("running_mean") or name.endswith("bias"):
            state[name] = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:  # batch-norm weight
            state[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:  # convolution / linear: He initialisation keeps activations in range
            fan_in = math.prod(shape[1:])
            state[name] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return state


def write_published(path: Path, version: str, resnet_layers: int, **hparams) -> Path:
    prefixes = ("depth_net.", "pose_net.") + (("rectify_net.",) if version == "v2" else ())
    state = published_state_dict(resnet_layers, prefixes)
    hp = argparse.Namespace(config=f"configs/{version}/kitti.txt", dataset_dir="/data/kitti",
                            dataset_name="kitti", sequence_length=3, skip_frames=1,
                            model_version=version, resnet_layers=resnet_layers,
                            photo_weight=1.0, geometry_weight=0.1, smooth_weight=0.1,
                            batch_size=4, lr=1e-4, exp_name="kitti_scv1", **hparams)
    exp_avg = {0: {"step": torch.tensor(10.0), "exp_avg": torch.zeros(3),
                   "exp_avg_sq": torch.zeros(3)}}
    torch.save({
        "epoch": 99, "global_step": 100000, "pytorch-lightning_version": "1.9.0",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"current": {"ready": 99}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
            "best_model_score": torch.tensor(0.119), "best_model_path": "/ckpts/best.ckpt",
            "monitor": "val_loss"}},
        "optimizer_states": [{"state": exp_avg, "param_groups": [
            {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
             "amsgrad": False, "params": [0]}]}],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": hp,
    }, path)
    return path


@pytest.fixture(scope="module")
def published_v1(tmp_path_factory) -> Path:
    return write_published(tmp_path_factory.mktemp("published") / "kitti_scv1.ckpt", "v1", 18)


def test_the_file_really_needs_the_namespace(published_v1):
    """PyTorch's default weights_only loading refuses it: the allow-list is what loads it."""
    with pytest.raises(pickle.UnpicklingError):
        torch.load(published_v1, weights_only=True)


def test_v1_loads_strictly_and_gives_the_public_networks_outputs(published_v1):
    model = load_from_checkpoint(str(published_v1))
    keys = {k for k in fixture_shapes(18) if k.startswith(("depth_net.", "pose_net."))}
    assert set(model.state_dict()) == keys
    assert model.hparams["model_version"] == "v1" and model.hparams["dataset_name"] == "kitti"
    state = torch.load(published_v1, weights_only=False)["state_dict"]
    depth_net, pose_net = DepthNet(18), PoseNet()
    depth_net.load_state_dict({k[10:]: v for k, v in state.items()
                               if k.startswith("depth_net.")}, strict=True)
    pose_net.load_state_dict({k[9:]: v for k, v in state.items()
                              if k.startswith("pose_net.")}, strict=True)
    depth_net.eval(), pose_net.eval()
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 3, 48, 64, generator=gen), torch.randn(2, 3, 48, 64, generator=gen)
    # Not bit-exact: our system runs the networks in channels_last memory format, whose
    # convolution kernels sum in another order (float32 differences of ~1e-5 relative).
    with torch.no_grad():
        depth = model(a)
        torch.testing.assert_close(depth, depth_net(a), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(model.pose_net(a, b), pose_net(a, b), rtol=1e-4, atol=1e-6)
    assert depth.std() > 0  # a non-trivial output, not a saturated constant


def test_v1_resnet50_published_layout_loads(tmp_path):
    # The options do not say ResNet-50: the architecture is read from the weights.
    path = tmp_path / "kitti_scv1_r50.ckpt"
    write_published(path, "v1", 50)
    ckpt = torch.load(path, weights_only=False)
    ckpt["hyper_parameters"].resnet_layers = 18
    del ckpt["hyper_parameters"].model_version
    torch.save(ckpt, path)
    model = load_from_checkpoint(str(path))
    assert model.hparams["resnet_layers"] == 50 and model.hparams["model_version"] == "v1"
    with torch.no_grad():
        depth = model(torch.randn(1, 3, 48, 64))
    assert depth.shape == (1, 1, 48, 64) and torch.isfinite(depth).all()


def test_v2_published_layout_loads(tmp_path):
    path = write_published(tmp_path / "nyu_scv2.ckpt", "v2", 18)
    model = load_from_checkpoint(str(path))
    assert set(model.state_dict()) == set(fixture_shapes(18))
    assert type(model).__name__ == "SCDepthV2"


@pytest.mark.slow  # three tools end to end
def test_published_checkpoint_works_in_every_tool(published_v1, dataset, tmp_path, capsys):
    assert test_cli.main(["--dataset_dir", str(dataset), "--dataset_name", "synthetic",
                          "--ckpt_path", str(published_v1), "--num_workers", "0", *SIZE]) == 0
    assert "abs_rel" in capsys.readouterr().out
    out = tmp_path / "inference"
    assert inference.main(["--input_dir", str(dataset / "testing" / "color"), "--output_dir",
                           str(out), "--ckpt_path", str(published_v1), "--save-depth",
                           *SIZE]) == 0
    assert len(list(out.glob("*.npy"))) == 6
    assert eval_pose.main(["--dataset_dir", str(dataset), "--dataset_name", "synthetic",
                           "--ckpt_path", str(published_v1), *SIZE]) == 0
    assert "zero motion" in capsys.readouterr().out


CALLED: list[str] = []


def _side_effect(message: str) -> str:
    CALLED.append(message)
    return message


class NotAllowed:
    """A class outside the allow-list whose unpickling would run code (it must not)."""

    def __reduce__(self):
        return (_side_effect, ("unpickled!",))


def test_checkpoint_with_another_class_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes((ROOT / "demo" / "input" / "00.jpg").read_bytes())
    torch.save({"state_dict": published_state_dict(18, ("depth_net.", "pose_net.")),
                "hyper_parameters": NotAllowed()}, path)
    with pytest.raises(CheckpointError) as info:
        load_from_checkpoint(str(path))
    message = str(info.value)
    assert "refused" in message and "\n" not in message
    assert CALLED == []
    # Through a tool: one line on stderr, exit code 2, nothing unpickled.
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main(["--input_dir", str(tmp_path / "in"), "--output_dir",
                                         str(tmp_path / "o"), "--ckpt_path", str(path),
                                         "--save-depth", *SIZE]), "inference.py")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("inference.py: error: refused") and "\n" not in err
    assert CALLED == []
