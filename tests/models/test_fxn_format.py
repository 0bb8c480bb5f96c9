"""The face-model file (.fxn): exact round trips, hostile files, threshold None, each metric's distance."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest

import fxplain
from fxplain.models.formats import FORMATS, format_for
from fxplain.models.formats.face_model_file import MAGIC, read_face_model
from fxplain.models.scoring import distance_from_score


def tiny_onnx(size: int = 150, dim: int = 16, seed: int = 0) -> bytes:
    """A small face-model graph (conv, batch norm, PReLU, conv, ReLU, pooling, Gemm) built with onnx.helper."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def const(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[4, 4]),
             helper.make_node("BatchNormalization", ["c1", "g", "b", "m", "v"], ["n1"]),
             helper.make_node("PRelu", ["n1", "slope"], ["p1"]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["gp"]),
             helper.make_node("Flatten", ["gp"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["embedding"], transB=1)]
    inits = [const("w1", (8, 3, 3, 3)), const("g", (8,)), const("b", (8,)), const("m", (8,)),
             numpy_helper.from_array(np.ones(8, np.float32), "v"), const("slope", (8, 1, 1)),
             const("w2", (16, 8, 3, 3)), const("fc", (dim, 16)), const("fcb", (dim,))]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            ["N", 3, size, size])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _load_quietly(path, **options) -> fxplain.FaceModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fxplain.FxplainWarning)
        return fxplain.load_model(path, **options)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("fxn") / "tiny.onnx"
    path.write_bytes(tiny_onnx())
    return path


@pytest.fixture(scope="module")
def saved(onnx_path):
    """A BGR ONNX model with its own mean/std, calibrated on johns and saved: (model, file bytes, path)."""
    model = _load_quietly(onnx_path, mean=(120.0, 110.0, 100.0), std=(60.0, 61.0, 62.0), channels="BGR")
    cal = fxplain.calibrate_threshold(model, "johns", fmr=1e-2)
    model.threshold = cal
    path = model.save(onnx_path.with_name("mine.fxn"), calibration=cal, dataset="johns")
    return model, cal, path


def test_round_trip_is_bit_exact_and_keeps_everything(saved, johns):
    model, cal, path = saved
    again = fxplain.load_model(path)
    images = johns[0][:6]
    assert np.array_equal(again.embed(images), model.embed(images))
    assert again.metric == "cosine" and again.threshold == cal.threshold == model.threshold
    assert again.input_size == (150, 150) and again.facts["format"] == "fxn"
    pre = again.facts["preprocessing"]
    assert pre == {"input_size": [150, 150], "mean": [120.0, 110.0, 100.0], "std": [60.0, 61.0, 62.0],
                   "channels": "BGR"}
    record = again.facts["calibration"]
    assert record["fmr"] == 1e-2 and record["dataset"] == "johns" and record["threshold"] == cal.threshold
    assert record["genuine_pairs"] == len(cal.genuine) and record["impostor_pairs"] == len(cal.impostor)
    assert record["fxplain_version"] and record["date"]
    assert again.facts["source"]["format"] == "onnx" and len(again.facts["source"]["sha256"]) == 64
    # saved again from the loaded model: the same file contents but for the dates, the record kept
    second = again.save(path.with_name("again.fxn"))
    assert fxplain.load_model(second).facts["calibration"]["threshold"] == cal.threshold
    assert np.array_equal(fxplain.load_model(second).embed(images), model.embed(images))


def test_dlib_round_trip_is_bit_exact(model, johns, tmp_path):
    path = model.save(tmp_path / "dlib.fxn")
    again = fxplain.load_model(path)
    assert np.array_equal(again.embed(johns[0][:4]), model.embed(johns[0][:4]))
    assert again.threshold == model.threshold and again.metric == "squared_euclidean"
    assert again.model_hash == model.model_hash


def test_the_registry_sniffs_fxn_and_onnx(saved, onnx_path, tmp_path):
    _, _, path = saved
    assert format_for(tmp_path / "x.bin", path.read_bytes()[:64]).name == "fxn"
    assert format_for(tmp_path / "x.bin", onnx_path.read_bytes()[:64]).name == "onnx"
    assert format_for(tmp_path / "x.bin", b"\x01\x01" + b"\x0dloss_metric_2") .name == "dlib"
    assert set(FORMATS) >= {"dlib", "fxspec", "onnx", "fxn"}
    with pytest.raises(fxplain.InvalidInputError, match="metric: options of ONNX models.*face-model"):
        fxplain.load_model(path, metric="cosine")


def _with_header(data: bytes, change) -> bytes:
    length = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(data[16:16 + length])
    change(header)
    text = json.dumps(header).encode()
    return data[:12] + struct.pack("<I", len(text)) + text + data[16 + length:]


def test_damaged_truncated_and_hostile_files_raise_model_format_error(saved, tmp_path):
    _, _, path = saved
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    flipped_weight = bytearray(data)
    flipped_weight[-100] ^= 0x01
    cases = {
        "empty": b"",
        "magic only": MAGIC,
        "truncated header": data[:40],
        "truncated network": data[:-10],
        "extended": data + b"\0",
        "flipped weight byte": bytes(flipped_weight),
        "version 2": data[:8] + struct.pack("<I", 2) + data[12:],
        "huge header length": data[:12] + struct.pack("<I", 0xFFFFFFFF) + data[16:],
        "header not JSON": data[:16] + b"{" * length + data[16 + length:],
        "NaN threshold": data[:16] + data[16:16 + length].replace(b'"threshold": ', b'"threshold": NaN, "x": ', 1)
                         + data[16 + length:],
        "missing field": _with_header(data, lambda h: h.pop("calibration")),
        "extra field": _with_header(data, lambda h: h.update(code="import os")),
        "bad metric": _with_header(data, lambda h: h.update(metric="manhattan")),
        "threshold a string": _with_header(data, lambda h: h.update(threshold="0.5")),
        "threshold a bool": _with_header(data, lambda h: h.update(threshold=True)),
        "wrong input size": _with_header(data, lambda h: h["preprocessing"].update(input_size=[112, 112])),
        "wrong mean": _with_header(data, lambda h: h["preprocessing"].update(mean=[0.0, 0.0, 0.0])),
        "zero std": _with_header(data, lambda h: h["preprocessing"].update(std=[0.0, 1.0, 1.0])),
        "nested facts": _with_header(data, lambda h: h["facts"].update(deep={"a": 1})),
        "long string": _with_header(data, lambda h: h.update(name="x" * 10_000)),
        "network length lies": _with_header(data, lambda h: h["network"].update(bytes=5)),
        "network digest lies": _with_header(data, lambda h: h["network"].update(sha256="0" * 64)),
    }
    for label, blob in cases.items():
        bad = tmp_path / "bad.fxn"
        bad.write_bytes(blob)
        with pytest.raises(fxplain.ModelFormatError):
            fxplain.load_model(bad)
        with pytest.raises(fxplain.ModelFormatError):
            read_face_model(blob, label)


def test_threshold_none_semantics(onnx_path, johns):
    with pytest.warns(fxplain.FxplainWarning, match="no decision threshold") as caught:
        model = fxplain.load_model(onnx_path)
    assert caught[0].filename == __file__  # the warning points at the caller's line, not at fxplain's source
    assert model.threshold is None and getattr(model, "threshold", 1) is None and hasattr(model, "threshold")
    assert not model.has_threshold and "threshold=None" in repr(model)
    a, b = johns[0][0], johns[0][1]
    assert np.isfinite(model.score(model.embed(a)[0], model.embed(b)[0]))
    for decide in (lambda: model.verify(a, b), lambda: fxplain.Explainer(model, method="occlusion").explain(a, b),
                   lambda: fxplain.methods.decomposition.margin_contributions(model, model.embed(a)[0],
                                                                             model.embed(b)[0])):
        with pytest.raises(fxplain.InvalidInputError, match="no decision threshold.*calibrate"):
            decide()
    # a model without threshold saves and loads without one
    path = model.save(onnx_path.with_name("unset.fxn"))
    with pytest.warns(fxplain.FxplainWarning, match="no decision threshold"):
        assert fxplain.load_model(path).threshold is None
    assert fxplain.load_model(path, threshold=0.5).threshold == 0.5
    model.threshold = 0.9
    assert model.verify(a, b).threshold == 0.9
    model.threshold = None
    assert model.threshold is None


def test_each_metric_reports_its_own_distance(saved, model, johns):
    onnx_model, _, _ = saved
    a, b = johns[0][0], johns[0][1]
    v = onnx_model.verify(a, b)
    assert v.distance == pytest.approx(1.0 - v.score, abs=1e-12)  # cosine distance
    emb = model.embed([a, b]).astype(np.float64)
    d = model.verify(a, b)
    assert d.distance == pytest.approx(np.linalg.norm(emb[0] - emb[1]), rel=1e-6)  # Euclidean, dlib's 0.6 rule
    assert distance_from_score("cosine", 0.875) == pytest.approx(0.125)
    assert distance_from_score("squared_euclidean", -0.36) == pytest.approx(0.6)
    assert np.allclose(distance_from_score("cosine", np.array([1.0, -1.0])), [0.0, 2.0])
