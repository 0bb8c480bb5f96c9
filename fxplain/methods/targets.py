"""What a perturbed image is measured by: its score against the intact partner.

Perturbation methods and deletion/insertion curves all push batches of
altered images through the model and score each against one reference
embedding; a :class:`ScoreTarget` does that with the C scoring kernel, the
scores optionally centred on the intact pair's score (which keeps streaming
correlation sums well conditioned). The reference may also be a
:class:`~fxplain.models.scoring.Contrast` (1:N identification): the target
is then the score against its first embedding minus that against its second.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from ..models.scoring import Contrast, score_kind


class ScoreTarget:
    """Scores ``s(embed(x), partner) − base_score`` of image batches x.

    Parameters
    ----------
    model : EmbeddingModel
        The model whose scores are explained.
    partner_embedding : numpy.ndarray or Contrast
        ``(D,)`` embedding the perturbed images are scored against, or a
        :class:`~fxplain.models.scoring.Contrast` ``(g1, g2)``: the scores are
        then ``s(embed(x), g1) − s(embed(x), g2) − base_score``.
    base_score : float
        Subtracted from every score (0 for raw scores).
    """

    def __init__(self, model, partner_embedding: np.ndarray, base_score: float = 0.0):
        self.model = model
        self.kind = score_kind(model)
        if isinstance(partner_embedding, Contrast):
            # the C kernel scores float32 embeddings, as it does the pair's partner
            self.references = tuple(np.ascontiguousarray(e, np.float32)
                                    for e in (partner_embedding.first, partner_embedding.second))
        else:
            self.references = (np.ascontiguousarray(partner_embedding, np.float32),)
        self.base_score = float(base_score)

    def scores(self, batch: np.ndarray, batch_size: int) -> np.ndarray:
        """float64 ``(N,)`` scores of a float32 ``(N, H, W, 3)`` pixel batch."""
        emb = self.model.embed_pixels(batch, batch_size=batch_size)
        if len(self.references) == 1:
            return _core.embedding_scores(self.kind, emb, self.references[0]) - self.base_score
        first, second = (_core.embedding_scores(self.kind, emb, r) for r in self.references)
        return first - second - self.base_score
