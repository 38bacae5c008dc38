"""The fast path keeps the method: batched forwards, channels_last and bf16 autocast.

In eval mode BatchNorm uses its running statistics, so batching the target and references
into one DepthNet call (and the 2N pose pairs into one PoseNet call) must give the same
outputs as one call per frame; channels_last is a memory layout only. In training mode the
batched call normalises with the statistics of all frames of the step together, which is
the one (documented) difference; the test below pins it down.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from systems import build_model, system_class

H, W, B = 48, 64, 2


def _hparams(version: str, batched: bool = True, channels_last: bool = True) -> dict[str, Any]:
    return {"model_version": version, "no_pretrain": True, "dataset_name": "synthetic",
            "no_batched_forwards": not batched, "no_channels_last": not channels_last}


def _system(version: str = "v1", batched: bool = True, channels_last: bool = True,
            state: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    model = system_class(version)(_hparams(version, batched, channels_last))
    if state is not None:
        model.load_state_dict(state)
    model.apply_fast_path()
    return model


def _batch(version: str, seed: int = 0) -> dict[str, Any]:
    """TrainFolder-format batch: smooth random images, shifted references, a pinhole K."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.avg_pool2d(torch.rand(B, 3, H, W, generator=g), 5, 1, 2)
    tgt = (base - 0.45) / 0.225
    refs = [torch.roll(tgt, s, dims=3) + 0.02 * torch.randn(tgt.shape, generator=g)
            for s in (-1, 1)]
    K = torch.tensor([[30.0, 0, (W - 1) / 2], [0, 30.0, (H - 1) / 2], [0, 0, 1]]).expand(B, 3, 3)
    batch = {"tgt": tgt, "refs": refs, "K": K.contiguous(), "K_inv": torch.linalg.inv(K)}
    if version == "v3":
        batch["tgt_prior"] = 1.0 + torch.rand(B, 1, H, W, generator=g)
    return batch


def _randomise_bn_stats(model: torch.nn.Module) -> None:
    """Non-trivial running statistics, so eval-mode BatchNorm is not the identity map."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(1.0 + 0.2 * torch.rand(m.running_var.shape, generator=g))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, OpenMP barriers of several
    threads cost far more than they gain for these tiny tensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def v1_state() -> dict:
    model = _system("v1")
    _randomise_bn_stats(model)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_batched_forwards_match_per_frame_calls_in_eval(v1_state: dict) -> None:
    batch = _batch("v1")
    fast = _system("v1", batched=True, state=v1_state).eval()
    plain = _system("v1", batched=False, state=v1_state).eval()
    with torch.no_grad():
        d_fast, refs_fast = fast.predict_depths(batch["tgt"], batch["refs"])
        d_plain, refs_plain = plain.predict_depths(batch["tgt"], batch["refs"])
        p_fast, pinv_fast = fast.predict_poses(batch["tgt"], batch["refs"])
        p_plain, pinv_plain = plain.predict_poses(batch["tgt"], batch["refs"])
    assert d_fast.shape == (B, 1, H, W) and len(refs_fast) == 2
    torch.testing.assert_close(d_fast, d_plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(refs_fast, refs_plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(p_fast + pinv_fast, p_plain + pinv_plain):
        assert a.shape == (B, 3, 4)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the two directions are separate predictions, not one the inverse of the other
    assert not torch.allclose(p_fast[0][:, :, 3], -pinv_fast[0][:, :, 3], atol=1e-7)


def test_channels_last_matches_nchw(v1_state: dict) -> None:
    batch = _batch("v1")
    cl = _system("v1", channels_last=True, state=v1_state).eval()
    nchw = _system("v1", channels_last=False, state=v1_state).eval()
    assert cl.depth_net.encoder.encoder.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(cl(batch["tgt"]), nchw(batch["tgt"]), rtol=1e-5, atol=1e-5)
        pc, _ = cl.predict_poses(batch["tgt"], batch["refs"])
        pn, _ = nchw.predict_poses(batch["tgt"], batch["refs"])
    for a, b in zip(pc, pn):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the layout does not leak into the state dict: same keys, same values
    assert cl.state_dict().keys() == nchw.state_dict().keys()


def test_channels_last_training_loss_matches_plain(v1_state: dict) -> None:
    """In train mode too (per-frame calls, so BatchNorm sees the same batches)."""
    batch = _batch("v1")
    cl = _system("v1", batched=False, channels_last=True, state=v1_state).train()
    plain = _system("v1", batched=False, channels_last=False, state=v1_state).train()
    terms_cl, _ = cl.loss_terms(batch)
    terms_plain, _ = plain.loss_terms(batch)
    for name in terms_plain:
        torch.testing.assert_close(terms_cl[name], terms_plain[name], rtol=1e-4, atol=1e-6)


def test_batchnorm_statistics_under_batched_training(v1_state: dict) -> None:
    """Batched: one BatchNorm update per step over all (1+N)·B frames; per frame: 1+N."""
    batch = _batch("v1")
    fast = _system("v1", batched=True, state=v1_state).train()
    plain = _system("v1", batched=False, state=v1_state).train()
    fast.predict_depths(batch["tgt"], batch["refs"])
    plain.predict_depths(batch["tgt"], batch["refs"])
    bn_fast = fast.depth_net.encoder.encoder.bn1
    bn_plain = plain.depth_net.encoder.encoder.bn1
    assert int(bn_fast.num_batches_tracked) == 1
    assert int(bn_plain.num_batches_tracked) == 3
    # with the statistics of the whole step, the batched call equals a per-frame call in
    # which BatchNorm is given those statistics: BN in train mode on the stacked frames
    stacked = torch.cat([batch["tgt"], *batch["refs"]])
    ref = _system("v1", batched=False, state=v1_state).train()
    with torch.no_grad():
        d_all = ref.depth_net(stacked)[:B]
        d_fast, _ = fast.predict_depths(batch["tgt"], batch["refs"])
    torch.testing.assert_close(d_fast.detach(), d_all, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_bf16_autocast_loss_terms_close_to_fp32(version: str) -> None:
    batch = _batch(version)
    model = _system(version).train()
    torch.manual_seed(3)  # V3's pair sampling draws from the global RNG
    terms32, _ = model.loss_terms(batch)
    torch.manual_seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms16, context = model.loss_terms(batch)
        total = model.total_loss(terms16)
    assert set(terms16) == set(terms32)
    # the losses themselves run in fp32 (full_precision), on depths cast back to fp32
    assert context.tgt_depth.dtype == torch.float32
    for name, value in terms16.items():
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value), name
        # bf16 networks: ~3 significant digits in the depths and poses
        torch.testing.assert_close(value.detach(), terms32[name].detach(), rtol=0.1, atol=2e-3)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_network_heads_stay_fp32_under_bf16_autocast() -> None:
    """The disparity sigmoid and the pose average run in fp32 even under autocast."""
    from models.depth_net import DepthNet
    from models.pose_net import PoseNet

    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    depth_net, pose_net = DepthNet().eval(), PoseNet().eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        depth = depth_net(x)
        pose = pose_net(x, x.flip(-1))
    assert depth.dtype == torch.float32 and pose.dtype == torch.float32
    # fp32 sigmoid: depth takes more distinct values than bf16's 256 steps per octave allow
    assert depth.unique().numel() > 1000


@pytest.mark.parametrize("version, pose_autocast", [("v1", False), ("v1", True),
                                                    ("v2", False), ("v2", True)])
def test_pose_networks_stay_fp32_under_bf16_unless_asked(version: str,
                                                         pose_autocast: bool) -> None:
    """PoseNet (and V2's ARN) convolve in fp32 under bf16 autocast by default; with
    pose_autocast they take the mixed precision like DepthNet."""
    model = system_class(version)({**_hparams(version), "pose_autocast": pose_autocast})
    seen: dict[str, set] = {"depth_net": set(), "pose_net": set(), "rectify_net": set()}
    for name, dtypes in seen.items():
        net = getattr(model, name, None)
        if net is not None:
            net.encoder.encoder.conv1.register_forward_hook(
                lambda _m, _i, out, dtypes=dtypes: dtypes.add(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms, _ = model.loss_terms(_batch(version))
    assert seen["depth_net"] == {torch.bfloat16}
    expected = {torch.bfloat16} if pose_autocast else {torch.float32}
    assert seen["pose_net"] == expected
    if version == "v2":
        assert seen["rectify_net"] == expected
    assert all(torch.isfinite(v) for v in terms.values())


# ----------------------------------------------------------------- inference copy
def test_fold_batch_norm_hand_computed() -> None:
    """conv (1→1, 1×1, weight 2, bias 1) then BN (mean 3, var 4−eps, γ 5, β 6):
    5·((2x + 1) − 3)/2 + 6 = 5x + 1, one convolution with weight 5 and bias 1."""
    from torch import nn

    from models.depth_net import fold_batch_norm

    conv, bn = nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)
    with torch.no_grad():
        conv.weight.fill_(2.0)
        conv.bias.fill_(1.0)
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(4.0 - bn.eps)
        bn.weight.fill_(5.0)
        bn.bias.fill_(6.0)
    folded = fold_batch_norm(nn.Sequential(conv, bn).eval())
    assert isinstance(folded[1], nn.Identity)
    assert folded[0].weight.item() == pytest.approx(5.0)
    assert folded[0].bias.item() == pytest.approx(1.0)
    x = torch.tensor([[[[0.0, 1.0, -2.0]]]])
    torch.testing.assert_close(folded(x), torch.tensor([[[[1.0, 6.0, -9.0]]]]))


def test_fold_batch_norm_refuses_training_mode_and_unpaired_batch_norm() -> None:
    from torch import nn

    from models.depth_net import fold_batch_norm

    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norm(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))
    with pytest.raises(ValueError, match="no convolution precedes"):
        fold_batch_norm(nn.Sequential(nn.BatchNorm2d(1)).eval())


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_inference_net_fp32_equals_eval_forward(version: str) -> None:
    """BatchNorm folded (none left), frozen, channels_last: the same depth as the system's
    eval forward, and the system itself is left as it was."""
    model = _system(version)
    _randomise_bn_stats(model)
    model.eval()
    x = _batch(version)["tgt"]
    with torch.inference_mode():
        expected = model(x)
        net = model.inference_net("32")
        depth = net(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.training
    assert net.encoder.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(depth, expected, rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.depth_net.modules())
    assert all(p.requires_grad for p in model.depth_net.parameters())


def test_inference_net_bf16_stores_bf16_weights_and_returns_fp32_depth(v1_state: dict) -> None:
    """bf16 weights (no autocast needed), the head in fp32, depth in fp32 within bf16's
    ~3 significant digits of the fp32 forward, and as close as bf16 autocast gets."""
    model = _system("v1", state=v1_state).eval()
    x = _batch("v1")["tgt"]
    with torch.inference_mode():
        expected = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model(x)
        net = model.inference_net("bf16-mixed")
        depth = net(x)
    assert net.encoder.encoder.conv1.weight.dtype == torch.bfloat16
    assert net.decoder.upconvs1[-1].conv.conv.weight.dtype == torch.bfloat16
    assert net.decoder.dispconvs[0].conv.weight.dtype == torch.float32
    assert depth.dtype == torch.float32
    error = ((depth - expected).abs() / expected).max()
    assert error < 1e-2
    assert error < 2 * ((autocast - expected).abs() / expected).max()


@pytest.mark.slow  # torch.compile
def test_inference_net_of_a_compiled_network_is_not_compiled() -> None:
    """``--compile`` compiles DepthNet in place (a checkpoint trained with it does so when
    loaded); its inference copy is built from the state dict: the same weights, and its
    forward runs eagerly (no forward of the compiled network runs here, so nothing is
    compiled)."""
    from models.depth_net import DepthNet

    model = _system("v1").eval()
    plain = model.inference_net("32")
    model.depth_net.compile()
    copy = model.inference_net("32")
    assert type(copy) is DepthNet and copy.forward.__func__ is DepthNet.forward
    for (name, a), (_, b) in zip(plain.state_dict().items(), copy.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_inference_net_refuses_fp16_on_the_cpu() -> None:
    with pytest.raises(ValueError, match="16-mixed needs a CUDA device"):
        _system("v1").inference_net("16-mixed")


def test_compile_option_compiles_networks_and_photometric_loss(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, **kwargs: compiled.append(type(self).__name__))
    model = build_model({"model_version": "v2", "no_pretrain": True, "compile": True})
    model.apply_fast_path()
    assert sorted(compiled) == ["DepthNet", "PhotoGeometryLoss", "PoseNet", "RectifyNet"]
    compiled.clear()
    build_model({"model_version": "v1", "no_pretrain": True}).apply_fast_path()
    assert compiled == []
