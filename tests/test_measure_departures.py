"""scripts/measure_departures.py: each public form it writes out differs from ours the way
docs/method.md says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli

measure = cli("measure_departures")


@pytest.mark.slow
def test_the_measured_departures_point_the_documented_way(tiny_dataset: Path, ckpt: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "effects.json"
    assert measure.main(["--dataset_dir", str(tiny_dataset), "--v1_ckpt", str(ckpt),
                         "--img_height", "64", "--img_width", "80", "--batches", "2",
                         "--output_json", str(out)]) == 0
    r = json.loads(out.read_text())
    align = r["align_corners"]
    assert align["identity_warp_error_ours"] < 1e-5 < align["identity_warp_error_public"]
    validity = r["in_image_validity"]
    # the in-image rule only removes pixels
    assert validity["ours"]["valid_fraction"] <= validity["public"]["valid_fraction"]
    pairs = r["ranking"]["global_pairs"]
    assert pairs["raster"]["within_3_rows"] > 0.8 > pairs["spread"]["within_3_rows"]
    counting = r["eval_counting"]["v1"]
    assert counting["images"] == len(list((tiny_dataset / "testing" / "color").iterdir()))
    if counting["with_moving_objects"] == 0:
        assert counting["public_counting"] == pytest.approx(counting["ours"])
    still = r["frame_index"]["still_camera_rising_exposure"]
    assert still["public"] == 30 > still["ours"]
