"""The contract every method keeps on every path and rule: jit and vmap give the
uncomposed values, reverse and forward derivatives of the explainer agree, chunking and a
device mesh change nothing, and tol= either refines to the tolerance or refuses clearly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig

W = jax.random.normal(jax.random.key(0), (9, 3)) * 0.7
XS = jax.random.normal(jax.random.key(1), (2, 3, 3))
STACK = jax.random.normal(jax.random.key(2), (2, 3, 3)) * 0.3
C = jnp.array([0.3, -1.0, 0.5, 2.0, -0.2, 0.1, 0.7, -0.4, 1.1]).reshape(3, 3)


def model(x, w):
    return jnp.tanh(x.reshape(-1) @ w)  # 3 outputs


PATHS = {
    "straight": lambda: (jig.paths.straight(), 0.0),
    "blur": lambda: (jig.paths.blur(1.0), None),
    "expected": lambda: (jig.paths.expected(STACK), None),
    "expected_mc": lambda: (jig.paths.expected(STACK, key=jax.random.key(3), samples=8), None),
    "custom": lambda: (jig.paths.custom(lambda a, x, b: b + jnp.sin(a * jnp.pi / 2) * (x - b)), 0.0),
    "guided": lambda: (jig.paths.guided(), 0.0),
}
RULES = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gauss_legendre"]
METHODS = {
    # name: (f, options, reduce the attributions to one number per feature for the derivative checks)
    "ig": (lambda x, w: model(x, w)[1], {}, lambda a: a),
    "ig_targets": (model, {"targets": "all"}, lambda a: a.sum(0)),
    "ig_target_list": (model, {"targets": jnp.array([2, 0])}, lambda a: a[0] - a[1]),
}
MESH = jax.make_mesh((8,), ("d",))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("path_name", list(PATHS))
@pytest.mark.parametrize("method", list(METHODS))
def test_contract(method, path_name, rule):
    f, opts, reduce = METHODS[method]
    path, b = PATHS[path_name]()
    explain = jig.ig(f, b, 4, path=path, rule=rule, **opts)
    x = XS[0]
    A = explain(x, W)
    tol = dict(rtol=2e-5, atol=2e-6)

    # jit and vmap: the composed form gives the uncomposed values
    batch = jax.jit(jax.vmap(explain, in_axes=(0, None)))(XS, W)
    np.testing.assert_allclose(batch[0], A, **tol)
    np.testing.assert_allclose(batch[1], explain(XS[1], W), **tol)

    # grad: reverse and forward derivatives of the explainer agree (and are finite)
    score = lambda x: jnp.vdot(C, reduce(explain(x, W)))  # noqa: E731
    g = jax.grad(score)(x)
    v = jnp.linspace(-1.0, 1.0, 9).reshape(3, 3)
    _, dv = jax.jvp(score, (x,), (v,))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(jnp.vdot(g, v), dv, rtol=1e-4, atol=1e-5)

    # chunk_size and mesh change nothing (guided walks one point at a time: accepted, no effect)
    chunked = jig.ig(f, b, 4, path=path, rule=rule, chunk_size=3, **opts)(x, W)
    np.testing.assert_allclose(chunked, A, **tol)
    meshed = jig.ig(f, b, 4, path=path, rule=rule, mesh=MESH, chunk_size=3, **opts)(x, W)
    np.testing.assert_allclose(meshed, A, **tol)

    # tol: nested rules on one-point-per-alpha paths refine to the tolerance; the rest refuse
    nested = rule in ("gauss_legendre", "riemann_trapezoid")
    per_alpha = path_name in ("straight", "blur", "custom")
    if not nested:
        with pytest.raises(ValueError, match="with tol= the rule must be nested"):
            jig.ig(f, b, 4, path=path, rule=rule, tol=1e-3, **opts)
    elif not per_alpha:
        with pytest.raises(ValueError, match="tol= .adaptive steps. needs a path with one point per alpha"):
            jig.ig(f, b, 4, path=path, rule=rule, tol=1e-3, **opts)
    else:
        Aa, info = jig.ig(f, b, 4, path=path, rule=rule, tol=1e-3, max_steps=4097, return_info=True, **opts)(x, W)
        _, d = jig.ig(f, b, 4, path=path, rule=rule, tol=1e-3, max_steps=4097, return_delta=True, **opts)(x, W)
        assert bool(info.converged)
        np.testing.assert_allclose(d, info.delta, atol=1e-6)  # the same delta either way
        assert Aa.shape == A.shape
