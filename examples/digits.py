"""Which pixels make a CNN see a digit? Integrated Gradients with four baselines, compared.

A small Flax CNN is trained on scikit-learn's 8x8 digits (1,797 real scans that ship
inside scikit-learn: no download). Held-out digits are then explained with IG from
four different "absence of signal" references, because IG answers
"why F(x) rather than F(baseline)?" and the baseline decides the question:

  * zero:      the straight line from a black image (the classic choice; black
               pixels get exactly zero attribution, whatever their role),
  * blurred:   the straight line from a blurred copy of the digit
               (``jig.baselines.blurred``): only fine detail is explained,
  * uniform:   the average of IG from 8 uniform-noise images
               (``jig.paths.expected`` over ``jig.baselines.uniform``),
  * expected:  Expected Gradients, IG averaged over 32 training digits
               (``jig.paths.expected`` over ``jig.baselines.sample``).

It prints each method's completeness error and time, and writes
``digits_baselines.png`` (a grid: inputs x methods) and ``digits_signs.png`` (one
digit in the four sign modes of ``jig.viz.heatmap``).

    python examples/digits.py --out digits-out          # ~30 s on 2 CPU cores
    python examples/digits.py --quick --out /tmp/d      # a few seconds (the test's form)
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
from matplotlib.figure import Figure
from sklearn.datasets import load_digits

import jig
from jig import viz


class CNN(nn.Module):
    """Two 3x3 convolutions, 2x2 average pooling, two dense layers; smooth SiLU activations."""

    @nn.compact
    def __call__(self, x):
        x = nn.silu(nn.Conv(16, (3, 3))(x))
        x = nn.silu(nn.Conv(32, (3, 3))(x))
        b, h, w, c = x.shape
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
        x = nn.silu(nn.Dense(64)(x.reshape(b, -1)))
        return nn.Dense(10)(x)


def train(x, y, steps: int, seed: int):
    """AdamW on softmax cross-entropy, minibatches of 128; returns the parameters."""
    model = CNN()
    # jit: one compile instead of one per op; an "rbg" key compiles its random draws ~3x faster
    # than the default threefry on CPU (seconds, for a model that trains in seconds)
    params = jax.jit(model.init)(jax.random.key(seed, impl="rbg"), x[:1])
    opt = optax.adamw(optax.cosine_decay_schedule(3e-3, steps), weight_decay=1e-4)
    state = jax.jit(opt.init)(params)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xb), yb).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    rng = np.random.default_rng(seed)
    for i in range(steps):
        idx = rng.choice(len(x), 128, replace=False)
        params, state, value = step(params, state, x[idx], y[idx])
        if i % 100 == 0 or i == steps - 1:
            print(f"  step {i:4d}  loss {float(value):.3f}")
    return model.apply, params


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="digits-out", help="folder for the pictures")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_steps, steps, n_show, k_noise, k_data = (60, 8, 3, 2, 4) if args.quick else (500, 32, 8, 8, 32)
    os.makedirs(args.out, exist_ok=True)

    d = load_digits()
    x_all = (d.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1) in [0, 1]
    order = np.random.default_rng(args.seed).permutation(len(x_all))
    test, tr = order[:360], order[360:]
    x_tr, y_tr = x_all[tr], d.target[tr]

    print(f"training a CNN on {len(tr)} digits ({train_steps} steps)")
    apply, params = train(x_tr, y_tr, train_steps, args.seed)
    pred_all = np.asarray(jnp.argmax(apply(params, x_all[test]), -1))
    print(f"held-out accuracy: {np.mean(pred_all == d.target[test]):.1%} on {len(test)} digits")

    # one held-out example of each class 0, 1, 2, ... explained for its predicted class
    idx = [test[np.flatnonzero(d.target[test] == c)[0]] for c in range(n_show)]
    x = jnp.asarray(x_all[idx])
    pred = jnp.argmax(apply(params, x), -1)

    def logit(xi, params, c):  # the scalar to explain: the class-c logit of one image
        return apply(params, xi[None])[0, c]

    key_noise, key_data = jax.random.split(jax.random.key(args.seed))
    methods = {  # name: (baseline, path)
        "zero": (0.0, None),
        "blurred": (jig.baselines.blurred(1.5), None),
        "uniform noise": (None, jig.paths.expected(jig.baselines.uniform(key_noise, num=k_noise))),
        "expected (train)": (None, jig.paths.expected(jig.baselines.sample(jnp.asarray(x_tr), k_data, key_data))),
    }
    columns = {}
    print(f"\n{'baseline':<18} {'mean |delta|':>12} {'F(x) - F(start)':>16} {'time':>8}")
    for name, (baseline, path) in methods.items():
        explain = jig.ig(logit, baseline, steps, path=path, return_delta=True)
        batched = jax.jit(jax.vmap(explain, in_axes=(0, None, 0)))
        t0 = time.perf_counter()
        attr, delta = jax.block_until_ready(batched(x, params, pred))
        seconds = time.perf_counter() - t0
        gap = np.asarray(attr).reshape(len(idx), -1).sum(-1) - np.asarray(delta)  # = F(x) - F(start)
        columns[name] = np.asarray(attr)
        print(f"{name:<18} {np.abs(np.asarray(delta)).mean():>12.1e} {gap.mean():>16.2f} {seconds:>7.2f}s")
    print("(delta is the completeness error; time includes compilation)")

    labels = [f"pred {int(c)}" for c in pred]
    fig = viz.grid(columns, images=np.asarray(x), labels=labels, methods_as_rows=True,
                   underlay="outline", interpolation="bilinear",
                   title="The same CNN, four baselines: what IG explains depends on the reference")
    path_grid = os.path.join(args.out, "digits_baselines.png")
    fig.savefig(path_grid, dpi=100)

    # one digit in the four sign modes, drawn into one figure with heatmap(..., ax=)
    sfig = Figure(figsize=(8.8, 2.7), layout="constrained")
    for k, sign in enumerate(viz.SIGNS):
        viz.heatmap(columns["expected (train)"][0], np.asarray(x[0]), sign=sign, underlay="outline",
                    interpolation="bilinear", title=f"sign={sign!r}", ax=sfig.add_subplot(1, 4, k + 1))
    sfig.suptitle(f"One digit (pred {int(pred[0])}), expected gradients, by sign", fontsize=11)
    path_signs = os.path.join(args.out, "digits_signs.png")
    sfig.savefig(path_signs, dpi=100)
    print(f"\nwrote {path_grid}\nwrote {path_signs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
