"""Quadrature rules: nodes, weights, exactness degree, known errors, bad input."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jig
from jig import rules

ALL = sorted(rules.RULES)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("m", [2, 3, 7, 50])
def test_nodes_in_unit_interval_and_weights_sum_to_one(name, m):
    alphas, weights = rules.get(name)(m)
    assert alphas.shape == weights.shape == (m,)
    assert alphas.dtype == weights.dtype == np.float64
    assert np.all((alphas >= 0) & (alphas <= 1))
    assert np.all(weights > 0)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=0, atol=1e-14)
    assert np.all(np.diff(alphas) > 0)


def test_riemann_nodes_are_the_documented_ones():
    np.testing.assert_allclose(rules.riemann_left(4)[0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(rules.riemann_right(4)[0], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(rules.riemann_middle(4)[0], [0.125, 0.375, 0.625, 0.875])
    a, w = rules.riemann_trapezoid(5)
    np.testing.assert_allclose(a, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(w, [0.125, 0.25, 0.25, 0.25, 0.125])


def test_gauss_legendre_nodes_are_symmetric_legendre_roots():
    a, w = rules.gauss_legendre(5)
    np.testing.assert_allclose(a + a[::-1], 1.0, atol=1e-14)
    np.testing.assert_allclose(w, w[::-1], atol=1e-14)
    # The nodes are the roots of the shifted Legendre polynomial P_5(2a - 1).
    p5 = np.polynomial.legendre.Legendre.basis(5)
    np.testing.assert_allclose(p5(2 * a - 1), 0.0, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("m", [2, 3, 5, 8])
def test_exact_up_to_its_degree_and_not_beyond(name, m):
    rule = rules.get(name)
    alphas, weights = rule(m)
    d = rule.degree(m)
    for k in range(d + 1):
        assert math.isclose(np.sum(weights * alphas**k), 1 / (k + 1), rel_tol=1e-12), k
    # one degree more is integrated with a real error: the degree is tight
    err = np.sum(weights * alphas ** (d + 1)) - 1 / (d + 2)
    assert abs(err) > 1e-12  # float64 noise here is ~1e-16


@given(st.integers(1, 200))
def test_riemann_right_and_left_have_the_known_error_on_a_linear_integrand(m):
    # ∫ α dα = 1/2; right sums overshoot by 1/(2m), left sums undershoot by 1/(2m)
    a, w = rules.riemann_right(m)
    assert math.isclose(np.sum(w * a) - 0.5, 1 / (2 * m), rel_tol=1e-9)
    a, w = rules.riemann_left(m)
    assert math.isclose(np.sum(w * a) - 0.5, -1 / (2 * m), rel_tol=1e-9, abs_tol=1e-15)


@pytest.mark.parametrize("m", [1, 3, 10])
def test_riemann_right_error_shows_up_in_attributions(m):
    # F = sum(x^2), baseline 0: the integrand 2 α x^2 is linear in α, so
    # riemann_right gives x^2 (m + 1) / m exactly, gauss_legendre gives x^2.
    x = jnp.array([1.0, -2.0, 0.5])
    f = lambda x: jnp.sum(x**2)
    right = jig.ig(f, 0.0, m, rule="riemann_right")(x)
    np.testing.assert_allclose(right, x**2 * (m + 1) / m, rtol=1e-6)
    gl = jig.ig(f, 0.0, m, rule="gauss_legendre")(x)
    np.testing.assert_allclose(gl, x**2, rtol=1e-6)


@pytest.mark.parametrize("m", [1, 2, 4])
def test_gauss_legendre_is_exact_for_polynomial_integrands_of_degree_2m_minus_1(m):
    # F = sum(x^(d+1)) with baseline 0 gives the integrand (d+1) α^d x^(d+1),
    # so A = x^(d+1) exactly when the rule is exact to degree d.
    d = 2 * m - 1
    x = jnp.array([0.7, -1.1, 1.3])
    f = lambda x: jnp.sum(x ** (d + 1))
    A = jig.ig(f, 0.0, m)(x)
    np.testing.assert_allclose(A, x ** (d + 1), rtol=2e-6)
    # degree 2m is not integrated exactly
    g = lambda x: jnp.sum(x ** (d + 2))
    B = jig.ig(g, 0.0, m)(x)
    assert np.max(np.abs(B - x ** (d + 2))) > 1e-3


def test_rules_by_object_and_by_name_agree():
    f = lambda x: jnp.sum(jnp.sin(x))
    x = jnp.array([0.3, 1.2])
    for name, rule in rules.RULES.items():
        np.testing.assert_array_equal(jig.ig(f, 0.0, 6, rule=name)(x), jig.ig(f, 0.0, 6, rule=rule)(x))


def test_a_user_rule_plugs_in():
    simpson = rules.Rule(
        "simpson3",
        lambda m: (np.array([0.0, 0.5, 1.0]), np.array([1 / 6, 4 / 6, 1 / 6])),
        degree=lambda m: 3,
        min_steps=3,
    )
    x = jnp.array([1.5, -0.5])
    A = jig.ig(lambda x: jnp.sum(x**4), 0.0, 3, rule=simpson)(x)  # integrand degree 3
    np.testing.assert_allclose(A, x**4, rtol=1e-6)


def test_unknown_rule_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"rule must be one of \['gauss_legendre', 'riemann_left'"):
        jig.ig(lambda x: x, 0.0, 4, rule="simpson")
    with pytest.raises(TypeError, match="rule must be one of"):
        jig.ig(lambda x: x, 0.0, 4, rule=3)


def test_trapezoid_needs_two_steps():
    with pytest.raises(ValueError, match="steps must be >= 2 for rule 'riemann_trapezoid', got 1"):
        jig.ig(lambda x: x, 0.0, 1, rule="riemann_trapezoid")


def test_a_bad_user_rule_is_refused():
    outside = rules.Rule("outside", lambda m: (np.linspace(0, 2, m), np.full(m, 1 / m)))
    with pytest.raises(ValueError, match="alphas outside"):
        jig.ig(lambda x: x, 0.0, 4, rule=outside)
    short = rules.Rule("short", lambda m: (np.zeros(m - 1), np.zeros(m - 1)))
    with pytest.raises(ValueError, match=r"expected both of shape \(4,\)"):
        jig.ig(lambda x: x, 0.0, 4, rule=short)
    nan = rules.Rule("nan", lambda m: (np.full(m, np.nan), np.full(m, 1 / m)))
    with pytest.raises(ValueError, match="non-finite"):
        jig.ig(lambda x: x, 0.0, 4, rule=nan)


@pytest.mark.parametrize("m", [100, 101, 257, 1000])
def test_gauss_legendre_for_many_nodes_matches_numpy(m):
    # above 100 nodes the rule uses Newton's method on P_m (O(m) memory), not leggauss
    a, w = rules.gauss_legendre(m)
    t, v = np.polynomial.legendre.leggauss(m)
    np.testing.assert_allclose(a, (t + 1) / 2, rtol=0, atol=1e-14)
    np.testing.assert_allclose(w, v / 2, rtol=0, atol=1e-13)  # tiny end weights differ in relative terms
    assert np.all(np.diff(a) > 0)
    np.testing.assert_allclose(w.sum(), 1.0, atol=1e-13)
    for k in (1, 7, 30):
        assert math.isclose(np.sum(w * a**k), 1 / (k + 1), rel_tol=1e-11)


# --------------------------------------------------------------------------- Gauss-Legendre, O(m)


def _legendre_recurrence(m, t):
    """P_m(t) and P_{m-1}(t) by the three-term recurrence (stable on [-1, 1], O(m) per point)."""
    p0, p1 = np.ones_like(t), t.copy()
    for j in range(2, m + 1):
        p0, p1 = p1, ((2 * j - 1) * t * p1 - (j - 1) * p0) / j
    return p1, p0


def _newton_reference(m):
    """The textbook method: Newton on the recurrence from Tricomi's guesses (O(m^2) time)."""
    t = -np.cos(np.pi * (np.arange(1, m + 1) - 0.25) / (m + 0.5))
    for _ in range(50):
        p, q = _legendre_recurrence(m, t)
        dp = m * (t * p - q) / (t * t - 1.0)
        step = p / dp
        t = t - step
        if np.max(np.abs(step)) < 1e-15:
            break
    p, q = _legendre_recurrence(m, t)
    dp = m * (t * p - q) / (t * t - 1.0)
    return (t + 1) / 2, 1.0 / ((1.0 - t * t) * dp * dp)


@pytest.mark.parametrize("m", [101, 102, 137, 256, 333, 500])
def test_gauss_legendre_asymptotic_nodes_match_leggauss(m):
    a, w = rules.gauss_legendre(m)
    t, v = np.polynomial.legendre.leggauss(m)
    np.testing.assert_allclose(a, (t + 1) / 2, rtol=0, atol=4e-16)
    # leggauss's smallest weights carry ~1e-10 relative error, so compare absolutely,
    # and relatively only away from the ends
    np.testing.assert_allclose(w, v / 2, rtol=0, atol=2e-14)
    inner = slice(m // 10, m - m // 10)
    np.testing.assert_allclose(w[inner], v[inner] / 2, rtol=2e-12)


@pytest.mark.parametrize("m", [1000, 3001])
def test_gauss_legendre_agrees_with_newton_on_the_recurrence(m):
    a, w = rules.gauss_legendre(m)
    a_ref, w_ref = _newton_reference(m)
    np.testing.assert_allclose(a, a_ref, rtol=0, atol=4e-16)
    # the reference's weights are the less accurate ones (its recurrence and 1 - t² next
    # to t = ±1 lose ~1e-11; against 40-digit arithmetic (mpmath, m = 101 and 1001) the
    # new nodes were right to 2e-16 relative to their distance from 0 or 1, the weights
    # to 4e-15 relative, end nodes included)
    np.testing.assert_allclose(w, w_ref, rtol=5e-11)


def test_gauss_legendre_is_exact_on_every_legendre_polynomial_up_to_2m_minus_1():
    # Σ_k w_k P_j(2 a_k - 1) = ∫_0^1 P_j(2a - 1) da = 0 for 1 <= j <= 2m - 1, and not
    # for j = 2m; P_j evaluated by its stable recurrence, all degrees in one pass.
    m = 1500
    a, w = rules.gauss_legendre(m)
    t = 2 * a - 1
    p0, p1 = np.ones_like(t), t.copy()
    worst = abs(np.dot(w, p1))
    for j in range(2, 2 * m):
        p0, p1 = p1, ((2 * j - 1) * t * p1 - (j - 1) * p0) / j
        worst = max(worst, abs(np.dot(w, p1)))
    assert worst < 1e-14
    p2m = ((4 * m - 1) * t * p1 - (2 * m - 1) * p0) / (2 * m)
    assert abs(np.dot(w, p2m)) > 1e-4


def test_gauss_legendre_a_million_nodes():
    m = 10**6
    a, w = rules.gauss_legendre(m)
    assert a.shape == w.shape == (m,)
    assert np.all(np.diff(a) > 0) and np.all(w > 0)
    np.testing.assert_allclose(a + a[::-1], 1.0, rtol=0, atol=2.3e-16)
    np.testing.assert_array_equal(w, w[::-1])
    assert abs(w.sum() - 1.0) < 1e-13
    # Szegő (6.21.5): the k-th node from 0 is sin²(θ_k/2) with
    # (k - 1/2)π/(m + 1/2) < θ_k < kπ/(m + 1/2): the nodes interlace with these bounds
    k = np.arange(1, m // 2 + 1)
    lo = np.sin((k - 0.5) * np.pi / (m + 0.5) / 2) ** 2
    hi = np.sin(k * np.pi / (m + 0.5) / 2) ** 2
    assert np.all((lo < a[: m // 2]) & (a[: m // 2] < hi))
    for k in (1, 3, 10, 99, 1000):
        assert math.isclose(np.sum(w * a**k), 1 / (k + 1), rel_tol=2e-13), k
    # the weights follow the asymptotic density π sqrt(a(1-a)) / m in the bulk
    mid = slice(m // 4, 3 * m // 4, 1000)
    np.testing.assert_allclose(w[mid], np.pi * np.sqrt(a[mid] * (1 - a[mid])) / m, rtol=1e-6)
