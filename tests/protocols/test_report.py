"""The HTML report of a stored run, opened in a real headless Chromium: it loads cleanly, shows real numbers
and figures, escapes hostile file names, and refuses to write over a folder that is not a report."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fxplain
from fxplain import datasets
from fxplain.cli import main
from fxplain.protocols.report import FIGURES, MARKER, decision_counts

webdriver = pytest.importorskip("selenium.webdriver", reason="the test extra installs selenium")

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
#: A folder and a file name that would run script if a page put them into its HTML unescaped.
HOSTILE_DIR = "<script>window.pwned=1</script>"
HOSTILE_FILE = "<img src=x onerror=window.pwned=2>.png"
#: Cheap occlusion: one 75-pixel patch, 9 positions per face.
PARAMS = {"method": "occlusion", "patch_sizes": (75,), "seed": 0}


@pytest.fixture(scope="module")
def run(model, tmp_path_factory):
    """A small real run with 2 false matches, 2 true non-matches, 3 true matches and a failed pair.

    dlib separates the johns pairs at its own threshold, so the run's model is dlib with a threshold
    between the 2nd and 3rd most alike impostor pairs: exactly 2 impostor pairs match.
    """
    made = fxplain.make_pairs(datasets.johns_dir(), impostors=40, seed=0)
    files = sorted({p.a for p in made} | {p.b for p in made})
    emb = dict(zip(files, model.embed(files)))
    impostors = sorted((p for p in made if p.same is False), key=lambda p: -model.score(emb[p.a], emb[p.b]))
    genuine = [p for p in made if p.same][:3]
    threshold = (model.score(emb[impostors[1].a], emb[impostors[1].b])
                 + model.score(emb[impostors[2].a], emb[impostors[2].b])) / 2
    loose = fxplain.load_model("dlib", threshold=threshold)
    tmp = tmp_path_factory.mktemp("report")
    blank = tmp / HOSTILE_DIR / HOSTILE_FILE   # a photo without a face: its pair fails, with its name in the error
    blank.parent.mkdir(parents=True)
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    pairs = [*genuine, *impostors[:3], impostors[-1], (str(blank), files[0], False)]
    return fxplain.explain_pairs(loose, pairs, store=tmp / "run.zarr", chunk_size=4, show_progress=False,
                                 **PARAMS)


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    return run.report(tmp_path_factory.mktemp("out") / "new" / "report")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by selenium (Debian's chromium and chromium-driver; scripts/setup.sh test)."""
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "run 'bash scripts/setup.sh test' as root (installs chromium)"
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,3000"):
        options.add_argument(argument)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _open(browser, index: Path) -> list[dict]:
    """Load the page; its browser log entries."""
    browser.get(index.resolve().as_uri())
    browser.execute_script("return document.readyState")
    return browser.get_log("browser")


def test_report_loads_in_chromium_with_real_numbers_and_figures(run, report, browser, tmp_path):
    assert report.name == "index.html" and report.is_file()
    log = _open(browser, report)
    assert [entry for entry in log if entry["level"] == "SEVERE"] == []
    images = browser.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    regions = {FIGURES[f"region_{chart}_{kind}"] for chart in ("shares", "overlay")
               for kind in ("similarity", "dissimilarity")}
    assert {src for src, _, _ in images} == {FIGURES["false_matches"], FIGURES["seconds"], *regions}
    assert all(complete and width > 0 for _, complete, width in images), images
    # the numbers on the page are the run's: 2 of 4 impostor pairs matched, every genuine pair did
    counts = decision_counts(run)
    assert (counts["false_matches"], counts["impostor_pairs"], counts["false_non_matches"]) == (2, 4, 0)
    text = browser.find_element("tag name", "body").text
    assert "occlusion" in text and run.identity["model_sha256"] in text
    assert "FMR 0.5000 (2 of 4 impostor pairs)" in text and "FNMR 0.0000 (0 of 3 genuine pairs)" in text
    assert "Impostor pairs the model matched: 2" in text and "Genuine pairs the model did not match: 0" in text
    assert "1 pair could not be explained" in text
    # the region table, one row per region and a column per outcome with its number of pairs
    assert "false match (n=2)" in text and "true match (n=3)" in text and "true non-match (n=2)" in text
    table = run.region_table()
    eyes = table[(table["kind"] == "similarity") & (table["region"] == "eyes") & (table["outcome"] == "false match")]
    assert f"{100 * eyes['share'].iloc[0]:.1f}%" in text
    seconds = run.table.loc[run.table["error"].isna(), "seconds"]
    assert f"{seconds.mean():.3f} s" in text and f"{np.median(seconds):.3f} s" in text
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
    path = tmp_path / "screenshot.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 0
    assert shot.std() > 5 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 1
    marker = json.loads((report.parent / MARKER).read_text())
    assert marker["format"] == "fxplain.Report" and "index.html" in marker["files"]


def test_hostile_file_names_are_text_not_markup(run, report, browser):
    failed = run.failed().table
    assert len(failed) == 1 and HOSTILE_DIR in failed["a"][0]
    html = report.read_text()
    assert HOSTILE_DIR not in html and HOSTILE_FILE not in html    # only escaped forms are in the page
    assert "Content-Security-Policy" in html    # and should escaping ever miss, the page runs no script
    log = _open(browser, report)
    assert [entry for entry in log if entry["level"] == "SEVERE"] == []
    dom = browser.execute_script(
        "return {scripts: document.getElementsByTagName('script').length, pwned: window.pwned === undefined"
        " ? null : window.pwned, images: [...document.images].map(i => i.getAttribute('src'))}")
    assert dom["scripts"] == 0 and dom["pwned"] is None
    assert "x" not in dom["images"]
    text = browser.find_element("tag name", "body").text
    assert HOSTILE_DIR in text and HOSTILE_FILE in text     # shown to the reader as the file's name


def test_only_failed_pairs_still_make_a_page(run, tmp_path, browser):
    index = run.failed().report(tmp_path / "failed")
    assert sorted(p.name for p in index.parent.iterdir()) == sorted(["index.html", MARKER])
    log = _open(browser, index)
    assert [entry for entry in log if entry["level"] == "SEVERE"] == []
    text = browser.find_element("tag name", "body").text
    assert "FMR n/a (no impostor pairs)" in text and "FNMR n/a (no genuine pairs)" in text


def test_output_folder_rules(run, report, tmp_path):
    # a non-empty folder that is not a report is refused, and left as it was
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not mine")
    with pytest.raises(fxplain.InvalidInputError, match="not empty"):
        run.report(other)
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(fxplain.InvalidInputError, match="is a file"):
        run.report(tmp_path / "a-file")
    with pytest.raises(fxplain.InvalidInputError, match="max_pairs"):
        run.report(tmp_path / "new", max_pairs=0)
    # a damaged marker does not make a folder a report
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / MARKER).write_text("{not json")
    with pytest.raises(fxplain.InvalidInputError, match="not empty"):
        run.report(fake)
    # a previous report is replaced: the false-match grid of the first report goes when the second has none
    again = tmp_path / "again"
    shutil.copytree(report.parent, again)
    (again / "notes.txt").write_text("the reader's own file")
    assert (again / FIGURES["false_matches"]).exists()
    index = run.where(label="same").report(again)
    assert not (again / FIGURES["false_matches"]).exists()
    assert (again / "notes.txt").read_text() == "the reader's own file"
    assert "Impostor pairs the model matched: 0." in index.read_text()


def test_cli_report(run, tmp_path, capsys):
    out = tmp_path / "cli-report"
    assert main(["report", str(run.run.root), "-o", str(out), "--max-pairs", "1"]) == 0
    assert f"wrote {out / 'index.html'}" in capsys.readouterr().out
    assert "The first 1 of 2;" in (out / "index.html").read_text()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    capsys.readouterr()
    assert main(["report", str(run.run.root), "-o", str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing.zarr"), "-o", str(tmp_path / "r")]) == 2
    assert "not an fxplain result store" in capsys.readouterr().err
