"""Evaluate a checkpoint (any version, ours or published) on DATASET/testing (SPEC §5).

    python test.py --config configs/v1/kitti.txt --dataset_dir /data/kitti --ckpt_path K

Prints AbsRel, SqRel, log10, RMSE, RMSE-log and δ<1.25ⁿ, and the same on dynamic and
static pixels when testing/seg_mask exists.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from config import parse_options
from utils.cli import UsageError, run_main


def evaluate(model: Any, opts: argparse.Namespace, device: Any) -> dict[str, Any]:
    """SPEC §5 metrics of `model`'s depth on DATASET/testing, one image counted once.

    `model` maps ``[B,3,H,W]`` images to ``[B,1,H,W]`` depth in the precision it was built
    for (``SCDepthV1.inference_net``); it runs as given, without autocast."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from datasets.transforms import Compose, Resize, ToTensor
    from datasets.video_folder import TestDepthSet
    from losses.metrics import DepthEvaluator

    dataset = TestDepthSet(Path(opts.dataset_dir) / "testing", opts.dataset_name,
                           transform=Compose([Resize(opts.img_height, opts.img_width),
                                              ToTensor()]))
    # Ground truth may differ in size between images: batch the inputs, keep GT per image.
    loader = DataLoader(dataset, batch_size=opts.infer_batch_size,
                        num_workers=opts.num_workers, collate_fn=list)
    evaluator = DepthEvaluator(opts.dataset_name)
    model = model.to(device).eval()
    with torch.inference_mode():
        for items in tqdm(loader, desc="test", unit="batch"):
            tgt = torch.stack([it["tgt"] for it in items]).to(device)
            depth = model(tgt).float().cpu()
            for i, it in enumerate(items):
                dynamic = it.get("dynamic")
                evaluator.update(depth[i:i + 1], it["gt_depth"][None],
                                 None if dynamic is None else dynamic[None])
    return evaluator.compute()


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, ("data", "model", "runtime", "evaluation"),
                         description=__doc__.split("\n")[0])
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required")
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")

    import json

    from datasets.check import check_dataset
    from losses.metrics import format_table
    from models.sc_depth import load_from_checkpoint, resolve_device
    from utils.cli import check_precision

    check_dataset(opts, stage="test")
    device = resolve_device(opts.device)
    check_precision(opts.infer_precision, device)
    model = load_from_checkpoint(opts.ckpt_path, device)
    results = evaluate(model.inference_net(opts.infer_precision), opts, device)
    print(f"checkpoint: {opts.ckpt_path}  ({model.hparams['model_version']}, "
          f"ResNet-{model.hparams['resnet_layers']}, {results['num_images']} images)")
    print(format_table(results))
    if opts.output_json:
        Path(opts.output_json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main, "test.py")
