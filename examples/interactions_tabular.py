"""Which measurements act together? Integrated Hessians on the breast-cancer MLP.

The MLP of ``examples/tabular.py`` (30 standardised measurements -> the logit of
"malignant", SiLU, trained here the same way) is explained from the median training row
with ``jig.interactions``: a 30 x 30 matrix ``Γ`` per tumour whose rows sum to the IG
attributions (checked against ``jig.ig``) and whose entries sum to the logit's change
from the median row (completeness). The diagonal holds each measurement's own effect,
the off-diagonal entries the share of the change that two measurements cause together.

The script writes ``interactions_tabular.png``: one held-out tumour's ``Γ`` over its
12 most attributed measurements (signed), and the mean ``|Γ_ij|`` (i ≠ j) over all
held-out tumours: the pairs the model combines most.

    python examples/interactions_tabular.py --out docs/gallery      # ~15 s on 2 CPU cores
    python examples/interactions_tabular.py --quick --out /tmp/t   # a few seconds (the test's form)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_breast_cancer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tabular import train  # noqa: E402  (the same model and training as examples/tabular.py)

import jig  # noqa: E402


def short(name: str) -> str:
    return name.replace("mean ", "m. ").replace("worst ", "w. ").replace(" error", " err").replace("concave points", "concave pts")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="interactions-out", help="folder for the picture")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_steps, steps = (100, 8) if args.quick else (300, 32)
    os.makedirs(args.out, exist_ok=True)

    data = load_breast_cancer()
    names = [short(n) for n in data.feature_names]
    x_all = data.data.astype(np.float32)
    y_all = (data.target == 0).astype(np.float32)  # 1 = malignant
    order = np.random.default_rng(args.seed).permutation(len(x_all))
    te, tr = order[:114], order[114:]
    mu, sd = x_all[tr].mean(0), x_all[tr].std(0)
    x_all = (x_all - mu) / sd
    x_tr, x_te = jnp.asarray(x_all[tr]), jnp.asarray(x_all[te])
    print(f"training an MLP on {len(tr)} tumours ({train_steps} full-batch steps)")
    apply, params = train(x_tr, jnp.asarray(y_all[tr]), train_steps, args.seed)

    f = lambda x, params: apply(params, x)  # noqa: E731  (the logit of one row)
    median = jig.baselines.median(x_tr)
    explain = jig.interactions(f, median, steps, return_delta=True)
    t0 = time.perf_counter()
    G, delta = jax.block_until_ready(jax.vmap(explain, in_axes=(0, None))(x_te, params))
    print(f"Integrated Hessians ({steps} points): {G.shape[1]}x{G.shape[2]} per tumour, {len(te)} tumours in "
          f"{time.perf_counter() - t0:.2f}s; max |delta| {float(jnp.max(jnp.abs(delta))):.1e} "
          f"(logit changes up to {float(jnp.max(jnp.abs(G.sum(axis=(1, 2))))):.1f})")
    A = jax.vmap(jig.ig(f, median, 64), in_axes=(0, None))(x_te, params)
    gap = float(jnp.max(jnp.abs(G.sum(axis=2) - A)))
    print(f"rows sum to IG: max |Σ_j Γ_ij - A_i| = {gap:.1e} (IG with 64 Gauss-Legendre points)")

    logits = np.asarray(apply(params, x_te))
    i = int(np.argmin(np.abs(logits)))  # the tumour the model is least sure about: mixed evidence
    top = np.argsort(-np.abs(np.asarray(A[i])))[:12]
    g = np.asarray(G[i])[np.ix_(top, top)].copy()
    own = np.diag(g).copy()
    np.fill_diagonal(g, np.nan)  # the own effects dwarf the pairs: shown in the labels instead
    mean_abs = np.abs(np.asarray(G)).mean(0)
    np.fill_diagonal(mean_abs, 0.0)
    pairs = np.dstack(np.unravel_index(np.argsort(-np.triu(mean_abs, 1), axis=None)[:3], mean_abs.shape))[0]
    for a, b in pairs:
        print(f"  strongest pair on average: {names[a]} x {names[b]}  mean |Γ| {2 * mean_abs[a, b]:.3f}")
    glob_top = np.argsort(-mean_abs.sum(1))[:12]
    m = mean_abs[np.ix_(glob_top, glob_top)]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6), constrained_layout=True)
    lim = float(np.nanmax(np.abs(g)))
    cmap = matplotlib.colormaps["RdBu_r"].copy()
    cmap.set_bad("0.85")
    im = axes[0].imshow(g, cmap=cmap, vmin=-lim, vmax=lim)
    axes[0].set_title(f"The least certain tumour's Γ_ij, i ≠ j (logit {logits[i]:+.2f}, from the median row)\n"
                      "red: the pair raises 'malignant' together; own effects Γ_ii in the row labels", fontsize=9)
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    im2 = axes[1].imshow(m, cmap="Purples", vmin=0)
    axes[1].set_title(f"Mean |Γ_ij| (i ≠ j) over {len(te)} held-out tumours", fontsize=9)
    fig.colorbar(im2, ax=axes[1], shrink=0.8)
    for ax, idx, rows in ((axes[0], top, [f"{names[k]} ({v:+.2f})" for k, v in zip(top, own)]),
                          (axes[1], glob_top, [names[k] for k in glob_top])):
        ax.set_xticks(range(len(idx)), [names[k] for k in idx], rotation=70, ha="right", fontsize=7)
        ax.set_yticks(range(len(idx)), rows, fontsize=7)
    path = os.path.join(args.out, "interactions_tabular.png")
    fig.savefig(path, dpi=80)
    print(f"wrote {path} ({os.path.getsize(path) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
