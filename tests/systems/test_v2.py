"""SCDepthV2: the auto-rectify network in the training step, validation, logs and train.py."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import ImageBoard

from geometry import euler2mat, mat2euler, pose_vec2mat, refine_rotation, rotation_warp
from losses.rotation import (
    ROT_MAX_RANDOM,
    random_rotation_pair,
    rotation_consistency_loss,
    rotation_triplet_loss,
)
from options import TrainingOptions
from systems import SCDepthV1, SCDepthV2, build_model, load_from_checkpoint

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state_dict_keys.txt"
B, H, W = 2, 40, 48


def reference_shapes(resnet_layers: int = 18) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the fixture's section for ``resnet_layers``."""
    out: dict[str, tuple[int, ...]] = {}
    current: int | None = None
    for line in FIXTURE.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            current = int(line.partition("=")[2])
        elif current == resnet_layers:
            key, _, shape = line.partition(" ")
            out[key] = tuple(ast.literal_eval(shape.strip()))
    return out


@pytest.fixture(scope="module")
def model() -> SCDepthV2:
    torch.manual_seed(0)
    return build_model({"model_version": "v2", "no_pretrain": True,
                        "rot_c_weight": 2.0, "rot_t_weight": 0.5})


def make_batch(seed: int = 0) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    K = torch.tensor([[30.0, 0.0, 23.5], [0.0, 30.0, 19.5], [0.0, 0.0, 1.0]]).expand(B, 3, 3)
    tgt = torch.randn(B, 3, H, W, generator=gen)
    refs = [torch.randn(B, 3, H, W, generator=gen) for _ in range(2)]
    return {"tgt": tgt, "refs": refs, "K": K.clone(), "K_inv": torch.linalg.inv(K)}


def test_state_dict_keys_equal_the_published_layout(model: SCDepthV2) -> None:
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = reference_shapes(18)
    assert any(k.startswith("rectify_net.") for k in ref)
    assert ours == ref


def test_is_a_v1_with_arn_weights(model: SCDepthV2) -> None:
    assert isinstance(model, SCDepthV1)
    assert model.loss_weights["rot_consistency_loss"] == 2.0
    assert model.loss_weights["rot_triplet_loss"] == 0.5
    # the V1 weights are untouched
    assert model.loss_weights["photo_loss"] == 1.0
    assert model.loss_weights["geometry_loss"] == 0.1


def test_training_step_terms_and_gradients(model: SCDepthV2) -> None:
    model.train()
    model.zero_grad()
    torch.manual_seed(1)
    batch = make_batch()
    terms, context = model.loss_terms(batch)
    assert set(terms) == {"photo_loss", "geometry_loss", "smooth_loss",
                          "rot_consistency_loss", "rot_triplet_loss"}
    for name, value in terms.items():
        assert value.ndim == 0 and torch.isfinite(value), name
    # the triplet term is the loss of the rot1/rot2 the step produced, averaged over refs
    expected = torch.stack([rotation_triplet_loss(r1, r2)
                            for r1, r2 in zip(context.rot1, context.rot2)]).mean()
    assert torch.allclose(terms["rot_triplet_loss"], expected)
    # V1's losses saw the rectified references, not the raw ones
    for raw, rect, rot1 in zip(batch["refs"], context.refs, context.rot1):
        assert torch.allclose(rect, rotation_warp(raw, rot1, batch["K"]))
        assert not torch.allclose(rect, raw)
    model.total_loss(terms).backward()
    for name in ("encoder.encoder.conv1.weight", "decoder.convs_pose.2.weight"):
        grad = model.rectify_net.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.depth_net.get_parameter("encoder.encoder.conv1.weight").grad.abs().sum() > 0
    model.zero_grad()


def test_each_arn_loss_alone_trains_arn(model: SCDepthV2) -> None:
    model.train()
    for term in ("rot_consistency_loss", "rot_triplet_loss"):
        model.zero_grad()
        torch.manual_seed(2)
        terms, _ = model.loss_terms(make_batch(1))
        terms[term].backward()
        grad = model.rectify_net.get_parameter("encoder.encoder.conv1.weight").grad
        assert grad is not None and grad.abs().sum() > 0, term
    model.zero_grad()


def test_rotation_logs(model: SCDepthV2) -> None:
    with torch.no_grad():
        _, context = model.loss_terms(make_batch())
    logs = context.logs
    before = torch.cat([r.abs().flatten() for r in context.rot1]).mean()
    after = torch.cat([r.abs().flatten() for r in context.rot2]).mean()
    assert torch.allclose(logs["rot_before"], before)
    assert torch.allclose(logs["rot_after"], after)
    assert 0.0 <= float(logs["rot_label_from_prediction"]) <= 1.0


def test_train_image_strip(model: SCDepthV2, monkeypatch: pytest.MonkeyPatch) -> None:
    board = ImageBoard()
    monkeypatch.setattr(model, "_tensorboard", lambda: board)
    batch = make_batch()
    with torch.no_grad():
        _, context = model.loss_terms(batch)
    model.log_train_images(batch, context)
    strip = board.images["train/target_reference_rectified"]
    assert strip.shape == (H, 3 * W, 3) and strip.dtype == np.uint8
    assert "train/input_depth" in board.images  # V1's picture is kept


def test_photo_validation_rectifies_references(model: SCDepthV2,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[torch.Tensor]] = []
    loss = model.photo_geometry_loss
    original = loss.forward

    def spy(tgt: torch.Tensor, refs: list[torch.Tensor], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(refs))
        return original(tgt, refs, *args, **kwargs)

    monkeypatch.setattr(loss, "forward", spy)
    monkeypatch.setattr(model, "opts", dataclasses.replace(model.opts, val_mode="photo"))
    model.eval()
    batch = make_batch(3)
    model.on_validation_epoch_start()
    with torch.no_grad():
        model.validation_step(batch, 5)
        expected = [rotation_warp(r, model.rectify_net(batch["tgt"], r), batch["K"])
                    for r in batch["refs"]]
    assert len(model._val_losses) == 1 and np.isfinite(model._val_losses[0])
    assert len(seen) == 1
    for got, want in zip(seen[0], expected):
        assert torch.allclose(got, want, atol=1e-6)


# ------------------------------------------------------------- options of ours
def v2_model(**options: Any) -> SCDepthV2:
    torch.manual_seed(0)
    return build_model({"model_version": "v2", "no_pretrain": True, **options})


def test_arn_options_default_to_the_paper() -> None:
    defaults = TrainingOptions()
    assert defaults.arn_label_range == ROT_MAX_RANDOM
    assert defaults.arn_warmup_steps == 0 and defaults.arn_border_crop == 0.0
    assert defaults.arn_earned_labels is None and not defaults.arn_owns_rotation
    assert defaults.arn_pose_weight == 0.0 and not defaults.arn_frozen
    assert not defaults.arn_refine
    assert "rot_pose_loss" not in v2_model().loss_terms(make_batch())[0]


def test_border_crop_hides_the_border_from_arn() -> None:
    batch = make_batch(4)
    tgt, ref = batch["tgt"], batch["refs"][0]
    edited = ref.clone()
    edited[..., :4, :] = 0.0  # H = 40: a crop of 0.25 removes 10 rows and 12 columns a side
    edited[..., :, -5:] = 0.0
    cropped, plain = v2_model(arn_border_crop=0.25).eval(), v2_model().eval()
    with torch.no_grad():
        assert torch.equal(cropped.arn(tgt, ref), cropped.arn(tgt, edited))
        assert not torch.allclose(plain.arn(tgt, ref), plain.arn(tgt, edited))
        # the crop is the central part, fed to the same network
        centre = cropped.rectify_net(tgt[..., 10:30, 12:36], ref[..., 10:30, 12:36])
        assert torch.allclose(cropped.arn(tgt, ref), centre)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer here
def test_warmup_step_trains_arn_alone_on_known_rotations() -> None:
    model = v2_model(arn_warmup_steps=3, rot_c_weight=2.0).train()
    batch = make_batch(5)
    torch.manual_seed(7)
    loss = model.training_step(batch, 0)  # global_step 0 < 3: a warm-up step
    loss.backward()
    torch.manual_seed(7)
    refs = torch.cat(batch["refs"])
    rot_gt, w = random_rotation_pair(refs, batch["K"].repeat(2, 1, 1), ROT_MAX_RANDOM)
    with torch.no_grad():
        expected = 2.0 * rotation_consistency_loss(model.arn(w, refs), rot_gt)
    assert torch.allclose(loss.detach(), expected, atol=1e-6)
    assert model.rectify_net.get_parameter("encoder.encoder.conv1.weight").grad.abs().sum() > 0
    for net in (model.depth_net, model.pose_net):
        assert all(p.grad is None for p in net.parameters())


def test_label_range_sets_the_span_of_known_rotations() -> None:
    ref = torch.rand(64, 3, 8, 8)
    K = torch.eye(3).expand(64, 3, 3)
    rot, _ = random_rotation_pair(ref, K, 0.2, torch.Generator().manual_seed(0))
    assert rot.abs().max() <= 0.2 and rot.abs().max() > 0.15


def test_labels_are_earned_on_known_rotations(monkeypatch: pytest.MonkeyPatch) -> None:
    model = v2_model(arn_earned_labels=0.01).train()
    # an ARN that always answers 0.05 rad: inside the paper's 0.02-0.1 band
    monkeypatch.setattr(model.rectify_net, "forward",
                        lambda a, b: torch.full((a.shape[0], 3), 0.05, requires_grad=True))
    assert not model.labels_earned()
    _, context = model.loss_terms(make_batch(6))
    assert context.rot_from_prediction == [False, False]  # not earned: known rotations
    assert model.arn_known_error is not None and model.arn_known_error > 0.01
    assert float(context.logs["arn_known_error"]) == pytest.approx(model.arn_known_error)
    model.arn_known_error = 0.005
    _, context = model.loss_terms(make_batch(6))
    assert context.rot_from_prediction == [True, True]  # the paper's band applies
    # the running error travels with the checkpoint
    checkpoint: dict[str, Any] = {}
    model.on_save_checkpoint(checkpoint)
    fresh = v2_model(arn_earned_labels=0.01)
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.arn_known_error == model.arn_known_error and fresh.labels_earned()
    # without the option the band applies from the first step, as in the paper
    paper = v2_model()
    monkeypatch.setattr(paper.rectify_net, "forward",
                        lambda a, b: torch.full((a.shape[0], 3), 0.05, requires_grad=True))
    _, context = paper.loss_terms(make_batch(6))
    assert context.rot_from_prediction == [True, True] and paper.arn_known_error is None


def test_owned_rotation_warps_with_arn_rotation_and_posenet_translation() -> None:
    model = v2_model(arn_owns_rotation=True).eval()  # BatchNorm as in single calls
    batch = make_batch(8)
    with torch.no_grad():
        _, context = model.loss_terms(batch)
        for ref, rect, rot1, pose, pose_inv in zip(batch["refs"], context.rectified,
                                                   context.rot1, context.poses,
                                                   context.poses_inv):
            assert torch.allclose(rect, rotation_warp(ref, rot1, batch["K"]))
            R1 = euler2mat(rot1)
            t = pose_vec2mat(model.pose_net(batch["tgt"], rect))[..., 3:]
            t_inv = pose_vec2mat(model.pose_net(rect, batch["tgt"]))[..., 3:]
            assert torch.allclose(pose, torch.cat([R1, R1 @ t], -1), atol=1e-5)
            assert torch.allclose(pose_inv, torch.cat([R1.transpose(1, 2), t_inv], -1),
                                  atol=1e-5)
    # the V1 losses warped the raw references
    assert all(got is raw for got, raw in zip(context.refs, batch["refs"]))
    # the photometric loss alone reaches ARN through the rotation of the warp
    model.train().zero_grad()
    terms, _ = model.loss_terms(batch)
    terms["photo_loss"].backward()
    grad = model.rectify_net.get_parameter("encoder.encoder.conv1.weight").grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad()
    # pose evaluation composes them the same way, and needs K to do it
    model.eval()
    K = batch["K"]
    pose = model.relative_pose(batch["tgt"], batch["refs"][0], K)
    with torch.no_grad():
        (rect,), (rot1,), _ = model.rectify(batch["tgt"], [batch["refs"][0]], K)
        t = pose_vec2mat(model.pose_net(batch["tgt"], rect).double())[..., 3:]
        R1 = euler2mat(rot1.double())
    assert pose.dtype == torch.float64
    assert torch.allclose(pose, torch.cat([R1, R1 @ t], -1), atol=1e-6)
    with pytest.raises(ValueError, match="need K"):
        model.relative_pose(batch["tgt"], batch["refs"][0])


def test_paper_v2_pose_composes_arn_rotation_with_posenet_on_the_rectified_pair() -> None:
    model = v2_model().eval()
    batch = make_batch(4)
    tgt, ref, K = batch["tgt"], batch["refs"][1], batch["K"]
    pose = model.relative_pose(tgt, ref, K)
    with torch.no_grad():
        (rect,), (rot1,), _ = model.rectify(tgt, [ref], K)
        T_p = pose_vec2mat(model.pose_net(tgt, rect).double())
        R1 = euler2mat(rot1.double())
        raw = pose_vec2mat(model.pose_net(tgt, ref).double())
    assert torch.allclose(pose, torch.cat([R1 @ T_p[..., :3], R1 @ T_p[..., 3:]], -1),
                          atol=1e-6)
    assert not torch.allclose(pose, raw, atol=1e-3)  # not PoseNet on the raw pair
    with pytest.raises(ValueError, match="need K"):
        model.relative_pose(tgt, ref)


def test_pose_rotation_loss_pulls_arn_toward_the_whole_pose_rotation() -> None:
    model = v2_model(arn_pose_weight=0.5)
    assert model.loss_weights["rot_pose_loss"] == 0.5
    rot1 = torch.tensor([[0.01, -0.02, 0.03]], dtype=torch.float64, requires_grad=True)
    # PoseNet finds no rotation left: the label is rot1 itself, nothing to learn
    still = torch.cat([torch.eye(3), torch.zeros(3, 1)], -1)[None].double()
    loss = model.pose_rotation_loss([rot1], [still])
    assert float(loss) == pytest.approx(0, abs=1e-12)
    # PoseNet finds 0.02 rad about y left: with R = R1 · Ry(0.02) the label is mat2euler(R)
    R_p = euler2mat(torch.tensor([[0.0, 0.02, 0.0]], dtype=torch.float64))
    pose = torch.cat([R_p, torch.zeros(1, 3, 1, dtype=torch.float64)], -1)
    label = mat2euler(euler2mat(rot1.detach()) @ R_p)
    loss = model.pose_rotation_loss([rot1], [pose])
    assert float(loss) == pytest.approx(float((rot1 - label).abs().mean()))
    assert label[0, 1] > rot1[0, 1]  # about y the label is rot1 plus about 0.02
    assert float(label[0, 1] - rot1[0, 1]) == pytest.approx(0.02, abs=2e-3)
    loss.backward()  # the gradient reaches rot1 only (the label is detached)
    assert rot1.grad is not None and rot1.grad[0, 1] < 0
    # in a training step the term is there and reaches ARN's weights
    terms, _ = model.loss_terms(make_batch(3))
    model.zero_grad()
    terms["rot_pose_loss"].backward()
    grad = model.rectify_net.get_parameter("encoder.encoder.conv1.weight").grad
    assert grad is not None and grad.abs().sum() > 0
    assert model.pose_net.get_parameter("encoder.encoder.conv1.weight").grad is None


def test_pose_weight_and_owned_rotation_exclude_each_other() -> None:
    from config import parse_options
    from utils.errors import UsageError

    with pytest.raises(UsageError, match=r"--arn_pose_weight .* --arn_owns_rotation"):
        parse_options(["--model_version", "v2", "--arn_pose_weight", "1",
                       "--arn_owns_rotation"])


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer here
def test_frozen_arn_stops_training_after_the_warmup(monkeypatch: pytest.MonkeyPatch) -> None:
    model = v2_model(arn_frozen=True, arn_warmup_steps=3).train()
    assert not model.arn_frozen()  # step 0: the warm-up trains ARN
    monkeypatch.setattr(SCDepthV2, "global_step", property(lambda self: 3))
    assert model.arn_frozen()
    stats = {k: v.clone() for k, v in model.rectify_net.state_dict().items()}
    batch = make_batch(9)
    loss = model.training_step(batch, 0)
    loss.backward()
    assert all(p.grad is None for p in model.rectify_net.parameters())
    for net in (model.depth_net, model.pose_net):
        assert net.get_parameter("encoder.encoder.conv1.weight").grad.abs().sum() > 0
    # BatchNorm statistics stay those of the warm-up, and no ARN loss is computed
    assert not model.rectify_net.training
    assert all(torch.equal(v, model.rectify_net.state_dict()[k]) for k, v in stats.items())
    terms, context = model.loss_terms(batch)
    assert set(terms) == {"photo_loss", "geometry_loss", "smooth_loss"}
    assert context.rot_from_prediction == [False, False]
    # the loss is V1's on the references rectified by the fixed ARN
    with torch.no_grad():
        rectified, _, _ = model.rectify(batch["tgt"], batch["refs"], batch["K"])
        v1_terms, _ = SCDepthV1.loss_terms(model, {**batch, "refs": rectified})
    assert torch.allclose(model.total_loss(terms), model.total_loss(v1_terms))
    # without the option ARN keeps training after the warm-up, as in the paper
    paper = v2_model(arn_warmup_steps=3).train()
    assert not paper.arn_frozen()
    assert "rot_consistency_loss" in paper.loss_terms(batch)[0]


def test_refined_rotation_rectifies_and_arn_keeps_its_own_gradient() -> None:
    model = v2_model(arn_refine=True).eval()  # BatchNorm as in single calls
    batch = make_batch(10)
    K, ref = batch["K"], batch["refs"][0]
    tgt = rotation_warp(ref, torch.tensor([[0.04, -0.03, 0.02]]).expand(B, 3), K)
    raw = model.arn(tgt, ref)
    (rect,), (rot1,), _ = model.rectify(tgt, [ref], K)
    expected = refine_rotation(tgt, ref, raw.detach(), K)
    assert not torch.allclose(expected, raw.detach(), atol=1e-3)
    assert torch.allclose(rot1, expected, atol=1e-6)
    # rect is ref warped by rot1 itself: the straight-through sum can differ from `expected`
    # by a float32 rounding (~1e-9 rad), which a noise image's warp turns into ~1e-5
    assert torch.equal(rect, rotation_warp(ref, rot1, K))
    # straight-through: what reaches ARN from rot1 is what reaches it from its own output
    conv = model.rectify_net.get_parameter("encoder.encoder.conv1.weight")
    (rot1 * torch.arange(1.0, 4.0)).sum().backward()
    through = conv.grad.clone()
    model.zero_grad()
    (model.arn(tgt, ref) * torch.arange(1.0, 4.0)).sum().backward()
    assert through.abs().sum() > 0 and torch.allclose(through, conv.grad)
    # the pose V2 predicts composes the rotation that rectified
    pose = model.relative_pose(tgt, ref, K)
    with torch.no_grad():
        T_p = pose_vec2mat(model.pose_net(tgt, rect).double())
    R1 = euler2mat(expected.double())
    assert torch.allclose(pose[..., :3], R1 @ T_p[..., :3], atol=1e-5)


@pytest.mark.parametrize(("extra", "message"), [
    (["--arn_warmup_steps", "5", "--arn_pose_weight", "1"],
     r"--arn_pose_weight trains ARN, which --arn_frozen keeps fixed"),
    ([], r"--arn_frozen keeps ARN as the warm-up or --ckpt_path left it"),
])
def test_frozen_arn_refuses_what_contradicts_it(extra: list[str], message: str) -> None:
    from config import parse_options
    from utils.errors import UsageError

    with pytest.raises(UsageError, match=message):
        parse_options(["--model_version", "v2", "--arn_frozen", *extra])
    for ok in (["--arn_warmup_steps", "5"], ["--ckpt_path", "warm.ckpt"]):
        assert parse_options(["--model_version", "v2", "--arn_frozen", *ok]).arn_frozen


# ---------------------------------------------------------------------- end to end
def _scalar_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return set(acc.Tags()["scalars"]) | {f"image:{t}" for t in acc.Tags()["images"]}


@pytest.fixture(scope="module")
def handheld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny hand-held synthetic set (2 training scenes of 6 frames at 64×80)."""
    from datasets.synthetic import generate_dataset

    data = tmp_path_factory.mktemp("handheld") / "data"
    generate_dataset(data, scenes=2, frames=6, val_scenes=1, test_scenes=1, height=64,
                     width=80, motion="handheld", progress=False)
    return data


def v2_train_args(data: Path, logs: Path, name: str, *extra: str) -> list[str]:
    return ["--model_version", "v2", "--no_pretrain", "--dataset_dir", str(data),
            "--dataset_name", "synthetic", "--img_height", "64", "--img_width", "80",
            "--batch_size", "2", "--num_epochs", "1", "--num_workers", "0",
            "--log_dir", str(logs), "--exp_name", name, "--log_every_n_steps", "1", *extra]


@pytest.mark.slow  # a training run
def test_v2_trains_through_train_py_on_handheld_scenes(handheld: Path, tmp_path: Path) -> None:
    import test as test_cli
    import train

    data, logs = handheld, tmp_path / "logs"
    rc = train.main(v2_train_args(data, logs, "v2", "--epoch_size", "2",
                                  "--log_images_every_n_steps", "1"))
    assert rc in (0, None)
    run_dir = logs / "v2" / "version_0"
    ckpt = run_dir / "last.ckpt"
    assert ckpt.is_file()
    tags = _scalar_tags(run_dir)
    for tag in ("train/rot_consistency_loss", "train/rot_triplet_loss", "train/rot_before",
                "train/rot_after", "image:train/target_reference_rectified"):
        assert tag in tags, tag

    model = load_from_checkpoint(str(ckpt))
    assert isinstance(model, SCDepthV2)
    out = tmp_path / "test.json"
    rc = test_cli.main(["--dataset_dir", str(data), "--dataset_name", "synthetic",
                        "--ckpt_path", str(ckpt), "--img_height", "64", "--img_width", "80",
                        "--num_workers", "0", "--output_json", str(out)])
    assert rc in (0, None)
    import json

    results = json.loads(out.read_text())
    assert results["num_images"] == 6 and np.isfinite(results["full"]["abs_rel"])


@pytest.mark.slow  # a training run
def test_v2_options_train_resume_and_evaluate_poses(handheld: Path, tmp_path: Path) -> None:
    import eval_pose
    import train
    from utils.checkpoint import load_checkpoint

    data, logs = handheld, tmp_path / "logs"
    args = v2_train_args(data, logs, "v2opt", "--epoch_size", "3", "--arn_warmup_steps", "2",
                         "--arn_label_range", "0.1", "--arn_border_crop", "0.1",
                         "--arn_earned_labels", "0.02", "--arn_owns_rotation", "--arn_frozen")
    assert train.main(args) in (0, None)
    ckpt = logs / "v2opt" / "version_0" / "last.ckpt"
    saved = load_checkpoint(str(ckpt))
    assert saved["hyper_parameters"]["arn_owns_rotation"] is True
    assert saved["hyper_parameters"]["arn_frozen"] is True
    assert saved["hyper_parameters"]["arn_warmup_steps"] == 2
    assert np.isfinite(saved["arn_known_error"])  # two warm-up steps of known rotations
    tags = _scalar_tags(logs / "v2opt" / "version_0")
    assert {"train/rot_consistency_loss", "train/photo_loss"} <= tags
    # --resume takes such a checkpoint (options and running error with it)
    assert train.main([*args, "--num_epochs", "2", "--resume"]) in (0, None)
    model = load_from_checkpoint(str(logs / "v2opt" / "version_0" / "last.ckpt"))
    assert isinstance(model, SCDepthV2) and model.opts.arn_owns_rotation
    # pose evaluation composes ARN's rotation with PoseNet's translation (reads cam.txt)
    out = tmp_path / "pose.json"
    assert eval_pose.main(["--dataset_dir", str(data), "--ckpt_path", str(ckpt),
                           "--dataset_name", "synthetic", "--scene", "val_000_handheld",
                           "--output_json", str(out)]) == 0
    import json

    (result,) = json.loads(out.read_text())
    assert np.isfinite(result["prediction"]["ate"])
