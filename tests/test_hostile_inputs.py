"""Hostile and mistaken inputs against the command-line tools: one test per case of
docs/reliability.md (issue 19, "Nothing lost, nothing escapes").

Each case asserts the exit status, that the one error line names the culprit and that no
traceback is printed; the destructive ones also compare the hashes of every file before and
after (no input changed, nothing written elsewhere). The dataset is the hand-made layout of
``helpers.write_dataset`` (32x40 frames, nyu ground truth in the last scene).
"""

from __future__ import annotations

import errno
import io
import math
import os
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import (
    cli,
    inference_peak_rss,
    tree_digest,
    write_checkpoint,
    write_dataset,
    write_png_bomb,
)

from systems import build_model
from utils.cli import run_main

NYU_ARGS = ("--dataset_name", "nyu", "--img_height", "64", "--img_width", "80",
            "--no_pretrain")


def run_cli(name: str, argv: list[str], capsys: pytest.CaptureFixture[str]
            ) -> tuple[int, str, str]:
    """Run tool ``name`` exactly as its script does: (exit status, stdout, stderr)."""
    tool = cli(name)
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: tool.main(argv), f"{name}.py")
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def refused(name: str, argv: list[str], capsys: pytest.CaptureFixture[str],
            *culprits: str) -> str:
    """Run ``name``; assert exit status 2, one error line naming every culprit, no
    traceback; return the line."""
    code, _, err = run_cli(name, argv, capsys)
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2, err
    assert "Traceback" not in err
    # one error line, the last (progress bars may come before it)
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert errors[0].startswith(f"{name}.py: error: "), err
    for culprit in culprits:
        assert culprit in errors[0], (culprit, errors[0])
    return errors[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_dataset(tmp_path / "data")
    return tmp_path / "data"


def check_argv(data: Path, *extra: str) -> list[str]:
    return ["--dataset_dir", str(data), *NYU_ARGS, "--check_only", *extra]


def train_argv(data: Path, log_dir: Path, *extra: str) -> list[str]:
    return ["--dataset_dir", str(data), *NYU_ARGS, "--batch_size", "2", "--epoch_size", "1",
            "--num_epochs", "1", "--num_workers", "0", "--accelerator", "cpu",
            "--log_dir", str(log_dir), *extra]


@pytest.fixture(scope="module")
def v2_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A V2 checkpoint (with the ARN's weights): another version for a V1 run."""
    return write_checkpoint(tmp_path_factory.mktemp("v2") / "v2.ckpt", model_version="v2")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")


def textured(seed: int, h: int = 70, w: int = 90) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def infer_argv(ckpt: Path, source: Path, out: Path, *extra: str) -> list[str]:
    return ["--ckpt_path", str(ckpt), "--input_dir", str(source), "--output_dir", str(out),
            "--save_depth", "--img_height", "48", "--img_width", "64", "--device", "cpu",
            "--min_image_size", "16", *extra]


# ============================================== 1. data destroyed or written elsewhere
@pytest.mark.parametrize("subdir", [".", "../../x", "/tmp/elsewhere", "depth"])
def test_pseudo_depth_output_subdir_stays_a_folder_of_each_scene(
        data: Path, subdir: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(data.parent)
    refused("generate_pseudo_depth", ["--dataset_dir", str(data), "--backend", "checkpoint",
                                      "--ckpt_path", "unused.ckpt", "--output_subdir", subdir],
            capsys, "--output_subdir")
    assert tree_digest(data.parent) == before  # no frame, prior or GT overwritten
    assert not Path("/tmp/elsewhere").exists()


@pytest.mark.parametrize("name", ["../../other/training/scene_0", "/abs/scene_0"])
def test_scene_names_stay_inside_training(data: Path, name: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (data / "training" / "train.txt").write_text(f"scene_0\n{name}\n")
    refused("train", check_argv(data), capsys, "train.txt:2", repr(name))


def test_frame_index_never_written_into_another_dataset(tmp_path: Path, data: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    other = tmp_path / "other"
    write_dataset(other)
    (data / "training" / "train.txt").write_text("scene_0\n../../other/training/scene_0\n")
    before = tree_digest(tmp_path)
    refused("generate_valid_frame_index", ["--dataset_dir", str(data)], capsys, "train.txt:2")
    assert tree_digest(tmp_path) == before


def test_inference_output_dir_may_not_be_the_input_folder(ckpt: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), textured(0))
    before = tree_digest(images)
    refused("inference", infer_argv(ckpt, images, images / ".", "--save_png16"), capsys,
            "--output_dir", "is an input")
    assert tree_digest(images) == before


# =========================================== 2. bad validation data, companion files
def _rewrite_gt(data: Path, value: np.ndarray) -> None:
    for gt in (data / "training" / "scene_1" / "depth").iterdir():
        assert cv2.imwrite(str(gt), value)


@pytest.mark.parametrize("kind", ["zero", "too_far", "eight_bit"])
def test_validation_ground_truth_is_decoded_at_start(data: Path, kind: str,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    gt = {"zero": np.zeros((32, 40), np.uint16),
          # nyu: stored / 5000 = metres; millimetres written as if metres leave the range
          "too_far": np.full((32, 40), 60000, np.uint16),
          "eight_bit": np.full((32, 40), 9, np.uint8)}[kind]
    _rewrite_gt(data, gt)
    line = refused("train", check_argv(data), capsys, "scene_1/depth/000000.png")
    if kind == "too_far":
        assert "values are 12..12" in line and "0.1..10 m" in line
    if kind == "eight_bit":
        assert "16-bit" in line


def test_validation_ground_truth_nan_in_npy(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    training = write_dataset(tmp_path / "data")
    depth = training / "scene_1" / "depth"
    for png in sorted(depth.glob("*.png")):
        np.save(depth / f"{png.stem}.npy", np.full((32, 40), np.nan, np.float32))
        png.unlink()
    argv = ["--dataset_dir", str(tmp_path / "data"), "--dataset_name", "synthetic",
            "--img_height", "64", "--img_width", "80", "--check_only"]
    refused("train", argv, capsys, "no validation ground truth", "all zero or not finite")


def test_some_ground_truth_without_valid_pixels_is_a_warning(data: Path) -> None:
    cv2.imwrite(str(data / "training" / "scene_1" / "depth" / "000002.png"),
                np.zeros((32, 40), np.uint16))
    with pytest.warns(UserWarning, match="1 of 6 validation ground-truth files"):
        assert cli("train").main(check_argv(data)) == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty image file"),
    (None, "single-channel"),  # an 8-bit RGB PNG
])
def test_v3_priors_are_opened_at_start(data: Path, content: bytes | None, message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    prior = data / "training" / "scene_0" / "leres_depth" / "000002.png"
    if content is None:
        cv2.imwrite(str(prior), np.full((32, 40, 3), 9, np.uint8))
    else:
        prior.write_bytes(content)
    refused("train", check_argv(data, "--model_version", "v3"), capsys, message, str(prior))


def corrupt_middle(path: Path, seed: int = 0) -> None:
    """Overwrite the middle third of a file with random bytes; start and end stay intact."""
    data = bytearray(path.read_bytes())
    a, b = len(data) // 3, 2 * len(data) // 3
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _big_jpeg(path: Path) -> None:
    """A noisy 128x160 JPEG: large enough that its middle third is a few KiB."""
    cv2.imwrite(str(path), cv2.resize(textured(1, 32, 40), (160, 128),
                                      interpolation=cv2.INTER_NEAREST))


def test_corrupt_middle_of_a_validation_jpeg_is_found_at_start(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for frame in (data / "training" / "scene_1").glob("*.jpg"):
        _big_jpeg(frame)  # one size for the scene
    frame = data / "training" / "scene_1" / "000003.jpg"
    corrupt_middle(frame)
    refused("train", check_argv(data), capsys, "corrupt JPEG data", str(frame))


def test_corrupt_middle_of_a_training_jpeg_is_replaced_not_fatal(data: Path) -> None:
    from datasets.video_folder import TrainFolder

    frame = data / "training" / "scene_0" / "000002.jpg"
    for f in (data / "training" / "scene_0").glob("*.jpg"):
        _big_jpeg(f)
    corrupt_middle(frame)
    dataset = TrainFolder(data / "training")
    # samples 0-2 of scene_0 (targets 1-3, references i±1) hold frame 2: asked for sample 1,
    # the loader says why and gives sample 3
    with pytest.warns(UserWarning, match=f"skipped.*corrupt JPEG data.*{frame}"):
        sample = dataset[1]
    assert torch.equal(sample["tgt"], dataset._load(3)["tgt"])


@pytest.mark.slow  # a training run
def test_a_failure_during_training_keeps_the_last_checkpoint(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from systems.v1 import SCDepthV1

    def broken(self: SCDepthV1, batch: object, batch_idx: int) -> None:
        if not self.trainer.sanity_checking:
            raise RuntimeError("validation broke")

    monkeypatch.setattr(SCDepthV1, "validation_step", broken)
    with pytest.raises(RuntimeError, match="validation broke"):
        cli("train").main(train_argv(data, tmp_path / "runs", "--epoch_size", "2"))
    assert "last.ckpt written first" in capsys.readouterr().err
    from utils.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "runs" / "sc_depth" / "version_0" / "last.ckpt"
                           )["global_step"] == 2


def test_validation_without_a_valid_pixel_logs_nan_instead_of_ending_the_run() -> None:
    model = build_model({"no_pretrain": True, "dataset_name": "nyu"})
    logged: dict[str, float] = {}
    model.log = lambda name, value, **kwargs: logged.update({name: value})
    model.on_validation_epoch_start()
    model._evaluator.update(torch.ones(1, 1, 8, 8), torch.zeros(1, 8, 8))
    with pytest.warns(UserWarning, match="none of the 1 frames has a valid ground-truth"):
        model.on_validation_epoch_end()
    assert math.isnan(logged["val_loss"])


# ================================================================= 3. memory blow-ups
def test_image_bomb_is_refused_from_its_header(bomb: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets.formats import DatasetError, read_image

    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a bomb"))
    with pytest.raises(DatasetError, match=r"declares 30000x30000 pixels .*MAX_IMAGE_PIXELS"):
        read_image(bomb)


def test_inference_skips_a_bomb_and_writes_the_others(ckpt: Path, bomb: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(bomb, images / "b_bomb.png")
    for i in range(3):
        cv2.imwrite(str(images / f"{'acd'[i]}_ok.jpg"), textured(i))
    code, out, err = run_cli("inference", infer_argv(ckpt, images, tmp_path / "out"), capsys)
    assert code == 0, err
    assert "processed 3, skipped 1" in out
    assert ("b_bomb.png: size 30000x30000 outside 16..8192 pixels a side (from its header; "
            "not decoded)") in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_ok.npy", "c_ok.npy", "d_ok.npy"]


@pytest.mark.slow  # subprocesses
def test_inference_peak_memory_with_a_bomb_stays_that_of_the_valid_images(
        ckpt: Path, bomb: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f"{i}.jpg"), textured(i, 480, 640))
    clean = inference_peak_rss(infer_argv(ckpt, images, tmp_path / "clean"))
    shutil.copy(bomb, images / "bomb.png")
    bombed = inference_peak_rss(infer_argv(ckpt, images, tmp_path / "bombed"))
    assert clean[0] == bombed[0] == 0
    assert len(list((tmp_path / "bombed").glob("*.npy"))) == 4
    # the bomb decoded would take 0.9 GB as uint8 and 10.8 GB as float32 RGB
    assert bombed[1] - clean[1] < 256 << 20, (clean, bombed)


def _deflated_checkpoint(path: Path, megabytes: int) -> Path:
    """A torch.save file re-packed with zip deflate: ``megabytes`` of zeros inflate from a
    few hundred KB (torch.load would inflate them all before any check)."""
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(megabytes << 18)}}, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return path


def test_checkpoint_bomb_is_refused_from_its_declared_sizes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.checkpoint import CheckpointError, load_checkpoint

    path = _deflated_checkpoint(tmp_path / "bomb.ckpt", 64)
    assert path.stat().st_size < 1 << 20
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("inflated a bomb"))
    with pytest.raises(CheckpointError, match=r"bomb.ckpt: its entries declare 64 MiB .*"
                                              r"MAX_CHECKPOINT_BYTES"):
        load_checkpoint(path)


def test_depth_array_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    from datasets.formats import DatasetError, read_gt_depth

    path = tmp_path / "000000.npy"
    with path.open("wb") as fh:  # a header declaring 100000 x 100000 float32, no data
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)})
    with pytest.raises(DatasetError, match=r"shape \(100000, 100000\).*not loaded"):
        read_gt_depth(path, "synthetic")


# ================================================= 4. one line, not a traceback
@pytest.mark.parametrize("flag", ["--ckpt_path", "--resume"])
def test_checkpoint_of_another_version(flag: str, data: Path, v2_ckpt: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    refused("train", train_argv(data, tmp_path / "runs", flag, str(v2_ckpt)), capsys,
            str(v2_ckpt), "SC-Depth v2", "as SC-Depth v1")


@pytest.mark.parametrize("tool", ["train", "inference"])
def test_text_file_as_checkpoint(tool: str, data: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n" * 10)
    argv = (train_argv(data, tmp_path / "runs", "--ckpt_path", str(text)) if tool == "train"
            else infer_argv(text, data / "training" / "scene_0", tmp_path / "out"))
    refused(tool, argv, capsys, str(text), "not a PyTorch checkpoint")


def test_singular_cam_txt(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cam = data / "training" / "scene_0" / "cam.txt"
    cam.write_text("30 0 20\n0 30 16\n0 0 0\n")
    refused("train", check_argv(data), capsys, str(cam), "invertible")


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--batch_size", "0", "at least 1"), ("--epoch_size", "-3", "at least 1"),
    ("--lr", "0", "greater than 0"), ("--lr", "nan", "finite"), ("--lr", "inf", "finite"),
    ("--num_epochs", "0", "at least 1"), ("--img_height", "16", "at least 33"),
])
def test_options_out_of_range(data: Path, flag: str, value: str, message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    refused("train", check_argv(data, flag, value), capsys, flag, message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_accelerator_gpu_without_a_gpu(data: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*train_argv(data, tmp_path / "runs"), "--accelerator", "gpu"]
    refused("train", argv, capsys, "--accelerator gpu", "no CUDA GPU")


def _fail_if_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.predictor import Predictor

    monkeypatch.setattr(Predictor, "from_options",
                        classmethod(lambda cls, opts: pytest.fail("the model was loaded")))


@pytest.mark.parametrize("case", ["file", "under_file", "read_only", "full"])
def test_output_dir_refused_before_the_model_loads(
        case: str, ckpt: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import utils.io

    out = tmp_path / "out"
    if case == "file":
        out.write_text("not a folder")
    elif case == "under_file":
        (tmp_path / "plain").write_text("not a folder")
        out = tmp_path / "plain" / "out"
    elif case == "read_only":  # the tests run as root, for whom chmod does not bite
        monkeypatch.setattr(utils.io.os, "access", lambda path, mode: False)
    else:
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(utils.io.shutil, "disk_usage",
                            lambda path: usage._replace(free=4096))
    _fail_if_model_loads(monkeypatch)
    message = {"file": "is a file", "under_file": "is under the file",
               "read_only": "cannot write", "full": "is full"}[case]
    refused("inference", infer_argv(ckpt, data / "training" / "scene_0", out), capsys,
            "--output_dir", message)


def test_disk_full_during_inference_is_one_line(ckpt: Path, data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    real = os.replace
    writes = []

    def full_after_two(src: str, dst: str) -> None:
        writes.append(dst)
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr("utils.io.os.replace", full_after_two)
    out = tmp_path / "out"
    refused("inference", infer_argv(ckpt, data / "training" / "scene_0", out), capsys,
            "cannot write", "000002.npy", "No space left on device")
    # the files written before are complete, no temporary file is left
    assert sorted(p.name for p in out.iterdir()) == ["000000.npy", "000001.npy"]


def test_unreadable_scene_folder(data: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    scene = data / "training" / "scene_0"
    iterdir = Path.iterdir

    def denied(self: Path):  # chmod 000 does not stop root, who runs the tests
        if self == scene:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    refused("train", check_argv(data), capsys, f"cannot list folder {scene}",
            "Permission denied")


def test_unreadable_list_file(data: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    listed = data / "training" / "train.txt"
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == listed:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    refused("train", check_argv(data), capsys, f"cannot read {listed}", "Permission denied")


def test_utf16_list_files_are_read_and_other_encodings_named(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = data / "training" / "train.txt"
    listed.write_bytes("scene_0\r\nscene_1\r\n".encode("utf-16"))  # Notepad's "Unicode"
    code, out, err = run_cli("train", check_argv(data), capsys)
    assert code == 0 and "training: 2 scenes" in out, err
    listed.write_bytes("scène_0\n".encode("latin-1"))
    refused("train", check_argv(data), capsys, str(listed), "not UTF-8")


# =============================================================== 5. silently wrong
def test_config_file_typo_is_an_error_like_the_flag(data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "typo.txt"
    config.write_text("lrr = 0.1\n")
    refused("train", check_argv(data, "--config", str(config)), capsys, "'lrr'",
            "did you mean 'lr'")
    # keys of other tools' options stay allowed: one config file serves them all
    config.write_text("save_vis = true\ninfer_batch_size = 2\n")
    code, _, err = run_cli("train", check_argv(data, "--config", str(config)), capsys)
    assert code == 0, err


def test_resume_takes_the_new_lr() -> None:
    model = build_model({"no_pretrain": True, "lr": 1e-5})
    checkpoint = {"optimizer_states": [{"param_groups": [{"lr": 1e-4}, {"lr": 1e-4}]}]}
    model.on_load_checkpoint(checkpoint)
    assert [g["lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [1e-5] * 2


def test_more_cpu_processes_than_cores(data: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    refused("train", train_argv(data, tmp_path / "runs", "--devices", "3"), capsys,
            "--devices 3", "2 cores")


def test_16_mixed_on_the_cpu_is_refused_as_in_inference(data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    refused("train", train_argv(data, tmp_path / "runs", "--precision", "16-mixed"), capsys,
            "--precision", "bf16-mixed")


def test_frames_that_differ_only_in_extension(data: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    scene = data / "training" / "scene_0"
    cv2.imwrite(str(scene / "000002.png"), cv2.imread(str(scene / "000002.jpg")))
    refused("train", check_argv(data), capsys, "'000002'", "000002.jpg", "000002.png")


def test_a_scene_listed_twice_counts_once(data: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (data / "training" / "train.txt").write_text("scene_0\nscene_1\nscene_0\n")
    with pytest.warns(UserWarning, match="train.txt:3: scene scene_0 is listed again"):
        code, out, _ = run_cli("train", check_argv(data), capsys)
    assert code == 0 and "training: 2 scenes, 12 frames, 8 samples" in out


@pytest.mark.parametrize(("size", "message"), [((10, 12), "enlarged 6.7x"),
                                               ((32, 400), "aspect ratio 12.50")])
def test_tiny_or_extreme_aspect_frames_are_named(data: Path, size: tuple[int, int],
                                                 message: str) -> None:
    for frame in (data / "training" / "scene_0").glob("*.jpg"):
        cv2.imwrite(str(frame), cv2.resize(textured(0), size[::-1]))
    with pytest.warns(UserWarning, match=f"scene scene_0: .*{message}"):
        cli("train").main(check_argv(data))


def test_inference_names_far_resized_inputs(ckpt: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "wide.png"), textured(0, 64, 900))
    code, out, _ = run_cli("inference", infer_argv(ckpt, images, tmp_path / "out"), capsys)
    assert code == 0 and "wide: 900x64 is stretched" in out


def test_flat_frames_warn_that_nothing_is_learnt() -> None:
    model = build_model({"no_pretrain": True})
    flat = torch.full((2, 3, 40, 48), 0.25)
    K = torch.tensor([[20.0, 0, 24], [0, 20.0, 20], [0, 0, 1]]).expand(2, 3, 3)
    batch = {"tgt": flat, "refs": [flat.clone(), flat.clone()], "K": K,
             "K_inv": torch.linalg.inv(K)}
    _, context = model.loss_terms(batch)
    with pytest.warns(UserWarning, match="valid_fraction 0, loss 0"):
        model._count_empty(context)
    with pytest.warns(UserWarning, match="1 training steps had no valid pixel"):
        model.on_train_epoch_end()


def test_nan_metrics_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    cv2.imwrite(str(gt / "a.png"), np.full((8, 10), 5000, np.uint16))
    np.save(pred / "a.npy", np.full((8, 10), np.nan, np.float32))
    refused("eval_depth", ["--dataset_name", "nyu", "--pred_depth", str(pred), "--gt_depth",
                           str(gt)], capsys, "not finite", str(pred))


def test_stale_temporaries_are_removed_at_start(ckpt: Path, data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".000000.npy.k2j4h5g6.tmp", out / ".last.ckpt.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    keep = out / ".hidden_notes"
    keep.write_text("mine")
    code, out_text, err = run_cli("inference", infer_argv(ckpt, data / "training" / "scene_0",
                                                          out), capsys)
    assert code == 0, err
    assert not any(p.exists() for p in stale) and keep.exists()
    assert "removed" in out_text


def test_stale_frame_index_temporaries_are_removed(data: Path) -> None:
    scene = data / "training" / "scene_0"
    stale, mine = scene / ".frame_index.txt.ab12cd34.tmp", scene / ".notes.tmp"
    for p in (stale, mine):
        p.write_text("x")
    assert cli("generate_valid_frame_index").main(["--dataset_dir", str(data)]) == 0
    assert not stale.exists() and mine.exists()  # only the tool's own temporaries


def test_options_checked_in_config_files_too(data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.txt"
    config.write_text("batch_size = 0\n")
    refused("train", check_argv(data, "--config", str(config)), capsys, "--batch_size",
            "at least 1")

