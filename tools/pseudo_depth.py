"""Relative depth from a torch.hub network, for the V3 priors (generate_pseudo_depth.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from utils.errors import UsageError

__all__ = ["HubPredictor", "hub_input_size", "load_hub_model", "to_depth"]


def hub_input_size(height: int, width: int, short_side: int, multiple: int) -> tuple[int, int]:
    """Input size with the aspect ratio of ``height × width``, shorter side ≈ ``short_side``,
    both sides rounded to a multiple of ``multiple`` (at least one multiple)."""
    scale = short_side / min(height, width)

    def fit(x: float) -> int:
        return max(multiple, int(x / multiple + 0.5) * multiple)

    return fit(height * scale), fit(width * scale)


def load_hub_model(opts: argparse.Namespace, device: Any) -> Any:
    """The torch.hub model of ``--hub_dir`` (source='local') or ``--hub_repo``, in eval mode."""
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


class HubPredictor:
    """A torch.hub relative-depth model as a ``tools.predictor.BatchPredictor``: each image
    is resized (bilinear, antialiased) to its input size, normalised with the hub's
    mean/std, predicted, and its output resized back to the image's size."""

    def __init__(self, opts: argparse.Namespace, device: Any,
                 fixed: tuple[int, int] | None) -> None:
        if opts.hub_input_size <= 0 or opts.hub_multiple_of <= 0:
            raise UsageError("--hub_input_size and --hub_multiple_of must be positive")
        mean, std = _channels(opts.hub_mean, "hub_mean"), _channels(opts.hub_std, "hub_std")
        if min(std) <= 0:
            raise UsageError("--hub_std must be positive")
        self.opts, self.device, self.fixed = opts, device, fixed
        self.model = load_hub_model(opts, device)
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = []
        with torch.inference_mode():
            for img in images:  # frames may differ in size: one network call each
                H, W = img.shape[:2]
                size = self.fixed or hub_input_size(H, W, self.opts.hub_input_size,
                                                    self.opts.hub_multiple_of)
                x = torch.from_numpy(img).to(self.device).permute(2, 0, 1)[None] / 255.0
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                  antialias=True)
                out = self.model((x - self.mean) / self.std)
                if not isinstance(out, torch.Tensor) or not (
                        out.dim() == 3 or (out.dim() == 4 and out.shape[1] == 1)):
                    shape = (tuple(out.shape) if isinstance(out, torch.Tensor)
                             else type(out).__name__)
                    raise UsageError(f"hub model {self.opts.hub_model!r} returned {shape}; "
                                     "expected a tensor [B,H,W] or [B,1,H,W]")
                out = out.reshape(1, 1, *out.shape[-2:]).float()
                # relative maps are resolution-free: bring them back to the frame's pixels
                out = F.interpolate(out, size=(H, W), mode="bilinear", align_corners=False)
                outputs.append(out[0, 0].cpu().numpy())
        return outputs


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
