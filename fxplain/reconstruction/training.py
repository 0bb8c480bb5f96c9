"""Training face-reconstruction decoders in the C core.

:func:`train_decoder` fits a :class:`~fxplain.reconstruction.Decoder` to a
face model. Every step runs in fxplain's core on oneDNN:

1. the decoder's forward pass on a mini-batch of embeddings (training plan);
2. the pixel loss (L1 or L2) against the face chips, in C;
3. the identity loss ``λ · mean ‖E(G(f)) − f‖²``: the frozen face model E
   embeds the reconstructions, and its backward-data pass (the gradients
   machinery) carries ``∂loss/∂E`` back to the reconstructed pixels;
4. the decoder's backward pass (backward-data and backward-weights
   primitives) and an Adam step in C; the cached plans take the new weights
   without being rebuilt.

Training data are re-drawn every ``refresh_every`` steps as a pool of
augmented chips (:mod:`fxplain.reconstruction.augment`), each re-embedded by
the model. Outside the face ellipse the targets are grey and (by default)
the model sees each face in front of another chip's background
(``background=``), so the decoder's feature cannot hide in the background.
An optional dimension-consistency loss (``dimension_weight``) asks that a
change of one dimension be drawn where the model reads it.
Everything random derives from ``seed`` and the step number, so a run
resumed from a checkpoint continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError, ModelFormatError
from .._util.progress import Progress, stage_printer
from .._util.validation import check_positive_int, is_finite_number
from ..datasets import load_johns
from ..faces.collection import example_faces, faces_in_photos
from ..faces.inputs import align_batch, load_photo, to_pixel_batch
from ..models.face_model import FaceModel
from ..runtime.layers import LAYERS
from .augment import BACKGROUNDS, Augmentation, separate_background
from .augment import augment as _augment_images
from .decoder import Decoder, decoder_spec

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_CHECKPOINT_VERSION = 1


@dataclass
class DecoderTraining:
    """Hyper-parameters of :func:`train_decoder` (all saved with the decoder)."""

    steps: int = 1500
    seed: int = 0
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 100        # linear learning-rate ramp: without it the last ReLU block can die in ~10 steps
    pixel_loss: str = "l1"
    pixel_weight: float = 1.0
    identity_weight: float = 0.1
    widths: tuple[int, ...] = (128, 128, 64, 32, 16)
    leak: float = 0.2              # leaky-ReLU slope of the decoder's blocks (0: ReLU, which can die; decoder_spec)
    pool_size: int = 256
    refresh_every: int = 100
    augmentation: Augmentation = field(default_factory=Augmentation)
    background: str = "random"     # outside the face: "random", "neutral" or "keep" (separate_background)
    face_scale: float = 0.85       # training ellipse / the 45 % face ellipse: 0.85 also greys the rim
    dimension_weight: float = 0.0  # dimension-consistency loss (off: it did not pay, docs/reconstruction.md)
    dimension_pairs: int = 8       # embeddings of a batch decoded again with one dimension moved
    dimension_delta: float = 1.0   # the move, in standard deviations of the dimension

    def check(self) -> None:
        for name in ("steps", "batch_size", "pool_size", "refresh_every", "dimension_pairs"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, (int, np.integer)) \
                or self.warmup_steps < 0:
            raise InvalidInputError(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InvalidInputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.background not in BACKGROUNDS:
            raise InvalidInputError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.pixel_loss not in ("l1", "l2"):
            raise InvalidInputError(f"pixel_loss must be 'l1' or 'l2', got {self.pixel_loss!r}")
        if self.dimension_pairs > self.batch_size:
            raise InvalidInputError(f"dimension_pairs ({self.dimension_pairs}) must not exceed batch_size "
                                    f"({self.batch_size})")
        if not (is_finite_number(self.face_scale) and 0.3 <= self.face_scale <= 1.5):
            raise InvalidInputError(f"face_scale must be a number in [0.3, 1.5], got {self.face_scale!r}")
        if not (is_finite_number(self.leak) and 0 <= self.leak < 1):
            raise InvalidInputError(f"leak must be a number in [0, 1), got {self.leak!r}")
        for name in ("learning_rate", "pixel_weight", "identity_weight", "dimension_weight", "dimension_delta"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0 or (name in ("learning_rate", "dimension_delta") and value == 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0 (> 0 for the rate and the delta), "
                                        f"got {value!r}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["widths"] = list(self.widths)
        out["augmentation"] = self.augmentation.to_dict()
        return out


#: Named training sets: dlib's johns chips, every face in the photos that ship with
#: fxplain's dependencies (:func:`fxplain.faces.collection.example_photos`), or both.
TRAINING_SETS = ("johns", "photos", "johns+photos")


def training_images(images: Any, size: tuple[int, int]) -> np.ndarray:
    """Aligned chips for training as uint8 ``(N, H, W, 3)``.

    ``images`` is a named set (:data:`TRAINING_SETS`), a folder (searched
    recursively, so one sub-folder per identity works), a list of image files
    or arrays, or a uint8 array ``(N, H, W, 3)``. Images of the model's input
    size are taken as aligned chips. Any other image is a photo: *every* face
    the detector finds in it is aligned as a chip
    (:func:`fxplain.faces.collection.faces_in_photos`) — except in an
    ``(N, H, W, 3)`` array of another size (johns' 150x150 dlib chips for a
    112x112 model), where each image is one face and its largest is aligned.
    """
    size = tuple(int(s) for s in size)
    if isinstance(images, str) and images in TRAINING_SETS:
        return np.concatenate([_named_set(name, size) for name in images.split("+")])
    if isinstance(images, np.ndarray) and images.ndim == 4:
        if images.shape[1:3] != size and images.dtype == np.uint8:
            return align_batch(images, size)
        return np.clip(np.rint(to_pixel_batch(images, size)), 0, 255).astype(np.uint8)
    if isinstance(images, (str, os.PathLike)):
        root = Path(images)
        if not root.is_dir():
            raise InvalidInputError(f"training image folder not found: {root}")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise InvalidInputError(f"{root} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
        images = files
    if not isinstance(images, (list, tuple)) or not images:
        raise InvalidInputError(f"training images must be one of {TRAINING_SETS}, a folder, a non-empty list of "
                                f"images or an (N, H, W, 3) array, got {type(images).__name__}")
    chips = []
    for item in images:
        if hasattr(item, "aligned_chip") or (isinstance(item, np.ndarray) and item.dtype != np.uint8):
            # a Face (its own chip) or float pixels (a chip, never a photo)
            chips.append(np.clip(np.rint(to_pixel_batch([item], size)), 0, 255).astype(np.uint8))
            continue
        image, _ = load_photo(item)
        chips.append(image[None] if image.shape[:2] == size else faces_in_photos(image, size))
    return np.concatenate(chips)


def _named_set(name: str, size: tuple[int, int]) -> np.ndarray:
    if name == "photos":
        return example_faces(size)
    chips = load_johns()[0]
    return chips if chips.shape[1:3] == size else align_batch(chips, size)


def describe_images(images: Any) -> str:
    """A short description of a training set argument, for the decoder's record."""
    if isinstance(images, (str, os.PathLike)):
        return str(images)
    if isinstance(images, (list, tuple)):
        return f"{len(images)} files or images"
    return f"array of shape {tuple(np.shape(images))}"


class _Adam:
    """Adam state of every trainable decoder layer; the arithmetic is the core's."""

    def __init__(self, spec):
        self.params = {}
        for node, layer in enumerate(spec.layers, start=1):
            if LAYERS[layer.kind].trainable:
                self.params[node] = [layer.params["weight"].ravel().astype(np.float32),
                                     np.asarray(layer.params["bias"], np.float32).copy()]
        self.moments = {j: [[np.zeros_like(a), np.zeros_like(a)] for a in arrays] for j, arrays in self.params.items()}

    def step(self, net, grads, lr: float, step: int) -> None:
        for node, (dw, db) in grads.items():
            for array, grad, (m, v) in zip(self.params[node], (dw, db), self.moments[node]):
                _core.adam_update(array, grad, m, v, lr, 0.9, 0.999, 1e-8, step)
            net.set_parameters(node, self.params[node][0], self.params[node][1])

    def write_into(self, spec) -> None:
        for node, (w, b) in self.params.items():
            layer = spec.layers[node - 1]
            layer.params["weight"] = w.reshape(layer.params["weight"].shape).copy()
            layer.params["bias"] = b.copy()


def _digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def train_decoder(model, images: Any, *, steps: int = 1500, seed: int = 0, checkpoint: str | os.PathLike | None = None,
                  checkpoint_every: int = 250, show_progress: bool = True, **options) -> Decoder:
    """Train a face-reconstruction decoder for ``model`` on aligned face chips.

    Parameters
    ----------
    model : FaceModel
        The (frozen) face model whose embeddings the decoder inverts.
    images
        ``"johns"``, ``"photos"`` (every face of the example photos),
        ``"johns+photos"``, a folder of aligned chips and/or photos
        (sub-folders per identity are fine; every face of a photo becomes a
        chip), a list of image files or arrays, or a uint8 array
        ``(N, H, W, 3)`` (see :func:`training_images`). A named set wins over
        a folder of the same name.
    steps, seed
        Number of Adam steps; everything random derives from ``seed``.
    checkpoint
        Optional path of a resumable checkpoint (``.npz`` of raw arrays, no
        pickle). Written every ``checkpoint_every`` steps and at the end; if it
        exists with the same model, images and settings, training resumes from
        it (and continues exactly as an uninterrupted run would).
    show_progress
        A progress bar with the current losses.
    **options
        Any field of :class:`DecoderTraining` (``batch_size``,
        ``learning_rate``, ``pixel_loss``, ``identity_weight``, ``widths``,
        ``augmentation``, ``background`` (``"random"``, ``"neutral"``,
        ``"keep"``), ``face_scale`` (the training ellipse's size relative to
        :func:`fxplain.models.regions.face_ellipse`), ``dimension_weight`` ...).

    Returns
    -------
    Decoder
        With ``info`` recording the settings, the training set (count and
        SHA-256), the loss history and the time taken.
    """
    if not isinstance(model, FaceModel):
        raise InvalidInputError("train_decoder needs a model from fxplain.load_model: the identity loss runs the "
                                "model's backward pass in fxplain's core")
    unknown = set(options) - set(DecoderTraining.__dataclass_fields__)
    if unknown:
        raise InvalidInputError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    config = DecoderTraining(steps=steps, seed=seed, **options)
    config.check()
    check_positive_int("checkpoint_every", checkpoint_every)
    say = stage_printer(show_progress, "training decoder")
    say(f"stage 1/3: collecting training faces ({describe_images(images)})")
    chips = training_images(images, model.input_size)
    if len(chips) < 2:
        raise InvalidInputError(f"need at least 2 training images, got {len(chips)}")
    h, w = model.input_size
    say(f"stage 2/3: embedding {len(chips)} chips")
    embeddings = model.embed(chips)
    spec = decoder_spec(model.embedding_size, (h, w), widths=config.widths, seed=seed, leak=config.leak,
                        embedding_mean=embeddings.mean(axis=0), embedding_std=embeddings.std(axis=0) + 1e-3)
    # what a checkpoint must match to be resumed (any step count: a run may be extended)
    settings = {k: v for k, v in config.to_dict().items() if k != "steps"}
    identity = {"model_hash": model.model_hash, "images_sha256": _digest(chips), "settings": settings}
    adam = _Adam(spec)
    history: dict[str, list[float]] = {"step": [], "pixel": [], "identity": []}
    start_step, elapsed = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        start_step, elapsed, history = _load_checkpoint(Path(checkpoint), identity, adam)
    adam.write_into(spec)
    decoder = Decoder(spec, model_hash=model.model_hash)
    net = decoder._net
    begun = time.perf_counter()
    pool_emb = pool_target = None
    say(f"stage 3/3: {config.steps - start_step} training steps"
        + (f" (resumed at step {start_step})" if start_step else "") + "; time left shown as it runs")
    with Progress(config.steps, "training decoder", show_progress) as progress:
        progress.update(start_step)
        for step in range(start_step + 1, config.steps + 1):
            if pool_emb is None or (step - 1) % config.refresh_every == 0:
                round_index = (step - 1) // config.refresh_every
                pool_emb, pool_target = _pool(model, chips, config, round_index)
            pick = np.random.default_rng([config.seed, 1, step]).integers(0, config.pool_size, config.batch_size)
            emb, target = pool_emb[pick], pool_target[pick]
            moves = None
            if config.dimension_weight > 0:
                moves = _dimension_moves(config, step, decoder.embedding_std)
                emb = np.concatenate([emb, emb[:len(moves)] + moves])
            out = net.train_forward(emb.reshape(len(emb), 1, 1, -1), True)
            real = len(target)
            pixel_loss, pixel_grad = _core.pixel_loss(out[:real], target, config.pixel_loss, config.pixel_weight)
            grad = np.zeros_like(out)
            grad[:real] = pixel_grad
            identity_loss = 0.0
            if config.identity_weight > 0 or moves is not None:
                identity_loss, grad_id = _identity_gradient(model, out, emb, config, moves)
                grad += grad_id
            _, grads = net.train_backward(grad)
            adam.step(net, grads, _learning_rate(config, step), step)
            history["step"].append(step)
            history["pixel"].append(round(float(pixel_loss), 6))
            history["identity"].append(round(float(identity_loss), 6))
            progress.update(1)
            progress.set_postfix(f"pixel {pixel_loss:.4f} identity {identity_loss:.4f}")
            if checkpoint is not None and (step % checkpoint_every == 0 or step == config.steps):
                _save_checkpoint(Path(checkpoint), identity, adam, step,
                                 elapsed + time.perf_counter() - begun, history)
    adam.write_into(spec)
    info = {"trained_on": f"{len(chips)} images", **identity, "steps": config.steps,
            "description": describe_images(images),
            "seconds": round(elapsed + time.perf_counter() - begun, 1), "history": history}
    return Decoder(spec, model_hash=model.model_hash, info=info)


def _learning_rate(config: DecoderTraining, step: int) -> float:
    """The step's learning rate: a linear ramp over ``warmup_steps``, then constant.

    Adam moves every weight by about the learning rate per step whatever the
    gradient's size, and its second-moment estimate is poor in the first
    steps; at full rate from step 1 the consistent early push of the pixel
    loss drove all of the last block's ReLUs below zero within ~10 steps on
    some CPUs (the decoder then draws one face for every feature).
    """
    return config.learning_rate * min(1.0, step / config.warmup_steps) if config.warmup_steps else config.learning_rate


def _pool(model, chips: np.ndarray, config: DecoderTraining, round_index: int):
    """A fresh pool of augmented chips and their embeddings, from (seed, round)."""
    rng = np.random.default_rng([config.seed, 0, round_index])
    indices = rng.integers(0, len(chips), config.pool_size)
    inputs, targets = separate_background(_augment_images(chips, indices, rng, config.augmentation),
                                          config.background, rng, face_scale=config.face_scale)
    emb = model.embed_pixels(inputs).astype(np.float32)
    target = np.ascontiguousarray(targets.transpose(0, 3, 1, 2) / np.float32(255.0) - np.float32(0.5))
    return emb, target


def _dimension_moves(config: DecoderTraining, step: int, std: np.ndarray) -> np.ndarray:
    """``(P, D)``: for the first P embeddings of the batch, one dimension k each moved by ``± delta · std_k``."""
    rng = np.random.default_rng([config.seed, 2, step])
    d = len(std)
    k = rng.integers(0, d, config.dimension_pairs)
    moves = np.zeros((config.dimension_pairs, d), np.float32)
    moves[np.arange(len(k)), k] = rng.choice([-1.0, 1.0], len(k)) * config.dimension_delta * std[k]
    return moves


def _identity_gradient(model: FaceModel, out: np.ndarray, emb: np.ndarray, config: DecoderTraining,
                       moves: np.ndarray | None):
    """Identity (and dimension-consistency) losses and their gradient w.r.t. the decoder output.

    The first ``len(out) - P`` outputs are rebuilt real embeddings:
    ``identity_weight · mean_n ‖E(G(f_n)) − f_n‖²``. With ``moves`` (P of
    them), the last P outputs are ``G(f_n + m_n)`` for the first P real ones,
    and the change the model sees must be the move, relative to its size:
    ``dimension_weight · mean_n ‖E(G(f_n + m_n)) − E(G(f_n)) − m_n‖² / ‖m_n‖²``.
    This asks the decoder to render a change of dimension k where the model
    reads dimension k — the correspondence its region maps claim.
    """
    pixels = np.ascontiguousarray((out.transpose(0, 2, 3, 1) + np.float32(0.5)) * np.float32(255.0))
    n_moves = 0 if moves is None else len(moves)
    real = len(out) - n_moves
    losses = []

    def loss_gradient(got: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(got, dtype=np.float64)
        diff = got[:real].astype(np.float64) - emb[:real]
        loss = config.identity_weight * float(np.mean(np.sum(diff ** 2, axis=1)))
        grad[:real] = (2.0 * config.identity_weight / real) * diff
        if n_moves:
            size = np.sum(moves.astype(np.float64) ** 2, axis=1, keepdims=True)
            r = (got[real:].astype(np.float64) - got[:n_moves]) - moves
            loss += config.dimension_weight * float(np.mean(np.sum(r ** 2, axis=1) / size[:, 0]))
            g = (2.0 * config.dimension_weight / n_moves) * r / size
            grad[real:] += g
            grad[:n_moves] -= g
        losses.append(loss)
        return grad

    _, grad_pixels = model.forward_backward(pixels, loss_gradient)
    # pixels = (out + 0.5) * 255, so d out = 255 d pixels (NHWC -> NCHW)
    return losses[0], np.ascontiguousarray(grad_pixels.transpose(0, 3, 1, 2) * np.float32(255.0))


def _save_checkpoint(path: Path, identity: dict, adam: _Adam, step: int, seconds: float, history: dict) -> None:
    arrays = {"header": np.frombuffer(json.dumps({"version": _CHECKPOINT_VERSION, "identity": identity, "step": step,
                                                  "seconds": seconds, "history": history}).encode(), np.uint8)}
    for node, (w, b) in adam.params.items():
        (mw, vw), (mb, vb) = adam.moments[node]
        arrays.update({f"w{node}": w, f"b{node}": b, f"mw{node}": mw, f"vw{node}": vw, f"mb{node}": mb,
                       f"vb{node}": vb})
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, identity: dict, adam: _Adam):
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            if header.get("version") != _CHECKPOINT_VERSION:
                raise ModelFormatError(f"{path}: checkpoint version {header.get('version')} is not "
                                       f"{_CHECKPOINT_VERSION}")
            if header["identity"] != json.loads(json.dumps(identity)):
                raise ModelFormatError(f"{path} is a checkpoint of another model, training set or settings; "
                                       f"delete it or choose another path")
            for node in adam.params:
                for slot, key in enumerate(("w", "b")):
                    saved = data[f"{key}{node}"]
                    if saved.shape != adam.params[node][slot].shape:
                        raise ModelFormatError(f"{path}: array {key}{node} has the wrong shape")
                    adam.params[node][slot][:] = saved
                    adam.moments[node][slot][0][:] = data[f"m{key}{node}"]
                    adam.moments[node][slot][1][:] = data[f"v{key}{node}"]
            return int(header["step"]), float(header["seconds"]), header["history"]
    except ModelFormatError:
        raise
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"cannot resume from checkpoint {path}: {exc}") from None
