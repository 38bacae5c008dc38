"""Evaluate a checkpoint (any version, ours or published) on DATASET/testing.

    python test.py --config configs/v1/kitti.txt --dataset_dir /data/kitti --ckpt_path K

Prints AbsRel, SqRel, log10, RMSE, RMSE-log and δ<1.25ⁿ (docs/method.md, Evaluation), and
the same on dynamic and static pixels when testing/seg_mask exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from config import parse_options
from utils.cli import run_main
from utils.errors import UsageError
from utils.io import write_atomic


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, ("data", "model", "runtime", "evaluation"),
                         description=__doc__.split("\n")[0])
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required")
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")

    from datasets.check import check_dataset
    from losses.metrics import format_table
    from tools.evaluation import evaluate_test_set
    from tools.predictor import Predictor

    check_dataset(opts, stage="test")
    predictor = Predictor.from_checkpoint(opts.ckpt_path, opts.device, opts.infer_precision,
                                          opts.img_height, opts.img_width)
    results = evaluate_test_set(predictor.depth, opts.dataset_dir, opts.dataset_name,
                                predictor.height, predictor.width, opts.infer_batch_size,
                                opts.num_workers)
    hp = predictor.model.opts
    print(f"checkpoint: {opts.ckpt_path}  ({hp.model_version}, ResNet-{hp.resnet_layers}, "
          f"{results['num_images']} images)")
    print(format_table(results))
    if opts.output_json:
        write_atomic(Path(opts.output_json), json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main, "test.py")
