"""fxplain explain-pairs, show and regions, in a subprocess, as a user types them."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import fxplain
from fxplain import datasets


def _fxplain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fxplain", *args], capture_output=True, text=True, timeout=600,
                          check=False)


def test_explain_pairs_then_show(tmp_path):
    files = datasets.johns_files()
    listing = tmp_path / "pairs.csv"
    listing.write_text(f"a,b,same\n{files[0]},{files[1]},1\n{files[0]},{files[30]},0\n")
    store = tmp_path / "run.zarr"
    done = _fxplain("explain-pairs", str(listing), "-o", str(store), "--method", "occlusion", "--dtype", "float16",
                    "--quiet")
    assert done.returncode == 0, done.stderr
    assert "2 of 2 pairs done, 0 failed" in done.stdout
    assert "1 true matches, 0 false matches, 0 false non-matches, 1 true non-matches" in done.stdout
    rs = fxplain.open_results(store)
    assert rs.identity["dtype"] == "float16" and rs.identity["method"] == "occlusion"
    shown = _fxplain("show", str(store), "--rows", "2")
    assert shown.returncode == 0 and "different" in shown.stdout and "time per pair" in shown.stdout
    # the same command again resumes (nothing to do); another method in the same store is refused
    again = _fxplain("explain-pairs", str(listing), "-o", str(store), "--method", "occlusion", "--dtype", "float16",
                     "--quiet")
    assert again.returncode == 0
    other = _fxplain("explain-pairs", str(listing), "-o", str(store), "--method", "corrrise", "--quiet")
    assert other.returncode == 2 and "method: stored occlusion, asked corrrise" in other.stderr
    # the facial-region table, grouped by a column of the user's CSV, written as CSV and drawn
    groups = tmp_path / "groups.csv"
    groups.write_text(f"file,group\n{files[0]},x\n{files[1]},x\n{files[30]},y\n")
    table = tmp_path / "regions.csv"
    regions = _fxplain("regions", str(store), "--annotate", str(groups), "--by", "group", "--n-boot", "50",
                       "-o", str(table), "--plot", str(tmp_path / "regions.png"))
    assert regions.returncode == 0, regions.stderr
    assert "mixed" in regions.stdout and "chin_jaw" in regions.stdout
    written = pd.read_csv(table)
    assert set(written["group"]) == {"x", "mixed"} and len(written) == 2 * 2 * 9
    assert (tmp_path / "regions-similarity.png").stat().st_size > 1000
    missing = _fxplain("regions", str(store), "--by", "age")
    assert missing.returncode == 2 and "no column 'age'" in missing.stderr


def test_bad_pairs_file_is_a_clear_error(tmp_path):
    listing = tmp_path / "pairs.txt"
    listing.write_text("1\nJohn_Doe 1\n")
    done = _fxplain("explain-pairs", str(listing), "-o", str(tmp_path / "run.zarr"))
    assert done.returncode == 2
    assert "pairs.txt, line 2" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run.zarr").exists()   # nothing half-run
    shown = _fxplain("show", str(tmp_path / "nothing.zarr"))
    assert shown.returncode == 2 and "not an fxplain result store" in shown.stderr
