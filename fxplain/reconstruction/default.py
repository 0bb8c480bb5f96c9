"""The default decoder of a model: trained once on the johns chips and the example photos' faces, then cached."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

from .._util.errors import InvalidInputError
from ..datasets import cache_dir
from ..models.formats.fxspec import is_version_1, load_spec, save_spec
from .decoder import Decoder, load_decoder
from .training import DecoderTraining, train_decoder

#: The recipe of the default decoder (see docs/reconstruction.md). Changing it
#: changes the cache key, so a stale default is never reused.
DEFAULT_RECIPE = {"images": "johns+photos", "steps": 1500, "seed": 0,
                  # 2: part-swapped chips were garbage before (float64 planes read as float32 by PIL)
                  "augmentation_fix": 2}


def default_decoder_path(model) -> Path:
    """Where :func:`default_decoder` keeps the default decoder of ``model``."""
    recipe = hashlib.sha256(json.dumps({**DEFAULT_RECIPE, **DecoderTraining().to_dict()},
                                       sort_keys=True).encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.name)
    return cache_dir() / "decoders" / f"{name}-{model.model_hash[:16]}-{recipe}.fxd"


def default_decoder(model, *, show_progress: bool = True) -> Decoder:
    """The default decoder of ``model``: loaded from the cache, or trained once and cached.

    The default is :func:`train_decoder` with :data:`DEFAULT_RECIPE`: the 55
    johns chips and every face of the example photos (``"johns+photos"``),
    the default settings (background randomised behind the face, targets
    grey outside it), the same as ``fxplain train-decoder johns+photos``;
    deterministic for a given seed. Training takes a few minutes on two
    cores; later calls load the file. ``FXPLAIN_CACHE_DIR`` moves the cache.
    """
    # one thread trains while the others wait and then load its file: two first
    # calls (an Explainer per thread, say) would otherwise both train and both write
    with _TRAINING:
        return _load_or_train(model, show_progress)


_TRAINING = threading.Lock()


def _load_or_train(model, show_progress: bool) -> Decoder:
    path = default_decoder_path(model)
    if path.exists():
        if is_version_1(path):  # cached by fxplain 0.1: upgrade it once to the checksummed version 2
            save_spec(path, *load_spec(path, legacy_warning=False))
        return load_decoder(path, model)
    if model.input_size != (150, 150):
        raise InvalidInputError(f"the default decoder is trained on 150x150 dlib chips; {model.name} takes "
                                f"{model.input_size}: train one on your own chips with fxplain.train_decoder")
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = path.with_suffix(".checkpoint.npz")
    decoder = train_decoder(model, DEFAULT_RECIPE["images"], steps=DEFAULT_RECIPE["steps"],
                            seed=DEFAULT_RECIPE["seed"], checkpoint=checkpoint, show_progress=show_progress)
    decoder.save(path)
    checkpoint.unlink(missing_ok=True)
    return decoder
