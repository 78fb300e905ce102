"""A learned integration path: train a time-warp so that 4-step IG is complete.

IG along the straight line from a baseline ``b`` to ``x`` does not depend on how
fast the line is traversed: ``γ(α) = b + φ(α)(x - b)`` gives the same integral
for any monotone ``φ`` with ``φ(0) = 0, φ(1) = 1``. The quadrature error does
depend on ``φ``: nodes bunched where the gradient changes fast integrate better.
So ``φ`` is a free parameter to learn, and jig makes that a few lines:
``jig.paths.custom(gamma, params=theta)`` passes ``theta`` into the compiled
explainer, and the completeness error ``delta`` is differentiable in it.

Objective (stated): the mean squared completeness error, relative to
``F(x) - F(b)``, of 4-step midpoint-rule IG over a batch of training digits::

    L(θ) = mean_x (delta_θ(x) / (F(x) - F(b)))²

minimised with optax's Adam. ``φ`` is a Bernstein polynomial with increasing
coefficients (monotone, exact endpoints, ``θ = 0`` is the straight line). The
script prints the objective before and after on the training batch and on
held-out digits, and the error of the 4-step attributions against a 256-step
reference (what the objective is a proxy for).

Run: ``python examples/learned_path.py`` (``--quick`` for a few-second version).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jig

DEGREE = 8  # Bernstein degree of the warp φ
STEPS = 4  # quadrature nodes of the cheap explainer
RULE = "riemann_middle"


# --------------------------------------------------------------------------- the path


def warp(alpha, theta):
    """``φ_θ(α) = Σ_j c_j B_{j,n}(α)`` with ``0 = c_0 <= ... <= c_n = 1``: monotone,
    ``φ(0) = 0``, ``φ(1) = 1``; ``θ = 0`` gives ``c_j = j/n``, i.e. ``φ(α) = α``."""
    n = theta.shape[0]
    c = jnp.concatenate([jnp.zeros(1, theta.dtype), jnp.cumsum(jax.nn.softmax(theta))])
    j = jnp.arange(n + 1)
    binom = jnp.asarray([math.comb(n, k) for k in range(n + 1)], theta.dtype)
    basis = binom * alpha**j * (1 - alpha) ** (n - j)
    return jnp.dot(c, basis)


def warped_line(alpha, x, baseline, theta):
    """The straight line from ``baseline`` to ``x``, traversed at speed ``φ_θ'``."""
    return baseline + warp(alpha, theta) * (x - baseline)


# --------------------------------------------------------------------------- the model


def logits(x, params):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def class_logit(x, params, c):
    return logits(x, params)[c]


def load_digits():
    from sklearn.datasets import load_digits as _load

    data = _load()
    x = (data.data / 16.0).astype(np.float32)  # 8x8 images, 64 features in [0, 1]
    return x, data.target.astype(np.int32)


def train_classifier(x, y, steps, seed):
    """A 64-32-10 tanh MLP fitted with full-batch Adam."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": jnp.asarray(rng.normal(size=(64, 32)) / 8.0, jnp.float32),
        "b1": jnp.zeros(32, jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(32, 10)) / math.sqrt(32), jnp.float32),
        "b2": jnp.zeros(10, jnp.float32),
    }
    opt = optax.adam(1e-2)

    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits(x, p), y).mean()

    @jax.jit  # data as arguments: closed-over arrays would be constant-folded slowly
    def step(p, s, x, y):
        u, s = opt.update(jax.grad(loss)(p, x, y), s, p)
        return optax.apply_updates(p, u), s

    state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state, x, y)
    p = jax.tree.map(np.asarray, params)
    predicted = np.argmax(np.tanh(np.asarray(x) @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], -1)
    return params, float(np.mean(predicted == np.asarray(y)))


# --------------------------------------------------------------------------- the objective


def relative_deltas(theta, xs, cs, params, baseline):
    """``delta / (F(x) - F(b))`` of 4-step IG along the warped line, per example."""
    path = jig.paths.custom(warped_line, theta)
    explain = jig.ig(class_logit, baseline, STEPS, rule=RULE, path=path, return_delta=True)

    def one(x, c):
        _, delta = explain(x, params, c)
        gap = class_logit(x, params, c) - class_logit(baseline, params, c)
        return delta / gap

    return jax.vmap(one)(xs, cs)


def objective(theta, xs, cs, params, baseline):
    """The stated objective: mean squared relative completeness error."""
    return jnp.mean(relative_deltas(theta, xs, cs, params, baseline) ** 2)


def attribution_error(theta, xs, cs, params, baseline):
    """Mean relative L1 error of the 4-step attributions against 256-step IG."""
    cheap = jig.ig(class_logit, baseline, STEPS, rule=RULE, path=jig.paths.custom(warped_line, theta))
    reference = jig.ig(class_logit, baseline, 256, rule="gauss_legendre")
    a = jax.vmap(cheap, (0, None, 0))(xs, params, cs)
    r = jax.vmap(reference, (0, None, 0))(xs, params, cs)
    return jnp.mean(jnp.sum(jnp.abs(a - r), -1) / jnp.sum(jnp.abs(r), -1))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few training steps (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="path-training steps")
    args = parser.parse_args(argv)
    model_steps = 150 if args.quick else 400
    path_steps = args.steps if args.steps is not None else (40 if args.quick else 300)
    batch = 32 if args.quick else 128
    t0 = time.time()

    x, y = load_digits()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x))
    train, held = order[:1200], order[1200:]
    params, accuracy = train_classifier(jnp.asarray(x[train]), jnp.asarray(y[train]), model_steps, args.seed)
    pick = lambda idx: (jnp.asarray(x[idx[:batch]]), jnp.asarray(y[idx[:batch]]))
    xs, cs = pick(train)
    xh, ch = pick(held)
    baseline = jnp.zeros(64, jnp.float32)  # a black image
    print(f"classifier: train accuracy {accuracy:.3f} ({model_steps} Adam steps)")
    print(f"explainer: {STEPS}-step {RULE} IG of the true class's logit, black baseline")
    print("objective: mean (delta / (F(x) - F(b)))^2, delta = completeness error")

    theta = jnp.zeros(DEGREE, jnp.float32)  # the straight line at constant speed
    opt = optax.adam(0.1)

    @jax.jit
    def fit_path(theta, xs, cs, params, baseline):
        def step(carry, _):
            theta, state = carry
            grad = jax.grad(objective)(theta, xs, cs, params, baseline)
            updates, state = opt.update(grad, state, theta)
            return (optax.apply_updates(theta, updates), state), None

        (theta, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), None, length=path_steps)
        return theta

    @jax.jit
    def metrics(theta, xs, cs, xh, ch, params, baseline):
        return {
            "train": objective(theta, xs, cs, params, baseline),
            "held_out": objective(theta, xh, ch, params, baseline),
            "attribution_error": attribution_error(theta, xh, ch, params, baseline),
        }

    def report(theta):
        return {k: float(v) for k, v in metrics(theta, xs, cs, xh, ch, params, baseline).items()}

    before = report(theta)
    theta = fit_path(theta, xs, cs, params, baseline)
    after = report(theta)
    theta = np.asarray(theta, np.float64)
    print(f"{'':28s}{'straight line':>15s}{'learned warp':>15s}")
    print(f"{'objective (train batch)':28s}{before['train']:15.3e}{after['train']:15.3e}")
    print(f"{'objective (held-out batch)':28s}{before['held_out']:15.3e}{after['held_out']:15.3e}")
    print(
        f"{'attribution error vs 256':28s}{before['attribution_error']:15.3e}{after['attribution_error']:15.3e}"
    )
    c = np.concatenate([[0.0], np.cumsum(np.exp(theta) / np.sum(np.exp(theta)))])
    n = len(c) - 1
    phi = [sum(c[j] * math.comb(n, j) * a**j * (1 - a) ** (n - j) for j in range(n + 1)) for a in (0.25, 0.5, 0.75)]
    print("learned warp phi(alpha) at alpha = .25, .5, .75:", [round(float(v), 3) for v in phi])
    print(f"({path_steps} Adam steps on the path, {time.time() - t0:.1f} s)")
    return {"before": before, "after": after, "theta": theta}


if __name__ == "__main__":
    main(sys.argv[1:])
