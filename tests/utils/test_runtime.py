"""utils.runtime: the precision rule every tool shares, and its note on emulated bf16."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from helpers import write_checkpoint

from tools.predictor import Predictor
from utils.errors import UsageError
from utils.runtime import check_precision, precision_dtype, precision_note

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def emulated_bf16(monkeypatch: pytest.MonkeyPatch, emulated: bool = True) -> None:
    """Make this CPU look like one without (or with) native bf16."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: not emulated)


def test_precision_names_map_to_dtypes() -> None:
    assert precision_dtype("32", CPU) == torch.float32
    assert precision_dtype("bf16-mixed", CPU) == torch.bfloat16
    assert precision_dtype("16-mixed", CUDA) == torch.float16
    with pytest.raises(UsageError, match="--precision 16-mixed needs a CUDA device"):
        check_precision("16-mixed", CPU, "--precision")
    with pytest.raises(ValueError, match="precision must be one of"):
        precision_dtype("64", CPU)


def test_bf16_on_a_cpu_that_emulates_it_gets_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    emulated_bf16(monkeypatch)
    note = precision_note("bf16-mixed", CPU, "--precision")
    assert note is not None and note.startswith("note: --precision bf16-mixed: this CPU has "
                                                "no native bf16")
    # fp32 and GPUs are never slowed down by emulation
    assert precision_note("32", CPU) is None
    assert precision_note("bf16-mixed", CUDA) is None
    emulated_bf16(monkeypatch, emulated=False)
    assert precision_note("bf16-mixed", CPU) is None


@pytest.mark.parametrize("emulated", [True, False])
def test_tools_on_a_checkpoint_print_the_note(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path, emulated: bool) -> None:
    emulated_bf16(monkeypatch, emulated)
    ckpt = write_checkpoint(tmp_path / "v1.ckpt", model_version="v1", img_height=64,
                            img_width=64)
    _, settings = Predictor.from_options(argparse.Namespace(
        ckpt_path=ckpt, device="cpu", infer_precision="bf16-mixed"))
    slow = [n for n in settings.notes if "no native bf16" in n]
    assert slow == ([precision_note("bf16-mixed", CPU)] if emulated else [])
