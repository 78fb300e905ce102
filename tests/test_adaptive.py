"""Adaptive steps (``jig.ig(..., tol=...)``): tolerance reached, points saved, honest
stops, jit/vmap equality, nested-rule structure and argument errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jig
from jig import adaptive
from tests import _nets

SMOOTH = _nets.init_mlp(0, sizes=(6, 16, 16, 1), scale=1.5)
RELU = _nets.init_mlp(1, sizes=(6, 32, 32, 1), scale=1.5)
XS = jnp.asarray(np.random.default_rng(2).normal(size=(6, 6)) * 1.5, dtype=jnp.float32)


def smooth(x, params):
    return _nets.mlp(x, params, "tanh")


def relu(x, params):
    return _nets.mlp(x, params, "relu")


def _gap(f, x, params):
    return float(f(x, params) - f(jnp.zeros_like(x), params))


# one explainer per configuration, shared by the tests below (one compilation each)
ROMBERG = jig.ig(smooth, 0.0, 4, tol=1e-4, max_steps=1025, return_info=True)
TRAP = jig.ig(smooth, 0.0, 4, tol=1e-3, rule="riemann_trapezoid", max_steps=1025, return_info=True)
RELU_TRAP = jig.ig(relu, 0.0, 8, tol=1e-3, rule="riemann_trapezoid", max_steps=8193, return_info=True)


@settings(max_examples=10)
@given(i=st.integers(0, len(XS) - 1), scale=st.floats(0.2, 2.0))
def test_reaches_tolerance_smooth(i, scale):
    x = XS[i] * scale
    for explain, tol in ((ROMBERG, 1e-4), (TRAP, 1e-3)):
        A, info = explain(x, SMOOTH)
        gap = _gap(smooth, x, SMOOTH)
        assert bool(info.converged)
        # the reported delta is the real completeness error of the returned attributions
        np.testing.assert_allclose(float(info.delta), float(jnp.sum(A)) - gap, atol=2e-5)
        assert abs(float(info.delta)) <= tol * abs(gap) + 1e-5
        if explain is ROMBERG:
            # close to a very fine fixed rule. delta bounds only the sum: with the plain
            # trapezoid at 5 points, feature errors can cancel (seen: 13 tol max|A|), so
            # only Romberg is held to a per-feature bound (worst seen on a grid: 3.4)
            ref = jig.ig(smooth, 0.0, 256)(x, SMOOTH)
            np.testing.assert_allclose(A, ref, atol=10 * tol * float(jnp.max(jnp.abs(ref))) + 1e-5)


def test_reaches_tolerance_relu():
    for x in XS:
        A, info = RELU_TRAP(x, RELU)
        gap = _gap(relu, x, RELU)
        assert bool(info.converged), (info, gap)
        np.testing.assert_allclose(float(info.delta), float(jnp.sum(A)) - gap, atol=2e-5)
        assert abs(float(info.delta)) <= 1e-3 * abs(gap) + 1e-5
        assert (int(info.points) - 1) % 8 == 0  # steps * 2**L + 1


def test_fewer_points_than_fixed_rules_on_smooth_model():
    """Romberg meets 1e-4 with P points where fixed trapezoid and midpoint rules with
    as many points (or twice as many) do not."""
    _, infos = jax.vmap(lambda x: ROMBERG(x, SMOOTH))(XS)
    assert bool(jnp.all(infos.converged))
    gaps = jnp.asarray([_gap(smooth, x, SMOOTH) for x in XS])
    for p in sorted(set(np.asarray(infos.points).tolist())):
        rows = np.asarray(infos.points) == p
        for rule, n in (("riemann_trapezoid", 2 * p), ("riemann_middle", p)):
            fixed = jig.ig(smooth, 0.0, n, rule=rule, return_delta=True)
            _, deltas = jax.vmap(lambda x: fixed(x, SMOOTH))(XS[rows])
            assert bool(jnp.all(jnp.abs(deltas) > 1e-4 * jnp.abs(gaps[rows]))), (rule, n)


def test_stops_at_max_with_honest_delta():
    explain = jig.ig(relu, 0.0, 2, tol=1e-7, rule="riemann_trapezoid", max_steps=40, return_info=True)
    for x in XS[:3]:
        A, info = explain(x, RELU)
        assert int(info.points) == 33  # 2 * 2**4 + 1 <= 40 < 2 * 2**5 + 1
        assert not bool(info.converged)
        gap = _gap(relu, x, RELU)
        np.testing.assert_allclose(float(info.delta), float(jnp.sum(A)) - gap, atol=2e-5)
        # the result is the trapezoid rule on 32 intervals, computed directly
        same = jig.ig(relu, 0.0, 33, rule="riemann_trapezoid")(x, RELU)
        np.testing.assert_allclose(A, same, rtol=1e-5, atol=1e-6)


def test_nested_levels_equal_fixed_trapezoid():
    """Level L of the adaptive rule is exactly the fixed trapezoid on steps 2**L intervals."""
    x = XS[0]
    for levels in (1, 3):
        max_steps = 3 * 2**levels + 1
        A, info = jig.ig(smooth, 0.0, 3, tol=1e-9, rule="riemann_trapezoid", max_steps=max_steps,
                         return_info=True)(x, SMOOTH)
        assert int(info.points) == max_steps
        fixed = jig.ig(smooth, 0.0, max_steps, rule="riemann_trapezoid")(x, SMOOTH)
        np.testing.assert_allclose(A, fixed, rtol=1e-5, atol=1e-6)


def test_romberg_exact_for_polynomials():
    """Level L of Romberg is exact for integrands of degree 2L + 1: one level for a cubic."""
    f = lambda x: jnp.sum(x**4)  # noqa: E731  integrand 4 α^3 x^4: degree 3
    x = jnp.array([1.0, -2.0, 0.5])
    A, info = jig.ig(f, 0.0, 1, tol=1e-6, max_steps=3, return_info=True)(x)
    np.testing.assert_allclose(A, x**4, rtol=1e-6)
    assert int(info.points) == 3 and bool(info.converged)


def test_jit_and_vmap_equal_per_example():
    As, infos = jax.vmap(lambda x: RELU_TRAP(x, RELU))(XS)
    assert infos.points.shape == (len(XS),)
    points = set()
    for i, x in enumerate(XS):
        A, info = RELU_TRAP(x, RELU)
        np.testing.assert_allclose(As[i], A, rtol=1e-5, atol=1e-6)
        assert int(infos.points[i]) == int(info.points)
        assert bool(infos.converged[i]) == bool(info.converged)
        np.testing.assert_allclose(infos.delta[i], info.delta, atol=1e-5)
        points.add(int(info.points))
    assert len(points) > 1, "the batch should mix easy and hard examples"
    Aj, infoj = jax.jit(lambda x: RELU_TRAP(x, RELU))(XS[0])
    A0, info0 = RELU_TRAP(XS[0], RELU)
    np.testing.assert_allclose(Aj, A0, rtol=1e-6, atol=1e-7)
    assert int(infoj.points) == int(info0.points)


def test_chunked_blocks_equal_unchunked():
    a, ia = jig.ig(smooth, 0.0, 4, tol=1e-4, max_steps=1025, return_info=True)(XS[1], SMOOTH)
    b, ib = jig.ig(smooth, 0.0, 4, tol=1e-4, max_steps=1025, chunk_size=2, return_info=True)(
        XS[1], SMOOTH
    )
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(ia.points) == int(ib.points)


def test_pytree_input_and_plain_output():
    f = lambda t: jnp.sum(jnp.tanh(t["a"]) * t["b"][0])  # noqa: E731
    x = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([0.5, 3.0])}
    A = jig.ig(f, 0.0, 4, tol=1e-4)(x)
    ref = jig.ig(f, 0.0, 128)(x)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=1e-4), A, ref)


def test_plan_and_table():
    plan = adaptive.configure(1e-3, 4, 100, "romberg", 2)
    assert (plan.levels, plan.max_points, plan.block, plan.extrapolate) == (4, 65, 2, True)
    alphas, _ = adaptive.node_table(plan)
    nodes = np.sort(np.concatenate([alphas.ravel(), [1.0]]))
    np.testing.assert_allclose(nodes, np.linspace(0, 1, 65))  # every point once


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tol": 0.0}, ValueError, r"tol must be in \(0, 1\)"),
        ({"tol": -1e-3}, ValueError, r"tol must be in \(0, 1\)"),
        ({"tol": 1.5}, ValueError, r"tol must be in \(0, 1\)"),
        ({"tol": float("nan")}, ValueError, r"tol must be in \(0, 1\)"),
        ({"tol": "0.01"}, TypeError, r"tol must be a real number"),
        ({"tol": True}, TypeError, r"tol must be a real number"),
        ({"tol": jnp.array(1e-3)}, TypeError, r"tol must be a real number"),
        ({"max_steps": 65}, ValueError, r"max_steps is only used with tol="),
        ({"tol": 1e-3, "max_steps": 4}, ValueError, r"max_steps must be >= steps \+ 1 = 9"),
        ({"tol": 1e-3, "max_steps": 64.0}, TypeError, r"max_steps must be None or an int"),
        ({"tol": 1e-3, "rule": "riemann_middle"}, ValueError, r"rule must be nested"),
        ({"tol": 1e-3, "chunk_size": 3}, ValueError, r"chunk_size must divide steps"),
        ({"tol": 1e-3, "chunk_size": 0}, ValueError, r"chunk_size must be None or >= 1"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        jig.ig(smooth, 0.0, 8, **kwargs)


def test_bad_steps_and_path():
    with pytest.raises(ValueError, match=r"steps must be >= 1"):
        jig.ig(smooth, 0.0, 0, tol=1e-3)
    own_nodes = jig.paths.straight()._replace(name="multi", nodes=lambda p, x, b, a, w: (a, w))
    with pytest.raises(ValueError, match=r"one point per alpha"):
        jig.ig(smooth, 0.0, 8, tol=1e-3, path=own_nodes)
    mesh = jax.make_mesh((2,), ("d",), devices=jax.devices()[:2])
    with pytest.raises(ValueError, match=r"does not support mesh"):
        jig.ig(smooth, 0.0, 8, tol=1e-3, mesh=mesh)
