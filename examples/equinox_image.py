"""An Equinox CNN explained: which pixels, and which places of its first feature map, make it see a digit?

A small Equinox CNN (two 3x3 convolutions, channels first) is trained with optax on
scikit-learn's 8x8 digits (real scans shipped inside scikit-learn: no download).
Held-out digits are then explained for their predicted class twice:

  * pixels:   ``jig.ig`` with the model passed as an argument (an Equinox model is a
              pytree: its arrays are traced, never frozen into the explainer);
  * layer:    ``jig.equinox.layer_ig`` at the first convolution, chosen with
              ``where=lambda m: m.conv1``; the attributions over its (16, 8, 8)
              output are summed over channels into one 8x8 map.

It prints the completeness error of both (``Σ A = F(x) - F(baseline)``, at the input
and at the layer) and writes ``equinox_digits.png``: rows are the two methods,
columns the digits.

    python examples/equinox_image.py --out equinox-out     # ~20 s on 2 CPU cores
    python examples/equinox_image.py --quick --out /tmp/e  # a few seconds (the test's form)
"""

from __future__ import annotations

import argparse
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import jig
from jig import viz


class CNN(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    dense: eqx.nn.Linear
    head: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.conv1 = eqx.nn.Conv2d(1, 16, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(16, 32, 3, padding=1, key=k2)
        self.dense = eqx.nn.Linear(32 * 4 * 4, 64, key=k3)
        self.head = eqx.nn.Linear(64, 10, key=k4)

    def __call__(self, x):  # x: (1, 8, 8), one image; returns 10 logits
        h = jax.nn.silu(self.conv1(x))
        h = jax.nn.silu(self.conv2(h))
        h = h.reshape(32, 4, 2, 4, 2).mean(axis=(2, 4))  # 2x2 average pooling
        return self.head(jax.nn.silu(self.dense(h.reshape(-1))))


def train(x, y, steps: int, seed: int) -> CNN:
    """Adam on softmax cross-entropy, minibatches of 128."""
    model = CNN(jax.random.key(seed))
    opt = optax.adam(3e-3)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state, xb, yb):
        def loss(m):
            return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(m)(xb), yb).mean()

        value, grads = eqx.filter_value_and_grad(loss)(model)
        updates, state = opt.update(grads, state, model)
        return eqx.apply_updates(model, updates), state, value

    rng = np.random.default_rng(seed)
    for i in range(steps):
        idx = rng.choice(len(x), 128, replace=False)
        model, state, value = step(model, state, x[idx], y[idx])
        if i % 100 == 0 or i == steps - 1:
            print(f"  step {i:4d}  loss {float(value):.3f}")
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="equinox-out", help="folder for the picture")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_steps, steps, n_show = (25, 8, 3) if args.quick else (400, 64, 8)
    os.makedirs(args.out, exist_ok=True)

    d = load_digits()
    x_all = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8), channels first
    order = np.random.default_rng(args.seed).permutation(len(x_all))
    test, tr = order[:360], order[360:]

    print(f"training an Equinox CNN on {len(tr)} digits ({train_steps} steps)")
    model = train(x_all[tr], d.target[tr], train_steps, args.seed)
    pred_all = np.asarray(jnp.argmax(jax.jit(jax.vmap(model))(x_all[test]), -1))
    print(f"held-out accuracy: {np.mean(pred_all == d.target[test]):.1%} on {len(test)} digits")

    idx = [test[np.flatnonzero(d.target[test] == c)[0]] for c in range(n_show)]  # one digit per class
    x = jnp.asarray(x_all[idx])
    pred = jnp.argmax(jax.vmap(model)(x), -1)

    # pixels: jig.ig over the image, the model an argument (its arrays traced)
    pixels = jig.ig(lambda xi, m, c: m(xi)[c], 0.0, steps, return_delta=True)
    A_px, d_px = jax.vmap(pixels, in_axes=(0, None, 0))(x, model, pred)

    # the first convolution's output: jig.equinox.layer_ig with where=lambda m: m.conv1
    def layer(m, xi, c):
        return jig.equinox.layer_ig(m, lambda m: m.conv1, lambda y: y[c], steps=steps, return_delta=True)(m, xi)

    res = jax.vmap(layer, in_axes=(None, 0, 0))(model, x, pred)

    gap = np.asarray(A_px).reshape(len(idx), -1).sum(-1) - np.asarray(d_px)  # F(x) - F(0)
    print(f"\n{'attributed to':<28} {'mean |delta|':>12} {'mean F(x) - F(b)':>17}")
    print(f"{'pixels (jig.ig)':<28} {np.abs(np.asarray(d_px)).mean():>12.1e} {gap.mean():>17.2f}")
    layer_gap = np.asarray(res.attributions).reshape(len(idx), -1).sum(-1) - np.asarray(res.delta)
    print(f"{'conv1 output (layer_ig)':<28} {np.abs(np.asarray(res.delta)).mean():>12.1e} {layer_gap.mean():>17.2f}")
    print("(delta is the completeness error: Σ A - (F(x) - F(baseline)))")

    columns = {
        "pixels (jig.ig)": np.asarray(A_px)[:, 0],  # (n, 8, 8)
        "conv1 map (layer_ig)": np.asarray(res.attributions).sum(axis=1),  # channels summed: (n, 8, 8)
    }
    fig = viz.grid(columns, images=np.asarray(x)[:, 0], labels=[f"pred {int(c)}" for c in pred],
                   methods_as_rows=True, underlay="outline", interpolation="bilinear",
                   title="An Equinox CNN: IG at the pixels and at the first convolution")
    out = os.path.join(args.out, "equinox_digits.png")
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
