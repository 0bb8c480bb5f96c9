"""Does decoder training collapse? Held-out rank-1 and output spread of the default recipe, per seed.

    .venv/bin/python scripts/decoder_seeds.py --seeds 0 1 [--steps 1000] [--option leak=0 --option warmup_steps=0]

The split of tests/reconstruction/test_reconstruction.py::test_generalisation_to_held_out_chips: train on 8
of each johns identity's 11 chips plus the example photos' faces, rebuild the other 15 chips. A collapsed
decoder draws one face for every feature: spread 0 and rank-1 at chance (0.20). Prints the loss every 100
steps, so where it collapses shows.
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--option", action="append", default=[], help="a training option, NAME=VALUE")
    args = parser.parse_args()
    import fxplain
    from fxplain.datasets import load_johns
    from fxplain.faces.collection import example_faces

    options = {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.option)}
    model = fxplain.load_model()
    images, identities, _ = load_johns()
    ids = np.array(identities)
    test_idx = np.concatenate([np.flatnonzero(ids == n)[8:] for n in sorted(set(identities))])
    train_idx = np.setdiff1d(np.arange(len(ids)), test_idx)
    chips = np.concatenate([images[train_idx], example_faces((150, 150))])
    emb = model.embed(images)
    names = sorted(set(ids[train_idx]))
    centroids = np.stack([emb[train_idx][ids[train_idx] == n].mean(0) for n in names])
    for seed in args.seeds:
        started = time.perf_counter()
        decoder = fxplain.train_decoder(model, chips, steps=args.steps, seed=seed, show_progress=False, **options)
        history = decoder.info["history"]
        for k in range(0, len(history["step"]), 100):
            print(f"  seed {seed} step {history['step'][k]:5d}: pixel {history['pixel'][k]:.4f} "
                  f"identity {history['identity'][k]:.4f}")
        rebuilt = decoder.reconstruct(emb[test_idx])
        again = model.embed(rebuilt)
        guess = np.array(names)[((again[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
        print(f"seed {seed}: held-out rank-1 {np.mean(guess == ids[test_idx]):.2f} (chance 0.20), output spread "
              f"across faces {rebuilt.astype(float).std(axis=0).mean():.2f} (0: collapsed), final identity loss "
              f"{history['identity'][-1]:.4f}, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
