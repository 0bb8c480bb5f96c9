"""Integrated gradients of the pair score along a straight path to the image.

For image A explained against its partner B (both aligned chips of the
model's input size), the score ``s(x) = s(embed(x), b)`` is integrated along
the straight path ``x_t = Z + t (A − Z)`` from a baseline image Z:

    IG(p) = (A − Z)_p · Σ_j w_j · mean_ε ∂s/∂x_p (x_{t_j} + ε),   summed over colour,

with ``steps`` nodes ``t_j = u_j^power`` (``u_j`` midpoints, weights
``w_j = dt/du · du``; see :func:`path_nodes`) and, SmoothGrad-style,
``samples`` Gaussian perturbations ``ε`` of ``noise`` grey levels per node.
Without noise the pixels sum to ``s(A, B) − s(Z, B)`` (completeness) up to
the quadrature error; the noise averages out the high-frequency part of the
gradient, which otherwise puts the map's maximum on high-contrast features
(the nose tip) that are not what changes the score (measured in
docs/explanations.md). The gradient method uses Z = B for its
dissimilarity maps and Z = a plain fill image for its similarity maps.

Since the score is a sum over embedding dimensions (``s = Σ_k s_k``), this is
also the sum of per-dimension path attributions ``IG_k`` with
``Σ_p IG_k(p) = s_k(A) − s_k(Z)``: one backward pass per path point
computes the sum over all dimensions at once (chain rule through
``∂s/∂f``), instead of D passes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..models.scoring import Contrast

#: Node spacing of the path from a uniform fill image: with ``t = u²`` the
#: path sums to within ~5 % of the score change at 32-64 nodes on johns
#: pairs, where evenly spaced nodes are off by up to 2x at 16 (the score
#: jumps within the first tenth of the path).
FILL_PATH_POWER = 2.0


def integrated_score_map(model, image: np.ndarray, reference: np.ndarray, reference_embedding: np.ndarray, *,
                         steps: int, samples: int, noise: float, rng: np.random.Generator,
                         batch_size: int, power: float = 1.0) -> np.ndarray:
    """The (H, W) float64 map IG(p) of ``image`` against ``reference`` (see the module docstring).

    ``image`` and ``reference`` are validated float32 ``(H, W, 3)`` pixel
    arrays; ``reference_embedding`` is the reference's ``(D,)`` embedding, or
    a :class:`~fxplain.models.scoring.Contrast`, whose score difference is
    then integrated.
    Path points are drawn node by node (so the random stream does not depend
    on ``batch_size``) and pushed through the network ``batch_size`` at a
    time, so memory does not grow with ``steps · samples``.
    """
    # a Contrast (1:N identification) passes through: the model's score gradient takes it as a reference
    ref_emb = reference_embedding
    if not isinstance(ref_emb, Contrast):
        ref_emb = np.asarray(ref_emb, np.float64)
    point_weights = np.repeat(path_nodes(steps, power)[1] / samples, samples)
    grad_sum = np.zeros(image.shape, np.float64)
    pending: list[np.ndarray] = []
    done = 0
    nodes = path_points(image, reference, steps=steps, samples=samples, noise=noise, rng=rng, power=power)
    for node, points in enumerate(nodes):
        pending.extend(points)
        while len(pending) >= batch_size or (node == steps - 1 and pending):
            batch, pending = np.stack(pending[:batch_size]), pending[batch_size:]
            _, grads = model.score_gradient_pixels(batch, ref_emb, batch_size=batch_size)
            w = point_weights[done:done + len(batch)]
            grad_sum += np.tensordot(w, grads.astype(np.float64), axes=1)
            done += len(batch)
    return np.sum(grad_sum * (image.astype(np.float64) - reference), axis=-1)


def path_nodes(steps: int, power: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``t_j = u_j^power`` (``u_j`` midpoints of ``steps`` equal cells) and weights ``dt/du · du``.

    ``power > 1`` packs the nodes towards t = 0, where the score changes
    fastest on a path from a uniform image: the network goes from "no face"
    to "a face" within the first tenth of that path (measured on johns, see
    docs/explanations.md). The weights sum to 1 up to the midpoint error.
    """
    u = (np.arange(steps) + 0.5) / steps
    return u ** power, power * u ** (power - 1) / steps


def path_points(image: np.ndarray, reference: np.ndarray, *, steps: int, samples: int, noise: float,
                rng: np.random.Generator, power: float = 1.0) -> Iterator[np.ndarray]:
    """The path's points node by node: ``samples`` float32 points ``Z + t_j (A − Z) + ε`` per node.

    Drawn in this order from ``rng`` whatever the batch size, so a peer (the
    benchmark's PyTorch side) can integrate over exactly the same points.
    """
    for t in path_nodes(steps, power)[0]:
        points = np.repeat((reference + np.float32(t) * (image - reference))[None], samples, axis=0)
        if noise > 0:
            points += np.float32(noise) * rng.standard_normal(points.shape, dtype=np.float32)
        yield points
