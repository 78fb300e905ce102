"""Integrated Hessians: jig against path_explain's PyTorch explainer on the same MLP.

Both explain the same MLP (10-32-1, tanh, float32 weights shared) on a batch of inputs
from a zero baseline. The reference is a dense high-accuracy value computed by jig in
float64 two independent ways (the Gauss rule for the weight -ln t with 64 nodes, and
the Legendre product rule on the (α, β) square with 48 x 48 nodes), which must agree
to ~1e-12 before anything is timed. Then, interleaved (medians):

  * jig.interactions(rule="gauss_log") with m points (one gradient and 10 HVPs each),
    vmapped over the batch, float32;
  * path_explain's ``PathExplainerTorch.interactions(..., use_expectation=False)`` with
    ``num_samples = k²`` (its grid: k points ``i/(k-1)`` per axis, weights ``1/k``).

The error is the largest absolute deviation from the reference over the batch, divided
by the largest |Γ|. A jig rule with path_explain's grid nodes is also checked against
path_explain's output (same quantity, same discretisation: agreement to float32).

path_explain 0.0.7 imports TensorFlow in its ``__init__``: the torch explainer is
loaded here by file path. Its ``input_tensor.requires_grad_ = True`` is a no-op, so the
script calls ``x.requires_grad_()`` itself. torch runs with ``--threads`` threads.

Run (needs the peers' venv, see /work/shared/PEERS.md):
    ~/peers-venv/bin/python benchmarks/interactions.py [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # for the reference only; timed runs are float32

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing  # noqa: E402

import jig  # noqa: E402

N_IN, N_HID, BATCH = 10, 32, 8


def torch_explainer_module():
    spec_paths = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "path_explain",
                                        "explainers", "path_explainer_torch.py"))
    if not spec_paths:
        raise SystemExit("path_explain is not installed in this interpreter's environment")
    spec = importlib.util.spec_from_file_location("path_explainer_torch", spec_paths[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mlp(x, w1, b1, w2, b2):
    return (jnp.tanh(x @ w1 + b1) @ w2 + b2)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jig-points", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--pe-k", type=int, nargs="+", default=[4, 7, 16, 32])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    w1 = (rng.normal(size=(N_IN, N_HID)) * 1.2 / np.sqrt(N_IN)).astype(np.float32)
    b1 = (rng.normal(size=N_HID) * 0.2).astype(np.float32)
    w2 = (rng.normal(size=(N_HID, 1)) / np.sqrt(N_HID)).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    xs = rng.normal(size=(BATCH, N_IN)).astype(np.float32)
    params32 = tuple(jnp.asarray(a) for a in (w1, b1, w2, b2))
    params64 = tuple(jnp.asarray(a, jnp.float64) for a in (w1, b1, w2, b2))

    # the reference, two independent quadratures in float64
    def batch(explain, x, params):
        return jax.jit(jax.vmap(explain, in_axes=(0,) + (None,) * 4))(x, *params)

    x64 = jnp.asarray(xs, jnp.float64)
    ref = np.asarray(batch(jig.interactions(mlp, 0.0, 64), x64, params64))
    ref2 = np.asarray(batch(jig.interactions(mlp, 0.0, 48, rule="gauss_legendre"), x64, params64))
    scale = np.abs(ref).max()
    agree = np.abs(ref - ref2).max() / scale
    assert agree < 1e-10, agree

    # path_explain, its module loaded by path
    pe = torch_explainer_module()
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID), torch.nn.Tanh(), torch.nn.Linear(N_HID, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w1.T.copy()))
        net[0].bias.copy_(torch.from_numpy(b1))
        net[2].weight.copy_(torch.from_numpy(w2.T.copy()))
        net[2].bias.copy_(torch.from_numpy(b2))
    explainer = pe.PathExplainerTorch(net)
    base = torch.zeros(1, N_IN)

    def pe_run(k):
        x = torch.from_numpy(xs.copy())
        x.requires_grad_()  # path_explain's own `requires_grad_ = True` is a no-op
        out = explainer.interactions(x, base, num_samples=k * k, use_expectation=False, verbose=False)
        return out.detach().numpy()

    x32 = jnp.asarray(xs)
    jig_fns = {m: (lambda e: (lambda: e(x32, *params32)))(
        jax.jit(jax.vmap(jig.interactions(mlp, 0.0, m), in_axes=(0,) + (None,) * 4))) for m in args.jig_points}

    # the same discretisation in both: jig with path_explain's grid reproduces it
    k_grid = args.pe_k[0]
    grid = jig.rules.Rule("path_explain_grid", lambda k: (np.arange(k) / (k - 1), np.full(k, 1.0 / k)), min_steps=2)
    jig_grid = np.asarray(batch(jig.interactions(mlp, 0.0, k_grid, rule=grid), x32, params32))
    same = np.abs(jig_grid - pe_run(k_grid)).max() / scale

    fns = {f"jig gauss_log m={m}": jig_fns[m] for m in args.jig_points}
    fns.update({f"path_explain k={k} (k²={k * k})": (lambda k: (lambda: pe_run(k)))(k) for k in args.pe_k})
    times = _timing.interleaved(fns, reps=args.reps)
    rows = []
    for m in args.jig_points:
        err = np.abs(np.asarray(jig_fns[m]()) - ref).max() / scale
        rows.append((f"jig gauss_log m={m}", m, times[f"jig gauss_log m={m}"]["median_s"], err))
    for k in args.pe_k:
        err = np.abs(pe_run(k) - ref).max() / scale
        name = f"path_explain k={k} (k²={k * k})"
        rows.append((name, k * k, times[name]["median_s"], err))

    print(f"load: {os.getloadavg()}, torch threads {args.threads}, batch {BATCH}, MLP {N_IN}-{N_HID}-1 tanh")
    print(f"reference: gauss_log 64 vs Legendre 48x48 product agree to {agree:.1e} (relative)")
    print(f"jig with path_explain's grid (k={k_grid}) vs path_explain: {same:.1e} (relative)")
    print("| method | path points | seconds per batch | max error / max|Γ| |")
    print("|---|---|---|---|")
    for name, pts, t, err in rows:
        print(f"| {name} | {pts} | {t:.4f} | {err:.1e} |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": _timing.machine(), "load": os.getloadavg(), "threads": args.threads,
            "reference_agreement": agree, "grid_agreement": same,
            "rows": [dict(method=r[0], points=r[1], seconds=r[2], error=r[3]) for r in rows],
        }, indent=1))


if __name__ == "__main__":
    main()
