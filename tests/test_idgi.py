"""jig.idgi: completeness to float rounding on every path and with targets; equality with
the authors' algorithm (written plainly in NumPy with a hand-written MLP gradient); the
closed form on linear models; vanishing gradients; the guided walk re-run equals
jig.guided's; jit/vmap/grad/chunk_size/mesh; every bad input's error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig
from jig import guided
from jig.idgi import guided_idgi, sequence

W1 = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32) * 0.6
B1 = np.random.default_rng(1).normal(size=8).astype(np.float32) * 0.2
W2 = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32) * 0.8
X = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
STACK = np.random.default_rng(4).normal(size=(2, 3, 4)).astype(np.float32) * 0.3


def logits(x, w1, b1, w2):
    return jnp.tanh(x.reshape(-1) @ w1 + b1) @ w2


def score(x, w1, b1, w2):
    return logits(x, w1, b1, w2)[1]


PATHS = {  # name: (path, baseline, rule, steps)
    "straight": (None, 0.0, "riemann_trapezoid", 7),
    "blur": (jig.paths.blur(1.0), None, "gauss_legendre", 3),
    "expected": (jig.paths.expected(STACK), None, "riemann_middle", 3),
    "custom": (jig.paths.custom(lambda a, x, b: b + jnp.sin(a * jnp.pi / 2) * (x - b)), 0.0, "gauss_legendre", 3),
    "guided": (jig.paths.guided(), 0.0, "riemann_right", 6),
}


@pytest.mark.parametrize("name", list(PATHS))
def test_completeness_to_float_rounding_on_every_path(name):
    path, b, rule, steps = PATHS[name]
    args = (X, W1, B1, W2)
    gap_scale = float(jnp.abs(logits(*args)).max()) + 1.0
    A, delta = jig.idgi(score, b, steps, path=path, rule=rule, return_delta=True)(*args)
    assert A.shape == X.shape and abs(float(delta)) < 4e-6 * gap_scale, (rule, delta)
    # targets: every output in one pass, each complete, each equal to its single-output run
    At, dt = jig.idgi(logits, b, steps, path=path, rule=rule, targets="all", return_delta=True)(*args)
    assert At.shape == (3,) + X.shape and np.all(np.abs(np.asarray(dt)) < 4e-6 * gap_scale)
    np.testing.assert_allclose(At[1], A, rtol=2e-5, atol=2e-6)
    if name == "expected":  # pairs per baseline, chunked across baselines
        Ac = jig.idgi(score, b, steps, path=path, rule=rule, chunk_size=4)(*args)
        np.testing.assert_allclose(Ac, A, rtol=2e-5, atol=2e-6)
    # IG with so few steps is visibly incomplete on the same paths (the test can tell)
    if name in ("straight", "custom"):
        _, d_ig = jig.ig(score, b, 3, path=path, rule="gauss_legendre", return_delta=True)(*args)
        assert abs(float(d_ig)) > 100 * 4e-6 * gap_scale


def authors_idgi(x, b, steps, w1, b1, w2, k):
    """The authors' algorithm, plainly: points b + α (x - b) at α = linspace(0, 1, steps); at
    each but the last, the gradient g and the change d of the output to the next point;
    A += g * g / Σ g² * d. The MLP's value and gradient by hand, in float64."""
    w1, b1, w2 = (np.asarray(a, np.float64) for a in (w1, b1, w2))
    x, b = np.asarray(x, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)

    def value_and_grad(z):
        h = np.tanh(z @ w1 + b1)
        return h @ w2[:, k], w1 @ ((1.0 - h**2) * w2[:, k])

    preds, grads = [], []
    for alpha in np.linspace(0.0, 1.0, steps):
        v, g = value_and_grad(b + alpha * (x - b))
        preds.append(v)
        grads.append(g)
    out = np.zeros_like(x)
    for i in range(len(grads) - 1):
        d = preds[i + 1] - preds[i]
        out += grads[i] * grads[i] / np.sum(grads[i] * grads[i]) * d
    return out


@pytest.mark.parametrize("steps", [5, 20])
def test_equals_the_authors_algorithm(steps):
    b = np.random.default_rng(7).normal(size=X.shape).astype(np.float32) * 0.2
    A = jig.idgi(score, jnp.asarray(b), steps, rule="riemann_trapezoid")(X, W1, B1, W2)
    ref = authors_idgi(X, b, steps, W1, B1, W2, k=1)
    np.testing.assert_allclose(np.asarray(A).reshape(-1), ref, rtol=2e-4, atol=2e-6)
    # and differs from IG on the same points (not a relabelled IG)
    ig = jig.ig(score, jnp.asarray(b), steps, rule="riemann_trapezoid")(X, W1, B1, W2)
    assert np.abs(np.asarray(ig).reshape(-1) - ref).max() > 1e-3


def test_linear_model_closed_form():
    w = jnp.array([1.0, -2.0, 3.0, 0.0])
    x, b = jnp.array([0.5, 1.0, -1.0, 2.0]), jnp.array([0.1, 0.0, 0.5, 0.0])
    A = jig.idgi(lambda x: jnp.dot(w, x), b, 6)(x)
    want = w**2 / jnp.sum(w**2) * jnp.dot(w, x - b)  # g constant: every step shares by w²
    np.testing.assert_allclose(A, want, rtol=1e-5, atol=1e-7)


def test_vanishing_gradients_keep_completeness():
    # relu(x - 1) has zero gradient from 0 up to 1: the authors' code divides by zero there
    f = lambda x: jnp.sum(jax.nn.relu(x - 1.0) ** 2) + 0.0 * x[0]  # noqa: E731
    x = jnp.array([2.0, 0.5, 3.0])
    A, delta = jig.idgi(f, 0.0, 5, rule="riemann_trapezoid", return_delta=True)(x)
    assert np.all(np.isfinite(A)) and abs(float(delta)) < 1e-5
    assert float(A[1]) == 0.0 or abs(float(A[1])) < abs(float(A[2]))
    np.testing.assert_allclose(A.sum(), f(x), rtol=1e-6)


def test_guided_rerun_follows_jig_guided_walk():
    w1, b1, w2 = (jnp.asarray(a) for a in (W1, B1, W2))
    xv, bv = jnp.asarray(X).reshape(-1), jnp.zeros(12)
    F = lambda v: score(v.reshape(3, 4), w1, b1, w2)  # noqa: E731
    weights = jnp.full((16,), 1.0 / 16)
    idgi_a, ig_a = guided_idgi(jax.value_and_grad(F), xv, bv, weights, fraction=0.25, max_dist=0.02)
    ref = guided.walk(jax.grad(F), xv, bv, weights, fraction=0.25, max_dist=0.02)
    np.testing.assert_allclose(ig_a, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(idgi_a.sum(), F(xv) - F(bv), atol=2e-6)


def test_jit_vmap_grad_chunk_size_and_mesh():
    xs = jnp.stack([jnp.asarray(X), jnp.asarray(X) * -0.7])
    mesh = jax.make_mesh((8,), ("d",))
    C = jnp.asarray(np.random.default_rng(8).normal(size=X.shape), jnp.float32)
    for name in ("straight", "guided"):
        path, b, _, _ = PATHS[name]
        explain = jig.idgi(score, b, 5, path=path)
        A = explain(xs[0], W1, B1, W2)
        batch = jax.jit(jax.vmap(explain, in_axes=(0, None, None, None)))(xs, W1, B1, W2)
        np.testing.assert_allclose(batch[0], A, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(batch[1], explain(xs[1], W1, B1, W2), rtol=2e-5, atol=2e-6)
        for kw in ({"mesh": mesh, "chunk_size": 3}, {"chunk_size": None}):
            np.testing.assert_allclose(jig.idgi(score, b, 5, path=path, **kw)(xs[0], W1, B1, W2), A,
                                       rtol=2e-5, atol=2e-6, err_msg=f"{name} {kw}")
        if name == "guided":
            continue  # the walk's selection is piecewise constant: its derivative is IG's concern
        s = lambda x: jnp.vdot(C, explain(x, W1, B1, W2))  # noqa: E731
        g = jax.grad(s)(xs[0])
        v = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
        _, dv = jax.jvp(s, (xs[0],), (v,))
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(jnp.vdot(g, v), dv, rtol=1e-3, atol=1e-5)


def test_sequence_and_points():
    assert sequence("riemann_left", 4).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert sequence("gauss_legendre", 3).shape == (5,)
    _, info = jig.idgi(score, 0.0, 3, return_info=True)(X, W1, B1, W2)
    assert int(info.points) == 4 and bool(info.converged)


def test_bad_inputs_raise_clear_errors():
    f = lambda x: jnp.sum(x**3)  # noqa: E731
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="jig.idgi: tol must be None .adaptive steps do not apply.*telescopes"):
        jig.idgi(f, 0.0, 4, tol=1e-3)
    with pytest.raises(ValueError, match="jig.idgi: max_steps must be None"):
        jig.idgi(f, 0.0, 4, max_steps=64)
    with pytest.raises(ValueError, match="jig.idgi: path must be a path with ordered positions"):
        jig.idgi(f, None, 4, path=jig.paths.expected(jnp.ones((2, 3)), key=jax.random.key(0), samples=4))
    with pytest.raises(TypeError, match="jig.idgi: path must be None"):
        jig.idgi(f, 0.0, 4, path="blur")
    with pytest.raises(ValueError, match="rule must be one of"):
        jig.idgi(f, 0.0, 4, rule="simpson")
    with pytest.raises(ValueError, match="steps must be >= 2 for rule 'riemann_trapezoid'"):
        jig.idgi(f, 0.0, 1, rule="riemann_trapezoid")
    with pytest.raises(ValueError, match="chunk_size must be None or >= 1"):
        jig.idgi(f, 0.0, 4, chunk_size=0)
    with pytest.raises(ValueError, match="jig.idgi: targets must be None, 'all'"):
        jig.idgi(f, 0.0, 4, targets="some")
    with pytest.raises(ValueError, match="pass return_delta=True or return_info=True, not both"):
        jig.idgi(f, 0.0, 4, return_delta=True, return_info=True)
    with pytest.raises(TypeError, match="jig.idgi: argument 0 has dtype int32"):
        jig.idgi(f, 0.0, 4)(jnp.array([1, 2]))
    with pytest.raises(ValueError, match="jig.idgi: f must return a scalar"):
        jig.idgi(lambda x: x**2, 0.0, 4)(x)
    with pytest.raises(ValueError, match="the 'blur' path defines its own start"):
        jig.idgi(f, 0.0, 4, path=jig.paths.blur(1.0))(jnp.ones((4, 4)))
    with pytest.raises(FloatingPointError, match="jig.idgi: the attributions are not finite"):
        jig.idgi(lambda x: jnp.sum(jnp.log(x)), 0.0, 4)(x)
