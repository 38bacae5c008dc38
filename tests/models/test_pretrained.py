"""Offline ImageNet weights: by path, from the torch hub cache, and clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
import torchvision

from models.depth_net import DepthNet
from models.pose_net import PoseNet
from models.rectify_net import RectifyNet
from models.resnet_encoder import (
    PretrainedWeightsError,
    ResnetEncoder,
    imagenet_weights_file,
    load_imagenet_state_dict,
)

R18_FILE = "resnet18-f37072fd.pth"
R50_FILE = "resnet50-0676ba61.pth"


@pytest.fixture(scope="module")
def fake_r18(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision ResNet-18 state dict with recognisable conv1 and layer weights."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.arange(64 * 3 * 7 * 7, dtype=torch.float32).reshape(
        64, 3, 7, 7) / 1000.0
    state["layer4.1.conv2.weight"].fill_(0.125)
    path = tmp_path_factory.mktemp("weights") / "my_resnet18.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch) -> Path:
    """An empty torch hub cache at tmp_path/hub; downloading is made impossible."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path / "hub"


def _check_six_channel_conv1(encoder: ResnetEncoder, state: dict[str, torch.Tensor]) -> None:
    w = state["conv1.weight"]
    expected = torch.cat([w, w], 1) / 2
    torch.testing.assert_close(encoder.encoder.conv1.weight.detach(), expected, rtol=0, atol=0)
    # Hand-computed: element [0, 3, 0, 0] is the copy of [0, 0, 0, 0] = 0, halved;
    # element [1, 5, 6, 6] is the copy of [1, 2, 6, 6] = (147 + 98 + 48) / 1000, halved.
    assert encoder.encoder.conv1.weight[1, 5, 6, 6].item() == pytest.approx(0.293 / 2)
    torch.testing.assert_close(encoder.encoder.layer4[1].conv2.weight.detach(),
                               state["layer4.1.conv2.weight"])


def test_hub_file_names(torch_home: Path) -> None:
    assert imagenet_weights_file(18) == torch_home / "checkpoints" / R18_FILE
    assert imagenet_weights_file(50) == torch_home / "checkpoints" / R50_FILE


def test_load_by_path(fake_r18, torch_home) -> None:
    path, state = fake_r18
    loaded = load_imagenet_state_dict(18, path)
    assert loaded.keys() == state.keys()
    torch.testing.assert_close(loaded["conv1.weight"], state["conv1.weight"])
    # str paths work too
    assert load_imagenet_state_dict(18, str(path)).keys() == state.keys()


def test_networks_load_by_path(fake_r18, torch_home) -> None:
    path, state = fake_r18
    depth = DepthNet(18, pretrained=True, weights_path=path)
    full = depth.encoder.encoder.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(full[key], value, rtol=0, atol=0)
    _check_six_channel_conv1(PoseNet(pretrained=True, weights_path=path).encoder, state)
    _check_six_channel_conv1(RectifyNet(pretrained=True, weights_path=path).encoder, state)


def test_networks_load_from_hub_cache(fake_r18, torch_home) -> None:
    path, state = fake_r18
    (torch_home / "checkpoints").mkdir(parents=True)
    (torch_home / "checkpoints" / R18_FILE).write_bytes(path.read_bytes())
    loaded = load_imagenet_state_dict(18)
    torch.testing.assert_close(loaded["conv1.weight"], state["conv1.weight"])
    _check_six_channel_conv1(PoseNet(pretrained=True).encoder, state)
    depth = DepthNet(18, pretrained=True)
    torch.testing.assert_close(depth.encoder.encoder.conv1.weight.detach(), state["conv1.weight"])


def test_six_channel_conv1_keeps_single_image_response(fake_r18, torch_home) -> None:
    # Why the weights are halved: a pair of identical images gives the ImageNet response.
    path, _ = fake_r18
    single = ResnetEncoder(18, 1, pretrained=True, weights_path=path).encoder.conv1
    pair = ResnetEncoder(18, 2, pretrained=True, weights_path=path).encoder.conv1
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(pair.double()(torch.cat([x, x], 1)), single.double()(x))


@pytest.mark.parametrize(("layers", "name"), [(18, R18_FILE), (50, R50_FILE)])
def test_missing_hub_file_says_what_to_put_where(torch_home, layers, name) -> None:
    with pytest.raises(PretrainedWeightsError) as info:
        load_imagenet_state_dict(layers)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(torch_home / "checkpoints" / name) in msg
    assert f"{name} (" in msg and f"into {torch_home / 'checkpoints'}" in msg
    assert "--encoder_weights FILE" in msg and "--no_pretrain" in msg


def test_network_with_missing_weights_raises(torch_home) -> None:
    with pytest.raises(PretrainedWeightsError, match=R18_FILE):
        PoseNet(pretrained=True)


def test_no_pretrain_needs_no_file(fake_r18, torch_home) -> None:
    _, state = fake_r18
    net = DepthNet(18, pretrained=False)  # the hub cache is empty: must not be read
    assert not torch.equal(net.encoder.encoder.conv1.weight, state["conv1.weight"])


def test_missing_weights_path(tmp_path, torch_home) -> None:
    missing = tmp_path / "nope" / "weights.pth"
    with pytest.raises(PretrainedWeightsError) as info:
        load_imagenet_state_dict(18, missing)
    assert str(missing) in str(info.value) and "--no_pretrain" in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_weights_file(tmp_path, torch_home) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint\nsecond line")
    with pytest.raises(PretrainedWeightsError, match=r"garbage\.pth") as info:
        load_imagenet_state_dict(18, garbage)
    assert "\n" not in str(info.value)


def test_weights_file_with_objects_is_refused(tmp_path, torch_home) -> None:
    # Either torch's weights_only unpickler refuses the object, or it loads and is then
    # rejected as not being a state dict of tensors: never used.
    path = tmp_path / "objects.pth"
    torch.save({"conv1.weight": argparse.Namespace(a=1)}, path)
    with pytest.raises(PretrainedWeightsError, match=r"objects\.pth"):
        load_imagenet_state_dict(18, path)


def test_wrong_state_dict_names_the_file(fake_r18, tmp_path, torch_home) -> None:
    _, state = fake_r18
    partial = {k: v for k, v in state.items() if not k.startswith("layer4")}
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    with pytest.raises(PretrainedWeightsError, match=r"partial\.pth.*ResNet-18"):
        ResnetEncoder(18, 2, pretrained=True, weights_path=path)
