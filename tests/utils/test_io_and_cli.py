"""utils.io.write_atomic and utils.cli: complete files, one-line user errors."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from helpers import ROOT, run_tool

from utils.cli import OneLineParser, report_user_errors
from utils.errors import UsageError
from utils.io import write_atomic


def test_write_atomic_replaces_text_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "frame_index.txt"
    write_atomic(target, "0\n3\n")
    assert target.read_text() == "0\n3\n"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["frame_index.txt"]


def test_write_atomic_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert stat.S_IMODE(write_atomic(tmp_path / "a.txt", "x").stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(write_atomic(tmp_path / "b.txt", "x").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_inference_outputs_are_0644_under_umask_022(ckpt: Path, tmp_path: Path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    (images / "a.jpg").write_bytes((ROOT / "demo" / "input" / "00.jpg").read_bytes())
    old = os.umask(0o022)
    try:
        assert run_tool("inference", [
            "--input_dir", str(images), "--output_dir", str(tmp_path / "out"), "--ckpt_path",
            str(ckpt), "--device", "cpu", "--img_height", "64", "--img_width", "80",
            "--save_vis", "--save_depth", "--save_png16", "--save_ply", "--fx", "50",
            "--fy", "50", "--cx", "40", "--cy", "30"]) == 0
    finally:
        os.umask(old)
    written = sorted((tmp_path / "out").iterdir())
    assert [p.suffix for p in written] == [".jpg", ".npy", ".ply", ".png"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o644}


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


def test_staged_folder_replaces_in_full_or_not_at_all(tmp_path: Path) -> None:
    from utils.io import staged_folder

    out = tmp_path / "data"
    with staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(FileExistsError, match="not empty"), staged_folder(out):
        pass
    with pytest.raises(RuntimeError), staged_folder(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("failed half-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary left
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # the old folder kept
    with staged_folder(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]


TOOLS = sorted([p.stem for p in ROOT.glob("*.py") if p.stem not in ("options", "config",
                                                                      "hubconf")]
               + [p.stem for p in (ROOT / "scripts").glob("*.py")])


@pytest.mark.parametrize("name", TOOLS)
def test_help_stands_on_its_own(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from helpers import cli

    with pytest.raises(SystemExit) as exit_:
        cli(name).main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "usage:" in text
    for noise in ("(default: None)", "(default: [])", "SPEC", "issue "):
        assert noise not in text
    assert not re.search(r"\(default[^()]*\)\s*\(default", text)  # a default said twice
