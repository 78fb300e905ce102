"""Expected gradients on the benchmark CNN with and without ``jig.hoist``.

16 images x 8 baselines x 16 Gauss-Legendre steps, one jitted call per image; the two
forms' attributions are checked to agree before they are timed (interleaved, medians).

Run: python benchmarks/expected_hoist.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _models  # noqa: E402
import _timing  # noqa: E402

import jig  # noqa: E402


def main() -> dict:
    bench = _models.cnn()
    params = jax.tree.map(jnp.asarray, bench.params)
    xs, ts = jnp.asarray(bench.xs), jnp.asarray(bench.targets)
    stack = jnp.asarray(np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32))
    fns = {}
    for hoist in (True, False):
        for chunk in (16, None):
            explain = jax.jit(jig.ig(lambda x, t, p: bench.logits(x, p)[t], None, 16,
                                     path=jig.paths.expected(stack), chunk_size=chunk, hoist=hoist))
            fns[f"hoist={hoist}/chunk={chunk}"] = (
                lambda e=explain: [e(xs[i], ts[i], params) for i in range(len(xs))])
    agree = _timing.agreement(fns["hoist=True/chunk=16"](), fns["hoist=False/chunk=16"](),
                              "expected gradients, hoisted vs plain")
    times = {k: v["median_s"] for k, v in _timing.interleaved(fns, reps=5).items()}
    print("agreement", agree)
    for name, t in times.items():
        print(f"{name}: {t:.4f} s")
    return {"agreement": agree, "median_s": times}


if __name__ == "__main__":
    main()
