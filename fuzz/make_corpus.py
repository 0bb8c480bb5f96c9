"""Write the seed inputs of every fuzz target into ``fuzz/corpus/<target>/`` (run once; the seeds are kept).

``python -m fuzz.make_corpus`` — seeds are small valid (or nearly valid)
files of each kind, so that mutations start from inside the format:

* dlib_dat: prefixes of dlib's published model (its headers and first
  layers; they parse until the file ends early);
* dlib_patches: a few patch lists (offsets into the stem's headers);
* shape_predictor: the landmark tests' tiny predictor, and a prefix of dlib's;
* face_detector: prefixes of dlib's CNN face detector file;
* face_detector_patches: patch lists of the published detector (its options, an early and a late weight);
* fxd: the version-1 test fixture, the same decoder in version 2, and a tiny
  face model in version 2;
* fxn: tiny face-model files (``.fxn``): calibrated (with a calibration
  record), without a threshold, and reading BGR;
* results: a small saved explanation (version 3, uint8 images and sources), the same in versions 2 and 1;
* store: each file of a real two-pair result store (:func:`fuzz.targets.store_template`) behind the
  byte that selects it;
* image: tiny PNG, JPEG, GIF, BMP and WebP files, and a PNG header claiming a
  huge size (a decompression bomb);
* onnx: tiny face-model graphs built with onnx.helper (conv, batch norm,
  PReLU, a residual Add, a squeeze-excitation gate, pooling, flatten, Gemm;
  static and dynamic input size).

Long fuzzing runs add the inputs that found new coverage (scripts/fuzz.sh
merges them in); this script only writes the seeds.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

import fxplain
from fxplain.faces import shape_predictor_path
from fxplain.faces.detector import face_detector_path
from fxplain.models.formats.dlib import dlib_model_path
from fxplain.models.formats.fxspec import FACE_MODEL_KIND, load_spec, save_spec
from fxplain.runtime import NetworkSpec

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
V1_FIXTURE = HERE.parent / "tests" / "data" / "decoder_format_v1.fxd"


def _write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _explanation(size: int) -> fxplain.PairExplanation:
    rng = np.random.default_rng(0)
    maps = rng.random((2, 2, size, size), dtype=np.float32)
    return fxplain.PairExplanation(similarity=maps[0], dissimilarity=maps[1],
                                   images=rng.random((2, size, size, 3), dtype=np.float32) * 255,
                                   score=-0.3, threshold=-0.36, match=True, method="occlusion",
                                   params={"patch_sizes": [4]}, seed=0, model_hash="0" * 64, model_name="dlib")


def _tiny_shape_predictor() -> bytes:
    """The small hand-written predictor file of the landmark tests (2 levels of 3 depth-2 trees)."""
    spec = importlib.util.spec_from_file_location("test_landmarks", HERE.parent / "tests" / "faces" /
                                                  "test_landmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._tiny_predictor()


def main() -> None:
    dlib = dlib_model_path().read_bytes()
    for size in (2048, 20_000):
        _write("dlib_dat", f"prefix_{size}.dat", dlib[:size])
    # 5-byte records: a 4-byte offset (top bit: within the first 64 KiB), then the new byte
    for name, patches in {"stem_stride": [(19768 | 1 << 31, 3)], "weight_exponent": [(355 | 1 << 31, 0x7E)],
                          "two_patches": [(94290 | 1 << 31, 0xA3), (5_000_000, 0x01)]}.items():
        _write("dlib_patches", name, b"".join(o.to_bytes(4, "little") + bytes([v]) for o, v in patches))
    for name, patches in {"options_version": [(15 | 1 << 31, 9)], "early_weight": [(1200 | 1 << 31, 0x7E)],
                          "late_weight": [(600_000, 0x01), (40 | 1 << 31, 0x02)]}.items():
        _write("face_detector_patches", name, b"".join(o.to_bytes(4, "little") + bytes([v]) for o, v in patches))

    _write("shape_predictor", "tiny.dat", _tiny_shape_predictor())
    _write("shape_predictor", "prefix_4096.dat", shape_predictor_path().read_bytes()[:4096])

    detector = face_detector_path().read_bytes()
    for size in (1024, 16_384):
        _write("face_detector", f"prefix_{size}.dat", detector[:size])

    _write("fxd", "decoder_v1.fxd", V1_FIXTURE.read_bytes())
    spec, metadata = load_spec(V1_FIXTURE, legacy_warning=False)
    save_spec(CORPUS / "fxd" / "decoder_v2.fxd", spec, metadata)
    save_spec(CORPUS / "fxd" / "face_model_v2.fxn", _tiny_face_spec(),
              {"kind": FACE_MODEL_KIND, "metric": "cosine", "threshold": 0.3, "facts": {}})
    _fxn_seeds()

    explanation = _explanation(6)
    (CORPUS / "results").mkdir(parents=True, exist_ok=True)
    explanation.save(CORPUS / "results" / "explanation_v3.npz")
    _store_seeds()
    buffer = io.BytesIO()  # version 1: the same arrays, no checksum
    meta = json.loads(str(np.load(CORPUS / "results" / "explanation_v3.npz")["meta"]))
    meta["version"] = 1
    del meta["sources"]
    del meta["checksum"]
    np.savez(buffer, similarity=explanation.similarity, dissimilarity=explanation.dissimilarity,
             images=explanation.images, meta=np.array(json.dumps(meta)))
    _write("results", "explanation_v1.npz", buffer.getvalue())

    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        _write("image", f"tiny.{fmt.lower()}", buffer.getvalue())
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    bomb = bytearray(buffer.getvalue())
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height (its CRC no longer matches)
    _write("image", "bomb_header.png", bytes(bomb))
    for name, graph in _onnx_seeds().items():
        _write("onnx", name, graph)


def _store_seeds() -> None:
    """One seed per file of the template store: the byte that selects the file, then the file itself."""
    from fuzz.targets import store_template

    files = store_template()
    for k, name in enumerate(sorted(files)):
        _write("store", name.replace("/", "_"), bytes([k]) + files[name])


def _tiny_face_spec(mean=127.5, scale=1 / 127.5) -> NetworkSpec:
    """An 8x8-input face network (conv, PReLU, max pool, global pool, dense) for the fxd and fxn seeds."""
    face = NetworkSpec((3, 8, 8), np.full(3, mean, np.float32), np.full(3, scale, np.float32))
    x = face.add("conv", 0, weight=np.full((4, 3, 3, 3), 0.1, np.float32), bias=np.zeros(4, np.float32),
                 stride=(2, 2), padding=(1, 1))
    x = face.add("prelu", x, slope=np.full(4, 0.25, np.float32))
    x = face.add("max_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    x = face.add("global_avg_pool", x)
    face.add("dense", x, weight=np.eye(4, dtype=np.float32), bias=None)
    return face


def _fxn_seeds() -> None:
    """Tiny face-model files: calibrated (with its record), without a threshold, and one reading BGR."""
    record = {"threshold": 0.3, "fmr": 1e-3, "achieved_fmr": 0.0, "fnmr": 0.1, "genuine_pairs": 10,
              "impostor_pairs": 45, "dataset": "johns", "date": "2026-01-01T00:00:00+00:00", "fxplain_version": "0"}
    calibrated = fxplain.FaceModel(_tiny_face_spec(), name="tiny.onnx", metric="cosine", threshold=0.3,
                                   facts={"format": "onnx", "sha256": "0" * 64})
    (CORPUS / "fxn").mkdir(parents=True, exist_ok=True)
    calibrated.save(CORPUS / "fxn" / "calibrated.fxn", calibration=record)
    unset = fxplain.FaceModel(_tiny_face_spec(), name="tiny.onnx", metric="squared_euclidean", threshold=None)
    unset.save(CORPUS / "fxn" / "no_threshold.fxn")
    bgr = fxplain.FaceModel(_tiny_face_spec(mean=100.0, scale=1 / 50), name="bgr.onnx", metric="cosine",
                            threshold=0.5, facts={"channels": "BGR", "mean": [100.0] * 3, "std": [50.0] * 3})
    bgr.save(CORPUS / "fxn" / "bgr.fxn")


def _onnx_seeds() -> dict[str, bytes]:
    """Tiny ONNX face-model graphs (16x16 input, 4-d embedding) covering the operators the import maps."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)

    def const(name: str, shape) -> object:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    def model(nodes, initializers, input_dims, opset=17) -> bytes:
        graph = helper.make_graph(nodes, "seed", [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_dims)],
                                  [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4])],
                                  initializers)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        proto.ir_version = 8  # what onnxruntime and torch's exporter read and write
        return proto.SerializeToString()

    bn = [const("g", (4,)), const("b", (4,)), const("m", (4,)),
          numpy_helper.from_array(np.ones(4, np.float32), "v")]
    residual = model([
        helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "g", "b", "m", "v"], ["n1"]),
        helper.make_node("PRelu", ["n1", "slope"], ["p1"]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Add", ["c2", "p1"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["gp"]),
        helper.make_node("Sigmoid", ["gp"], ["gate"]),
        helper.make_node("Mul", ["r", "gate"], ["se"]),
        helper.make_node("MaxPool", ["se"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Flatten", ["mp"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["embedding"], transB=1),
    ], [const("w1", (4, 3, 3, 3)), *bn, const("slope", (4, 1, 1)), const("w2", (4, 2, 3, 3)),
        const("fc", (4, 64)), const("fcb", (4,))], ["N", 3, 16, 16])
    shapes = model([
        helper.make_node("Pad", ["image", "pads"], ["pd"], mode="constant"),
        helper.make_node("Conv", ["pd", "w1"], ["c1"], dilations=[2, 2]),
        helper.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.1),
        helper.make_node("Concat", ["l1", "l1"], ["cat"], axis=1),
        helper.make_node("ReduceMean", ["cat"], ["rm"], axes=[2, 3], keepdims=1),
        helper.make_node("Shape", ["rm"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["rm", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "mm"], ["embedding"]),
    ], [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"), const("w1", (4, 3, 3, 3)),
        numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
        const("mm", (8, 4))], [1, 3, 16, 16], opset=13)
    return {"residual_se.onnx": residual, "shape_chain.onnx": shapes}


if __name__ == "__main__":
    main()
