"""Run a trained DepthNet on a folder of images (SPEC §6).

    python inference.py --config configs/v1/nyu.txt --input_dir imgs/ --output_dir out/ \\
        --ckpt_path K --save-vis --save-depth

`--save-vis` writes <name>.jpg colour maps, `--save-depth` <name>.npy depth at network
resolution (as the public code does).
"""

from __future__ import annotations

from pathlib import Path

from config import parse_options
from utils.cli import UsageError, run_main


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, ("data", "model", "runtime", "inference"),
                         description=__doc__.split("\n")[0])
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if not opts.input_dir:
        raise UsageError("--input_dir is required")
    if not opts.output_dir:
        raise UsageError("--output_dir is required")
    if not (opts.save_vis or opts.save_depth):
        raise UsageError("nothing to write: pass --save-vis and/or --save-depth")
    input_dir = Path(opts.input_dir)
    if not input_dir.is_dir():
        raise UsageError(f"--input_dir: not a folder: {input_dir}")

    import cv2
    import numpy as np
    import torch
    from tqdm import tqdm

    from datasets.depth_io import DatasetError, list_images, read_image
    from datasets.transforms import Resize, ToTensor
    from models.sc_depth import load_from_checkpoint, resolve_device
    from utils.visualization import colorize_depth

    paths = list_images(input_dir)
    if not paths:
        raise UsageError(f"--input_dir: no .jpg/.png images in {input_dir}")
    device = resolve_device(opts.device)
    model = load_from_checkpoint(opts.ckpt_path, device)
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resize, to_tensor = Resize(opts.img_height, opts.img_width), ToTensor()
    identity_k = np.eye(3, dtype=np.float32)

    skipped: list[str] = []
    batch: list[tuple[Path, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        with torch.inference_mode():
            depth = model(torch.stack([t for _, t in batch]).to(device)).float().cpu()
        for (path, _), d in zip(batch, depth):
            d = d[0].numpy()
            if opts.save_depth:
                np.save(out / f"{path.stem}.npy", d)
            if opts.save_vis:
                cv2.imwrite(str(out / f"{path.stem}.jpg"),
                            cv2.cvtColor(colorize_depth(d), cv2.COLOR_RGB2BGR))
        batch.clear()

    for path in tqdm(paths, desc="inference", unit="img"):
        try:
            img = read_image(path)
        except DatasetError as err:
            skipped.append(f"{path.name}: {err}")
            continue
        imgs, _, _ = resize([img], identity_k, [])
        tensors, _, _ = to_tensor(imgs, identity_k, [])
        batch.append((path, tensors[0]))
        if len(batch) == opts.infer_batch_size:
            flush()
    flush()
    print(f"wrote {len(paths) - len(skipped)} results to {out}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable input(s):")
        for line in skipped:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    run_main(main, "inference.py")
