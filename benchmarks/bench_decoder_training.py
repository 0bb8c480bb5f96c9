"""Decoder training: fxplain's C core versus PyTorch autograd + ``torch.optim.Adam``.

Both sides train the same face-reconstruction decoder
(:func:`fxplain.reconstruction.decoder_spec`, default widths, 128-d dlib
embeddings -> 150x150 RGB) from the SAME initial weights on the same
mini-batches in the same order:

* fxplain: exactly the step of :func:`fxplain.train_decoder` --
  ``net.train_forward`` -> ``_core.pixel_loss`` (-> ``_identity_gradient``
  through the frozen face model) -> ``net.train_backward`` -> the core's Adam
  (``fxplain.reconstruction.training._Adam``: ``_core.adam_update`` and ``set_parameters``);
* torch: ``torch_network.trainable_torch_module`` of the same spec, loss
  ``F.l1_loss`` (or ``F.mse_loss``) times the same weight, ``loss.backward()``
  and ``torch.optim.Adam`` with the same hyper-parameters (lr, betas 0.9/0.999,
  eps 1e-8; torch's default single-tensor implementation on CPU). With
  ``--identity`` the identity loss ``lambda * mean_n ||E(G(f_n)) - f_n||^2`` is
  added on both sides; torch's E is ``build_torch_module(model.spec)`` made
  differentiable, weights frozen, autograd through it to the decoder.

Data: the 55 ``johns`` chips (targets ``chip / 255 - 0.5``, NCHW) and their
dlib embeddings; the decoder's input normalisation uses their mean and
std + 1e-3, as ``train_decoder`` does. Step ``s`` uses the chips
``default_rng([seed, 1, s]).integers(0, 55, batch)`` (``train_decoder`` draws
from a pool of augmented chips the same way; augmentation is data preparation,
identical for both sides and outside the timed step, so it is left out).

Correctness (exit status 1 on failure): the losses of every step are printed
for fxplain and torch (loss of step s = before its update) with their relative
difference, and the max over the first ``--check-steps`` (pixel loss only,
default 10) or ``--identity-check-steps`` (with identity loss, default 1)
steps must be <= ``--tolerance`` (default 1e-3). Also printed: the per-layer
relative difference of the step-1 parameter gradients (same weights and batch
on both sides), how far the parameters are apart after step 1 and after the
run (in learning rates), and, as a noise floor, torch in the second memory
format against torch in the first: the same library with other convolution
kernels, hence other float32 rounding.

What to expect (reference machine, defaults): with the pixel loss, the step-1
gradients agree to ~1e-6 relative, the first 10 losses to < 1e-6 and all 30
to ~3e-4; torch NCHW vs torch channels_last part faster (3e-5 over 10 steps,
1e-2 over 30). They part at all because Adam's update ``lr * m / (sqrt(v) +
eps)`` is ~``+-lr`` for any gradient well above eps, so a rounding-level
difference in a small gradient, or an L1 ``sign(out - target)`` flip for a
pixel where ``out ~ target``, moves a parameter by up to 2 lr the other way,
and such differences compound.

With the identity loss the curves part within a few steps (~1e-1 relative by
step 10), and they do so between the two torch layouts as much as between
fxplain and torch. The untrained decoder's images are nearly flat, so the face
network's max-pool windows are full of near-ties that float32 rounding breaks
one way or the other: the identity gradient is discontinuous there. Against
torch float64 (printed), fxplain's and torch float32's step-1 gradients w.r.t.
the decoder output are each up to ~4e-2 (relative, per image) off on about
half of the 16 images and ~1e-6 off on the rest; Adam turns the differing
directions into +-lr steps. Only the step-1 losses (same weights on both
sides) are gated then.

Timing: after ``--warmup`` steps, repeats of ``--timing-steps`` steps alternate
between fxplain and every ``--torch-layouts`` memory format of torch, and the
median repeat is reported as steps/s; the fastest torch layout is the peer of
the ratio fxplain / torch.

Usage::

    python benchmarks/bench_decoder_training.py [--identity] [--steps 30] [--check-steps 10]
                                                [--threads 2] [--repeats 5] [--timing-steps 10]

Measured on the reference machine (2 AVX-512 cores, torch 2.13.0+cpu, 2 threads, idle, ``--identity``,
~65 s): pixel loss fxplain 15.8 steps/s vs torch 16.6 (channels_last) / 10.2 (NCHW), fxplain / torch
= 0.95 (0.92 in two other runs); with the identity loss 6.21 vs 6.14 / 5.00, 1.01. fxplain's convolutions
are faster than torch's; it loses time in oneDNN's resampling backward (15 vs 5 ms per step). Details in
docs/performance.md ("Decoder training").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import start_benchmark
from torch_network import build_torch_module, differentiable, trainable_torch_module

LAYOUTS = ("channels_last", "nchw")
BETAS = (0.9, 0.999)  # fxplain.reconstruction.training._Adam's
EPS = 1e-8


# ---- the two trainers ----------------------------------------------------------


class FxplainTrainer:
    """The step of :func:`fxplain.train_decoder`, on a decoder built from ``spec``."""

    name = "fxplain"

    def __init__(self, spec: Any, face_model: Any, config: argparse.Namespace):
        from fxplain.reconstruction.training import _Adam
        from fxplain.runtime.core_net import build_core_net

        self.net = build_core_net(spec)  # what Decoder(spec, ...)._net is
        self.adam = _Adam(spec)
        self.face_model = face_model
        self.config = config
        self.step_count = 0
        self.last_gradients: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def step(self, emb: np.ndarray, target: np.ndarray) -> tuple[float, float]:
        from fxplain import _core
        from fxplain.reconstruction.training import _identity_gradient

        c = self.config
        self.step_count += 1
        out = self.net.train_forward(emb.reshape(len(emb), 1, 1, -1), True)
        pixel_loss, grad = _core.pixel_loss(out, target, c.pixel_loss, c.pixel_weight)
        identity_loss = 0.0
        if c.identity_weight > 0:
            identity_loss, grad_id = _identity_gradient(self.face_model, out, emb, c.identity_weight)
            grad += grad_id
        _, grads = self.net.train_backward(grad)
        self.last_gradients = grads
        self.adam.step(self.net, grads, c.lr, self.step_count)
        return float(pixel_loss), float(identity_loss)

    def parameters(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Node -> (weight flat, bias), current values."""
        return {node: (w, b) for node, (w, b) in self.adam.params.items()}


class TorchTrainer:
    """The same step in eager PyTorch: autograd and ``torch.optim.Adam``."""

    def __init__(self, spec: Any, face_module: Any, config: argparse.Namespace, layout: str):
        self.name = f"torch ({layout})"
        self.module, self.params = trainable_torch_module(spec, channels_last=layout == "channels_last")
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.lr, betas=BETAS, eps=EPS)
        self.face = face_module
        self.config = config

    def step(self, emb: np.ndarray, target: np.ndarray) -> tuple[float, float]:
        c = self.config
        f = torch.from_numpy(emb)
        out = self.module(f.reshape(len(emb), 1, 1, -1))
        loss_fn = F.l1_loss if c.pixel_loss == "l1" else F.mse_loss
        pixel_loss = c.pixel_weight * loss_fn(out, torch.from_numpy(target))
        loss = pixel_loss
        identity_loss = torch.zeros(())
        if c.identity_weight > 0:
            pixels = (out.permute(0, 2, 3, 1) + 0.5) * 255.0  # NHWC pixels, as fxplain's _identity_gradient
            got = self.face(pixels)
            identity_loss = c.identity_weight * ((got - f) ** 2).sum(dim=1).mean()
            loss = loss + identity_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(pixel_loss.detach()), float(identity_loss.detach())

    def parameters(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {node: (w.detach().numpy().ravel(), b.detach().numpy().copy())
                for node, (w, b) in self.params.items()}

    def gradients(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Node -> (dweight flat, dbias) of the last step (kept until the next zero_grad)."""
        return {node: (w.grad.numpy().ravel(), b.grad.numpy().copy()) for node, (w, b) in self.params.items()}


# ---- data ------------------------------------------------------------------------


class Batches:
    """Step s (1-based) -> the chips of ``default_rng([seed, 1, s])``, as in train_decoder."""

    def __init__(self, embeddings: np.ndarray, targets: np.ndarray, batch: int, seed: int):
        self.embeddings, self.targets, self.batch, self.seed = embeddings, targets, batch, seed

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        pick = np.random.default_rng([self.seed, 1, step]).integers(0, len(self.embeddings), self.batch)
        return self.embeddings[pick], np.ascontiguousarray(self.targets[pick])


# ---- correctness -----------------------------------------------------------------


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def compare_gradients(fx: dict, th: dict) -> float:
    """Print the per-layer relative difference of the step-1 gradients; return the largest."""
    worst = 0.0
    parts = []
    for node in fx:
        for label, a, b in (("W", fx[node][0], th[node][0]), ("b", fx[node][1], th[node][1])):
            r = float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))
            worst = max(worst, r)
            parts.append(f"{label}{node} {r:.1e}")
    print("step-1 gradients, max|fx - torch| / max|torch| per layer: " + ", ".join(parts))
    return worst


def parameter_gap(fx: dict, th: dict, lr: float) -> str:
    """How far apart the parameters are, in learning rates: max, and share of values > 1 lr apart."""
    diffs = np.concatenate([np.abs(fx[n][k].astype(np.float64) - th[n][k]).ravel()
                            for n in fx for k in (0, 1)])
    return (f"max {diffs.max() / lr:.3f} lr, median {np.median(diffs) / lr:.2e} lr, "
            f"{100 * np.mean(diffs > lr):.3f} % of {diffs.size} values > 1 lr apart")


def check_losses(fx: FxplainTrainer, th: TorchTrainer, other: TorchTrainer | None, batches: Batches,
                 args: argparse.Namespace, check_steps: int) -> bool:
    """Train all side by side for ``args.steps`` steps; print the curves; gate the first ``check_steps``.

    ``other`` (torch in the other memory format, if any) is the noise floor:
    the same library with other convolution kernels, hence other float32
    rounding. Its losses are compared with ``th``'s like fxplain's are.
    """
    trainers = [t for t in (fx, th, other) if t is not None]
    kinds = ("pixel", "identity") if args.identity_weight > 0 else ("pixel",)
    short = {"fxplain": "fxplain"} | {t.name: t.name.replace("torch (", "").rstrip(")") for t in trainers[1:]}
    header = f"{'step':>4}"
    for kind in kinds:
        header += "".join(f" {kind[:2] + ' ' + short[t.name]:>16}" for t in trainers)
        header += f" {'fx/torch':>9}" + (f" {'torch/torch':>11}" if other else "")
    print(f"relative differences: fx/torch = fxplain vs {th.name}"
          + (f", torch/torch = {other.name} vs {th.name}" if other else ""))
    print(header)
    rows = []
    for step in range(1, args.steps + 1):
        emb, target = batches(step)
        losses = [t.step(emb, target) for t in trainers]
        if step == 1:
            grad_rows = (fx.last_gradients, th.gradients())
            gap1 = parameter_gap(fx.parameters(), th.parameters(), args.lr)
        rows.append(losses)
        line = f"{step:>4}"
        for k in range(len(kinds)):
            line += "".join(f" {values[k]:>16.7f}" for values in losses)
            line += f" {rel(losses[0][k], losses[1][k]):>9.1e}"
            line += f" {rel(losses[2][k], losses[1][k]):>11.1e}" if other else ""
        if step <= max(check_steps, 10) or step % 5 == 0 or step == args.steps:
            print(line)

    def worst(rows_, a: int) -> float:
        return max(rel(r[a][k], r[1][k]) for r in rows_ for k in range(len(kinds)))

    spans = sorted({check_steps, min(10, args.steps), args.steps})

    def spread(a: int) -> str:
        return ", ".join(f"steps 1-{n} {worst(rows[:n], a):.2e}" for n in spans)

    print(f"max relative loss difference fxplain vs {th.name}: {spread(0)} "
          f"(gate: {args.tolerance:g} on steps 1-{check_steps})")
    if other:
        print(f"max relative loss difference {other.name} vs {th.name}: {spread(2)}")
    compare_gradients(*grad_rows)
    print(f"parameters fxplain vs {th.name} after step 1: {gap1}")
    print(f"parameters fxplain vs {th.name} after step {args.steps}: "
          f"{parameter_gap(fx.parameters(), th.parameters(), args.lr)}")
    return worst(rows[:check_steps], 0) <= args.tolerance


def identity_gradient_referee(model: Any, spec: Any, batches: Batches, weight: float,
                              layouts: list[str]) -> None:
    """Step-1 identity-loss gradient w.r.t. the decoder output: fxplain and torch float32 vs torch float64.

    The untrained decoder's images are nearly flat, so the face network's
    max-pool windows are full of near-ties, which float32 rounding breaks one
    way or the other: the gradient is discontinuous there, and any float32
    implementation lands on a different side for some images.
    """
    from fxplain.reconstruction.training import _identity_gradient
    from fxplain.runtime.core_net import build_core_net

    emb, _ = batches(1)
    out = build_core_net(spec).forward(emb.reshape(len(emb), 1, 1, -1))
    _, g_fx = _identity_gradient(model, out, emb, weight)

    def torch_grad(dtype: torch.dtype, channels_last: bool) -> np.ndarray:
        face = differentiable(build_torch_module(model.spec, channels_last=channels_last)).to(dtype)
        o = torch.from_numpy(out).to(dtype).requires_grad_(True)
        got = face((o.permute(0, 2, 3, 1) + 0.5) * 255.0)
        (weight * ((got - torch.from_numpy(emb).to(dtype)) ** 2).sum(dim=1).mean()).backward()
        return o.grad.numpy()

    g64 = torch_grad(torch.float64, False)
    print(f"step-1 identity gradient w.r.t. the decoder output vs torch float64, per image "
          f"max|diff| / max|float64|, {len(out)} images: median / max / images > 1e-4")
    for name, g in [("fxplain", g_fx)] + [(f"torch float32 ({layout})", torch_grad(torch.float32,
                                                                                  layout == "channels_last"))
                                          for layout in layouts]:
        r = np.array([np.abs(g[i].astype(np.float64) - g64[i]).max() / np.abs(g64[i]).max()
                      for i in range(len(g))])
        print(f"  {name:<28} {np.median(r):.1e} / {r.max():.1e} / {int(np.sum(r > 1e-4))}")


# ---- timing ----------------------------------------------------------------------


def measure(trainers: list, batches: Batches, args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per step of each trainer: warm-up, then alternating repeats of timing_steps steps."""
    start_step = {t.name: args.steps for t in trainers}  # continue each one's batch sequence

    def run(trainer, n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            start_step[trainer.name] += 1
            trainer.step(*batches(start_step[trainer.name]))
        return (time.perf_counter() - begin) / n

    for trainer in trainers:
        run(trainer, args.warmup)
    samples: dict[str, list[float]] = {t.name: [] for t in trainers}
    for _ in range(args.repeats):
        for trainer in trainers:
            samples[trainer.name].append(run(trainer, args.timing_steps))
    return samples


def print_timing(title: str, samples: dict[str, list[float]]) -> float:
    """Table of steps/s (median, best); returns fxplain / fastest torch."""
    print(f"\n{title}")
    print(f"{'trainer':<22} {'steps/s median (best)':>22} {'s/step':>8}")
    medians = {name: statistics.median(s) for name, s in samples.items()}
    for name, s in samples.items():
        print(f"{name:<22} {1 / medians[name]:>12.2f} ({1 / min(s):>7.2f}) {medians[name]:>8.3f}")
    peer = min((n for n in medians if n != "fxplain"), key=medians.get)
    ratio = medians[peer] / medians["fxplain"]
    print(f"peer: {peer}; fxplain / torch steps/s = {ratio:.2f}")
    return ratio


# ---- command line ----------------------------------------------------------------


def parse_layouts(text: str) -> list[str]:
    layouts = [part.strip() for part in text.split(",") if part.strip()]
    if not layouts or set(layouts) - set(LAYOUTS):
        raise argparse.ArgumentTypeError(f"expected channels_last and/or nchw, got {text!r}")
    return layouts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both libraries (default: os.cpu_count())")
    parser.add_argument("--steps", type=int, default=30,
                        help="steps of the loss-curve comparison (default: 30)")
    parser.add_argument("--check-steps", type=int, default=10,
                        help="first steps whose losses must agree (default: 10)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest relative loss difference over the checked steps (default: 1e-3)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--pixel-loss", choices=("l1", "l2"), default="l1", help="(default: l1)")
    parser.add_argument("--pixel-weight", type=float, default=1.0, help="(default: 1.0)")
    parser.add_argument("--identity", action="store_true",
                        help="also check and time training with the identity loss")
    parser.add_argument("--identity-weight", type=float, default=0.1,
                        help="lambda of the identity loss with --identity (default: 0.1, train_decoder's)")
    parser.add_argument("--identity-check-steps", type=int, default=1,
                        help="first steps whose losses must agree with --identity (default: 1; see the "
                             "module docstring for why the curves then part quickly)")
    parser.add_argument("--seed", type=int, default=0, help="decoder initialisation and batches (default: 0)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per trainer (default: 2)")
    parser.add_argument("--timing-steps", type=int, default=10, help="steps per timed repeat (default: 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per trainer (default: 5)")
    parser.add_argument("--torch-layouts", type=parse_layouts, default=list(LAYOUTS),
                        help="torch memory formats (default: channels_last,nchw); fxplain is checked "
                             "against the first, the second's losses show torch's own float32 spread")
    parser.add_argument("--no-timing", action="store_true", help="only the loss-curve check")
    args = parser.parse_args(argv)
    if not 1 <= args.check_steps <= args.steps or not 1 <= args.identity_check_steps <= args.steps:
        parser.error("--check-steps and --identity-check-steps must be between 1 and --steps")
    return args


def run_configuration(label: str, spec: Any, model: Any, face_modules: dict, batches: Batches,
                      args: argparse.Namespace) -> tuple[bool, float | None]:
    """Loss-curve check and timing of one loss configuration; (check passed, steps/s ratio)."""
    print(f"\n==== {label} ====")
    identity = args.identity_weight > 0
    check_steps = args.identity_check_steps if identity else args.check_steps
    fx = FxplainTrainer(spec, model, args)
    torches = [TorchTrainer(spec, face_modules[layout], args, layout) for layout in args.torch_layouts]
    print(f"losses of {args.steps} steps, batch {args.batch}, lr {args.lr:g}, same initial weights and "
          f"batches (loss of step s = before its update):")
    ok = check_losses(fx, torches[0], torches[1] if len(torches) > 1 else None, batches, args, check_steps)
    if identity:
        identity_gradient_referee(model, spec, batches, args.identity_weight, args.torch_layouts)
    if not ok:
        print(f"FAIL: {label}: losses of the first {check_steps} steps differ by more than "
              f"{args.tolerance:g} relative", file=sys.stderr)
    if args.no_timing:
        return ok, None
    trainers = [fx] + torches
    print(f"\nload average before timing: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
    samples = measure(trainers, batches, args)
    ratio = print_timing(f"{label}: training steps/s, batch {args.batch} ({args.warmup} warm-up steps, "
                         f"median of {args.repeats} x {args.timing_steps} steps)", samples)
    print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    return ok, ratio


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begun = time.perf_counter()
    fxplain, model, chips, _identities = start_benchmark(args.threads)
    from fxplain.reconstruction import decoder_spec

    embeddings = model.embed(chips).astype(np.float32)
    targets = np.ascontiguousarray(chips.transpose(0, 3, 1, 2) / np.float32(255.0) - np.float32(0.5))
    spec = decoder_spec(model.embedding_size, model.input_size, seed=args.seed,
                        embedding_mean=embeddings.mean(axis=0), embedding_std=embeddings.std(axis=0) + 1e-3)
    batches = Batches(embeddings, targets, args.batch, args.seed)
    # the frozen face model for torch's identity loss, in the decoder's memory format
    face_modules = {layout: differentiable(build_torch_module(model.spec,
                                                              channels_last=layout == "channels_last"))
                    for layout in args.torch_layouts}

    backend = fxplain.backend_info()
    n_params = sum(int(np.prod(layer.params["weight"].shape)) + len(layer.params["bias"])
                   for layer in spec.layers if layer.kind in ("conv", "dense"))
    print(f"fxplain {fxplain.__version__} (oneDNN {backend.get('onednn_version', '?')}, "
          f"{backend.get('isa', '?')}) | torch {torch.__version__} (eager, float32) | threads {args.threads}")
    print(f"decoder: {model.embedding_size} -> {spec.shapes()[spec.output]}, {len(spec.layers)} layers, "
          f"{n_params} parameters; data: {len(chips)} johns chips + dlib embeddings; "
          f"pixel loss {args.pixel_loss} x {args.pixel_weight:g}")

    configurations = [("pixel loss only", 0.0)]
    if args.identity:
        configurations.append((f"pixel + identity loss (lambda {args.identity_weight:g})",
                               args.identity_weight))
    results = []
    for label, weight in configurations:
        config = argparse.Namespace(**{**vars(args), "identity_weight": weight})
        results.append((label, *run_configuration(label, spec, model, face_modules, batches, config)))

    print("\nsummary:")
    for label, ok, ratio in results:
        timing = "" if ratio is None else f", fxplain / torch steps/s = {ratio:.2f}"
        print(f"  {label}: loss check {'OK' if ok else 'FAIL'}{timing}")
    print(f"total {time.perf_counter() - begun:.0f} s")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
