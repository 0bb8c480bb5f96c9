"""The base of every explanation method, the :class:`Evidence` it returns, and the method registry.

A method turns a pair into evidence maps for both images: where the pixels
support the match (similarity) and where they argue against it
(dissimilarity). It returns them as an explicit :class:`Evidence` value, with
whatever else it measured in ``extras``; :class:`~fxplain.Explainer` wraps
that into a :class:`~fxplain.PairExplanation`. Methods register themselves
with :func:`register_method`, so the Explainer and the CLI list them from
:data:`METHODS`.

For 1:N identification a method also explains a *contrast*
(:meth:`Method.explain_contrast`): one probe image, and the score difference
``c(x) = s(x, g1) − s(x, g2)`` between two gallery identities
(:class:`~fxplain.models.scoring.Contrast`) in place of a pair's score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._util.errors import InvalidInputError


@dataclass
class Evidence:
    """What a method found for one pair.

    Attributes
    ----------
    similarity, dissimilarity : numpy.ndarray
        Non-negative ``(2, H, W)`` maps of images A and B.
    extras : dict
        JSON-serialisable measurements that travel with the result
        (``contributions``, path gaps, the decoder's weights, ...).
    """

    similarity: np.ndarray
    dissimilarity: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_signed(cls, signed: np.ndarray, extras: dict[str, Any] | None = None) -> Evidence:
        """Split a signed map ``S`` into similarity ``max(S, 0)`` and dissimilarity ``max(−S, 0)``."""
        return cls(np.maximum(signed, 0), np.maximum(-signed, 0), dict(extras or {}))


class Method:
    """Base of the explanation methods: parameters, defaults, validation.

    Subclasses set :attr:`name` and :attr:`defaults`, check their parameters
    in :meth:`validate`, and implement :meth:`explain_pair` (or, for methods
    that treat each image alone, :meth:`evidence`).
    """

    name = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: What the map values measure (shown on colour bars).
    units = "evidence"
    #: Variant names for methods that have them (the first is the default).
    variants: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise InvalidInputError(f"unknown parameter(s) {sorted(unknown)} for method {self.name!r}; "
                                    f"known: {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}
        if self.variants and self.params.get("variant") not in self.variants:
            raise InvalidInputError(f"variant must be one of {', '.join(map(repr, self.variants))}, "
                                    f"got {self.params.get('variant')!r}")
        self.validate()

    def validate(self) -> None:
        """Check :attr:`params` (raise InvalidInputError); may normalise them in place."""

    def for_randomised_model(self, model) -> Method:
        """The same method, to explain a randomised copy of ``model`` (the sanity check)."""
        return type(self)(**self.params)

    def work_units(self, size: tuple[int, int]) -> int:
        """Number of perturbed images one call of :meth:`evidence` runs through the model."""
        raise NotImplementedError

    def evidence(self, model, image: np.ndarray, partner: np.ndarray, base_score: float, seed: int,
                 batch_size: int, progress) -> np.ndarray:
        """Signed (H, W) float64 evidence map of ``image`` against the ``partner`` embedding.

        ``partner`` may also be a :class:`~fxplain.models.scoring.Contrast`
        (see :meth:`explain_contrast`); ``base_score`` is then the intact
        image's contrast score.
        """
        raise NotImplementedError

    def contrast_work_units(self, size: tuple[int, int]) -> int:
        """Number of perturbed images one call of :meth:`explain_contrast` runs through the model."""
        return self.work_units(size)

    def explain_contrast(self, model, probe_pixels: np.ndarray, probe_embedding: np.ndarray, contrast,
                         seed: int, batch_size: int, progress) -> Evidence:
        """:class:`Evidence` of one probe image for the contrast ``c(x) = s(x, g1) − s(x, g2)``.

        ``probe_pixels`` is the validated float32 ``(1, H, W, 3)`` probe,
        ``probe_embedding`` its ``(D,)`` embedding and ``contrast`` a
        :class:`~fxplain.models.scoring.Contrast` of the two gallery
        embeddings. The maps are ``(1, H, W)``: similarity where the probe's
        pixels support g1 over g2, dissimilarity where they support g2 over
        g1. The default runs :meth:`evidence` with the contrast in place of
        the partner and splits the signed map.
        """
        base = float(contrast.score(model.metric, np.asarray(probe_embedding, np.float64)))
        signed = self.evidence(model, np.ascontiguousarray(probe_pixels[0]), contrast, base, seed, batch_size,
                               progress)
        return Evidence.from_signed(signed[None])

    def explain_pair(self, model, pixels: np.ndarray, embeddings: np.ndarray, base_score: float, seed: int,
                     batch_size: int, progress) -> Evidence:
        """:class:`Evidence` for both images of a pair, each against its intact partner.

        ``pixels`` is the validated float32 ``(2, H, W, 3)`` pair, ``embeddings``
        its ``(2, D)`` embeddings and ``base_score`` their score. The default
        runs :meth:`evidence` on each side and splits the signed maps.
        """
        return Evidence.from_signed(np.stack([
            self.evidence(model, np.ascontiguousarray(pixels[side]), np.ascontiguousarray(embeddings[1 - side]),
                          base_score, seed, batch_size, progress) for side in (0, 1)]))


#: Every registered method class, by name.
METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available to ``Explainer(method=cls.name)`` and the CLI."""
    METHODS[cls.name] = cls
    return cls
