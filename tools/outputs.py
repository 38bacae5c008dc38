"""What inference.py writes for each frame: raw depth, 16-bit depth, colour maps, point
clouds and a depth video, each file complete or absent (written atomically)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from datasets.formats import depth_npy_bytes, encode_depth_png16, encode_image
from geometry import scale_intrinsics
from tools.predictor import resize_depth
from utils.io import write_atomic
from utils.pointcloud import depth_to_points, write_ply
from utils.visualization import add_colorbar, colorize_depth

__all__ = ["DepthWriter", "OutputSettings", "VideoSink"]


@dataclass(frozen=True)
class OutputSettings:
    """Which outputs to write (inference.py's options of the same names)."""

    save_depth: bool = False
    save_png16: bool = False
    save_vis: bool = False
    save_ply: bool = False
    vis_side_by_side: bool = False
    vis_min_depth: float | None = None
    vis_max_depth: float | None = None
    vis_colorbar: bool = False
    depth_scale: float = 1.0
    output_resolution: str = "network"
    ply_every: int = 1


class VideoSink:
    """The depth video: frames go to a temporary file renamed on close (mp4v, else MJPG/avi)."""

    def __init__(self, stem: Path, fps: float) -> None:
        self.stem, self.fps = stem, fps
        self.writer = None
        self.tmp: Path | None = None
        self.path: Path | None = None
        self.size: tuple[int, int] | None = None

    def _open(self, width: int, height: int) -> None:
        for suffix, fourcc in ((".mp4", "mp4v"), (".avi", "MJPG")):
            tmp = self.stem.with_name(f".{self.stem.name}.tmp{suffix}")
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps,
                                     (width, height))
            if writer.isOpened():
                self.writer, self.tmp = writer, tmp
                self.path = self.stem.with_name(self.stem.name + suffix)
                self.size = (width, height)
                return
            writer.release()
            tmp.unlink(missing_ok=True)
        raise OSError("OpenCV can write neither mp4 (mp4v) nor avi (MJPG) video here")

    def write(self, rgb: np.ndarray) -> None:
        """rgb: ``[H,W,3]`` uint8; every frame is resized to the first one's size."""
        if self.writer is None:
            self._open(rgb.shape[1], rgb.shape[0])
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_LINEAR)
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> Path | None:
        if self.writer is None:
            return None
        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop a half-written video (an error stopped the run)."""
        if self.writer is not None:
            self.writer.release()
            self.tmp.unlink(missing_ok=True)
            self.writer = None


@dataclass
class DepthWriter:
    """Writes the requested outputs of each frame into ``out``.

    K_input: intrinsics ``[3,3]`` of the input images (needed for point clouds); video: a
    :class:`VideoSink` for the colour maps, or None.
    """

    out: Path
    settings: OutputSettings
    K_input: np.ndarray | None = None
    video: VideoSink | None = None
    written: dict[str, int] = field(default_factory=dict)

    def _save(self, name: str, suffix: str, data: bytes) -> None:
        write_atomic(self.out / f"{name}{suffix}", data)
        self.written[suffix] = self.written.get(suffix, 0) + 1

    def write(self, name: str, image: np.ndarray, depth: np.ndarray, index: int = 0) -> None:
        """image: the input ``[H,W,3]`` float 0..255; depth: ``[h,w]`` at network size;
        index: the frame's position in a video (for ``ply_every``)."""
        s = self.settings
        H, W = image.shape[:2]
        h, w = depth.shape
        if s.output_resolution == "input":
            depth = resize_depth(depth, H, W)
        else:
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        image_u8 = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        if s.save_depth:
            self._save(name, ".npy", depth_npy_bytes(depth))
        if s.save_png16:
            self._save(name, ".png", encode_image(
                encode_depth_png16(depth, 1000.0 * s.depth_scale), ".png"))
        if s.save_vis or self.video is not None:
            vis = colorize_depth(depth * s.depth_scale, s.vis_min_depth, s.vis_max_depth)
            if s.vis_colorbar:
                vis = add_colorbar(vis, s.vis_min_depth, s.vis_max_depth)
            if s.vis_side_by_side:
                vis = np.concatenate([image_u8, vis], axis=1)
            if s.save_vis:
                self._save(name, ".jpg", encode_image(vis, ".jpg"))
            if self.video is not None:
                self.video.write(vis)
        if s.save_ply and index % s.ply_every == 0:
            # K is given for the input size; it follows the resize like the image does.
            K = self.K_input if s.output_resolution == "input" else scale_intrinsics(
                self.K_input, w / W, h / H)
            points, colors = depth_to_points(depth * s.depth_scale, K, image_u8)
            write_ply(self.out / f"{name}.ply", points, colors)
            self.written[".ply"] = self.written.get(".ply", 0) + 1
