"""Write the single-image depth prior of SC-Depth V3: training/<scene>/leres_depth/<frame>.png.

    python generate_pseudo_depth.py --dataset_dir DATA --backend hub \\
        --hub_repo intel-isl/MiDaS --hub_model DPT_Hybrid --hub_mean 0.5 --hub_std 0.5
    python generate_pseudo_depth.py --dataset_dir DATA --backend hub \\
        --hub_dir ~/src/MiDaS --hub_model DPT_Hybrid          # offline, a local clone
    python generate_pseudo_depth.py --dataset_dir DATA --backend checkpoint --ckpt_path K

For every frame of every scene listed in training/train.txt and val.txt, one 16-bit PNG with
the same name stem, at the frame's resolution, holding relative DEPTH (larger = farther)
normalised per image so that its maximum is 60000: the format of the published LeReS files,
read by ``datasets.formats.read_prior``. Only scale-invariant quantities of it are used in
training, so any relative-depth network will do.

Backends
- ``hub``: any ``torch.hub`` entry point whose model maps a normalised image ``[B,3,H,W]`` to
  ``[B,H,W]`` or ``[B,1,H,W]``. With ``--hub_dir`` the entry point is loaded from that local
  folder (``source='local'``, no network; the model's own weights must then be in the torch
  hub cache or wherever its hubconf looks). The input is RGB in [0,1], normalised with
  ``--hub_mean``/``--hub_std`` (ImageNet's by default, as MiDaS v2.1 and Depth Anything
  expect; the DPT models of MiDaS expect 0.5/0.5), resized keeping the aspect ratio so that
  the shorter side is ``--hub_input_size``, both sides rounded to ``--hub_multiple_of``.
- ``checkpoint``: a trained SC-Depth checkpoint of ours (or a published one), run at its
  training size (``tools.predictor.Predictor``). Its output is depth.

MiDaS, DPT and Depth Anything output relative inverse depth (disparity, up to scale and
shift): ``--output_kind disparity`` (the default for ``hub``) converts it to depth as
``1 / max(disparity, r · max(disparity))`` per image, with ``r = --min_disparity_ratio``
(0.01). The floor keeps far regions (sky, where the shifted disparity reaches 0 or below)
finite: they become the farthest depth, 1/r times the nearest, and the nearest depth keeps
at least 60000·r = 600 levels of the 16-bit range. Non-finite outputs are written as 0
(invalid; the V3 losses drop those pixels).

Each file is written atomically (a temporary file, then os.replace), so an interrupted run
never leaves a half-written prior; ``--skip_existing`` then continues where it stopped.
Exit status: 0 success, 2 a user mistake (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from config import get_parser
from utils.cli import run_main
from utils.errors import UsageError
from utils.io import check_output_dir

PROG = "generate_pseudo_depth.py"
# The input normalisation most relative-depth networks expect (MiDaS v2.1, Depth Anything):
# ImageNet's per-channel statistics of RGB in [0, 1] (SC-Depth itself uses 0.45/0.225).
IMAGENET_CHANNEL_MEAN = (0.485, 0.456, 0.406)
IMAGENET_CHANNEL_STD = (0.229, 0.224, 0.225)


def build_parser() -> argparse.ArgumentParser:
    parser = get_parser(("data", "model", "runtime"), __doc__.split("\n")[0],
                        names=("dataset_dir", "img_height", "img_width", "ckpt_path", "device",
                               "infer_batch_size", "infer_precision"))
    parser.prog = PROG
    # no training size from --dataset_name here: hub inputs follow --hub_input_size
    g = parser.add_argument_group("priors")
    g.add_argument("--output_subdir", type=str, default="leres_depth",
                   help="folder inside each scene for the priors (V3 reads leres_depth/)")
    g.add_argument("--skip_existing", action="store_true",
                   help="keep priors that already exist (continue an interrupted run)")
    g.add_argument("--backend", type=str, required=True, choices=("hub", "checkpoint"),
                   help="hub: a torch.hub model (MiDaS/DPT, Depth Anything, ...); "
                        "checkpoint: a trained SC-Depth checkpoint (--ckpt_path)")
    g.add_argument("--hub_repo", type=str, default="intel-isl/MiDaS",
                   help="hub: GitHub repository owner/name[:ref] holding hubconf.py")
    g.add_argument("--hub_model", type=str, default="DPT_Hybrid",
                   help="hub: entry point of the hubconf.py")
    g.add_argument("--hub_dir", type=Path, default=None,
                   help="hub: a local folder with hubconf.py (a clone of the repository); "
                        "loads with source='local', offline, instead of --hub_repo")
    g.add_argument("--hub_input_size", type=int, default=384,
                   help="hub: shorter side of the network input (MiDaS/DPT 384, Depth "
                        "Anything 518), aspect ratio kept; --img_height/--img_width override")
    g.add_argument("--hub_multiple_of", type=int, default=32,
                   help="hub: round the input sides to a multiple of this (MiDaS/DPT 32, "
                        "Depth Anything 14)")
    g.add_argument("--hub_mean", type=float, nargs="+", default=list(IMAGENET_CHANNEL_MEAN),
                   help="hub: per-channel mean subtracted from RGB in [0,1] (one value or "
                        "three; the MiDaS DPT models use 0.5)")
    g.add_argument("--hub_std", type=float, nargs="+", default=list(IMAGENET_CHANNEL_STD),
                   help="hub: per-channel std dividing RGB in [0,1] (one value or three; the "
                        "MiDaS DPT models use 0.5)")
    g.add_argument("--output_kind", type=str, default=None, choices=("disparity", "depth"),
                   help="what the network outputs (default: disparity for hub, depth for "
                        "checkpoint); disparity is converted to depth")
    g.add_argument("--min_disparity_ratio", type=float, default=0.01,
                   help="disparity floor, relative to each image's maximum: far regions "
                        "become at most 1/ratio times the nearest depth")
    return parser


def check_output_subdir(name: str) -> None:
    """The priors go to ``<scene>/<name>/``: one plain folder inside each scene, so that
    they can neither overwrite the frames (``.``) nor leave the dataset (``../x``, an
    absolute path) nor land on another scene's; nor a folder of the layout that holds
    other files (ground truth, moving-object masks)."""
    from datasets.formats import GT_DIR, MOTION_MASK_DIR, is_folder_name

    if not is_folder_name(name):
        raise UsageError(f"--output_subdir {name!r}: give one folder name (written inside "
                         "each scene; no path, not . or ..)")
    if name in (GT_DIR, MOTION_MASK_DIR):
        raise UsageError(f"--output_subdir {name}: that folder of a scene holds other files "
                         "(ground truth, moving-object masks) that the priors would overwrite")


def frame_jobs(dataset_dir: Path, output_subdir: str, skip_existing: bool
               ) -> tuple[list[tuple[Path, Path]], int]:
    """(frame, output path) of every frame of the train/val scenes still to do, and how
    many were skipped. Temporary files an interrupted run left in the output folders are
    removed."""
    from datasets.formats import list_frames, listed_scenes
    from utils.io import remove_stale_temporaries

    if not dataset_dir.is_dir():
        raise UsageError(f"--dataset_dir: dataset folder not found: {dataset_dir}")
    check_output_subdir(output_subdir)
    check_output_dir(dataset_dir / "training", "--dataset_dir")
    jobs, skipped = [], 0
    for scene in listed_scenes(dataset_dir / "training"):
        for stale in remove_stale_temporaries(scene / output_subdir):
            print(f"removed {stale}, left by a run killed while writing it", file=sys.stderr)
        for frame in list_frames(scene):
            out = scene / output_subdir / f"{frame.stem}.png"
            if skip_existing and out.is_file():
                skipped += 1
            else:
                jobs.append((frame, out))
    return jobs, skipped


def run(opts: argparse.Namespace) -> int:
    """Write the priors of every train/val frame of ``opts.dataset_dir``; prints a summary."""
    from tqdm import tqdm

    from datasets.formats import DatasetError, encode_image, encode_prior, read_image
    from tools.predictor import Predictor, stream
    from tools.pseudo_depth import HubPredictor, to_depth
    from utils.io import write_atomic
    from utils.runtime import resolve_device

    if not 0 < opts.min_disparity_ratio < 1:
        raise UsageError("--min_disparity_ratio must be in (0, 1)")
    if (opts.img_height is None) != (opts.img_width is None):
        raise UsageError("give both --img_height and --img_width, or neither")
    if opts.backend == "checkpoint" and not opts.ckpt_path:
        raise UsageError("--backend checkpoint needs --ckpt_path")
    kind = opts.output_kind or ("disparity" if opts.backend == "hub" else "depth")
    jobs, skipped = frame_jobs(Path(opts.dataset_dir), opts.output_subdir, opts.skip_existing)
    if not jobs:
        print(f"nothing to do: {skipped} priors already exist")
        return 0
    device = resolve_device(opts.device)
    if opts.backend == "hub":
        fixed = None if opts.img_height is None else (opts.img_height, opts.img_width)
        predict = HubPredictor(opts, device, fixed).predict
    else:
        predictor = Predictor.from_checkpoint(opts.ckpt_path, device, opts.infer_precision,
                                              opts.img_height, opts.img_width)
        predict = predictor.predict

    written = empty = 0
    unreadable: list[str] = []

    def frames() -> Iterator[tuple[np.ndarray, Path]]:
        for frame, out in jobs:
            try:
                yield read_image(frame), out
            except DatasetError as err:  # one bad frame does not end the run
                unreadable.append(str(err))

    for (_, out), depth in tqdm(stream(predict, frames(), opts.infer_batch_size,
                                       lambda item: item[0]),
                                total=len(jobs), desc="priors", unit="img", file=sys.stderr):
        prior = encode_prior(to_depth(depth, kind, opts.min_disparity_ratio))
        empty += int(not prior.any())
        write_atomic(out, encode_image(prior, ".png"))
        written += 1
    print(f"wrote {written} priors to <scene>/{opts.output_subdir}/ "
          f"({skipped} existing skipped)")
    if empty:
        print(f"warning: {empty} priors have no valid pixel (the network gave no positive "
              f"{kind}); V3 ignores them", file=sys.stderr)
    if unreadable:
        print(f"{PROG}: {len(unreadable)} frames could not be read and have no prior "
              "(V3 training refuses the dataset until they are fixed or removed):\n"
              + "\n".join(f"  {line}" for line in unreadable), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and run; returns the exit status."""
    opts = build_parser().parse_args(argv)
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required")
    return run(opts)


if __name__ == "__main__":
    run_main(main, PROG)
