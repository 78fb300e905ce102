"""A Keras 3 image model explained with jig, on the JAX backend.

A small functional Keras CNN (channels last, with batch normalisation and dropout) is
trained with ``model.fit`` on scikit-learn's 8x8 digits (real scans shipped inside
scikit-learn: no download). Held-out digits are then explained for their predicted
class twice:

  * pixels:   ``jig.keras.ig(model, f)``: IG of the input, through
              ``model.stateless_call`` with the weights read at every call;
  * layer:    ``jig.keras.layer_ig(model, "conv1", f)``: IG over the output of the
              layer Keras names ``"conv1"`` (8x8x16), summed over channels
              (``token_scores``: the last axis) into one 8x8 map.

Then it trains one more epoch and explains again: the same explainer gives new
attributions (the weights are arguments, not constants compiled in).

It prints the completeness errors and writes ``keras_digits.png`` (rows: methods,
columns: digits).

    python examples/keras_image.py --out keras-out       # ~30 s on 2 CPU cores
    python examples/keras_image.py --quick --out /tmp/k  # a few seconds (the test's form)
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import jig  # noqa: E402
from jig import viz  # noqa: E402


def make_model() -> keras.Model:
    x = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="silu", name="conv1")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="silu", name="conv2")(h)
    h = keras.layers.AveragePooling2D(2, name="pool")(h)
    h = keras.layers.Dropout(0.2, name="drop")(keras.layers.Flatten(name="flat")(h))
    h = keras.layers.Dense(64, activation="silu", name="dense")(h)
    return keras.Model(x, keras.layers.Dense(10, name="logits")(h), name="digits_cnn")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="keras-out", help="folder for the picture")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    epochs, steps, n_show, n_train = (1, 8, 3, 512) if args.quick else (20, 64, 8, None)
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    d = load_digits()
    x_all = (d.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1), channels last
    order = np.random.default_rng(args.seed).permutation(len(x_all))
    test, tr = order[:360], order[360:][:n_train]

    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    print(f"training a Keras CNN on {len(tr)} digits ({epochs} epochs)")
    model.fit(x_all[tr], d.target[tr], batch_size=64, epochs=epochs, verbose=0)
    accuracy = np.mean(np.argmax(model(x_all[test], training=False), -1) == d.target[test])
    print(f"held-out accuracy: {accuracy:.1%} on {len(test)} digits")

    idx = [test[np.flatnonzero(d.target[test] == c)[0]] for c in range(n_show)]  # one digit per class
    x = jnp.asarray(x_all[idx])
    pred = jnp.argmax(model(x, training=False), -1)

    # Both explainers take one image; jax.vmap runs a batch, with a class per image.
    def pixels(xi, c):
        return jig.keras.ig(model, lambda y: y[c], 0.0, steps, return_delta=True)(xi)

    def layer(xi, c):
        return jig.keras.layer_ig(model, "conv1", lambda y: y[c], steps=steps, return_delta=True)(xi)

    A_px, d_px = jax.vmap(pixels)(x, pred)
    res = jax.vmap(layer)(x, pred)

    gap = np.asarray(A_px).reshape(len(idx), -1).sum(-1) - np.asarray(d_px)  # F(x) - F(0)
    layer_gap = np.asarray(res.attributions).reshape(len(idx), -1).sum(-1) - np.asarray(res.delta)
    print(f"\n{'attributed to':<30} {'mean |delta|':>12} {'mean F(x) - F(b)':>17}")
    print(f"{'pixels (jig.keras.ig)':<30} {np.abs(np.asarray(d_px)).mean():>12.1e} {gap.mean():>17.2f}")
    print(f"{'conv1 output (layer_ig)':<30} {np.abs(np.asarray(res.delta)).mean():>12.1e} {layer_gap.mean():>17.2f}")
    print("(delta is the completeness error: Σ A - (F(x) - F(baseline)))")

    # the weights are read at every call: train on, and the same explainer sees the new model
    c0 = int(pred[0])
    explain = jig.keras.ig(model, lambda y: y[c0], 0.0, steps)
    before = np.asarray(explain(x[0]))
    model.fit(x_all[tr], d.target[tr], batch_size=64, epochs=1, verbose=0)
    after = np.asarray(explain(x[0]))
    print(f"one more epoch of training: pixel attributions of digit 0 changed by "
          f"{np.abs(after - before).sum() / np.abs(before).sum():.0%} (L1, relative)")

    columns = {
        "pixels (jig.keras.ig)": np.asarray(A_px)[..., 0],  # (n, 8, 8)
        "conv1 map (layer_ig)": np.asarray(res.token_scores),  # channels summed: (n, 8, 8)
    }
    fig = viz.grid(columns, images=np.asarray(x)[..., 0], labels=[f"pred {int(c)}" for c in pred],
                   methods_as_rows=True, underlay="outline", interpolation="bilinear",
                   title="A Keras CNN: IG at the pixels and at layer 'conv1'")
    out = os.path.join(args.out, "keras_digits.png")
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
