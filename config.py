"""The one options schema of the project (SPEC §6).

Every script builds its parser here, from the groups it needs, so an option has one name,
one default and one help text everywhere. Config files (`--config FILE`, `key = value`
lines) hold only what differs from these defaults; flags on the command line override
them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import configargparse

DATASET_NAMES = ("kitti", "nyu", "ddad", "bonn", "tum", "synthetic")

# Training resolutions of the papers (SPEC §4); `--img_height/--img_width` override them.
DEFAULT_SIZES = {
    "kitti": (256, 832),
    "ddad": (384, 640),
    "nyu": (256, 320),
    "bonn": (256, 320),
    "tum": (256, 320),
    "synthetic": (256, 320),
}

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


def _add_data(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--dataset_dir", type=str, default=None,
                   help="dataset root holding training/ and testing/ (SPEC §4 layout)")
    g.add_argument("--dataset_name", type=str, default="kitti", choices=DATASET_NAMES,
                   help="sets the ground-truth encoding, evaluation range/crop and the "
                        "default training size")
    g.add_argument("--sequence_length", type=int, default=3,
                   help="frames per training sample (odd): target plus (n-1) references")
    g.add_argument("--skip_frames", type=int, default=1,
                   help="gap k between the target and its references (i-k, i+k)")
    g.add_argument("--use_frame_index", action="store_true",
                   help="use only the frames listed in each scene's frame_index.txt "
                        "(see generate_valid_frame_index.py)")
    g.add_argument("--img_height", type=int, default=None,
                   help="network input height (default: the dataset's training size)")
    g.add_argument("--img_width", type=int, default=None,
                   help="network input width (default: the dataset's training size)")
    g.add_argument("--num_workers", type=int, default=2,
                   help="DataLoader worker processes (0 loads in the main process)")
    g.add_argument("--cache_frames", action="store_true",
                   help="keep decoded frames in memory (for small datasets)")
    g.add_argument("--check_only", action="store_true",
                   help="check the dataset layout, print a summary and exit")


def _add_model(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model_version", type=str, default="v1", choices=("v1", "v2", "v3"),
                   help="v1: geometry consistency; v2: + auto-rectify network; "
                        "v3: + single-image depth prior")
    g.add_argument("--resnet_layers", type=int, default=18, choices=(18, 50),
                   help="DepthNet encoder depth (PoseNet and ARN always use ResNet-18)")
    g.add_argument("--no_pretrain", action="store_true",
                   help="start the encoders from random weights instead of ImageNet")
    g.add_argument("--encoder_weights", type=str, default=None,
                   help="ImageNet ResNet weights file (default: torchvision's file in "
                        "the torch hub cache)")
    g.add_argument("--ckpt_path", type=str, default=None,
                   help="checkpoint (.ckpt, ours or the published ones) whose weights "
                        "to load")


def _add_losses(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("losses")
    g.add_argument("--photo_weight", type=float, default=1.0, help="photometric loss weight")
    g.add_argument("--geometry_weight", type=float, default=0.1,
                   help="geometry-consistency loss weight")
    g.add_argument("--smooth_weight", type=float, default=0.1,
                   help="edge-aware smoothness weight (V1/V2)")
    g.add_argument("--rot_c_weight", type=float, default=1.0,
                   help="V2: ARN rotation-consistency loss weight")
    g.add_argument("--rot_t_weight", type=float, default=1.0,
                   help="V2: ARN rotation-triplet loss weight")
    g.add_argument("--normal_matching_weight", type=float, default=0.1,
                   help="V3: normal-matching loss weight")
    g.add_argument("--mask_rank_weight", type=float, default=0.1,
                   help="V3: dynamic-region mask ranking loss weight")
    g.add_argument("--rank_normalize", action="store_true",
                   help="V3 (our option; off, as in the paper): the mask ranking loss ranks "
                        "depth divided by its image mean, so the loss does not depend on the "
                        "network's arbitrary depth unit (docs/method.md)")
    g.add_argument("--unchecked_unreliable", action="store_true",
                   help="V3 (our option; off, as in the public code): pixels that no "
                        "reference warp can check (out of view, auto-masked) get "
                        "dynamic-region confidence 0 instead of 1, so the mask ranking "
                        "treats them as possible moving objects")
    g.add_argument("--mask_rank_global_pairs", type=str, default="spread",
                   choices=("spread", "raster"),
                   help="V3: how the mask ranking draws its global pairs: spread (random "
                        "pixels paired by a random permutation, across the image) or raster "
                        "(the public code's: the k-th pixels of two random sets in raster "
                        "order, so most pairs share a row)")
    g.add_argument("--normal_rank_sampling", type=str, default="gradient",
                   choices=("gradient", "public"),
                   help="V3: how the normal ranking samples points across edges: gradient "
                        "(along the true gradient of the grey image and of the prior's "
                        "normals) or public (the public code's: red-channel edges, "
                        "directions folded into one quadrant)")
    g.add_argument("--normal_rank_weight", type=float, default=0.1,
                   help="V3: edge-guided normal ranking loss weight")
    g.add_argument("--no_ssim", action="store_true", help="ablation: L1 only, no SSIM")
    g.add_argument("--no_auto_mask", action="store_true",
                   help="ablation: no auto-mask of static pixels")
    g.add_argument("--no_dynamic_mask", action="store_true",
                   help="ablation: no self-discovered (1 - D_diff) weighting")
    g.add_argument("--no_min_optimize", action="store_true",
                   help="ablation: average over all reference views instead of the best")


def _add_training(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--exp_name", type=str, default="sc_depth",
                   help="run name: logs and checkpoints go to <log_dir>/<exp_name>/version_N")
    g.add_argument("--log_dir", type=str, default="ckpts",
                   help="root folder of the runs")
    g.add_argument("--batch_size", type=int, default=4, help="samples per batch and device")
    g.add_argument("--epoch_size", type=int, default=1000,
                   help="batches per epoch (drawn at random with replacement)")
    g.add_argument("--num_epochs", type=int, default=100, help="number of epochs")
    g.add_argument("--max_steps", type=int, default=-1,
                   help="stop after this many optimizer steps (-1: no limit)")
    g.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    g.add_argument("--val_mode", type=str, default="depth", choices=("depth", "photo"),
                   help="validate with ground-truth depth or with the photometric loss")
    g.add_argument("--limit_val_batches", type=float, default=1.0,
                   help="fraction (<=1.0) or number (>1) of validation batches per epoch")
    g.add_argument("--log_every_n_steps", type=int, default=50,
                   help="how often to write training scalars")
    g.add_argument("--log_images_every_n_steps", type=int, default=500,
                   help="how often to write image strips to TensorBoard (0: never)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed everything (Python, NumPy, torch, workers) for repeatable runs")
    g.add_argument("--accelerator", type=str, default="auto", choices=("auto", "cpu", "gpu"),
                   help="auto picks a GPU when one is present, else the CPU")
    g.add_argument("--devices", type=str, default="auto",
                   help="devices per node: a number, a list like 0,1, or auto")
    g.add_argument("--num_nodes", type=int, default=1, help="number of machines (DDP)")
    g.add_argument("--precision", type=str, default="32", choices=PRECISIONS,
                   help="32, or mixed precision: bf16-mixed (CPUs with AMX/AVX-512-bf16, "
                        "recent GPUs) or 16-mixed (GPUs)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the networks (slow first steps, faster after)")
    g.add_argument("--no_batched_forwards", action="store_true",
                   help="run DepthNet/PoseNet once per frame/pair instead of one batched call")
    g.add_argument("--no_channels_last", action="store_true",
                   help="keep NCHW memory layout instead of channels_last")
    g.add_argument("--pose_autocast", action="store_true",
                   help="run PoseNet and ARN under the mixed --precision too (faster; by "
                        "default they stay fp32: bf16 poses cost ~0.03 AbsRel in our runs)")
    g.add_argument("--no_malloc_tuning", action="store_true",
                   help="leave glibc's allocator as it is (default: keep freed memory for "
                        "reuse instead of returning it to the OS every step, faster on CPU, "
                        "higher resident peak)")
    g.add_argument("--no_fused_ssim", action="store_true",
                   help="SSIM as five separate 7x7 mean pools (the public code's form) "
                        "instead of one separable pool over the stacked moments")
    g.add_argument("--resume", nargs="?", const="last", default=None, metavar="FILE",
                   help="continue training: alone, from the newest run of --exp_name's "
                        "last.ckpt; with a file, from that checkpoint (optimizer, epoch "
                        "and step included)")


def _add_inference(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("inference")
    g.add_argument("--input_dir", type=str, default=None, help="folder of input images")
    g.add_argument("--input_video", type=str, default=None, help="input video file")
    g.add_argument("--output_dir", type=str, default=None, help="where to write the results")
    g.add_argument("--save-vis", dest="save_vis", action="store_true",
                   help="write colour-mapped depth images (<name>.jpg)")
    g.add_argument("--save-depth", dest="save_depth", action="store_true",
                   help="write raw depth (<name>.npy, float32, network units) at network "
                        "resolution unless --output_resolution input")
    g.add_argument("--vis-side-by-side", dest="vis_side_by_side", action="store_true",
                   help="put the input image left of the colour map in --save-vis / "
                        "--save-video outputs")
    g.add_argument("--save-png16", dest="save_png16", action="store_true",
                   help="write <name>.png, 16-bit: round(1000 * depth_scale * depth), i.e. "
                        "millimetres when --depth_scale gives metres per network unit; "
                        "without it, 1000 x the network's relative depth (scale unknown, "
                        "consistent over frames); saturates at 65535")
    g.add_argument("--depth_scale", type=float, default=1.0,
                   help="metres per network depth unit (e.g. from test.py's median ratio), "
                        "applied to --save-png16 and --save-ply; 1.0 keeps network units")
    g.add_argument("--output_resolution", type=str, default="network",
                   choices=("network", "input"),
                   help="size of the depth outputs (npy, png16, vis, ply): the network's, or "
                        "resized (bilinear) back to each input's size")
    g.add_argument("--save-ply", dest="save_ply", action="store_true",
                   help="write coloured point clouds <name>.ply (binary PLY, camera frame, "
                        "OpenCV axes); needs --cam_txt or --fx --fy --cx --cy")
    g.add_argument("--cam_txt", type=str, default=None,
                   help="3x3 intrinsics file (cam.txt) of the INPUT images / video frames")
    g.add_argument("--fx", type=float, default=None, help="focal length x (input pixels)")
    g.add_argument("--fy", type=float, default=None, help="focal length y (input pixels)")
    g.add_argument("--cx", type=float, default=None, help="principal point x (input pixels)")
    g.add_argument("--cy", type=float, default=None, help="principal point y (input pixels)")
    g.add_argument("--ply_every", type=int, default=10,
                   help="video input: write a point cloud for every n-th frame only")
    g.add_argument("--save-video", dest="save_video", action="store_true",
                   help="video input: write <video name>_depth.mp4 (or .avi) of the colour maps")
    g.add_argument("--video_fps", type=float, default=None,
                   help="frame rate of --save-video (default: the input video's, else 10)")
    g.add_argument("--min_image_size", type=int, default=64,
                   help="inputs with a side shorter than this (pixels) are skipped")
    g.add_argument("--max_image_size", type=int, default=8192,
                   help="inputs with a side longer than this (pixels) are skipped")


def _add_runtime(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("runtime (test.py, inference.py)")
    g.add_argument("--device", type=str, default="auto",
                   help="torch device: auto (a GPU when there is one), cpu, cuda, cuda:1 ...")
    g.add_argument("--infer_batch_size", type=int, default=4,
                   help="images per forward pass")
    g.add_argument("--infer_precision", type=str, default="32", choices=PRECISIONS,
                   help="precision of the forward passes: 32, bf16-mixed (DepthNet's weights "
                        "and activations in bf16, the depth head in fp32; about 2x the "
                        "images/s of 32 on CPUs with AVX-512-bf16) or 16-mixed (the same in "
                        "fp16, GPUs only)")


def _add_evaluation(parser: configargparse.ArgumentParser) -> None:
    g = parser.add_argument_group("evaluation")
    g.add_argument("--output_json", type=str, default=None,
                   help="also write the metrics to this JSON file")


GROUPS = {
    "data": _add_data,
    "model": _add_model,
    "losses": _add_losses,
    "training": _add_training,
    "inference": _add_inference,
    "runtime": _add_runtime,
    "evaluation": _add_evaluation,
}


def get_parser(groups: Sequence[str] = ("data", "model", "losses", "training"),
               description: str | None = None,
               parser: configargparse.ArgumentParser | None = None,
               ) -> configargparse.ArgumentParser:
    """Build the parser from the named option groups (all share one schema)."""
    if parser is None:
        parser = configargparse.ArgumentParser(
            description=description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            # A training config may be passed to test.py/inference.py: keys of groups a
            # script does not use are ignored rather than rejected.
            ignore_unknown_config_file_keys=True,
        )
    parser.add_argument("--config", is_config_file=True,
                        help="config file of `key = value` lines (flags override it)")
    for name in groups:
        GROUPS[name](parser)
    return parser


def finalize(opts: argparse.Namespace) -> argparse.Namespace:
    """Fill the defaults that depend on other options (the training size)."""
    if hasattr(opts, "dataset_name"):
        height, width = DEFAULT_SIZES[opts.dataset_name]
        if getattr(opts, "img_height", None) is None:
            opts.img_height = height
        if getattr(opts, "img_width", None) is None:
            opts.img_width = width
    return opts


def parse_options(argv: Sequence[str] | None = None,
                  groups: Sequence[str] = ("data", "model", "losses", "training"),
                  description: str | None = None) -> argparse.Namespace:
    parser = get_parser(groups, description)
    return finalize(parser.parse_args(argv))
