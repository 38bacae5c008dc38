"""Measure what each departure from the public code changes (docs/method.md, the tables).

    python scripts/measure_departures.py --dataset_dir DATA --v1_ckpt V1.ckpt \
        [--v3_ckpt V3.ckpt] [--output_json effects.json]

On a synthetic set (``generate_synthetic_dataset.py``) and checkpoints trained on it, it
computes each effect on identical inputs, with the public code's form written out here
beside ours:

- ``align_corners``: a zero-motion warp of training frames, ours against the public
  normalisation (``2u/(W−1) − 1`` sampled with ``align_corners=False``);
- ``in_image_validity``: the V1 losses of ``--v1_ckpt`` on training batches with our validity
  and without the in-image rule;
- ``ranking``: prior pixels ≤ 0 (where ``&`` and ``|`` differ) and how far apart the global
  pairs of the mask ranking lie, ours and raster;
- ``normal_rank_sampling``: red-channel against grey edges, and the angle between the public
  (one-quadrant) sampling line and the gradient;
- ``eval_counting``: full AbsRel with every image once and as the public code counts it;
- ``frame_index``: frames kept by generate_valid_frame_index.py and by the public uint8
  difference, on the training scenes and on a still camera whose exposure rises.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import losses.photometric as photometric  # noqa: E402
from datasets.data_module import VideoDataModule  # noqa: E402
from datasets.formats import list_images, listed_scenes, normalize_image, read_image  # noqa: E402
from datasets.registry import dataset_spec  # noqa: E402
from datasets.transforms import Compose, Resize, ToTensor  # noqa: E402
from datasets.video_folder import TestDepthSet  # noqa: E402
from generate_valid_frame_index import select_frames  # noqa: E402
from geometry import inverse_warp  # noqa: E402
from losses.metrics import DepthEvaluator  # noqa: E402
from losses.ranking import MaskRankingLoss, _image_edges, _public_image_edges  # noqa: E402
from systems import load_from_checkpoint  # noqa: E402
from tools.predictor import Predictor  # noqa: E402
from utils.io import write_atomic  # noqa: E402


def frames_at(data: Path, size: tuple[int, int], every: int = 1, per_scene: int = 20
              ) -> list[torch.Tensor]:
    """Normalised ``[1,3,H,W]`` training frames of the first two training scenes."""
    scenes = listed_scenes(data / "training")[:2]
    paths = [p for s in scenes for p in list_images(s)[::every][:per_scene]]
    return [normalize_image(cv2.resize(read_image(p), size[::-1],
                                       interpolation=cv2.INTER_LINEAR))[None] for p in paths]


def align_corners(frames: list[torch.Tensor]) -> dict:
    ours, public = [], []
    for x in frames:
        _, _, H, W = x.shape
        K = torch.tensor([[[100.0, 0, (W - 1) / 2], [0, 100.0, (H - 1) / 2], [0, 0, 1]]])
        T = torch.cat([torch.eye(3), torch.zeros(3, 1)], 1)[None]
        d = torch.ones(1, 1, H, W)
        warped, *_ = inverse_warp(x, d, d, T, K)
        v, u = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
        grid = torch.stack([2 * u / (W - 1) - 1, 2 * v / (H - 1) - 1], -1)[None]
        pub = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        ours.append(float((x - warped).abs().mean()))
        public.append(float((x - pub)[..., 1:-1, 1:-1].abs().mean()))  # away from the padding
    return {"identity_warp_error_ours": float(np.mean(ours)),
            "identity_warp_error_public": float(np.mean(public)), "frames": len(frames)}


def in_image_validity(ckpt: Path, data: Path, size: tuple[int, int], batches: int) -> dict:
    model = load_from_checkpoint(ckpt).eval()
    opts = argparse.Namespace(**vars(model.opts))
    opts.dataset_dir, opts.dataset_name, (opts.img_height, opts.img_width) = (
        str(data), "synthetic", size)
    opts.num_workers, opts.seed, opts.cache_frames = 0, 0, False
    module = VideoDataModule(opts)
    module.setup("fit")
    loader = iter(module.train_dataloader())
    samples = [next(loader) for _ in range(batches)]
    real = photometric.inverse_warp

    def without_in_image_rule(*args, **kwargs):
        warped, _, projected, computed = real(*args, **kwargs)
        return warped, (computed > 1.0001e-3).to(warped.dtype), projected, computed

    result = {}
    try:
        for rule, warp in (("ours", real), ("public", without_in_image_rule)):
            photometric.inverse_warp = warp
            photo, geometry, valid = [], [], []
            with torch.no_grad():
                for batch in samples:
                    terms, context = model.loss_terms(batch)
                    photo.append(float(terms["photo_loss"]))
                    geometry.append(float(terms["geometry_loss"]))
                    valid.append(float(context.photo.valid_map.mean()))
            result[rule] = {"photo": float(np.mean(photo)), "geometry": float(np.mean(geometry)),
                            "valid_fraction": float(np.mean(valid))}
    finally:
        photometric.inverse_warp = real
    for term in ("photo", "geometry"):
        result[f"{term}_change_%"] = 100 * (result["ours"][term] / result["public"][term] - 1)
    return result


def ranking(data: Path, size: tuple[int, int]) -> dict:
    priors = sorted((data / "training").glob("*/leres_depth/*.png"))
    zero = [float((cv2.imread(str(p), cv2.IMREAD_UNCHANGED) == 0).mean()) for p in priors]
    H, W = size
    confidence = torch.rand(4, 1, H, W, generator=torch.Generator().manual_seed(0))
    k = int(0.2 * H * W)
    pairs = {}
    for mode in ("spread", "raster"):
        a, b = MaskRankingLoss(global_pairs=mode).sample_pairs(
            confidence, torch.Generator().manual_seed(0))
        gap = (a[:, k:] // W - b[:, k:] // W).abs().float()
        pairs[mode] = {"median_row_gap": float(gap.median()),
                       "within_3_rows": float((gap <= 3).float().mean())}
    return {"priors": len(priors), "largest_zero_fraction": max(zero, default=0.0),
            "global_pairs": pairs}


def normal_rank_sampling(frames: list[torch.Tensor]) -> dict:
    angles, overlap = [], []
    for x in frames:
        magnitude, direction = _image_edges(x)
        pub_magnitude, pub_direction = _public_image_edges(x)
        edges = magnitude >= 0.1 * magnitude.amax()
        pub_edges = pub_magnitude >= 0.1 * pub_magnitude.amax()
        # points are taken on both sides of an anchor: compare lines, not directions
        cos = (direction * pub_direction).sum(1, keepdim=True).abs().clamp(max=1)
        angles.append(torch.rad2deg(torch.acos(cos))[edges & pub_edges])
        overlap.append(float((edges & pub_edges).sum() / (edges | pub_edges).sum()))
    angle = torch.cat(angles)
    return {"frames": len(frames), "edge_iou_red_vs_grey": float(np.mean(overlap)),
            "median_angle_deg": float(angle.median()),
            "off_by_more_than_45deg": float((angle > 45).float().mean())}


def eval_counting(ckpt: Path, data: Path, size: tuple[int, int]) -> dict:
    predictor = Predictor.from_checkpoint(ckpt, "cpu", "32", *size)
    test = TestDepthSet(data / "testing", "synthetic", transform=Compose([Resize(*size),
                                                                          ToTensor()]))
    abs_rel, dynamic = [], []
    for i in range(len(test)):
        item = test[i]
        with torch.inference_mode():
            depth = predictor.depth(item["tgt"][None]).float()
        evaluator = DepthEvaluator(dataset_spec("synthetic"))
        evaluator.update(depth, item["gt_depth"][None], item["dynamic"][None])
        result = evaluator.compute()
        abs_rel.append(result["full"]["abs_rel"])
        dynamic.append(result["num_dynamic_images"] > 0)
    twice = abs_rel + [a for a, d in zip(abs_rel, dynamic) if d]
    return {"ours": float(np.mean(abs_rel)), "public_counting": float(np.mean(twice)),
            "images": len(abs_rel), "with_moving_objects": int(sum(dynamic))}


def public_select(greys: list[np.ndarray]) -> list[int]:
    """The public generate_valid_frame_index.py: uint8 difference (wraps), > 10 on ≥ 50 %;
    ``greys``: uint8 ``[H,W]`` frames."""
    kept = [0]
    for i in range(1, len(greys)):
        if ((greys[kept[-1]] - greys[i]) > 10).mean() >= 0.5:
            kept.append(i)
    return kept


def frame_index(data: Path) -> dict:
    result = {}
    for scene in listed_scenes(data / "training"):
        # uint8, as cv2.imread gives the public code
        greys = [cv2.cvtColor(read_image(p), cv2.COLOR_RGB2GRAY).astype(np.uint8)
                 for p in list_images(scene)]
        result[scene.name] = {"frames": len(greys), "ours": len(select_frames(iter(greys), 10.0,
                                                                              0.5)),
                              "public": len(public_select(greys))}
    # a still camera whose exposure rises one grey level a frame, with N(0, 1) sensor noise
    rng = np.random.default_rng(0)
    base = greys[0].astype(np.float32)
    still = [np.clip(base + i + rng.normal(0, 1, base.shape), 0, 255).astype(np.uint8)
             for i in range(30)]
    result["still_camera_rising_exposure"] = {
        "frames": 30, "ours": len(select_frames(iter(still), 10.0, 0.5)),
        "public": len(public_select(still))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset_dir", type=Path, required=True,
                        help="a synthetic dataset (generate_synthetic_dataset.py)")
    parser.add_argument("--v1_ckpt", type=Path, required=True,
                        help="a V1 checkpoint trained on it (the losses and the evaluation)")
    parser.add_argument("--v3_ckpt", type=Path, default=None,
                        help="a V3 checkpoint trained on it (the evaluation, optional)")
    parser.add_argument("--img_height", type=int, default=128, help="network input height")
    parser.add_argument("--img_width", type=int, default=160, help="network input width")
    parser.add_argument("--batches", type=int, default=20,
                        help="training batches for the in-image validity rule")
    parser.add_argument("--output_json", type=Path, default=None, help="also write the results")
    args = parser.parse_args(argv)
    data, size = args.dataset_dir, (args.img_height, args.img_width)
    torch.manual_seed(0)

    results = {"align_corners": align_corners(frames_at(data, size)),
               "in_image_validity": in_image_validity(args.v1_ckpt, data, size, args.batches),
               "ranking": ranking(data, size),
               "normal_rank_sampling": normal_rank_sampling(frames_at(data, size, every=6)),
               "eval_counting": {"v1": eval_counting(args.v1_ckpt, data, size)},
               "frame_index": frame_index(data)}
    if args.v3_ckpt is not None:
        results["eval_counting"]["v3"] = eval_counting(args.v3_ckpt, data, size)
    text = json.dumps(results, indent=1)
    print(text)
    if args.output_json is not None:
        write_atomic(args.output_json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
