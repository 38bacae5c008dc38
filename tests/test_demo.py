"""scripts/demo.py: the precision it trains in when none is given."""

from __future__ import annotations

import pytest
import torch
from helpers import cli

demo = cli("demo")


@pytest.mark.parametrize("native_bf16", [True, False])
def test_cpu_precision_is_bf16_only_where_native(monkeypatch: pytest.MonkeyPatch,
                                                 native_bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native_bf16)
    assert demo.default_precision() == ("bf16-mixed" if native_bf16 else "32")


def test_gpu_precision_is_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    # the demo's small steps are launch-bound on a GPU: bf16 saves no time, costs accuracy
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert demo.default_precision() == "32"
