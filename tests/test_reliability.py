"""No stale results and no silent failures: models passed as arguments are traced (a
mutated model gives new attributions), static_argnums, catchable FloatingPointError
naming what is non-finite, jig.diagnose, and the small bad inputs users tried."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402

import jig  # noqa: E402

X = jnp.array([0.5, -1.0, 2.0, 0.3])


def g(x, m):
    return m(x[None])[0, 1]


def _mutated_gives_new_attributions(model, mutate):
    explain = jig.ig(g, 0.0, 16)
    a1 = np.asarray(explain(X, model))
    mutate(model)
    a2 = np.asarray(jig.ig(g, 0.0, 16)(X, model))  # a new explainer on the same f, as in the report
    a3 = np.asarray(explain(X, model))  # and the old one
    assert not np.allclose(a1, a2)
    np.testing.assert_allclose(a2, a3, rtol=1e-6)
    # and the new value is the true one: completeness against the mutated model
    assert abs(a2.sum() - float(g(X, model) - g(jnp.zeros(4), model))) < 1e-4


def test_a_mutated_plain_object_holding_arrays():
    class Linear:
        def __init__(self):
            self.w = jnp.arange(12.0).reshape(4, 3) / 10
            self.b = jnp.zeros(3)
            self.activation = jnp.tanh  # not an array: static

        def __call__(self, x):
            return self.activation(x @ self.w + self.b)

    def mutate(m):
        m.w = jnp.ones((4, 3))

    _mutated_gives_new_attributions(Linear(), mutate)


def test_a_mutated_nnx_module():
    model = nnx.Linear(4, 3, rngs=nnx.Rngs(0))

    def mutate(m):
        m.kernel.value = jnp.ones((4, 3))

    _mutated_gives_new_attributions(model, mutate)


def test_a_mutated_equinox_module():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.Linear(4, 3, key=jax.random.key(0))
    explain = jig.ig(lambda x, m: m(x)[1], 0.0, 16)
    a1 = explain(X, model)
    model = eqx.tree_at(lambda m: m.weight, model, jnp.ones((3, 4)))  # equinox modules are immutable
    a2 = explain(X, model)
    assert not np.allclose(a1, a2)
    np.testing.assert_allclose(a2, X, rtol=1e-5)  # weight row of ones, no non-linearity: IG = x


def test_equinox_hyperparameters_stay_static():
    eqx = pytest.importorskip("equinox")
    # a dropout rate and attention sizes are Python numbers on the module: configuration, not traced
    m = eqx.nn.Sequential([eqx.nn.Dropout(0.0, inference=True), eqx.nn.Linear(4, 1, key=jax.random.key(0))])
    np.testing.assert_allclose(jig.ig(lambda x, m: m(x)[0], 0.0, 8)(X, m), m.layers[1].weight[0] * X, rtol=1e-5)
    att = eqx.nn.MultiheadAttention(2, 4, key=jax.random.key(1))
    q = jnp.ones((3, 4))
    A, delta = jig.ig(lambda x, m: jnp.sum(m(x, x, x)), 0.0, 16, return_delta=True)(q, att)
    assert A.shape == (3, 4) and abs(float(delta)) < 1e-3
    # a Python number that is the call's own argument is still traced: no recompilation for new values
    scaled = jig.ig(lambda x, s: jnp.sum(s * x**2), 0.0, 8)
    np.testing.assert_allclose(scaled(X, 2.0), 2 * X**2, rtol=1e-5)
    np.testing.assert_allclose(scaled(X, 3.0), 3 * X**2, rtol=1e-5)


def test_a_mutated_keras_model():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is imported with another backend; set KERAS_BACKEND=jax")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh")])

    def mutate(m):
        m.layers[0].kernel.assign(np.ones((4, 3), "float32"))

    _mutated_gives_new_attributions(model, mutate)


def test_static_argnums_and_the_hint_for_python_ints():
    f = lambda x, n: jnp.sum(x[:n] ** 2)  # noqa: E731
    np.testing.assert_allclose(jig.ig(f, 0.0, 8, static_argnums=1)(X, 2), [0.25, 1.0, 0.0, 0.0], rtol=1e-5)
    np.testing.assert_allclose(jig.ig(lambda x, *, n: f(x, n), 0.0, 8, static_argnames="n")(X, n=3)[2], 4.0, rtol=1e-5)
    with pytest.raises(TypeError, match=r"Positional argument\(s\) \[1\] are Python ints.*static_argnums=1"):
        jig.ig(f, 0.0, 8)(X, 2)
    with pytest.raises(ValueError, match="static_argnums must be positions other than the attributed argnums"):
        jig.ig(f, 0.0, 8, static_argnums=0)
    with pytest.raises(TypeError, match=r"static argument 1 must be hashable"):
        jig.ig(lambda x, n: jnp.sum(x), 0.0, 8, static_argnums=1)(X, [1, 2])


@pytest.mark.parametrize(
    "what, call",
    [
        ("the attributed input", lambda: jig.ig(lambda x: jnp.sum(x**2), 0.0, 8)(X.at[1].set(jnp.nan))),
        ("the baseline", lambda: jig.ig(lambda x: jnp.sum(x**2), jnp.full(4, jnp.inf), 8)(X)),
        ("F\\(x\\) \\(the explained output at the input\\)", lambda: jig.ig(lambda x: jnp.sum(jnp.exp(x)), 0.0, 8)(X * 1e30)),
        ("F\\(start\\)", lambda: jig.ig(lambda x: jnp.sum(jnp.log(x)), 0.0, 8)(jnp.abs(X))),
        ("the gradients along the path", lambda: jig.ig(lambda x: jnp.sum(jnp.sqrt(x)), 0.0, 8, rule="riemann_left")(jnp.abs(X))),
    ],
)
def test_nonfinite_results_raise_a_catchable_floating_point_error(what, call):
    with pytest.raises(FloatingPointError, match=what):
        call()


def test_all_zero_attributions_of_a_changing_output_warn():
    with pytest.warns(jig.ZeroAttributionWarning, match="every attribution is exactly zero although F.x. != F.start."):
        A = jig.ig(lambda x: jnp.sum(jnp.round(x)), 0.0, 8)(X)
    assert np.all(np.asarray(A) == 0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jig.ig(lambda x: jnp.sum(x) * 0.0 + 1.0, 0.0, 8)(X)  # zero attributions of a constant f: no warning
        jig.ig(lambda x: jnp.sum(jnp.round(x)), 0.0, 8, check_finite=False)(X)


def test_check_finite_true_under_jit_and_false_never():
    f = lambda x: jnp.sum(jnp.sqrt(x))  # noqa: E731 - infinite gradient at 0
    x = jnp.abs(X)
    A = jax.jit(jig.ig(f, 0.0, 8, rule="riemann_left"))(x)  # default: unchecked under the caller's jit
    assert not np.all(np.isfinite(A))
    with pytest.raises(Exception, match="the gradients along the path contain NaN or inf"):
        jax.block_until_ready(jax.jit(jig.ig(f, 0.0, 8, rule="riemann_left", check_finite=True))(x))
    assert not np.all(np.isfinite(jig.ig(f, 0.0, 8, rule="riemann_left", check_finite=False)(x)))


def test_diagnose_reports_flat_models_saturation_and_completeness():
    d = jig.diagnose(jig.ig(lambda x: jnp.sum(jnp.round(x)), 0.0, 16), X)  # no gradient anywhere
    assert d.zero_gradient_fraction == 1.0 and "exactly zero at 100%" in d.findings[0]
    assert "path points with zero gradient" in str(d)
    sat = jig.diagnose(jig.ig(lambda x: jnp.tanh(50.0 * jnp.sum(x)), 0.0, 32), jnp.ones(4))
    assert sat.saturated_fraction > 0.8 and any("saturation" in f for f in sat.findings)
    coarse = jig.diagnose(jig.ig(lambda x: jnp.sum(jnp.exp(3 * x)), 0.0, 2, rule="riemann_left"), jnp.ones(4))
    np.testing.assert_allclose(coarse.delta, jnp.sum(jig.ig(lambda x: jnp.sum(jnp.exp(3 * x)), 0.0, 2, rule="riemann_left")(jnp.ones(4))) - 4 * (np.exp(3.0) - 1), rtol=1e-5)
    assert any("Completeness is off" in f for f in coarse.findings)
    ok = jig.diagnose(jig.ig(lambda x: jnp.sum(x**2), 0.0, 8), X)
    assert ok.findings == () and ok.nonfinite == ()
    nan = jig.diagnose(jig.ig(lambda x: jnp.sum(x**2), 0.0, 8), X.at[0].set(jnp.nan))
    assert nan.nonfinite[0] == "the attributed input"
    with pytest.raises(TypeError, match="jig.diagnose: explain must be an explainer made by jig.ig"):
        jig.diagnose(lambda x: x, X)


def test_small_bad_inputs():
    with pytest.raises(TypeError, match=r"baseline must be .* got a Python list of numbers .*; wrap it in jnp.asarray"):
        jig.ig(lambda x: jnp.sum(x), [0.0, 0.0, 0.0, 0.0], 8)
    A, delta = jig.ig(lambda x: 2.0, 0.0, 8, return_delta=True)(X)  # a Python float output
    assert float(delta) == 0.0 and np.all(np.asarray(A) == 0.0)
    with pytest.raises(TypeError, match=r"jig.paths.custom: gamma must accept \(alpha, x, baseline\), but its signature is"):
        jig.paths.custom(lambda a, x: a * x)
    with pytest.raises(TypeError, match=r"gamma must accept \(alpha, x, baseline, params\)"):
        jig.paths.custom(lambda a, x, b: b + a * (x - b), params={"w": jnp.ones(2)})
