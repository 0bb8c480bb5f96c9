"""Bad input raises a clear fxplain exception; nothing crashes the interpreter."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain.models import dlib_model_path

GOOD = np.zeros((150, 150, 3), np.uint8)


@pytest.mark.parametrize(
    "images,fragment",
    [
        (np.zeros((150, 150, 3), np.int32), "dtype"),
        (np.zeros((150, 150, 3), bool), "dtype"),
        (np.zeros((150, 150, 4), np.uint8), "3 colour channels"),
        (np.zeros((2, 150, 150, 2), np.uint8), "3 colour channels"),
        (np.zeros((100, 100, 3), np.uint8), "no face found in the 100x100 photo"),  # a photo: detected
        (np.zeros((100, 100, 3), np.float32), "150x150 aligned face chips"),  # floats are never photos
        (np.zeros((0, 150, 150, 3), np.uint8), "empty batch"),
        ([], "empty list"),
        (np.full((150, 150, 3), np.nan, np.float32), "NaN"),
        (np.full((150, 150, 3), np.inf), "NaN or infinite"),
        ([GOOD, np.zeros((149, 150, 3), np.float32)], "share a size"),
        (np.zeros((1, 2, 150, 150, 3), np.uint8), "shape"),
        (42, "expected an array"),
        ("/nonexistent/face.jpg", "not found"),
    ],
)
def test_embed_rejects_bad_images(model, images, fragment):
    with pytest.raises(fxplain.InvalidInputError, match=fragment):
        model.embed(images)


def test_embed_rejects_corrupt_image_file(model, tmp_path):
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(fxplain.InvalidInputError, match="cannot read image"):
        model.embed(path)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "8"])
def test_embed_rejects_bad_batch_size(model, batch_size):
    with pytest.raises(fxplain.InvalidInputError, match="batch_size"):
        model.embed(GOOD, batch_size=batch_size)


def test_score_rejects_wrong_shapes(model):
    with pytest.raises(fxplain.InvalidInputError, match="shape"):
        model.score(np.zeros(127), np.zeros(128))
    with pytest.raises(fxplain.InvalidInputError, match="finite"):
        model.score(np.full(128, np.nan), np.zeros(128))


def test_non_face_of_the_right_shape_works(model):
    noise = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    emb = model.embed(noise)
    assert emb.shape == (2, 128) and np.all(np.isfinite(emb))


# ---- model files -----------------------------------------------------------


@pytest.fixture(scope="module")
def dlib_bytes() -> bytes:
    return dlib_model_path().read_bytes()


def test_missing_model_file(tmp_path):
    with pytest.raises(fxplain.ModelNotFoundError, match="not found"):
        fxplain.load_model(tmp_path / "missing.dat")
    with pytest.raises(fxplain.ModelNotFoundError, match="not a file"):
        fxplain.load_model(tmp_path)


def test_missing_default_model(monkeypatch, tmp_path):
    monkeypatch.setenv("FXPLAIN_DLIB_MODEL", str(tmp_path / "nothing.dat"))
    with pytest.raises(fxplain.ModelNotFoundError, match="FXPLAIN_DLIB_MODEL"):
        fxplain.load_model("dlib")


@pytest.mark.parametrize("keep", [0, 1, 5, 17, 300, 1000, 19296, 19300, 2_000_000, 22_334_910, -200, -1])
def test_truncated_model_files(tmp_path, dlib_bytes, keep):
    path = tmp_path / "cut.dat"
    path.write_bytes(dlib_bytes[:keep] if keep >= 0 else dlib_bytes[:len(dlib_bytes) + keep])
    with pytest.raises(fxplain.ModelFormatError):
        fxplain.load_model(path)


@pytest.mark.parametrize("position", [0, 2, 5, 120, 290, 300, 330, 19300, 19310, 22_334_906, 22_465_999])
def test_corrupted_model_files(tmp_path, dlib_bytes, position):
    """A damaged structural byte is refused with ModelFormatError, never a crash."""
    data = bytearray(dlib_bytes)
    data[position] ^= 0xA5
    path = tmp_path / "bad.dat"
    path.write_bytes(bytes(data))
    with pytest.raises(fxplain.ModelFormatError):
        fxplain.load_model(path)


def test_random_damage_never_crashes(tmp_path, dlib_bytes, model):
    """Random byte changes either fail cleanly, or load a model that says its weights are unverified."""
    rng = np.random.default_rng(0)
    structural = list(range(400)) + list(range(len(dlib_bytes) - 80, len(dlib_bytes)))
    for trial in range(25):
        data = bytearray(dlib_bytes)
        for position in rng.choice(structural, size=3):
            data[position] = rng.integers(0, 256)
        path = tmp_path / f"fuzz{trial}.dat"
        path.write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                damaged = fxplain.load_model(path)
            except fxplain.ModelFormatError:
                continue
        warned = any(issubclass(w.category, fxplain.UnverifiedWeightsWarning) for w in caught)
        assert warned == (bytes(data) != dlib_bytes)
        assert warned or np.array_equal(damaged.embed(GOOD), model.embed(GOOD))


def test_a_weight_changed_within_its_range_loads_with_a_warning(tmp_path, dlib_bytes):
    """dlib's format has no checksum: only the published model's digest tells a small weight change."""
    data = bytearray(dlib_bytes)
    data[5_000_000] ^= 1  # the lowest mantissa bit of a weight: plausible, parses, computes differently
    path = tmp_path / "changed.dat"
    path.write_bytes(bytes(data))
    with pytest.warns(fxplain.UnverifiedWeightsWarning, match="not the weights of dlib's published model"):
        changed = fxplain.load_model(path)
    assert changed.facts["weights_verified"] is False
    path.write_bytes(dlib_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        published = fxplain.load_model(path)  # the published file by path: verified, no warning
    assert published.facts["weights_verified"] is True


def test_corrupted_default_model_fails_checksum(tmp_path, monkeypatch, dlib_bytes):
    data = bytearray(dlib_bytes)
    data[5_000_000] ^= 1  # inside a weight tensor: parses, but is not dlib's model
    path = tmp_path / "dlib.dat"
    path.write_bytes(bytes(data))
    monkeypatch.setenv("FXPLAIN_DLIB_MODEL", str(path))
    with pytest.raises(fxplain.ModelFormatError, match="SHA-256"):
        fxplain.load_model("dlib")


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(100), b'{"layers": []}', bytes(4096)])
def test_foreign_files(tmp_path, content):
    path = tmp_path / "model.dat"
    path.write_bytes(content)
    with pytest.raises(fxplain.ModelFormatError):
        fxplain.load_model(path)


def test_onnx_is_refused_clearly(tmp_path):
    path = tmp_path / "arcface.onnx"
    path.write_bytes(b"\x08\x07")
    with pytest.raises(fxplain.ModelFormatError, match="ONNX"):
        fxplain.load_model(path)


def test_load_model_rejects_other_types():
    with pytest.raises(fxplain.InvalidInputError):
        fxplain.load_model(42)


# ---- the core's own argument checks (reached only by direct _core use) -------


def test_core_net_argument_checks():
    net = _core.Net(3, 8, 8)
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(fxplain.InvalidInputError, match="float32"):
        net.add_conv(0, w.astype(np.float64), None, (1, 1), (1, 1))
    with pytest.raises(fxplain.InvalidInputError, match="axis 1"):
        net.add_conv(0, np.zeros((4, 2, 3, 3), np.float32), None, (1, 1), (1, 1))
    with pytest.raises(fxplain.InvalidInputError, match="C-contiguous"):
        net.add_conv(0, np.zeros((4, 3, 3, 6), np.float32)[..., ::2], None, (1, 1), (1, 1))
    with pytest.raises(fxplain.InvalidInputError, match="not a node"):
        net.add_relu(5)
    with pytest.raises(fxplain.InvalidInputError, match="stride"):
        net.add_conv(0, w, None, (0, 1), (1, 1))
    with pytest.raises(fxplain.InvalidInputError, match="does not fit"):
        net.add_pool(0, "max", (9, 9), (1, 1), (0, 0))
    with pytest.raises(fxplain.InvalidInputError, match="'max' or 'avg'"):
        net.add_pool(0, "min", (2, 2), (1, 1), (0, 0))
    node = net.add_conv(0, w, np.zeros(4, np.float32), (1, 1), (1, 1))
    with pytest.raises(fxplain.InvalidInputError, match="not finalized"):
        net.forward(np.zeros((1, 8, 8, 3), np.float32))
    net.finalize(node)
    with pytest.raises(fxplain.InvalidInputError, match="finalized"):
        net.add_relu(node)
    with pytest.raises(fxplain.InvalidInputError, match="axis 1"):
        net.forward(np.zeros((1, 9, 8, 3), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="at least one image"):
        net.forward(np.zeros((0, 8, 8, 3), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="batch size"):
        net.step_count(0)
    with pytest.raises(fxplain.InvalidInputError, match="must be a layer node"):
        _core.Net(3, 8, 8).finalize(0)
    with pytest.raises(fxplain.InvalidInputError, match="positive"):
        _core.Net(0, 8, 8)


def test_float_images_on_the_0_1_scale_are_refused(model, johns):
    """A 0-1 float image read as 0-255 pixels is nearly black and every pair "matches": refused."""
    unit = johns[0][:2].astype(np.float32) / 255.0
    with pytest.raises(fxplain.InvalidInputError, match="0-255 scale.*multiply by 255"):
        model.embed(unit)
    with pytest.raises(fxplain.InvalidInputError, match="0-255 scale"):
        model.verify(unit[0], unit[1])
    with pytest.raises(fxplain.InvalidInputError, match="0-255 scale"):
        fxplain.Explainer(model, method="occlusion").explain(unit[0], unit[1])
    # the same images on the 0-255 scale, and an all-black float image (the same on both scales), pass
    assert np.allclose(model.embed(unit * 255.0), model.embed(johns[0][:2]), atol=1e-5)
    model.embed(np.zeros((150, 150, 3), np.float32))


def test_a_photo_is_not_told_to_resize(model):
    """The size error must not recommend resize=True: squashing a photo into a chip makes every pair match."""
    photo = np.zeros((480, 640, 3), np.uint8)  # a photo without a face: detection finds none, says so
    with pytest.raises(fxplain.InvalidInputError, match="no face found in the 640x480 photo") as info:
        model.embed(photo)
    assert "resize=True" not in str(info.value)
    with pytest.raises(fxplain.InvalidInputError, match="aligned face chips") as info:
        model.embed(photo.astype(np.float32))  # float pixels are never taken for a photo
    assert "resize=True" not in str(info.value)


def test_absurd_pixel_values_are_refused(model):
    """Finite but absurd pixels (3e38) would give embeddings near 1e35 and non-finite maps: refused."""
    with pytest.raises(fxplain.InvalidInputError, match="0-255 scale.*magnitude 3e"):
        model.embed(np.full((150, 150, 3), 3e38, np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="0-255 scale"):
        model.score_gradient(np.full((150, 150, 3), -2e4, np.float32), np.zeros(128))
    model.embed(np.full((150, 150, 3), 300.0, np.float32))  # off the range a little: a noisy path point


def test_non_finite_embeddings_are_an_error_not_an_answer(model, johns, tmp_path):
    """A weight that is finite but huge (one flipped exponent byte in a file) makes every embedding NaN."""
    import copy

    from fxplain.models import FaceModel

    spec = copy.deepcopy(model.spec)
    spec.layers[0].params["weight"] = spec.layers[0].params["weight"].copy()
    spec.layers[0].params["weight"].flat[0] = 1.7e38
    broken = FaceModel(spec, name="broken", metric=model.metric, threshold=model.threshold)
    with pytest.raises(fxplain.CoreError, match="non-finite embeddings"):
        broken.embed(johns[0][:2])
    with pytest.raises(fxplain.CoreError, match="non-finite embeddings"):
        broken.score_gradient(johns[0][:1], model.embed(johns[0][1])[0])
    with pytest.raises(fxplain.CoreError, match="non-finite"):
        fxplain.Explainer(broken, method="occlusion", patch_sizes=(50,)).explain(johns[0][0], johns[0][1])
    with pytest.raises(fxplain.CoreError, match="non-finite"):
        broken.dimension_maps(johns[0][0])
    with pytest.raises(fxplain.CoreError, match="non-finite"):
        broken.input_gradient(johns[0][:1], np.ones(128))


@pytest.mark.parametrize("position,value,fragment", [
    (19768, 0x03, r"layer 4 \(max_pool.*'stride': \[3, 2\]"),     # the stem max-pool's stride 2 -> 3
    (94290, 0xA3, r"layer 8 \(conv.*'stride': \[1, 163\]"),       # a conv stride 1 -> 163
    (19772, 0x01, r"layer 4 \(max_pool.*'padding': \[1, 0\]"),    # a pool padding 0 -> 1
    (355, 0x7E, r"layer 1 \(conv\) weight holds a value of magnitude 1.6e\+38"),  # finite, so no NaN check
])
def test_single_byte_changes_that_used_to_load_silently_are_refused(tmp_path, dlib_bytes, position, value, fragment):
    """An independent campaign found these one-byte mutations loading and moving embeddings past 0.6."""
    data = bytearray(dlib_bytes)
    data[position] = value
    path = tmp_path / "mutated.dat"
    path.write_bytes(bytes(data))
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.load_model(path)


def test_the_architecture_fingerprint_is_the_published_models(model):
    from fxplain.models.formats.dlib import check_dlib_resnet, known_architecture

    assert model.spec.architecture() == known_architecture()
    check_dlib_resnet(model.spec, "dlib")  # the published weights pass the magnitude bound


def test_uint8_images_in_a_list_are_not_taken_for_the_0_1_scale(model):
    """A list is joined as float32; near-black uint8 chips (values 0 and 1) must still pass."""
    dark = np.zeros((150, 150, 3), np.uint8)
    dark[70, 70] = 1
    assert model.embed([dark, dark]).shape == (2, 128)
    with pytest.raises(fxplain.InvalidInputError, match="0-255 scale"):
        model.embed([dark.astype(np.float32), dark])


def test_a_float_beyond_the_doubles_is_refused(tmp_path):
    """Found by the dlib_dat fuzz target: m * 2**e with e near 1100 raised OverflowError."""
    def integer(value: int) -> bytes:
        size = max(1, (value.bit_length() + 7) // 8)
        return bytes([size]) + value.to_bytes(size, "little")

    name = b"loss_metric_2"
    data = integer(1) + integer(len(name)) + name + integer(2**64 - 1) + integer(1050) + bytes(16)
    path = tmp_path / "overflow.dat"
    path.write_bytes(data)
    with pytest.raises(fxplain.ModelFormatError, match=r"2\^1050 is out of range"):
        fxplain.load_model(path)
