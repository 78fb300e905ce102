"""The "defaults" table: the README's obvious code against Captum at its best setting.

    ~/peers-venv/bin/python benchmarks/defaults.py            # full (about 10 minutes)
    ~/peers-venv/bin/python benchmarks/defaults.py --quick    # smoke run

jig is timed exactly as a user first writes it (no chunk_size, no XLA flags, one device):

    explain = jax.jit(jax.vmap(lambda x, c, p: jig.ig(lambda v, p: logits(v, p)[c], 0.0, steps)(x, p),
                               in_axes=(0, 0, None)))

Captum at its fastest ``internal_batch_size`` (same rule: Gauss-Legendre, same steps, same
weights; attributions checked). Also: the plain algorithm's GFLOP/s (forward and input
gradient at every point, counted by XLA's cost analysis) as a share of this machine's
float32 matmul peak measured in the same run, and the time to 1% completeness error
(each at the fewest steps on a grid that reach it). Results: ``benchmarks/defaults.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import _models  # noqa: E402
import _timing  # noqa: E402
import jig  # noqa: E402
import peers  # noqa: E402

GOALS = {"mlp": 4.0, "cnn": 1.2, "cnn_pool": 1.0, "transformer": 1.3}
GRID = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def obvious(bench: _models.Bench, steps: int):
    """The README's code, as a user writes it first."""
    logits = bench.logits
    explain = jax.jit(jax.vmap(lambda x, c, p: jig.ig(lambda v, p: logits(v, p)[c], 0.0, steps)(x, p),
                               in_axes=(0, 0, None)))
    xs, ts = jnp.asarray(bench.xs), jnp.asarray(bench.targets)
    params = jax.tree.map(jnp.asarray, bench.params)
    return lambda: explain(xs, ts, params)


def plain_flops(bench: _models.Bench, steps: int) -> float:
    """FLOPs of the plain algorithm: forward and input gradient at every path point."""
    g = jax.vmap(jax.grad(lambda x, c, p: bench.logits(x, p)[c]), in_axes=(0, 0, None))
    n = len(bench.xs) * steps
    xs = jnp.zeros((n,) + bench.xs.shape[1:], jnp.float32)
    ts = jnp.zeros((n,), jnp.int32)
    cost = jax.jit(g).lower(xs, ts, jax.tree.map(jnp.asarray, bench.params)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


def matmul_peak() -> float:
    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    _timing.block(f(a))
    t = min(_timing.once(lambda: f(a)) for _ in range(5))
    return 2 * 2048**3 / t / 1e9


def steps_to(bench, target, delta_of, grid) -> int | None:
    gap = peers.gaps(bench)
    for n in grid:
        if peers.rel_err(delta_of(n), gap) <= target:
            return n
    return None


def one_model(name: str, quick: bool, reps: int) -> dict:
    import torch

    bench = _models.DEFAULTS_MODELS[name]()
    if quick:
        bench = bench._replace(xs=bench.xs[:4], targets=bench.targets[:4])
    model = bench.torch_model()
    n = bench.steps
    run_jig = obvious(bench, n)
    a_jig = np.asarray(run_jig())
    a_cap = bench.from_torch(peers.captum_batch(bench, model, n, "gausslegendre", None)().detach().numpy())
    agree = _timing.agreement(a_jig, a_cap, f"{name}: jig defaults vs Captum")
    ibs, sweep = peers.best_captum_ibs(bench, model, n, "gausslegendre", quick)
    res = _timing.interleaved({"jig": run_jig, "captum": peers.captum_batch(bench, model, n, "gausslegendre", ibs)},
                              reps=reps)
    flops = plain_flops(bench, n)
    out = {
        "model": name, "batch": len(bench.xs), "steps": n, "torch_threads": torch.get_num_threads(),
        "agreement": agree, "captum_internal_batch_size": ibs, "captum_sweep": sweep,
        "jig_s": res["jig"]["median_s"], "captum_s": res["captum"]["median_s"],
        "speedup": res["captum"]["median_s"] / res["jig"]["median_s"], "goal": GOALS[name],
        "plain_gflop": flops / 1e9, "jig_gflops": flops / 1e9 / res["jig"]["median_s"],
        "captum_gflops": flops / 1e9 / res["captum"]["median_s"],
    }
    # time to 1% completeness: the fewest grid steps that reach it, each library's default rule
    grid = GRID[:8] if quick else GRID

    def jig_delta(m):
        logits = bench.logits
        f = jax.jit(jax.vmap(lambda x, c, p: jig.ig(lambda v, p: logits(v, p)[c], 0.0, m, return_delta=True)(x, p)[1],
                             in_axes=(0, 0, None)))
        return f(jnp.asarray(bench.xs), jnp.asarray(bench.targets), jax.tree.map(jnp.asarray, bench.params))

    def cap_delta(m):
        return peers.captum_batch(bench, model, m, "gausslegendre", ibs, return_delta=True)()[1].detach().numpy()

    nj, nc = steps_to(bench, 0.01, jig_delta, grid), steps_to(bench, 0.01, cap_delta, grid)
    if nj and nc:
        r = _timing.interleaved({"jig": obvious(bench, nj),
                                 "captum": peers.captum_batch(bench, model, nc, "gausslegendre", ibs)}, reps=reps)
        out["to_1pct"] = {"jig_steps": nj, "captum_steps": nc, "jig_s": r["jig"]["median_s"],
                          "captum_s": r["captum"]["median_s"],
                          "speedup": r["captum"]["median_s"] / r["jig"]["median_s"]}
    return out


def markdown(rows, peak, machine) -> str:
    lines = [f"matmul peak (2048² float32 `jnp.dot`, this run): {peak:.0f} GFLOP/s; "
             f"load average at start {machine.get('loadavg_1_5_15')}", "",
             "| model | batch x steps | jig default (s) | Captum best (s) | speedup | goal | jig GFLOP/s (% peak) | Captum GFLOP/s (% peak) | to 1%: jig/Captum steps, speedup |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t1 = r.get("to_1pct")
        t1s = f"{t1['jig_steps']}/{t1['captum_steps']}, {t1['speedup']:.2f}x" if t1 else "n/a"
        lines.append(
            f"| {r['model']} | {r['batch']} x {r['steps']} | {r['jig_s']:.3f} | {r['captum_s']:.3f} "
            f"(ibs {r['captum_internal_batch_size']}) | {r['speedup']:.2f}x | {r['goal']}x | "
            f"{r['jig_gflops']:.1f} ({100 * r['jig_gflops'] / peak:.0f}%) | "
            f"{r['captum_gflops']:.1f} ({100 * r['captum_gflops'] / peak:.0f}%) | {t1s} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default="mlp,cnn,cnn_pool,transformer")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    machine = _timing.machine()
    peak = matmul_peak()
    rows = [one_model(m, args.quick, 2 if args.quick else 5) for m in args.models.split(",")]
    text = markdown(rows, peak, machine)
    print(text)
    if not args.quick:
        (HERE / "defaults.json").write_text(json.dumps({"machine": machine, "peak_gflops": peak, "rows": rows,
                                                        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
                                                       indent=1, default=str))
        (HERE / "defaults.md").write_text(text + "\n")
    return rows


if __name__ == "__main__":
    main()
