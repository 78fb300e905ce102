"""jig against the hand-written floor, compile vs steady-state time, and recompilation.

- overhead: ``jax.jit(jax.vmap(jig.ig(..., hoist=False)))`` against the floor
  ``jax.jit(jax.vmap(ig_one))``, where ``ig_one`` is IG written out by hand (the
  same Gauss-Legendre nodes, ``vmap(grad)`` over the path points, the weighted sum,
  times ``x - b``): the same work, so the ratio is jig's overhead. jig's default
  (``hoist=True``, the model's affine first layer evaluated once per explanation)
  is timed beside them; ratios of medians, interleaved, same process.
- compile: trace+lower and XLA compile time of jig's batch explainer (ahead of time,
  ``.lower().compile()``), then the steady-state time of one call.
- recompilation: a jig explainer called on new inputs (and new parameters) of the same
  shapes, and a second ``jig.ig`` built the same way, must not compile again; XLA
  compilations are counted through ``jax.monitoring`` events.

``python benchmarks/overhead.py [--quick]`` runs this part alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _models  # noqa: E402
import _timing  # noqa: E402

import jig  # noqa: E402

_COMPILES = [0]


def _count(event: str, *args, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count)


def floor_and_jig(bench: _models.Bench, steps: int):
    logits = bench.logits
    alphas, weights = (jnp.asarray(a, jnp.float32) for a in jig.rules.gauss_legendre(steps))

    def ig_one(x, t, p):
        F = lambda z: logits(z, p)[t]  # noqa: E731
        pts = alphas.reshape((-1,) + (1,) * x.ndim) * x[None]  # baseline 0
        g = jax.vmap(jax.grad(F))(pts)
        return x * jnp.tensordot(weights, g, axes=1)

    def jig_one(x, t, p, hoist):
        return jig.ig(lambda x, p: logits(x, p)[t], 0.0, steps, hoist=hoist)(x, p)

    floor = jax.jit(jax.vmap(ig_one, in_axes=(0, 0, None)))
    plain = jax.jit(jax.vmap(lambda x, t, p: jig_one(x, t, p, False), in_axes=(0, 0, None)))
    hoisted = jax.jit(jax.vmap(lambda x, t, p: jig_one(x, t, p, True), in_axes=(0, 0, None)))
    return floor, plain, hoisted


def overhead(bench: _models.Bench, reps: int) -> dict:
    """jig's machinery against the floor (``hoist=False``: the same work), and jig's
    default (``hoist=True``: the affine first layer evaluated once) against it."""
    floor, plain, hoisted = floor_and_jig(bench, bench.steps)
    xs, ts = jnp.asarray(bench.xs), jnp.asarray(bench.targets)
    p = jax.tree.map(jnp.asarray, bench.params)
    a = np.asarray(floor(xs, ts, p))
    if not np.max(np.abs(np.asarray(plain(xs, ts, p)) - a)) <= 1e-5 * float(np.max(np.abs(a))):
        raise AssertionError(f"{bench.name}: jig (hoist=False) differs from the floor")
    agree = _timing.agreement(hoisted(xs, ts, p), a, f"{bench.name}: jig (hoist=True) vs the floor")
    res = _timing.interleaved({"jig": lambda: plain(xs, ts, p), "floor": lambda: floor(xs, ts, p),
                               "jig_hoisted": lambda: hoisted(xs, ts, p)}, reps=reps)
    return {"model": bench.name, "batch": len(xs), "steps": bench.steps,
            "jig_s": res["jig"]["median_s"], "floor_s": res["floor"]["median_s"],
            "overhead": res["jig"]["median_s"] / res["floor"]["median_s"],
            "jig_hoisted_s": res["jig_hoisted"]["median_s"],
            "hoisted_speedup_over_floor": res["floor"]["median_s"] / res["jig_hoisted"]["median_s"],
            "hoisted_agreement": agree}


def compile_and_recompile(bench: _models.Bench, reps: int) -> dict:
    logits = bench.logits
    fn = jax.jit(jax.vmap(lambda x, t, p: jig.ig(lambda x, p: logits(x, p)[t], 0.0, bench.steps)(x, p),
                          in_axes=(0, 0, None)))
    xs, ts = jnp.asarray(bench.xs), jnp.asarray(bench.targets)
    p = jax.tree.map(jnp.asarray, bench.params)
    t0 = time.perf_counter()
    lowered = fn.lower(xs, ts, p)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    steady = _timing.interleaved({"c": lambda: compiled(xs, ts, p)}, reps=reps)["c"]["median_s"]

    # recompilation: one example at a time through jig's own jitted explainer
    rng = np.random.default_rng(7)
    F = lambda x, p: logits(x, p)[0]  # noqa: E731
    explain = jig.ig(F, 0.0, bench.steps)
    _timing.block(explain(xs[0], p))  # the one compilation
    news = [(jnp.asarray(rng.normal(size=bench.xs.shape[1:]).astype(np.float32)),
             jax.tree.map(lambda a: jnp.asarray(np.asarray(a) * rng.uniform(0.5, 1.5), jnp.float32), p))
            for _ in range(3)]  # made before counting: eager ops compile too
    before = _COMPILES[0]
    for x_new, p_new in news:
        _timing.block(explain(x_new, p_new))
    _timing.block(jig.ig(F, 0.0, bench.steps)(xs[1], p))  # a new, equal explainer shares it
    new_inputs = _COMPILES[0] - before
    # a different shape must compile (the counter works)
    _timing.block(fn(xs[:2], ts[:2], p))
    shape_change = _COMPILES[0] - before - new_inputs
    return {"model": bench.name, "trace_lower_s": t1 - t0, "compile_s": t2 - t1,
            "steady_s": steady, "compile_over_steady": (t2 - t1) / steady,
            "recompiles_on_new_inputs": new_inputs, "compiles_on_new_shape": shape_change,
            "no_recompilation": new_inputs == 0 and shape_change >= 1}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default="mlp,cnn,transformer")
    p.add_argument("--reps", type=int, default=None)
    a = p.parse_args(argv)
    reps = a.reps or (3 if a.quick else 9)
    out = {"overhead": [], "compile": []}
    for name in a.models.split(","):
        bench = _models.MODELS[name]()
        if a.quick:
            bench = bench._replace(xs=bench.xs[:8], targets=bench.targets[:8], steps=16)
        # compile first: the overhead run would leave the same program in JAX's cache
        out["compile"].append(compile_and_recompile(bench, reps))
        out["overhead"].append(overhead(bench, reps))
        print(json.dumps([out["overhead"][-1], out["compile"][-1]], indent=1), flush=True)
    return out


if __name__ == "__main__":
    main()
