"""The command line, run as users run it."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fxplain", *args], capture_output=True, text=True, timeout=300)


def test_info_prints_versions_isa_and_model_facts():
    out = _run("info")
    assert out.returncode == 0, out.stderr
    assert "fxplain 0.1.0" in out.stdout
    assert "oneDNN 3." in out.stdout and "ISA" in out.stdout
    assert "150x150x3" in out.stdout and "128-d" in out.stdout and "0.6" in out.stdout


def test_demo_verifies_a_genuine_and_an_impostor_pair():
    out = _run("demo")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("genuine pair") and "SAME person" in line for line in lines)
    assert any(line.startswith("impostor pair") and "DIFFERENT people" in line for line in lines)
    assert "100.0 % decided correctly" in out.stdout


def test_verify_and_clean_errors(johns, tmp_path):
    paths = johns[2]
    out = _run("verify", str(paths[0]), str(paths[1]))
    assert out.returncode == 0 and "SAME person" in out.stdout
    missing = _run("verify", str(paths[0]), str(tmp_path / "nope.jpg"))
    assert missing.returncode == 2
    assert "fxplain: error: image file not found" in missing.stderr
    assert "Traceback" not in missing.stderr
