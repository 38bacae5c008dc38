"""Your own videos as a training set: one scene of frames and ``cam.txt`` per video.

The layout is the one training reads (docs/method.md, Data): ``training/<video name>/``
holding ``000000.jpg`` … and ``cam.txt``, with ``train.txt`` and ``val.txt`` naming the scenes.
Validation videos become scenes of their own; without any, the last part of each video is
split off into ``<video name>_val`` so that validation never sees training frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.formats import (
    DatasetError,
    encode_image,
    write_intrinsics,
    write_scene_list,
)
from datasets.frames import video_frames
from geometry import scale_intrinsics
from utils.errors import UsageError
from utils.io import staged_folder

__all__ = ["write_video_dataset"]

MIN_SCENE_FRAMES = 3  # a target and two references (the default --sequence_length)


def _scene_names(videos: Sequence[Path]) -> list[str]:
    names = [v.stem for v in videos]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"two videos would make the same scene name {repeated[0]!r}: "
                         "rename one of them")
    return names


def _write_video(video: Path, scene: Path, K: np.ndarray, every: int, max_side: int,
                 bar: tqdm) -> tuple[int, tuple[int, int]]:
    """Every ``every``-th frame of ``video`` into ``scene`` as 000000.jpg …, with cam.txt;
    returns the number of frames and their size (height, width)."""
    frames, _, _ = video_frames(video)
    scene.mkdir(parents=True)
    count, size = 0, (0, 0)
    for index, frame in enumerate(frames):
        bar.update(1)
        if index % every:
            continue
        image = frame.image
        H, W = image.shape[:2]
        if count == 0:
            cx, cy = float(K[0, 2]), float(K[1, 2])
            if not (0 <= cx <= W and 0 <= cy <= H):
                raise DatasetError(
                    f"{video.name}: the principal point ({cx:g}, {cy:g}) lies outside its "
                    f"{W}x{H} frames: are the intrinsics for another resolution?")
            scale = min(1.0, max_side / max(H, W)) if max_side > 0 else 1.0
            size = (max(round(H * scale), 1), max(round(W * scale), 1))
            write_intrinsics(scene / "cam.txt", scale_intrinsics(K, size[1] / W, size[0] / H))
        if image.shape[:2] != size:
            image = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
        rgb = np.clip(image + 0.5, 0, 255).astype(np.uint8)
        (scene / f"{count:06d}.jpg").write_bytes(encode_image(rgb, ".jpg"))
        count += 1
    if count == 0:
        raise DatasetError(f"no frames could be read from {video}")
    return count, size


def _split_off(scene: Path, fraction: float) -> Path | None:
    """Move the last ``fraction`` of ``scene``'s frames into ``<scene>_val`` (with cam.txt);
    None when either part would be shorter than MIN_SCENE_FRAMES."""
    frames = sorted(scene.glob("*.jpg"))
    n_val = math.ceil(fraction * len(frames))
    if n_val < MIN_SCENE_FRAMES or len(frames) - n_val < MIN_SCENE_FRAMES:
        return None
    val = scene.parent / f"{scene.name}_val"
    val.mkdir()
    for i, frame in enumerate(frames[-n_val:]):
        frame.rename(val / f"{i:06d}.jpg")
    (val / "cam.txt").write_bytes((scene / "cam.txt").read_bytes())
    return val


def write_video_dataset(videos: Sequence[Path], output_dir: Path, K: np.ndarray,
                        val_videos: Sequence[Path] = (), val_fraction: float = 0.1,
                        every: int = 1, max_side: int = 0, overwrite: bool = False,
                        progress: bool = True) -> dict:
    """Write ``output_dir/training``: a scene per video (frames, cam.txt), train.txt and
    val.txt; all of it or nothing.

    K: ``[3,3]`` intrinsics of the videos' frames at their own resolution (scaled when frames
    are shrunk to ``max_side``, 0 keeps them). every: keep every n-th frame. Without
    ``val_videos`` the last ``val_fraction`` of each video becomes its validation scene.
    Returns ``{"train": {scene: frames}, "val": {scene: frames}, "sizes": [(H, W), …]}``.
    """
    if not videos:
        raise UsageError("give at least one --input_video")
    if every < 1:
        raise UsageError("--every must be at least 1")
    if not 0 <= val_fraction < 1:
        raise UsageError("--val_fraction must be in [0, 1)")
    names = _scene_names([*videos, *val_videos])
    for video in [*videos, *val_videos]:
        if not Path(video).is_file():
            raise DatasetError(f"no such video file: {video}")
    totals = [video_frames(Path(v))[1] for v in [*videos, *val_videos]]
    train: dict[str, int] = {}
    val: dict[str, int] = {}
    try:
        with staged_folder(output_dir, overwrite) as tmp, \
                tqdm(total=sum(totals) or None, desc="frames", unit="frame",
                     disable=not progress) as bar:
            training = tmp / "training"
            sizes = set()
            for video, name in zip([*videos, *val_videos], names):
                count, size = _write_video(Path(video), training / name, K, every, max_side,
                                           bar)
                sizes.add(size)
                (train if len(train) < len(videos) else val)[name] = count
            if not val_videos and val_fraction > 0:
                for name in list(train):
                    split = _split_off(training / name, val_fraction)
                    if split is not None:
                        val[split.name] = train[name] - len(list((training / name).glob("*.jpg")))
                        train[name] -= val[split.name]
            short = [n for n, c in {**train, **val}.items() if c < MIN_SCENE_FRAMES]
            if short:
                raise DatasetError(f"scene {short[0]} has fewer than {MIN_SCENE_FRAMES} frames "
                                   "(a longer video, or a smaller --every)")
            write_scene_list(training / "train.txt", train)
            write_scene_list(training / "val.txt", val)
    except FileExistsError as err:
        raise UsageError(str(err)) from None
    return {"train": train, "val": val, "sizes": sorted(sizes)}
