"""utils.io.write_atomic and utils.cli: complete files, one-line user errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils.cli import OneLineParser, UsageError, report_user_errors
from utils.io import write_atomic


def test_write_atomic_replaces_text_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "frame_index.txt"
    write_atomic(target, "0\n3\n")
    assert target.read_text() == "0\n3\n"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["frame_index.txt"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        write_atomic(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_report_user_errors_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def bad() -> int:
        raise UsageError("--foo: nope")

    assert report_user_errors("tool.py", bad) == 2
    assert capsys.readouterr().err == "tool.py: error: --foo: nope\n"
    assert report_user_errors("tool.py", lambda: None) == 0


def test_one_line_parser_raises_usage_error() -> None:
    parser = OneLineParser(prog="x")
    parser.add_argument("--n", type=int, help="a number")
    with pytest.raises(UsageError, match="--n"):
        parser.parse_args(["--n", "abc"])
