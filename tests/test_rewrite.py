"""jig.rewrite.fast: tiling max pools become reshape + max; everything else is unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jig
from jig import rewrite


def pool(x, window, strides=None, padding="VALID"):
    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides or window, padding)


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "k1": jnp.asarray(rng.normal(size=(3, 3, 1, 4)) / 3, jnp.float32),
        "k2": jnp.asarray(rng.normal(size=(3, 3, 4, 8)) / 6, jnp.float32),
        "w": jnp.asarray(rng.normal(size=(8 * 3 * 3, 5)) / 8, jnp.float32),
    }


def cnn(x, p, window=(1, 2, 2, 1), strides=None):
    """conv -> tanh -> max pool -> conv -> tanh -> max pool -> dense, one NHWC image batch."""
    conv = lambda h, k: lax.conv_general_dilated(h, k, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = pool(jnp.tanh(conv(x, p["k1"])), window, strides)
    h = pool(jnp.tanh(conv(h, p["k2"])), window, strides)
    return jnp.tanh(h.reshape(h.shape[0], -1)[:, : 8 * 3 * 3] @ p["w"])


def _prims(f, *args):
    return str(jax.make_jaxpr(f)(*args))


def test_values_and_gradients_equal_the_original():
    p = _params()
    x = jax.random.normal(jax.random.key(0), (2, 12, 12, 1))
    F = lambda x, p: jnp.sum(cnn(x, p) ** 2)
    G = rewrite.fast(F)
    np.testing.assert_allclose(jax.jit(G)(x, p), jax.jit(F)(x, p), rtol=1e-6)
    gx, gp = jax.jit(jax.grad(G, argnums=(0, 1)))(x, p)
    fx, fp = jax.jit(jax.grad(F, argnums=(0, 1)))(x, p)
    np.testing.assert_allclose(gx, fx, rtol=1e-5, atol=1e-7)
    for k in p:
        np.testing.assert_allclose(gp[k], fp[k], rtol=1e-5, atol=1e-7)
    assert float(jnp.abs(fx).max()) > 1e-3
    # the slow backward (select_and_scatter) is gone, and both pools were rewritten
    assert "reduce_window_max" not in _prims(G, x, p)
    assert "select_and_scatter" in _prims(jax.grad(F), x, p)
    assert "select_and_scatter" not in _prims(jax.grad(G), x, p)
    assert rewrite.count(F, x, p) == {"rewritten": 2, "kept": 0}


@pytest.mark.parametrize("window,strides,padding,shape", [
    ((1, 3, 3, 1), (1, 2, 2, 1), "VALID", (1, 9, 9, 2)),  # overlapping windows
    ((1, 2, 2, 1), (1, 2, 2, 1), "VALID", (1, 5, 6, 2)),  # 5 not divisible by 2
    ((1, 2, 2, 1), (1, 2, 2, 1), "SAME", (1, 5, 5, 2)),  # padded
    ((1, 2, 2, 1), (1, 1, 1, 1), "VALID", (1, 6, 6, 2)),  # stride 1
])
def test_other_pools_are_left_unchanged(window, strides, padding, shape):
    x = jax.random.normal(jax.random.key(1), shape)
    F = lambda x: jnp.sum(jnp.sin(pool(x, window, strides, padding)))
    G = rewrite.fast(F)
    assert rewrite.count(F, x) == {"rewritten": 0, "kept": 1}
    assert _prims(G, x).count("reduce_window_max") == 1
    np.testing.assert_array_equal(jax.jit(G)(x), jax.jit(F)(x))
    np.testing.assert_array_equal(jax.jit(jax.grad(G))(x), jax.jit(jax.grad(F))(x))


def test_jit_vmap_grad_compose():
    p = _params(1)
    xs = jax.random.normal(jax.random.key(2), (3, 1, 12, 12, 1))
    F = lambda x, p: jnp.sum(cnn(x, p)[:, 1])
    want = jax.jit(jax.vmap(jax.grad(F), in_axes=(0, None)))(xs, p)
    got = jax.jit(jax.vmap(jax.grad(rewrite.fast(F)), in_axes=(0, None)))(xs, p)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # and the other way round: fast of a vmapped, jitted function
    H = jax.jit(jax.vmap(F, in_axes=(0, None)))
    np.testing.assert_allclose(jax.jit(rewrite.fast(H))(xs, p), H(xs, p), rtol=1e-6)
    assert "reduce_window_max" not in _prims(rewrite.fast(H), xs, p)


def test_nested_jit_is_rewritten():
    @jax.jit
    def block(h):
        return pool(jnp.tanh(h), (2, 2))

    F = lambda x: jnp.sum(jax.jit(lambda y: block(y) * 2.0)(x) ** 3)
    x = jax.random.normal(jax.random.key(3), (6, 4))
    G = rewrite.fast(F)
    assert "reduce_window_max" in _prims(F, x)
    assert "reduce_window_max" not in _prims(G, x)
    np.testing.assert_allclose(jax.jit(G)(x), jax.jit(F)(x), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(G))(x), jax.jit(jax.grad(F))(x), rtol=1e-6)


def test_custom_jvp_bodies_are_left_alone_and_still_work():
    @jax.custom_jvp
    def pooled(x):
        return pool(x, (2, 2))

    @pooled.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return pooled(x), t.reshape(2, 2, 2, 2).mean((1, 3))  # a deliberately different rule

    x = jax.random.normal(jax.random.key(4), (4, 4))
    F = lambda x: jnp.sum(pooled(x))
    G = rewrite.fast(F)
    assert rewrite.count(F, x) == {"rewritten": 0, "kept": 0}
    np.testing.assert_array_equal(jax.grad(G)(x), jax.grad(F)(x))  # the custom rule is kept
    np.testing.assert_allclose(jax.grad(G)(x), jnp.full((4, 4), 0.25))


def test_ties_are_broken_as_reduce_window_breaks_them():
    # flat regions (a constant after conv + bias + ReLU) tie whole windows: the gradient
    # must go to the same (first) maximum, or attributions change
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.integers(0, 3, size=(2, 6, 8, 3)), jnp.float32)
    for window in [(1, 2, 2, 1), (1, 3, 2, 1), (2, 1, 4, 3)]:
        F = lambda x: jnp.sum(pool(x, window) * jnp.arange(1.0, 1.0 + x.shape[-1] // window[-1]))
        np.testing.assert_array_equal(jax.jit(jax.grad(rewrite.fast(F)))(x), jax.jit(jax.grad(F))(x))
        t = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
        jvp = lambda f: jax.jit(lambda x, t: jax.jvp(f, (x,), (t,))[1])(x, t)
        np.testing.assert_allclose(jvp(rewrite.fast(F)), jvp(F), rtol=1e-5)  # a sum: order differs
    y = jnp.array([[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, -1.0, 2.0]])
    np.testing.assert_array_equal(jax.grad(lambda y: rewrite.fast(F2)(y))(y), [[1, 0, 0, 1], [0, 0, 0, 0]])


def F2(y):
    return jnp.sum(pool(y, (2, 2)))


def test_second_derivatives_match():
    x = jax.random.normal(jax.random.key(8), (4, 6))
    F = lambda x: jnp.sum(jnp.sin(pool(x ** 2, (2, 3))) ** 2)
    hv = lambda f: jax.jit(lambda x: jax.jvp(jax.grad(f), (x,), (jnp.ones_like(x),))[1])(x)
    np.testing.assert_allclose(hv(rewrite.fast(F)), hv(F), rtol=1e-5, atol=1e-6)


def test_pytrees_kwargs_and_flax_max_pool():
    import flax.linen as nn

    def F(tree, *, scale):
        a = nn.max_pool(tree["img"], (2, 2), (2, 2))
        return {"s": jnp.sum(a) * scale, "pooled": a}

    tree = {"img": jax.random.normal(jax.random.key(5), (1, 4, 6, 3))}
    G = rewrite.fast(F)
    out, want = G(tree, scale=2.0), F(tree, scale=2.0)
    assert jax.tree.structure(out) == jax.tree.structure(want)
    np.testing.assert_array_equal(out["pooled"], want["pooled"])
    assert rewrite.count(F, tree, scale=2.0)["rewritten"] == 1


def test_with_jig_ig():
    p = _params(2)
    x = jax.random.normal(jax.random.key(6), (1, 12, 12, 1))
    F = lambda x, p: cnn(x, p)[0, 2]
    a = jig.ig(F, 0.0, 8)(x, p)
    b = jig.ig(rewrite.fast(F), 0.0, 8)(x, p)
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * float(jnp.abs(a).max()))


def test_not_callable_is_refused():
    with pytest.raises(TypeError, match="jig.rewrite.fast: f must be a callable"):
        rewrite.fast(3)
