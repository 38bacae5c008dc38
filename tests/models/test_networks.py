"""Networks: state-dict layout, shapes, ranges, hand-computed outputs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.depth_net import DepthNet, saturated
from models.pose_net import PoseNet
from models.rectify_net import RectifyNet
from models.resnet_encoder import ResnetEncoder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state_dict_keys.txt"


def parse_reference_keys(path: Path) -> dict[int, dict[str, tuple[int, ...]]]:
    """``{resnet_layers: {key: shape}}`` from the fixture; repeated headers are merged."""
    sections: dict[int, dict[str, tuple[int, ...]]] = {}
    current: dict[str, tuple[int, ...]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            _, _, value = line.partition("=")
            current = sections.setdefault(int(value), {})
            continue
        key, _, shape = line.partition(" ")
        assert current is not None, f"key before any header: {line}"
        current[key] = tuple(ast.literal_eval(shape.strip()))
    return sections


def shapes(module: nn.Module, prefix: str) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


def subset(ref: dict[str, tuple[int, ...]], prefix: str) -> dict[str, tuple[int, ...]]:
    return {k: v for k, v in ref.items() if k.startswith(prefix + ".")}


@pytest.fixture(scope="module")
def reference() -> dict[int, dict[str, tuple[int, ...]]]:
    sections = parse_reference_keys(FIXTURE)
    assert len(subset(sections[18], "depth_net")) > 100
    assert len(subset(sections[50], "depth_net")) > 300
    return sections


@pytest.fixture(scope="module")
def depth_net() -> DepthNet:
    torch.manual_seed(0)
    return DepthNet(18).eval()


@pytest.fixture(scope="module")
def pose_net() -> PoseNet:
    torch.manual_seed(0)
    return PoseNet().eval()


@pytest.fixture(scope="module")
def rectify_net() -> RectifyNet:
    torch.manual_seed(0)
    return RectifyNet().eval()


def test_parser_merges_repeated_and_empty_sections(tmp_path: Path) -> None:
    f = tmp_path / "keys.txt"
    f.write_text("# resnet_layers = 18\na.b (2, 3)\nc ()\n# resnet_layers = 50\nd (4,)\n"
                 "\n# resnet_layers = 18\ne (1,)\n# resnet_layers = 50\n")
    assert parse_reference_keys(f) == {18: {"a.b": (2, 3), "c": (), "e": (1,)}, 50: {"d": (4,)}}


def test_state_dict_layout_resnet18(reference, depth_net, pose_net, rectify_net) -> None:
    ref = reference[18]
    assert shapes(depth_net, "depth_net") == subset(ref, "depth_net")
    assert shapes(pose_net, "pose_net") == subset(ref, "pose_net")
    assert shapes(rectify_net, "rectify_net") == subset(ref, "rectify_net")


def test_depth_net_resnet50_layout_and_forward(reference) -> None:
    # The only ResNet-50 construction in the suite (it is the slow one).
    net = DepthNet(50).eval()
    assert shapes(net, "depth_net") == subset(reference[50], "depth_net")
    assert list(net.encoder.num_ch_enc) == [64, 256, 512, 1024, 2048]
    with torch.no_grad():
        depth = net(torch.randn(1, 3, 64, 64))
    assert depth.shape == (1, 1, 64, 64)
    assert torch.isfinite(depth).all()


def test_pose_nets_always_resnet18(reference) -> None:
    for prefix in ("pose_net", "rectify_net"):
        for key, shape in subset(reference[50], prefix).items():
            assert reference[18][key] == shape


@pytest.mark.parametrize("size", [(64, 64), (64, 96), (72, 100), (65, 97), (33, 40)])
def test_depth_shape_and_range(depth_net, size) -> None:
    H, W = size
    with torch.no_grad():
        depth = depth_net(torch.randn(2, 3, H, W))
    assert depth.shape == (2, 1, H, W)
    assert depth.dtype == torch.float32
    assert (depth > 0.1).all() and (depth <= 100).all()


def test_depth_too_small_input_is_a_clear_error(depth_net) -> None:
    with pytest.raises(ValueError, match="at least 33"):
        depth_net(torch.randn(1, 3, 32, 64))


def test_encoder_features_match_resnet_stages(depth_net) -> None:
    x = torch.randn(2, 3, 64, 96)
    enc = depth_net.encoder
    with torch.no_grad():
        feats = enc(x)
        r = enc.encoder
        # No normalisation inside: feature 0 is exactly relu(bn1(conv1(x))) of the raw input.
        f0 = r.relu(r.bn1(r.conv1(x)))
        f4 = r.layer4(r.layer3(r.layer2(r.layer1(r.maxpool(f0)))))
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 32, 48), (2, 64, 16, 24), (2, 128, 8, 12), (2, 256, 4, 6), (2, 512, 2, 3)]
    torch.testing.assert_close(feats[0], f0)
    torch.testing.assert_close(feats[4], f4)


def test_multi_image_encoder_takes_stacked_channels() -> None:
    enc = ResnetEncoder(18, num_input_images=2)
    assert enc.encoder.conv1.weight.shape == (64, 6, 7, 7)
    with pytest.raises(ValueError, match="resnet_layers"):
        ResnetEncoder(19)


def test_depth_head_hand_computed() -> None:
    # With the last head zeroed, disp = 10 * sigmoid(0) + 0.01 = 5.01 everywhere.
    net = DepthNet(18).eval()
    with torch.no_grad():
        net.decoder.dispconvs[0].conv.weight.zero_()
        net.decoder.dispconvs[0].conv.bias.zero_()
        depth = net(torch.randn(1, 3, 64, 64))
    torch.testing.assert_close(depth, torch.full((1, 1, 64, 64), 1 / 5.01))
    # A large bias saturates the sigmoid: depth -> 1/10.01 (the lower bound), and a very
    # negative one gives 1/0.01 = 100 (the upper bound).
    with torch.no_grad():
        net.decoder.dispconvs[0].conv.bias.fill_(50.0)
        near = net(torch.randn(1, 3, 64, 64))
        net.decoder.dispconvs[0].conv.bias.fill_(-50.0)
        far = net(torch.randn(1, 3, 64, 64))
    torch.testing.assert_close(near, torch.full_like(near, 1 / 10.01))
    torch.testing.assert_close(far, torch.full_like(far, 100.0))


def test_saturated_hand_computed() -> None:
    # sigmoid s = (1/depth − 0.01) / 10: the floor 1/10.01 and the ceiling 100 are s = 1 and
    # s = 0; 1 m is s = 0.099; s = 1 − 2e-4 and s = 2e-4 are inside tol 1e-4, s = 1 − 5e-5
    # and s = 5e-5 beyond it.
    def depth(s: float) -> float:
        return 1.0 / (0.01 + 10.0 * s)

    values = torch.tensor([depth(1.0), depth(0.0), 1.0, depth(1 - 2e-4), depth(2e-4),
                           depth(1 - 5e-5), depth(5e-5)], dtype=torch.float64)
    assert saturated(values).tolist() == [True, True, False, False, False, True, True]
    assert saturated(values, tol=1e-3)[3:].all()
    # the heads of the test above: both ends of a saturated network, none of a fresh one
    net = DepthNet(18).eval()
    with torch.no_grad():
        assert not saturated(net(torch.randn(1, 3, 64, 64))).any()
        net.decoder.dispconvs[0].conv.bias.fill_(50.0)
        assert saturated(net(torch.randn(1, 3, 64, 64))).all()


def test_depth_gradients_reach_used_parameters_only() -> None:
    net = DepthNet(18).train()
    net(torch.randn(2, 3, 64, 64)).mean().backward()
    for name, p in net.named_parameters():
        unused = name.startswith(("decoder.dispconvs.1", "decoder.dispconvs.2",
                                  "decoder.dispconvs.3", "encoder.encoder.fc"))
        if unused:
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("batch", [1, 3])
def test_pose_and_rectify_shapes(pose_net, rectify_net, batch) -> None:
    a, b = torch.randn(batch, 3, 64, 64), torch.randn(batch, 3, 64, 64)
    with torch.no_grad():
        pose = pose_net(a, b)
        rot = rectify_net(a, b)
    assert pose.shape == (batch, 6)
    assert rot.shape == (batch, 3)
    assert torch.isfinite(pose).all() and torch.isfinite(rot).all()
    # Small motion at initialisation, thanks to the 0.01 factor.
    assert pose.abs().max() < 0.1


def _zero_last_layer(net: nn.Module, bias: torch.Tensor) -> None:
    last = net.decoder.convs_pose[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(bias)


def test_pose_scale_hand_computed() -> None:
    net = PoseNet().eval()
    bias = torch.tensor([1.0, -2.0, 3.0, 0.5, -0.25, 4.0])
    _zero_last_layer(net, bias)
    with torch.no_grad():
        pose = net(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(pose, 0.01 * bias.expand(2, 6))


def test_rectify_has_no_scale_hand_computed() -> None:
    net = RectifyNet().eval()
    bias = torch.tensor([0.3, -0.2, 0.1])
    _zero_last_layer(net, bias)
    with torch.no_grad():
        rot = net(torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32))
    torch.testing.assert_close(rot, bias.expand(3, 3))


def _capture_encoder_input(net: nn.Module, monkeypatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    original = net.encoder.forward

    def spy(x: torch.Tensor) -> list[torch.Tensor]:
        seen.append(x)
        return original(x)

    monkeypatch.setattr(net.encoder, "forward", spy)
    return seen


def test_pose_net_stacks_target_first(pose_net, monkeypatch) -> None:
    seen = _capture_encoder_input(pose_net, monkeypatch)
    tgt, ref = torch.randn(2, 3, 32, 48), torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        forward = pose_net(tgt, ref)
        backward = pose_net(ref, tgt)
    assert torch.equal(seen[0], torch.cat([tgt, ref], 1))
    # Two separate predictions, not mirror images of each other.
    assert not torch.allclose(forward, backward)


def test_rectify_net_halves_resolution(rectify_net, monkeypatch) -> None:
    seen = _capture_encoder_input(rectify_net, monkeypatch)
    a, b = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        rectify_net(a, b)
    expected = F.interpolate(torch.cat([a, b], 1), size=(32, 48), mode="bilinear",
                             align_corners=True)
    assert seen[0].shape == (1, 6, 32, 48)
    torch.testing.assert_close(seen[0], expected)
    # align_corners=True keeps the corner pixels exactly.
    torch.testing.assert_close(seen[0][0, :3, 0, 0], a[0, :, 0, 0])
    torch.testing.assert_close(seen[0][0, 3:, -1, -1], b[0, :, -1, -1])


def test_depth_state_dict_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = DepthNet(18)
    # Make the BN statistics non-trivial so that they are part of what must round-trip.
    with torch.no_grad():
        src.train()(torch.randn(2, 3, 64, 64))
    src.eval()
    path = tmp_path / "depth.pt"
    torch.save(src.state_dict(), path)
    torch.manual_seed(2)
    dst = DepthNet(18).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(src(x), dst(x))
        dst.load_state_dict(torch.load(path, weights_only=True), strict=True)
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


def test_elu_equals_torch_elu_and_its_gradient_float64() -> None:
    from models.depth_net import ELU, elu

    x = torch.tensor([-30.0, -2.0, -1e-3, 0.0, 1e-3, 0.5, 3.0], dtype=torch.float64)
    assert torch.allclose(elu(x), F.elu(x), atol=1e-15, rtol=0)
    # the custom backward (ELU's derivative from the output) against finite differences,
    # and against autograd of F.elu away from the kink
    xg = torch.linspace(-3, 3, 14, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(ELU(), (xg,))
    ELU()(xg).sum().backward()
    expected = torch.where(xg > 0, torch.ones_like(xg), xg.exp()).detach()
    assert torch.allclose(xg.grad, expected, atol=1e-12)


def test_elu_keeps_dtype_and_trains_in_place_of_nn_elu() -> None:
    from models.depth_net import ELU

    x = torch.randn(2, 4, 5, 6).bfloat16()
    assert ELU()(x).dtype == torch.bfloat16
    # only the output is saved for backward, as with nn.ELU(inplace=True)
    xr = torch.randn(3, 3, requires_grad=True)
    y = ELU()(xr)
    assert y.grad_fn is not None and len(y.grad_fn.saved_tensors) == 1


def test_elu_uses_torch_elu_off_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a GPU the fused F.elu is one kernel; the exp-based composite is only for the CPU.
    import models.depth_net as depth_net

    calls: list[str] = []
    monkeypatch.setattr(depth_net.F, "elu", lambda x: calls.append(x.device.type) or x)
    depth_net.ELU()(torch.randn(2, 3))
    assert calls == []
    depth_net.ELU()(torch.empty(2, 3, device="meta"))
    assert calls == ["meta"]


def test_decoder_padding_keeps_bf16_under_cpu_autocast() -> None:
    # CPU autocast lists reflection_pad2d as an fp32 op; Conv3x3 pads outside autocast so a
    # bf16 activation is not upcast for the pad and cast back for the convolution.
    from models.depth_net import Conv3x3

    conv = Conv3x3(4, 2)
    seen: list[torch.dtype] = []
    conv.conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].dtype))
    with torch.autocast("cpu", torch.bfloat16):
        out = conv(torch.randn(1, 4, 6, 7).bfloat16())
    assert seen == [torch.bfloat16] and out.dtype == torch.bfloat16
    ref = F.conv2d(F.pad(torch.ones(1, 4, 6, 7), (1, 1, 1, 1), mode="reflect"),
                   conv.conv.weight, conv.conv.bias)
    assert torch.allclose(conv(torch.ones(1, 4, 6, 7)), ref, atol=1e-6)
