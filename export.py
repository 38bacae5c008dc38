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
from pathlib import Path
from typing import Any

from config import get_parser
from utils.cli import run_main
from utils.errors import UsageError
from utils.io import check_output_dir, write_atomic

FORMATS = ("torchscript", "onnx")


def build_parser():
    parser = get_parser(("data", "model"), __doc__.split("\n")[0],
                        names=("img_height", "img_width", "ckpt_path"), from_checkpoint=True)
    g = parser.add_argument_group("export")
    g.add_argument("--output_dir", type=str, default=None,
                   help="where to write the exported models")
    g.add_argument("--format", nargs="+", default=list(FORMATS), choices=FORMATS,
                   help="formats to export")
    g.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if not opts.output_dir:
        raise UsageError("--output_dir is required")
    check_output_dir(opts.output_dir, "--output_dir")  # before the model loads

    import torch

    from tools.export import TOLERANCE, export_onnx, export_torchscript
    from tools.predictor import Predictor

    opts.device, opts.infer_precision = "cpu", "32"
    predictor, settings = Predictor.from_options(opts)
    print("\n".join([*settings.notes, f"{opts.ckpt_path}: {settings.describe()}"]), flush=True)
    # The frozen copy test.py and inference.py run (BatchNorm folded, channels_last): its
    # trace is faster than the training network's (docs/performance.md).
    net, model = predictor.net, predictor.model
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    size = (3, predictor.height, predictor.width)
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
    info = {"checkpoint": str(opts.ckpt_path), "model_version": model.opts.model_version,
            "resnet_layers": model.opts.resnet_layers,
            "input": {"shape": ["B", *size], "dtype": "float32",
                      "normalisation": "(rgb / 255 - 0.45) / 0.225 per channel"},
            "output": {"shape": ["B", 1, predictor.height, predictor.width],
                       "meaning": "depth in network units (scale unknown)"},
            "exports": report}
    write_atomic(out / "export.json", json.dumps(info, indent=2).encode())
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main, "export.py")
