"""The documentation in docs/ builds with Sphinx, warnings as errors.

The build imports fxplain (autodoc reads the docstrings), so a docstring that
Sphinx cannot parse, a broken cross-reference in a docs page, or a public name
that no longer imports fails here. The API pages are checked for the objects
they document, so an empty build (autodoc importing nothing) cannot pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD_TIMEOUT = 600  # seconds

# api page -> full names that must be documented on it (autodoc's anchors)
API_PAGES = {
    "models": ["load_model", "FaceModel", "FaceModel.embed", "wrap", "CallableModel", "backend_info"],
    "explaining": ["Explainer", "Explainer.explain", "PairExplanation"],
    "identification": ["explain_identification", "Gallery", "Gallery.search", "IdentificationExplanation",
                       "IdentificationExplanation.load"],
    "reconstruction": ["Decoder", "Decoder.region_atlas", "load_decoder", "train_decoder", "default_decoder",
                       "reconstruction.RegionAtlas", "faces.collection.faces_in_photos"],
    "evaluation": ["evaluate", "EvaluationReport"],
    "data": ["datasets.load_johns", "datasets.fetch_johns"],
    "faces": ["faces.detect_faces", "faces.Face", "faces.Face.chip", "faces.load_face_detector",
              "faces.FaceDetector.detect", "faces.load_shape_predictor", "faces.ShapePredictor.predict",
              "faces.face_chip"],
    "errors": [
        "FxplainError",
        "InvalidInputError",
        "ModelFormatError",
        "ModelNotFoundError",
        "DataUnavailableError",
        "CoreError",
        "FxplainWarning",
        "UnverifiedWeightsWarning",
    ],
}

USER_GUIDE = ["evaluation", "explanations", "identification", "models", "onednn", "performance", "photos", "protocols",
              "reconstruction", "regions", "runtime", "testing", "untrusted_input"]


def test_docs_build_without_warnings(tmp_path):
    html = tmp_path / "html"
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going", "-b", "html", "-q",
        "-d", str(tmp_path / "doctrees"),
        str(DOCS), str(html),
    ]  # fmt: skip
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, (
        f"sphinx exited {proc.returncode}\n--- stderr ---\n{proc.stderr}\n--- stdout ---\n{proc.stdout}"
    )

    for page in USER_GUIDE:
        assert (html / f"{page}.html").is_file(), f"user-guide page {page}.md was not built"

    missing = []
    for page, names in API_PAGES.items():
        text = (html / "api" / f"{page}.html").read_text(encoding="utf-8")
        for name in names:
            # autodoc gives every documented object an anchor with its full name
            if f'id="fxplain.{name}"' not in text:
                missing.append(f"api/{page}.html: fxplain.{name}")
    assert not missing, "objects not documented:\n" + "\n".join(missing)

    explaining = (html / "api" / "explaining.html").read_text(encoding="utf-8")
    models = (html / "api" / "models.html").read_text(encoding="utf-8")
    assert "Explainer" in explaining and "load_model" in models
