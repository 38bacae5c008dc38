"""How well an RGB-D tracker follows the camera on predicted depth (docs/tools.md, RGB-D).

    python scripts/measure_rgbd_tracking.py --dataset_dir DATA --ckpt V1=v1.ckpt \
        --ckpt V3=v3.ckpt [--scenes val_000_handheld ...] [--output_json rgbd.json]

For every scene (default: the validation scenes of ``DATA``) and checkpoint it exports the
scene as a TUM RGB-D sequence at one scale fixed on the first frame's GT depth
(export_rgbd.py) and tracks it with Open3D's frame-to-frame RGB-D odometry
(scripts/rgbd_odometry.py), beside the same tracker on GT depth and on a constant depth.
Odometry assumes a static world: measure on scenes rendered with
``generate_synthetic_dataset.py --static`` (a moving object pulls even GT-depth tracking off).
It prints, per scene, the ATE after similarity alignment of every depth, the predicted-depth
ATE in multiples of the GT-depth ATE (the goal is 2× or less) and the scale drift over the
video, and writes all of it to ``--output_json``. Needs Open3D (``pip install open3d``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import rgbd_odometry  # noqa: E402

import export_rgbd  # noqa: E402
from datasets.formats import scene_dirs  # noqa: E402
from tools.rgbd import ODOMETRY_TERMS, open3d_or_none  # noqa: E402
from utils.cli import run_main  # noqa: E402
from utils.errors import UsageError  # noqa: E402
from utils.io import write_atomic  # noqa: E402

PROG = "measure_rgbd_tracking.py"


def track(ckpt: Path, scene: Path, out: Path, baselines: bool, depth_factor: float,
          device: str, term: str) -> dict[str, Any]:
    """Export ``scene`` with ``ckpt`` into ``out`` and track it; odometry.json plus the
    export's scale and drift."""
    code = export_rgbd.main(["--ckpt_path", str(ckpt), "--input_dir", str(scene),
                             "--output_dir", str(out), "--device", device,
                             "--depth_factor", str(depth_factor)])
    if code:
        raise UsageError(f"export_rgbd.py failed on {scene} with {ckpt}")
    code = rgbd_odometry.main(["--rgbd_dir", str(out), "--term", term]
                              + (["--baselines"] if baselines else []))
    if code:
        raise UsageError(f"rgbd_odometry.py failed on {out}")
    result = json.loads((out / "odometry.json").read_text())
    info = json.loads((out / "export.json").read_text())
    result["scale_drift"] = info["scale_consistency"]["drift"]
    result["beyond_range_share"] = info["beyond_range_share"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--dataset_dir", type=Path, required=True,
                        help="a dataset with scene folders (cam.txt, poses.txt, depth/)")
    parser.add_argument("--ckpt", action="append", required=True, metavar="NAME=PATH",
                        help="a checkpoint to measure, named (repeat for several)")
    parser.add_argument("--scenes", nargs="+", default=None,
                        help="scene folders under training/ (default: training/val.txt)")
    parser.add_argument("--depth_factor", type=float, default=1000.0,
                        help="16-bit depth per metre of the exports (1000 reaches 65 m: "
                             "street scenes fit)")
    parser.add_argument("--term", choices=ODOMETRY_TERMS, default="hybrid",
                        help="Open3D's odometry term (scripts/rgbd_odometry.py --term)")
    parser.add_argument("--device", default="cpu", help="torch device of the predictions")
    parser.add_argument("--work_dir", type=Path, default=None,
                        help="keep the exported sequences here (default: a temporary folder)")
    parser.add_argument("--output_json", type=Path, default=None,
                        help="write every figure here")
    args = parser.parse_args(argv)
    if open3d_or_none() is None:
        raise UsageError("this measurement needs Open3D: pip install open3d")
    ckpts = {}
    for item in args.ckpt:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise UsageError(f"--ckpt wants NAME=PATH to a checkpoint file, got {item!r}")
        ckpts[name] = Path(path)
    training = args.dataset_dir / "training"
    scenes = ([training / s for s in args.scenes] if args.scenes
              else scene_dirs(training, "val.txt"))
    for scene in scenes:
        if not (scene / "poses.txt").is_file() or not (scene / "depth").is_dir():
            raise UsageError(f"{scene} needs poses.txt and depth/ (a dataset scene)")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rgbd_tracking_"))
    results: dict[str, dict[str, Any]] = {}
    try:
        for scene in scenes:
            row: dict[str, Any] = {}
            for i, (name, ckpt) in enumerate(ckpts.items()):
                out = work / scene.name / name
                if out.exists():
                    shutil.rmtree(out)
                r = track(ckpt, scene, out, i == 0, args.depth_factor, args.device,
                          args.term)
                if i == 0:  # the baselines do not depend on the checkpoint
                    row["gt_path_m"] = r["gt_path_m"]
                    row["gt_depth"] = r["gt_depth"]
                    row["constant_depth"] = r["constant_depth"]
                row[name] = {**r["predicted"], "scale_drift": r["scale_drift"],
                             "beyond_range_share": r["beyond_range_share"]}
            results[scene.name] = row
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    names = ["gt_depth", "constant_depth", *ckpts]
    print("\nATE after similarity alignment, m (× GT-depth ATE); scale drift of the "
          "predicted depth")
    print(f"{'scene':22} {'path m':>6} " + " ".join(f"{n:>18}" for n in names))
    for scene, row in results.items():
        gt = row["gt_depth"]["ate_sim3"]
        cells = []
        for n in names:
            ate = row[n]["ate_sim3"]
            cell = f"{ate:.3f} ({ate / gt:.1f}×)" if n != "gt_depth" else f"{ate:.3f}"
            if n in ckpts:
                cell += f" {100 * row[n]['scale_drift']:.0f}%"
            cells.append(f"{cell:>18}")
        print(f"{scene:22} {row['gt_path_m']:6.2f} " + " ".join(cells))
    if args.output_json:
        write_atomic(args.output_json, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main, PROG)
