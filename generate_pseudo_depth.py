"""Write the single-image depth prior of SC-Depth V3: training/<scene>/leres_depth/<frame>.png.

    python generate_pseudo_depth.py --dataset_dir DATA --backend hub \\
        --hub_repo intel-isl/MiDaS --hub_model DPT_Hybrid --hub_mean 0.5 --hub_std 0.5
    python generate_pseudo_depth.py --dataset_dir DATA --backend hub \\
        --hub_dir ~/src/MiDaS --hub_model DPT_Hybrid          # offline, a local clone
    python generate_pseudo_depth.py --dataset_dir DATA --backend checkpoint --ckpt_path K

For every frame of every scene listed in training/train.txt and val.txt, one 16-bit PNG with
the same name stem, at the frame's resolution, holding relative DEPTH (larger = farther)
normalised per image so that its maximum is 60000: the format of the published LeReS files,
read by ``datasets.depth_io.read_prior``. Only scale-invariant quantities of it are used in
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
  training size. Its output is depth.

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import configargparse
import numpy as np

from utils.cli import OneLineConfigParser, UsageError, run_main
from utils.io import encode_image, write_atomic

PROG = "generate_pseudo_depth.py"
PRIOR_MAX = 60000  # the maximum of every published LeReS PNG (SPEC §3 V3)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# SC-Depth's own input normalisation (SPEC notation).
SC_DEPTH_MEAN = 0.45
SC_DEPTH_STD = 0.225

# A network: normalised images [B,3,h,w] -> relative depth or disparity [B,1,h,w].
Predictor = Callable[[Any], Any]


def build_parser() -> configargparse.ArgumentParser:
    parser = OneLineConfigParser(prog=PROG, description=__doc__.split("\n")[0],
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", is_config_file=True,
                        help="config file of `key = value` lines (flags override it)")
    g = parser.add_argument_group("data")
    g.add_argument("--dataset_dir", type=Path, required=True,
                   help="dataset root holding training/<scene>/ and training/train.txt, val.txt")
    g.add_argument("--output_subdir", type=str, default="leres_depth",
                   help="folder inside each scene for the priors (V3 reads leres_depth/)")
    g.add_argument("--skip_existing", action="store_true",
                   help="keep priors that already exist (continue an interrupted run)")
    g = parser.add_argument_group("model")
    g.add_argument("--backend", type=str, required=True, choices=("hub", "checkpoint"),
                   help="hub: a torch.hub model (MiDaS/DPT, Depth Anything, ...); "
                        "checkpoint: a trained SC-Depth checkpoint")
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
    g.add_argument("--hub_mean", type=float, nargs="+", default=list(IMAGENET_MEAN),
                   help="hub: per-channel mean subtracted from RGB in [0,1] (one value or "
                        "three; the MiDaS DPT models use 0.5)")
    g.add_argument("--hub_std", type=float, nargs="+", default=list(IMAGENET_STD),
                   help="hub: per-channel std dividing RGB in [0,1] (one value or three; the "
                        "MiDaS DPT models use 0.5)")
    g.add_argument("--ckpt_path", type=str, default=None,
                   help="checkpoint: SC-Depth .ckpt (any version) whose DepthNet predicts")
    g.add_argument("--img_height", type=int, default=None,
                   help="network input height (default: hub --hub_input_size rule, "
                        "checkpoint its training height)")
    g.add_argument("--img_width", type=int, default=None,
                   help="network input width (default: hub --hub_input_size rule, "
                        "checkpoint its training width)")
    g.add_argument("--output_kind", type=str, default=None, choices=("disparity", "depth"),
                   help="what the network outputs (default: disparity for hub, depth for "
                        "checkpoint); disparity is converted to depth")
    g.add_argument("--min_disparity_ratio", type=float, default=0.01,
                   help="disparity floor, relative to each image's maximum: far regions "
                        "become at most 1/ratio times the nearest depth")
    g = parser.add_argument_group("runtime")
    g.add_argument("--device", type=str, default="auto",
                   help="torch device: auto (a GPU when there is one), cpu, cuda, cuda:1 ...")
    g.add_argument("--batch_size", type=int, default=4,
                   help="frames per forward pass (consecutive frames of equal size)")
    return parser


# --------------------------------------------------------------------------------- frames
def scene_dirs(dataset_dir: Path) -> list[Path]:
    """The scenes of training/train.txt then val.txt (each once), as folders."""
    training = dataset_dir / "training"
    if not dataset_dir.is_dir():
        raise UsageError(f"dataset folder not found: {dataset_dir}")
    from datasets.video_folder import listed_scenes

    return listed_scenes(training)


def frame_jobs(scenes: Sequence[Path], output_subdir: str, skip_existing: bool
               ) -> tuple[list[tuple[Path, Path]], int]:
    """(frame, output path) of every frame still to do, and how many were skipped."""
    from datasets.depth_io import list_images

    jobs, skipped = [], 0
    for scene in scenes:
        for frame in list_images(scene):
            out = scene / output_subdir / f"{frame.stem}.png"
            if skip_existing and out.is_file():
                skipped += 1
            else:
                jobs.append((frame, out))
    return jobs, skipped


def batches(jobs: Sequence[tuple[Path, Path]], batch_size: int
            ) -> Iterator[tuple[list[Path], np.ndarray]]:
    """Consecutive frames of equal size, read as RGB float32 0..255 ``[B,H,W,3]``."""
    from datasets.depth_io import read_image

    paths: list[Path] = []
    images: list[np.ndarray] = []
    for frame, out in jobs:
        img = read_image(frame)
        if images and (img.shape != images[0].shape or len(images) == batch_size):
            yield paths, np.stack(images)
            paths, images = [], []
        paths.append(out)
        images.append(img)
    if images:
        yield paths, np.stack(images)


# ------------------------------------------------------------------------------ networks
def hub_input_size(height: int, width: int, short_side: int, multiple: int) -> tuple[int, int]:
    """Input size with the aspect ratio of ``height × width``, shorter side ≈ ``short_side``,
    both sides rounded to a multiple of ``multiple`` (at least one multiple)."""
    scale = short_side / min(height, width)

    def fit(x: float) -> int:
        return max(multiple, int(x / multiple + 0.5) * multiple)

    return fit(height * scale), fit(width * scale)


def load_hub_model(opts: argparse.Namespace, device: Any) -> Any:
    """The torch.hub model of ``--hub_dir`` (source='local') or ``--hub_repo``, in eval mode."""
    import torch

    if opts.hub_dir is not None:
        if not (opts.hub_dir / "hubconf.py").is_file():
            raise UsageError(f"--hub_dir: no hubconf.py in {opts.hub_dir}")
        where, kwargs = str(opts.hub_dir), {"source": "local"}
    else:
        # Naming the repository on the command line is the user's trust decision.
        where, kwargs = opts.hub_repo, {"source": "github", "trust_repo": True}
    try:
        model = torch.hub.load(where, opts.hub_model, **kwargs)
    except Exception as err:  # a missing entry point, no network, a hubconf that fails
        raise UsageError(f"cannot load hub model {opts.hub_model!r} from {where}: "
                         f"{type(err).__name__}: {err}".splitlines()[0]) from err
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"hub entry point {opts.hub_model!r} of {where} returned a "
                         f"{type(model).__name__}, not a torch.nn.Module")
    return model.to(device).eval()


def _channels(values: Sequence[float], name: str) -> tuple[float, float, float]:
    if len(values) == 1:
        return (values[0],) * 3
    if len(values) == 3:
        return tuple(values)
    raise UsageError(f"--{name} takes one value or three, got {len(values)}")


def make_predictor(opts: argparse.Namespace, device: Any
                   ) -> tuple[Predictor, Callable[[int, int], tuple[int, int]],
                              tuple[float, float, float], tuple[float, float, float]]:
    """The network, its input size for a frame size, and its input mean/std (RGB in [0,1]).

    The predictor maps normalised ``[B,3,h,w]`` to ``[B,1,h',w']`` (any h', w').
    """
    import torch

    fixed = None
    if (opts.img_height is None) != (opts.img_width is None):
        raise UsageError("give both --img_height and --img_width, or neither")
    if opts.img_height is not None:
        if opts.img_height <= 0 or opts.img_width <= 0:
            raise UsageError("--img_height and --img_width must be positive")
        fixed = (opts.img_height, opts.img_width)

    if opts.backend == "hub":
        if opts.hub_input_size <= 0 or opts.hub_multiple_of <= 0:
            raise UsageError("--hub_input_size and --hub_multiple_of must be positive")
        model = load_hub_model(opts, device)
        mean, std = _channels(opts.hub_mean, "hub_mean"), _channels(opts.hub_std, "hub_std")
        if min(std) <= 0:
            raise UsageError("--hub_std must be positive")

        def size(h: int, w: int) -> tuple[int, int]:
            return fixed or hub_input_size(h, w, opts.hub_input_size, opts.hub_multiple_of)

        def predict(x: torch.Tensor) -> torch.Tensor:
            out = model(x)
            if not isinstance(out, torch.Tensor) or not (
                    out.dim() == 3 or (out.dim() == 4 and out.shape[1] == 1)):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise UsageError(f"hub model {opts.hub_model!r} returned {shape}; expected a "
                                 "tensor [B,H,W] or [B,1,H,W]")
            return out.reshape(out.shape[0], 1, *out.shape[-2:])

        return predict, size, mean, std

    if opts.backend == "checkpoint":
        from config import DEFAULT_SIZES
        from models.sc_depth import load_from_checkpoint

        if not opts.ckpt_path:
            raise UsageError("--backend checkpoint needs --ckpt_path")
        model = load_from_checkpoint(opts.ckpt_path, map_location=device)
        hp = dict(model.hparams)
        if fixed is None:
            trained = (hp.get("img_height"), hp.get("img_width"))
            if None in trained:
                trained = DEFAULT_SIZES.get(hp.get("dataset_name"), (None, None))
            if None in trained:
                raise UsageError(f"{opts.ckpt_path} does not say its training size; "
                                 "give --img_height and --img_width")
            fixed = (int(trained[0]), int(trained[1]))
        # SC-Depth's (x/255 − 0.45)/0.225, written as (x − mean)/std on RGB in [0, 1].
        return model, (lambda h, w: fixed), (SC_DEPTH_MEAN,) * 3, (SC_DEPTH_STD,) * 3
    raise UsageError(f"unknown backend {opts.backend!r} (choices: hub, checkpoint)")


# ------------------------------------------------------------------------------ encoding
def to_depth(output: np.ndarray, kind: str, min_disparity_ratio: float) -> np.ndarray:
    """Relative depth ``[H,W]`` float64 from a network output ``[H,W]``; 0 = invalid.

    disparity: ``1 / max(d, r · max(d))`` (the floor keeps far regions finite; all invalid
    if no disparity is positive). depth: negative values become 0 (invalid).
    """
    out = np.asarray(output, dtype=np.float64)
    finite = np.isfinite(out)
    if kind == "disparity":
        peak = out[finite].max() if finite.any() else 0.0
        if peak <= 0:
            return np.zeros(out.shape)
        disp = np.maximum(np.where(finite, out, peak), min_disparity_ratio * peak)
        return np.where(finite, 1.0 / disp, 0.0)
    elif kind == "depth":
        return np.where(finite & (out > 0), out, 0.0)
    else:
        raise ValueError(f"unknown output kind {kind!r} (choices: disparity, depth)")


def encode_prior(depth: np.ndarray) -> np.ndarray:
    """uint16 ``[H,W]``: depth scaled so that its maximum is 60000; valid pixels stay ≥ 1
    (0 means invalid to the reader), an all-invalid map stays all 0."""
    peak = float(depth.max()) if depth.size else 0.0
    if peak <= 0:
        return np.zeros(depth.shape, dtype=np.uint16)
    scaled = np.round(depth / peak * PRIOR_MAX)
    scaled = np.where(depth > 0, np.clip(scaled, 1, PRIOR_MAX), 0)
    return scaled.astype(np.uint16)


# ----------------------------------------------------------------------------------- run
def run(opts: argparse.Namespace) -> int:
    """Write the priors of every train/val frame of ``opts.dataset_dir``; prints a summary."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from models.sc_depth import resolve_device

    if opts.batch_size <= 0:
        raise UsageError("--batch_size must be positive")
    if not 0 < opts.min_disparity_ratio < 1:
        raise UsageError("--min_disparity_ratio must be in (0, 1)")
    kind = opts.output_kind or ("disparity" if opts.backend == "hub" else "depth")
    jobs, skipped = frame_jobs(scene_dirs(opts.dataset_dir), opts.output_subdir,
                               opts.skip_existing)
    if not jobs:
        print(f"nothing to do: {skipped} priors already exist")
        return 0
    try:
        device = resolve_device(opts.device)
    except RuntimeError as err:
        raise UsageError(f"--device {opts.device}: {err}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {opts.device}: no CUDA device is available")
    predict, input_size, mean, std = make_predictor(opts, device)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)

    written = empty = 0
    with tqdm(total=len(jobs), desc="priors", unit="img", file=sys.stderr) as bar, \
            torch.inference_mode():
        for outs, images in batches(jobs, opts.batch_size):
            H, W = images.shape[1:3]
            x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2) / 255.0
            x = F.interpolate(x, size=input_size(H, W), mode="bilinear", align_corners=False,
                              antialias=True)
            pred = predict((x - mean_t) / std_t).float()
            # relative maps are resolution-free: bring them back to the frame's pixels
            pred = F.interpolate(pred, size=(H, W), mode="bilinear", align_corners=False)
            for out, p in zip(outs, pred[:, 0].cpu().numpy()):
                prior = encode_prior(to_depth(p, kind, opts.min_disparity_ratio))
                empty += int(not prior.any())
                write_atomic(out, encode_image(prior, ".png"))
                written += 1
                bar.update()
    print(f"wrote {written} priors to <scene>/{opts.output_subdir}/ "
          f"({skipped} existing skipped)")
    if empty:
        print(f"warning: {empty} priors have no valid pixel (the network gave no positive "
              f"{kind}); V3 ignores them", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and run; returns the exit status."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    run_main(main, PROG)
