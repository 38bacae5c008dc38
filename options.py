"""Every option of the project, once: name, type, default, help, grouped as the tools use them.

Each group is a frozen dataclass whose fields are the options (``option(default, help)``).
``config.py`` builds the command-line parsers from these fields; the systems and the data
pipeline read typed values from :class:`TrainingOptions` (``training_options(hparams)``
completes a checkpoint's or a test's partial settings with these defaults), so a default is
written here and nowhere else. Imports only the dataset registry (for the names).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datasets.registry import DATASET_NAMES

__all__ = [
    "CHECKPOINT_SETTINGS",
    "GROUPS",
    "MIN_INPUT_SIZE",
    "PRECISIONS",
    "DataOptions",
    "EvaluationOptions",
    "InferenceOptions",
    "LossOptions",
    "ModelOptions",
    "RuntimeOptions",
    "TrainOptions",
    "TrainingOptions",
    "option",
    "training_options",
]

# What a checkpoint knows of its training: a tool that runs a checkpoint takes these from it
# unless the user gives them (tools.predictor).
CHECKPOINT_SETTINGS = ("model_version", "resnet_layers", "dataset_name", "img_height",
                       "img_width")

# Precision names (Lightning's): utils.runtime maps them to dtypes.
PRECISIONS = ("32", "bf16-mixed", "16-mixed")

# Smallest network input side: the stride-32 feature of DepthNet must be 2 pixels wide, the
# least that its ReflectionPad2d(1) accepts (models.depth_net checks its inputs with it).
MIN_INPUT_SIZE = 33


def option(default: Any, help: str, *, at_least: float | None = None,
           above: float | None = None, below: float | None = None,
           **argparse_kwargs: Any) -> Any:
    """A dataclass field that is also a command-line option ``--<name>``.

    at_least / above / below: the value must be >= / > / < this (config.py refuses others on
    the command line and in config files alike, as one line); a float must also be finite.
    argparse_kwargs: ``choices``, ``metavar``, ``nargs``/``const`` and ``aliases`` (more
    flag spellings, e.g. the public code's ``--save-vis``). A ``bool`` field is a switch
    (``store_true``), so its default must be False.
    """
    return field(default=default, metadata={"help": help, "at_least": at_least,
                                            "above": above, "below": below,
                                            **argparse_kwargs})


@dataclass(frozen=True)
class DataOptions:
    dataset_dir: str | None = option(
        None, "dataset root holding training/ and testing/ (layout: docs/method.md, Data)")
    dataset_name: str = option(
        "kitti", "which dataset: sets the ground-truth encoding, the evaluation range and "
        "crop, and the default training size", choices=DATASET_NAMES, aliases=("--dataset",))
    sequence_length: int = option(
        3, "frames per training sample (odd): the target and sequence_length - 1 references",
        at_least=3)
    skip_frames: int = option(1, "gap k between the target and its references (i-k, i+k)",
                              at_least=1)
    use_frame_index: bool = option(
        False, "use only the frames listed in each scene's frame_index.txt (made by "
        "generate_valid_frame_index.py)")
    img_height: int | None = option(
        None, "network input height (default: the dataset's training size)",
        at_least=MIN_INPUT_SIZE)
    img_width: int | None = option(
        None, "network input width (default: the dataset's training size)",
        at_least=MIN_INPUT_SIZE)
    num_workers: int = option(2, "data loader worker processes (0 loads in the main process)",
                              at_least=0)
    cache_frames: bool = option(
        False, "keep decoded frames in memory (for small datasets whose decoding is slow)")
    check_only: bool = option(False, "check the dataset layout, print a summary and exit")


@dataclass(frozen=True)
class ModelOptions:
    model_version: str = option(
        "v1", "v1: geometry consistency; v2: + auto-rectify network (hand-held video); "
        "v3: + single-image depth prior (dynamic scenes)", choices=("v1", "v2", "v3"))
    resnet_layers: int = option(
        18, "DepthNet encoder depth (PoseNet and ARN always use ResNet-18)", choices=(18, 50))
    no_pretrain: bool = option(
        False, "start the encoders from random weights instead of ImageNet's")
    encoder_weights: str | None = option(
        None, "ImageNet ResNet weights file (default: torchvision's file in the torch hub "
        "cache; nothing is downloaded)")
    ckpt_path: str | None = option(
        None, "checkpoint (.ckpt, ours or a published one) whose weights to use")


@dataclass(frozen=True)
class LossOptions:
    photo_weight: float = option(1.0, "photometric loss weight", at_least=0.0)
    geometry_weight: float = option(0.1, "geometry-consistency loss weight", at_least=0.0)
    smooth_weight: float = option(0.1, "edge-aware smoothness weight (V1, V2)", at_least=0.0)
    rot_c_weight: float = option(1.0, "V2: ARN rotation-consistency loss weight", at_least=0.0)
    rot_t_weight: float = option(1.0, "V2: ARN rotation-triplet loss weight", at_least=0.0)
    arn_label_range: float = option(
        0.05, "V2: ARN's known-rotation labels are drawn uniformly in +- this many radians per "
        "angle (0.05, the paper's; hand-held video can rotate more between frames)", above=0.0)
    arn_warmup_steps: int = option(
        0, "V2 (ours; 0, as in the paper): train ARN alone on known rotations for the first n "
        "steps; DepthNet and PoseNet start after them", at_least=0)
    arn_border_crop: float = option(
        0.0, "V2 (ours; 0, as in the paper): ARN sees both of its images without this fraction "
        "of their height and width on each side, so the empty border of a rotated image is no "
        "cue that real pairs lack", at_least=0.0, below=0.5)
    arn_earned_labels: float | None = option(
        None, "V2 (ours; off, as in the paper): ARN's own rotation becomes its label (the "
        "paper's 0.02-0.1 rad band) only while its mean error on known rotations (averaged "
        "over recent steps) is below this many radians", above=0.0)
    arn_owns_rotation: bool = option(
        False, "V2 (ours; off, as in the paper): the photometric warp of each raw reference "
        "takes its rotation from ARN and only the translation from PoseNet (which sees the "
        "reference rectified with a detached rotation), so PoseNet cannot absorb what ARN "
        "misses and the photometric loss trains ARN on real pairs")
    arn_pose_weight: float = option(
        0.0, "V2 (ours; 0, as in the paper): weight of a loss that makes ARN's rot1 on each "
        "real pair regress the rotation of the whole predicted pose (rot1 composed with "
        "PoseNet's rotation on the rectified pair, both detached): the rotation PoseNet finds "
        "left becomes ARN's to predict instead of PoseNet's to absorb", at_least=0.0)
    arn_frozen: bool = option(
        False, "V2 (ours; off, as in the paper): ARN trains no more once --arn_warmup_steps "
        "are done (from the first step with 0 warm-up steps, for an ARN loaded with "
        "--ckpt_path): its rectification stays what it learnt on known rotations while "
        "DepthNet and PoseNet learn on the rectified pairs")
    arn_refine: bool = option(
        False, "V2 (ours; off, as in the paper): refine ARN's rotation of each pair by direct "
        "photometric alignment (Gauss-Newton on the rotation warp, coarse to fine) before the "
        "reference is rectified; ARN's gradient passes through unchanged")
    normal_matching_weight: float = option(0.1, "V3: normal-matching loss weight",
                                           at_least=0.0)
    mask_rank_weight: float = option(0.1, "V3: dynamic-region mask ranking loss weight",
                                     at_least=0.0)
    normal_rank_weight: float = option(0.1, "V3: edge-guided normal ranking loss weight",
                                       at_least=0.0)
    rank_normalize: bool = option(
        False, "V3 (ours; off, as in the paper): the mask ranking ranks depth divided by its "
        "image mean, so the loss does not depend on the network's arbitrary depth unit")
    unchecked_unreliable: bool = option(
        False, "V3 (ours; off, as in the public code): pixels that no reference warp can "
        "check (out of view, auto-masked) get dynamic-region confidence 0 instead of 1, so "
        "the mask ranking treats them as possible moving objects")
    mask_rank_global_pairs: str = option(
        "spread", "V3: how the mask ranking draws its global pairs: spread (random pixels "
        "paired by a random permutation, across the image) or raster (the public code's: "
        "the k-th pixels of two random sets in raster order, so most pairs share a row)",
        choices=("spread", "raster"))
    normal_rank_sampling: str = option(
        "gradient", "V3: how the normal ranking samples points across edges: gradient (along "
        "the gradient of the grey image and of the prior's normals) or public (the public "
        "code's: red-channel edges, directions folded into one quadrant)",
        choices=("gradient", "public"))
    no_ssim: bool = option(False, "ablation: photometric error from L1 only, no SSIM")
    no_auto_mask: bool = option(False, "ablation: no auto-mask of static pixels")
    no_dynamic_mask: bool = option(
        False, "ablation: no self-discovered (1 - D_diff) weighting of the photometric error")
    no_min_optimize: bool = option(
        False, "ablation: average over all reference views instead of the best one per pixel")


@dataclass(frozen=True)
class TrainOptions:
    exp_name: str = option(
        "sc_depth", "run name: logs and checkpoints go to <log_dir>/<exp_name>/version_N")
    log_dir: str = option("ckpts", "root folder of the runs")
    batch_size: int = option(4, "samples per batch and device", at_least=1)
    epoch_size: int = option(1000, "batches per epoch (drawn at random with replacement)",
                             at_least=1)
    num_epochs: int = option(100, "number of epochs", at_least=1)
    max_steps: int = option(-1, "stop after this many optimizer steps (-1: no limit)",
                            at_least=-1)
    max_minutes: float | None = option(
        None, "stop after this many minutes of training, wall clock (validation included, "
        "and counted over --resume: the time before it is in the checkpoint); like "
        "--max_steps it validates and writes last.ckpt first", above=0.0)
    lr: float = option(1e-4, "Adam learning rate (a resumed run takes this one, not the "
                       "checkpoint's)", above=0.0)
    val_every_n_steps: int | None = option(
        None, "also validate (and keep the best checkpoints) every n optimizer steps "
        "(default: at the end of each epoch and of --max_steps)", at_least=1)
    ckpt_every_n_steps: int = option(
        250, "write last.ckpt every n optimizer steps, so that a crash loses at most that "
        "many (0: only at validation); SIGTERM and Ctrl-C write it before stopping",
        at_least=0)
    val_mode: str = option(
        "depth", "validate with ground-truth depth (AbsRel) or with the photometric loss "
        "(videos without ground truth)", choices=("depth", "photo"))
    limit_val_batches: float = option(
        1.0, "fraction (<= 1.0) or number (> 1) of validation batches per validation",
        above=0.0)
    log_every_n_steps: int = option(50, "how often to write training scalars", at_least=1)
    log_images_every_n_steps: int = option(
        500, "how often to write image strips to TensorBoard (0: never)", at_least=0)
    seed: int | None = option(
        None, "seed everything (Python, NumPy, torch, workers) for repeatable runs")
    accelerator: str = option(
        "auto", "auto picks a GPU when one is present, else the CPU",
        choices=("auto", "cpu", "gpu"))
    devices: str = option("auto", "devices per node: a number, a list like 0,1, or auto")
    num_nodes: int = option(1, "number of machines (DDP)", at_least=1)
    precision: str = option(
        "32", "32, or mixed precision: bf16-mixed (CPUs with AVX-512-bf16 or AMX, recent "
        "GPUs) or 16-mixed (GPUs)", choices=PRECISIONS)
    compile: bool = option(
        False, "torch.compile the networks and the photometric loss (minutes of compilation "
        "in the first steps, faster after)")
    no_batched_forwards: bool = option(
        False, "run DepthNet and PoseNet once per frame or pair instead of one batched call")
    no_channels_last: bool = option(False, "keep the NCHW memory layout, not channels_last")
    pose_autocast: bool = option(
        False, "run PoseNet and ARN under the mixed --precision too (faster; by default they "
        "stay fp32, which was more accurate in our runs: docs/performance.md)")
    no_malloc_tuning: bool = option(
        False, "leave glibc's allocator as it is (default: keep freed memory for reuse "
        "instead of returning it to the OS every step: faster on CPU, higher resident peak)")
    no_fused_ssim: bool = option(
        False, "SSIM as five separate 7x7 mean pools (the public code's form) instead of one "
        "separable pool over the stacked moments")
    fp16_best_checkpoints: bool = option(
        False, "store the weights of the best-k checkpoints in fp16 (half their size again; "
        "test.py and the other tools cast them back to fp32); last.ckpt stays full for "
        "--resume")
    resume: str | None = option(
        None, "continue training: alone, from the newest run of --exp_name's last.ckpt; "
        "with a file, from that checkpoint (optimizer, epoch and step included)",
        nargs="?", const="last", metavar="FILE")


@dataclass(frozen=True)
class TrainingOptions(TrainOptions, LossOptions, ModelOptions, DataOptions):
    """Every option a training run reads: what the systems and the data pipeline see, and
    what a checkpoint stores as its ``hyper_parameters``."""


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = option(
        "auto", "torch device: auto (a GPU when there is one), cpu, cuda, cuda:1 ...")
    infer_batch_size: int = option(4, "images per forward pass", at_least=1)
    infer_precision: str = option(
        "32", "precision of the forward passes: 32, bf16-mixed (DepthNet in bf16, its depth "
        "head in fp32) or 16-mixed (the same in fp16, GPUs only)", choices=PRECISIONS)
    infer_compile: bool = option(
        False, "torch.compile the inference network with its weights frozen (convolutions "
        "fused with their activations, weights pre-packed): faster per image, after a "
        "compile of half a minute or more; for long videos and large folders")


@dataclass(frozen=True)
class InferenceOptions:
    input_dir: str | None = option(None, "folder of input images, or one image file")
    input_video: str | None = option(None, "input video file")
    output_dir: str | None = option(None, "where to write the results")
    save_vis: bool = option(
        False, "write colour-mapped depth images (<name>.jpg)", aliases=("--save-vis",))
    save_depth: bool = option(
        False, "write raw depth (<name>.npy, float32, network units) at network resolution "
        "unless --output_resolution input", aliases=("--save-depth",))
    vis_side_by_side: bool = option(
        False, "put the input image left of the colour map in --save_vis / --save_video "
        "outputs", aliases=("--vis-side-by-side",))
    save_png16: bool = option(
        False, "write <name>.png, 16-bit: round(1000 * depth_scale * depth), i.e. millimetres "
        "when --depth_scale gives metres per network unit; without it, 1000 x the network's "
        "relative depth (scale unknown, consistent over frames); saturates at 65535",
        aliases=("--save-png16",))
    vis_min_depth: float | None = option(
        None, "colour maps over a fixed depth range: this depth (in output units: network "
        "units times --depth_scale) is the brightest; with --vis_max_depth the colours of "
        "all pictures are comparable (default: each picture scaled to its own 95th "
        "percentile of disparity)", above=0.0)
    vis_max_depth: float | None = option(
        None, "the far end of the fixed range of --vis_min_depth (the darkest)", above=0.0)
    vis_colorbar: bool = option(
        False, "add a colour bar with depth labels to each colour map (needs the fixed "
        "range of --vis_min_depth and --vis_max_depth)", aliases=("--vis-colorbar",))
    depth_scale: float = option(
        1.0, "metres per network depth unit (e.g. test.py's median scale ratio), applied to "
        "--save_png16 and --save_ply; 1.0 keeps network units", above=0.0)
    output_resolution: str = option(
        "network", "size of the depth outputs (inference's npy, png16, vis and ply; the RGB-D "
        "export's frames): the network's, or resized (bilinear) back to each input's size",
        choices=("network", "input"))
    save_ply: bool = option(
        False, "write coloured point clouds <name>.ply (binary PLY, camera frame, OpenCV "
        "axes); needs --cam_txt or --fx --fy --cx --cy", aliases=("--save-ply",))
    cam_txt: str | None = option(
        None, "3x3 intrinsics file (cam.txt) of the input images or video frames")
    fx: float | None = option(None, "focal length x, in input pixels", above=0.0)
    fy: float | None = option(None, "focal length y, in input pixels", above=0.0)
    cx: float | None = option(None, "principal point x, in input pixels")
    cy: float | None = option(None, "principal point y, in input pixels")
    ply_every: int = option(10, "video input: write a point cloud for every n-th frame only",
                            at_least=1)
    save_video: bool = option(
        False, "video input: write <video name>_depth.mp4 (or .avi) of the colour maps",
        aliases=("--save-video",))
    video_fps: float | None = option(
        None, "frame rate of --save_video (default: the input video's, else 10)", above=0.0)
    min_image_size: int = option(64, "inputs with a side shorter than this are skipped",
                                 at_least=1)
    max_image_size: int = option(
        8192, "inputs with a side longer than this are skipped, read from the file's header "
        "before it is decoded (a decompression bomb never is)", at_least=1)


@dataclass(frozen=True)
class EvaluationOptions:
    output_json: str | None = option(None, "also write the results to this JSON file")


# Group name -> its dataclass, in the order the help lists them.
GROUPS: dict[str, type] = {
    "data": DataOptions,
    "model": ModelOptions,
    "losses": LossOptions,
    "training": TrainOptions,
    "runtime": RuntimeOptions,
    "inference": InferenceOptions,
    "evaluation": EvaluationOptions,
}


def own_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The fields a group declares itself, with their resolved types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)
            if f.name in inspect.get_annotations(cls)]


def training_options(hparams: argparse.Namespace | Mapping[str, Any] | TrainingOptions
                     ) -> TrainingOptions:
    """The typed options of ``hparams`` (a parsed Namespace, a checkpoint's
    ``hyper_parameters``, a dict of a few settings): missing options take their defaults,
    keys that are no option (a published checkpoint's extras) are ignored."""
    if isinstance(hparams, TrainingOptions):
        return hparams
    values = vars(hparams) if isinstance(hparams, argparse.Namespace) else dict(hparams)
    names = {f.name for f in dataclasses.fields(TrainingOptions)}
    return TrainingOptions(**{k: v for k, v in values.items() if k in names})
