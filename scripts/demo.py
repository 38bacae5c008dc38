"""The one-command demo (`make demo`): synthetic data -> V1 training -> what it learned.

1. generates the built-in synthetic dataset into demo/data (once),
2. scores a constant-depth prediction and the untrained network on its test set,
3. trains SC-Depth V1 with configs/v1/synthetic.txt (GPU if there is one, else CPU),
4. scores the trained network on the test set,
5. draws test frames it never trained on (input | predicted depth | ground truth | error,
   before and after training, one colour scale per frame) into demo/output/test_frames.jpg
   and prints the three AbsRel figures side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from config import parse_options  # noqa: E402
from datasets.check import check_dataset  # noqa: E402
from datasets.formats import denormalize_image, write_image  # noqa: E402
from datasets.synthetic import generate_dataset  # noqa: E402
from datasets.transforms import Compose, Resize, ToTensor  # noqa: E402
from datasets.video_folder import TestDepthSet  # noqa: E402
from options import PRECISIONS  # noqa: E402
from systems import build_model  # noqa: E402
from tools.evaluation import evaluate_test_set  # noqa: E402
from tools.predictor import Predictor  # noqa: E402
from tools.training import train  # noqa: E402
from utils.io import write_atomic  # noqa: E402
from utils.runtime import native_cpu_bf16  # noqa: E402
from utils.visualization import depth_panel, label  # noqa: E402

PICTURES = 4  # test frames drawn, spread over the test set's scenes


def default_precision() -> str:
    """bf16 mixed precision on CPUs that run it natively (AVX-512-bf16/AMX), else fp32:
    emulated bf16 would be slower. On a GPU fp32: the demo's batch-4 steps wait on kernel
    launches, so bf16 was no faster there and cost accuracy (docs/performance.md)."""
    if torch.cuda.is_available():
        return "32"
    return "bf16-mixed" if native_cpu_bf16() else "32"


class ConstantDepth(nn.Module):
    """The baseline every depth network must beat: the same depth everywhere."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(img[:, :1])


def test_frames(data: Path, opts) -> tuple[list[str], torch.Tensor, list]:
    """PICTURES test frames spread over the test set: names, network inputs [N,3,H,W] and
    ground-truth depths (the test set's scenes follow one another)."""
    dataset = TestDepthSet(data / "testing", opts.dataset_name,
                           transform=Compose([Resize(opts.img_height, opts.img_width),
                                              ToTensor()]))
    n = min(PICTURES, len(dataset))
    items = [dataset[round((k + 0.5) * len(dataset) / n)] for k in range(n)]
    return ([it["name"] for it in items], torch.stack([it["tgt"] for it in items]),
            [it["gt_depth"].numpy() for it in items])


def panels(depth, frames: torch.Tensor, gts: list, when: str) -> list:
    """One input | prediction | ground truth | error row per frame, the first tile labelled
    with ``when``."""
    with torch.inference_mode():
        preds = depth(frames).float().cpu().numpy()
    rows = []
    for img, pred, gt in zip(frames, preds, gts):
        row = depth_panel(denormalize_image(img), pred[0], gt)
        w = row.shape[1] // 4
        row[:, :w] = label(denormalize_image(img), when)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset_dir", "--data_dir", default=str(ROOT / "demo" / "data"),
                        help="where the synthetic dataset is (generated if missing)")
    parser.add_argument("--output_dir", default=str(ROOT / "demo" / "output"),
                        help="runs, checkpoints, metrics and pictures")
    parser.add_argument("--config", default=str(ROOT / "configs" / "v1" / "synthetic.txt"),
                        help="training config")
    parser.add_argument("--max_steps", type=int, default=-1,
                        help="cap the training steps (-1: as the config says)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="training precision (default: bf16-mixed on CPUs that support it "
                             "natively, else 32)")
    args = parser.parse_args(argv)

    data, out = Path(args.dataset_dir), Path(args.output_dir)
    if not (data / "summary.json").is_file():
        print(f"[1/5] generating the synthetic dataset in {data}", flush=True)
        generate_dataset(data, seed=0)
    else:
        print(f"[1/5] using the synthetic dataset in {data}", flush=True)

    precision = args.precision or default_precision()
    opts = parse_options(["--config", args.config, "--dataset_dir", str(data),
                          "--log_dir", str(out / "ckpts"), "--max_steps", str(args.max_steps),
                          "--precision", precision],
                         ("data", "model", "losses", "training", "runtime"))

    def score(depth) -> dict:
        return evaluate_test_set(depth, data, opts.dataset_name, opts.img_height,
                                 opts.img_width, opts.infer_batch_size, opts.num_workers)

    print("[2/5] scoring a constant depth and the untrained network", flush=True)
    constant = score(ConstantDepth())
    torch.manual_seed(opts.seed if opts.seed is not None else 0)
    untrained_net = build_model(opts).inference_net().eval()
    untrained = score(untrained_net)
    names, frames, gts = test_frames(data, opts)
    before = panels(untrained_net, frames, gts, "untrained")

    print(f"[3/5] training SC-Depth V1 ({precision})", flush=True)
    check_dataset(opts, stage="train")
    code = train(opts)
    if code:
        return code
    run = max((out / "ckpts" / opts.exp_name).glob("version_*"),
              key=lambda p: int(p.name.split("_")[1]))
    ckpt = run / "last.ckpt"

    print(f"[4/5] testing {ckpt}", flush=True)
    predictor = Predictor.from_checkpoint(ckpt, "auto", "32", opts.img_height, opts.img_width)
    trained = score(predictor.depth)
    write_atomic(out / "trained_metrics.json", json.dumps(trained, indent=2))

    print("[5/5] drawing test frames before and after training", flush=True)
    after = panels(predictor.depth, frames, gts, "trained")
    picture = out / "test_frames.jpg"
    write_image(picture, np.concatenate([r for pair in zip(before, after) for r in pair]))

    rows = [("constant depth", constant), ("untrained network", untrained),
            ("trained SC-Depth V1", trained)]
    print("\nAbsRel on the synthetic test set (median-scaled, lower is better):")
    for name, res in rows:
        print(f"  {name:<22} {res['full']['abs_rel']:.4f}   (a1 {res['full']['a1']:.3f})")
    print(f"test frames ({', '.join(names)}), each untrained above trained: {picture}")
    print(f"TensorBoard: tensorboard --logdir {out / 'ckpts'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
