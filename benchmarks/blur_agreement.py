"""Blur IG: jig against PAIR saliency's BlurIG on a natural 32x32 image, per padding mode.

saliency 0.2.1's BlurIG blurs with ``scipy.ndimage.gaussian_filter(mode="constant")``
(zero padding, ``truncate=4``), evaluates the model at ``sigma_i = i * max_sigma / steps``
(i = 0..steps-1, which is jig's ``riemann_right`` on ``sigma(alpha) = (1 - alpha) max_sigma``)
and takes ``d gamma / d sigma`` by a finite difference (``grad_step=0.01``). jig takes the
same nodes and weights, an exact ``jax.jvp`` velocity, and pads with ``reflect`` (its
default) or ``constant`` (zeros, as saliency).

Both explain the same JAX CNN (fixed random weights) on the same image: saliency calls
it through its ``call_model_function`` (a jitted ``vmap(grad)``), jig through ``jig.ig``.
Reported per mode and ``max_sigma``: the Spearman rank correlation of the attributions
(per pixel and channel, and of the channel sums), and the largest absolute difference
over the largest saliency magnitude.

Run in the peers' venv (it has saliency, scipy and scikit-image; jig from this checkout):

    ~/peers-venv/bin/python benchmarks/blur_agreement.py [--image astronaut|chelsea] [--steps 64]
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np


def load_image(name: str, side: int = 32) -> np.ndarray:
    """skimage's ``astronaut`` or ``chelsea``, resized (anti-aliased) to ``side x side``, in [0, 1]."""
    import skimage.data
    import skimage.transform

    img = getattr(skimage.data, name)()
    img = skimage.transform.resize(img, (side, side), anti_aliasing=True)
    return np.asarray(img, np.float32)


def make_cnn(seed: int = 0, classes: int = 10):
    """A small NHWC CNN (conv 3x3 x2 with tanh and 2x2 mean pools, then dense), fixed weights."""
    import jax
    import jax.numpy as jnp

    rng = np.random.RandomState(seed)

    def he(*shape, fan_in):
        return (rng.normal(size=shape) / math.sqrt(fan_in)).astype(np.float32)

    params = {
        "k1": he(3, 3, 3, 8, fan_in=27), "b1": np.zeros(8, np.float32),
        "k2": he(3, 3, 8, 16, fan_in=72), "b2": np.zeros(16, np.float32),
        "w": he(8 * 8 * 16, classes, fan_in=8 * 8 * 16),
    }

    def conv(x, k, b):
        y = jax.lax.conv_general_dilated(x[None], k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y[0] + b

    def pool(h):
        hh, ww, c = h.shape
        return h.reshape(hh // 2, 2, ww // 2, 2, c).mean(axis=(1, 3))

    def logits(x):
        h = pool(jnp.tanh(conv(x, params["k1"], params["b1"])))
        h = pool(jnp.tanh(conv(h, params["k2"], params["b2"])))
        return h.reshape(-1) @ params["w"]

    return logits


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a.reshape(-1), b.reshape(-1)).statistic)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="astronaut", choices=["astronaut", "chelsea"])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--sigmas", default="2,4,8", help="max_sigma values, comma-separated (pixels)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import saliency.core as saliency

    import jig

    x = load_image(args.image)
    logits = make_cnn()
    target = int(jnp.argmax(logits(jnp.asarray(x))))
    f = lambda x: logits(x)[target]  # noqa: E731
    grads = jax.jit(jax.vmap(jax.grad(f)))

    def call_model_function(x_batch, call_model_args=None, expected_keys=None):
        del call_model_args, expected_keys
        return {saliency.base.INPUT_OUTPUT_GRADIENTS: np.asarray(grads(jnp.asarray(x_batch, jnp.float32)))}

    rows = []
    for max_sigma in [float(s) for s in args.sigmas.split(",")]:
        ref = saliency.BlurIG().GetMask(x, call_model_function, max_sigma=max_sigma, steps=args.steps,
                                        grad_step=0.01, batch_size=args.steps)
        for mode in ("constant", "reflect"):
            path = jig.paths.blur(max_sigma, truncate=4.0, mode=mode)
            a = np.asarray(jig.ig(f, None, args.steps, path=path, rule="riemann_right")(jnp.asarray(x)))
            rows.append({
                "image": args.image, "max_sigma": max_sigma, "steps": args.steps, "mode": mode,
                "spearman": spearman(a, ref), "spearman_channel_sum": spearman(a.sum(-1), ref.sum(-1)),
                "max_rel_diff": float(np.abs(a - ref).max() / np.abs(ref).max()),
                "sum_jig": float(a.sum()), "sum_saliency": float(ref.sum()),
            })

    print(f"jig vs saliency BlurIG, {args.image} 32x32x3, CNN class {target}, {args.steps} steps (riemann_right)")
    print("| max_sigma | jig mode | Spearman (HWC) | Spearman (channel sums) | max abs diff / max abs saliency | sum jig | sum saliency |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['max_sigma']:g} | {r['mode']} | {r['spearman']:.6f} | {r['spearman_channel_sum']:.6f} | "
              f"{r['max_rel_diff']:.2e} | {r['sum_jig']:.4f} | {r['sum_saliency']:.4f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
