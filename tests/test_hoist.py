"""jig.hoist: the affine prefix of f is found, split off and evaluated once; jig.ig with
hoist=True equals hoist=False on models of every shape of first layer, composes with
jit / vmap / grad / chunking / mesh, and does less work."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jig
from jig import hoist

RNG = np.random.default_rng(0)


def arr(*shape, scale=1.0):
    return jnp.asarray(RNG.normal(size=shape) * scale, jnp.float32)


W1, B1, W2 = arr(6, 16, scale=0.5), arr(16), arr(16, 1, scale=0.5)
X = arr(6)


def tanh_net(x, w1=W1, b1=B1, w2=W2):
    return jnp.sum(jnp.tanh(x @ w1 + b1) @ w2)


def both(f, *args, steps=16, rtol=2e-5, atol=1e-6, **kw):
    """jig.ig of f with and without hoisting: equal attributions and deltas."""
    A, d = jig.ig(f, 0.0, steps, return_delta=True, **kw)(*args)
    B, e = jig.ig(f, 0.0, steps, return_delta=True, hoist=False, **kw)(*args)
    for a, b in zip(jax.tree.leaves(A), jax.tree.leaves(B)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    np.testing.assert_allclose(d, e, atol=10 * atol)
    return A


def flops(f, *args):
    return jax.jit(f).lower(*args).compile().cost_analysis()["flops"]


# --------------------------------------------------------------------------- split


def test_split_finds_the_dense_layer_and_rebuilds_f():
    s = hoist.split(tanh_net, X)
    assert s is not None and s.sizes == (6, 16)
    (h,) = s.prefix(X)
    np.testing.assert_allclose(h, X @ W1 + B1, rtol=1e-6)
    np.testing.assert_allclose(s.rest(s.prefix(X)), tanh_net(X), rtol=1e-6)
    g = jax.grad(lambda z: s.rest(s.prefix(z)))(X)
    np.testing.assert_allclose(g, jax.grad(tanh_net)(X), rtol=1e-5, atol=1e-7)


def test_prefix_is_affine_along_a_line():
    s = hoist.split(tanh_net, X)
    b = arr(6)
    h0, h1 = jax.jvp(s.prefix, (b,), (X - b,))
    for a in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(h0[0] + a * h1[0], s.prefix(b + a * (X - b))[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "f, why",
    [
        (lambda x: jnp.sum(jnp.tanh(x)), "no matrix product on the input"),
        (lambda x: jnp.sum(jnp.tanh(x * x) @ W1), "the first product is not affine"),
        (lambda x: jnp.sum(W1) + 0.0 * jnp.sum(jnp.zeros(3)), "no dependence on x"),
        (lambda x: (jax.debug.print("{}", x[0]), jnp.sum(jnp.tanh(x @ W1)))[1], "side effects"),
        (lambda x: jnp.sum(jnp.tanh((x.astype(jnp.bfloat16) @ W1.astype(jnp.bfloat16)))).astype(jnp.float32),
         "the prefix ends in another dtype"),
    ],
)
def test_split_declines(f, why):
    assert hoist.split(f, X) is None, why


def test_split_inlines_nested_jit_and_reads_pytrees():
    @jax.jit
    def dense(x, w, b):
        return x @ w + b

    def f(d):
        return jnp.sum(jnp.tanh(dense(d["a"], W1, B1)) + jnp.tanh(d["b"] @ W1))

    d = {"a": X, "b": 2 * X}
    s = hoist.split(f, d)
    assert s is not None and s.sizes == (12, 32)
    np.testing.assert_allclose(s.rest(s.prefix(d)), f(d), rtol=1e-6)


def test_an_affine_f_is_its_own_frontier():
    f = lambda x: jnp.sum(x @ W1 + B1)  # noqa: E731
    s = hoist.split(f, X)
    assert s is not None and s.sizes == (6, 1)
    A = both(f, X, steps=1)
    np.testing.assert_allclose(A, X * jnp.sum(W1, axis=1), rtol=1e-5)


# --------------------------------------------------------------------------- ig(hoist=True) == ig(hoist=False)


def test_residual_input_reused_after_the_nonlinearity():
    w = arr(6, 6, scale=0.4)

    def f(x):
        h = x @ w + 0.1
        return jnp.sum(jnp.tanh(h) + x) ** 2

    assert hoist.split(f, X).sizes == (6, 12)  # x itself and x @ w + 0.1
    both(f, X)


@pytest.mark.parametrize("rule", ["gauss_legendre", "riemann_left", "riemann_trapezoid"])
def test_rules_and_a_nonzero_baseline(rule):
    b = arr(6)
    A = jig.ig(tanh_net, b, 12, rule=rule)(X)
    B = jig.ig(tanh_net, b, 12, rule=rule, hoist=False)(X)
    np.testing.assert_allclose(A, B, rtol=2e-5, atol=1e-6)


class _CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3))(x)
        x = nn.tanh(x)
        x = nn.Conv(4, (3, 3), strides=2)(x)
        x = nn.tanh(x).reshape(-1)
        return nn.Dense(1)(x)[0]


def test_flax_cnn_with_conv_first_layer():
    x = arr(10, 10, 2)
    params = _CNN().init(jax.random.key(0), x)
    f = lambda x, p: _CNN().apply(p, x)  # noqa: E731
    assert hoist.split(lambda z: f(z, params), x).sizes == (200, 800)
    both(f, x, params, rtol=1e-4, atol=1e-6)


def test_first_layer_variants():
    """Affine operations of many kinds before the first non-linearity."""
    w = arr(3, 3, 2, 4, scale=0.3)
    idx = jnp.array([2, 0, 1, 1])

    def f(x):  # x: (5, 5, 2)
        y = jax.lax.conv_general_dilated(x[None], w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
        y = jnp.pad(y, ((1, 0), (0, 1), (0, 0))) * 0.5 - 1.0  # pad, mul and sub by constants
        y = jnp.concatenate([y, jnp.ones((6, 6, 1))], axis=-1) / 3.0  # concat a constant, div
        y = jnp.transpose(y, (2, 0, 1)).reshape(5, 36)[idx]  # transpose, reshape, gather
        y = jnp.where(jnp.arange(36) % 2 == 0, y, -y)  # select with a constant predicate
        y = jax.lax.dynamic_slice(y, (1, 2), (3, 30)) + jnp.cumsum(y[1:4, :30], axis=1)
        return jnp.sum(jnp.sin(y) ** 2)

    x = arr(5, 5, 2)
    s = hoist.split(f, x)
    assert s is not None and s.sizes == (50, 90)
    both(f, x, rtol=1e-4, atol=1e-6)


def test_several_argnums():
    def f(a, c):
        return jnp.sum(jnp.tanh(a @ W1 + c @ W1[:3]))

    c = arr(3)
    A = jig.ig(f, 0.0, 16, argnums=(0, 1))(X, c)
    B = jig.ig(f, 0.0, 16, argnums=(0, 1), hoist=False)(X, c)
    for a, b in zip(A, B):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


# --------------------------------------------------------------------------- composition


def test_jit_vmap_chunked_and_mesh_match():
    xs = arr(7, 6)
    ref = jax.vmap(jig.ig(tanh_net, 0.0, 24, hoist=False))(xs)
    for kw in ({}, {"chunk_size": 5}, {"chunk_size": 1}, {"mesh": jax.make_mesh((8,), ("p",))}):
        got = jax.jit(jax.vmap(jig.ig(tanh_net, 0.0, 24, **kw)))(xs)
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6, err_msg=str(kw))


def test_grad_through_the_hoisted_explainer():
    def loss(w1, hoist):
        return jnp.sum(jig.ig(lambda x, w: tanh_net(x, w), 0.0, 8, hoist=hoist)(X, w1) ** 2)

    g = jax.grad(loss)(W1, True)
    np.testing.assert_allclose(g, jax.grad(loss)(W1, False), rtol=1e-4, atol=1e-6)
    gx = jax.grad(lambda x: jnp.sum(jig.ig(tanh_net, 0.0, 8)(x) ** 2))(X)
    gx0 = jax.grad(lambda x: jnp.sum(jig.ig(tanh_net, 0.0, 8, hoist=False)(x) ** 2))(X)
    np.testing.assert_allclose(gx, gx0, rtol=1e-4, atol=1e-6)


def test_hoisting_removes_the_first_layer_from_every_point():
    w1, w2 = arr(64, 128, scale=0.1), arr(128, 1, scale=0.1)
    f = lambda x, w1, w2: jnp.sum(jnp.tanh(x @ w1) @ w2)  # noqa: E731
    x = arr(64)
    on = flops(jig.ig(f, 0.0, 256), x, w1, w2)
    off = flops(jig.ig(f, 0.0, 256, hoist=False), x, w1, w2)
    # per point: the product x@w1 (2*64*128) and its transpose (2*128*64) are gone
    assert off - on >= 0.9 * 256 * 2 * (2 * 64 * 128)


def test_not_hoisted_on_blur_or_in_half_precision():
    blurred = jig.ig(lambda x: jnp.sum(jnp.tanh(x.reshape(-1) @ W1[:4])), None, 8, path=jig.paths.blur(1.0))
    np.testing.assert_allclose(blurred(arr(2, 2)).shape, (2, 2))
    assert jig.paths.straight().line is not None and jig.paths.blur(1.0).line is None
    xh = X.astype(jnp.float16)
    f = lambda x: jnp.sum(jnp.tanh(x.astype(jnp.float32) @ W1))  # noqa: E731
    A = jig.ig(f, 0.0, 16)(xh)
    assert A.dtype == jnp.float16
    np.testing.assert_allclose(A, jig.ig(f, 0.0, 16, hoist=False)(xh), rtol=1e-3)


def test_hoist_must_be_a_bool():
    with pytest.raises(TypeError, match="hoist must be True or False"):
        jig.ig(tanh_net, 0.0, 8, hoist="yes")


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    act=st.sampled_from(["tanh", "softplus", "sigmoid"]),
    width=st.integers(1, 12),
    steps=st.integers(1, 40),
)
def test_equal_on_random_smooth_nets(seed, act, width, steps):
    r = np.random.default_rng(seed)
    w1 = jnp.asarray(r.normal(size=(4, width)), jnp.float32)
    b1 = jnp.asarray(r.normal(size=(width,)), jnp.float32)
    w2 = jnp.asarray(r.normal(size=(width,)), jnp.float32)
    x = jnp.asarray(r.normal(size=(4,)), jnp.float32)
    g = getattr(jax.nn, act)
    f = lambda x: g(x @ w1 + b1) @ w2  # noqa: E731
    A, d = jig.ig(f, 0.0, steps, return_delta=True)(x)
    B, e = jig.ig(f, 0.0, steps, return_delta=True, hoist=False)(x)
    scale = 1.0 + float(jnp.max(jnp.abs(B)))
    np.testing.assert_allclose(A, B, atol=2e-5 * scale)
    np.testing.assert_allclose(d, e, atol=5e-5 * scale)


def test_control_flow_and_custom_rules_after_the_prefix():
    """The rest is evaluated equation by equation: scan, cond, while, custom_vjp and
    custom_jvp in it must bind as in F."""

    @jax.custom_vjp
    def clip_grad(h):
        return h

    clip_grad.defvjp(lambda h: (h, None), lambda _, g: (jnp.clip(g, -0.5, 0.5),))

    def f(x):
        h = x @ W1 + B1
        h = jax.lax.cond(jnp.sum(h) > 0, jnp.tanh, jnp.sin, h)
        h, _ = jax.lax.scan(lambda c, w: (jnp.tanh(c * w), None), h, jnp.linspace(0.5, 1.5, 3)[:, None] * jnp.ones(16))
        h = jax.lax.fori_loop(0, 2, lambda i, c: jax.nn.softplus(c) - 0.3, h)
        return jnp.sum(clip_grad(h) @ W2)

    assert hoist.split(f, X).sizes == (6, 17)  # h and the (affine) sum the cond reads
    both(f, X)


def test_nnx_model():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(6, 16, rngs=rngs), nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.gelu(self.l1(x)))[0]

    model = Net(nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    f = lambda x, state: nnx.merge(graphdef, state)(x)  # noqa: E731
    assert hoist.split(lambda z: f(z, state), X).sizes == (6, 16)
    both(f, X, state)


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_expected_gradients_hoisted_equal_plain(chunk_size):
    stack = arr(5, 6)
    for path in (jig.paths.expected(stack), jig.paths.expected(stack, key=jax.random.key(3), samples=40)):
        A, d = jig.ig(tanh_net, None, 8, path=path, chunk_size=chunk_size, return_delta=True)(X)
        B, e = jig.ig(tanh_net, None, 8, path=path, chunk_size=chunk_size, return_delta=True, hoist=False)(X)
        np.testing.assert_allclose(A, B, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(d, e, atol=1e-5)
    # and exactly the mean of straight-line IG over the baselines
    mean = jnp.mean(jnp.stack([jig.ig(tanh_net, s, 8)(X) for s in stack]), axis=0)
    np.testing.assert_allclose(jig.ig(tanh_net, None, 8, path=jig.paths.expected(stack))(X), mean, rtol=2e-5, atol=1e-6)


def test_expected_gradients_do_less_work_hoisted():
    w1, w2 = arr(64, 128, scale=0.1), arr(128, 1, scale=0.1)
    f = lambda x, w1, w2: jnp.sum(jnp.tanh(x @ w1) @ w2)  # noqa: E731
    path = jig.paths.expected(arr(4, 64))
    on = flops(jig.ig(f, None, 64, path=path), arr(64), w1, w2)
    off = flops(jig.ig(f, None, 64, path=path, hoist=False), arr(64), w1, w2)
    assert off - on >= 0.9 * 4 * 64 * 2 * (2 * 64 * 128) - 4 * 2 * (2 * 64 * 128)


def test_forward_mode_through_the_hoisted_explainer():
    jf = jax.jacfwd(jig.ig(tanh_net, 0.0, 8))(X)
    np.testing.assert_allclose(jf, jax.jacfwd(jig.ig(tanh_net, 0.0, 8, hoist=False))(X), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jf, jax.jacrev(jig.ig(tanh_net, 0.0, 8))(X), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rule", ["romberg", "riemann_trapezoid"])
def test_adaptive_steps_hoisted_equal_plain(rule):
    xs = arr(5, 6)
    run = lambda hoist: jax.vmap(jig.ig(tanh_net, 0.0, 4, rule=rule, tol=1e-4, return_info=True, hoist=hoist))(xs)  # noqa: E731
    (A, info), (B, info0) = run(True), run(False)
    np.testing.assert_allclose(A, B, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(info.points, info0.points)
    np.testing.assert_allclose(info.delta, info0.delta, atol=1e-5)
    assert bool(jnp.all(info.converged))
