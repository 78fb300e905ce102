"""All 10 classes at once: ``targets="all"`` against ten single-class calls and Captum.

    ~/peers-venv/bin/python benchmarks/targets.py           # full
    ~/peers-venv/bin/python benchmarks/targets.py --quick   # smoke run

Per model (MLP 30-256-256-10, the strided CNN, the transformer with a 10-class head;
the same weights in both frameworks), in one run with interleaved repetitions:

- ``jig targets="all"``: ``jax.jit(jax.vmap(jig.ig(logits, 0.0, steps, targets="all")))``;
- ``jig 10 single``: ten calls of the single-class explainer (one compilation, the class
  a traced argument), as a user without ``targets`` would write it;
- ``Captum``: its fastest way to get all ten: a loop over the ten targets, or one batch
  expanded ten times with the targets tiled, each at its best ``internal_batch_size``.

Goals (issue 10): targets <= 0.7x the ten single calls on the MLP, <= 0.8x on the CNN and
transformer; >= 5x Captum's all-classes time on the MLP, >= 2x on the CNN.
Results: ``benchmarks/targets.json`` and ``targets.md``.
"""

from __future__ import annotations

import argparse
import json
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

K = 10
BENCHES = {
    "mlp": lambda: _models.mlp(batch=64, classes=K),
    "cnn": lambda: _models.cnn(batch=16),
    "transformer": lambda: _models.transformer(batch=8, classes=K),
}
GOALS = {"mlp": (0.7, 5.0), "cnn": (0.8, 2.0), "transformer": (0.8, None)}


def jig_all(bench, steps, **kw):
    f = jax.jit(jax.vmap(jig.ig(bench.logits, 0.0, steps, targets="all", **kw), in_axes=(0, None)))
    xs, p = jnp.asarray(bench.xs), jax.tree.map(jnp.asarray, bench.params)
    return lambda: f(xs, p)


def jig_singles(bench, steps):
    logits = bench.logits
    f = jax.jit(jax.vmap(lambda x, c, p: jig.ig(lambda v, p: logits(v, p)[c], 0.0, steps)(x, p),
                         in_axes=(0, None, None)))
    xs, p = jnp.asarray(bench.xs), jax.tree.map(jnp.asarray, bench.params)
    return lambda: [f(xs, jnp.int32(c), p) for c in range(K)]


def captum_loop(bench, model, steps, ibs):
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model)
    xt = torch.from_numpy(bench.to_torch(bench.xs))
    return lambda: [ig.attribute(xt, baselines=torch.zeros_like(xt), target=c, n_steps=steps,
                                 internal_batch_size=ibs) for c in range(K)]


def captum_expanded(bench, model, steps, ibs):
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model)
    xt = torch.from_numpy(bench.to_torch(bench.xs))
    big = xt.repeat_interleave(K, dim=0)
    tt = torch.arange(K).repeat(len(bench.xs))
    return lambda: ig.attribute(big, baselines=torch.zeros_like(big), target=tt, n_steps=steps,
                                internal_batch_size=ibs)


def one(name, quick, reps):
    bench = BENCHES[name]()
    if quick:
        bench = bench._replace(xs=bench.xs[:4], targets=bench.targets[:4])
    model = bench.torch_model()
    n = bench.steps
    # agreement: targets="all" equals the ten single calls and Captum's attributions
    a_all = np.asarray(jig_all(bench, n)())  # (batch, K, ...)
    singles = np.stack([np.asarray(a) for a in jig_singles(bench, n)()], axis=1)
    agree_single = _timing.agreement(a_all, singles, f"{name}: targets vs single calls")
    cap = np.stack([bench.from_torch(a.detach().numpy()) for a in captum_loop(bench, model, n, None)()], axis=1)
    agree_captum = _timing.agreement(a_all, cap, f"{name}: targets vs Captum", rtol=1e-3)
    rows = len(bench.xs) * n * K
    ibs_cands = [None] + [c for c in (4096, 1024, 256) if c < rows][: (1 if quick else 3)]
    cands = {}
    for ibs in ibs_cands:
        cands[f"loop/ibs{ibs}"] = captum_loop(bench, model, n, ibs)
        cands[f"expanded/ibs{ibs}"] = captum_expanded(bench, model, n, ibs)
    sweep = _timing.interleaved(cands, reps=2)
    best = min(sweep, key=lambda k: sweep[k]["median_s"])
    contenders = {
        "targets": jig_all(bench, n),
        "targets_chunk8": jig_all(bench, n, chunk_size=max(1, n // 8)),
        "ten_single": jig_singles(bench, n),
        "captum_best": cands[best],
    }
    res = _timing.interleaved(contenders, reps=reps)
    t = {k: v["median_s"] for k, v in res.items()}
    best_jig = min(t["targets"], t["targets_chunk8"])
    return {
        "model": name, "batch": len(bench.xs), "steps": n, "classes": K,
        "agreement_single": agree_single, "agreement_captum": agree_captum,
        "captum_best": best, "captum_sweep": {k: v["median_s"] for k, v in sweep.items()},
        "times_s": t,
        "targets_over_ten_single": t["targets"] / t["ten_single"],
        "best_targets_over_ten_single": best_jig / t["ten_single"],
        "speedup_over_captum": t["captum_best"] / t["targets"],
        "goals": GOALS[name],
    }


def markdown(rows, machine):
    lines = [f"load average at start: {machine.get('loadavg_1_5_15')}", "",
             "| model | batch x steps | targets='all' (s) | (chunk steps/8) | ten single calls (s) | ratio (goal) | Captum all 10, best (s) | speedup (goal) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, (g1, g2) = r["times_s"], r["goals"]
        lines.append(
            f"| {r['model']} | {r['batch']} x {r['steps']} | {t['targets']:.3f} | {t['targets_chunk8']:.3f} | "
            f"{t['ten_single']:.3f} | {r['targets_over_ten_single']:.2f}x (<= {g1}) | {t['captum_best']:.3f} "
            f"({r['captum_best']}) | {r['speedup_over_captum']:.2f}x ({'>= ' + str(g2) if g2 else 'n/a'}) |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default="mlp,cnn,transformer")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    machine = _timing.machine()
    rows = [one(m, args.quick, 2 if args.quick else 5) for m in args.models.split(",")]
    text = markdown(rows, machine)
    print(text)
    if not args.quick:
        (HERE / "targets.json").write_text(json.dumps({"machine": machine, "rows": rows,
                                                       "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
                                                      indent=1, default=str))
        (HERE / "targets.md").write_text(text + "\n")
    return rows


if __name__ == "__main__":
    main()
