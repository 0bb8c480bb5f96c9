"""The face-reconstruction decoder: from a deep feature back to a face.

A :class:`Decoder` G maps a face model's embedding f to an aligned face chip.
It runs on fxplain's oneDNN core like every other network (dense → reshape →
blocks of bilinear ×2 upsampling + 3×3 convolution + ReLU → RGB convolution →
bilinear resize to the model's input size) and is trained by
:func:`fxplain.train_decoder`.

What it explains:

* :meth:`Decoder.reconstruct` — what a feature vector "looks like";
* :meth:`Decoder.dimension_maps` — which facial region each dimension k
  encodes, ``R_k = |G(f) − G(f − δ_k e_k)|`` summed over colour, for all k in
  one decoder batch (δ_k is ``delta`` standard deviations of dimension k over
  the decoder's training set);
* :meth:`Decoder.region_atlas` — the same averaged over a dataset, with the
  region each dimension encodes most (:class:`~fxplain.reconstruction.RegionAtlas`);
* method ``"reconstruction"`` of :class:`fxplain.Explainer` — these maps
  through the margin-decomposition combiner (:mod:`fxplain.methods.decomposition`).

Decoders are saved in fxplain's documented weight format (see
:mod:`fxplain.models.formats.fxspec`: a safetensors container with a
checksummed, versioned record) with their training record; :func:`load_decoder` reads them back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import CoreError, InvalidInputError, ModelFormatError
from ..models.formats.fxspec import load_spec, save_spec
from ..runtime.core_net import build_core_net
from ..runtime.spec import NetworkSpec

#: Stored in every decoder file; load_decoder refuses files of another kind.
DECODER_KIND = "fxplain-decoder"
#: Largest chip side a decoder file may produce (face chips are 112-150 pixels).
MAX_OUTPUT_SIDE = 512


def decoder_spec(embedding_size: int, output_size: tuple[int, int], *, widths=(128, 128, 64, 32, 16),
                 start: int = 5, embedding_mean=None, embedding_std=None, seed: int = 0,
                 leak: float = 0.2) -> NetworkSpec:
    """A freshly initialised decoder network (He-normal weights from ``seed``).

    ``widths[0]`` channels on a ``start``×``start`` grid after the dense layer;
    each further width is one block (bilinear ×2, 3×3 conv, ReLU), so the last
    block works at ``start · 2^(len(widths) − 1)`` pixels; an RGB 3×3 conv and
    a bilinear resize to ``output_size`` follow. The output is NCHW with pixel
    values mapped to ``value / 255 − 0.5``. The input is the embedding
    standardised per dimension with the training set's mean and standard deviation.
    ``leak`` is the negative slope of the blocks' leaky ReLUs (0: plain ReLU).
    Plain ReLUs let a block die outright: with no normalisation layer, the
    first Adam steps can push all of a block's pre-activations below zero, and
    the decoder then draws one face for every feature; a leak keeps a gradient.
    """
    rng = np.random.default_rng(seed)
    d = int(embedding_size)
    mean = np.zeros(d, np.float32) if embedding_mean is None else np.asarray(embedding_mean, np.float32)
    std = np.ones(d, np.float32) if embedding_std is None else np.asarray(embedding_std, np.float32)
    spec = NetworkSpec((d, 1, 1), mean, (1.0 / np.maximum(std, 1e-6)).astype(np.float32))
    c0 = widths[0]
    x = spec.add("dense", 0, weight=_he(rng, (c0 * start * start, d), d), bias=np.zeros(c0 * start * start, np.float32))
    def activation(node: int) -> int:
        return spec.add("leaky_relu", node, alpha=float(leak)) if leak else spec.add("relu", node)

    x = activation(spec.add("reshape", x, shape=(c0, start, start)))
    size, channels = start, c0
    for width in widths[1:]:
        size *= 2
        x = spec.add("resize", x, size=(size, size), mode="bilinear")
        x = spec.add("conv", x, weight=_he(rng, (width, channels, 3, 3), channels * 9),
                     bias=np.zeros(width, np.float32), stride=(1, 1), padding=(1, 1))
        x = activation(x)
        channels = width
    x = spec.add("conv", x, weight=_he(rng, (3, channels, 3, 3), channels * 9) * 0.1,
                 bias=np.zeros(3, np.float32), stride=(1, 1), padding=(1, 1))
    if (size, size) != tuple(output_size):
        spec.add("resize", x, size=tuple(int(s) for s in output_size), mode="bilinear")
    return spec


def _he(rng, shape, fan_in) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def to_uint8(outputs: np.ndarray) -> np.ndarray:
    """Decoder outputs (N, 3, H, W) on the ``value/255 − 0.5`` scale to uint8 images (N, H, W, 3)."""
    return np.clip(np.rint((outputs.transpose(0, 2, 3, 1) + 0.5) * 255.0), 0, 255).astype(np.uint8)


class Decoder:
    """A trained face-reconstruction decoder for one face model.

    Attributes
    ----------
    spec : NetworkSpec
        The decoder network (its input normalisation holds the training set's
        embedding mean and 1/std).
    model_hash : str
        Hash of the face model whose embeddings it decodes.
    output_size : tuple of int
        ``(H, W)`` of the reconstructions (the face model's input size).
    info : dict
        How it was made and how good it is (training images, steps, seed,
        losses, measured quality), saved with it.
    """

    def __init__(self, spec: NetworkSpec, *, model_hash: str, info: dict[str, Any] | None = None):
        shapes = spec.shapes()
        c, h, w = shapes[spec.output]
        if c != 3 or spec.input_shape[1:] != (1, 1):
            raise ModelFormatError(f"a decoder maps (D, 1, 1) embeddings to 3-channel images; got "
                                   f"{spec.input_shape} -> {(c, h, w)}")
        self.spec = spec
        self.model_hash = model_hash
        self.info = dict(info or {})
        self.embedding_size = spec.input_shape[0]
        self.output_size = (h, w)
        self._net = build_core_net(spec)

    def __repr__(self) -> str:
        return (f"Decoder(embedding_size={self.embedding_size}, output_size={self.output_size}, "
                f"model_hash={self.model_hash[:12]}…, steps={self.info.get('steps', '?')})")

    @property
    def embedding_mean(self) -> np.ndarray:
        """Per-dimension mean of the training embeddings (float32, ``(D,)``): the decoder's "average face"."""
        return np.asarray(self.spec.input_mean, np.float32)

    @property
    def embedding_std(self) -> np.ndarray:
        """Per-dimension standard deviation of the training embeddings (float32, ``(D,)``)."""
        return (1.0 / self.spec.input_scale).astype(np.float32)

    def _embeddings(self, embeddings: Any) -> np.ndarray:
        e = np.asarray(embeddings)
        if e.dtype.kind not in "fiu":
            raise InvalidInputError(f"embeddings must be numeric, got dtype {e.dtype}")
        if e.ndim == 1:
            e = e[None]
        if e.ndim != 2 or e.shape[1] != self.embedding_size or e.shape[0] < 1:
            raise InvalidInputError(f"embeddings must have shape (N, {self.embedding_size}) or "
                                    f"({self.embedding_size},), got {np.shape(embeddings)}")
        if not np.all(np.isfinite(e)):
            raise InvalidInputError("embeddings contain NaN or infinite values")
        return np.ascontiguousarray(e, np.float32)

    def decode(self, embeddings: Any, *, batch_size: int = 64) -> np.ndarray:
        """Raw decoder outputs, float32 ``(N, 3, H, W)`` on the ``value/255 − 0.5`` scale."""
        e = self._embeddings(embeddings)
        out = np.empty((len(e), 3) + self.output_size, np.float32)
        for start in range(0, len(e), batch_size):
            chunk = e[start:start + batch_size]
            out[start:start + len(chunk)] = self._net.forward(chunk.reshape(len(chunk), 1, 1, -1))
        if not np.all(np.isfinite(out)):  # weights within the file's bounds can still overflow
            raise CoreError(f"the decoder produced non-finite values for finite embeddings ({self!r})")
        return out

    def reconstruct(self, embeddings: Any, *, batch_size: int = 64) -> np.ndarray:
        """Faces rebuilt from embeddings: uint8 ``(N, H, W, 3)`` (``(H, W, 3)`` for one embedding)."""
        single = np.ndim(embeddings) == 1
        images = to_uint8(self.decode(embeddings, batch_size=batch_size))
        return images[0] if single else images

    def dimension_maps(self, embedding: Any, *, delta: float = 1.0, normalize: bool = True) -> np.ndarray:
        """Which region each dimension encodes: ``R_k = |G(f) − G(f − δ_k e_k)|`` summed over colour.

        ``δ_k = delta · std_k`` (the dimension's spread over the training
        embeddings), so every dimension is moved by a comparable, typical
        amount. All D perturbed embeddings run as one decoder batch.

        Returns float32 ``(D, H, W)``, non-negative; with ``normalize`` each map
        sums to 1 (as :meth:`fxplain.FaceModel.dimension_maps`), so the maps
        plug into :func:`fxplain.methods.decomposition.combine`.
        """
        f = self._embeddings(embedding)
        if len(f) != 1:
            raise InvalidInputError(f"dimension_maps takes one embedding, got {len(f)}")
        if not np.isfinite(delta) or delta == 0:
            raise InvalidInputError(f"delta must be a non-zero finite number, got {delta}")
        d = self.embedding_size
        perturbed = np.repeat(f, d, axis=0)
        perturbed[np.arange(d), np.arange(d)] -= np.float32(delta) * self.embedding_std
        outputs = self.decode(np.concatenate([f, perturbed]), batch_size=d + 1)
        maps = np.abs(outputs[1:] - outputs[:1]).sum(axis=1, dtype=np.float64)
        if normalize:
            totals = maps.reshape(d, -1).sum(axis=1)
            maps /= np.where(totals > 0, totals, 1.0)[:, None, None]
        return maps.astype(np.float32)

    def average_region_maps(self, embeddings: Any, *, delta: float = 1.0) -> np.ndarray:
        """Dataset-level region maps: :meth:`dimension_maps` averaged over many embeddings, ``(D, H, W)``."""
        return self.region_atlas(embeddings, delta=delta).maps

    def region_atlas(self, embeddings: Any, *, delta: float = 1.0):
        """Which region each dimension encodes over a set of faces: a :class:`~fxplain.reconstruction.RegionAtlas`.

        ``embeddings`` ``(N, D)`` of aligned faces (``model.embed(images)``);
        every face's :meth:`dimension_maps` are averaged, each dimension is
        named after the region (eyes, nose, mouth, rest of face, background)
        where its mean map is densest, and the atlas draws the maps over the
        decoder's rebuilt mean face (``atlas.plot()``).
        """
        from .atlas import RegionAtlas

        e = self._embeddings(embeddings)
        return RegionAtlas.from_maps((self.dimension_maps(f, delta=delta) for f in e),
                                     backdrop=self.reconstruct(e.mean(axis=0)), source="decoder")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the decoder (weights and :attr:`info`) to ``path`` in fxplain's weight format."""
        path = Path(path)
        save_spec(path, self.spec, {"kind": DECODER_KIND, "model_hash": self.model_hash, "info": self.info})
        return path


def load_decoder(path: str | os.PathLike, model=None) -> Decoder:
    """Read a decoder saved by :meth:`Decoder.save` (or ``fxplain train-decoder``).

    With ``model``, also check that the decoder was trained on that model's
    embeddings (raises :class:`~fxplain.ModelFormatError` otherwise).
    """
    spec, metadata = load_spec(path)
    if metadata.get("kind") != DECODER_KIND:
        raise ModelFormatError(f"{path} holds a network, but not a decoder (kind {metadata.get('kind')!r})")
    info = metadata.get("info", {})
    if not isinstance(info, dict) or not isinstance(metadata.get("model_hash", ""), str):
        raise ModelFormatError(f"{path}: a decoder's 'info' must be a JSON object and 'model_hash' a string")
    _, out_h, out_w = spec.shapes()[spec.output]
    if not (out_h <= MAX_OUTPUT_SIDE and out_w <= MAX_OUTPUT_SIDE) or (
            model is not None and (out_h, out_w) != tuple(model.input_size)):
        # dimension_maps decodes D + 1 images at once: an absurd output size is a memory bomb
        expected = f"{model.input_size}" if model is not None else f"at most {MAX_OUTPUT_SIDE}x{MAX_OUTPUT_SIDE}"
        raise ModelFormatError(f"{path}: the decoder outputs {out_h}x{out_w} chips, expected {expected}")
    decoder = Decoder(spec, model_hash=metadata.get("model_hash", ""), info=info)
    if model is not None and decoder.model_hash != model.model_hash:
        raise ModelFormatError(f"{path} was trained for model {decoder.model_hash[:12]}…, not for "
                               f"{model.name} ({model.model_hash[:12]}…)")
    return decoder
