"""Exporting DepthNet to TorchScript and ONNX, each checked against PyTorch (export.py)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["TOLERANCE", "export_onnx", "export_torchscript", "max_relative_error"]

# Max allowed |exported − pytorch| / |pytorch| over all output pixels (depth is > 0.1).
TOLERANCE = 1e-4


def max_relative_error(out: Any, ref: Any) -> float:
    """max |out − ref| / |ref| (arrays or tensors of the same shape)."""
    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from PyTorch's {ref.shape}")
    return float(np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1e-12)))


def export_torchscript(net: Any, example: Any, path: Path, check_input: Any) -> float:
    """Trace ``net`` (eval mode) on ``example`` [B,3,H,W], save it to ``path``, reload it and
    return the max relative error against ``net`` on ``check_input`` (another input)."""
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export but still what C++/mobile
        # runtimes load; the tracer's note that the input size becomes a constant is the
        # documented behaviour here (the export is for one H×W).
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            traced = torch.jit.trace(net, example, check_trace=False)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.jit.save(traced, str(tmp))
        tmp.replace(path)
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return max_relative_error(loaded(check_input).numpy(), net(check_input).numpy())


def export_onnx(net: Any, example: Any, path: Path, check_input: Any, opset: int,
                ) -> tuple[float | None, str]:
    """Export to ONNX (batch axis dynamic), validate the graph with ``onnx.checker`` and,
    when onnxruntime is installed, return the max relative error against PyTorch on
    ``check_input``. Returns ``(error or None, message)``."""
    import onnx

    tmp = path.with_name(f".{path.name}.tmp")
    with torch.no_grad():
        torch.onnx.export(net, (example,), str(tmp), input_names=["image"],
                          output_names=["depth"], opset_version=opset,
                          dynamic_axes={"image": {0: "batch"}, "depth": {0: "batch"}},
                          dynamo=False)
    onnx.checker.check_model(onnx.load(str(tmp)))
    tmp.replace(path)
    if importlib.util.find_spec("onnxruntime") is None:
        return None, "onnxruntime is not installed: numeric check skipped"
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(["depth"], {"image": check_input.numpy()})[0]
    with torch.no_grad():
        ref = net(check_input).numpy()
    return max_relative_error(out, ref), "checked with onnxruntime"
