"""Tests of utils.allocator (in a child process: the setting is process-wide)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow  # a subprocess
def test_keep_freed_memory_tunes_glibc_and_memory_still_works() -> None:
    code = ("from utils.allocator import keep_freed_memory\n"
            "ok = keep_freed_memory()\n"
            "import torch\n"
            "for _ in range(3):\n"
            "    x = torch.ones(64, 1024, 1024)\n"  # 256 MB: an mmap-ed block by default
            "    assert float(x.sum()) == 64 * 1024 * 1024\n"
            "    del x\n"
            "print(ok)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == ("True" if sys.platform.startswith("linux") else "False")
