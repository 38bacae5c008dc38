"""The one options schema: SPEC §6 names exist, config files work, flags override them."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import DEFAULT_SIZES, get_parser, parse_options

SPEC_OPTIONS = [
    "--no_pretrain", "--encoder_weights", "--img_height", "--img_width", "--seed",
    "--num_workers", "--accelerator", "--devices", "--num_nodes", "--precision", "--resume",
    "--dataset_name", "--sequence_length", "--skip_frames", "--use_frame_index",
    "--model_version", "--resnet_layers", "--ckpt_path", "--photo_weight",
    "--geometry_weight", "--smooth_weight", "--rot_c_weight", "--rot_t_weight",
    "--normal_matching_weight", "--mask_rank_weight", "--normal_rank_weight", "--val_mode",
    "--no_ssim", "--no_auto_mask", "--no_dynamic_mask", "--no_min_optimize", "--exp_name",
    "--batch_size", "--epoch_size", "--num_epochs", "--lr", "--input_dir", "--output_dir",
    "--save-vis", "--save-depth", "--input_video", "--dataset_dir", "--config",
]


def _all_option_strings() -> set[str]:
    parser = get_parser(("data", "model", "losses", "training", "runtime", "inference"))
    return {s for action in parser._actions for s in action.option_strings}


@pytest.mark.parametrize("name", SPEC_OPTIONS)
def test_spec_option_exists(name: str) -> None:
    assert name in _all_option_strings()


def test_every_option_has_help() -> None:
    parser = get_parser(("data", "model", "losses", "training", "runtime", "inference",
                         "evaluation"))
    missing = [a.option_strings for a in parser._actions
               if a.option_strings and a.help in (None, "")]
    assert not missing


def test_config_file_then_flag_override(tmp_path: Path) -> None:
    cfg = tmp_path / "c.txt"
    cfg.write_text("dataset_name = nyu\nbatch_size = 8\nno_ssim = true\n")
    opts = parse_options(["--config", str(cfg), "--batch_size", "2"])
    assert opts.dataset_name == "nyu" and opts.batch_size == 2 and opts.no_ssim
    assert (opts.img_height, opts.img_width) == DEFAULT_SIZES["nyu"]


def test_dataset_default_sizes() -> None:
    assert parse_options(["--dataset_name", "kitti"]).img_width == 832
    assert parse_options(["--dataset_name", "ddad"]).img_height == 384
    assert parse_options(["--dataset_name", "kitti", "--img_width", "640"]).img_width == 640


def test_resume_alone_and_with_file() -> None:
    assert parse_options(["--resume"]).resume == "last"
    assert parse_options(["--resume", "x.ckpt"]).resume == "x.ckpt"
    assert parse_options([]).resume is None


def test_unknown_choice_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_options(["--dataset_name", "mars"])
    assert exc.value.code == 2
    assert "mars" in capsys.readouterr().err


@pytest.mark.parametrize("config", sorted((Path(__file__).parent.parent / "configs")
                                          .glob("v*/*.txt")), ids=lambda p: p.stem)
def test_shipped_configs_parse(config: Path) -> None:
    opts = parse_options(["--config", str(config)])
    assert opts.model_version == config.parent.name
