"""Data: file readers, transforms that carry the intrinsics along, folder datasets, DataModule.

`VideoDataModule` is imported on first use, so that the readers can be used without
loading PyTorch Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datasets.depth_io import (
    DatasetError,
    list_images,
    read_gt_depth,
    read_image,
    read_intrinsics,
    read_prior,
)
from datasets.transforms import Compose, RandomHorizontalFlip, RandomScaleCrop, Resize, ToTensor
from datasets.video_folder import TestDepthSet, TrainFolder, ValidationDepthSet

if TYPE_CHECKING:
    from datasets.data_module import VideoDataModule

__all__ = [
    "Compose",
    "DatasetError",
    "RandomHorizontalFlip",
    "RandomScaleCrop",
    "Resize",
    "TestDepthSet",
    "ToTensor",
    "TrainFolder",
    "ValidationDepthSet",
    "VideoDataModule",
    "list_images",
    "read_gt_depth",
    "read_image",
    "read_intrinsics",
    "read_prior",
]


def __getattr__(name: str) -> Any:
    if name == "VideoDataModule":
        from datasets.data_module import VideoDataModule

        return VideoDataModule
    raise AttributeError(f"module 'datasets' has no attribute {name!r}")
