"""Scoring depth on a dataset's test split (``DATASET/testing``): test.py and the demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.registry import dataset_spec
from datasets.transforms import Compose, Resize, ToTensor
from datasets.video_folder import TestDepthSet
from losses.metrics import DepthEvaluator

__all__ = ["evaluate_test_set"]


def evaluate_test_set(depth: Callable[[torch.Tensor], torch.Tensor], dataset_dir: str | Path,
                      dataset_name: str, height: int, width: int, batch_size: int = 4,
                      num_workers: int = 0) -> dict[str, Any]:
    """The metrics (``DepthEvaluator.compute()``) of ``depth`` on ``dataset_dir/testing``.

    depth: network inputs ``[B,3,height,width]`` (normalised) -> depth ``[B,1,h,w]``, e.g.
    ``Predictor.depth``. Images are decoded by ``num_workers`` loader processes; every
    image counts once, with dynamic/static metrics when ``testing/seg_mask`` exists.
    """
    dataset = TestDepthSet(Path(dataset_dir) / "testing", dataset_name,
                           transform=Compose([Resize(height, width), ToTensor()]))
    # Ground truth may differ in size between images: batch the inputs, keep GT per image.
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=list)
    evaluator = DepthEvaluator(dataset_spec(dataset_name))
    with torch.inference_mode():
        for items in tqdm(loader, desc="test", unit="batch"):
            pred = depth(torch.stack([it["tgt"] for it in items])).float().cpu()
            for i, it in enumerate(items):
                dynamic = it.get("dynamic")
                evaluator.update(pred[i:i + 1], it["gt_depth"][None],
                                 None if dynamic is None else dynamic[None])
    return evaluator.compute()
