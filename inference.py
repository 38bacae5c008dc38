"""Run a trained DepthNet on a folder of images or on a video (SPEC §6).

    python inference.py --config configs/v1/nyu.txt --input_dir imgs/ --output_dir out/ \\
        --ckpt_path K --save-vis --save-depth
    python inference.py --input_video clip.mp4 --output_dir out/ --ckpt_path K \\
        --img_height 256 --img_width 832 --save-video --save-ply --cam_txt cam.txt

Per input (``<name>`` = the image's file name without suffix, or ``frame_000000`` … for
video frames): ``--save-depth`` <name>.npy (float32 depth, network units, at network
resolution as the public code does), ``--save-vis`` <name>.jpg colour map, ``--save-png16``
<name>.png 16-bit depth, ``--save-ply`` <name>.ply coloured point cloud; for a video
``--save-video`` <video>_depth.mp4. ``--output_resolution input`` resizes the depth maps
back to each input's size. Unreadable or unusable inputs are reported and skipped.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from config import parse_options
from utils.cli import UsageError, run_main
from utils.io import encode_image, write_atomic


@dataclass
class Frame:
    """One input: its output name and RGB image ``[H,W,3]`` float32 0..255, or why not."""

    name: str
    image: np.ndarray | None = None
    error: str | None = None


@dataclass
class Summary:
    processed: int = 0
    skipped: list[str] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)

    def wrote(self, kind: str) -> None:
        self.written[kind] = self.written.get(kind, 0) + 1


def depth_to_png16(depth: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """depth ``[H,W]`` (network units) -> uint16 ``round(1000 · scale · depth)``, saturated.

    With ``scale`` in metres per network unit the PNG holds millimetres (value / 1000 =
    metres, the bonn/tum ground-truth convention); with the default 1.0 it holds 1000 × the
    network's relative depth, whose scale is unknown but consistent over a video.
    """
    mm = np.rint(np.asarray(depth, dtype=np.float64) * scale * 1000.0)
    return np.clip(np.nan_to_num(mm, nan=0.0), 0, 65535).astype(np.uint16)


def input_intrinsics(opts: argparse.Namespace) -> np.ndarray | None:
    """K ``[3,3]`` of the input images from --cam_txt or --fx --fy --cx --cy (None if neither)."""
    from datasets.depth_io import read_intrinsics

    values = [opts.fx, opts.fy, opts.cx, opts.cy]
    if opts.cam_txt and any(v is not None for v in values):
        raise UsageError("give either --cam_txt or --fx --fy --cx --cy, not both")
    if opts.cam_txt:
        return read_intrinsics(opts.cam_txt)
    if any(v is not None for v in values):
        if any(v is None for v in values):
            raise UsageError("--fx, --fy, --cx and --cy must be given together")
        if opts.fx <= 0 or opts.fy <= 0:
            raise UsageError("--fx and --fy must be positive")
        return np.array([[opts.fx, 0.0, opts.cx], [0.0, opts.fy, opts.cy], [0.0, 0.0, 1.0]],
                        dtype=np.float32)
    return None


def folder_frames(folder: Path) -> tuple[Iterator[Frame], int]:
    """The images of a folder, sorted by name, and their count."""
    from datasets.depth_io import DatasetError, list_images, read_image

    paths = list_images(folder)
    if not paths:
        raise UsageError(f"--input_dir: no .jpg/.png images in {folder}")

    def frames() -> Iterator[Frame]:
        for path in paths:
            try:
                yield Frame(path.stem, read_image(path))
            except DatasetError as err:
                yield Frame(path.stem, error=f"{path.name}: {err}")
    return frames(), len(paths)


def video_frames(path: Path) -> tuple[Iterator[Frame], int, float]:
    """The frames of a video (OpenCV/FFmpeg), their count (0 if unknown) and frame rate."""
    import cv2

    if not path.is_file():
        raise UsageError(f"--input_video: no such file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UsageError(f"--input_video: cannot open {path} as a video")
    count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def frames() -> Iterator[Frame]:
        index = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                yield Frame(f"frame_{index:06d}",
                            np.ascontiguousarray(bgr[:, :, 2::-1], dtype=np.float32))
                index += 1
        finally:
            cap.release()
    return frames(), count, fps


class VideoSink:
    """The depth video: frames go to a temporary file renamed on close (mp4v, else MJPG/avi)."""

    def __init__(self, stem: Path, fps: float) -> None:
        self.stem, self.fps = stem, fps
        self.writer = None
        self.tmp: Path | None = None
        self.path: Path | None = None
        self.size: tuple[int, int] | None = None

    def _open(self, width: int, height: int) -> None:
        import cv2

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
        import cv2

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


def check_options(opts: argparse.Namespace) -> None:
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if bool(opts.input_dir) == bool(opts.input_video):
        raise UsageError("give one input: --input_dir FOLDER or --input_video FILE")
    if not opts.output_dir:
        raise UsageError("--output_dir is required")
    if not (opts.save_vis or opts.save_depth or opts.save_png16 or opts.save_ply
            or opts.save_video):
        raise UsageError("nothing to write: pass --save-vis, --save-depth, --save-png16, "
                         "--save-ply and/or --save-video")
    if opts.save_video and not opts.input_video:
        raise UsageError("--save-video needs --input_video")
    if opts.infer_batch_size < 1:
        raise UsageError("--infer_batch_size must be at least 1")
    if opts.ply_every < 1:
        raise UsageError("--ply_every must be at least 1")
    if opts.depth_scale <= 0:
        raise UsageError("--depth_scale must be positive")
    if opts.video_fps is not None and opts.video_fps <= 0:
        raise UsageError("--video_fps must be positive")
    if opts.input_dir:
        input_dir = Path(opts.input_dir)
        if not input_dir.is_dir():
            raise UsageError(f"--input_dir: not a folder: {input_dir}")
        # Outputs are named after the inputs: <name>.jpg/.png would overwrite them.
        if Path(opts.output_dir).resolve() == input_dir.resolve():
            raise UsageError("--output_dir must differ from --input_dir (outputs are named "
                             "after the inputs and could overwrite them)")


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, ("data", "model", "runtime", "inference"),
                         description=__doc__.split("\n")[0])
    check_options(opts)
    K_input = input_intrinsics(opts)
    if opts.save_ply and K_input is None:
        raise UsageError("--save-ply needs the intrinsics of the input: --cam_txt FILE or "
                         "--fx --fy --cx --cy")

    import cv2
    import torch
    from tqdm import tqdm

    from datasets.transforms import Resize, ToTensor
    from geometry import scale_intrinsics
    from models.sc_depth import load_from_checkpoint, resolve_device
    from utils.cli import check_precision
    from utils.pointcloud import depth_to_points, write_ply
    from utils.visualization import colorize_depth

    device = resolve_device(opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {opts.device}: no CUDA GPU is available")
    check_precision(opts.infer_precision, device)
    fps = 0.0
    if opts.input_video:
        frames, total, fps = video_frames(Path(opts.input_video))
    else:
        frames, total = folder_frames(Path(opts.input_dir))
    net = load_from_checkpoint(opts.ckpt_path, device).inference_net(opts.infer_precision)
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    net_h, net_w = opts.img_height, opts.img_width
    resize, to_tensor = Resize(net_h, net_w), ToTensor()
    identity_k = np.eye(3, dtype=np.float32)
    video = None
    if opts.save_video:
        video = VideoSink(out / f"{Path(opts.input_video).stem}_depth",
                          opts.video_fps or (fps if fps > 0 else 10.0))

    summary = Summary()
    seen: set[str] = set()
    batch: list[tuple[Frame, np.ndarray, torch.Tensor, int]] = []

    def save(name: str, suffix: str, encode: Callable[[], bytes]) -> None:
        write_atomic(out / f"{name}{suffix}", encode())
        summary.wrote(suffix)

    def npy_bytes(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, arr)
        return buf.getvalue()

    def finish(frame: Frame, net_img: np.ndarray, depth: np.ndarray, index: int) -> None:
        """Write every requested output of one frame. depth: [h,w] at network size."""
        H, W = frame.image.shape[:2]
        if opts.output_resolution == "input":
            depth = cv2.resize(depth, (W, H), interpolation=cv2.INTER_LINEAR)
            image = frame.image
        else:
            image = net_img
        image_u8 = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        if opts.save_depth:
            save(frame.name, ".npy", lambda: npy_bytes(depth.astype(np.float32)))
        if opts.save_png16:
            save(frame.name, ".png", lambda: encode_image(
                depth_to_png16(depth, opts.depth_scale), ".png"))
        if opts.save_vis or video is not None:
            vis = colorize_depth(depth)
            if opts.vis_side_by_side:
                vis = np.concatenate([image_u8, vis], axis=1)
            if opts.save_vis:
                save(frame.name, ".jpg", lambda: encode_image(vis, ".jpg"))
            if video is not None:
                video.write(vis)
        if opts.save_ply and (not opts.input_video or index % opts.ply_every == 0):
            # K is given for the input size; it follows the resize like the image does.
            K = K_input if opts.output_resolution == "input" else scale_intrinsics(
                K_input, net_w / W, net_h / H)
            points, colors = depth_to_points(depth * opts.depth_scale, K, image_u8)
            write_ply(out / f"{frame.name}.ply", points, colors)
            summary.wrote(".ply")
        summary.processed += 1

    def flush() -> None:
        if not batch:
            return
        with torch.inference_mode():
            x = torch.stack([t for _, _, t, _ in batch]).to(device)
            depth = net(x).cpu().numpy()
        for (frame, net_img, _, index), d in zip(batch, depth):
            finish(frame, net_img, d[0], index)
        batch.clear()

    try:
        progress = tqdm(frames, total=total or None, unit="frame" if opts.input_video
                        else "img", desc="inference")
        for index, frame in enumerate(progress):
            if frame.error is not None:
                summary.skipped.append(frame.error)
                continue
            H, W = frame.image.shape[:2]
            if min(H, W) < opts.min_image_size or max(H, W) > opts.max_image_size:
                summary.skipped.append(
                    f"{frame.name}: size {W}x{H} outside {opts.min_image_size}.."
                    f"{opts.max_image_size} pixels a side")
                continue
            if frame.name in seen:
                summary.skipped.append(f"{frame.name}: another input has the same name "
                                       "(its outputs would be overwritten)")
                continue
            seen.add(frame.name)
            imgs, _, _ = resize([frame.image], identity_k, [])
            tensors, _, _ = to_tensor(imgs, identity_k, [])
            batch.append((frame, imgs[0], tensors[0], index))
            if len(batch) == opts.infer_batch_size:
                flush()
        flush()
    except BaseException:
        if video is not None:
            video.abort()
        raise
    video_path = video.close() if video is not None else None

    written = ", ".join(f"{n} {kind}" for kind, n in summary.written.items()) or "nothing"
    print(f"processed {summary.processed}, skipped {len(summary.skipped)}; wrote {written} "
          f"to {out}")
    if video_path is not None:
        print(f"depth video: {video_path}")
    if summary.skipped:
        print("skipped:")
        for line in summary.skipped:
            print(f"  {line}")
    if summary.processed == 0:
        print("inference.py: no input could be processed")
        return 1
    return 0


if __name__ == "__main__":
    run_main(main, "inference.py")
