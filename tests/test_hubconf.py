"""hubconf.py: torch.hub.load(repo, "sc_depth", source="local") gives the Python API, whose
depth equals inference.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from helpers import ROOT, run_tool
from PIL import Image

from datasets.formats import read_image


def test_hub_model_predicts_what_inference_py_writes(ckpt: Path, tmp_path: Path) -> None:
    image = tmp_path / "in" / "photo.jpg"
    image.parent.mkdir()
    image.write_bytes((ROOT / "demo" / "input" / "00.jpg").read_bytes())
    model = torch.hub.load(str(ROOT), "sc_depth", source="local", ckpt_path=str(ckpt),
                           device="cpu", img_height=64, img_width=96)
    depth = model.predict(image)
    rgb = read_image(image)
    assert depth.shape == rgb.shape[:2] and depth.dtype == np.float32

    assert run_tool("inference", ["--input_dir", str(image.parent), "--output_dir",
                                  str(tmp_path / "out"), "--ckpt_path", str(ckpt), "--device",
                                  "cpu", "--img_height", "64", "--img_width", "96",
                                  "--save_depth", "--output_resolution", "input"]) == 0
    np.testing.assert_array_equal(depth, np.load(tmp_path / "out" / "photo.npy"))
    # the same picture as an array, a PIL image, or in a batch
    np.testing.assert_array_equal(model.predict(rgb.astype(np.uint8)), depth)
    np.testing.assert_array_equal(model.predict(Image.open(image)), depth)
    both = model.predict([image, rgb])
    assert len(both) == 2 and np.allclose(both[0], depth, rtol=1e-5)
