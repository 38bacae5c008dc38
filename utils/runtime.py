"""Where and in which precision the networks run: one rule for every tool and the systems.

Imports no model, so a tool picks its device before loading anything heavy.
"""

from __future__ import annotations

import contextlib

import torch

from options import PRECISIONS
from utils.errors import UsageError

__all__ = ["PRECISIONS", "autocast_context", "check_precision", "native_cpu_bf16",
           "precision_dtype", "precision_note", "resolve_device"]


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype of a precision name: "32" fp32, "bf16-mixed" bf16 (CPU or GPU),
    "16-mixed" fp16 (GPU only). Raises ValueError for 16-mixed off CUDA (CPU fp16
    convolutions are emulated and slow) and for unknown names."""
    if precision == "32":
        return torch.float32
    if precision == "bf16-mixed":
        return torch.bfloat16
    if precision == "16-mixed":
        if device.type != "cuda":
            raise ValueError("16-mixed needs a CUDA device (use bf16-mixed on the CPU)")
        return torch.float16
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def check_precision(precision: str, device: torch.device, flag: str = "--infer_precision"
                    ) -> None:
    """:func:`precision_dtype`'s rule as a one-line :class:`UsageError` naming ``flag``."""
    try:
        precision_dtype(precision, device)
    except ValueError as err:
        raise UsageError(f"{flag} {err}") from None


def native_cpu_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX-512-bf16 or AMX)? Without either, oneDNN
    emulates bf16 convolutions in software, far slower than fp32 (docs/performance.md)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def precision_note(precision: str, device: torch.device, flag: str = "--infer_precision"
                   ) -> str | None:
    """A one-line note when ``precision`` will be slow on ``device``: bf16 on a CPU that
    only emulates it (the run still works, so this is no error); None otherwise."""
    if precision == "bf16-mixed" and device.type == "cpu" and not native_cpu_bf16():
        return (f"note: {flag} bf16-mixed: this CPU has no native bf16 (AVX-512-bf16 or "
                "AMX), so bf16 is emulated and several times slower than 32 here")
    return None


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Lightning's mixed precision for our own training-step loops (the benchmark): autocast
    to :func:`precision_dtype`'s dtype, nothing for "32". The depth head and the pose
    average stay fp32 inside the networks."""
    dtype = precision_dtype(precision, device)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is the first GPU when there is one, else the CPU. A device that this
    machine does not have (``cuda`` without a GPU, a malformed name) is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UsageError(f"--device {name!r}: {err}".splitlines()[0]) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: this machine has "
                             f"{torch.cuda.device_count()} GPU(s)")
    return device
