"""Evaluate a checkpoint (any version, ours or published) on DATASET/testing.

    python test.py --config configs/v1/kitti.txt --dataset_dir /data/kitti --ckpt_path K

Prints AbsRel, SqRel, log10, RMSE, RMSE-log and δ<1.25ⁿ (docs/method.md, Evaluation), and
the same on dynamic and static pixels when testing/seg_mask exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from config import get_parser
from utils.cli import run_main
from utils.errors import UsageError, UserError
from utils.io import check_output_file, write_atomic

OPTIONS = ("dataset_dir", "dataset_name", "img_height", "img_width", "num_workers",
           "model_version", "resnet_layers", "ckpt_path", "device", "infer_batch_size",
           "infer_precision", "infer_compile", "output_json")


def main(argv: list[str] | None = None) -> int:
    opts = get_parser(("data", "model", "runtime", "evaluation"), __doc__.split("\n")[0],
                      names=OPTIONS, from_checkpoint=True).parse_args(argv)
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required")
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if opts.output_json:
        check_output_file(opts.output_json, "--output_json")  # before the model loads

    from datasets.check import check_dataset
    from losses.metrics import format_table, results_problem
    from tools.evaluation import evaluate_test_set
    from tools.predictor import Predictor

    predictor, settings = Predictor.from_options(opts)
    print("\n".join([*settings.notes, f"{opts.ckpt_path}: {settings.describe()}"]), flush=True)
    opts.dataset_name = settings.dataset_name
    check_dataset(opts, stage="test")
    results = evaluate_test_set(predictor.depth, opts.dataset_dir, settings.dataset_name,
                                predictor.height, predictor.width, opts.infer_batch_size,
                                opts.num_workers)
    print(f"{results['num_images']} test images")
    print(format_table(results))
    problem = results_problem(results)
    if problem is not None:
        raise UserError(f"{problem} ({opts.ckpt_path} on {opts.dataset_dir})")
    if opts.output_json:
        write_atomic(Path(opts.output_json), json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main, "test.py")
