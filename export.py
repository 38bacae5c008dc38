"""Export DepthNet to TorchScript and ONNX, each checked against PyTorch on the same input.

    python export.py --ckpt_path K --output_dir exported/ --img_height 256 --img_width 832 \\
        [--format torchscript onnx]

Writes ``depth_net.torchscript.pt`` (``torch.jit.trace`` of the frozen inference copy, with
BatchNorm folded; load with ``torch.jit.load``) and ``depth_net.onnx`` (only when the
``onnx`` package is installed; the numeric check needs ``onnxruntime``), plus
``export.json`` describing the input. The models take a normalised image ``[B,3,H,W]``
float32, ``(rgb/255 − 0.45) / 0.225``, at the exported H×W (the traced graph fixes the
spatial size; the batch size may vary) and return depth ``[B,1,H,W]`` in network units.
An export whose output differs from PyTorch's by more than 1e-4 (relative) fails with exit
code 1.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

from config import finalize, get_parser
from utils.cli import UsageError, run_main

FORMATS = ("torchscript", "onnx")
# Max allowed |exported − pytorch| / |pytorch| over all output pixels (depth is > 0.1).
TOLERANCE = 1e-4


def build_parser():
    parser = get_parser(("data", "model"), description=__doc__.split("\n")[0])
    g = parser.add_argument_group("export")
    g.add_argument("--output_dir", type=str, default=None,
                   help="where to write the exported models")
    g.add_argument("--format", nargs="+", default=list(FORMATS), choices=FORMATS,
                   help="formats to export")
    g.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    return parser


def max_relative_error(out: Any, ref: Any) -> float:
    """max |out − ref| / |ref| (arrays or tensors of the same shape)."""
    import numpy as np

    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from PyTorch's {ref.shape}")
    return float(np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1e-12)))


def export_torchscript(net: Any, example: Any, path: Path, check_input: Any) -> float:
    """Trace ``net`` (eval mode) on ``example`` [B,3,H,W], save it to ``path``, reload it and
    return the max relative error against ``net`` on ``check_input`` (another input)."""
    import torch

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
    import torch

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


def main(argv: list[str] | None = None) -> int:
    opts = finalize(build_parser().parse_args(argv))
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if not opts.output_dir:
        raise UsageError("--output_dir is required")
    if opts.img_height < 32 or opts.img_width < 32:
        raise UsageError("--img_height and --img_width must be at least 32")

    import torch

    from models.sc_depth import load_from_checkpoint
    from utils.io import write_atomic

    model = load_from_checkpoint(opts.ckpt_path, "cpu")
    # The frozen copy test.py and inference.py run: BatchNorm folded into the convolutions,
    # channels_last weights: the traced model gave 13-30 % more images/s than the training
    # network's trace on our 2-core CPU (V1, 256×320, batch 4, two runs).
    net = model.inference_net("32")
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    size = (3, opts.img_height, opts.img_width)
    example = torch.randn((1, *size), generator=gen)
    # A different input, with another batch size, so a trace that baked in its example fails.
    check_input = torch.randn((2, *size), generator=gen)
    failed = False
    report: dict[str, Any] = {}

    def judge(name: str, err: float | None, path: Path, note: str = "") -> None:
        nonlocal failed
        if err is None:
            print(f"{name}: wrote {path} ({note})")
            report[name] = {"file": path.name, "max_rel_error": None, "note": note}
            return
        ok = err <= TOLERANCE
        failed |= not ok
        print(f"{name}: wrote {path}; max relative error vs PyTorch {err:.2e} "
              f"({'ok' if ok else f'FAILED, above {TOLERANCE:g}'}){' ' + note if note else ''}")
        report[name] = {"file": path.name, "max_rel_error": err, "ok": ok}

    if "torchscript" in opts.format:
        path = out / "depth_net.torchscript.pt"
        judge("torchscript", export_torchscript(net, example, path, check_input), path)
    if "onnx" in opts.format:
        if importlib.util.find_spec("onnx") is None:
            print("onnx: skipped, the `onnx` package is not installed (pip install onnx "
                  "onnxruntime to export and check ONNX)")
            report["onnx"] = {"skipped": "the onnx package is not installed"}
        else:
            path = out / "depth_net.onnx"
            err, note = export_onnx(net, example, path, check_input, opts.opset)
            judge("onnx", err, path, note)
    info = {"checkpoint": str(opts.ckpt_path), "model_version": model.hparams["model_version"],
            "resnet_layers": model.hparams["resnet_layers"],
            "input": {"shape": ["B", *size], "dtype": "float32",
                      "normalisation": "(rgb / 255 - 0.45) / 0.225 per channel"},
            "output": {"shape": ["B", 1, opts.img_height, opts.img_width],
                       "meaning": "depth in network units (scale unknown)"},
            "exports": report}
    write_atomic(out / "export.json", json.dumps(info, indent=2).encode())
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main, "export.py")
