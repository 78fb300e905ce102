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
    # name: (transform, f, options, reduce the attributions to one number per feature)
    "ig": (jig.ig, lambda x, w: model(x, w)[1], {}, lambda a: a),
    "ig_targets": (jig.ig, model, {"targets": "all"}, lambda a: a.sum(0)),
    "idgi": (jig.idgi, lambda x, w: model(x, w)[1], {}, lambda a: a),
}
# What a method refuses, and the message that says so (checked for every such case).
REFUSES = {
    "idgi": {"paths": {"expected_mc": "random positions are not steps"}, "tol": "tol must be None"},
}
MESH = jax.make_mesh((8,), ("d",))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("path_name", list(PATHS))
@pytest.mark.parametrize("method", list(METHODS))
def test_contract(method, path_name, rule):
    transform, f, opts, reduce = METHODS[method]
    path, b = PATHS[path_name]()
    refuses = REFUSES.get(method, {})
    if path_name in refuses.get("paths", {}):
        with pytest.raises(ValueError, match=refuses["paths"][path_name]):
            transform(f, b, 4, path=path, rule=rule, **opts)(XS[0], W)
        return
    nested = rule in ("gauss_legendre", "riemann_trapezoid")
    per_alpha = path_name in ("straight", "blur", "custom")
    # tol: nested rules on one-point-per-alpha paths refine to the tolerance; the rest refuse
    if "tol" in refuses:
        with pytest.raises(ValueError, match=refuses["tol"]):
            transform(f, b, 4, path=path, rule=rule, tol=1e-3, **opts)
        nested = False
    elif not nested:
        with pytest.raises(ValueError, match="with tol= the rule must be nested"):
            jig.ig(f, b, 4, path=path, rule=rule, tol=1e-3, **opts)
    elif not per_alpha:
        with pytest.raises(ValueError, match="tol= .adaptive steps. needs a path with one point per alpha"):
            jig.ig(f, b, 4, path=path, rule=rule, tol=1e-3, **opts)
    explain = transform(f, b, 4, path=path, rule=rule, **opts)
    chunked = transform(f, b, 4, path=path, rule=rule, chunk_size=3, **opts)
    meshed = transform(f, b, 4, path=path, rule=rule, mesh=MESH, chunk_size=3, **opts)
    adaptive = (transform(f, b, 4, path=path, rule=rule, tol=1e-3, max_steps=4097, return_info=True, **opts)
                if nested and per_alpha else None)
    v = jnp.linspace(-1.0, 1.0, 9).reshape(3, 3)

    @jax.jit
    def composed(xs):  # every transformation in one compiled program (one compilation per case)
        score = lambda x: jnp.vdot(C, reduce(explain(x, W)))  # noqa: E731
        out = {
            "batch": jax.vmap(explain, in_axes=(0, None))(xs, W),
            "grad": jax.grad(score)(xs[0]),
            "jvp": jax.jvp(score, (xs[0],), (v,))[1],
            "chunked": chunked(xs[0], W),
            "meshed": meshed(xs[0], W),
        }
        if adaptive is not None:
            out["adaptive"] = adaptive(xs[0], W)
        return out

    out = composed(XS)
    tol = dict(rtol=2e-5, atol=2e-6)
    A = explain(XS[0], W)  # uncomposed
    # jit and vmap give the uncomposed values; chunk_size and mesh change nothing
    # (guided walks one point at a time: chunk_size and mesh are accepted and have no effect)
    np.testing.assert_allclose(out["batch"][0], A, **tol)
    np.testing.assert_allclose(out["chunked"], A, **tol)
    np.testing.assert_allclose(out["meshed"], A, **tol)
    # grad: reverse and forward derivatives of the explainer agree (and are finite)
    assert np.all(np.isfinite(out["grad"]))
    np.testing.assert_allclose(jnp.vdot(out["grad"], v), out["jvp"], rtol=1e-4, atol=1e-5)
    if adaptive is not None:
        Aa, info = out["adaptive"]
        assert bool(info.converged) and Aa.shape == A.shape
        gap = np.asarray(Aa).reshape(np.shape(info.delta) + (-1,)).sum(-1) - np.asarray(info.delta)
        assert np.all(np.abs(np.asarray(info.delta)) <= 1e-3 * np.abs(gap) + 2e-5)  # F(x) - F(start) = ΣA - δ
