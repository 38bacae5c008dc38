"""Run a trained DepthNet on images, a folder of images or a video.

    python inference.py --config configs/v1/nyu.txt --input_dir imgs/ --output_dir out/ \\
        --ckpt_path K --save_vis --save_depth
    python inference.py --input_video clip.mp4 --output_dir out/ --ckpt_path K \\
        --img_height 256 --img_width 832 --save_video --save_ply --cam_txt cam.txt

Per input (``<name>`` = the image's file name without suffix, or ``<video>_000000`` … for
video frames): ``--save_depth`` <name>.npy (float32 depth, network units, at network
resolution as the public code does), ``--save_vis`` <name>.jpg colour map, ``--save_png16``
<name>.png 16-bit depth, ``--save_ply`` <name>.ply coloured point cloud; for a video
``--save_video`` <video>_depth.mp4. ``--output_resolution input`` resizes the depth maps
back to each input's size. Unreadable or unusable inputs are reported and skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from config import get_parser
from options import InferenceOptions
from utils.cli import run_main
from utils.errors import UsageError
from utils.io import check_output_dir, refuse_overlap, remove_stale_temporaries


def check_options(opts: argparse.Namespace) -> None:
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if bool(opts.input_dir) == bool(opts.input_video):
        raise UsageError("give one input: --input_dir FOLDER (or image) or --input_video FILE")
    if not opts.output_dir:
        raise UsageError("--output_dir is required")
    if not (opts.save_vis or opts.save_depth or opts.save_png16 or opts.save_ply
            or opts.save_video):
        raise UsageError("nothing to write: pass --save_vis, --save_depth, --save_png16, "
                         "--save_ply and/or --save_video")
    if opts.save_video and not opts.input_video:
        raise UsageError("--save_video needs --input_video")
    fixed = (opts.vis_min_depth, opts.vis_max_depth)
    if (fixed[0] is None) != (fixed[1] is None):
        raise UsageError("give both --vis_min_depth and --vis_max_depth, or neither")
    if fixed[0] is not None and not 0 < fixed[0] < fixed[1]:
        raise UsageError("need 0 < --vis_min_depth < --vis_max_depth")
    if opts.vis_colorbar and fixed[0] is None:
        raise UsageError("--vis_colorbar needs the fixed range of --vis_min_depth and "
                         "--vis_max_depth")
    if opts.min_image_size > opts.max_image_size:
        raise UsageError("need --min_image_size <= --max_image_size")
    # Before the model loads: an output folder that is a file, read-only or on a full disk.
    out = check_output_dir(opts.output_dir, "--output_dir")
    if opts.input_dir:
        source = Path(opts.input_dir)
        if not source.exists():
            raise UsageError(f"--input_dir: no such folder or image: {source}")
        # Outputs are named after the inputs: <name>.jpg/.png would overwrite them.
        refuse_overlap([out], [source if source.is_dir() else source.parent], "--output_dir")


def input_intrinsics(opts: argparse.Namespace) -> np.ndarray | None:
    """K ``[3,3]`` of the input images (None if not given; --save_ply needs it)."""
    from datasets.formats import intrinsics_from

    K = intrinsics_from(opts.cam_txt, opts.fx, opts.fy, opts.cx, opts.cy)
    if K is None and opts.save_ply:
        raise UsageError("--save_ply needs the intrinsics of the input: --cam_txt FILE or "
                         "--fx --fy --cx --cy")
    return K


OPTIONS = ("img_height", "img_width", "ckpt_path", "device", "infer_batch_size",
           "infer_precision", "infer_compile", *InferenceOptions.__dataclass_fields__)


def main(argv: list[str] | None = None) -> int:
    opts = get_parser(("data", "model", "runtime", "inference"), __doc__.split("\n")[0],
                      names=OPTIONS, from_checkpoint=True).parse_args(argv)
    check_options(opts)
    K_input = input_intrinsics(opts)

    from tqdm import tqdm

    from datasets.frames import folder_frames, video_frames
    from datasets.transforms import resize_note
    from tools.outputs import DepthWriter, OutputSettings, VideoSink
    from tools.predictor import Predictor, stream

    video, fps = None, 0.0
    sides = (opts.min_image_size, opts.max_image_size)
    if opts.input_video:
        frames, total, fps = video_frames(Path(opts.input_video), *sides)
    else:
        frames, total = folder_frames(Path(opts.input_dir), *sides)
    predictor, settings = Predictor.from_options(opts)
    print("\n".join([*settings.notes, f"{opts.ckpt_path}: {settings.describe()}"]), flush=True)
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(out):
        print(f"removed {stale}, left by a run killed while writing it")
    if opts.save_video:
        video = VideoSink(out / f"{Path(opts.input_video).stem}_depth",
                          opts.video_fps or (fps if fps > 0 else 10.0))
    settings = OutputSettings(**{k: getattr(opts, k) for k in OutputSettings.__annotations__
                                 if k != "ply_every"},
                              ply_every=opts.ply_every if opts.input_video else 1)
    writer = DepthWriter(out, settings, K_input, video)
    skipped: list[str] = []
    resized: list[str] = []
    seen: set[str] = set()

    def usable(indexed: tuple[int, object]) -> bool:
        frame = indexed[1]
        if frame.error is not None:
            skipped.append(frame.error)
            return False
        if frame.name in seen:
            skipped.append(f"{frame.name}: another input has the same name (its outputs "
                           "would be overwritten)")
            return False
        seen.add(frame.name)
        note = resize_note(*frame.image.shape[:2], predictor.height, predictor.width)
        if note is not None:
            resized.append(f"{frame.name}: {note}")
        return True

    progress = tqdm(enumerate(frames), total=total or None, desc="inference",
                    unit="frame" if opts.input_video else "img")
    try:
        for (index, frame), depth in stream(
                lambda images: predictor.predict(images, resolution="network"),
                filter(usable, progress), opts.infer_batch_size, lambda it: it[1].image):
            writer.write(frame.name, frame.image, depth, index)
    except BaseException:
        if video is not None:
            video.abort()
        raise
    video_path = video.close() if video is not None else None

    processed = len(seen)
    files = [f"{n} {kind}" for kind, n in writer.written.items()]
    if video_path is not None:
        files.append(f"the depth video {Path(video_path).name}")
    print(f"processed {processed}, skipped {len(skipped)}; wrote {', '.join(files) or 'nothing'}"
          f" to {out}")
    if skipped:
        print("skipped:\n" + "\n".join(f"  {line}" for line in skipped))
    if resized and not opts.input_video:
        print(f"note: {len(resized)} inputs are far from the network's size or shape (give "
              "--img_height/--img_width to change it):\n"
              + "\n".join(f"  {line}" for line in resized))
    elif resized:  # a video's frames share one size
        print(f"note: every frame: {resized[0].split(': ', 1)[1]}")
    if processed == 0:
        print("inference.py: no input could be processed")
        return 1
    return 0


if __name__ == "__main__":
    run_main(main, "inference.py")
