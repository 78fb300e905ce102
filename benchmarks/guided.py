"""Guided IG: jig against PAIR's ``saliency`` (``GuidedIG``) on the same small JAX CNN.

Both explain the same jitted JAX model: ``saliency`` calls its gradient through
``call_model_function`` once per step (its walk runs in NumPy float64), jig runs the
whole walk in one compiled function (``jig.ig(..., path=jig.paths.guided(),
rule="riemann_right")``: the targets k/m of saliency's default schedule). The script
checks that the attributions agree, then times both in turns (medians) at 32x32x3 and
64x64x3, 64 steps, fraction 0.25, max_dist 0.02 (saliency's defaults but for steps).

saliency 0.2.1 calls ``np.quantile(..., interpolation=...)``, removed in NumPy 2.4:
this script wraps ``np.quantile`` (in this process only) to pass ``method=`` instead.

Run (needs the peers' venv, see /work/shared/PEERS.md):
    ~/peers-venv/bin/python benchmarks/guided.py [--reps 7] [--sizes 32 64] [--unroll 1 True]

``--unroll`` times jig once per value of ``jig.guided.walk``'s ``unroll`` (``default``:
as ``jig.ig`` calls it), each against saliency in the same interleaved run, and reports
the compile time (first call) of each.
"""

from __future__ import annotations

import argparse
import functools
import time
import json
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing  # noqa: E402

import jig  # noqa: E402

STEPS, FRACTION, MAX_DIST = 64, 0.25, 0.02
_CONVS = ((3, 8, 1), (8, 16, 2))  # (in, out, stride), 3x3, SAME


def logits(x, params):
    """A small CNN for one HxWx3 image: two 3x3 convolutions (ReLU), mean pool, dense."""
    h = x[None]
    for (w, b), (_, _, stride) in zip(params["convs"], _CONVS):
        h = jax.lax.conv_general_dilated(h, w, (stride, stride), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(h + b)
    w, b = params["head"]
    return jnp.mean(h[0], axis=(0, 1)) @ w + b


def make_params(seed: int = 0):
    rng = np.random.default_rng(seed)
    convs = [((rng.normal(size=(3, 3, ci, co)) * np.sqrt(2 / (9 * ci))).astype(np.float32),
              (rng.normal(size=co) * 0.05).astype(np.float32)) for ci, co, _ in _CONVS]
    head = ((rng.normal(size=(16, 10)) / 4).astype(np.float32), np.zeros(10, np.float32))
    return jax.tree.map(jnp.asarray, {"convs": convs, "head": head})


def image(size: int, seed: int = 1) -> np.ndarray:
    """Smooth colour blobs in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    img = np.zeros((size, size, 3))
    for _ in range(4):
        cy, cx = rng.uniform(0.2, 0.8, size=2)
        img += rng.uniform(0.3, 1.0, size=3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.03)[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


def _patch_quantile():
    quantile = np.quantile
    if getattr(quantile, "_jig_patched", False):
        return

    def patched(a, q, *args, interpolation=None, **kwargs):
        if interpolation is not None:
            kwargs["method"] = interpolation
        return quantile(a, q, *args, **kwargs)

    patched._jig_patched = True
    np.quantile = patched


def compare(size: int, reps: int, unrolls=("default",)) -> dict:
    import saliency.core as saliency

    _patch_quantile()
    params = make_params()
    x = image(size)
    t = int(jnp.argmax(logits(jnp.asarray(x), params)))
    grad = jax.jit(jax.vmap(jax.grad(lambda z, p: logits(z, p)[t]), in_axes=(0, None)))

    def call_model(xb, call_model_args=None, expected_keys=None):
        return {saliency.INPUT_OUTPUT_GRADIENTS: np.asarray(grad(jnp.asarray(xb, jnp.float32), params))}

    gig = saliency.GuidedIG()

    def run_saliency():
        return gig.GetMask(x, call_model, x_baseline=np.zeros_like(x), x_steps=STEPS,
                           fraction=FRACTION, max_dist=MAX_DIST)

    xj = jnp.asarray(x)
    runs, compile_s = {}, {}
    for u in unrolls:
        walk = jig.guided.walk
        if u != "default":  # the walk is traced (and this setting read) on the first call
            jig.guided.walk = functools.partial(walk, unroll=True if u == "True" else int(u))
        try:
            explain = jax.jit(jig.ig(lambda z, p: logits(z, p)[t], 0.0, STEPS, rule="riemann_right",
                                     path=jig.paths.guided(fraction=FRACTION, max_dist=MAX_DIST)))
            t0 = time.perf_counter()
            _timing.block(explain(xj, params))
            compile_s[u] = time.perf_counter() - t0
        finally:
            jig.guided.walk = walk
        runs[f"jig[unroll={u}]"] = functools.partial(explain, xj, params)

    a_sal = np.asarray(run_saliency(), np.float64)
    a_jig = np.asarray(runs[f"jig[unroll={unrolls[0]}]"](), np.float64)
    for name, run in runs.items():  # every setting computes the same numbers
        np.testing.assert_allclose(np.asarray(run()), a_jig, rtol=0, atol=1e-6 * np.abs(a_jig).max())
    scale = float(np.max(np.abs(a_sal)))
    diff = np.abs(a_sal - a_jig)
    agree = {
        "max_abs_diff_rel": float(diff.max()) / scale,
        "fraction_within_1e-4": float(np.mean(diff <= 1e-4 * scale)),
        "correlation": float(np.corrcoef(a_sal.ravel(), a_jig.ravel())[0, 1]),
        "sum_jig": float(a_jig.sum()), "sum_saliency": float(a_sal.sum()),
    }
    # saliency walks in float64, jig in float32: a near-tie of |∇F| may rank the other
    # way and move a feature one round earlier or later; everything else is the same
    if not (agree["correlation"] > 0.999 and agree["fraction_within_1e-4"] > 0.99):
        raise AssertionError(f"{size}x{size}x3: jig and saliency Guided IG differ: {agree}")
    load0 = os.getloadavg()
    res = _timing.interleaved({**runs, "saliency": run_saliency}, reps=reps)
    load1 = os.getloadavg()
    sal = res["saliency"]["median_s"]
    return {"shape": [size, size, 3], "steps": STEPS, "agreement": agree, "saliency_s": sal,
            "jig": {name: {"s": res[name]["median_s"], "speedup": sal / res[name]["median_s"],
                           "first_call_s": compile_s[name[len("jig[unroll="):-1]]}
                    for name in runs},
            "loadavg_start_end": [round(load0[0], 2), round(load1[0], 2)]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--unroll", nargs="+", default=["default"])
    args = p.parse_args(argv)
    out = {"machine": _timing.machine(),
           "runs": [compare(s, args.reps, tuple(args.unroll)) for s in args.sizes]}
    print(json.dumps(out, indent=1))
    for r in out["runs"]:
        a = r["agreement"]
        print(f"{r['shape']}: saliency {r['saliency_s'] * 1e3:.1f} ms; max diff "
              f"{a['max_abs_diff_rel']:.1e} of max|A|, corr {a['correlation']:.7f}; "
              f"load {r['loadavg_start_end']}")
        for name, j in r["jig"].items():
            print(f"  {name}: {j['s'] * 1e3:.1f} ms, {j['speedup']:.2f}x saliency "
                  f"(first call {j['first_call_s']:.1f} s)")
    return out


if __name__ == "__main__":
    main()
