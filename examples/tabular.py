"""Which measurements drive a tumour classifier? IG on tabular data, checked against permutation importance.

An MLP (Flax) is trained on scikit-learn's breast-cancer data (569 tumours, 30
measurements, shipped inside scikit-learn) to output the logit of "malignant".
Each held-out tumour is explained two ways:

  * IG from the **median** training row (``jig.baselines.median``): "why is this
    tumour's score different from a typical tumour's?",
  * **expected gradients** over 64 training rows (``jig.paths.expected`` over
    ``jig.baselines.sample``): the same question without picking one reference.

Mean |attribution| over the held-out tumours gives a global ranking, compared with
the model-agnostic ranking most users already know: scikit-learn's
``permutation_importance`` (the drop in log-likelihood when one column is shuffled).
The script prints the Spearman rank correlation and writes two bar charts:
``tabular_global.png`` (the three rankings side by side) and ``tabular_patient.png``
(one tumour's signed attributions: green pushes towards malignant, red towards benign).

    python examples/tabular.py --out tabular-out     # ~20 s on 2 CPU cores
    python examples/tabular.py --quick --out /tmp/t  # a few seconds (the test's form)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer
from sklearn.inspection import permutation_importance
from sklearn.metrics import log_loss

import jig
from jig import viz


class MLP(nn.Module):
    """30 -> 32 -> 32 -> 1 with SiLU: the logit of 'malignant'."""

    @nn.compact
    def __call__(self, x):
        x = nn.silu(nn.Dense(32)(x))
        x = nn.silu(nn.Dense(32)(x))
        return nn.Dense(1)(x)[..., 0]


def train(x, y, steps: int, seed: int):
    """Full-batch AdamW on the logistic loss; returns ``apply, params``."""
    model = MLP()
    # jit: one compile instead of one per op; an "rbg" key compiles its random draws ~3x faster
    # than the default threefry on CPU (seconds, for a model that trains in seconds)
    params = jax.jit(model.init)(jax.random.key(seed, impl="rbg"), x[:1])
    opt = optax.adamw(3e-3, weight_decay=1e-2)
    state = jax.jit(opt.init)(params)

    @jax.jit
    def step(params, state):
        def loss(p):
            return optax.sigmoid_binary_cross_entropy(model.apply(p, x), y).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    for _ in range(steps):
        params, state, value = step(params, state)
    print(f"  final training loss {float(value):.3f}")
    return model.apply, params


class Fitted:
    """The trained JAX model with the scikit-learn classifier methods permutation_importance uses."""

    classes_ = np.array([0, 1])

    def __init__(self, apply, params):
        self.apply, self.params = apply, params

    def fit(self, x, y):  # already trained; present because scikit-learn checks for it
        return self

    def predict_proba(self, x):
        p = np.asarray(jax.nn.sigmoid(self.apply(self.params, jnp.asarray(x, jnp.float32))), np.float64)
        return np.stack([1 - p, p], axis=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="tabular-out", help="folder for the pictures")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_steps, steps, k_data, repeats = (100, 8, 8, 2) if args.quick else (300, 32, 64, 20)
    os.makedirs(args.out, exist_ok=True)

    data = load_breast_cancer()
    names = list(data.feature_names)
    x_all = data.data.astype(np.float32)
    y_all = (data.target == 0).astype(np.float32)  # 1 = malignant
    order = np.random.default_rng(args.seed).permutation(len(x_all))
    te, tr = order[:114], order[114:]
    mu, sd = x_all[tr].mean(0), x_all[tr].std(0)
    x_all = (x_all - mu) / sd  # standardised with training statistics
    x_tr, x_te = jnp.asarray(x_all[tr]), jnp.asarray(x_all[te])

    print(f"training an MLP on {len(tr)} tumours ({train_steps} full-batch steps)")
    apply, params = train(x_tr, jnp.asarray(y_all[tr]), train_steps, args.seed)
    acc = np.mean((np.asarray(apply(params, x_te)) > 0) == y_all[te])
    print(f"held-out accuracy: {acc:.1%} on {len(te)} tumours")

    f = lambda x, params: apply(params, x)  # noqa: E731  (a scalar per row)
    stack = jig.baselines.sample(x_tr, k_data, jax.random.key(args.seed))
    explainers = {
        "IG, median baseline": jig.ig(f, jig.baselines.median(x_tr), steps, return_delta=True),
        f"expected gradients ({k_data} rows)": jig.ig(f, None, steps, path=jig.paths.expected(stack),
                                                       return_delta=True),
    }
    importance, local = {}, {}
    for name, explain in explainers.items():
        t0 = time.perf_counter()
        attr, delta = jax.block_until_ready(jax.vmap(explain, in_axes=(0, None))(x_te, params))
        print(f"{name:<28} max |delta| {float(jnp.max(jnp.abs(delta))):.1e}   "
              f"{time.perf_counter() - t0:.2f}s for {len(te)} tumours")
        importance[name] = np.abs(np.asarray(attr)).mean(0)
        local[name] = np.asarray(attr)

    scorer = lambda est, x, y: -log_loss(y, est.predict_proba(x)[:, 1], labels=[0, 1])  # noqa: E731
    perm = permutation_importance(Fitted(apply, params), np.asarray(x_te), y_all[te].astype(int),
                                  scoring=scorer, n_repeats=repeats, random_state=args.seed)
    importance["permutation importance"] = perm.importances_mean
    print()
    for name in explainers:
        rho = spearmanr(importance[name], perm.importances_mean).statistic
        top_ig = set(np.argsort(-importance[name])[:10])
        top_perm = set(np.argsort(-perm.importances_mean)[:10])
        print(f"Spearman rank correlation, {name} vs permutation importance: {rho:+.2f} "
              f"(top-10 overlap {len(top_ig & top_perm)}/10)")

    fig = viz.bars(importance, names, top=12, signed=False,
                   title="Global importance on held-out tumours: mean |IG| vs permutation importance")
    path_global = os.path.join(args.out, "tabular_global.png")
    fig.savefig(path_global, dpi=100)

    logits = np.asarray(apply(params, x_te))
    i = int(np.argmin(np.abs(logits)))  # the tumour the model is least sure about: mixed evidence
    logit = float(logits[i])
    pfig = viz.bars({k: v[i] for k, v in local.items()}, names, top=10,
                    title=f"The least certain tumour (p(malignant) = {float(jax.nn.sigmoid(logit)):.2f}, "
                          f"truly {'malignant' if y_all[te][i] else 'benign'})\n"
                          "green pushes towards "
                          "malignant, red towards benign")
    path_patient = os.path.join(args.out, "tabular_patient.png")
    pfig.savefig(path_patient, dpi=100)
    print(f"\nwrote {path_global}\nwrote {path_patient}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
