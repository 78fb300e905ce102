"""Max pooling's backward pass in IG: ``jig.ig`` on a CNN ``F`` against ``jig.rewrite.fast(F)``.

The CNN: 28x28x1 -> conv3x3(16) -> ReLU -> conv3x3(32) -> ReLU -> 2x2 max pool
(``lax.reduce_window``) -> dense(10); 16 images, 64 Gauss-Legendre steps,
``jax.jit(jax.vmap(jig.ig(...)))`` with the per-example class, jig's defaults otherwise
(and once more with ``chunk_size=16``). ``jig.rewrite.fast`` replaces the pool by
reshape + max, whose backward pass avoids XLA's ``select_and_scatter``. ``jig.ig``
applies it by default, so the "reduce_window" contender is traced with the rewrite
turned off with ``jig.ig(..., rewrite=False)`` (formerly by swapping jig._ig's reference while
it compiles); the other is ``jig.ig``'s default. The script checks that both give the
same attributions and that only the plain one contains ``select_and_scatter``, then
times them in turns (medians).

Run: python benchmarks/maxpool.py [--reps 7]
"""

from __future__ import annotations

import argparse
import functools
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
from jig import rewrite  # noqa: E402

STEPS, BATCH = 64, 16


def logits(x, params):
    h = x[None]
    for w, b in params["convs"]:
        h = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(h + b)
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    w, b = params["head"]
    return h.reshape(-1) @ w + b


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    convs = [((rng.normal(size=(3, 3, ci, co)) * np.sqrt(2 / (9 * ci))).astype(np.float32),
              (rng.normal(size=co) * 0.05).astype(np.float32)) for ci, co in ((1, 16), (16, 32))]
    head = ((rng.normal(size=(14 * 14 * 32, 10)) / np.sqrt(14 * 14 * 32)).astype(np.float32),
            np.zeros(10, np.float32))
    params = jax.tree.map(jnp.asarray, {"convs": convs, "head": head})
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    imgs = []
    for _ in range(BATCH):
        c = rng.uniform(0.25, 0.75, size=(3, 2))
        imgs.append(np.clip(sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02) for cy, cx in c), 0, 1))
    xs = jnp.asarray(np.stack(imgs)[..., None], jnp.float32)
    ts = jnp.argmax(jax.vmap(logits, in_axes=(0, None))(xs, params), axis=-1)
    return xs, ts, params


def explainer(model, chunk_size, rewrite=True):
    def one(x, t, p):
        return jig.ig(lambda x, p: model(x, p)[t], 0.0, STEPS, chunk_size=chunk_size, rewrite=rewrite)(x, p)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    xs, ts, params = problem()
    out = {"machine": _timing.machine(), "steps": STEPS, "batch": BATCH, "runs": []}
    assert rewrite.count(logits, xs[0], params) == {"rewritten": 1, "kept": 0}
    for chunk in (None, 16):
        plain, rewritten = explainer(logits, chunk, rewrite=False), explainer(logits, chunk)
        a = np.asarray(plain(xs, ts, params))
        hlo_plain = plain.lower(xs, ts, params).as_text()
        b = np.asarray(rewritten(xs, ts, params))
        hlo_fast = rewritten.lower(xs, ts, params).as_text()
        assert "select_and_scatter" in hlo_plain and "select_and_scatter" not in hlo_fast
        agree = _timing.agreement(b, a, f"maxpool chunk_size={chunk}")
        load0 = os.getloadavg()[0]
        res = _timing.interleaved({"reduce_window": functools.partial(plain, xs, ts, params),
                                   "rewrite.fast": functools.partial(rewritten, xs, ts, params)},
                                  reps=args.reps)
        load1 = os.getloadavg()[0]
        t_plain, t_fast = res["reduce_window"]["median_s"], res["rewrite.fast"]["median_s"]
        out["runs"].append({"chunk_size": chunk, "reduce_window_ms": 1e3 * t_plain,
                            "rewrite_fast_ms": 1e3 * t_fast, "speedup": t_plain / t_fast,
                            "agreement": agree, "loadavg_start_end": [round(load0, 2), round(load1, 2)]})
    print(json.dumps(out, indent=1))
    for r in out["runs"]:
        print(f"chunk_size={r['chunk_size']}: reduce_window {r['reduce_window_ms']:.0f} ms, "
              f"rewrite.fast {r['rewrite_fast_ms']:.0f} ms, {r['speedup']:.2f}x "
              f"(max diff {r['agreement']['max_abs_diff_rel']:.1e} of max|A|; load {r['loadavg_start_end']})")
    return out


if __name__ == "__main__":
    main()
