"""export.py: TorchScript (always) and ONNX (when installed) match PyTorch within 1e-4."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
import torch
from helpers import cli

from systems import load_from_checkpoint
from tools import export as tools_export
from tools.export import max_relative_error

pytestmark = pytest.mark.slow  # tracing and ONNX export

export = cli("export")

SIZE = ["--img_height", "48", "--img_width", "64"]


def test_max_relative_error_hand_computed():
    assert max_relative_error([1.0, 2.0, 4.0], [1.0, 2.0, 5.0]) == pytest.approx(0.2)
    assert max_relative_error(np.ones((2, 3)), np.ones((2, 3))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        max_relative_error(np.ones(3), np.ones(4))


def test_torchscript_matches_pytorch(ckpt, tmp_path, capsys):
    out = tmp_path / "exported"
    assert export.main(["--ckpt_path", str(ckpt), "--output_dir", str(out), "--format",
                        "torchscript", *SIZE]) == 0
    assert "max relative error vs PyTorch" in capsys.readouterr().out
    info = json.loads((out / "export.json").read_text())
    assert info["exports"]["torchscript"]["ok"] is True
    assert info["input"]["shape"] == ["B", 3, 48, 64]
    # An independent check on a fresh input and batch size, against the checkpoint's network.
    x = torch.randn(3, 3, 48, 64, generator=torch.Generator().manual_seed(7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.load(str(out / "depth_net.torchscript.pt"))
    model = load_from_checkpoint(str(ckpt))
    with torch.no_grad():
        ours, ref = traced(x), model(x)
    assert ours.shape == (3, 1, 48, 64)
    # The frozen copy is exported: BatchNorm is folded into the convolutions.
    assert "batch_norm" not in str(traced.inlined_graph)
    assert "aten::_convolution" in str(traced.inlined_graph)
    assert max_relative_error(ours.numpy(), ref.numpy()) <= 1e-4
    assert not list(out.glob(".*"))  # no temporary files left


def test_a_mismatch_fails_the_export(ckpt, tmp_path, capsys, monkeypatch):
    # An exporter whose model is off by 1e-3 relative (the real trace is tested above).
    monkeypatch.setattr(tools_export, "export_torchscript", lambda *args: 1e-3)
    assert export.main(["--ckpt_path", str(ckpt), "--output_dir", str(tmp_path), "--format",
                        "torchscript", *SIZE]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None,
                    reason="onnx is installed: the export itself is tested below")
def test_onnx_is_skipped_with_a_reason_when_not_installed(ckpt, tmp_path, capsys):
    assert export.main(["--ckpt_path", str(ckpt), "--output_dir", str(tmp_path), "--format",
                        "onnx", *SIZE]) == 0
    assert "onnx: skipped, the `onnx` package is not installed" in capsys.readouterr().out
    info = json.loads((tmp_path / "export.json").read_text())
    assert "skipped" in info["exports"]["onnx"]


def test_onnx_matches_pytorch(ckpt, tmp_path, capsys):
    pytest.importorskip("onnx")
    out = tmp_path / "exported"
    assert export.main(["--ckpt_path", str(ckpt), "--output_dir", str(out), "--format",
                        "onnx", *SIZE]) == 0
    assert (out / "depth_net.onnx").is_file()
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(out / "depth_net.onnx"),
                                   providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = load_from_checkpoint(str(ckpt))(x).numpy()
    got = session.run(None, {"image": x.numpy()})[0]
    assert max_relative_error(got, ref) <= 1e-4


def test_usage_errors(ckpt):
    from utils.errors import UsageError

    with pytest.raises(UsageError, match="--output_dir is required"):
        export.main(["--ckpt_path", str(ckpt)])
    with pytest.raises(UsageError, match="at least 33"):
        export.main(["--ckpt_path", str(ckpt), "--output_dir", "x", "--img_height", "16",
                     "--img_width", "96"])
