"""Three ways to explain a batch with one explainer, at jig's defaults (``jig.ig(f, 0.0, 50)``).

    python benchmarks/vmap_forms.py            # MLP (256 inputs) and strided CNN (16 inputs)
    python benchmarks/vmap_forms.py --reps 3 --models cnn

- ``jit(vmap)``: ``jax.jit(jax.vmap(explain))(xs, ...)``, the code a JAX user writes first;
- ``unrolled``: the batch's calls written one after another inside one ``jax.jit``;
- ``loop``: a Python loop of calls of the (already jitted) explainer.

Medians of interleaved repetitions (``_timing.interleaved``); the attributions of the
three forms must agree. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import _models  # noqa: E402
import _timing  # noqa: E402
import jig  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args(argv)
    results = {}
    for name in args.models.split(","):
        b = getattr(_models, name)()
        xs, tg = jnp.asarray(b.xs), jnp.asarray(b.targets)
        explain = jig.ig(lambda x, t, p: b.logits(x, p)[t], 0.0, 50)  # the defaults
        vmapped = jax.jit(jax.vmap(explain, in_axes=(0, 0, None)))
        unrolled = jax.jit(lambda xs, tg, p: jnp.stack([explain(xs[i], tg[i], p) for i in range(xs.shape[0])]))

        def loop(xs, tg, p):
            return jnp.stack([explain(xs[i], tg[i], p) for i in range(xs.shape[0])])

        forms = {"jit(vmap)": vmapped, "unrolled": unrolled, "loop": loop}
        outs = {k: f(xs, tg, b.params) for k, f in forms.items()}
        gap = max(float(jnp.max(jnp.abs(outs[k] - outs["loop"]))) for k in outs)
        times = _timing.interleaved({k: (lambda f=f: f(xs, tg, b.params)) for k, f in forms.items()}, args.reps)
        results[name] = {k: v["median_s"] for k, v in times.items()}
        best = min(results[name].values())
        print(f"{name} {tuple(xs.shape)}: " + ", ".join(
            f"{k} {v * 1e3:.1f} ms ({v / best:.2f}x best)" for k, v in results[name].items()) + f"; max diff {gap:.1e}")
    print({k: v for k, v in _timing.machine().items() if k in ("cpu", "cpu_count", "loadavg_1_5_15", "jax")})
    return results


if __name__ == "__main__":
    main()
