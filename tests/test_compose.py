"""Composed == uncomposed: jit, vmap, grad (against finite differences), chunking,
pytrees, pmap over 8 CPU devices, and no recompilation for new values."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig
from _nets import init_mlp, mlp, mlp_logits

PARAMS = init_mlp(0, sizes=(5, 12, 12, 1))
LOGIT_PARAMS = init_mlp(1, sizes=(5, 12, 12, 4))
XS = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5)), jnp.float32)


def tanh_mlp(x, params):
    return mlp(x, params, "tanh")


def test_jit_of_the_explainer_equals_the_explainer():
    explain = jig.ig(tanh_mlp, 0.0, 16, return_delta=True)
    A, d = explain(XS[0], PARAMS)
    Aj, dj = jax.jit(explain)(XS[0], PARAMS)
    np.testing.assert_allclose(A, Aj, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d, dj, atol=1e-7)


def test_vmap_over_a_batch_equals_a_loop():
    explain = jig.ig(tanh_mlp, 0.0, 16, return_delta=True)
    A, d = jax.vmap(explain, in_axes=(0, None))(XS, PARAMS)
    chex.assert_shape(A, XS.shape)
    chex.assert_shape(d, (XS.shape[0],))
    for i in range(XS.shape[0]):
        Ai, di = explain(XS[i], PARAMS)
        np.testing.assert_allclose(A[i], Ai, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d[i], di, atol=1e-6)


def test_vmap_with_a_class_per_example_through_a_closure():
    classes = jnp.array([0, 3, 1, 2, 3, 0])

    def one(x, c):
        return jig.ig(lambda x, p: mlp_logits(x, p, "tanh")[c], 0.0, 16)(x, LOGIT_PARAMS)

    A = jax.vmap(one)(XS, classes)
    for i, c in enumerate(classes.tolist()):
        ref = jig.ig(lambda x, p: mlp_logits(x, p, "tanh")[c], 0.0, 16)(XS[i], LOGIT_PARAMS)
        np.testing.assert_allclose(A[i], ref, rtol=1e-5, atol=1e-6)


def test_vmap_with_a_baseline_per_example():
    baselines = XS[::-1] * 0.5

    def one(x, b):
        return jig.ig(tanh_mlp, b, 16, return_delta=True)(x, PARAMS)

    A, d = jax.vmap(one)(XS, baselines)
    for i in range(XS.shape[0]):
        Ai, di = jig.ig(tanh_mlp, baselines[i], 16, return_delta=True)(XS[i], PARAMS)
        np.testing.assert_allclose(A[i], Ai, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(d) < 1e-4)


def _central_difference(fn, x, eps):
    x = np.asarray(x, np.float64)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        out[i] = (fn(x + e) - fn(x - e)) / (2 * eps)
    return out


def test_grad_of_attributions_wrt_the_input_matches_finite_differences():
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), PARAMS)
        x = jnp.asarray(XS[0], jnp.float64)
        v = jnp.linspace(-1.0, 1.0, 5)  # an attribution prior: <v, A(x)>
        explain = jig.ig(tanh_mlp, 0.0, 12)
        objective = lambda x: jnp.dot(v, explain(x, params))  # noqa: E731
        g = jax.grad(objective)(x)
        fd = _central_difference(lambda z: float(objective(jnp.asarray(z))), x, 1e-5)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_grad_of_attributions_wrt_model_parameters_matches_finite_differences():
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), PARAMS)
        x = jnp.asarray(XS[1], jnp.float64)
        explain = jig.ig(tanh_mlp, 0.0, 12)

        def objective(w1):  # e.g. an attribution prior penalising feature 0's credit
            p = [(w1, params[0][1]), *params[1:]]
            return explain(x, p)[0] ** 2

        w1 = params[0][0]
        g = jax.grad(objective)(w1)
        fd = _central_difference(lambda w: float(objective(jnp.asarray(w))), w1, 1e-5)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("steps,chunk", [(1, 1), (7, 3), (12, 5), (16, 16), (17, 4), (20, 64), (33, 32)])
def test_chunked_equals_unchunked_for_any_chunk_size(steps, chunk):
    x = XS[2]
    A, d = jig.ig(tanh_mlp, 0.0, steps, rule="riemann_middle", return_delta=True)(x, PARAMS)
    Ac, dc = jig.ig(tanh_mlp, 0.0, steps, rule="riemann_middle", return_delta=True, chunk_size=chunk)(x, PARAMS)
    np.testing.assert_allclose(A, Ac, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d, dc, atol=1e-5)


@pytest.mark.parametrize("rule", sorted(jig.rules.RULES))
def test_chunked_equals_unchunked_for_every_rule_under_vmap_and_grad(rule):
    kw = dict(rule=rule)
    plain = jig.ig(tanh_mlp, 0.0, 12, **kw)
    chunked = jig.ig(tanh_mlp, 0.0, 12, chunk_size=5, **kw)
    np.testing.assert_allclose(
        jax.vmap(plain, (0, None))(XS, PARAMS), jax.vmap(chunked, (0, None))(XS, PARAMS), rtol=1e-5, atol=1e-6
    )
    gp = jax.grad(lambda x: jnp.sum(plain(x, PARAMS) ** 2))(XS[0])
    gc = jax.grad(lambda x: jnp.sum(chunked(x, PARAMS) ** 2))(XS[0])
    np.testing.assert_allclose(gp, gc, rtol=1e-4, atol=1e-6)


def test_pytree_input_equals_flat_input():
    def split_model(parts, params):
        return tanh_mlp(jnp.concatenate([parts["left"], parts["right"]]), params)

    x = XS[3]
    parts = {"left": x[:2], "right": x[2:]}
    baseline = {"left": jnp.full(2, 0.3), "right": jnp.full(3, -0.2)}
    A = jig.ig(split_model, baseline, 16, chunk_size=5)(parts, PARAMS)
    flat = jig.ig(tanh_mlp, jnp.array([0.3, 0.3, -0.2, -0.2, -0.2]), 16)(x, PARAMS)
    np.testing.assert_allclose(jnp.concatenate([A["left"], A["right"]]), flat, rtol=1e-5, atol=1e-6)


def test_pmap_over_eight_devices_equals_vmap():
    assert jax.device_count() == 8, "conftest sets 8 CPU devices"
    xs = jnp.asarray(np.random.default_rng(1).normal(size=(8, 2, 5)), jnp.float32)
    explain = jig.ig(tanh_mlp, 0.0, 16)
    pm = jax.pmap(jax.vmap(explain, in_axes=(0, None)), in_axes=(0, None))(xs, PARAMS)
    vm = jax.vmap(explain, in_axes=(0, None))(xs.reshape(16, 5), PARAMS)
    np.testing.assert_allclose(np.asarray(pm).reshape(16, 5), vm, rtol=1e-5, atol=1e-6)


def test_mesh_spreads_path_points_and_equals_one_device():
    mesh = jax.make_mesh((8,), ("points",))
    for steps, chunk in ((50, None), (50, 16), (13, None)):
        ref = jig.ig(tanh_mlp, 0.0, steps, chunk_size=chunk)(XS[0], PARAMS)
        spread = jig.ig(tanh_mlp, 0.0, steps, chunk_size=chunk, mesh=mesh)(XS[0], PARAMS)
        np.testing.assert_allclose(ref, spread, rtol=1e-5, atol=1e-6)


def test_new_values_of_the_same_shape_do_not_retrace():
    traces = []

    def counted(x, params):
        traces.append(1)
        return tanh_mlp(x, params)

    explain = jig.ig(counted, 0.0, 8)
    explain(XS[0], PARAMS)
    n = len(traces)
    for i in range(1, 4):
        explain(XS[i], jax.tree.map(lambda a: a * (1 + i), PARAMS))
    assert len(traces) == n
    # a second explainer with the same function and settings shares the compilation
    jig.ig(counted, 0.0, 8)(XS[4], PARAMS)
    assert len(traces) == n
    # another number of steps is another program
    jig.ig(counted, 0.0, 9)(XS[4], PARAMS)
    assert len(traces) > n
