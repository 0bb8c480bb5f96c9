"""ONNX face-recognition models on the C core: against onnxruntime (forward) and torch autograd (input gradients).

The models are the field's architectures built in PyTorch with random weights
and randomised BatchNorm statistics (``face_architectures.py``), exported with
torch.onnx at two opsets. Full-size IResNet-50 is checked once; the layouts
are checked at reduced width (same operators, same folding) to keep CI fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort  # the test extra installs onnx, onnxruntime and torch: these tests never skip
import pytest
import torch
from face_architectures import export_onnx, iresnet, mobilefacenet, randomize

import fxplain

#: Embeddings against onnxruntime and gradients against torch: max |difference| / max |reference|.
TOLERANCE = 1e-4

ARCHITECTURES = {
    "iresnet18_small": lambda: iresnet(18, small=True),
    "se_iresnet18_small": lambda: iresnet(18, se=True, small=True),
    "mobilefacenet_small": lambda: mobilefacenet(small=True),
}


def _load(path: Path, **options) -> fxplain.FaceModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fxplain.FxplainWarning)  # no threshold: tested separately
        return fxplain.load_model(path, **options)


def _pixels(n: int = 3, size: int = 112, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _normalized(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(((pixels.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(name, opset) -> (path, torch module), exported once per module."""
    folder = tmp_path_factory.mktemp("onnx")
    cache: dict = {}

    def get(name: str, opset: int):
        if (name, opset) not in cache:
            torch.manual_seed(0)
            module = randomize(ARCHITECTURES[name](), seed=1)
            cache[name, opset] = (export_onnx(module, folder / f"{name}_{opset}.onnx", opset=opset), module)
        return cache[name, opset]

    return get


def _check_against_references(path: Path, module) -> None:
    model = _load(path)
    pixels = _pixels()
    got = model.embed(pixels)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": _normalized(pixels)})[0]
    assert got.shape == want.shape
    assert _relative(got, want) <= TOLERANCE
    # input gradient of <embedding, g> against torch autograd (float64 as the tie-breaker)
    g = np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)
    grad = model.input_gradient(pixels, g)
    x = torch.tensor(_normalized(pixels), dtype=torch.float64, requires_grad=True)
    (module.double()(x) * torch.tensor(g, dtype=torch.float64)).sum().backward()
    module.float()
    want_grad = x.grad.numpy().transpose(0, 2, 3, 1) / 127.5  # d/d(pixel) = d/dx / std
    assert _relative(grad, want_grad) <= TOLERANCE


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architectures_match_onnxruntime_and_autograd(exported, name, opset):
    """IResNet, IResNet with squeeze-excitation (sigmoid gate x activation) and MobileFaceNet (depthwise convs)."""
    _check_against_references(*exported(name, opset))


def test_full_size_iresnet50(tmp_path):
    """insightface's IResNet-50 at full width (43.6 M parameters): embeddings within 1e-4 of onnxruntime."""
    torch.manual_seed(0)
    module = randomize(iresnet(50), seed=2)
    path = export_onnx(module, tmp_path / "iresnet50.onnx", opset=13)
    model = _load(path)
    assert model.embedding_size == 512 and model.input_size == (112, 112)
    assert not any(layer.kind == "scale_shift" for layer in model.spec.layers[:1])  # stem BN folded into conv1
    pixels = _pixels(2)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": _normalized(pixels)})[0]
    assert _relative(model.embed(pixels), want) <= TOLERANCE
    with torch.no_grad():
        np.testing.assert_allclose(model.embed(pixels), module(torch.tensor(_normalized(pixels))).numpy(),
                                   rtol=0, atol=TOLERANCE * float(np.abs(want).max()))


def test_batchnorm_folds_into_the_convolution_before_it(exported):
    path, _ = exported("iresnet18_small", 17)
    kinds = [layer.kind for layer in _load(path).spec.layers]
    # the stem conv -> BN -> PReLU becomes conv -> prelu; pre-activation BNs (before a padded conv) stay
    assert kinds[:2] == ["conv", "prelu"]
    assert kinds.count("scale_shift") == 8 + 1  # bn1 of each of the 8 blocks, and bn2 of the head


def test_options_preprocessing_and_channels(exported):
    path, _ = exported("iresnet18_small", 17)
    pixels = _pixels(2)
    base = _load(path).embed(pixels)
    # BGR: the model reads the channels reversed; the spec takes RGB pixels with flipped first-conv weights
    bgr = _load(path, channels="BGR").embed(pixels[..., ::-1].copy())
    np.testing.assert_allclose(bgr, base, rtol=1e-5, atol=1e-6)
    other = _load(path, mean=(120.0, 110.0, 100.0), std=64.0).embed(pixels)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": np.ascontiguousarray(
        ((pixels.astype(np.float32) - np.array([120, 110, 100], np.float32)) / 64.0).transpose(0, 3, 1, 2))})[0]
    assert _relative(other, want) <= TOLERANCE
    for bad in ({"mean": "x"}, {"std": 0}, {"channels": "RGBA"}, {"metric": "l1"}, {"input_size": (112,)},
                {"input_size": (96, 96)}, {"threshold": float("nan")}):
        with pytest.raises(fxplain.InvalidInputError):
            _load(path, **bad)
    with pytest.raises(fxplain.InvalidInputError, match="options of ONNX models"):
        fxplain.load_model("dlib", mean=0.0)


def test_no_threshold_means_decisions_raise_until_one_is_set(exported):
    path, _ = exported("iresnet18_small", 17)
    with pytest.warns(fxplain.FxplainWarning, match="no decision threshold"):
        model = fxplain.load_model(path)
    pixels = _pixels(2)
    assert model.embed(pixels).shape == (2, 128) and not model.has_threshold
    with pytest.raises(fxplain.InvalidInputError, match="calibrate_threshold"):
        model.verify(pixels[0], pixels[1])
    with pytest.raises(fxplain.InvalidInputError, match="calibrate_threshold"):
        fxplain.Explainer(model, method="occlusion").explain(pixels[0], pixels[1])
    model.threshold = 0.3
    v = model.verify(pixels[0], pixels[1])
    assert v.threshold == 0.3 and v.match == (v.score >= 0.3)
    assert fxplain.load_model(path, threshold=0.25).threshold == 0.25


def _graph_model(nodes, inputs, outputs, initializers=(), opset=17):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _image_input(name="image", shape=(1, 3, 16, 16)):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def test_bad_files_and_graphs_raise_model_format_error(exported, tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    path, _ = exported("iresnet18_small", 17)
    data = path.read_bytes()
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    cases = {
        "truncated.onnx": data[: len(data) // 2],
        "garbage.onnx": b"\x08\x07" + bytes(range(256)) * 4,
        "empty.onnx": b"",
        "unsupported_op.onnx": _graph_model([helper.make_node("Conv", ["image", "w"], ["c"], name="conv0"),
                                             helper.make_node("Softmax", ["c"], ["y"], name="head")],
                                            [_image_input()], [out], [weight]).SerializeToString(),
        "two_inputs.onnx": _graph_model([helper.make_node("Add", ["image", "other"], ["y"])],
                                        [_image_input(), _image_input("other")], [out]).SerializeToString(),
        "rank3.onnx": _graph_model([helper.make_node("Relu", ["image"], ["y"])],
                                   [_image_input(shape=(3, 16, 16))], [out]).SerializeToString(),
        "opset9.onnx": _graph_model([helper.make_node("Relu", ["image"], ["y"])], [_image_input()], [out],
                                    opset=9).SerializeToString(),
        "not_a_vector.onnx": _graph_model([helper.make_node("Conv", ["image", "w"], ["y"])], [_image_input()],
                                          [out], [weight]).SerializeToString(),
    }
    messages = {"unsupported_op.onnx": "'head' \\(Softmax\\).*Conv", "two_inputs.onnx": "2 inputs",
                "rank3.onnx": "rank 3", "opset9.onnx": "opset 9", "not_a_vector.onnx": "vector"}
    for name, blob in cases.items():
        bad = tmp_path / name
        bad.write_bytes(blob)
        with pytest.raises(fxplain.ModelFormatError, match=messages.get(name, str(bad))):
            _load(bad)
    with pytest.raises(fxplain.ModelNotFoundError):
        _load(tmp_path / "missing.onnx")


def test_from_torch_gives_the_modules_embeddings_and_gradients():
    torch.manual_seed(0)
    module = randomize(iresnet(18, small=True), seed=3).train()  # from_torch exports in eval mode, restores
    with pytest.warns(fxplain.FxplainWarning, match="no decision threshold"):
        model = fxplain.from_torch(module)
    assert module.training and model.facts["format"] == "torch"
    module.eval()
    pixels = _pixels(2)
    x = torch.tensor(_normalized(pixels), requires_grad=True)
    want = module(x)
    assert _relative(model.embed(pixels), want.detach().numpy()) <= TOLERANCE
    want.sum().backward()
    assert _relative(model.input_gradient(pixels, np.ones(128, np.float32)),
                     x.grad.numpy().transpose(0, 2, 3, 1) / 127.5) <= TOLERANCE
    # torch tensors as images: channels-last as NumPy, or torch's (N, 3, H, W)
    np.testing.assert_array_equal(model.embed(torch.tensor(pixels)), model.embed(pixels))
    np.testing.assert_array_equal(model.embed(torch.tensor(pixels).permute(0, 3, 1, 2)), model.embed(pixels))
    with pytest.raises(fxplain.InvalidInputError, match="torch.nn.Module"):
        fxplain.from_torch(lambda x: x)
    with pytest.raises(fxplain.InvalidInputError, match="opset"):
        fxplain.from_torch(module, opset=9)


def test_wrap_says_what_to_pass():
    module = randomize(iresnet(18, small=True), seed=3)
    with pytest.raises(fxplain.InvalidInputError, match="from_torch"):
        fxplain.wrap(module, input_size=(112, 112), threshold=0.3)
    with pytest.raises(fxplain.InvalidInputError, match=r"raised .* uint8 NumPy array of shape \(1, 112, 112, 3\)"):
        fxplain.wrap(lambda batch: module(batch), input_size=(112, 112), threshold=0.3)

    def on_tensors(batch):  # returns a tensor that requires grad: taken as it is
        return module(torch.tensor(_normalized(batch), requires_grad=True))

    wrapped = fxplain.wrap(on_tensors, input_size=(112, 112), threshold=0.3)
    with torch.no_grad():
        want = module(torch.tensor(_normalized(_pixels(2)))).numpy()
    np.testing.assert_allclose(wrapped.embed(_pixels(2)), want, rtol=1e-5, atol=1e-6)


class _SpecModule(torch.nn.Module):
    """dlib's network written plainly in PyTorch from its spec (NCHW normalised input), as a user would port it.

    dlib's ``add_prev`` zero-pads both inputs at the end of C, H and W to the larger shape: ``F.pad`` then
    ``+``, which exports as ONNX Pad + Add.
    """

    def __init__(self, spec):
        super().__init__()
        self.layers = [(layer.kind, layer.inputs, {k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                                   for k, v in layer.params.items()}) for layer in spec.layers]
        self.output = spec.output

    def forward(self, x):
        import torch.nn.functional as F

        nodes = [x]
        for kind, inputs, p in self.layers:
            a = nodes[inputs[0]]
            if kind == "conv":
                y = F.conv2d(a, p["weight"], p.get("bias"), p["stride"], p["padding"])
            elif kind == "scale_shift":
                y = a * p["scale"][None, :, None, None] + p["shift"][None, :, None, None]
            elif kind == "relu":
                y = F.relu(a)
            elif kind in ("max_pool", "avg_pool"):
                pool = F.max_pool2d if kind == "max_pool" else F.avg_pool2d
                y = pool(a, p["kernel"], p["stride"], p["padding"])
            elif kind == "sum":
                b = nodes[inputs[1]]
                c, h, w = (max(i, j) for i, j in zip(a.shape[1:], b.shape[1:]))
                a, b = (t if tuple(t.shape[1:]) == (c, h, w) else
                        F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1])) for t in (a, b))
                y = a + b
            elif kind == "global_avg_pool":
                y = a.mean(dim=(2, 3), keepdim=True)
            elif kind == "dense":
                y = F.linear(torch.flatten(a, 1), p["weight"], p.get("bias"))[:, :, None, None]
            else:  # pragma: no cover - dlib's network has no other kinds
                raise NotImplementedError(kind)
            nodes.append(y)
        return torch.flatten(nodes[self.output], 1)


def test_dlibs_network_through_pytorch_and_onnx_reproduces_dlib(model, johns, oracle):
    """dlib's ResNet ported to PyTorch, through from_torch (ONNX in memory): dlib's own embeddings (oracle)."""
    std = 1.0 / np.asarray(model.spec.input_scale, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fxplain.FxplainWarning)
        exported = fxplain.from_torch(_SpecModule(model.spec), input_size=(150, 150),
                                      mean=tuple(model.spec.input_mean), std=tuple(std),
                                      metric="squared_euclidean", threshold=model.threshold)
    images = johns[0]
    assert np.abs(exported.embed(images) - oracle).max() <= 1e-4
    assert [exported.verify(images[0], images[k]).match for k in range(1, 12)] == \
        [model.verify(images[0], images[k]).match for k in range(1, 12)]


@pytest.mark.parametrize("name", ["residual_se.onnx", "shape_chain.onnx"])
def test_small_graphs_of_every_mapped_operator_match_onnxruntime(name):
    """The fuzz seeds: grouped/dilated conv, Pad folded into a conv, ceil_mode pooling, Shape/Gather/Concat/Reshape
    chain, LeakyRelu, Concat, ReduceMean, MatMul, Gemm, a sigmoid gate (fuzz/make_corpus.py)."""
    path = Path(__file__).resolve().parents[2] / "fuzz" / "corpus" / "onnx" / name
    model = _load(path, input_size=(16, 16))
    pixels = _pixels(1, size=16)  # shape_chain.onnx has a static batch of 1
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": _normalized(pixels)})[0]
    assert _relative(model.embed(pixels), want) <= TOLERANCE
