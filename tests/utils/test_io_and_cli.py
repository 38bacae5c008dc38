"""utils.io.write_atomic and utils.cli: complete files, one-line user errors."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from helpers import ROOT, run_tool

from utils.cli import OneLineParser, one_line, report_user_errors
from utils.errors import UsageError
from utils.io import (
    OutputError,
    check_output_dir,
    check_output_file,
    remove_stale_temporaries,
    write_atomic,
)


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
    out = capsys.readouterr().out
    text = " ".join(out.split())
    assert "usage:" in text
    description = out.split("\n\n")[1]  # the block between the usage and the options
    assert description.rstrip().endswith((".", "?", ")")), description  # a sentence, not cut
    for noise in ("(default: None)", "(default: [])", "SPEC", "issue "):
        assert noise not in text
    assert not re.search(r"\(default[^()]*\)\s*\(default", text)  # a default said twice


# ---- output places, stale temporaries (docs/reliability.md) -------------------------------
def test_check_output_dir_and_file(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # creates nothing
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UsageError, match=r"^--out .*plain is a file"):
        check_output_dir(tmp_path / "plain", "--out")
    with pytest.raises(UsageError, match="is under the file"):
        check_output_dir(tmp_path / "plain" / "sub", "--out")
    with pytest.raises(UsageError, match="is a folder, not a file name"):
        check_output_file(tmp_path, "--output_json")


def test_write_atomic_failure_is_one_line_and_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("utils.io.os.replace", full)
    with pytest.raises(OutputError, match=r"^cannot write .*a.txt: No space left on device$"):
        write_atomic(tmp_path / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_temporaries_only_ours(tmp_path: Path) -> None:
    names = [".a.npy.x1y2z3w4.tmp", ".last.ckpt.tmp", ".frame_index.txt.ab12cd34.tmp",
             ".notes", "visible.tmp"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path, ["frame_index.txt"])
    assert [p.name for p in removed] == [".frame_index.txt.ab12cd34.tmp"]
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".a.npy.x1y2z3w4.tmp", ".last.ckpt.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes", "visible.tmp"]


def test_one_line_of_an_error_from_a_loader_worker() -> None:
    from datasets.formats import DatasetError

    wrapped = DatasetError("Caught DatasetError in DataLoader worker process 0.\n"
                           "Original Traceback (most recent call last):\n  File ...\n"
                           "datasets.formats.DatasetError: 10 training samples in a row")
    assert one_line(wrapped) == "10 training samples in a row"
    assert one_line(UsageError("first\nsecond")) == "first"
