"""``jig.smooth`` against Captum's ``NoiseTunnel(IntegratedGradients)``: agreement and speed.

Two jobs (run in the peers' venv, see /work/shared/PEERS.md):

    ~/peers-venv/bin/python benchmarks/smooth.py --golden      # writes tests/data/smooth_reference.npz
    ~/peers-venv/bin/python benchmarks/smooth.py [--reps 5]    # times both on benchmarks/_models.cnn

``--golden``: a tiny CNN (torch layout, ``x`` of shape ``(1, 8, 8)``: conv 3x3 1->4, tanh,
conv 3x3 stride 2 4->8, tanh, flatten (C, H, W), dense 128->10) with weights drawn in
NumPy; SmoothGrad, SmoothGrad² and VarGrad of IG (Gauss-Legendre, 8 steps, black
baseline, each example's predicted class) over 6 noise samples of stddev 0.3. The
noise ``ε`` (standard normal, shape ``(samples, batch, 1, 8, 8)``) is drawn here and fed
to Captum by replacing ``NoiseTunnel._add_noise_to_input`` (row ``b * n + s`` of Captum's
expanded batch is example ``b``, sample ``s``, as ``repeat_interleave`` lays it out), and
to jig through ``jig.smooth(..., noise=lambda key, i, x: ε[i])``. The file holds the
inputs, weights, noise and Captum's three results; ``tests/test_smooth.py`` recomputes
them with jig.

Default: the timing. The 16 28x28 digits-like images and CNN of ``benchmarks/_models``
(3 convolutions, 10 classes), SmoothGrad over IG with the same samples and steps in
both (Gauss-Legendre nodes), Captum at each ``internal_batch_size`` in ``--ibs`` (its
best is reported), jig as ``jax.jit(jax.vmap(jig.smooth(jig.ig(...))))`` with one key per
example, and as one jitted call per example (``--chunks``: ``jig.smooth``'s chunk_size;
on XLA:CPU a small working set stays in cache, see benchmarks/peers.py's "loop" mode). Both are timed in turns (medians); the torch thread count is ``--threads``.
The script first checks that jig and Captum agree when fed the same noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLDEN = ROOT / "tests" / "data" / "smooth_reference.npz"
KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


# --------------------------------------------------------------------------- the tiny CNN


def tiny_weights(seed: int = 0) -> dict:
    """The tiny CNN's weights in torch layout (OIHW kernels, (out, in) dense), float32."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return {
        "conv1_w": f32(rng.normal(size=(4, 1, 3, 3)) / 3.0), "conv1_b": f32(rng.normal(size=4) * 0.1),
        "conv2_w": f32(rng.normal(size=(8, 4, 3, 3)) / 6.0), "conv2_b": f32(rng.normal(size=8) * 0.1),
        "dense_w": f32(rng.normal(size=(10, 128)) / np.sqrt(128) * 3), "dense_b": f32(rng.normal(size=10) * 0.1),
    }


def tiny_torch(w: dict):
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.Tanh(),
        torch.nn.Flatten(), torch.nn.Linear(128, 10),
    )
    with torch.no_grad():
        for layer, name in ((net[0], "conv1"), (net[2], "conv2"), (net[5], "dense")):
            layer.weight.copy_(torch.from_numpy(w[f"{name}_w"]))
            layer.bias.copy_(torch.from_numpy(w[f"{name}_b"]))
    return net.eval()


def tiny_jax(x, w):
    """The same CNN in JAX, torch layout: ``x`` (1, 8, 8) -> 10 logits."""
    import jax
    import jax.numpy as jnp

    def conv(h, k, b, stride):
        out = jax.lax.conv_general_dilated(h[None], k, (stride, stride), ((1, 1), (1, 1)),
                                           dimension_numbers=("NCHW", "OIHW", "NCHW"))[0]
        return out + b[:, None, None]

    h = jnp.tanh(conv(x, w["conv1_w"], w["conv1_b"], 1))
    h = jnp.tanh(conv(h, w["conv2_w"], w["conv2_b"], 2))
    return w["dense_w"] @ h.reshape(-1) + w["dense_b"]


def captum_with_noise(nt, eps_torch):
    """Make ``nt`` (a NoiseTunnel) add ``stdev * eps`` instead of fresh draws."""

    def add(input, stdev, n):  # noqa: A002 - Captum's name
        b = input.shape[0]
        e = eps_torch[:n].transpose(0, 1).reshape((b * n,) + tuple(input.shape[1:]))  # row b*n + s
        return input.repeat_interleave(n, dim=0) + stdev * e

    nt._add_noise_to_input = add
    return nt


def golden(seed: int = 0, batch: int = 3, samples: int = 6, steps: int = 8, stddev: float = 0.3) -> dict:
    """Inputs, weights, noise and Captum's SmoothGrad/SmoothGrad²/VarGrad of IG."""
    import torch
    from captum.attr import IntegratedGradients, NoiseTunnel

    torch.set_num_threads(1)
    w = tiny_weights(seed)
    net = tiny_torch(w)
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(0.0, 1.0, size=(batch, 1, 8, 8)).astype(np.float32)
    eps = rng.normal(size=(samples, batch, 1, 8, 8)).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        targets = net(xt).argmax(-1)
    out = dict(w, x=x, eps=eps, targets=targets.numpy().astype(np.int32), steps=np.int32(steps),
               stddev=np.float32(stddev))
    for kind in KINDS:
        nt = captum_with_noise(NoiseTunnel(IntegratedGradients(net)), torch.from_numpy(eps))
        a = nt.attribute(xt, nt_type=kind, nt_samples=samples, stdevs=stddev, target=targets,
                         baselines=torch.zeros_like(xt), n_steps=steps, method="gausslegendre")
        out[kind] = a.detach().numpy().astype(np.float32)
    return out


def jig_smooth_golden(ref: dict, kind: str):
    """jig's result on the golden file's inputs and noise (used by the tests, too)."""
    import jax
    import jax.numpy as jnp

    import jig

    w = {k: jnp.asarray(v) for k, v in ref.items() if k.endswith(("_w", "_b"))}
    eps = jnp.asarray(ref["eps"])
    explain = jax.vmap(jig.ig(lambda x, w, t: tiny_jax(x, w)[t], 0.0, int(ref["steps"])), in_axes=(0, None, 0))
    smoothed = jig.smooth(explain, stddev=float(ref["stddev"]), samples=eps.shape[0], kind=kind, relative=False,
                          noise=lambda key, i, x: eps[i])
    return np.asarray(smoothed(jax.random.key(0), jnp.asarray(ref["x"]), w, jnp.asarray(ref["targets"])))


# --------------------------------------------------------------------------- timing


def bench(args) -> dict:
    import jax
    import jax.numpy as jnp
    import torch
    from captum.attr import IntegratedGradients, NoiseTunnel

    sys.path.insert(0, str(HERE))
    import _models
    import _timing

    import jig

    torch.set_num_threads(args.threads)
    b = _models.cnn()
    net = b.torch_model()
    xt = torch.from_numpy(b.to_torch(b.xs))
    tt = torch.from_numpy(b.targets.astype(np.int64))
    params = jax.tree.map(jnp.asarray, b.params)
    xs, ts = jnp.asarray(b.xs), jnp.asarray(b.targets)
    samples, steps, sigma = args.samples, args.steps, args.stddev

    explain = jig.ig(lambda x, p, t: b.logits(x, p)[t], 0.0, steps)
    smoothed = jig.smooth(explain, stddev=sigma, samples=samples, relative=False)
    batched = jax.jit(jax.vmap(smoothed, in_axes=(0, 0, None, 0)))
    keys = jax.random.split(jax.random.key(0), len(b.xs))

    # agreement first: the same noise through both (a fixed draw, injected)
    eps = np.random.default_rng(2).normal(size=(samples,) + b.xs.shape).astype(np.float32)
    eps_j = jnp.asarray(eps)
    fixed = jig.smooth(jax.vmap(explain, in_axes=(0, None, 0)), stddev=sigma, samples=samples, relative=False,
                       noise=lambda key, i, x: eps_j[i])
    a_jig = np.asarray(fixed(jax.random.key(0), xs, params, ts))
    eps_torch = torch.from_numpy(np.ascontiguousarray(np.moveaxis(eps, -1, -3)))
    nt = captum_with_noise(NoiseTunnel(IntegratedGradients(net)), eps_torch)
    a_cap = b.from_torch(nt.attribute(xt, nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, target=tt,
                                      n_steps=steps, method="gausslegendre").detach().numpy())
    err = float(np.max(np.abs(a_jig - a_cap)) / np.max(np.abs(a_cap)))

    nt_fresh = NoiseTunnel(IntegratedGradients(net))

    def captum(ibs):
        return lambda: nt_fresh.attribute(xt, nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, target=tt,
                                          n_steps=steps, method="gausslegendre", internal_batch_size=ibs)

    fns = {"jig vmap": lambda: batched(keys, xs, params, ts)}
    # XLA:CPU keeps a small working set in cache: one example per call (as benchmarks/peers.py's
    # "loop" mode), the samples 2 at a time (5 unrolled chunks of 2 x 32 path points)
    for chunk in args.chunks:
        one = jax.jit(jig.smooth(explain, stddev=sigma, samples=samples, relative=False,
                                 chunk_size=None if chunk == 0 else chunk))
        fns[f"jig loop chunk_size={chunk or None}"] = (lambda one: lambda: [
            one(k, x, params, t) for k, x, t in zip(keys, xs, ts)])(one)
    for ibs in args.ibs:
        fns[f"captum ibs={ibs}"] = captum(None if ibs == 0 else ibs)
    first = {k: _timing.once(fn) for k, fn in fns.items() if k.startswith("jig")}
    times = _timing.interleaved(fns, reps=args.reps, warmup=0)
    best = min((k for k in times if k.startswith("captum")), key=lambda k: times[k]["median_s"])
    best_jig = min((k for k in times if k.startswith("jig")), key=lambda k: times[k]["median_s"])
    load = os.getloadavg()
    res = {
        "batch": len(b.xs), "samples": samples, "steps": steps, "stddev": sigma, "torch_threads": args.threads,
        "max_rel_diff_same_noise": err, "jig_first_call_s": first, "times": times, "captum_best": best,
        "jig_best": best_jig, "speedup_vs_best_captum": times[best]["median_s"] / times[best_jig]["median_s"],
        "loadavg": load, "machine": _timing.machine(),
    }
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--golden", action="store_true", help="write tests/data/smooth_reference.npz")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--stddev", type=float, default=0.15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ibs", type=int, nargs="+", default=[0, 64, 256, 1024],
                   help="Captum internal_batch_size values (0: none)")
    p.add_argument("--chunks", type=int, nargs="+", default=[2, 0],
                   help="jig.smooth chunk_size values for the per-example loop (0: none)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    if args.golden:
        ref = golden()
        for kind in KINDS:
            ours = jig_smooth_golden(ref, kind)
            err = np.max(np.abs(ours - ref[kind])) / np.max(np.abs(ref[kind]))
            print(f"{kind:14s} max |jig - captum| / max |captum| = {err:.2e}")
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(GOLDEN, **ref)
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
        return 0
    res = bench(args)
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
