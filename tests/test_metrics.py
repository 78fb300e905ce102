"""jig.metrics: closed forms, agreement with Captum/Quantus (golden file and live), jit/vmap, errors."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

import jig
from jig import metrics

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "data", "metrics_reference.npz")
REFERENCE_SCRIPT = os.path.join(os.path.dirname(HERE), "benchmarks", "metrics_reference.py")

W = jnp.array([3.0, -1.0, 2.0, 0.5, -2.5, 1.5])
C = 0.7
linear = lambda x: x @ W + C  # noqa: E731


# --------------------------------------------------------------------------- the ported CNN


def _conv(h, w, b, stride):
    out = jax.lax.conv_general_dilated(h[None], w, (stride, stride), ((1, 1), (1, 1)),
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"))[0]
    return out + b[:, None, None]


def cnn_logits(x, p):
    """The reference script's torch CNN, in JAX, on torch's layout: x (1, 8, 8)."""
    h = jnp.tanh(_conv(x, p["w_conv1_w"], p["w_conv1_b"], 1))
    h = jnp.tanh(_conv(h, p["w_conv2_w"], p["w_conv2_b"], 2))
    return p["w_dense_w"] @ h.reshape(-1) + p["w_dense_b"]


def check_against_peers(ref):
    """Recompute every peer value of ``ref`` (a dict of arrays) with jig.metrics and compare."""
    p = {k: jnp.asarray(v) for k, v in ref.items() if k.startswith("w_")}
    x, y = jnp.asarray(ref["x"]), jnp.asarray(ref["y"])
    np.testing.assert_allclose(jax.vmap(cnn_logits, (0, None))(x, p), ref["logits"], rtol=1e-5, atol=1e-5)
    logit = lambda x, c: cnn_logits(x, p)[c]  # noqa: E731
    grad = jax.vmap(jax.grad(logit))(x, y)
    np.testing.assert_allclose(grad, ref["saliency"], rtol=1e-4, atol=1e-6)
    ig = jax.vmap(lambda x, c: jig.ig(logit, 0.0, 16)(x, c))(x, y)  # both Gauss-Legendre, 16 nodes
    np.testing.assert_allclose(ig, ref["ig"], rtol=1e-3, atol=1e-5)

    def infid(x, c, a, noise, **kw):
        return metrics.infidelity(lambda x: logit(x, c), x, a, perturb=noise, **kw)

    sal = jnp.asarray(ref["saliency"])
    noise = jnp.asarray(ref["noise"])
    got = jax.vmap(infid)(x, y, sal, noise)
    np.testing.assert_allclose(got, ref["infidelity"], rtol=2e-4, atol=1e-9)
    got = jax.vmap(lambda *a: infid(*a, normalize=True))(x, y, sal, noise)
    np.testing.assert_allclose(got, ref["infidelity_normalized"], rtol=2e-4, atol=1e-9)
    got = jax.vmap(lambda *a: infid(*a, multiply_by_inputs=True))(x, y, jnp.asarray(ref["ig"]), noise)
    np.testing.assert_allclose(got, ref["infidelity_ig_mbi"], rtol=2e-4, atol=1e-9)

    sens = jax.vmap(lambda x, c, d: metrics.sensitivity_max(lambda x: jax.grad(logit)(x, c), x, perturb=d))
    np.testing.assert_allclose(sens(x, y, jnp.asarray(ref["delta"])), ref["sensitivity_max"], rtol=1e-4)

    steps = ref["pixel_flipping"].shape[1]  # Quantus: 64 entries, 4 per step
    prob = lambda x, c: jax.nn.softmax(cnn_logits(x, p))[c]  # noqa: E731
    curve = jax.vmap(lambda x, c, a: metrics.deletion(lambda x: prob(x, c), x, a, baseline=jnp.min(x), steps=steps))
    got = curve(x, y, sal)
    np.testing.assert_allclose(got.values[:, 1:], ref["pixel_flipping"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.values[:, 0], jax.vmap(prob)(x, y), rtol=1e-5)


def test_golden_file_from_captum_and_quantus():
    """benchmarks/metrics_reference.py ran Captum and Quantus on these numbers; jig agrees."""
    with np.load(GOLDEN) as ref:
        ref = dict(ref)
    assert ref["noise"].shape == (4, 8, 1, 8, 8) and ref["pixel_flipping"].shape == (4, 16)
    check_against_peers(ref)


def test_live_captum_and_quantus():
    pytest.importorskip("torch", reason="the peers (torch, captum, quantus) are not installed here; "
                        "tests/data/metrics_reference.npz carries their values (test_golden_file...)")
    pytest.importorskip("captum", reason="captum is not installed")
    pytest.importorskip("quantus", reason="quantus is not installed")
    spec = importlib.util.spec_from_file_location("metrics_reference", REFERENCE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check_against_peers(module.compute(seed=3))


# --------------------------------------------------------------------------- infidelity


def _wide_uniform(k, x):
    return jax.random.uniform(k, x.shape, minval=-2, maxval=3)


@given(seed=st.integers(0, 2**31 - 1), stddev=st.floats(0.01, 3.0), samples=st.sampled_from([1, 10]))
def test_infidelity_of_a_linear_models_gradient_is_zero(seed, stddev, samples):
    x = jnp.asarray(np.random.default_rng(seed).normal(size=6), jnp.float32)
    grad = jax.grad(linear)(x)
    key = jax.random.key(seed)
    assert float(metrics.infidelity(linear, x, grad, key=key, samples=samples, stddev=stddev)) < 1e-9
    assert float(metrics.infidelity(linear, x, grad, key=key, perturb=_wide_uniform)) < 1e-8


@given(seed=st.integers(0, 2**31 - 1), stddev=st.floats(0.01, 3.0))
def test_infidelity_of_ig_with_multiply_by_inputs_is_zero(seed, stddev):
    rng = np.random.default_rng(seed)
    x, b = (jnp.asarray(rng.normal(size=6), jnp.float32) for _ in range(2))
    a = (x - b) * W  # IG of a linear model (checked against jig.ig below)
    key = jax.random.key(seed)
    got = metrics.infidelity(linear, x, a, key=key, stddev=stddev, multiply_by_inputs=True, baseline=b)
    assert float(got) < 1e-7 * max(1.0, stddev**2)
    # without the convention IG is not a first-order model of F(x) - F(x - I)
    assert float(metrics.infidelity(linear, x, a, key=key, stddev=stddev)) > 1e-6


def test_ig_of_a_linear_model_and_captums_zero_denominator():
    x = jnp.array([1.0, -2.0, 0.5, 3.0, 0.0, 1.0])
    b = jnp.array([0.0, 1.0, 0.5, -1.0, 2.0, 0.0])  # x = b at entry 2
    a = jig.ig(linear, b, 4)(x)
    np.testing.assert_allclose(a, (x - b) * W, rtol=1e-6, atol=1e-6)
    noise = jnp.asarray(np.random.default_rng(0).normal(size=(5, 6)), jnp.float32)
    span = np.where(np.asarray(x - b) == 0, 1.0, np.asarray(x - b))  # Captum's safe_div: 0 -> 1
    dots = (np.asarray(noise) / span) @ np.asarray(a)
    diffs = np.asarray(noise) @ np.asarray(W)
    want = np.mean((dots - diffs) ** 2)  # = mean((I_2 W_2)²): entry 2 has no attribution
    np.testing.assert_allclose(want, np.mean((np.asarray(noise)[:, 2] * 2.0) ** 2), rtol=1e-5)
    got = metrics.infidelity(linear, x, a, perturb=noise, multiply_by_inputs=True, baseline=b)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_infidelity_matches_its_formula_and_normalize_is_scale_free():
    f = lambda x: jnp.sum(jnp.sin(x) * x)  # noqa: E731
    x = jnp.linspace(-1.0, 2.0, 5)
    a = jax.grad(f)(x) + 0.3
    key = jax.random.key(7)
    noise = np.asarray(jax.vmap(lambda k: 0.2 * jax.random.normal(k, x.shape))(jax.random.split(key, 9)))
    xn = np.asarray(x, np.float64)
    fn = lambda v: np.sum(np.sin(v) * v)  # noqa: E731
    dots = noise @ np.asarray(a, np.float64)
    diffs = np.array([fn(xn) - fn(xn - i) for i in noise])
    want = np.mean((dots - diffs) ** 2)
    np.testing.assert_allclose(metrics.infidelity(f, x, a, key=key, samples=9, stddev=0.2), want, rtol=1e-4)
    np.testing.assert_allclose(metrics.infidelity(f, x, a, perturb=jnp.asarray(noise)), want, rtol=1e-4)
    beta = np.sum(dots * diffs) / np.sum(dots**2)
    want_n = np.mean((beta * dots - diffs) ** 2)
    got = [metrics.infidelity(f, x, s * a, perturb=jnp.asarray(noise), normalize=True) for s in (1.0, -4.0, 1e3)]
    np.testing.assert_allclose(got, [want_n] * 3, rtol=1e-3)


def test_infidelity_uses_its_key():
    x = jnp.linspace(-1.0, 1.0, 4)
    f = lambda x: jnp.sum(jnp.tanh(x))  # noqa: E731
    a = jnp.ones(4)
    one = metrics.infidelity(f, x, a, key=jax.random.key(0))
    assert metrics.infidelity(f, x, a, key=jax.random.key(0)) == one
    assert metrics.infidelity(f, x, a, key=jax.random.key(1)) != one


# --------------------------------------------------------------------------- sensitivity


def test_sensitivity_max_closed_form():
    explain = jax.grad(lambda x: jnp.sum(x**2))  # E(x) = 2x: ‖E(x+δ) − E(x)‖/‖E(x)‖ = ‖δ‖/‖x‖
    x = jnp.array([1.0, -2.0, 2.0])
    key = jax.random.key(3)
    deltas = jax.vmap(lambda k: jax.random.uniform(k, x.shape, minval=-0.05, maxval=0.05))(jax.random.split(key, 6))
    want = np.max(np.linalg.norm(np.asarray(deltas), axis=1)) / 3.0
    np.testing.assert_allclose(metrics.sensitivity_max(explain, x, key=key, radius=0.05, samples=6), want, rtol=1e-5)
    np.testing.assert_allclose(metrics.sensitivity_max(explain, x, perturb=deltas), want, rtol=1e-5)
    # a constant explanation does not move; a zero one divides by 1
    assert float(metrics.sensitivity_max(lambda x: jnp.ones(3), x, key=key)) == 0.0
    zero_at_x = metrics.sensitivity_max(lambda v: v - x, x, perturb=deltas)
    np.testing.assert_allclose(zero_at_x, want * 3.0, rtol=1e-5)


def test_sensitivity_max_of_a_pytree_explanation():
    explain = lambda x: {"a": 2 * x[:2], "b": (2 * x[2:],)}  # noqa: E731
    x = jnp.array([1.0, -2.0, 2.0])
    d = jnp.array([[0.01, 0.0, 0.02], [0.0, 0.03, 0.0]])
    np.testing.assert_allclose(metrics.sensitivity_max(explain, x, perturb=d), 0.03 / 3.0, rtol=1e-5)


# --------------------------------------------------------------------------- deletion, insertion


def _curve_by_hand(x, a, baseline, steps, insert):
    """Independent: numpy sort, a loop over the steps."""
    x, a = np.asarray(x, np.float64), np.asarray(a, np.float64)
    order = np.argsort(-a, kind="stable")
    n = len(x)
    values = []
    for k in range(steps + 1):
        top = order[: (k * n) // steps]
        z = np.full(n, baseline) if insert else x.copy()
        z[top] = x[top] if insert else baseline
        values.append(z @ np.asarray(W, np.float64) + C)
    fr = np.array([(k * n) // steps for k in range(steps + 1)]) / n
    return fr, np.array(values)


@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 6), baseline=st.floats(-1, 1))
def test_deletion_and_insertion_of_a_linear_model(seed, steps, baseline):
    x = jnp.asarray(np.random.default_rng(seed).normal(size=6), jnp.float32)
    a = jig.ig(linear, baseline, 4)(x)  # (x - b) W: the exact drop of each removal
    for fn, insert in ((metrics.deletion, False), (metrics.insertion, True)):
        c = fn(linear, x, a, baseline=baseline, steps=steps)
        fr, want = _curve_by_hand(x, a, baseline, steps, insert)
        np.testing.assert_allclose(c.fractions, fr, rtol=1e-6)
        np.testing.assert_allclose(c.values, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(c.area, np.trapezoid(want, fr), rtol=1e-5, atol=1e-5)
    # on a linear model with exact IG, every removal costs its attribution: deletion falls
    # monotonically to F(b) while positive attributions go, then rises
    full = metrics.deletion(linear, x, a, baseline=baseline, steps=6).values
    drops = -np.diff(np.asarray(full))
    np.testing.assert_allclose(drops, np.sort(np.asarray(a))[::-1], rtol=1e-4, atol=1e-5)


def test_feature_axes_group_channels():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 2, 4)), jnp.float32)  # 3x2 pixels, 4 channels
    w = jnp.asarray(rng.normal(size=(3, 2, 4)), jnp.float32)
    f = lambda x: jnp.sum(x * w)  # noqa: E731
    a = x * w
    c = metrics.deletion(f, x, a, steps=6, feature_axes=-1)
    per_pixel = np.asarray(a).sum(-1).ravel()
    order = np.argsort(-per_pixel, kind="stable")
    want = per_pixel.sum() - np.concatenate([[0.0], np.cumsum(per_pixel[order])])
    np.testing.assert_allclose(c.values, want, rtol=1e-5, atol=1e-5)
    # feature_axes=(0, 1): one feature per channel
    c2 = metrics.insertion(f, x, a, steps=2, feature_axes=(0, 1))
    per_channel = np.asarray(a).sum((0, 1))
    top = np.argsort(-per_channel)[:2]
    np.testing.assert_allclose(c2.values[1], per_channel[top].sum(), rtol=1e-5)


def test_ties_keep_index_order_and_uneven_steps():
    x = jnp.ones(5)
    a = jnp.zeros(5)  # all tied: removed in index order
    c = metrics.deletion(lambda x: x @ jnp.arange(5.0), x, a, steps=2)
    np.testing.assert_allclose(c.fractions, [0.0, 0.4, 1.0])  # 5 // 2 = 2 features first
    np.testing.assert_allclose(c.values, [10.0, 9.0, 0.0])
    # an int baseline is a number like any other
    np.testing.assert_allclose(metrics.insertion(lambda x: x @ jnp.arange(5.0), x, a, steps=5, baseline=0).values,
                               [0.0, 0.0, 1.0, 3.0, 6.0, 10.0])


# --------------------------------------------------------------------------- randomization


def _ranks_by_scipy(a, b):
    return scipy.stats.spearmanr(np.ravel(a), np.ravel(b)).statistic


def test_similarities_against_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=40).round(1)  # ties
    b = a + rng.normal(size=40)
    b[:5] = b[0]
    np.testing.assert_allclose(metrics.spearman(jnp.asarray(a), jnp.asarray(b)), _ranks_by_scipy(a, b), rtol=1e-5)
    np.testing.assert_allclose(metrics.pearson(jnp.asarray(a), jnp.asarray(b)),
                               scipy.stats.pearsonr(a, b).statistic, rtol=1e-5)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    np.testing.assert_allclose(metrics.cosine({"u": jnp.asarray(a[:10]), "v": jnp.asarray(a[10:])},
                                              {"u": jnp.asarray(b[:10]), "v": jnp.asarray(b[10:])}), cos, rtol=1e-5)


def _mlp(x, p):
    h = jnp.tanh(x @ p["params"]["hidden"]["kernel"] + p["params"]["hidden"]["bias"])
    h = jnp.tanh(h @ p["params"]["middle"]["kernel"] + p["params"]["middle"]["bias"])
    return h @ p["params"]["head"]["kernel"] + p["params"]["head"]["bias"]


@pytest.fixture(scope="module")
def trained_mlp():
    """A 3-layer MLP trained (seconds) on scikit-learn's digits, in Flax's variables layout."""
    import optax
    from sklearn.datasets import load_digits

    d = load_digits()
    xs, ys = jnp.asarray(d.data / 16.0, jnp.float32), jnp.asarray(d.target)
    rng = np.random.default_rng(0)
    dense = lambda n, m: {"kernel": jnp.asarray(rng.normal(size=(n, m)) / np.sqrt(n), jnp.float32),  # noqa: E731
                          "bias": jnp.zeros(m)}
    p = {"params": {"hidden": dense(64, 32), "middle": dense(32, 32), "head": dense(32, 10)}}
    opt = optax.adam(1e-2)

    @jax.jit
    def train(p):
        def step(carry, _):
            p, s = carry
            loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
                jax.vmap(_mlp, (0, None))(xs, p), ys).mean()
            u, s = opt.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (p, opt.init(p)), None, length=150)[0][0]

    p = train(p)
    acc = float(jnp.mean(jnp.argmax(jax.vmap(_mlp, (0, None))(xs, p), -1) == ys))
    assert acc > 0.9
    return p, xs[:4], jnp.argmax(jax.vmap(_mlp, (0, None))(xs[:4], p), -1)


def test_randomization_falls_on_a_trained_model(trained_mlp):
    p, xs, ys = trained_mlp
    # after training the dicts are in JAX's sorted key order: the forward order comes from explain
    assert sorted(metrics.param_layers(p)) == [("params", "head"), ("params", "hidden"), ("params", "middle")]

    def run(x, c):
        explain = lambda p, x: jig.ig(lambda x, p: _mlp(x, p)[c], 0.0, 8)(x, p)  # noqa: E731
        return metrics.randomization(explain, p, x, key=jax.random.key(0))

    sims = jax.jit(jax.vmap(lambda x, c: run(x, c).similarity))(xs, ys)
    assert sims.shape == (4, 4)
    np.testing.assert_allclose(sims[:, 0], 1.0, rtol=1e-6)
    # the trained head decides the class evidence: re-initialised, the maps decorrelate
    assert np.all(np.abs(np.mean(np.asarray(sims[:, 1:]), axis=0)) < 0.5)
    # an "explanation" that ignores the model (the input itself) passes none of the test
    blind = metrics.randomization(lambda p, x: x * (1.0 + 0.0 * _mlp(x, p)[0]), p, xs[0], key=jax.random.key(0))
    assert blind.layers == ("params/head", "params/middle", "params/hidden")  # forward order, top first
    np.testing.assert_allclose(blind.similarity, 1.0, rtol=1e-6)


def test_randomization_levels_by_hand(trained_mlp):
    p, xs, ys = trained_mlp
    explain = jax.jit(lambda p, x: jax.grad(lambda x: _mlp(x, p)[ys[0]])(x))
    r = metrics.randomization(explain, p, xs[0], key=jax.random.key(0))
    leaves, treedef = jax.tree_util.tree_flatten(p)
    key = jax.random.key(0)
    init = jax.jit(metrics._default_init)
    drawn = [init(jax.random.fold_in(key, i), leaf) for i, leaf in enumerate(leaves)]
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(p)[0]]
    order = ["'head'", "'middle'", "'hidden'"]
    for level in range(4):
        chosen = order[:level]
        mixed = [d if any(name in path for name in chosen) else leaf for d, leaf, path in zip(drawn, leaves, paths)]
        e = explain(jax.tree_util.tree_unflatten(treedef, mixed), xs[0])
        np.testing.assert_allclose(r.similarity[level], _ranks_by_scipy(explain(p, xs[0]), e), rtol=1e-4, atol=1e-6)
    # the re-initialised arrays keep their mean and spread; an untrained zero bias stays zero
    np.testing.assert_allclose(jnp.std(drawn[0]), jnp.std(leaves[0]), rtol=0.2)
    assert float(jnp.max(jnp.abs(metrics._default_init(key, jnp.zeros(5))))) == 0.0


def test_randomization_explicit_layers_absolute_and_callable_similarity(trained_mlp):
    p, xs, ys = trained_mlp
    explain = lambda p, x: jax.grad(lambda x: _mlp(x, p)[0])(x)  # noqa: E731
    r = metrics.randomization(explain, p, xs[0], key=jax.random.key(1), layers=["params/head", ("params", "middle")],
                              similarity=lambda a, b: jnp.sum(a * b), absolute=True)
    assert r.layers == ("params/head", "params/middle") and r.similarity.shape == (3,)
    e = jnp.abs(explain(p, xs[0]))
    np.testing.assert_allclose(r.similarity[0], jnp.sum(e * e), rtol=1e-5)
    # an init that keeps the parameters: nothing changes
    same = metrics.randomization(explain, p, xs[0], key=jax.random.key(1), init=lambda k, a: a)
    np.testing.assert_allclose(same.similarity, 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- jit / vmap


def test_jit_and_vmap_equal_the_plain_calls():
    rng = np.random.default_rng(5)
    xs = jnp.asarray(rng.normal(size=(3, 6)), jnp.float32)
    f = lambda x: jnp.sum(jnp.tanh(x * W))  # noqa: E731
    attrs = jax.vmap(jig.ig(f, 0.0, 8))(xs)
    keys = jax.random.split(jax.random.key(2), 3)
    one = lambda x, a, k: (metrics.infidelity(f, x, a, key=k),  # noqa: E731
                           metrics.sensitivity_max(jax.grad(f), x, key=k, samples=3),
                           metrics.deletion(f, x, a, steps=3),
                           metrics.insertion(f, x, a, steps=3, baseline=0.5))
    plain = [one(x, a, k) for x, a, k in zip(xs, attrs, keys)]
    for batched in (jax.jit(jax.vmap(one))(xs, attrs, keys),):
        for i, want in enumerate(plain):
            got = jax.tree_util.tree_map(lambda leaf: leaf[i], batched)
            for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    jitted = jax.jit(lambda x, a: metrics.deletion(f, x, a, steps=3))(xs[0], attrs[0])
    np.testing.assert_allclose(jitted.values, plain[0][2].values, rtol=1e-6)


# --------------------------------------------------------------------------- errors

X = jnp.ones(6)
A = jnp.ones(6)
KEY = jax.random.key(0)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: metrics.infidelity(linear, X, jnp.ones(5), key=KEY), ValueError,
     r"jig.metrics.infidelity: attributions must be an array of x's shape \(6,\), got an array of shape \(5,\)"),
    (lambda: metrics.infidelity(linear, X, A), TypeError,
     r"jig.metrics.infidelity: key must be a PRNG key, got None .*make one with jax.random.key"),
    (lambda: metrics.infidelity(linear, X, A, key=0), TypeError, r"infidelity: key must be a PRNG key, got 0"),
    (lambda: metrics.infidelity(linear, X, A, key=KEY, samples=0), ValueError, r"infidelity: samples must be an int >= 1"),
    (lambda: metrics.infidelity(linear, X, A, key=KEY, stddev=-1.0), ValueError, r"infidelity: stddev must be a finite"),
    (lambda: metrics.infidelity(linear, X, A, perturb=jnp.ones((3, 5))), ValueError,
     r"infidelity: perturb must be a callable \(key, x\) -> perturbation, or an array of shape \(samples, \*\(6,\)\)"),
    (lambda: metrics.infidelity(linear, X, A, key=KEY, perturb=lambda k, x: x[:2]), ValueError,
     r"infidelity: perturb's output must be an array of x's shape \(6,\), got shape \(2,\)"),
    (lambda: metrics.infidelity(lambda x: x, X, A, key=KEY), ValueError,
     r"infidelity: f's output must be a scalar, got shape \(6,\); pick one output"),
    (lambda: metrics.infidelity(linear, jnp.arange(6), A, key=KEY), TypeError,
     r"infidelity: x must be a floating-point array, got an array of shape \(6,\) and dtype int32; .*embedding"),
    (lambda: metrics.infidelity(linear, X, A, key=KEY, multiply_by_inputs=True, baseline=jnp.ones(2)), ValueError,
     r"infidelity: baseline must be a scalar or an array broadcasting to x's shape \(6,\)"),
    (lambda: metrics.infidelity("f", X, A, key=KEY), TypeError, r"infidelity: f must be a callable x -> scalar"),
    (lambda: metrics.sensitivity_max(jax.grad(linear), X), TypeError,
     r"jig.metrics.sensitivity_max: key must be a PRNG key, got None"),
    (lambda: metrics.sensitivity_max(jax.grad(linear), X, key=KEY, radius=float("nan")), ValueError,
     r"sensitivity_max: radius must be a finite number in \[0, inf\)"),
    (lambda: metrics.deletion(linear, X, jnp.ones((2, 3))), ValueError,
     r"jig.metrics.deletion: attributions must be an array of x's shape \(6,\), got an array of shape \(2, 3\)"),
    (lambda: metrics.deletion(linear, X, A, steps=0), ValueError, r"jig.metrics.deletion: steps must be an int >= 1, got 0"),
    (lambda: metrics.insertion(linear, X, A, steps=2.0), TypeError, r"jig.metrics.insertion: steps must be an int >= 1"),
    (lambda: metrics.deletion(linear, X, A, steps=7), ValueError,
     r"deletion: steps must be at most the number of features \(6\), got 7"),
    (lambda: metrics.deletion(linear, X, A, feature_axes=0), ValueError, r"deletion: feature_axes must be distinct axes"),
    (lambda: metrics.deletion(linear, X, A, feature_axes=3), ValueError, r"deletion: feature_axes must be axes of x"),
    (lambda: metrics.deletion(linear, X, A, feature_axes="c"), TypeError, r"deletion: feature_axes must be None, an int"),
    (lambda: metrics.insertion(linear, X, A, steps=3, baseline=jnp.ones(3)), ValueError,
     r"insertion: baseline must be a scalar"),
    (lambda: metrics.deletion(lambda x: x, X, A, steps=3), ValueError, r"deletion: f's output must be a scalar"),
])
def test_bad_inputs(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_bad_randomization_inputs():
    p = {"a": {"w": jnp.ones((6, 2))}, "b": {"w": jnp.ones(2)}}
    explain = lambda p, x: jax.grad(lambda x: jnp.tanh(x @ p["a"]["w"]) @ p["b"]["w"])(x)  # noqa: E731
    with pytest.raises(TypeError, match=r"jig.metrics.randomization: key must be a PRNG key, got None"):
        metrics.randomization(explain, p, X)
    with pytest.raises(ValueError, match=r"randomization: similarity must be one of \['cosine', 'pearson', 'spearman'\]"):
        metrics.randomization(explain, p, X, key=KEY, similarity="ssim")
    with pytest.raises(ValueError, match=r"randomization: layers must be key paths into params \(e.g. \['a', 'b'\]\), got c"):
        metrics.randomization(explain, p, X, key=KEY, layers=["c"])
    with pytest.raises(ValueError, match=r"randomization: layers must be layers that do not overlap, got a/w; it overlaps layer a"):
        metrics.randomization(explain, p, X, key=KEY, layers=["a", "a/w"])
    with pytest.raises(TypeError, match=r"randomization: layers must be a list of key paths .* wrap a single layer"):
        metrics.randomization(explain, p, X, key=KEY, layers="a")
    with pytest.raises(TypeError, match=r"randomization: explain must be a callable \(params, x\) -> attributions"):
        metrics.randomization(None, p, X, key=KEY)
