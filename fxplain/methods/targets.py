"""What a perturbed image is measured by: its score against the intact partner.

Perturbation methods and deletion/insertion curves all push batches of
altered images through the model and score each against one reference
embedding; a :class:`ScoreTarget` does that with the C scoring kernel, the
scores optionally centred on the intact pair's score (which keeps streaming
correlation sums well conditioned).
"""

from __future__ import annotations

import numpy as np

from .. import _core
from ..models.scoring import score_kind


class ScoreTarget:
    """Scores ``s(embed(x), partner) − base_score`` of image batches x.

    Parameters
    ----------
    model : EmbeddingModel
        The model whose scores are explained.
    partner_embedding : numpy.ndarray
        ``(D,)`` embedding the perturbed images are scored against.
    base_score : float
        Subtracted from every score (0 for raw scores).
    """

    def __init__(self, model, partner_embedding: np.ndarray, base_score: float = 0.0):
        self.model = model
        self.kind = score_kind(model)
        self.partner = np.ascontiguousarray(partner_embedding, np.float32)
        self.base_score = float(base_score)

    def scores(self, batch: np.ndarray, batch_size: int) -> np.ndarray:
        """float64 ``(N,)`` scores of a float32 ``(N, H, W, 3)`` pixel batch."""
        emb = self.model.embed_pixels(batch, batch_size=batch_size)
        return _core.embedding_scores(self.kind, emb, self.partner) - self.base_score
