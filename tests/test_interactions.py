"""jig.interactions (Integrated Hessians): the -ln t Gauss rule against moments and an
independent moment-matrix construction; closed forms on quadratics (zero and non-zero
baselines); rows sum to jig.ig on MLPs (hypothesis); rows-only equal the full matrix;
pytree inputs in jax.hessian's layout; the product rules agree with the Gauss rule;
expected paths are the mean over baselines; jit/vmap/grad/chunk_size/mesh; token
matrices through a Flax embedding split; every bad input's error; the example's smoke run."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jig
from jig.interactions import gauss_log, log_nodes, token_matrix
from tests._nets import init_mlp, mlp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("m", [1, 2, 5, 20, 80])
def test_gauss_log_is_exact_on_polynomials_up_to_degree_2m_minus_1(m):
    t, w = gauss_log(m)
    assert np.all((t > 0) & (t < 1)) and np.all(w > 0)
    k = np.arange(2 * m + 1)
    got = np.array([np.sum(w * t**j) for j in k])
    exact = 1.0 / (k + 1.0) ** 2  # ∫ t^k (-ln t) dt
    np.testing.assert_allclose(got[: 2 * m], exact[: 2 * m], rtol=1e-11)
    if m <= 5:  # degree 2m is not exact: the bound is sharp
        assert abs(got[2 * m] - exact[2 * m]) > 1e-6 * exact[2 * m]


@pytest.mark.parametrize("m", [2, 3, 5])
def test_gauss_log_matches_the_moment_matrix_construction(m):
    # nodes: roots of the monic orthogonal polynomial from the Hankel system of the moments
    mu = 1.0 / (np.arange(2 * m) + 1.0) ** 2
    H = np.array([[mu[i + j] for j in range(m)] for i in range(m)])
    c = np.linalg.solve(H, -mu[m : 2 * m])  # p(t) = t^m + Σ c_j t^j ⟂ 1..t^(m-1)
    nodes = np.sort(np.roots(np.concatenate([[1.0], c[::-1]])).real)
    V = np.vander(nodes, m, increasing=True).T
    weights = np.linalg.solve(V, mu[:m])
    t, w = gauss_log(m)
    np.testing.assert_allclose(t, nodes, rtol=1e-9)
    np.testing.assert_allclose(w, weights, rtol=1e-9)
    if m == 2:  # Abramowitz and Stegun 25.4.45
        np.testing.assert_allclose(t, [0.112008806167, 0.602276908119], atol=1e-12)


def test_product_rules_are_exact_for_the_degrees_of_their_rule():
    t, w = log_nodes("gauss_legendre", 4)  # Legendre: degree 7 in each of α, β
    assert t.shape == (10,)
    for k in range(8):
        np.testing.assert_allclose(np.sum(w * t**k), 1.0 / (k + 1) ** 2, rtol=1e-12)
    t, w = log_nodes("riemann_middle", 6)  # degree 1 only
    np.testing.assert_allclose(np.sum(w * t), 0.25, rtol=1e-12)
    assert abs(np.sum(w * t**2) - 1 / 9) > 1e-4


# --------------------------------------------------------------------------- closed forms


def quad(x, A):
    return x @ A @ x


def test_closed_form_on_a_quadratic_from_zero_and_from_a_baseline():
    rng = np.random.default_rng(0)
    A = jnp.asarray(rng.normal(size=(5, 5)), jnp.float32)
    x = jnp.asarray(rng.normal(size=5), jnp.float32)
    b = jnp.asarray(rng.normal(size=5), jnp.float32)
    S = np.asarray(A + A.T)
    xn, bn = np.asarray(x), np.asarray(b)
    # from 0 (the formula): Γ_ij = x_i x_j S_ij / 4 off the diagonal,
    # Γ_ii = x_i (S x)_i / 4 + A_ii x_i² / 2
    want0 = np.outer(xn, xn) * S / 4
    np.fill_diagonal(want0, xn * (S @ xn) / 4 + np.diag(np.asarray(A)) * xn**2 / 2)
    # from b: Γ = D S D / 4 + diag(d ⊙ S (b + d/4))   (the diagonal's S_ii d_i²/4 is in D S D)
    d = xn - bn
    wantb = np.outer(d, d) * S / 4 + np.diag(d * (S @ (bn + d / 4)))
    explain = jig.interactions(quad, 0.0, 1)  # one node: the integrands are linear in t
    G0, delta0 = jig.interactions(quad, 0.0, 1, return_delta=True)(x, A)
    Gb, deltab = jig.interactions(quad, b, 1, return_delta=True)(x, A)
    np.testing.assert_allclose(explain(x, A), want0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(G0, want0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Gb, wantb, rtol=1e-5, atol=1e-5)
    assert abs(delta0) < 1e-4 and abs(deltab) < 1e-4
    np.testing.assert_allclose(Gb.sum(), quad(x, A) - quad(b, A), rtol=1e-5)


# --------------------------------------------------------------------------- against IG


PARAMS = init_mlp(1, sizes=(6, 8, 1))
IH = jig.interactions(mlp, 0.0, 12)
IG = jig.ig(mlp, 0.0, 48)


@settings(max_examples=4)
@given(st.integers(0, 2**31 - 1))
def test_rows_sum_to_ig_and_everything_to_the_output_change(seed):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=6), jnp.float32)
    params = [(jnp.asarray(rng.normal(size=w.shape) / np.sqrt(w.shape[0]), jnp.float32), jnp.asarray(b))
              for w, b in PARAMS]
    G = IH(x, params)
    np.testing.assert_allclose(G.sum(axis=1), IG(x, params), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(G.sum(), mlp(x, params) - mlp(jnp.zeros(6), params), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(G, G.T, atol=1e-6)  # symmetric: the Hessian is, and so is the diagonal's form


def test_rows_only_equal_the_full_matrix_and_rules_agree():
    x = jnp.linspace(-1.0, 1.2, 6)
    full = IH(x, PARAMS)
    rows = np.array([4, 0, 5])
    part = jig.interactions(mlp, 0.0, 12, rows=rows)(x, PARAMS)
    assert part.shape == (3, 6)
    np.testing.assert_allclose(part, full[rows], rtol=1e-5, atol=1e-7)
    # an independent quadrature of the same integral: Legendre on the (α, β) square
    dense = jig.interactions(mlp, 0.0, 24, rule="gauss_legendre")(x, PARAMS)
    np.testing.assert_allclose(full, dense, rtol=1e-4, atol=1e-6)
    # path_explain's grid (k points i/(k-1), weights 1/k) is much further off at 12 x 12
    grid = jig.rules.Rule("grid", lambda k: (np.arange(k) / (k - 1), np.full(k, 1.0 / k)), min_steps=2)
    coarse = jig.interactions(mlp, 0.0, 12, rule=grid)(x, PARAMS)
    assert np.abs(coarse - dense).max() > 20 * np.abs(full - dense).max()


def test_pytree_input_in_jax_hessian_layout():
    def f(p):
        return jnp.tanh(p["a"] @ jnp.array([0.5, -1.0]) + p["b"][0, 1] * p["a"][0]) * jnp.sum(p["b"])

    p = {"a": jnp.array([0.3, -0.7]), "b": jnp.array([[0.2, 1.0], [-0.5, 0.4]])}
    G = jig.interactions(f, 0.0, 8)(p)
    assert G["a"]["b"].shape == (2, 2, 2) and G["b"]["a"].shape == (2, 2, 2) and G["b"]["b"].shape == (2, 2, 2, 2)
    flat = jnp.concatenate([p["a"], p["b"].reshape(-1)])
    Gf = jig.interactions(lambda v: f({"a": v[:2], "b": v[2:].reshape(2, 2)}), 0.0, 8)(flat)
    np.testing.assert_allclose(G["a"]["a"], Gf[:2, :2], atol=1e-6)
    np.testing.assert_allclose(G["a"]["b"].reshape(2, 4), Gf[:2, 2:], atol=1e-6)
    np.testing.assert_allclose(G["b"]["b"].reshape(4, 4), Gf[2:, 2:], atol=1e-6)
    R = jig.interactions(f, 0.0, 8, rows=[1, 4])(p)  # rows index the flattened input
    np.testing.assert_allclose(R["b"].reshape(2, 4), Gf[jnp.array([1, 4]), 2:], atol=1e-6)


def test_expected_hessians_are_the_mean_over_baselines():
    stack = jnp.asarray(np.random.default_rng(3).normal(size=(3, 6)) * 0.5, jnp.float32)
    x = jnp.linspace(-1.0, 1.0, 6)
    G, delta = jig.interactions(mlp, None, 8, path=jig.paths.expected(stack), return_delta=True)(x, PARAMS)
    each = jax.vmap(lambda b: jig.interactions(mlp, b, 8)(x, PARAMS))(stack)
    np.testing.assert_allclose(G, each.mean(0), rtol=1e-5, atol=1e-6)
    assert abs(delta) < 1e-5
    np.testing.assert_allclose(G.sum(), mlp(x, PARAMS) - jax.vmap(lambda b: mlp(b, PARAMS))(stack).mean(), atol=1e-5)
    # Monte Carlo: unbiased (uniform α, t = 1 - α, weight -ln t); here on a quadratic
    A = jnp.asarray(np.random.default_rng(4).normal(size=(6, 6)), jnp.float32)
    mc = jig.paths.expected(stack, key=jax.random.key(0), samples=20000)
    Gm = jig.interactions(quad, None, 8, path=mc)(x, A)
    Ge = jig.interactions(quad, None, 8, path=jig.paths.expected(stack))(x, A)
    assert np.abs(Gm - Ge).max() < 0.05 * np.abs(Ge).max()


# --------------------------------------------------------------------------- transformations


def test_jit_vmap_grad_chunk_size_and_mesh():
    xs = jnp.asarray(np.random.default_rng(5).normal(size=(2, 6)), jnp.float32)
    explain = jig.interactions(mlp, 0.0, 5)
    G = explain(xs[0], PARAMS)
    batch = jax.jit(jax.vmap(explain, in_axes=(0, None)))(xs, PARAMS)
    np.testing.assert_allclose(batch[0], G, rtol=2e-5, atol=2e-7)
    np.testing.assert_allclose(batch[1], explain(xs[1], PARAMS), rtol=2e-5, atol=2e-7)
    rows = jax.jit(jax.vmap(jig.interactions(mlp, 0.0, 5, rows=[2]), in_axes=(0, None)))(xs, PARAMS)
    np.testing.assert_allclose(rows[:, 0], batch[:, 2], rtol=2e-5, atol=2e-7)
    for kw in ({"chunk_size": 2}, {"chunk_size": "auto"}, {"mesh": jax.make_mesh((8,), ("d",))}, {"mesh": jax.make_mesh((8,), ("d",)), "chunk_size": 3}):
        np.testing.assert_allclose(jig.interactions(mlp, 0.0, 5, **kw)(xs[0], PARAMS), G, rtol=2e-5, atol=2e-7,
                                   err_msg=str(kw))
    C = jnp.asarray(np.random.default_rng(6).normal(size=(6, 6)), jnp.float32)
    score = lambda x: jnp.vdot(C, explain(x, PARAMS))  # noqa: E731
    g = jax.grad(score)(xs[0])
    v = jnp.linspace(-1.0, 1.0, 6)
    _, dv = jax.jvp(score, (xs[0],), (v,))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(jnp.vdot(g, v), dv, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- tokens


def test_token_matrix_through_a_flax_embedding_split():
    import flax.linen as nn

    class Pair(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(12, 3, name="embed")(ids)  # (T, 3)
            z = jnp.tanh(nn.Dense(4, name="mix")(h.reshape(-1)))
            return nn.Dense(1, name="head")(z)[0]

    model, ids = Pair(), jnp.array([3, 7, 1])
    params = model.init(jax.random.key(0), ids)
    s = jig.flax.split(model, "embed")
    h = s.bottom(params, ids)
    G, delta = jig.interactions(lambda h, params, ids: s.top(params, ids, h), 0.0, 12, return_delta=True)(h, params, ids)
    assert G.shape == (3, 3, 3, 3) and abs(delta) < 1e-5
    M = token_matrix(G)
    assert M.shape == (3, 3)
    np.testing.assert_allclose(M, G.sum(axis=(1, 3)), atol=1e-6)
    batched = jax.jit(jax.vmap(token_matrix))(jnp.stack([G, -2.0 * G]))  # composes with jit and vmap
    np.testing.assert_allclose(batched, jnp.stack([M, -2.0 * M]), atol=1e-6)
    A = jig.ig(lambda h, params, ids: s.top(params, ids, h), 0.0, 64)(h, params, ids)
    np.testing.assert_allclose(M.sum(axis=1), A.sum(axis=1), atol=1e-5)  # per-token IG
    np.testing.assert_allclose(M.sum(), model.apply(params, ids) - s.top(params, ids, jnp.zeros_like(h)), atol=1e-5)


# --------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
    f = lambda x: jnp.sum(x**3)  # noqa: E731
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="jig.interactions: path must be None, jig.paths.straight"):
        jig.interactions(f, None, 4, path=jig.paths.blur(1.0))
    with pytest.raises(ValueError, match="path must be .*got the 'guided' path"):
        jig.interactions(f, 0.0, 4, path=jig.paths.guided())
    with pytest.raises(TypeError, match="jig.interactions: path must be None"):
        jig.interactions(f, 0.0, 4, path="straight")
    with pytest.raises(ValueError, match="rule must be one of"):
        jig.interactions(f, 0.0, 4, rule="simpson")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        jig.interactions(f, 0.0, 0)
    with pytest.raises(TypeError, match="steps must be a Python int"):
        jig.interactions(f, 0.0, 2.5)
    with pytest.raises(TypeError, match=r"jig.interactions: rows must be a 1-D int array.*rows=\[2\]"):
        jig.interactions(f, 0.0, 4, rows=2)
    with pytest.raises(TypeError, match="jig.interactions: rows must be a 1-D int array"):
        jig.interactions(f, 0.0, 4, rows=[0.5])
    with pytest.raises(ValueError, match=r"rows must be a 1-D array of R >= 1"):
        jig.interactions(f, 0.0, 4, rows=[[0, 1]])
    with pytest.raises(ValueError, match="rows must be non-negative"):
        jig.interactions(f, 0.0, 4, rows=[-1])
    with pytest.raises(ValueError, match=r"rows must be feature indices in \[0, 3\)"):
        jig.interactions(f, 0.0, 4, rows=[1, 3])(x)
    with pytest.raises(TypeError, match="rows must be a concrete"):
        jax.jit(lambda r: jig.interactions(f, 0.0, 4, rows=r)(x))(jnp.array([0]))
    with pytest.raises(ValueError, match="return_delta must be False when rows= is given"):
        jig.interactions(f, 0.0, 4, rows=[0], return_delta=True)
    with pytest.raises(TypeError, match="return_delta must be True or False"):
        jig.interactions(f, 0.0, 4, return_delta="yes")
    with pytest.raises(ValueError, match="chunk_size must be None or >= 1"):
        jig.interactions(f, 0.0, 4, chunk_size=0)
    with pytest.raises(TypeError, match="mesh must be None or a jax.sharding.Mesh"):
        jig.interactions(f, 0.0, 4, mesh="cpu")
    with pytest.raises(TypeError, match="jig.interactions: argnums must be"):
        jig.interactions(f, 0.0, 4, argnums=-1)
    with pytest.raises(TypeError, match="jig.interactions: argument 0 has dtype int32"):
        jig.interactions(f, 0.0, 4)(jnp.array([1, 2]))
    with pytest.raises(ValueError, match="jig.interactions: f must return a scalar"):
        jig.interactions(lambda x: x**2, 0.0, 4)(x)
    with pytest.raises(ValueError, match="baseline=None needs a path"):
        jig.interactions(f, None, 4)
    with pytest.raises(ValueError, match="token_matrix: gamma must be a full interaction matrix of shape"):
        token_matrix(jnp.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="token_matrix: gamma must be"):
        token_matrix(jnp.ones((3, 2, 4, 2)))


# --------------------------------------------------------------------------- the example


def test_interactions_tabular_example_quick(tmp_path):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "interactions_tabular.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "interactions_tabular.png").stat().st_size > 10_000
    assert "rows sum to IG" in out.stdout
