"""Agreement with an independent reference: a NumPy MLP with hand-written backprop and
a plain Python loop over the path, sharing nothing with jig but the weights."""

import jax.numpy as jnp
import numpy as np
import pytest

import jig
from _nets import init_mlp, mlp


def numpy_forward_and_grad(x, params):
    """tanh MLP with a scalar output, and its input gradient by manual backprop (float64)."""
    hs, zs = [x], []
    h = x
    for w, b in params[:-1]:
        z = h @ w + b
        h = np.tanh(z)
        zs.append(z)
        hs.append(h)
    w_out, b_out = params[-1]
    y = (h @ w_out + b_out)[0]
    g = w_out[:, 0]
    for (w, _), z in zip(reversed(params[:-1]), reversed(zs)):
        g = (g * (1.0 - np.tanh(z) ** 2)) @ w.T
    return y, g


def reference_ig(x, baseline, params, alphas, weights):
    total = np.zeros_like(x)
    for a, w in zip(alphas, weights):
        _, g = numpy_forward_and_grad(baseline + a * (x - baseline), params)
        total += w * g
    return (x - baseline) * total


def reference_nodes(rule, m):
    if rule == "riemann_left":
        return np.arange(m) / m, np.full(m, 1 / m)
    if rule == "riemann_right":
        return np.arange(1, m + 1) / m, np.full(m, 1 / m)
    if rule == "riemann_middle":
        return (np.arange(m) + 0.5) / m, np.full(m, 1 / m)
    if rule == "riemann_trapezoid":
        w = np.full(m, 1 / (m - 1))
        w[[0, -1]] /= 2
        return np.linspace(0, 1, m), w
    t, w = np.polynomial.legendre.leggauss(m)
    return (t + 1) / 2, w / 2


@pytest.mark.parametrize("rule", sorted(jig.rules.RULES))
@pytest.mark.parametrize("m", [3, 20])
def test_jig_matches_a_hand_written_numpy_ig(rule, m):
    params32 = init_mlp(7, sizes=(8, 16, 16, 1))
    params = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params32]
    rng = np.random.default_rng(m)
    x = rng.normal(size=8)
    baseline = rng.normal(size=8) * 0.3
    # the NumPy model is the same function as the JAX one
    y, _ = numpy_forward_and_grad(x, params)
    np.testing.assert_allclose(y, mlp(jnp.asarray(x, jnp.float32), params32, "tanh"), rtol=1e-5)

    ref = reference_ig(x, baseline, params, *reference_nodes(rule, m))
    A = jig.ig(lambda x, p: mlp(x, p, "tanh"), jnp.asarray(baseline, jnp.float32), m, rule=rule)(
        jnp.asarray(x, jnp.float32), params32
    )
    np.testing.assert_allclose(A, ref, rtol=2e-4, atol=2e-5)
