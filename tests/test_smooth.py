"""jig.smooth: SmoothGrad / SmoothGrad² / VarGrad over jig explainers.

Closed forms on linear models (antithetic noise makes the sample mean of the noise
exactly zero), the statistics against NumPy on the same draws, Captum's NoiseTunnel
(golden file and live), chunking, keys, composition, and every bad input's error.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig
from jig.smooth import gaussian

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import smooth as bench_smooth  # noqa: E402  (benchmarks/smooth.py: the golden file's model)

GOLDEN = os.path.join(HERE, "data", "smooth_reference.npz")
W = jnp.array([1.0, -2.0, 0.5, 3.0])
X = jnp.array([0.3, -1.0, 2.0, 0.7])


def mlp(x, p):
    (w1, b1), (w2, b2) = p
    return jnp.dot(jnp.tanh(x @ w1 + b1), w2) + b2


def mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    return ((jnp.asarray(rng.normal(size=(4, 8)), jnp.float32), jnp.asarray(rng.normal(size=8) * 0.1, jnp.float32)),
            (jnp.asarray(rng.normal(size=8), jnp.float32), jnp.float32(0.2)))


P = mlp_params()
EXPLAIN = jig.ig(mlp, 0.0, 8)  # one explainer: its compilations are shared by the tests


def antithetic(key, i, x):
    """Pairs (ε, -ε): the mean of an even number of samples is exactly zero (fixed draws:
    the sampler sees each sample's own key, so a pair's shared draw comes from its index)."""
    del key
    e = jax.random.normal(jax.random.fold_in(jax.random.key(42), i // 2), jnp.shape(x), jnp.result_type(x))
    return jnp.where(i % 2 == 0, e, -e)


def draws(key, samples, x):
    """The Gaussian draws jig.smooth uses for ``key`` (its documented scheme)."""
    return np.stack([np.asarray(gaussian(jax.random.fold_in(key, i), i, x)) for i in range(samples)])


# --------------------------------------------------------------------------- closed forms


def test_zero_stddev_gives_the_explainer_its_square_and_zero_variance():
    key = jax.random.key(3)
    a = EXPLAIN(X, P)
    for kind, want in (("smoothgrad", a), ("smoothgrad_sq", a ** 2), ("vargrad", jnp.zeros_like(a))):
        got = jig.smooth(EXPLAIN, stddev=0.0, samples=3, kind=kind)(key, X, P)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_smoothgrad_of_a_linear_gradient_is_the_gradient():
    grad = jax.grad(lambda x: jnp.dot(W, x))
    got = jig.smooth(grad, stddev=0.5, samples=7)(jax.random.key(0), X)
    np.testing.assert_allclose(got, W, rtol=1e-6)
    var = jig.smooth(grad, stddev=0.5, samples=7, kind="vargrad")(jax.random.key(0), X)
    np.testing.assert_allclose(var, 0.0, atol=1e-6)


def test_ig_of_a_linear_model_closed_forms():
    """IG of w·x from 0 is w ⊙ x: its SmoothGrad is w ⊙ (x + σ mean ε), its VarGrad
    w² σ² var(ε) and its SmoothGrad² w² E[(x + σε)²], on the very draws used."""
    explain = jig.ig(lambda x: jnp.dot(W, x), 0.0, 4)
    key, n, s, w = jax.random.key(7), 6, 0.2, np.asarray(W)
    eps = draws(key, n, X)
    for relative, kinds in ((False, ("smoothgrad", "smoothgrad_sq", "vargrad")), (True, ("vargrad",))):
        sigma = s * (float(X.max()) - float(X.min())) if relative else s
        noisy = np.asarray(X) + sigma * eps
        want = {"smoothgrad": w * noisy.mean(0), "smoothgrad_sq": ((w * noisy) ** 2).mean(0),
                "vargrad": w ** 2 * noisy.var(0)}
        for kind in kinds:
            got = jig.smooth(explain, stddev=s, samples=n, kind=kind, relative=relative)(key, X)
            np.testing.assert_allclose(got, want[kind], rtol=1e-5, atol=1e-6, err_msg=f"{kind}, {relative}")
    exact = jig.smooth(explain, stddev=s, samples=8, noise=antithetic)(key, X)
    np.testing.assert_allclose(exact, W * X, rtol=1e-6, atol=1e-7)


def test_over_idgi_and_targets_closed_forms():
    """IDGI of w·x splits F(x) - F(0) by w²/‖w‖², linear in the noise: the antithetic mean
    is exact. targets='all' smooths every output's attributions."""
    both = lambda x: jnp.stack([jnp.dot(W, x), jnp.sum(x)])  # noqa: E731
    key = jax.random.key(0)
    a = jig.smooth(jig.idgi(lambda x: jnp.dot(W, x), 0.0, 8), samples=4, noise=antithetic)(key, X)
    np.testing.assert_allclose(a, jnp.dot(W, X) * W ** 2 / jnp.sum(W ** 2), rtol=1e-5, atol=1e-6)
    t = jig.smooth(jig.ig(both, 0.0, 4, targets="all"), samples=4, noise=antithetic)(key, X)
    np.testing.assert_allclose(t, jnp.stack([W * X, X]), rtol=1e-5, atol=1e-6)


def test_relative_stddev_per_leaf_of_a_pytree_input():
    """relative=True scales each leaf by its own range."""
    f = lambda xs: jnp.dot(W, xs["a"]) + jnp.sum(xs["b"])  # noqa: E731
    xs = {"a": X, "b": jnp.array([0.0, 10.0])}
    key, n = jax.random.key(1), 4
    got = jig.smooth(jig.ig(f, 0.0, 2), stddev=0.1, samples=n, kind="vargrad")(key, xs)
    ranges = {"a": float(X.max() - X.min()), "b": 10.0}
    eps = [gaussian(jax.random.fold_in(key, i), i, xs) for i in range(n)]
    for name, scale in (("a", np.asarray(W)), ("b", np.ones(2))):
        e = np.stack([np.asarray(d[name]) for d in eps])
        np.testing.assert_allclose(got[name], scale ** 2 * (0.1 * ranges[name]) ** 2 * e.var(0), rtol=1e-4, atol=1e-7)


def test_argnums_puts_the_noise_on_another_argument():
    f = lambda p, x: jnp.dot(p, x)  # noqa: E731
    explain = jig.ig(f, 0.0, 4, argnums=1)
    got = jig.smooth(explain, stddev=0.3, samples=8, argnums=1, noise=antithetic)(jax.random.key(0), W, X)
    np.testing.assert_allclose(got, W * X, rtol=1e-6)


# --------------------------------------------------------------------------- keys and chunks


GRAD = jax.grad(mlp)  # a cheap explainer for the mechanics (chunks, keys): few compilations


def test_chunked_equals_unchunked():
    key = jax.random.key(5)
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        full = jig.smooth(GRAD, stddev=0.2, samples=7, kind=kind)(key, X, P)
        # 2 chunks of 3 and a rest of 1; for vargrad also 7 chunks of 1 (a rolled scan)
        for chunk in (3, 1) if kind == "vargrad" else (3,):
            got = jig.smooth(GRAD, stddev=0.2, samples=7, kind=kind, chunk_size=chunk)(key, X, P)
            np.testing.assert_allclose(got, full, rtol=2e-5, atol=1e-6, err_msg=f"{kind}, chunk_size={chunk}")


def test_vargrad_does_not_cancel():
    """A large mean and a small spread: E[a²] - E[a]² in float32 loses every digit here;
    jig's centred running sums keep the variance."""
    g = lambda x: 10.0 + 1e-3 * x  # noqa: E731 - attributions near 10, spread 1e-3
    key, n = jax.random.key(0), 16
    got = jig.smooth(g, stddev=1.0, samples=n, kind="vargrad", relative=False, chunk_size=5)(key, X)
    a = np.asarray(X, np.float32) * 1e-3 + 10.0 + np.float32(1e-3) * draws(key, n, X)
    a = a.astype(np.float32)
    want = a.astype(np.float64).var(0)
    naive = (a ** 2).mean(0, dtype=np.float32) - a.mean(0, dtype=np.float32) ** 2
    assert np.max(np.abs(naive - want) / want) > 0.3  # the formula that cancels
    np.testing.assert_allclose(got, want, rtol=2e-2)


def test_same_key_same_result_other_key_other_result():
    sm = jig.smooth(GRAD, stddev=0.2, samples=4)
    a, b = sm(jax.random.key(0), X, P), sm(jax.random.key(0), X, P)
    c = sm(jax.random.key(1), X, P)
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(np.asarray(a) - np.asarray(c))) > 1e-3
    legacy = sm(jax.random.PRNGKey(0), X, P)  # raw uint32 keys work too
    assert legacy.shape == a.shape


# --------------------------------------------------------------------------- outputs


def test_tuple_outputs_and_layer_attributions_are_smoothed_per_leaf():
    key = jax.random.key(2)
    with_delta = jig.ig(mlp, 0.0, 8, return_delta=True)
    A, delta = jig.smooth(with_delta, stddev=0.2, samples=4)(key, X, P)
    np.testing.assert_allclose(A, jig.smooth(EXPLAIN, stddev=0.2, samples=4)(key, X, P), rtol=1e-5, atol=1e-6)
    assert delta.shape == () and abs(float(delta)) < 1e-3

    bottom = lambda p, x: jnp.tanh(x @ p[0][0] + p[0][1])  # noqa: E731
    top = lambda p, x, h: jnp.dot(h, p[1][0]) + p[1][1]  # noqa: E731
    layer = jig.layers.layer_ig(bottom, top, steps=8, return_delta=True)
    res = jig.smooth(layer, stddev=0.2, samples=4, argnums=1)(key, P, X)
    assert isinstance(res, jig.layers.LayerAttribution)
    np.testing.assert_allclose(res.token_scores, jnp.sum(res.attributions), rtol=1e-5)


def test_integer_outputs_are_refused():
    with pytest.raises(TypeError, match=r"jig.smooth: explain must return floating arrays.*int32.*return_delta"):
        jig.smooth(lambda x: (x, jnp.int32(3)), samples=2)(jax.random.key(0), X)


# --------------------------------------------------------------------------- Captum


def _check_golden(ref):
    for kind in bench_smooth.KINDS:
        ours = bench_smooth.jig_smooth_golden(ref, kind)
        scale = np.max(np.abs(ref[kind]))
        np.testing.assert_allclose(ours, ref[kind], rtol=0, atol=1e-5 * scale, err_msg=kind)


def test_noise_tunnel_golden_file():
    """Captum's NoiseTunnel(IntegratedGradients) with the same noise (benchmarks/smooth.py --golden)."""
    with np.load(GOLDEN) as f:
        ref = dict(f)
    assert ref["eps"].shape == (6, 3, 1, 8, 8)
    assert np.max(ref["vargrad"]) > 1e-4 and np.max(np.abs(ref["smoothgrad"])) > 1e-2  # not trivial
    _check_golden(ref)


@pytest.mark.skipif(importlib.util.find_spec("captum") is None or importlib.util.find_spec("torch") is None,
                    reason="captum/torch are not installed in this venv (they live in ~/peers-venv); "
                           "tests/data/smooth_reference.npz carries their values (test_noise_tunnel_golden_file)")
def test_live_captum_noise_tunnel():
    ref = bench_smooth.golden()
    with np.load(GOLDEN) as f:
        for kind in bench_smooth.KINDS:
            np.testing.assert_allclose(ref[kind], f[kind], rtol=1e-5, atol=1e-7)
    _check_golden(ref)


# --------------------------------------------------------------------------- composition


def test_jit_vmap_grad_and_sharded():
    sm = jig.smooth(EXPLAIN, stddev=0.2, samples=3)
    xs = jnp.stack([X, -X, 2 * X])
    keys = jax.random.split(jax.random.key(0), 3)
    one_by_one = np.stack([sm(k, x, P) for k, x in zip(keys, xs)])
    batched = jax.jit(jax.vmap(sm, in_axes=(0, 0, None)))(keys, xs, P)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    sharded = jig.sharded(sm, in_axes=(0, 0, None))(keys, xs, P)
    np.testing.assert_allclose(sharded, one_by_one, rtol=1e-5, atol=1e-6)

    # grad through the smoothing (an attribution prior): closed form on IG of a linear model
    lin = jig.smooth(jig.ig(lambda x, w: jnp.dot(w, x), 0.0, 4), stddev=0.3, samples=8,
                     noise=antithetic, relative=False)
    g = jax.grad(lambda w: jnp.sum(lin(jax.random.key(0), X, w) ** 2), argnums=0)(W)
    np.testing.assert_allclose(g, 2 * W * X ** 2, rtol=1e-5)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"samples": 0}, ValueError, r"jig.smooth: samples must be an int >= 1, got 0"),
    ({"samples": 2.5}, TypeError, r"jig.smooth: samples must be an int >= 1, got 2.5"),
    ({"kind": "smoothgrad2"}, ValueError, r"jig.smooth: kind must be one of \['smoothgrad', 'smoothgrad_sq', 'vargrad'\]"),
    ({"stddev": -0.1}, ValueError, r"jig.smooth: stddev must be a finite number in \[0, inf\), got -0.1"),
    ({"stddev": float("nan")}, ValueError, r"jig.smooth: stddev must be a finite number"),
    ({"stddev": "0.1"}, TypeError, r"jig.smooth: stddev must be a real number"),
    ({"chunk_size": 0}, ValueError, r"jig.smooth: chunk_size must be an int >= 1, got 0"),
    ({"relative": 1}, TypeError, r"jig.smooth: relative must be True or False"),
    ({"argnums": -1}, ValueError, r"jig.smooth: argnums must be an int >= 0"),
    ({"noise": 3}, TypeError, r"jig.smooth: noise must be a callable \(key, index, x\)"),
])
def test_bad_options(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        jig.smooth(EXPLAIN, **kwargs)


def test_bad_calls():
    sm = jig.smooth(EXPLAIN, samples=2)
    with pytest.raises(TypeError, match=r"jig.smooth: key must be a PRNG key .*smoothed\(key, x, \*args\).*"
                                        r"got an array of shape \(4,\).*jax.random.key\(seed\)"):
        sm(X, P)  # the key forgotten
    with pytest.raises(TypeError, match=r"jig.smooth: key must be a PRNG key.*got 0 of type int"):
        sm(0, X, P)
    with pytest.raises(TypeError, match=r"jig.smooth: explain must be a callable"):
        jig.smooth(EXPLAIN(X, P))
    with pytest.raises(TypeError, match=r"adds noise to argument 1 after the key, but it was called with 1"):
        jig.smooth(EXPLAIN, argnums=1)(jax.random.key(0), X)
    with pytest.raises(TypeError, match=r"jig.smooth: argument 0 \(the noisy input\) must be floating point, got dtype int32"):
        jig.smooth(lambda ids: ids * 1.0)(jax.random.key(0), jnp.arange(3))


# --------------------------------------------------------------------------- the example


def test_smooth_digits_example_quick(tmp_path):
    import smooth_digits

    assert smooth_digits.main(["--quick", "--out", str(tmp_path)]) == 0
    png = tmp_path / "smooth_digits.png"
    assert png.exists() and png.stat().st_size < 200_000
