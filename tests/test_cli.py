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


def test_demo_explains_a_genuine_and_an_impostor_pair_with_each_method(tmp_path, default_decoder):
    # the fixture makes sure the default decoder is cached, so the demo loads it rather than training
    out = _run("demo", "-o", str(tmp_path), "--n-masks", "64")
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert sum(line.startswith("genuine pair") and "SAME person" in line for line in lines) == 4
    assert sum(line.startswith("impostor pair") and "DIFFERENT people" in line for line in lines) == 4
    assert "100.0 % decided correctly" in out.stdout
    assert "default decoder: cached" in out.stdout
    # the explanations come before the decoder, which a first run must train for minutes
    decoder_line = next(k for k, line in enumerate(lines) if "default decoder" in line)
    assert max([k for k, line in enumerate(lines) if line.startswith("genuine pair")][:3]) < decoder_line
    for method in ("occlusion", "corrrise", "gradient", "reconstruction"):
        for label in ("genuine", "impostor"):
            assert (tmp_path / f"{method}_{label}.png").read_bytes().startswith(b"\x89PNG")
    assert "photo bald_guys.jpg: 24 faces detected" in out.stdout
    assert any(line.startswith("most alike faces") and "SAME person" in line for line in lines)
    for name in ("reconstructions", "dimensions_genuine", "dimensions_impostor", "photo_faces", "photo_most_alike",
                 "photo_least_alike"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_train_decoder_writes_a_decoder_file(johns, tmp_path):
    import shutil

    import fxplain

    folder = tmp_path / "faces" / "someone"
    folder.mkdir(parents=True)
    for path in johns[2][:3]:
        shutil.copy(path, folder / path.name)
    target = tmp_path / "d.fxd"
    out = _run("train-decoder", str(tmp_path / "faces"), "-o", str(target), "--steps", "4", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "trained Decoder(" in out.stdout and "on 3 images" in out.stdout
    decoder = fxplain.load_decoder(target, fxplain.load_model())
    assert decoder.info["steps"] == 4 and len(decoder.info["history"]["pixel"]) == 4
    bad = _run("train-decoder", str(tmp_path / "nothing-here"), "--quiet")
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr


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


def test_version_and_options_after_the_sub_command(johns):
    import fxplain

    version = _run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"fxplain {fxplain.__version__}"
    paths = johns[2]
    after = _run("verify", "--model", "dlib", str(paths[0]), str(paths[1]))
    before = _run("--model", "dlib", "verify", str(paths[0]), str(paths[1]))
    assert after.returncode == 0 and before.returncode == 0, after.stderr + before.stderr
    assert "SAME person" in after.stdout and after.stdout.split("[")[0] == before.stdout.split("[")[0]
    missing = _run("verify", "--model", "/nonexistent/model.dat", str(paths[0]), str(paths[1]))
    assert missing.returncode == 2 and "model file not found" in missing.stderr


def test_method_choices_come_from_the_registry_and_foreign_options_are_refused(johns, tmp_path):
    from fxplain.methods import METHODS

    helptext = _run("explain", "--help").stdout
    for name, cls in METHODS.items():
        assert name in helptext
        for variant in cls.variants:
            assert variant in helptext
    paths = johns[2]
    for option in (["--method", "occlusion", "--n-masks", "32"], ["--method", "corrrise", "--variant", "net"],
                   ["--method", "gradient", "--decoder", str(tmp_path / "d.fxd")]):
        out = _run("explain", str(paths[0]), str(paths[1]), *option, "-o", str(tmp_path / "x.png"), "--quiet")
        assert out.returncode == 2, (option, out.stdout)
        assert "unknown parameter" in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert not (tmp_path / "x.png").exists()
    refused = _run("evaluate", "johns", "--methods", "occlusion", "--n-masks", "10", "-o", str(tmp_path / "r"))
    assert refused.returncode == 2 and "--n-masks" in refused.stderr and "Traceback" not in refused.stderr
