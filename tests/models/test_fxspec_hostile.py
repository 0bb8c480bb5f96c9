"""fxplain's own network file (decoders, saved face models) read as untrusted data.

Each case is a mutation an independent campaign found loading silently
wrong or escaping as another library's exception; each must raise
ModelFormatError (or ModelNotFoundError for what is not a file), in both
versions of the file: version 2 (a safetensors container with a checksummed
record, what fxplain writes) and version 1 (what fxplain 0.1.0 wrote, still
read). Version-2 edits are re-signed (the checksum recomputed) so that they
reach the field checks: the checksum tells damage, not hostility.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import fxplain
from fxplain.models.formats.fxspec import load_spec, payload_digest, save_spec
from fxplain.runtime import NetworkSpec

# version-1 files load with UnverifiedWeightsWarning (no checksum); this file tests what else they do
pytestmark = pytest.mark.filterwarnings("ignore::fxplain.UnverifiedWeightsWarning")

V1_FIXTURE = Path(__file__).parents[1] / "data" / "decoder_format_v1.fxd"
#: weights_digest() of the fixture's network, computed when fxplain 0.1.0 wrote it
V1_DIGEST = "5c3bb4e03f872ae55d8732d6f6f95089c31d4c2a8ad3df8f33d8cbb95f0a1961"
PREFIX = struct.Struct("<8sII")


def _v1(tmp_path) -> Path:
    path = tmp_path / "tiny_v1.fxd"
    shutil.copy(V1_FIXTURE, path)
    return path


def _v2(tmp_path) -> Path:
    spec, metadata = load_spec(V1_FIXTURE)
    path = tmp_path / "tiny_v2.fxd"
    save_spec(path, spec, metadata)
    return path


def _open_v2(path: Path):
    data = path.read_bytes()
    tensors = {name: np.frombuffer(e["data"], "<f4").reshape(e["shape"]) if e["dtype"] == "F32" else e
               for name, e in safetensors.deserialize(data)}
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return tensors, json.loads(header["__metadata__"]["fxplain"])


def _write_v2(path: Path, tensors, record, *, resign=True):
    if resign:
        record["payload_sha256"] = payload_digest(record["network"], record["metadata"], tensors)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"fxplain": json.dumps(record)}))


def _edit_document(document_text: str, edit) -> str:
    """Apply an edit to the JSON text of ``{network..., "metadata": ...}``; an edit returns new text or None."""
    document = json.loads(document_text)
    text = edit(document)
    return text if isinstance(text, str) else json.dumps(document)


def _rewrite_v1(path: Path, edit):
    """Edit the v1 JSON header in place, keeping its length (so array offsets stay valid)."""
    data = bytearray(path.read_bytes())
    _, _, length = PREFIX.unpack_from(data)
    blob = _edit_document(data[PREFIX.size:PREFIX.size + length].decode(), edit).encode()
    assert len(blob) <= length, "the edit must not grow the header"
    data[PREFIX.size:PREFIX.size + length] = blob.ljust(length, b" ")
    path.write_bytes(bytes(data))


def _rewrite_v2(path: Path, edit, *, resign=True):
    tensors, record = _open_v2(path)
    document = dict(json.loads(record["network"]), metadata=json.loads(record["metadata"]))
    document = json.loads(_edit_document(json.dumps(document), edit))  # Python's json reads NaN back
    metadata = document.pop("metadata") if isinstance(document, dict) and "metadata" in document else {}
    record.update(network=json.dumps(document), metadata=json.dumps(metadata))
    _write_v2(path, tensors, record, resign=resign)


def test_both_versions_load_the_same_network(tmp_path):
    spec1, meta1 = load_spec(_v1(tmp_path))
    spec2, meta2 = load_spec(_v2(tmp_path))
    assert spec1.weights_digest() == spec2.weights_digest() == V1_DIGEST and meta1 == meta2
    assert _v2(tmp_path).read_bytes()[8:35] == b'{"__metadata__":{"fxplain":'  # a safetensors container
    f = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    np.testing.assert_array_equal(fxplain.load_decoder(_v1(tmp_path)).decode(f),
                                  fxplain.load_decoder(_v2(tmp_path)).decode(f))


def test_version_1_files_warn_that_nothing_checks_their_weights(tmp_path):
    with pytest.warns(fxplain.UnverifiedWeightsWarning, match="version-1 .* no checksum"):
        fxplain.load_decoder(_v1(tmp_path))
    upgraded = _v2(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fxplain.load_decoder(upgraded)  # version 2: checksummed, no warning


def test_the_writer_is_deterministic(tmp_path):
    assert _v2(tmp_path).read_bytes() == _v2(tmp_path).read_bytes()


RESIZE = 3  # the fixture is dense, reshape, conv, resize

CASES = {
    "NaN in input_mean": (lambda h: json.dumps(h).replace('"input_mean": [0.5', '"input_mean": [NaN'),
                          "JSON constant NaN"),
    "Infinity in input_scale": (lambda h: json.dumps(h).replace('"input_scale": [2.0', '"input_scale": [Infinity'),
                                "JSON constant Infinity"),
    "null in input_mean": (lambda h: h.update(input_mean=[None] + h["input_mean"][1:]),
                           "input_mean must be a list of numbers"),
    "a 4096x4096 final resize": (lambda h: h["layers"][RESIZE]["params"].update(size=[4096, 4096]),
                                 "outputs 4096x4096"),
    "a 65536x65536 resize (48 GiB at decode time)": (
        lambda h: h["layers"][RESIZE]["params"].update(size=[65536, 65536]), "more than any supported network"),
    "a conv stride 0": (lambda h: h["layers"][2]["params"].update(stride=[1, 0]), "layer 3"),
    "a conv padding larger than its kernel": (lambda h: h["layers"][2]["params"].update(padding=[5, 1]), "layer 3"),
    "layers not a list": (lambda h: h.update(layers={"a": 1}), "list of layers"),
    "a layer that is a number": (lambda h: h["layers"].__setitem__(0, 7), "unknown layer kind"),
    "inputs reading a later node": (lambda h: h["layers"][0].update(inputs=[2]), "inputs must hold integers"),
    "a string size": (lambda h: h["layers"][RESIZE]["params"].update(size=["a", 4]), "'size' must be 2 integers"),
    # found by the fxd fuzz target: an object where an array belongs reached the core as a TypeError
    "a bias that is an object, not an array": (lambda h: h["layers"][0]["params"].update(bias={"x": 1}),
                                               "'bias' must be a 1-D float array"),
    "a missing stride": (lambda h: h["layers"][2]["params"].pop("stride"), r"layer 3 \(conv\) takes parameters"),
    "an unknown parameter": (lambda h: h["layers"][1]["params"].update(groups=2), r"layer 2 \(reshape\) takes"),
    "a mode that is a number": (lambda h: h["layers"][RESIZE]["params"].update(mode=3), "'mode' must be a string"),
    "output node out of range": (lambda h: h.update(output=9), "output must hold integers"),
    "a bool as input shape": (lambda h: h.update(input_shape=[True, 1, 1]), "input_shape must hold integers"),
    "metadata not an object": (lambda h: h.update(metadata=[1]), "'metadata' must be a JSON object"),
    "deep nesting": (lambda h: h["metadata"].update(info=json.loads("[" * 40 + "]" * 40)), "info"),
}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_headers_raise_fxplains_error(tmp_path, case, version):
    edit, fragment = CASES[case]
    path = _v1(tmp_path) if version == 1 else _v2(tmp_path)
    (_rewrite_v1 if version == 1 else _rewrite_v2)(path, edit)
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.load_decoder(path)


def _weight_slot(h):
    return h["layers"][0]["params"]["weight"]["array"]


V1_ONLY = {
    "weight offset 0 (the header read as floats)": (lambda h: _weight_slot(h).__setitem__(0, 0),
                                                    "not in the data section"),
    "misaligned weight offset": (lambda h: _weight_slot(h).__setitem__(0, _weight_slot(h)[0] + 4), "aligned"),
    "a huge claimed array shape": (lambda h: _weight_slot(h).__setitem__(1, [2**30, 2**30]), "runs past the end"),
}


@pytest.mark.parametrize("case", sorted(V1_ONLY))
def test_hostile_v1_offsets_raise_fxplains_error(tmp_path, case):
    edit, fragment = V1_ONLY[case]
    path = _v1(tmp_path)
    _rewrite_v1(path, edit)
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.load_decoder(path)


def _tensor_ref(h, name):
    h["layers"][0]["params"]["weight"] = {"tensor": name}


V2_ONLY = {
    "a tensor that is not in the file": (lambda t, r: r.update(network=r["network"].replace('"1.weight"',
                                                                                          '"9.weight"')),
                                         "refers to tensor '9.weight', which is not in the file"),
    "a tensor used twice": (lambda t, r: r.update(network=r["network"].replace('"1.bias"', '"1.weight"')),
                            "used twice"),
    "an extra tensor": (lambda t, r: t.update(extra=np.zeros(3, np.float32)), "not used by any layer"),
    "a float64 tensor": (lambda t, r: t.update({"1.weight": t["1.weight"].astype(np.float64)}), "expected F32"),
    "a weight of 1.7e38": (lambda t, r: t.update({"1.weight": np.full_like(t["1.weight"], 1.7e38)}),
                           r"layer 1 weight .* magnitude 1.7e\+38"),
    "a NaN weight": (lambda t, r: t.update({"1.bias": np.full_like(t["1.bias"], np.nan)}), "NaN or infinite"),
    "a bias of the wrong length": (lambda t, r: t.update({"1.bias": t["1.bias"][:-1].copy()}),
                                   r"layer 1: bias has shape \(47,\), expected \(48,\)"),
    "a reshaped weight": (lambda t, r: t.update({"1.weight": t["1.weight"].reshape(8, 48)}), "layer 1"),
    "a record without its checksum": (lambda t, r: r.pop("payload_sha256"), "exactly the fields"),
    "an extra record field": (lambda t, r: r.update(signed_by="me"), "exactly the fields"),
    "format version 3": (lambda t, r: r.update(format_version=3), "format version 3"),
    "format version true": (lambda t, r: r.update(format_version=True), "format version True"),
    "another format": (lambda t, r: r.update(format="onnx"), "format 'onnx'"),
    "a network that is not JSON": (lambda t, r: r.update(network="{"), "network is not valid JSON"),
    "a network that is a number": (lambda t, r: r.update(network=7), "'network' must be a string"),
}


@pytest.mark.parametrize("case", sorted(V2_ONLY))
def test_hostile_v2_containers_raise_fxplains_error(tmp_path, case):
    edit, fragment = V2_ONLY[case]
    path = _v2(tmp_path)
    tensors, record = _open_v2(path)
    tensors = dict(tensors)
    edit(tensors, record)
    if isinstance(record.get("network"), str) and record.get("payload_sha256"):
        _write_v2(path, tensors, record)
    else:
        _write_v2(path, tensors, record, resign=False)
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.load_decoder(path)


@pytest.mark.parametrize("edit", ["weight", "network", "metadata"])
def test_any_change_without_a_new_checksum_is_refused_as_damage(tmp_path, edit):
    path = _v2(tmp_path)
    tensors, record = _open_v2(path)
    tensors = dict(tensors)
    if edit == "weight":
        tensors["1.weight"] = tensors["1.weight"].copy()
        tensors["1.weight"][0, 0] = np.nextafter(tensors["1.weight"][0, 0], np.float32(9))  # one ulp
    elif edit == "network":
        record["network"] = record["network"].replace('"size": [8, 8]', '"size": [8, 9]')
    else:
        record["metadata"] = record["metadata"].replace("fixture-v1", "fixture-v2")
    _write_v2(path, tensors, record, resign=False)
    with pytest.raises(fxplain.ModelFormatError, match="the file is damaged"):
        fxplain.load_decoder(path)


def test_every_flipped_byte_is_refused_or_harmless(tmp_path):
    """A flipped byte anywhere in a v2 file: refused, or the same network (JSON whitespace, padding)."""
    path = _v2(tmp_path)
    data = path.read_bytes()
    reference = load_spec(path)[0].weights_digest()
    loaded_same = 0
    for offset in range(0, len(data), 7):
        damaged = bytearray(data)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        try:
            spec, _ = load_spec(path)
        except fxplain.ModelFormatError:
            continue
        assert spec.weights_digest() == reference, f"byte {offset} changed the network silently"
        loaded_same += 1
    assert loaded_same < len(data) // 7 // 10


@pytest.mark.parametrize("cut", [0, 7, 8, 100, -1, -5])
def test_truncated_containers_are_refused(tmp_path, cut):
    path = _v2(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(fxplain.ModelFormatError):
        fxplain.load_decoder(path)


def test_huge_weights_are_refused_in_version_1(tmp_path):
    path = _v1(tmp_path)
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
