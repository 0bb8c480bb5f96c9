"""Pairs lists: LFW's pairs.txt, CSV files and identity folders, and their bad lines."""

from __future__ import annotations

import os
import shutil
from itertools import combinations

import pytest

import fxplain
from fxplain import datasets


@pytest.fixture(scope="module")
def lfw_tree(tmp_path_factory):
    """Johns chips laid out with LFW's naming: name/name_0001.jpg."""
    root = tmp_path_factory.mktemp("lfw")
    for folder in sorted(datasets.johns_dir().iterdir()):
        (root / folder.name).mkdir()
        for k, image in enumerate(sorted(folder.glob("*.jpg")), start=1):
            shutil.copy(image, root / folder.name / f"{folder.name}_{k:04d}.jpg")
    return root


def test_lfw_pairs_file(lfw_tree):
    path = lfw_tree / "pairs.txt"
    path.write_text("1\t3\nJohn_Salley\t1\t2\nJohn_Simm\t3\t11\nJohn_Salley\t4\tJohn_Savage\t1\n")
    pairs = fxplain.read_pairs(path)
    assert [p.same for p in pairs] == [True, True, False]
    assert pairs[0].a == str(lfw_tree / "John_Salley" / "John_Salley_0001.jpg")
    assert pairs[2].b == str(lfw_tree / "John_Savage" / "John_Savage_0001.jpg")
    assert pairs[2].label == "different"
    # the ten-fold header form and another root
    elsewhere = lfw_tree.parent / "lists"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "pairs.txt").write_text("10 300\nJohn_Simm 1 2\n")
    assert fxplain.read_pairs(elsewhere / "pairs.txt", root=lfw_tree)[0].b.endswith("John_Simm_0002.jpg")


@pytest.mark.parametrize("line, message", [
    ("John_Salley 1", "expected 'name i j'"),
    ("John_Salley 1 99", "image not found"),
    ("John_Salley one 2", "positive integer"),
    ("John_Salley 1 2 3 4 5", "6 fields"),
])
def test_lfw_bad_lines_name_file_and_line(lfw_tree, line, message):
    path = lfw_tree / "bad_pairs.txt"
    path.write_text(f"2\nJohn_Simm 1 2\n{line}\n")
    with pytest.raises(fxplain.InvalidInputError, match=rf"bad_pairs.txt, line 3: .*{message}"):
        fxplain.read_pairs(path)


def test_csv_pairs(lfw_tree, tmp_path):
    a = lfw_tree / "John_Simm" / "John_Simm_0001.jpg"
    b = lfw_tree / "John_Simm" / "John_Simm_0002.jpg"
    c = lfw_tree / "John_Savage" / "John_Savage_0001.jpg"
    relative = tmp_path / "faces"
    relative.mkdir()
    shutil.copy(a, relative / "x.jpg")
    path = tmp_path / "pairs.csv"
    path.write_text(f"a,b,same\nfaces/x.jpg,{b},1\n{a},{c},different\n{a},{c},\n")
    pairs = fxplain.read_pairs(path)
    assert pairs[0].a == str(tmp_path / "faces" / "x.jpg")
    assert [p.same for p in pairs] == [True, False, None]
    (tmp_path / "rooted.csv").write_text("John_Simm/John_Simm_0001.jpg,John_Simm/John_Simm_0002.jpg\n")
    assert fxplain.read_pairs(tmp_path / "rooted.csv", root=lfw_tree)[0].b == str(b)
    (tmp_path / "bad.csv").write_text(f"{a},{b},maybe\n")
    with pytest.raises(fxplain.InvalidInputError, match=r"bad.csv, line 1: 'same' must be"):
        fxplain.read_pairs(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text(f"{a},{b}\n{a}\n")
    with pytest.raises(fxplain.InvalidInputError, match=r"short.csv, line 2"):
        fxplain.read_pairs(tmp_path / "short.csv")


def test_pairs_files_that_are_not_files(tmp_path):
    with pytest.raises(fxplain.InvalidInputError, match="not found"):
        fxplain.read_pairs(tmp_path / "missing.txt")
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    with pytest.raises(fxplain.InvalidInputError, match="not a file"):
        fxplain.read_pairs(fifo)
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(fxplain.InvalidInputError, match="not UTF-8"):
        fxplain.read_pairs(tmp_path / "binary.txt")
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(fxplain.InvalidInputError, match="no pairs"):
        fxplain.read_pairs(tmp_path / "empty.csv")


def test_make_pairs_from_an_identity_folder():
    root = datasets.johns_dir()
    sizes = [len(list(folder.glob("*.jpg"))) for folder in sorted(root.iterdir())]
    pairs = fxplain.make_pairs(root, impostors=30, seed=3)
    genuine = [p for p in pairs if p.same]
    impostor = [p for p in pairs if p.same is False]
    assert len(genuine) == sum(len(list(combinations(range(n), 2))) for n in sizes)
    assert len(impostor) == 30
    assert all(os.path.dirname(p.a) != os.path.dirname(p.b) for p in impostor)
    assert len({(p.a, p.b) for p in impostor}) == 30
    assert fxplain.make_pairs(root, impostors=30, seed=3) == pairs          # seeded
    assert fxplain.make_pairs(root, impostors=30, seed=4) != pairs
    with pytest.raises(fxplain.InvalidInputError, match="impostor pairs"):
        fxplain.make_pairs(root, impostors=10**6)
    with pytest.raises(fxplain.InvalidInputError, match="not found"):
        fxplain.make_pairs(root / "nowhere")
