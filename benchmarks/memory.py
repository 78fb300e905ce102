"""Peak memory (process RSS) of jig against steps, with and without ``chunk_size``.

Each configuration runs in its own subprocess (``--child``), which imports JAX,
builds the benchmark CNN, explains one 28x28 image once (compile and run) and
reports its peak resident set size (``VmHWM``, also counting
the compiler and JAX itself: the figure a user's process would see), plus XLA's
own estimate of the compiled program's temporary buffers.

``python benchmarks/memory.py [--quick]`` runs this part alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(steps: int, chunk: int | None) -> dict:
    sys.path.insert(0, str(HERE))
    import jax
    import jax.numpy as jnp

    import _models

    import jig

    bench = _models.cnn(batch=1)
    logits = bench.logits
    x, p = jnp.asarray(bench.xs[0]), jax.tree.map(jnp.asarray, bench.params)
    t = int(bench.targets[0])
    explain = jig.ig(lambda x, p: logits(x, p)[t], 0.0, steps, chunk_size=chunk)
    jax.block_until_ready(explain(x, p))
    temp = None
    try:  # XLA's buffer assignment for the same computation
        fn = jax.jit(lambda x, p: explain(x, p))
        temp = fn.lower(x, p).compile().memory_analysis().temp_size_in_bytes / 2**20
    except Exception:  # noqa: BLE001 - the estimate is optional
        pass
    return {"steps": steps, "chunk_size": chunk, "peak_rss_mb": _peak_rss_mb(), "xla_temp_mb": temp}


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (``ru_maxrss`` would keep the parent's peak
    across ``fork``/``exec``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(quick: bool, chunk: int = 64) -> dict:
    steps_list = (64, 1024) if quick else (64, 256, 1024, 4096)
    rows = []
    for steps in steps_list:
        for c in (None, chunk):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--steps", str(steps)]
            if c is not None:
                cmd += ["--chunk", str(c)]
            env = dict(os.environ)
            env.pop("XLA_FLAGS", None)  # one device, as a user's process
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    by = {(r["steps"], r["chunk_size"]): r["peak_rss_mb"] for r in rows}
    lo, hi = min(steps_list), max(steps_list)
    return {
        "model": "cnn, one 28x28 image", "rows": rows,
        "chunked_ratio_max_over_min_steps": by[(hi, chunk)] / by[(lo, chunk)],
        "unchunked_ratio_max_over_min_steps": by[(hi, None)] / by[(lo, None)],
        "chunk_size": chunk, "steps_range": [lo, hi],
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", action="store_true")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--chunk", type=int, default=None)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.steps, a.chunk)))
        return {}
    out = run(a.quick)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
