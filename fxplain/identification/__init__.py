"""1:N identification: search a gallery of known identities for a probe face, and explain the ranking.

>>> gallery = fxplain.Gallery(model, "people/")      # one sub-folder of images per identity; cached on disk
>>> r = fxplain.explain_identification(model, "probe.jpg", gallery, top_k=5, method="occlusion")
>>> r.ranking                                          # identities, scores, decisions, images, best first
>>> r.pairs[0]                                         # PairExplanation: the probe against rank 1
>>> r.contrast.similarity, r.contrast.dissimilarity    # why rank 1 rather than rank 2 (or the true mate)

Modules: :mod:`~fxplain.identification.gallery` (the gallery and its
search), :mod:`~fxplain.identification.cache` (embeddings on disk),
:mod:`~fxplain.identification.explain` (the explanation),
:mod:`~fxplain.identification.result` (the result: save, load) and
:mod:`~fxplain.identification.plot` (its figure). See docs/identification.md.
"""

from .explain import explain_identification
from .gallery import Candidate, Gallery
from .result import ContrastMaps, IdentificationExplanation

__all__ = ["Candidate", "ContrastMaps", "Gallery", "IdentificationExplanation", "explain_identification"]
