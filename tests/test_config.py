"""The one options schema (options.py) and the parsers built from it (config.py): the names
users know exist, config files work, flags override them, a default is written once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config import get_parser, parse_options
from datasets.registry import dataset_spec
from options import TrainingOptions, training_options
from utils.errors import UsageError

# The public code's option names (and ours that scripts rely on) keep their spelling.
PUBLIC_OPTIONS = [
    "--no_pretrain", "--encoder_weights", "--img_height", "--img_width", "--seed",
    "--num_workers", "--accelerator", "--devices", "--num_nodes", "--precision", "--resume",
    "--dataset_name", "--sequence_length", "--skip_frames", "--use_frame_index",
    "--model_version", "--resnet_layers", "--ckpt_path", "--photo_weight",
    "--geometry_weight", "--smooth_weight", "--rot_c_weight", "--rot_t_weight",
    "--normal_matching_weight", "--mask_rank_weight", "--normal_rank_weight", "--val_mode",
    "--no_ssim", "--no_auto_mask", "--no_dynamic_mask", "--no_min_optimize", "--exp_name",
    "--batch_size", "--epoch_size", "--num_epochs", "--lr", "--input_dir", "--output_dir",
    "--save-vis", "--save-depth", "--save_vis", "--save_depth", "--input_video",
    "--dataset_dir", "--config",
]


def _all_option_strings() -> set[str]:
    parser = get_parser(("data", "model", "losses", "training", "runtime", "inference"))
    return {s for action in parser._actions for s in action.option_strings}


@pytest.mark.parametrize("name", PUBLIC_OPTIONS)
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
    assert (opts.img_height, opts.img_width) == dataset_spec("nyu").train_size


def test_dataset_default_sizes() -> None:
    assert parse_options(["--dataset_name", "kitti"]).img_width == 832
    assert parse_options(["--dataset_name", "ddad"]).img_height == 384
    assert parse_options(["--dataset_name", "kitti", "--img_width", "640"]).img_width == 640


def test_resume_alone_and_with_file() -> None:
    assert parse_options(["--resume"]).resume == "last"
    assert parse_options(["--resume", "x.ckpt"]).resume == "x.ckpt"
    assert parse_options([]).resume is None


def test_unknown_choice_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError, match="mars"):
        parse_options(["--dataset_name", "mars"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch_size", "0"], "argument --batch_size: must be at least 1, got 0"),
    (["--lr=-1e-4"], "argument --lr: must be greater than 0, got -1e-4"),
    (["--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["--photo_weight", "inf"], "argument --photo_weight: must be a finite number"),
    (["--img_width", "32"], "argument --img_width: must be at least 33"),
    (["--num_epochs", "0"], "argument --num_epochs: must be at least 1"),
    (["--arn_border_crop", "0.5"], "argument --arn_border_crop: must be less than 0.5, got 0.5"),
    (["--epoch_size", "two"], "argument --epoch_size: invalid int value: 'two'"),
])
def test_option_limits_are_one_line_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=f"^{message}"):
        parse_options(argv)


def test_config_file_keys_are_checked_like_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.txt"
    config.write_text("lrr = 0.1\n")
    with pytest.raises(UsageError, match=r"unknown option 'lrr' .*did you mean 'lr'"):
        parse_options(["--config", str(config)])
    config.write_text("batch_size = -2\n")
    with pytest.raises(UsageError, match="--batch_size: must be at least 1"):
        parse_options(["--config", str(config)])
    # another tool's options are ignored: one file serves train.py, test.py, inference.py
    config.write_text("lr = 0.001\nsave-vis = true\ninfer_batch_size = 2\n")
    assert parse_options(["--config", str(config)]).lr == 0.001


def test_training_parser_defaults_are_the_options_dataclass() -> None:
    """One source of defaults: every training option's flag has the dataclass default (the
    image size is filled from the dataset afterwards), and every field has a flag."""
    parser = get_parser()
    flags = {a.dest: a.default for a in parser._actions if a.dest not in ("help", "config")}
    fields = {f.name: f.default for f in dataclasses.fields(TrainingOptions)}
    assert flags == fields


def test_training_options_complete_partial_settings() -> None:
    opts = training_options({"lr": 3e-4, "model_version": "v3", "not_an_option": 1})
    assert opts.lr == 3e-4 and opts.model_version == "v3"
    assert opts.log_images_every_n_steps == TrainingOptions().log_images_every_n_steps
    assert training_options(opts) is opts
    parsed = parse_options(["--batch_size", "7"])
    assert training_options(parsed).batch_size == 7


def test_a_tool_lists_only_its_options() -> None:
    parser = get_parser(("data", "runtime"), names=("dataset_dir", "device"))
    dests = {a.dest for a in parser._actions} - {"help", "config"}
    assert dests == {"dataset_dir", "device"}


def test_public_hyphenated_flags_and_snake_case_both_parse() -> None:
    for flag in ("--save-vis", "--save_vis", "--save-depth", "--save_depth"):
        opts = parse_options([flag], ("data", "inference"))
        assert opts.save_vis or opts.save_depth


# Every option of the public code's config parser (config.py of sc_depth_pl), with a value.
PUBLIC_OPTIONS = [
    "--config", "CONFIG", "--dataset_dir", "d", "--dataset_name", "kitti",
    "--sequence_length", "3", "--skip_frames", "1", "--use_frame_index",
    "--model_version", "v1", "--resnet_layers", "18", "--photo_weight", "1.0",
    "--geometry_weight", "0.1", "--smooth_weight", "0.1", "--rot_t_weight", "1.0",
    "--rot_c_weight", "1.0", "--val_mode", "depth", "--mask_rank_weight", "0.1",
    "--normal_matching_weight", "0.1", "--normal_rank_weight", "0.1", "--no_ssim",
    "--no_auto_mask", "--no_dynamic_mask", "--no_min_optimize", "--batch_size", "4",
    "--epoch_size", "100", "--num_epochs", "2", "--lr", "1e-4", "--exp_name", "e",
    "--ckpt_path", "k", "--input_dir", "i", "--output_dir", "o", "--save-vis",
    "--save-depth",
]


def test_every_public_option_parses(tmp_path: Path) -> None:
    config = tmp_path / "empty.txt"
    config.write_text("")
    argv = [str(config) if a == "CONFIG" else a for a in PUBLIC_OPTIONS]
    opts = parse_options(argv, ("data", "model", "losses", "training", "runtime",
                                "inference"))
    assert opts.use_frame_index and opts.no_min_optimize and opts.save_vis


def test_help_shows_each_default_once() -> None:
    text = get_parser(("training",)).format_help()
    assert "(default: 0.0001)" in text and "(default: None)" not in text
    assert "(default: False)" not in text


@pytest.mark.parametrize("config", sorted((Path(__file__).parent.parent / "configs")
                                          .glob("v*/*.txt")), ids=lambda p: p.stem)
def test_shipped_configs_parse(config: Path) -> None:
    opts = parse_options(["--config", str(config)])
    assert opts.model_version == config.parent.name
