"""The IG axioms on random small MLPs (relu and smooth activations), with hypothesis.

Parameters are arguments of the explained function, so each explainer compiles once
per activation and hypothesis only changes the numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jig
from _nets import init_mlp, mlp

D = 6
seeds = st.integers(0, 2**31 - 1)
inputs = hnp.arrays(np.float32, (D,), elements=st.floats(-2.0, 2.0, width=32))
ACTS = ["relu", "tanh", "softplus"]


def model(act):
    def f(x, params):
        return mlp(x, params, act)

    f.__name__ = f"mlp_{act}"
    return f


MODELS = {act: model(act) for act in ACTS}


def explainer(act, steps, rule="gauss_legendre", **kw):
    return jig.ig(MODELS[act], 0.0, steps, rule=rule, return_delta=True, **kw)


@pytest.mark.parametrize("act", ["tanh", "softplus"])
@given(seed=seeds, x=inputs)
def test_completeness_on_smooth_mlps_to_high_accuracy(act, seed, x):
    params = init_mlp(seed)
    coarse = abs(float(explainer(act, 4)(x, params)[1]))
    A, delta = explainer(act, 64)(x, params)
    diff = float(MODELS[act](x, params) - MODELS[act](jnp.zeros(D), params))
    scale = abs(diff)
    np.testing.assert_allclose(float(delta), float(jnp.sum(A)) - diff, atol=1e-5)
    assert abs(float(delta)) <= 1e-4 * (1.0 + scale)
    assert abs(float(delta)) <= coarse + 1e-5  # more steps never do worse here


@given(seed=seeds, x=inputs)
def test_completeness_on_relu_mlps_converges_with_steps(seed, x):
    # ReLU makes the integrand piecewise constant in alpha: quadrature error is O(1/m).
    params = init_mlp(seed)
    scale = abs(float(MODELS["relu"](x, params) - MODELS["relu"](jnp.zeros(D), params)))
    d16 = abs(float(explainer("relu", 16, "riemann_trapezoid")(x, params)[1]))
    d1024 = abs(float(explainer("relu", 1024, "riemann_trapezoid", chunk_size=256)(x, params)[1]))
    assert d1024 <= 2e-3 * (1.0 + scale)
    assert d1024 <= d16 + 1e-4


@pytest.mark.parametrize("act", ACTS)
@given(seed=seeds, x=inputs, i=st.integers(0, D - 1), delta_i=st.floats(0.5, 2.0))
def test_sensitivity_a_single_differing_feature_gets_all_the_credit(act, seed, x, i, delta_i):
    # Sensitivity(a): x and b differ in feature i only, so every other attribution is
    # exactly zero (its velocity is zero) and A_i carries F(x) - F(b).
    params = init_mlp(seed)
    b = x.copy()
    x = x.copy()
    x[i] = b[i] + delta_i
    explain = jig.ig(MODELS[act], b, 128, rule="riemann_trapezoid" if act == "relu" else "gauss_legendre")
    A = np.asarray(explain(x, params))
    others = np.delete(A, i)
    assert np.all(others == 0.0)
    diff = float(MODELS[act](x, params) - MODELS[act](b, params))
    assert abs(A[i] - diff) <= 2e-2 * (1 + abs(diff))


@pytest.mark.parametrize("act", ACTS)
@given(seed=seeds, x=inputs, j=st.integers(0, D - 1))
def test_dummy_feature_gets_exactly_zero(act, seed, x, j):
    # Sensitivity(b): F does not depend on feature j (its input weights are zero).
    params = init_mlp(seed)
    (w1, b1), *rest = params
    w1 = w1.copy()
    w1[j] = 0.0
    A, _ = explainer(act, 16)(x, [(w1, b1), *rest])
    assert float(A[j]) == 0.0


@pytest.mark.parametrize("act", ACTS)
@given(seed=seeds, x=inputs, perm_seed=seeds, c=st.floats(0.25, 4.0))
def test_implementation_invariance_for_functionally_equal_networks(act, seed, x, perm_seed, c):
    # Permuting hidden units gives a different parameterisation of the same function.
    params = init_mlp(seed)
    (w1, b1), (w2, b2), (w3, b3) = params
    perm = np.random.default_rng(perm_seed).permutation(w1.shape[1])
    permuted = [(w1[:, perm], b1[perm]), (w2[perm], b2), (w3, b3)]
    A1, _ = explainer(act, 32)(x, params)
    A2, _ = explainer(act, 32)(x, permuted)
    np.testing.assert_allclose(A1, A2, rtol=1e-4, atol=1e-5)
    if act == "relu":
        # relu(c z) / c == relu(z) for c > 0: rescaling a layer changes the weights only.
        scaled = [(w1 * c, b1 * c), (w2 / c, b2), (w3, b3)]
        A3, _ = explainer(act, 32)(x, scaled)
        np.testing.assert_allclose(A1, A3, rtol=1e-3, atol=1e-4)


def _combination(x, p1, p2, a, b):
    return a * mlp(x, p1, "tanh") + b * mlp(x, p2, "relu")


@given(seed=seeds, x=inputs, a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linearity(seed, x, a, b):
    p1, p2 = init_mlp(seed), init_mlp(seed + 1)
    A = jig.ig(_combination, 0.0, 32)(x, p1, p2, a, b)
    A1 = jig.ig(MODELS["tanh"], 0.0, 32)(x, p1)
    A2 = jig.ig(MODELS["relu"], 0.0, 32)(x, p2)
    np.testing.assert_allclose(A, a * A1 + b * A2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", ACTS)
@given(seed=seeds, x=inputs, ij=st.lists(st.integers(0, D - 1), min_size=2, max_size=2, unique=True))
def test_symmetry_preserving(act, seed, x, ij):
    # Equal input weights for features i and j make F symmetric in them; with x_i = x_j
    # and equal baselines the two attributions must be equal.
    i, j = ij
    params = init_mlp(seed)
    (w1, b1), *rest = params
    w1 = w1.copy()
    w1[j] = w1[i]
    x = x.copy()
    x[j] = x[i]
    A, _ = explainer(act, 16)(x, [(w1, b1), *rest])
    np.testing.assert_allclose(A[i], A[j], rtol=1e-5, atol=1e-6)


def test_ig_beats_the_plain_gradient_on_saturation():
    # Seed 001's point: F = min(1, x0 + x1) is flat at x = (1, 1): the gradient is zero
    # but IG still credits both features with the change from 0 to 1.
    f = lambda x: jnp.minimum(1.0, x[0] + x[1])
    x = jnp.array([1.0, 1.0])
    assert np.all(jax.grad(f)(x) == 0)
    A, delta = jig.ig(f, 0.0, 100, rule="riemann_middle", return_delta=True)(x)
    np.testing.assert_allclose(A, [0.5, 0.5], atol=1e-6)
    assert abs(float(delta)) < 1e-6
