"""fxplain's own network file (decoders, saved face models) read as untrusted data.

Each case is a mutation an independent campaign found loading silently
wrong or escaping as another library's exception; each must now raise
ModelFormatError (or ModelNotFoundError for what is not a file).
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

import fxplain
from fxplain.models.formats.fxspec import load_spec, save_spec
from fxplain.runtime import NetworkSpec

PREFIX = struct.Struct("<8sII")


def _tiny(tmp_path):
    spec = NetworkSpec((4, 1, 1), np.zeros(4, np.float32), np.ones(4, np.float32))
    x = spec.add("dense", 0, weight=np.ones((12, 4), np.float32), bias=np.zeros(12, np.float32))
    x = spec.add("reshape", x, shape=(3, 2, 2))
    spec.add("resize", x, size=(4, 4), mode="bilinear")
    path = tmp_path / "tiny.fxd"
    save_spec(path, spec, {"kind": "fxplain-decoder", "model_hash": "x", "info": {}})
    return path


def _rewrite(path, edit):
    """Edit the JSON header in place, keeping its length (so array offsets stay valid)."""
    data = bytearray(path.read_bytes())
    _, _, length = PREFIX.unpack_from(data)
    header = json.loads(data[PREFIX.size:PREFIX.size + length])
    text = edit(header)
    blob = (text if isinstance(text, str) else json.dumps(header)).encode()
    assert len(blob) <= length, "the edit must not grow the header"
    data[PREFIX.size:PREFIX.size + length] = blob.ljust(length, b" ")
    path.write_bytes(bytes(data))


def test_the_tiny_file_loads(tmp_path):
    spec, meta = load_spec(_tiny(tmp_path))
    assert spec.shapes()[-1] == (3, 4, 4) and meta["kind"] == "fxplain-decoder"
    assert fxplain.load_decoder(_tiny(tmp_path)).output_size == (4, 4)


CASES = {
    "NaN in input_mean": (lambda h: json.dumps(h).replace('"input_mean": [0.0', '"input_mean": [NaN'),
                          "JSON constant NaN"),
    "Infinity in input_scale": (lambda h: json.dumps(h).replace('"input_scale": [1.0', '"input_scale": [Infinity'),
                                "JSON constant Infinity"),
    "null in input_mean": (lambda h: h.update(input_mean=[None, 0, 0, 0]), "input_mean must be a list of numbers"),
    "weight offset 0 (the header read as floats)": (
        lambda h: h["layers"][0]["params"]["weight"].update(array=[0, [12, 4]]), "not in the data section"),
    "misaligned weight offset": (
        lambda h: h["layers"][0]["params"]["weight"].update(array=[h["layers"][0]["params"]["weight"]["array"][0] + 4,
                                                                  [12, 4]]), "aligned"),
    "a 4096x4096 final resize": (lambda h: h["layers"][2]["params"].update(size=[4096, 4096]), "outputs 4096x4096"),
    "a 65536x65536 resize (48 GiB at decode time)": (lambda h: h["layers"][2]["params"].update(size=[65536, 65536]),
                                                     "more than any supported network"),
    "a huge claimed array shape": (lambda h: h["layers"][0]["params"]["weight"].update(
        array=[h["layers"][0]["params"]["weight"]["array"][0], [2**30, 2**30]]), "runs past the end"),
    "layers not a list": (lambda h: h.update(layers={"a": 1}), "list of layers"),
    "a layer that is a number": (lambda h: h["layers"].__setitem__(0, 7), "unknown layer kind"),
    "inputs reading a later node": (lambda h: h["layers"][0].update(inputs=[2]), "inputs must hold integers"),
    "a string stride": (lambda h: h["layers"][2]["params"].update(size=["a", 4]), "malformed header"),
    "output node out of range": (lambda h: h.update(output=9), "output must hold integers"),
    "a bool as input shape": (lambda h: h.update(input_shape=[True, 1, 1]), "input_shape must hold integers"),
    "metadata not an object": (lambda h: h.update(metadata=[1]), "'metadata' must be a JSON object"),
    "deep nesting": (lambda h: json.dumps(h).replace('"info": {}', '"info": ' + "[" * 40 + "]" * 40),
                     "info"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_headers_raise_fxplains_error(tmp_path, case):
    edit, fragment = CASES[case]
    path = _tiny(tmp_path)
    _rewrite(path, edit)
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.load_decoder(path)


def test_huge_weights_are_refused(tmp_path):
    path = _tiny(tmp_path)
    data = bytearray(path.read_bytes())
    _, _, length = PREFIX.unpack_from(data)
    offset = json.loads(data[PREFIX.size:PREFIX.size + length])["layers"][0]["params"]["weight"]["array"][0]
    data[offset:offset + 4] = struct.pack("<f", 1.7e38)
    path.write_bytes(bytes(data))
    with pytest.raises(fxplain.ModelFormatError, match="magnitude 1.7e\\+38"):
        fxplain.load_decoder(path)


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "decoder.fxd"
    os.mkfifo(fifo)
    with pytest.raises(fxplain.ModelNotFoundError, match="not a file"):
        fxplain.load_decoder(fifo)
    with pytest.raises(fxplain.ModelNotFoundError, match="not a file"):
        fxplain.load_model(fifo)
    with pytest.raises(fxplain.ModelNotFoundError, match="not a file"):
        fxplain.load_decoder(tmp_path)


def test_the_writer_refuses_what_the_reader_would(tmp_path):
    spec = NetworkSpec((4, 1, 1), np.zeros(4, np.float32), np.ones(4, np.float32))
    spec.add("dense", 0, weight=np.ones((2, 4), np.float32), bias=None)
    with pytest.raises(fxplain.InvalidInputError, match="must be finite"):
        save_spec(tmp_path / "x.fxn", spec, {"threshold": float("nan")})
    assert not (tmp_path / "x.fxn").exists()
