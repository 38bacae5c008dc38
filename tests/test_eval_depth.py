"""eval_depth.py end to end on tiny generated files (bonn: 16-bit PNG millimetres)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import cli

eval_depth = cli("eval_depth")


H, W = 4, 5


def _row(out: str, split: str) -> dict[str, float]:
    """The metrics of one table row, by the header's column names."""
    lines = out.splitlines()
    header = next(line for line in lines if "abs_rel" in line).split()
    row = next(line for line in lines if line.split() and line.split()[0] == split).split()
    return dict(zip(header, map(float, row[1:])))


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    """Image a: GT 2 m, prediction 1 except one pixel 3 (scaled x2: 2 and 6).
    Image b: GT 1 m, prediction 0.5 (scaled x2: perfect).
    Extra files: prediction c without GT, GT d without prediction."""
    gt_dir, pred_dir, seg_dir = tmp_path / "gt", tmp_path / "pred", tmp_path / "seg"
    for d in (gt_dir, pred_dir, seg_dir):
        d.mkdir()
    for name, metres in (("a", 2.0), ("b", 1.0), ("d", 3.0)):
        mm = np.full((H, W), metres * 1000, dtype=np.uint16)
        assert cv2.imwrite(str(gt_dir / f"{name}.png"), mm)
    pred_a = np.ones((H, W), dtype=np.float32)
    pred_a[1, 2] = 3.0
    np.save(pred_dir / "a.npy", pred_a)                                       # [H,W]
    np.save(pred_dir / "b.npy", np.full((1, H, W), 0.5, dtype=np.float32))   # [1,H,W]
    np.save(pred_dir / "c.npy", np.ones((H, W), dtype=np.float32))
    # seg masks: the wrong pixel of a is red (dynamic); b has no dynamic pixel.
    seg_a = np.zeros((H, W, 3), dtype=np.uint8)
    seg_a[1, 2] = (0, 0, 255)  # BGR for OpenCV: red
    seg_a[3, 4] = (0, 255, 0)  # green: not listed as dynamic
    cv2.imwrite(str(seg_dir / "a.png"), seg_a)
    cv2.imwrite(str(seg_dir / "b.png"), np.zeros((H, W, 3), dtype=np.uint8))
    (seg_dir / "dynamic_colors.txt").write_text("255 0 0\n\n0 0 255\n")
    return {"gt": gt_dir, "pred": pred_dir, "seg": seg_dir, "tmp": tmp_path}


def test_folder_of_predictions(data, capsys):
    rc = eval_depth.main(["--dataset", "bonn", "--pred_depth", str(data["pred"]),
                          "--gt_depth", str(data["gt"])])
    out, err = capsys.readouterr()
    assert rc == 0
    full = _row(out, "full")
    # a: only pixel (1,2) is off: |2 - 6| / 2 = 2 over 20 pixels -> 0.1; b: 0. Mean 0.05.
    assert full["abs_rel"] == pytest.approx(0.05, abs=1e-4)
    # a: rmse sqrt(16/20); b: 0.
    assert full["rmse"] == pytest.approx(np.sqrt(16 / 20) / 2, abs=1e-4)
    assert full["a1"] == pytest.approx((19 / 20 + 1) / 2, abs=1e-4)
    assert "2 images" in out
    assert "dynamic" not in out
    assert "predictions without ground truth: c" in err
    assert "ground-truth files without prediction: d" in err


def test_dynamic_and_static_rows(data, capsys):
    rc = eval_depth.main(["--dataset", "bonn", "--pred_depth", str(data["pred"]),
                          "--gt_depth", str(data["gt"]), "--seg_mask", str(data["seg"])])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert _row(out, "full")["abs_rel"] == pytest.approx(0.05, abs=1e-4)
    # only image a has a dynamic pixel, off by |2 - 6| / 2 = 2
    assert _row(out, "dynamic")["abs_rel"] == pytest.approx(2.0, abs=1e-4)
    assert _row(out, "static")["abs_rel"] == pytest.approx(0.0, abs=1e-4)


def test_stack_of_predictions(data, capsys):
    (data["gt"] / "d.png").unlink()
    stack = np.stack([np.load(data["pred"] / "a.npy"), np.load(data["pred"] / "b.npy")[0]])
    np.save(data["tmp"] / "stack.npy", stack)
    rc = eval_depth.main(["--dataset", "bonn", "--pred_depth", str(data["tmp"] / "stack.npy"),
                          "--gt_depth", str(data["gt"])])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert _row(out, "full")["abs_rel"] == pytest.approx(0.05, abs=1e-4)


def test_stack_count_mismatch_is_a_user_error(data, capsys):
    np.save(data["tmp"] / "stack.npy", np.ones((2, H, W), dtype=np.float32))  # 3 GT files
    rc = eval_depth.main(["--dataset", "bonn", "--pred_depth", str(data["tmp"] / "stack.npy"),
                          "--gt_depth", str(data["gt"])])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "holds 2 maps" in err and len(err.strip().splitlines()) == 1


def test_no_pair_exits_1(data, capsys):
    empty = data["tmp"] / "empty"
    empty.mkdir()
    rc = eval_depth.main(["--dataset", "bonn", "--pred_depth", str(empty),
                          "--gt_depth", str(data["gt"])])
    _, err = capsys.readouterr()
    assert rc == 1
    assert err.strip().splitlines()[-1].startswith("eval_depth.py: error: no prediction pairs")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mars", "--pred_depth", "P", "--gt_depth", "G"], "mars"),
        (["--dataset", "bonn", "--pred_depth", "{pred}", "--gt_depth", "/nonexistent/gt"],
         "/nonexistent/gt"),
        (["--dataset", "bonn", "--pred_depth", "/nonexistent/pred", "--gt_depth", "{gt}"],
         "/nonexistent/pred"),
        (["--dataset", "bonn", "--pred_depth", "{pred}", "--gt_depth", "{gt}",
          "--seg_mask", "/nonexistent/seg"], "/nonexistent/seg"),
        (["--dataset", "bonn", "--pred_depth", "{pred}"], "--gt_depth"),
    ],
)
def test_user_mistakes_are_one_line_exit_2(data, capsys, args, message):
    argv = [a.format(pred=data["pred"], gt=data["gt"]) for a in args]
    rc = eval_depth.main(argv)
    _, err = capsys.readouterr()
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eval_depth.py: error:")
    assert message in lines[0]
    assert "Traceback" not in err


def test_bad_prediction_file_is_named(data, capsys):
    (data["pred"] / "a.npy").write_bytes(b"not numpy")
    rc = eval_depth.main(["--dataset", "bonn", "--pred_depth", str(data["pred"]),
                          "--gt_depth", str(data["gt"])])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "a.npy" in err.strip().splitlines()[-1]


def test_help_on_every_option():
    parser = eval_depth.build_parser()
    for action in parser._actions:
        assert action.help, action.dest
