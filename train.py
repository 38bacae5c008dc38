"""Train SC-Depth V1/V2/V3 on a video dataset.

    python train.py --config configs/v1/kitti.txt --dataset_dir /data/kitti

Logs and checkpoints go to <log_dir>/<exp_name>/version_N (TensorBoard events, the best
three checkpoints by val_loss and last.ckpt).
"""

from __future__ import annotations

from config import parse_options
from utils.cli import run_main
from utils.errors import UsageError


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, description=__doc__.split("\n")[0])
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required (or dataset_dir = ... in the --config file)")

    # The dataset check first: a mistake in the dataset is reported before the heavy imports.
    from datasets.check import check_dataset

    summary = check_dataset(opts, stage="train")
    if opts.check_only:
        print(summary.describe())
        return 0
    # Heavy imports after parsing, so that --help and option errors answer at once.
    from tools.training import train

    return train(opts)


if __name__ == "__main__":
    run_main(main, "train.py")
