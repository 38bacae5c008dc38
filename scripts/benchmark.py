"""Benchmark SC-Depth training steps, inference, the data pipeline and memory.

    python scripts/benchmark.py --model_version v1 --img_height 256 --img_width 320 \
        --batch_size 4 --compare
    python scripts/benchmark.py --model_version v3 --precision bf16-mixed --mode both --json
    python scripts/benchmark.py --data --workers 0 2 --steps 20
    python scripts/benchmark.py --time_to_accuracy 10 --model_version v1 --seeds 0 1 2

Modes: ``plain`` is our own eager path without the optimisations (one DepthNet call per
frame, one PoseNet call per pair, NCHW, SSIM as five 7×7 pools, no compile); ``fast`` is the
default path (batched forwards, channels_last, fused separable SSIM, and ``--compile`` if
asked; ``train.py``'s allocator tuning, utils/allocator.py). ``--compare`` runs plain-fp32,
fast-fp32 and fast-bf16 side by side, each in a fresh process (``--in_process``: all in this
one, without the allocator tuning), and prints the speed-ups. Each timed figure is the
median of ``--steps`` steps after ``--warmup`` steps.

Training step = forward + backward + Adam step through the real ``loss_terms``/``total_loss``
of the system class, on a synthetic random batch in TrainFolder's format. Inference =
DepthNet forward under ``inference_mode`` (fast: the frozen copy, BatchNorm folded and
weights in the run's precision, that ``test.py`` and ``inference.py`` run; plain: the
training network in eval mode). Data = samples/s of VideoDataModule's training loader over
``--dataset_dir`` (a synthetic set is generated there if it is missing).

``--time_to_accuracy MINUTES`` answers what a user feels: ``train.py`` with
``configs/<version>/synthetic.txt`` on the built-in default set (``--dataset_dir``, generated
in the temp folder if missing) for MINUTES of wall clock (``--max_minutes``, validation
included) per path (plain fp32, fast fp32, fast bf16), each in its own process, the paths
taking turns seed by seed; then ``test.py`` on each ``last.ckpt``. It reports the steps done,
the seconds per step within the budget and the test AbsRel (all / dynamic / static pixels),
mean ± std over ``--seeds``.

``--roofline`` adds what the hardware allows: the multiply-accumulates of every convolution
in a step (forward and backward) and in an inference call, this device's rate on a large
3×3 convolution in each precision, and the least time that work takes at that rate.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of the run; on CPU the peak
resident set size of the process during the run (the high-water mark is reset at the start
of each run where Linux allows it, so it includes the ~0.3–0.5 GB of the libraries).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Runnable as `python scripts/benchmark.py` from the repository root or anywhere else.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import torch  # noqa: E402

from datasets.formats import IMAGE_MEAN, IMAGE_STD  # noqa: E402
from options import PRECISIONS  # noqa: E402
from systems import system_class  # noqa: E402
from utils.allocator import keep_freed_memory  # noqa: E402
from utils.runtime import autocast_context, precision_dtype  # noqa: E402

MODES = ("fast", "plain")
# --compare: (mode, precision) triples shown side by side; the first is the reference.
COMPARE_RUNS = (("plain", "32"), ("fast", "32"), ("fast", "bf16-mixed"))
# On CUDA fp16 autocast is the other fast precision (tensor cores; CPUs have no fp16 path).
COMPARE_RUNS_CUDA = (*COMPARE_RUNS, ("fast", "16-mixed"))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model_version", "--version", choices=("v1", "v2", "v3"), default="v1",
                   help="which system's training step to time")
    p.add_argument("--img_height", "--height", type=int, default=256, help="input height")
    p.add_argument("--img_width", "--width", type=int, default=320, help="input width")
    p.add_argument("--batch_size", type=int, default=4,
                   help="samples per training step and images per inference call")
    p.add_argument("--precision", choices=PRECISIONS, default="32",
                   help="32, or autocast bf16/fp16 with the losses kept in fp32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the configurations in turn this many times (shared machines)")
    p.add_argument("--mode", choices=("fast", "plain", "both"), default="fast",
                   help="fast: batched forwards + channels_last + fused SSIM; plain: one "
                        "call per frame, NCHW, five-pool SSIM; both: each in turn")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (fast)")
    p.add_argument("--compare", action="store_true",
                   help="run plain-fp32, fast-fp32, fast-bf16 (and fast-fp16 on CUDA) side by "
                        "side, print speed-ups")
    p.add_argument("--skip", nargs="*", default=[], choices=("train", "infer"),
                   help="parts not to measure")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--data", action="store_true", help="also measure the data pipeline")
    p.add_argument("--dataset_dir", "--data_dir", type=str, default=None,
                   help="dataset for --data (default: a synthetic set in the temp folder)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                   help="DataLoader worker counts for --data")
    p.add_argument("--cache_frames", action="store_true", help="--data with the frame cache")
    p.add_argument("--roofline", action="store_true",
                   help="also count the convolutions' multiply-accumulates of a step and of "
                        "an inference call, measure this device's peak 3x3-convolution "
                        "rate in each precision, and print the least time they allow")
    p.add_argument("--json", action="store_true", help="one JSON object per run per line")
    p.add_argument("--in_process", action="store_true",
                   help="run every configuration in this process (default: each in a fresh "
                        "process, so memory peaks and allocator settings do not carry over; "
                        "in-process runs never tune the allocator)")
    p.add_argument("--no_malloc_tuning", action="store_true",
                   help="fast mode without utils.allocator.keep_freed_memory")
    p.add_argument("--time_to_accuracy", type=float, default=None, metavar="MINUTES",
                   help="train each path (plain fp32, fast fp32, fast bf16) for this many "
                        "minutes on the built-in set and report the test AbsRel reached (v1 "
                        "or v3, with configs/<version>/synthetic.txt: its size, batch and "
                        "precision, not this tool's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds for --time_to_accuracy (mean ± std over them)")
    p.add_argument("--_run", default=None, help=argparse.SUPPRESS)  # run_isolated's child
    p.add_argument("--seed", type=int, default=0, help="seed of the random batches")
    return p


# --------------------------------------------------------------------------- helpers
def model_hparams(version: str, mode: str, compile_: bool = False) -> dict[str, Any]:
    """Hyper-parameters of a randomly initialised system for ``mode`` (fast | plain)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    plain = mode == "plain"
    return {"model_version": version, "no_pretrain": True, "resnet_layers": 18,
            "dataset_name": "synthetic", "no_batched_forwards": plain,
            "no_channels_last": plain, "no_fused_ssim": plain,
            "compile": compile_ and not plain, "lr": 1e-4}


def build_system(version: str, mode: str, device: torch.device, compile_: bool = False
                 ) -> torch.nn.Module:
    """The SCDepthVx system of ``version`` with the fast path of ``mode`` applied."""
    model = system_class(version)(model_hparams(version, mode, compile_))
    model.apply_fast_path()  # what LightningModule.setup does in training
    return model.to(device)


def synthetic_batch(version: str, batch_size: int, height: int, width: int,
                    device: torch.device, num_refs: int = 2, seed: int = 0) -> dict[str, Any]:
    """A random batch in TrainFolder's format.

    tgt ``[B,3,H,W]``, refs list of ``[B,3,H,W]`` (normalised-image range), K/K_inv
    ``[B,3,3]`` (a plausible pinhole camera), tgt_prior ``[B,1,H,W]`` for v3. The references
    are the target with small shifts and noise, so the warps and masks see realistic data.
    """
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch_size, 3, height, width, generator=g)
    # smooth the noise a little so SSIM and the auto-mask are not degenerate
    base = torch.nn.functional.avg_pool2d(base, 5, stride=1, padding=2)
    tgt = (base - IMAGE_MEAN) / IMAGE_STD
    refs = [torch.roll(tgt, shifts=s, dims=3) + 0.05 * torch.randn(tgt.shape, generator=g)
            for s in (-2, 2)[:num_refs]]
    f = 0.6 * width
    K = torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    K = K.expand(batch_size, 3, 3).contiguous()
    batch: dict[str, Any] = {"tgt": tgt, "refs": refs, "K": K, "K_inv": torch.linalg.inv(K)}
    if version == "v3":
        batch["tgt_prior"] = 1.0 + torch.rand(batch_size, 1, height, width, generator=g)
    return _to_device(batch, device)


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, list):
        return [_to_device(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], steps: int, warmup: int, device: torch.device
               ) -> list[float]:
    """Seconds of each of ``steps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


class PeakMemory:
    """Peak memory of a block: CUDA max allocated, or the process's peak RSS on the CPU.

    ``kind`` says which was measured ("cuda_max_allocated", "cpu_peak_rss" when the
    high-water mark could be reset for the block, else "cpu_peak_rss_process").
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = ""
        self.mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda_max_allocated"
        else:
            try:  # Linux ≥ 4.0: "5" resets VmHWM to the current RSS
                Path("/proc/self/clear_refs").write_text("5")
                self.kind = "cpu_peak_rss"
            except OSError:
                self.kind = "cpu_peak_rss_process"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self.mb = _peak_rss_mb()


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


# ------------------------------------------------------------------------ measurements
def bench_train_step(model: torch.nn.Module, batch: dict[str, Any], precision: str,
                     device: torch.device, steps: int, warmup: int) -> list[float]:
    """Seconds per training step (forward, backward, Adam step; fp16 with a GradScaler)."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(precision, device):
            terms, _ = model.loss_terms(batch)
            loss = model.total_loss(terms)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    return time_calls(step, steps, warmup, device)


def bench_inference(model: torch.nn.Module, batch_size: int, height: int, width: int,
                    precision: str, device: torch.device, steps: int, warmup: int,
                    mode: str = "fast", compile_: bool = False
                    ) -> tuple[list[float], float | None]:
    """Seconds per depth forward of ``batch_size`` images under ``inference_mode``, and
    with ``compile_`` the seconds of the first call (the compilation).

    ``fast`` runs what ``test.py`` and ``inference.py`` run: the frozen
    ``model.inference_net(precision, compile_)`` (BatchNorm folded, weights in the
    precision's dtype, channels_last; compiled with frozen weights, as ``--infer_compile``
    does). ``plain`` runs the training network in eval mode as it is (NCHW, BatchNorm as a
    layer), under autocast for ``precision``.
    """
    img = torch.randn(batch_size, 3, height, width, device=device)
    if mode == "fast":
        net = model.inference_net(precision, compile_)

        def forward() -> None:
            with torch.inference_mode():
                net(img)
    else:
        model.eval()

        def forward() -> None:
            with torch.inference_mode(), autocast_context(precision, device):
                model(img)

    compile_s = None
    if compile_ and mode == "fast":
        start = time.perf_counter()
        forward()
        _sync(device)
        compile_s = time.perf_counter() - start
    return time_calls(forward, steps, warmup, device), compile_s


def ensure_dataset(data_dir: str | Path | None, height: int, width: int) -> Path:
    """``data_dir`` if it holds a dataset, else a small synthetic set generated there."""
    from datasets.synthetic import generate_dataset

    root = Path(data_dir) if data_dir else Path(tempfile.gettempdir()) / (
        f"sc_depth_bench_{height}x{width}")
    if not (root / "training" / "train.txt").is_file():
        generate_dataset(root, seed=0, scenes=2, frames=24, val_scenes=1, test_scenes=1,
                         height=height, width=width, progress=False)
    return root


def bench_data(data_dir: Path, version: str, height: int, width: int, batch_size: int,
               workers: int, steps: int, warmup: int, cache_frames: bool = False) -> float:
    """Samples/s of VideoDataModule's training loader (after ``warmup`` batches, which
    include the workers' start)."""
    from config import parse_options
    from datasets.data_module import VideoDataModule

    opts = parse_options(["--dataset_dir", str(data_dir), "--dataset_name", "synthetic",
                          "--model_version", version, "--img_height", str(height),
                          "--img_width", str(width), "--batch_size", str(batch_size),
                          "--epoch_size", str(steps + warmup), "--num_workers", str(workers),
                          *(["--cache_frames"] if cache_frames else [])])
    loader = VideoDataModule(opts).train_dataloader()
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    count = 0
    for batch in it:
        count += batch["tgt"].shape[0]
    elapsed = time.perf_counter() - start
    del it
    return count / elapsed if elapsed > 0 else float("nan")


def run_config(args: argparse.Namespace, mode: str, precision: str) -> dict[str, Any]:
    """One benchmark run: the settings, peak memory and the raw step times
    (``_train_times``, ``_infer_times``; see :func:`merge_rounds`)."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Process-wide, so only in a process of its own (run_isolated): the plain reference
    # keeps glibc's default allocator.
    tune = mode == "fast" and not args.no_malloc_tuning and not args.in_process
    tune = tune and keep_freed_memory()
    torch.manual_seed(args.seed)
    record: dict[str, Any] = {
        "version": args.model_version, "mode": mode, "precision": precision,
        "compile": bool(args.compile and mode == "fast"), "malloc_tuning": tune,
        "isolated": not args.in_process, "height": args.img_height,
        "width": args.img_width, "batch_size": args.batch_size, "device": device.type,
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "steps": args.steps, "warmup": args.warmup,
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    with PeakMemory(device) as mem:
        model = build_system(args.model_version, mode, device, args.compile)
        if "train" not in args.skip:
            batch = synthetic_batch(args.model_version, args.batch_size, args.img_height,
                                    args.img_width, device, seed=args.seed)
            times = bench_train_step(model, batch, precision, device, args.steps, args.warmup)
            record["_train_times"] = times
        if "infer" not in args.skip:
            times, compile_s = bench_inference(
                model, args.batch_size, args.img_height, args.img_width, precision, device,
                args.steps, args.warmup, mode, args.compile)
            record["_infer_times"] = times
            if compile_s is not None:
                record["infer_compile_s"] = compile_s
        del model
    record["peak_mem_mb"] = mem.mb
    record["peak_mem_kind"] = mem.kind
    return record


def run_isolated(args: argparse.Namespace, mode: str, precision: str) -> dict[str, Any]:
    """:func:`run_config` in a fresh process (this script again, with the settings as JSON):
    its peak memory is its own, and the allocator setting of a fast run cannot leak into
    the plain reference."""
    settings = json.dumps({**vars(args), "_mode": mode, "_precision": precision})
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_run", settings],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark run {mode}/{precision} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_data(args: argparse.Namespace) -> list[dict[str, Any]]:
    root = ensure_dataset(args.dataset_dir, args.img_height, args.img_width)
    records = []
    for workers in args.workers:
        rate = bench_data(root, args.model_version, args.img_height, args.img_width,
                          args.batch_size, workers, args.steps, args.warmup, args.cache_frames)
        records.append({"version": args.model_version, "kind": "data", "workers": workers,
                        "cache_frames": args.cache_frames, "height": args.img_height,
                        "width": args.img_width, "batch_size": args.batch_size,
                        "data_samples_s": rate, "torch": torch.__version__})
    return records


def planned_runs(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.compare:
        cuda = torch.device(args.device).type == "cuda"
        return list(COMPARE_RUNS_CUDA if cuda else COMPARE_RUNS)
    modes = MODES[::-1] if args.mode == "both" else (args.mode,)  # plain first: reference
    return [(mode, args.precision) for mode in modes]


# ---------------------------------------------------------------------------- roofline
# A ResNet-like 3×3 convolution, big enough for oneDNN/cuDNN to run at their best: how many
# multiply-accumulates per second this device's convolutions reach in a precision.
PEAK_CONV = {"batch": 16, "channels": 128, "height": 64, "width": 80}
NETWORKS = ("depth_net", "pose_net", "rectify_net")


def conv_macs(model: torch.nn.Module, fn: Callable[[], Any]) -> dict[str, int]:
    """Multiply-accumulates of the Conv2d forwards that ``fn()`` runs, per network of
    ``model`` (``depth_net``, ``pose_net``, V2's ``rectify_net``): for each call,
    output elements × (input channels / groups) × kernel area."""
    counts: dict[str, int] = {}
    hooks = []
    for name in NETWORKS:
        net = getattr(model, name, None)
        if net is None:
            continue
        counts[name] = 0
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                def hook(mod: torch.nn.Conv2d, _inp: Any, out: torch.Tensor,
                         name: str = name) -> None:
                    kh, kw = mod.kernel_size
                    counts[name] += out.numel() * (mod.in_channels // mod.groups) * kh * kw
                hooks.append(module.register_forward_hook(hook))
    try:
        fn()
    finally:
        for h in hooks:
            h.remove()
    return counts


def conv_peak_gmac_s(precision: str, device: torch.device, steps: int = 5) -> float:
    """GMAC/s of :data:`PEAK_CONV` in ``precision``'s dtype (best of ``steps`` calls)."""
    dtype = precision_dtype(precision, device)
    c = PEAK_CONV["channels"]
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(PEAK_CONV["batch"], c, PEAK_CONV["height"], PEAK_CONV["width"],
                    device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    macs = x.numel() * c * 9
    with torch.inference_mode():
        times = time_calls(lambda: conv(x), steps, 2, device)
    return macs / min(times) / 1e9


def step_bound_s(train_gmac: dict[str, float], peaks: dict[str, float], precision: str
                 ) -> float:
    """Least seconds a training step's convolutions take at the peak rates: DepthNet's at
    ``precision``'s, PoseNet's and ARN's at fp32's, since they run in fp32 under mixed
    precision (``SCDepthV1.pose_precision``). ``train_gmac``: GMAC per network, forward
    and backward."""
    return sum(gmac / peaks[precision if name == "depth_net" else "32"]
               for name, gmac in train_gmac.items())


def roofline(args: argparse.Namespace) -> dict[str, Any]:
    """The convolution work of a step and of an inference call, and the least time this
    device needs for it in each precision of ``--compare`` (a lower bound: everything else
    in a step is left out)."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = build_system(args.model_version, "fast", device)
    batch = synthetic_batch(args.model_version, args.batch_size, args.img_height,
                            args.img_width, device, seed=args.seed)
    with torch.no_grad():
        forward = conv_macs(model, lambda: model.loss_terms(batch))
    model.eval()
    img = torch.randn(args.batch_size, 3, args.img_height, args.img_width, device=device)
    with torch.inference_mode():
        infer = conv_macs(model, lambda: model(img))["depth_net"]
    # A convolution's backward is two products of its forward's size (the input and the
    # weight gradients), so a step costs about 3× its forward.
    train_gmac = {name: 3 * macs / 1e9 for name, macs in forward.items()}
    plan = COMPARE_RUNS_CUDA if device.type == "cuda" else COMPARE_RUNS
    peaks = {p: conv_peak_gmac_s(p, device) for p in dict.fromkeys(p for _, p in plan)}
    infer_gmac_img = infer / 1e9 / args.batch_size
    return {
        "kind": "roofline", "version": args.model_version, "height": args.img_height,
        "width": args.img_width, "batch_size": args.batch_size, "device": device.type,
        "train_gmac": train_gmac, "infer_gmac_per_img": infer_gmac_img,
        "peak_gmac_s": peaks,
        "train_bound_s": {p: step_bound_s(train_gmac, peaks, p) for p in peaks},
        "infer_bound_img_s": {p: peaks[p] / infer_gmac_img for p in peaks},
    }


# ----------------------------------------------------------------------------- output
def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """The runs as a table, with speed-ups relative to the first run."""
    runs = [r for r in records if r.get("kind") not in ("data", "roofline")]
    lines = []
    if runs:
        ref = runs[0]
        lines.append(f"{'version':7} {'mode':6} {'precision':10} {'size':9} {'B':>2} "
                     f"{'step s':>8} {'x step':>6} {'infer img/s':>11} {'x infer':>7} "
                     f"{'peak MB':>8}")
        for r in runs:
            step_x = (ref["train_step_s"] / r["train_step_s"]
                      if "train_step_s" in r and "train_step_s" in ref else None)
            inf_x = (r["infer_img_s"] / ref["infer_img_s"]
                     if "infer_img_s" in r and "infer_img_s" in ref else None)
            mode = r["mode"] + ("+c" if r["compile"] else "")
            lines.append(f"{r['version']:7} {mode:6} {r['precision']:10} "
                         f"{r['height']}x{r['width']:<5} {r['batch_size']:>2} "
                         f"{_fmt(r.get('train_step_s'), '8.3f')} {_fmt(step_x, '6.2f')} "
                         f"{_fmt(r.get('infer_img_s'), '11.1f')} {_fmt(inf_x, '7.2f')} "
                         f"{r['peak_mem_mb']:8.0f}")
        lines += [f"{r['version']} {r['mode']} {r['precision']}: the compiled inference "
                  f"network's first call (compilation) took {r['infer_compile_s']:.0f} s"
                  for r in runs if r.get("infer_compile_s") is not None]
        lines.append(f"({ref['device']}: {ref['device_name']}, torch {ref['torch']}, "
                     f"{ref['threads']} threads, median of {ref['rounds']}x{ref['steps']} steps, "
                     f"load {_fmt(ref['load_avg_1min'], '.1f')}; speed-ups vs the first row; "
                     f"memory: {ref['peak_mem_kind']})")
    for r in records:
        if r.get("kind") == "roofline":
            lines.append(format_roofline(r, runs))
        if r.get("kind") == "data":
            lines.append(f"data {r['version']} {r['height']}x{r['width']} B={r['batch_size']} "
                         f"workers={r['workers']} cache={r['cache_frames']}: "
                         f"{r['data_samples_s']:.1f} samples/s")
    return "\n".join(lines)


def format_roofline(r: dict[str, Any], runs: Sequence[dict[str, Any]]) -> str:
    """The roofline record in words; with runs, the speed-up over the first run that each
    precision's bound leaves room for."""
    nets = ", ".join(f"{name} {gmac:.0f}" for name, gmac in r["train_gmac"].items())
    peaks = ", ".join(f"{p} {v:.0f}" for p, v in r["peak_gmac_s"].items())
    lines = [f"roofline: a step's convolutions are {sum(r['train_gmac'].values()):.0f} GMAC "
             f"({nets}; forward + backward), an image's inference {r['infer_gmac_per_img']:.2f}"
             f" GMAC; peak 3x3-convolution GMAC/s here: {peaks}"]
    ref = runs[0] if runs else {}
    for p, bound in r["train_bound_s"].items():
        line = (f"  {p}: step >= {bound:.3f} s, inference <= "
                f"{r['infer_bound_img_s'][p]:.1f} img/s")
        if "train_step_s" in ref:
            line += f"; at most {ref['train_step_s'] / bound:.2f}x the first row's step"
        if "infer_img_s" in ref:
            line += f", {r['infer_bound_img_s'][p] / ref['infer_img_s']:.2f}x its inference"
        lines.append(line)
    return "\n".join(lines)


def merge_rounds(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One record from the rounds of one configuration: medians over all their steps."""
    record = {k: v for k, v in rounds[0].items() if not k.startswith("_")}
    record["rounds"] = len(rounds)
    record["peak_mem_mb"] = max(r["peak_mem_mb"] for r in rounds)
    record["load_avg_1min"] = max(r["load_avg_1min"] or 0.0 for r in rounds)
    if "_train_times" in rounds[0]:
        times = [t for r in rounds for t in r["_train_times"]]
        record["train_step_s"] = statistics.median(times)
        record["train_step_min_s"] = min(times)
        record["train_samples_s"] = record["batch_size"] / record["train_step_s"]
    if "_infer_times" in rounds[0]:
        times = [t for r in rounds for t in r["_infer_times"]]
        record["infer_batch_s"] = statistics.median(times)
        record["infer_img_s"] = record["batch_size"] / record["infer_batch_s"]
    return record


# --------------------------------------------------------------------------- time to accuracy
# path -> (precision, train.py flags): the same three paths as --compare
TTA_PATHS = {
    "plain-fp32": ("32", ["--no_batched_forwards", "--no_channels_last", "--no_fused_ssim",
                          "--no_malloc_tuning"]),
    "fast-fp32": ("32", []),
    "fast-bf16": ("bf16-mixed", []),
}


def _tool(name: str, argv: Sequence[Any], log: Path) -> None:
    """Run a tool of this repository in a fresh process, its output into ``log``."""
    with open(log, "w") as fh:
        code = subprocess.call([sys.executable, str(_ROOT / f"{name}.py"), *map(str, argv)],
                               stdout=fh, stderr=subprocess.STDOUT, cwd=_ROOT)
    if code:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{name}.py failed ({code}): " + " | ".join(tail))


def time_to_accuracy(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One record per path and seed (the module docstring, --time_to_accuracy)."""
    from datasets.synthetic import generate_dataset
    from utils.checkpoint import load_checkpoint

    data = Path(args.dataset_dir) if args.dataset_dir else (
        Path(tempfile.gettempdir()) / "sc_depth_bench_default_set")
    if not (data / "training" / "train.txt").is_file():
        generate_dataset(data, seed=0)  # the built-in default set, as the demo uses
    config = _ROOT / "configs" / args.model_version / "synthetic.txt"
    accelerator = "cpu" if args.device == "cpu" else "gpu"
    records = []
    with tempfile.TemporaryDirectory(prefix="sc_depth_tta_") as tmp:
        root = Path(tmp)
        for seed in args.seeds:
            for path, (precision, flags) in TTA_PATHS.items():
                name = f"{path}_s{seed}"
                _tool("train", ["--config", config, "--dataset_dir", data, "--seed", seed,
                                "--precision", precision, "--accelerator", accelerator,
                                "--max_minutes", args.time_to_accuracy, "--num_epochs",
                                100000, "--log_dir", root, "--exp_name", name, *flags],
                      root / f"{name}.train.log")
                ckpt = root / name / "version_0" / "last.ckpt"
                steps = int(load_checkpoint(ckpt)["global_step"])
                _tool("test", ["--dataset_dir", data, "--ckpt_path", ckpt, "--device",
                               args.device, "--output_json", root / f"{name}.json"],
                      root / f"{name}.test.log")
                metrics = json.loads((root / f"{name}.json").read_text())
                record = {"kind": "time_to_accuracy", "version": args.model_version,
                          "path": path, "seed": seed, "minutes": args.time_to_accuracy,
                          "steps": steps, "s_per_step": args.time_to_accuracy * 60 / steps,
                          "device": args.device, "torch": torch.__version__,
                          "abs_rel": {k: (metrics[k]["abs_rel"] if metrics.get(k) else None)
                                      for k in ("full", "dynamic", "static")}}
                records.append(record)
                if args.json:
                    print(json.dumps(record), flush=True)
    return records


def _mean_std(values: Sequence[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    return (f"{statistics.fmean(vals):.4f} ± {statistics.pstdev(vals):.4f}" if len(vals) > 1
            else f"{vals[0]:.4f}")


def format_time_to_accuracy(records: Sequence[dict[str, Any]]) -> str:
    """Per path: steps and s/step within the budget, AbsRel mean ± std over the seeds."""
    first = records[0]
    lines = [f"time to accuracy: {first['version']}, {first['minutes']:g} min per run on "
             f"{first['device']}, seeds {sorted({r['seed'] for r in records})}",
             f"{'path':11} {'steps':>6} {'s/step':>7} {'AbsRel all':>17} "
             f"{'dynamic':>17} {'static':>17}"]
    for path in TTA_PATHS:
        runs = [r for r in records if r["path"] == path]
        lines.append(f"{path:11} {statistics.fmean(r['steps'] for r in runs):6.0f} "
                     f"{statistics.fmean(r['s_per_step'] for r in runs):7.3f} "
                     + " ".join(f"{_mean_std([r['abs_rel'][k] for r in runs]):>17}"
                                for k in ("full", "dynamic", "static")))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """All runs the arguments ask for; each record is printed as it completes with --json.

    With ``--rounds R`` the configurations are run in turn R times (plain, fast, bf16,
    plain, …) and each figure is the median over all rounds' steps: on a shared machine
    the load then weighs on every configuration alike.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = planned_runs(args)
    rounds: list[list[dict[str, Any]]] = [[] for _ in plan]
    runner = run_config if args.in_process else run_isolated
    for _ in range(args.rounds):
        for i, (mode, precision) in enumerate(plan):
            rounds[i].append(runner(args, mode, precision))
            gc.collect()
    records = []
    for per_config in rounds:
        records.append(merge_rounds(per_config))
        if args.json:
            print(json.dumps(records[-1]), flush=True)
    if args.roofline:
        records.append(roofline(args))
        if args.json:
            print(json.dumps(records[-1]), flush=True)
    if args.data:
        for record in run_data(args):
            records.append(record)
            if args.json:
                print(json.dumps(record), flush=True)
    return records


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args._run is not None:  # one configuration for run_isolated: its record as JSON
        settings = json.loads(args._run)
        mode, precision = settings.pop("_mode"), settings.pop("_precision")
        print(json.dumps(run_config(argparse.Namespace(**settings), mode, precision)))
        return 0
    if args.time_to_accuracy is not None:
        if args.time_to_accuracy <= 0:
            get_parser().error("--time_to_accuracy must be positive")
        records = time_to_accuracy(args)
        if not args.json:
            print(format_time_to_accuracy(records))
        return 0
    records = run(args)
    if not args.json:
        print(format_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
