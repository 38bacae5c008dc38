"""The one-command demo (`make demo`): synthetic data -> V1 training -> test -> depth maps.

1. generates the built-in synthetic dataset into demo/data (once),
2. scores a constant-depth prediction and the untrained network on its test set,
3. trains SC-Depth V1 with configs/v1/synthetic.txt (GPU if there is one, else CPU),
4. scores the trained network with test.py and writes colour depth maps of demo/input/,
5. prints the three AbsRel figures side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import inference  # noqa: E402
import test as test_script  # noqa: E402
import train  # noqa: E402
from config import parse_options  # noqa: E402
from datasets.synthetic import generate_dataset  # noqa: E402
from models.sc_depth import build_model, resolve_device  # noqa: E402


def default_precision() -> str:
    """bf16 mixed precision on CPUs that run it natively (AVX-512-bf16/AMX: 1.7x faster
    steps), else fp32: emulated bf16 would be slower. On a GPU fp32: the demo's batch-4
    steps wait on kernel launches, so bf16 was no faster there (H100, README), and it cost
    about 0.01 AbsRel on this configuration."""
    if torch.cuda.is_available():
        return "32"
    return "bf16-mixed" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32"


class ConstantDepth(nn.Module):
    """The baseline every depth network must beat: the same depth everywhere."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(img[:, :1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT / "demo" / "data"),
                        help="where the synthetic dataset is (generated if missing)")
    parser.add_argument("--output_dir", default=str(ROOT / "demo" / "output"),
                        help="runs, checkpoints and depth maps")
    parser.add_argument("--config", default=str(ROOT / "configs" / "v1" / "synthetic.txt"),
                        help="training config")
    parser.add_argument("--max_steps", type=int, default=-1,
                        help="cap the training steps (-1: as the config says)")
    parser.add_argument("--precision", default=None, choices=("32", "bf16-mixed", "16-mixed"),
                        help="training precision (default: bf16-mixed on CPUs that support it "
                             "natively, else 32)")
    args = parser.parse_args(argv)

    data, out = Path(args.data_dir), Path(args.output_dir)
    if not (data / "summary.json").is_file():
        print(f"[1/5] generating the synthetic dataset in {data}", flush=True)
        generate_dataset(data, seed=0)
    else:
        print(f"[1/5] using the synthetic dataset in {data}", flush=True)

    common = ["--config", args.config, "--dataset_dir", str(data)]
    opts = parse_options(common, ("data", "model", "runtime", "training"))
    device = resolve_device("auto")

    print("[2/5] scoring a constant depth and the untrained network", flush=True)
    constant = test_script.evaluate(ConstantDepth(), opts, device)
    torch.manual_seed(opts.seed if opts.seed is not None else 0)
    untrained = test_script.evaluate(build_model(opts).inference_net(), opts, device)

    precision = args.precision or default_precision()
    print(f"[3/5] training SC-Depth V1 ({precision})", flush=True)
    code = train.main([*common, "--log_dir", str(out / "ckpts"),
                       "--max_steps", str(args.max_steps), "--precision", precision])
    if code:
        return code
    run = max((out / "ckpts" / opts.exp_name).glob("version_*"),
              key=lambda p: int(p.name.split("_")[1]))
    ckpt = run / "last.ckpt"

    print(f"[4/5] testing {ckpt}", flush=True)
    json_path = out / "trained_metrics.json"
    test_script.main([*common, "--ckpt_path", str(ckpt), "--output_json", str(json_path)])
    import json

    trained = json.loads(json_path.read_text())

    print("[5/5] depth maps of demo/input", flush=True)
    inference.main(["--config", args.config, "--input_dir", str(ROOT / "demo" / "input"),
                    "--output_dir", str(out / "depth"), "--ckpt_path", str(ckpt),
                    "--save-vis", "--save-depth"])

    rows = [("constant depth", constant), ("untrained network", untrained),
            ("trained SC-Depth V1", trained)]
    print("\nAbsRel on the synthetic test set (median-scaled, lower is better):")
    for name, res in rows:
        print(f"  {name:<22} {res['full']['abs_rel']:.4f}   (a1 {res['full']['a1']:.3f})")
    print(f"depth maps: {out / 'depth'}   TensorBoard: tensorboard --logdir {out / 'ckpts'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
