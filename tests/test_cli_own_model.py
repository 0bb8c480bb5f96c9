"""Your own model on the command line: calibrate an ONNX model into a .fxn file, then use it in every command."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from fxplain.cli import main

sys.path.insert(0, str(Path(__file__).parent / "models"))
from test_fxn_format import tiny_onnx  # the small ONNX graph the format tests build

EXPLICIT = ["--mean", "127.5", "--std", "127.5,127.5,127.5", "--metric", "cosine", "--channels", "RGB",
            "--input-size", "150x150"]


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    path = folder / "tiny.onnx"
    path.write_bytes(tiny_onnx())
    return path


def _threshold(text: str) -> float:
    return float(re.search(r"threshold (-?[0-9.]+)", text).group(1))


def test_calibrate_then_every_command_with_the_fxn_file_and_with_explicit_options(own_model, johns, tmp_path,
                                                                                  capsys):
    a, b = johns[2][0], johns[2][20]
    mine = tmp_path / "mine.fxn"
    code, out, err = _run(capsys, "calibrate", own_model, "johns", "--fmr", "1e-2", "-o", mine, *EXPLICIT[:4])
    assert code == 0, err
    assert "FMR asked 0.01" in out and "genuine pairs 275" in out and "impostor pairs 1210" in out
    assert f"wrote {mine}" in out and mine.exists()
    assert "no decision threshold" not in err  # the model is being calibrated: no warning about it
    threshold = float(re.search(r"threshold ([0-9.]+);", out).group(1))

    code, out, err = _run(capsys, "info", "--model", mine)
    assert code == 0, err
    assert "metric cosine" in out and "calibrated at FMR 0.01 on johns (275 genuine, 1210 impostor" in out

    with_file = _run(capsys, "verify", a, b, "--model", mine)
    explicit = _run(capsys, "verify", a, b, "--model", own_model, "--threshold", repr(threshold), *EXPLICIT)
    for code, out, err in (with_file, explicit):
        assert code == 0, err
        assert "cosine distance" in out and ("SAME person" in out or "DIFFERENT people" in out)
    score = [re.search(r"score (-?[0-9.]+)", out).group(1) for _, out, _ in (with_file, explicit)]
    assert score[0] == score[1]

    for run, model_args in enumerate((["--model", mine],
                                      ["--model", own_model, "--threshold", str(threshold), *EXPLICIT])):
        figure = tmp_path / "e.png"
        code, out, err = _run(capsys, "explain", a, b, "--method", "occlusion", "--quiet", "-o", figure, *model_args)
        assert code == 0, err
        assert "occlusion" in out and figure.read_bytes().startswith(b"\x89PNG")
        report = tmp_path / f"report{run}"   # one store per run: the printed threshold is rounded, another run
        code, out, err = _run(capsys, "evaluate", "johns", "--pairs", "2", "--planted", "1", "--sanity", "1",
                              "--methods", "occlusion", "--steps", "4", "-o", report, *model_args)
        assert code == 0, err
        assert "| occlusion |" in out and (report / "report.md").exists()


def test_a_model_without_threshold_says_so_plainly(own_model, johns, capsys):
    code, out, err = _run(capsys, "info", "--model", own_model)
    assert code == 0, err
    assert "no decision threshold" in out and "metric cosine" in out
    assert "fxplain: warning:" in err and ".py:" not in err  # a plain line, not a line of fxplain's source
    code, out, err = _run(capsys, "verify", johns[2][0], johns[2][1], "--model", own_model)
    assert code == 2 and "no decision threshold" in err and "calibrate" in err
    code, out, err = _run(capsys, "verify", johns[2][0], johns[2][1], "--mean", "0")
    assert code == 2 and "mean: options of ONNX models" in err and "dlib" in err


def test_dlib_info_keeps_its_rule(capsys):
    code, out, err = _run(capsys, "info")
    assert code == 0, err
    assert "Euclidean distance < 0.6" in out
