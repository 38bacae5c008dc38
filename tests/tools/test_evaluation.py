"""tools/evaluation.py: the test-split metrics test.py and the demo print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tools.evaluation import evaluate_test_set


def test_constant_depth_scores_as_the_generator_says(tiny_dataset: Path) -> None:
    summary = json.loads((tiny_dataset / "summary.json").read_text())
    results = evaluate_test_set(lambda x: torch.ones_like(x[:, :1]), tiny_dataset,
                                "synthetic", 32, 40, batch_size=4)
    assert results["num_images"] == summary["num_test_images"]
    # median scaling makes a constant prediction the median GT depth of each image
    assert results["full"]["abs_rel"] == pytest.approx(summary["constant_depth_abs_rel"],
                                                        rel=1e-4)
    assert results["dynamic"] is not None and results["static"] is not None
