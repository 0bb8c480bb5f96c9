"""A 50-pair run on the johns faces, its HTML report, and a screenshot of the report in headless Chromium.

    .venv/bin/python scripts/report_demo.py OUT [--threshold T] [--pairs 50]

writes OUT/run.zarr (the result store; a rerun resumes it), OUT/report/index.html with its figures, and
OUT/screenshot.png (the whole page, as Chromium draws it), and prints how long each step took. Occlusion
with one 40-pixel patch keeps the run to a minute or so on two cores. dlib separates the johns pairs at
its own threshold, so the grids of false matches are empty unless ``--threshold`` is looser (e.g. -0.5).
Needs Debian's chromium and chromium-driver and selenium (``bash scripts/setup.sh test`` as root).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fxplain
from fxplain import datasets


def demo_pairs(n: int, seed: int) -> list:
    """``n`` johns pairs, half genuine and half impostor, drawn with ``seed``."""
    made = fxplain.make_pairs(datasets.johns_dir(), impostors=n - n // 2, seed=seed)
    genuine = [p for p in made if p.same]
    chosen = np.random.default_rng(seed).choice(len(genuine), n // 2, replace=False)
    return [genuine[k] for k in sorted(chosen)] + [p for p in made if p.same is False]


def screenshot(index: Path, path: Path) -> None:
    """The whole page as headless Chromium draws it (Debian's chromium through its chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1000"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(index.resolve().as_uri())
        # a window whose viewport is as tall as the page: one screenshot of all of it
        height, chrome = driver.execute_script("return [document.documentElement.scrollHeight, "
                                               "window.outerHeight - window.innerHeight]")
        driver.set_window_size(1200, int(height) + int(chrome) + 20)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path, help="folder for run.zarr, report/ and screenshot.png")
    parser.add_argument("--pairs", type=int, default=50, help="pairs, half genuine (default: %(default)s)")
    parser.add_argument("--threshold", type=float, help="the model's threshold instead of dlib's (-0.36)")
    parser.add_argument("--seed", type=int, default=0, help="pairs drawn with this seed (default: %(default)s)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    model = fxplain.load_model("dlib", threshold=args.threshold)
    pairs = demo_pairs(args.pairs, args.seed)
    start = time.perf_counter()
    rs = fxplain.explain_pairs(model, pairs, method="occlusion", patch_sizes=(40,), seed=args.seed,
                               store=args.output / "run.zarr", show_progress=True)
    ran = time.perf_counter() - start
    start = time.perf_counter()
    index = rs.report(args.output / "report")
    reported = time.perf_counter() - start
    start = time.perf_counter()
    screenshot(index, args.output / "screenshot.png")
    shot = time.perf_counter() - start
    summary = rs.summary()
    print(f"{len(rs)} pairs: {summary.get('false_matches', 0)} false matches, "
          f"{summary.get('false_non_matches', 0)} false non-matches, {summary['failed']} failed")
    print(f"run {ran:.1f} s, report {reported:.1f} s, screenshot {shot:.1f} s")
    print(f"report: {index}\nscreenshot: {args.output / 'screenshot.png'}")


if __name__ == "__main__":
    main()
