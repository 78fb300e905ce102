"""jig.ig on functions whose IG is known in closed form; deltas, pytrees, dtypes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jig

floats = st.floats(-3.0, 3.0, allow_nan=False, width=32)
vec5 = hnp.arrays(np.float32, (5,), elements=floats)


def weighted_square(x, w):
    return jnp.sum(w * x**2)


# one compiled explainer per rule, reused across hypothesis examples
EXPLAIN_SQ = {name: jig.ig(weighted_square, 0.0, 4, rule=name) for name in jig.rules.RULES}


@given(x=vec5, b=vec5, w=vec5)
def test_weighted_square_gives_w_times_x2_minus_b2(x, b, w):
    # ∇F = 2 w z is linear along the path, so midpoint, trapezoid and Gauss-Legendre
    # rules are exact: A = w (x^2 - b^2) for any baseline b.
    expected = w * (x.astype(np.float64) ** 2 - b.astype(np.float64) ** 2)
    for name in ("gauss_legendre", "riemann_middle", "riemann_trapezoid"):
        A = jig.ig(weighted_square, b, 4, rule=name)(x, w)
        np.testing.assert_allclose(A, expected, rtol=1e-5, atol=1e-4)


@given(x=vec5, w=vec5)
def test_weighted_square_with_zero_baseline_reuses_one_compilation(x, w):
    A = EXPLAIN_SQ["gauss_legendre"](x, w)
    np.testing.assert_allclose(A, w * x.astype(np.float64) ** 2, rtol=1e-5, atol=1e-4)


@given(x0=floats, x1=floats)
def test_product_splits_into_symmetric_halves(x0, x1):
    A = jig.ig(lambda x: x[0] * x[1], 0.0, 2)(jnp.array([x0, x1]))
    np.testing.assert_allclose(A, [x0 * x1 / 2, x0 * x1 / 2], rtol=1e-5, atol=1e-5)


def test_product_with_a_baseline_follows_the_closed_form():
    # F = x0 x1, straight path from b: A_0 = (x0 - b0)(x1 + b1)/2, A_1 = (x1 - b1)(x0 + b0)/2
    x, b = jnp.array([2.0, 3.0]), jnp.array([0.5, -1.0])
    A = jig.ig(lambda x: x[0] * x[1], b, 3)(x)
    np.testing.assert_allclose(A, [(2 - 0.5) * (3 - 1) / 2, (3 + 1) * (2 + 0.5) / 2], rtol=1e-6)


def test_linear_model_gives_weights_times_difference_with_one_step():
    w = jnp.array([1.0, -2.0, 3.0])
    x, b = jnp.array([1.0, 1.0, 2.0]), jnp.array([0.0, 3.0, -1.0])
    for name in jig.rules.RULES:
        steps = 2 if name == "riemann_trapezoid" else 1
        A = jig.ig(lambda x: jnp.dot(w, x), b, steps, rule=name)(x)
        np.testing.assert_allclose(A, w * (x - b), rtol=1e-6)


def test_delta_is_sum_of_attributions_minus_output_difference():
    f = lambda x: jnp.sum(jnp.sin(3 * x)) + x[0] * x[1] ** 2
    x, b = jnp.array([0.9, -1.3, 0.4]), jnp.array([0.1, 0.2, -0.3])
    for steps in (2, 5, 40):
        A, delta = jig.ig(f, b, steps, rule="riemann_left", return_delta=True)(x)
        chex.assert_shape(delta, ())
        assert delta.dtype == jnp.float32
        np.testing.assert_allclose(delta, jnp.sum(A) - (f(x) - f(b)), rtol=1e-5, atol=1e-6)
    assert abs(float(delta)) > 1e-4  # left sums with 40 steps are visibly inexact here


def test_delta_shrinks_with_steps():
    f = lambda x: jnp.sum(jnp.tanh(2 * x) * jnp.exp(0.3 * x))
    x = jnp.linspace(0.1, 2.0, 7)
    for rule in ("riemann_left", "riemann_middle", "gauss_legendre"):
        deltas = [abs(float(jig.ig(f, 0.0, m, rule=rule, return_delta=True)(x)[1])) for m in (2, 8, 32)]
        assert deltas[2] < deltas[1] < deltas[0], (rule, deltas)
    assert deltas[2] < 1e-5  # gauss_legendre at 32 steps on a smooth function


def test_pytree_input_and_baseline_give_pytree_attributions():
    def f(p):
        return jnp.sum(p["a"] ** 2) * p["b"][0] + jnp.sum(jnp.sin(p["b"][1]))

    x = {"a": jnp.array([1.0, 2.0]), "b": (jnp.array(0.5), jnp.array([[0.1, 0.2]]))}
    b = {"a": 0.5, "b": (jnp.array(0.0), jnp.zeros((1, 2)))}
    A, delta = jig.ig(f, b, 16, return_delta=True)(x)
    chex.assert_trees_all_equal_shapes_and_dtypes(A, x)
    assert abs(float(delta)) < 1e-5

    # the same function on a flat vector gives the same numbers
    def flat(v):
        return f({"a": v[:2], "b": (v[2], v[3:].reshape(1, 2))})

    xf = jnp.array([1.0, 2.0, 0.5, 0.1, 0.2])
    bf = jnp.array([0.5, 0.5, 0.0, 0.0, 0.0])
    Af = jig.ig(flat, bf, 16)(xf)
    leaves = jnp.concatenate([A["a"], A["b"][0][None], A["b"][1].ravel()])
    np.testing.assert_allclose(leaves, Af, rtol=1e-6, atol=1e-7)


def test_scalar_baseline_broadcasts_across_pytree_leaves():
    x = (jnp.array([1.0, 2.0]), jnp.array([[3.0]]))
    A = jig.ig(lambda t: jnp.sum(t[0]) + jnp.sum(t[1] * 2), 1.0, 4)(x)
    np.testing.assert_allclose(A[0], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(A[1], [[4.0]], atol=1e-6)


def test_array_baseline_broadcasts_along_leading_axes():
    x = jnp.arange(6.0).reshape(2, 3)
    b = jnp.array([1.0, 0.0, -1.0])  # shape (3,) broadcasts to (2, 3)
    A = jig.ig(lambda x: jnp.sum(x), b, 4)(x)
    np.testing.assert_allclose(A, x - b, atol=1e-6)


def test_callable_baseline_is_called_with_the_input():
    x = jnp.array([1.0, 3.0, 5.0])
    A = jig.ig(lambda x: jnp.sum(x**2), lambda x: jnp.full_like(x, jnp.mean(x)), 4)(x)
    np.testing.assert_allclose(A, x**2 - 9.0, rtol=1e-6)


def test_argnums_and_extra_arguments_pass_through():
    def f(w, x, *, scale, mode):
        y = jnp.sum(w * x) * scale
        return y if mode == "plain" else y**2

    w, x = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
    A = jig.ig(f, 0.0, 4, argnums=1)(w, x, scale=2.0, mode="plain")
    np.testing.assert_allclose(A, 2.0 * w * x, rtol=1e-6)
    Aw = jig.ig(f, 0.0, 4, argnums=0)(w, x, scale=2.0, mode="plain")
    np.testing.assert_allclose(Aw, 2.0 * w * x, rtol=1e-6)
    # a string argument is static: the other branch compiles separately and works
    Asq = jig.ig(f, 0.0, 8, argnums=1)(w, x, scale=1.0, mode="square")
    np.testing.assert_allclose(jnp.sum(Asq), 11.0**2, rtol=1e-5)


def test_tuple_argnums_attribute_several_arguments():
    f = lambda a, b, c: jnp.sum(a * b) + jnp.sum(c)
    a, b, c = jnp.array([1.0, 2.0]), jnp.array([3.0, -1.0]), jnp.array([5.0])
    Aa, Ab = jig.ig(f, 0.0, 4, argnums=(0, 1))(a, b, c)
    np.testing.assert_allclose(Aa, a * b / 2, rtol=1e-6)
    np.testing.assert_allclose(Ab, a * b / 2, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_inputs_accumulate_in_float32(dtype):
    f = lambda x: jnp.sum(jnp.tanh(x) * x)
    x32 = jnp.linspace(-2.0, 2.0, 9)
    x = x32.astype(dtype)
    A, delta = jig.ig(f, 0.0, 256, return_delta=True)(x)
    assert A.dtype == dtype
    assert delta.dtype == jnp.float32
    ref = jig.ig(f, 0.0, 256)(x.astype(jnp.float32))
    # Each gradient is rounded to the half dtype, but the 256-term sum is float32: the
    # result carries the error of one half-precision rounding, not of 256.
    np.testing.assert_allclose(np.asarray(A, np.float32), ref, rtol=2e-2, atol=2e-2)
    # Accumulating 256 weights of 1/256 in the half dtype itself would drift badly.
    naive = jnp.zeros((), dtype)
    for _ in range(256):
        naive = naive + jnp.asarray(1 / 256, dtype) * jnp.asarray(0.3, dtype)
    assert abs(float(naive) - 0.3) > abs(float(jnp.sum(A.astype(jnp.float32)) - jnp.sum(ref))) / 9


def test_float64_under_x64():
    with jax.enable_x64(True):
        x = jnp.array([0.3, -0.7], dtype=jnp.float64)
        A, delta = jig.ig(lambda x: jnp.sum(jnp.exp(x)), 0.0, 24, return_delta=True)(x)
        assert A.dtype == delta.dtype == jnp.float64
        np.testing.assert_allclose(A, np.exp(np.array([0.3, -0.7])) - 1, rtol=1e-13)


def test_nonfinite_attributions_are_detectable():
    f = lambda x: jnp.sum(jnp.sqrt(x))  # infinite gradient at the zero baseline
    x = jnp.array([1.0, 4.0])
    A, delta = jig.ig(f, 0.0, 8, rule="riemann_left", return_delta=True, check_finite=False)(x)
    assert not np.all(np.isfinite(A))
    assert not np.isfinite(delta)
    # by default (and with check_finite=True) an eager call raises a catchable FloatingPointError
    for check in (None, True):
        with pytest.raises(FloatingPointError, match="the gradients along the path contain NaN or inf"):
            jig.ig(f, 0.0, 8, rule="riemann_left", check_finite=check)(x)
    # a finite result passes the check silently
    ok = jig.ig(f, 0.0, 8, rule="riemann_middle", check_finite=True)(x)
    assert np.all(np.isfinite(ok))


def test_explainer_keeps_the_function_name():
    def my_model(x):
        return jnp.sum(x)

    explain = jig.ig(my_model, 0.0, 4)
    assert explain.__name__ == "my_model"
    assert "gauss_legendre" in explain.__doc__
