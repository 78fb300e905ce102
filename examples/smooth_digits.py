"""SmoothGrad over Integrated Gradients on real digits: ``jig.smooth`` beside plain IG.

The small CNN of ``jig demo`` (``jig._demo.train_digits``) is trained on scikit-learn's
8x8 digits; held-out digits are explained for their predicted class with

  * IG from a black baseline (``jig.ig``),
  * SmoothGrad-IG: IG averaged over noisy copies of the digit (``jig.smooth``,
    stddev 0.15 of the image's value range, as saliency's ``stdev_spread``),
  * VarGrad-IG: the variance of IG over the same copies (where IG is unstable).

It prints each method's max-sensitivity (``jig.metrics.sensitivity_max``: how far the
map moves when the digit moves by at most 0.02 per pixel; lower is steadier) and writes
``smooth_digits.png`` (one row per method, one column per digit).

    python examples/smooth_digits.py --out smooth-out          # ~1 min on 2 busy cores
    python examples/smooth_digits.py --quick --out /tmp/s      # seconds (the test's form)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jig
from jig import viz
from jig._demo import accuracy, load_digits, pick_examples, train_digits


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="smooth-out", help="folder for the picture")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_steps, steps, samples, n_show = (40, 8, 4, 3) if args.quick else (400, 32, 32, 6)
    os.makedirs(args.out, exist_ok=True)

    x_tr, y_tr, x_te, y_te = load_digits(args.seed)
    apply, params = train_digits(x_tr, y_tr, steps=train_steps, seed=args.seed, progress=False)
    print(f"held-out accuracy: {accuracy(apply, params, x_te, y_te):.1%} on {len(y_te)} digits")
    x = jnp.asarray(x_te[pick_examples(y_te, n_show)])
    pred = jnp.argmax(apply(params, x), -1)

    def logit(xi, params, c):  # the class-c logit of one image
        return apply(params, xi[None])[0, c]

    ig = jig.ig(logit, 0.0, steps)
    methods = {
        "IG": lambda key, xi, c: ig(xi, params, c),
        "SmoothGrad-IG": jig.smooth(ig, stddev=0.15, samples=samples),
        "VarGrad-IG": jig.smooth(ig, stddev=0.15, samples=samples, kind="vargrad"),
    }
    if args.quick:  # the smoke test: two methods, no sensitivity (each costs compilations)
        del methods["VarGrad-IG"]
    keys = jax.random.split(jax.random.key(args.seed), n_show)
    columns = {}
    print(f"\n{'method':<14} {'max-sensitivity':>15} {'time':>8}")
    for name, fn in methods.items():
        one = fn if name == "IG" else (lambda key, xi, c, fn=fn: fn(key, xi, params, c))
        t0 = time.perf_counter()
        attr = jax.block_until_ready(jax.jit(jax.vmap(one))(keys, x, pred))
        seconds = time.perf_counter() - t0
        columns[name] = np.asarray(attr)
        if args.quick:
            print(f"{name:<14} {'-':>15} {seconds:>7.2f}s")
            continue
        sens = jax.jit(jax.vmap(lambda k, xi, c, kk, one=one: jig.metrics.sensitivity_max(
            lambda z: one(k, z, c), xi, key=kk, samples=8)))(keys, x, pred, jax.random.split(jax.random.key(1), n_show))
        print(f"{name:<14} {float(np.mean(sens)):>15.3f} {seconds:>7.2f}s")
    print("(max-sensitivity: max ||E(x+d) - E(x)|| / ||E(x)|| over |d| <= 0.02; time includes compilation)")

    fig = viz.grid(columns, images=np.asarray(x), labels=[f"pred {int(c)}" for c in pred], methods_as_rows=True,
                   underlay="outline", interpolation="bilinear", size=1.5,
                   title=f"IG beside {' and '.join(list(methods)[1:])} ({samples} samples, stddev 0.15)")
    path = os.path.join(args.out, "smooth_digits.png")
    fig.savefig(path, dpi=70, pil_kwargs={"optimize": True})  # < 200 KB
    print(f"\nwrote {path} ({os.path.getsize(path) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
