"""Everything the code knows about a dataset, one entry per ``--dataset_name``.

Adding a dataset is one :class:`DatasetSpec` in :data:`DATASETS` (and a test): the training
size, how its ground truth is stored, and how it is evaluated. The readers
(``datasets.formats``), the options (``config.py``) and the metrics (``losses.metrics``)
all read their facts from here. Imports nothing heavy, so the option parser stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from utils.errors import UsageError

__all__ = ["DATASETS", "DATASET_NAMES", "Crop", "DatasetSpec", "dataset_spec", "eval_mask"]


@dataclass(frozen=True)
class Crop:
    """An evaluation crop, as fractions of the GT size or as pixels of a reference size.

    ``rows``/``cols``: (start, stop), stop exclusive. With ``reference`` (height, width) the
    bounds are pixels of that size, scaled proportionally (integer arithmetic) to GT of
    another size; without it they are fractions, taken as ``int(fraction · size)``.
    """

    rows: tuple[float, float]
    cols: tuple[float, float]
    reference: tuple[int, int] | None = None

    def bounds(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` in pixels of a ``height × width`` map."""
        if self.reference is None:
            return (int(self.rows[0] * height), int(self.rows[1] * height),
                    int(self.cols[0] * width), int(self.cols[1] * width))
        h0, w0 = self.reference
        return (int(self.rows[0]) * height // h0, int(self.rows[1]) * height // h0,
                int(self.cols[0]) * width // w0, int(self.cols[1]) * width // w0)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    train_size: the papers' training ``(height, width)`` (``--img_height/--img_width``
    override it). gt_suffixes: accepted ground-truth file types, in the order they are
    looked for. png_scale: stored value / png_scale = metres, for 16-bit PNG ground truth
    (None: the dataset has no PNG ground truth). eval_range: (min, max) metres scored.
    crop: the evaluation crop, or None for the whole image.
    """

    name: str
    train_size: tuple[int, int]
    gt_suffixes: tuple[str, ...]
    png_scale: float | None
    eval_range: tuple[float, float]
    crop: Crop | None = None


# Garg crop (KITTI, as fractions) and Eigen crop (NYUv2, pixels of 480×640): the public
# code's constants.
GARG_CROP = Crop(rows=(0.40810811, 0.99189189), cols=(0.03594771, 0.96405229))
EIGEN_CROP = Crop(rows=(45, 471), cols=(41, 601), reference=(480, 640))

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    # GT: scipy.sparse .npz for training/validation, .npy or dense .npz for testing, metres
    DatasetSpec("kitti", (256, 832), (".npz", ".npy"), None, (0.1, 80.0), GARG_CROP),
    DatasetSpec("nyu", (256, 320), (".png",), 5000.0, (0.1, 10.0), EIGEN_CROP),
    DatasetSpec("ddad", (384, 640), (".npz", ".npy"), None, (0.1, 200.0)),
    DatasetSpec("bonn", (256, 320), (".png",), 1000.0, (0.1, 10.0)),
    DatasetSpec("tum", (256, 320), (".png",), 1000.0, (0.1, 10.0)),
    # the built-in generated dataset (datasets/synthetic): PNG millimetres, or metres in
    # .npy/.npz so that a generator may use either
    DatasetSpec("synthetic", (256, 320), (".png", ".npy", ".npz"), 1000.0, (0.1, 100.0)),
)}

DATASET_NAMES = tuple(DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    """The entry of ``name``; an unknown name is a UsageError listing the choices."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset name {name!r} "
                         f"(choices: {', '.join(DATASET_NAMES)})") from None


def eval_mask(gt: Any, spec: DatasetSpec) -> Any:
    """Pixels that are scored: GT strictly inside the dataset's range and inside its crop.

    gt: ``[..., H, W]`` depth in metres (0 = no measurement), a torch tensor or a numpy
    array. Returns bool of the same kind and shape. The one definition of a valid pixel:
    the metrics score these, and the dataset check refuses ground truth without any.
    """
    min_depth, max_depth = spec.eval_range
    mask = (gt > min_depth) & (gt < max_depth)
    if spec.crop is not None:
        top, bottom, left, right = spec.crop.bounds(gt.shape[-2], gt.shape[-1])
        mask[..., :top, :] = False
        mask[..., bottom:, :] = False
        mask[..., :left] = False
        mask[..., right:] = False
    return mask
