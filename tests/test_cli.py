"""The command line, run as users run it."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fxplain", *args], capture_output=True, text=True, timeout=300, check=False)


def test_info_prints_versions_isa_and_model_facts():
    out = _run("info")
    assert out.returncode == 0, out.stderr
    assert "fxplain 0.1.0" in out.stdout
    assert "oneDNN 3." in out.stdout and "ISA" in out.stdout
    assert "150x150x3" in out.stdout and "128-d" in out.stdout and "0.6" in out.stdout


def test_demo_explains_a_genuine_and_an_impostor_pair_with_each_method(tmp_path):
    out = _run("demo", "-o", str(tmp_path), "--n-masks", "64")
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert sum(line.startswith("genuine pair") and "SAME person" in line for line in lines) == 3
    assert sum(line.startswith("impostor pair") and "DIFFERENT people" in line for line in lines) == 3
    assert "100.0 % decided correctly" in out.stdout
    for method in ("occlusion", "corrrise", "gradient"):
        for label in ("genuine", "impostor"):
            assert (tmp_path / f"{method}_{label}.png").read_bytes().startswith(b"\x89PNG")


def test_explain_writes_a_figure_and_a_result(johns, tmp_path):
    import fxplain

    paths = johns[2]
    figure, saved = tmp_path / "out.png", tmp_path / "r.npz"
    out = _run("explain", str(paths[0]), str(paths[20]), "--method", "corrrise", "--n-masks", "32",
               "-o", str(figure), "--save", str(saved), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "DIFFERENT people" in out.stdout and figure.read_bytes().startswith(b"\x89PNG")
    assert fxplain.PairExplanation.load(saved).params["n_masks"] == 32
    bad = _run("explain", str(paths[0]), str(paths[1]), "--n-masks", "1", "--quiet")
    assert bad.returncode == 2 and "n_masks" in bad.stderr and "Traceback" not in bad.stderr


def test_verify_and_clean_errors(johns, tmp_path):
    paths = johns[2]
    out = _run("verify", str(paths[0]), str(paths[1]))
    assert out.returncode == 0 and "SAME person" in out.stdout
    missing = _run("verify", str(paths[0]), str(tmp_path / "nope.jpg"))
    assert missing.returncode == 2
    assert "fxplain: error: image file not found" in missing.stderr
    assert "Traceback" not in missing.stderr
