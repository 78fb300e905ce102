"""targets=: every output in one pass equals a loop over single outputs, on every path and
rule, chunked, on a mesh, adaptive, through a Flax layer; per-output completeness; vmap
with per-example targets; forward mode; float32 sums exact to rounding; bad targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import jig

W1 = jax.random.normal(jax.random.key(0), (16, 12)) * 0.5
W2 = jax.random.normal(jax.random.key(1), (12, 5)) * 0.5
X = jax.random.normal(jax.random.key(2), (4, 4)) * 0.8
STACK = jax.random.normal(jax.random.key(3), (3, 4, 4)) * 0.3


def logits(x, w1, w2):
    return jnp.tanh(x.reshape(-1) @ w1) @ w2  # 5 outputs


PATHS = {
    "straight": (jig.paths.straight(), 0.0),
    "blur": (jig.paths.blur(1.5), None),
    "expected": (jig.paths.expected(STACK), None),
    "custom": (jig.paths.custom(lambda a, x, b: b + a**2 * (x - b)), 0.0),
    "guided": (jig.paths.guided(), 0.0),
}
RULES = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gauss_legendre"]


def single(k, path, b, rule, **kw):
    return jig.ig(lambda x, w1, w2: logits(x, w1, w2)[k], b, 6, path=path, rule=rule, **kw)(X, W1, W2)


def singles(ks, path, b, rule, **kw):
    """One single-target call per k, batched by vmapping the closure over the class index."""
    return jax.vmap(lambda k: single(k, path, b, rule, **kw))(jnp.asarray(ks))


@pytest.mark.parametrize("name", list(PATHS))
@pytest.mark.parametrize("rule", RULES)
def test_all_targets_equal_a_loop_over_single_targets(name, rule):
    path, b = PATHS[name]
    A, delta = jig.ig(logits, b, 6, path=path, rule=rule, targets="all", return_delta=True)(X, W1, W2)
    assert A.shape == (5, 4, 4) and delta.shape == (5,)
    Ak, dk = singles(range(5), path, b, rule, return_delta=True)
    np.testing.assert_allclose(A, Ak, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(delta, dk, atol=2e-5)


@pytest.mark.parametrize("name", ["straight", "blur", "expected"])
def test_target_subset_chunked_and_on_a_mesh(name):
    path, b = PATHS[name]
    t = jnp.array([4, 1])
    mesh = jax.make_mesh((8,), ("p",))
    ref = singles([4, 1], path, b, "gauss_legendre")
    for kw in ({}, {"chunk_size": 4}, {"mesh": mesh}, {"chunk_size": 4, "mesh": mesh}, {"hoist": False}):
        A = jig.ig(logits, b, 6, path=path, targets=t, **kw)(X, W1, W2)
        assert A.shape == (2, 4, 4)
        for i in range(2):
            np.testing.assert_allclose(A[i], ref[i], rtol=2e-5, atol=2e-6, err_msg=str(kw))


def test_adaptive_refines_until_every_target_meets_the_tolerance():
    tol = 1e-4
    A, info = jig.ig(logits, 0.0, 4, tol=tol, targets="all", return_info=True)(X, W1, W2)
    gap = logits(X, W1, W2) - logits(jnp.zeros_like(X), W1, W2)
    assert bool(info.converged.all()) and info.delta.shape == (5,)
    np.testing.assert_allclose(A.sum(axis=(1, 2)) - gap, info.delta, atol=3e-5)
    assert np.all(np.abs(np.asarray(info.delta)) <= tol * np.abs(np.asarray(gap)) + 3e-5)
    # the points used are those of the hardest target: no target alone needs more
    one = jax.vmap(lambda k: jig.ig(lambda x, w1, w2: logits(x, w1, w2)[k], 0.0, 4, tol=tol,
                                    return_info=True)(X, W1, W2)[1])(jnp.arange(5))
    assert int(info.points) == int(one.points.max())
    # return_delta gives the same kind of object with or without tol: an array of shape (5,)
    _, d_tol = jig.ig(logits, 0.0, 4, tol=tol, targets="all", return_delta=True)(X, W1, W2)
    _, d_fix = jig.ig(logits, 0.0, 16, targets="all", return_delta=True)(X, W1, W2)
    assert type(d_tol) is type(d_fix) and d_tol.shape == d_fix.shape == (5,)


def test_per_output_completeness_and_output_shapes():
    def grid(x, w1, w2):  # outputs of shape (5, 2)
        y = logits(x, w1, w2)
        return jnp.stack([y, y**2], axis=-1)

    A, delta = jig.ig(grid, 0.0, 32, targets="all", return_delta=True)(X, W1, W2)
    assert A.shape == (5, 2, 4, 4) and delta.shape == (5, 2)
    gap = grid(X, W1, W2) - grid(jnp.zeros_like(X), W1, W2)
    np.testing.assert_allclose(A.sum(axis=(2, 3)), gap, atol=2e-4)
    # a pytree input: S + leaf.shape per leaf
    tree = {"a": X, "b": jnp.ones(3)}
    f = lambda t: jnp.stack([jnp.sum(t["a"] ** 2) * t["b"][0], jnp.sum(t["b"] ** 3)])  # noqa: E731
    At = jig.ig(f, 0.0, 16, targets="all")(tree)
    assert At["a"].shape == (2, 4, 4) and At["b"].shape == (2, 3)
    single_k = jax.vmap(lambda k: jig.ig(lambda t: f(t)[k], 0.0, 16)(tree))(jnp.arange(2))
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6), At, single_k)


def test_vmap_with_per_example_target_lists():
    xs = jax.random.normal(jax.random.key(5), (3, 4, 4))
    ts = jnp.array([[0, 3], [4, 4], [2, 1]])
    batch = jax.jit(jax.vmap(lambda x, t: jig.ig(logits, 0.0, 8, targets=t)(x, W1, W2)))(xs, ts)
    assert batch.shape == (3, 2, 4, 4)
    one = lambda x, k: jig.ig(lambda x, w1, w2: logits(x, w1, w2)[k], 0.0, 8)(x, W1, W2)  # noqa: E731
    ref = jax.vmap(jax.vmap(one, in_axes=(None, 0)))(xs, ts)
    np.testing.assert_allclose(batch, ref, rtol=2e-5, atol=2e-6)


def test_forward_mode_when_the_input_is_smaller_than_the_outputs():
    w = jax.random.normal(jax.random.key(6), (2, 40))
    f = lambda x: jnp.tanh(x @ w)  # noqa: E731 - 2 inputs, 40 outputs: jacfwd is chosen
    x = jnp.array([0.7, -1.2])
    A = jig.ig(f, 0.0, 16, targets="all")(x)
    ref = jax.vmap(lambda k: jig.ig(lambda x: f(x)[k], 0.0, 16)(x))(jnp.arange(40))
    np.testing.assert_allclose(A, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(A.sum(-1), f(x) - f(jnp.zeros(2)), atol=1e-4)  # per-output completeness


def test_layer_ig_targets_all_is_a_token_matrix_and_equals_single_calls():
    class Seq(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(30, 6, name="embed")(ids)  # (T, 6)
            causal = jnp.tril(jnp.ones((ids.shape[0], ids.shape[0])))
            mixed = (causal / causal.sum(1, keepdims=True)) @ jnp.tanh(nn.Dense(6)(h))
            return nn.Dense(1)(mixed)[:, 0]  # one score per position

    model, ids = Seq(), jnp.array([3, 7, 1, 9])
    params = model.init(jax.random.key(0), ids)
    res = jig.flax.layer_ig(model, "embed", steps=16, targets="all", return_delta=True)(params, ids)
    assert res.attributions.shape == (4, 4, 6) and res.token_scores.shape == (4, 4) and res.delta.shape == (4,)
    one = jax.vmap(lambda k: jig.flax.layer_ig(model, "embed", lambda y: y[k], steps=16)(params, ids))(jnp.arange(4))
    np.testing.assert_allclose(res.token_scores, one.token_scores, rtol=1e-5, atol=1e-6)
    # causal: no output position is attributed to later tokens
    upper = np.triu(np.asarray(res.token_scores), k=1)
    np.testing.assert_allclose(upper, 0.0, atol=1e-7)


@pytest.mark.parametrize("steps", [500, 4096])
@pytest.mark.parametrize("chunk_size", [None, 64, 7])
def test_float32_weighted_sum_is_exact_to_rounding(steps, chunk_size):
    f = lambda x: jnp.sum(3.0 * x)  # noqa: E731 - a constant gradient
    x = jnp.array([1.5, 2.0, 1.3])
    for rule in ("riemann_left", "gauss_legendre"):
        A = jig.ig(f, 0.0, steps, rule=rule, chunk_size=chunk_size)(x)
        rel = np.max(np.abs(np.asarray(A, np.float64) / (3.0 * np.asarray(x, np.float64)) - 1.0))
        assert rel <= 1e-6, (rule, steps, chunk_size, rel)


def test_bad_targets_give_clear_errors():
    f = lambda x: jnp.tanh(x[:3] * 2.0)  # noqa: E731 - 3 outputs
    x = jnp.ones(4)
    with pytest.raises(ValueError, match=r"jig.ig: targets must be indices in \[0, 3\) \(f returns 3 outputs\), got \[0, 3\]"):
        jig.ig(f, 0.0, 4, targets=jnp.array([0, 3]))(x)
    with pytest.raises(ValueError, match="targets must be non-negative output indices"):
        jig.ig(f, 0.0, 4, targets=jnp.array([-1]))
    with pytest.raises(TypeError, match="targets must be an integer array of output indices.*float32"):
        jig.ig(f, 0.0, 4, targets=jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets must be a 1-D array of K >= 1 output indices, shape \(K,\)"):
        jig.ig(f, 0.0, 4, targets=jnp.array([[0, 1]]))
    with pytest.raises(TypeError, match=r"for one output use targets=\[2\]"):
        jig.ig(f, 0.0, 4, targets=2)
    with pytest.raises(ValueError, match="targets must be None, 'all' or an int array"):
        jig.ig(f, 0.0, 4, targets="every")
    with pytest.raises(ValueError, match=r"with targets=<int array>, f must return a vector .* returned shape \(\)"):
        jig.ig(lambda x: jnp.sum(x), 0.0, 4, targets=jnp.array([0]))(x)
    with pytest.raises(ValueError, match=r"f must return a scalar, but it returned shape \(3,\).*targets='all'"):
        jig.ig(f, 0.0, 4)(x)
    # traced out-of-range indices cannot raise: they give NaN deltas, never a clamped row
    _, delta = jax.jit(lambda t: jig.ig(f, 0.0, 4, targets=t, return_delta=True, check_finite=False)(x))(jnp.array([0, 5]))
    assert np.isfinite(delta[0]) and np.isnan(delta[1])


def test_conv_models_apply_the_cotangents_one_by_one_with_the_same_values():
    """On conv nets the K cotangents run one after another (faster on XLA:CPU); the values
    equal single-target calls, hoisted or not, chunked or not."""
    w = jax.random.normal(jax.random.key(7), (3, 3, 1, 4))

    def f(x):
        h = jax.lax.conv_general_dilated(x[None], w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.tanh(h).reshape(-1)[:5]

    x = jax.random.normal(jax.random.key(8), (6, 6, 1))
    ref = jax.vmap(lambda k: jig.ig(lambda v: f(v)[k], 0.0, 8)(x))(jnp.arange(5))
    for kw in ({}, {"hoist": False}, {"chunk_size": 3}):
        np.testing.assert_allclose(jig.ig(f, 0.0, 8, targets="all", **kw)(x), ref, rtol=2e-5, atol=2e-6)
