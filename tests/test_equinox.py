"""jig.equinox: layer attribution for Equinox models, checked against hand-split models."""

import functools
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

eqx = pytest.importorskip("equinox")

import jig  # noqa: E402

STEPS = 48
KEYS = jax.random.split(jax.random.key(0), 8)


# --------------------------------------------------------------------------- models


class CNN(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    head: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv2d(1, 4, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(4, 6, 3, padding=1, key=k2)
        self.head = eqx.nn.Linear(6, 3, key=k3)

    def __call__(self, x):  # x: (1, 8, 8)
        h = jax.nn.gelu(self.conv1(x))
        h = jax.nn.gelu(self.conv2(h))
        return self.head(h.mean(axis=(1, 2)))


class TokenEmbed(eqx.Module):
    """Applies the table to each token: the jax.vmap lives inside this module."""

    table: eqx.nn.Embedding

    def __call__(self, ids):
        return jax.vmap(self.table)(ids)


class Attention(eqx.Module):
    embed: TokenEmbed
    attn: eqx.nn.MultiheadAttention
    head: eqx.nn.Linear

    def __init__(self, key, vocab=12, dim=8):
        k1, k2, k3 = jax.random.split(key, 3)
        self.embed = TokenEmbed(eqx.nn.Embedding(vocab, dim, key=k1))
        self.attn = eqx.nn.MultiheadAttention(2, dim, key=k2)
        self.head = eqx.nn.Linear(dim, 2, key=k3)

    def __call__(self, ids):  # ids: (tokens,) int
        h = self.embed(ids)
        z = self.attn(h, h, h) + h
        return self.head(jnp.tanh(z).mean(axis=0))


class Shared(eqx.Module):
    """One Linear applied twice: the same submodule is called two times."""

    lin: eqx.nn.Linear

    def __call__(self, x):
        return jnp.sum(self.lin(jnp.tanh(self.lin(x))))


def mlp():
    return eqx.nn.MLP(4, 3, 16, depth=2, activation=jnp.tanh, key=KEYS[0])


X_MLP = jax.random.normal(KEYS[1], (5, 4))
X_CNN = jax.random.normal(KEYS[2], (3, 1, 8, 8))
IDS = jnp.array([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8], [11, 0, 0, 9, 6, 10]])

CASES = {  # name: (model, where, inputs)
    "mlp": (mlp(), lambda m: m.layers[1], X_MLP),
    "cnn": (CNN(KEYS[3]), lambda m: m.conv2, X_CNN),
    "attention": (Attention(KEYS[4]), lambda m: m.embed, IDS),
}


# --------------------------------------------------------------------------- split


def test_split_matches_the_hand_split_mlp():
    model = mlp()
    s = jig.equinox.split(model, lambda m: m.layers[1])
    x = X_MLP[0]
    h_hand = model.layers[1](jnp.tanh(model.layers[0](x)))
    np.testing.assert_allclose(s.bottom(model, x), h_hand, rtol=1e-6)
    h = jnp.linspace(-1.0, 1.0, 16)
    np.testing.assert_allclose(s.top(model, x, h), model.layers[2](jnp.tanh(h)), rtol=1e-6)
    assert s.where == "m.layers[1]"


def test_split_is_pure_in_the_model_under_jit_and_vmap():
    """The model's arrays are arguments: a changed model changes the result, nothing is frozen."""
    model, where, xs = CASES["cnn"]
    s = jig.equinox.split(model, where)
    params, static = eqx.partition(model, eqx.is_array)

    @jax.jit
    def run(params, xs):
        m = eqx.combine(params, static)
        return jax.vmap(lambda x: s.top(m, x, s.bottom(m, x)))(xs)

    direct = eqx.filter_jit(lambda m, xs: jax.vmap(m)(xs))
    np.testing.assert_allclose(run(params, xs), direct(model, xs), rtol=1e-5, atol=1e-6)
    doubled = jax.tree.map(lambda a: 2 * a, params)
    np.testing.assert_allclose(run(doubled, xs), direct(eqx.combine(doubled, static), xs), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- layer IG


def _pick(y):
    return y[1]


@eqx.filter_jit
def _split_parts(s, model, x):
    """h, top(h), the model itself, top(h + 1) and top(0): one compiled program per model."""
    h = s.bottom(model, x)
    return h, s.top(model, x, h), model(x), s.top(model, x, h + 1.0), s.top(model, x, jnp.zeros_like(h))


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_and_completeness_at_the_layer(name):
    model, where, xs = CASES[name]
    s = jig.equinox.split(model, where)
    explain = jig.equinox.layer_ig(model, where, _pick, steps=STEPS, return_delta=True)
    for x in xs[:2]:
        h, again, direct, moved, at_zero = _split_parts(s, model, x)
        np.testing.assert_allclose(again, direct, rtol=1e-5, atol=1e-6)  # top(x, bottom(x)) == model(x)
        assert not np.allclose(moved, direct)  # top really uses h
        res = explain(model, x)
        gap = _pick(direct) - _pick(at_zero)
        assert res.attributions.shape == h.shape
        np.testing.assert_allclose(jnp.sum(res.attributions), gap, rtol=1e-3, atol=1e-5)
        assert abs(res.delta) < 1e-3 * abs(gap) + 1e-5
        np.testing.assert_allclose(res.token_scores, res.attributions.sum(-1), rtol=1e-6)


def test_layer_ig_equals_ig_of_the_hand_split_model():
    """The MLP split by hand at layers[1]: jig.ig over h of the layers above it."""
    model = mlp()
    x = X_MLP[2]
    h = model.layers[1](jnp.tanh(model.layers[0](x)))
    above = lambda h, last: last(jnp.tanh(h))[2]  # noqa: E731
    expected, d_expected = jig.ig(above, 0.0, STEPS, return_delta=True)(h, model.layers[2])
    res = jig.equinox.layer_ig(model, lambda m: m.layers[1], lambda y: y[2], steps=STEPS, return_delta=True)(model, x)
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.delta, d_expected, atol=1e-6)


def test_baseline_input_is_the_layers_output_on_it():
    """baseline_input given as an input (an array like x): the baseline is bottom(model, x')."""
    model, where, xs = CASES["mlp"]
    s = jig.equinox.split(model, where)
    x, x_ref = xs[0], xs[1]
    res = jig.equinox.layer_ig(model, where, _pick, steps=STEPS, baseline_input=x_ref, return_delta=True)(model, x)
    F = lambda h, m: _pick(s.top(m, x, h))  # noqa: E731
    expected = jig.ig(F, s.bottom(model, x_ref), STEPS)(s.bottom(model, x), model)
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-5, atol=1e-7)
    gap = _pick(model(x)) - _pick(model(x_ref))  # the MLP's top ignores x: F(h_x) - F(h_x') is the model's gap
    np.testing.assert_allclose(res.attributions.sum(), gap, rtol=1e-3, atol=1e-5)
    assert abs(res.delta) < 1e-3 * abs(gap) + 1e-5


def test_options_pass_through_to_jig_ig():
    model, where, xs = CASES["mlp"]
    s = jig.equinox.split(model, where)
    x = xs[0]
    F = lambda h: _pick(s.top(model, x, h))  # noqa: E731
    h = s.bottom(model, x)
    for options in [dict(rule="riemann_trapezoid", chunk_size=4, hoist=False), dict(tol=1e-4, rule="romberg", steps=4)]:
        steps = options.pop("steps", 12)
        expected = jig.ig(F, 0.0, steps, **options)(h)
        got = jig.equinox.layer_ig(model, where, _pick, steps=steps, **options)(model, x).attributions
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_targets_and_mesh_pass_through():
    """Every output at once (targets="all") with the path points spread over the 8 test devices."""
    model, where, xs = CASES["mlp"]
    s, x = jig.equinox.split(model, where), xs[0]
    expected = jig.ig(lambda h: s.top(model, x, h), 0.0, 16, targets="all")(s.bottom(model, x))
    mesh = jax.make_mesh((8,), ("points",))
    got = jig.equinox.layer_ig(model, where, None, steps=16, targets="all", mesh=mesh)(model, x)
    assert got.attributions.shape == (3, 16)
    np.testing.assert_allclose(got.attributions, expected, rtol=1e-5, atol=1e-7)


def test_call_index_chooses_the_call_of_a_shared_submodule():
    model = Shared(eqx.nn.Linear(3, 3, key=KEYS[5]))
    x = jnp.array([0.3, -0.2, 0.9])
    with pytest.raises(ValueError, match=r"jig.equinox.layer_ig: where must pick a submodule called once .* called 2 times; pass call_index"):
        jig.equinox.layer_ig(model, lambda m: m.lin, steps=8)(model, x)
    lin = model.lin
    for i, (h, above) in enumerate([(lin(x), lambda h: jnp.sum(lin(jnp.tanh(h)))),
                                    (lin(jnp.tanh(lin(x))), jnp.sum)]):
        res = jig.equinox.layer_ig(model, lambda m: m.lin, steps=STEPS, call_index=i)(model, x)
        np.testing.assert_allclose(res.attributions, jig.ig(above, 0.0, STEPS)(h), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"call_index must be < 2 .* got 2"):
        jig.equinox.layer_ig(model, lambda m: m.lin, steps=8, call_index=2)(model, x)


class WithState(eqx.Module):
    """A model with eqx.nn.State: batch normalisation between two Linear layers."""

    lin: eqx.nn.Linear
    bn: eqx.nn.BatchNorm
    head: eqx.nn.Linear

    def __call__(self, x, state):
        h, state = self.bn(self.lin(x), state)
        return self.head(jnp.tanh(h)), state


def test_a_model_with_state_in_inference_mode():
    """The state is an extra argument (traced); the split point must return arrays, not a State."""
    k1, k2 = jax.random.split(KEYS[6])
    model, state = eqx.nn.make_with_state(WithState)(
        eqx.nn.Linear(3, 4, key=k1), eqx.nn.BatchNorm(4, axis_name="batch", mode="batch"), eqx.nn.Linear(4, 2, key=k2))
    model = eqx.nn.inference_mode(model)
    x = jnp.array([0.5, -1.0, 2.0])
    s = jig.equinox.split(model, lambda m: m.lin)
    F = lambda h: s.top(model, x, h, state)[0][1]  # noqa: E731
    expected = jig.ig(F, 0.0, STEPS)(s.bottom(model, x, state))
    res = jig.equinox.layer_ig(model, lambda m: m.lin, lambda out: out[0][1], steps=STEPS, return_delta=True)(model, x, state)
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-5, atol=1e-7)
    assert abs(res.delta) < 1e-5
    with pytest.raises(ValueError, match=r"jig.equinox.layer_ig: where must pick a submodule whose output is an array or pytree of arrays, got m\.bn, which returns an eqx.nn.State"):
        jig.equinox.layer_ig(model, lambda m: m.bn, lambda out: out[0][1], steps=8)(model, x, state)


# --------------------------------------------------------------------------- composition


def _one(model, x, c):
    where = CASES["cnn"][1]
    return jig.equinox.layer_ig(model, where, lambda y: y[c], steps=16, return_delta=True)(model, x)


CS = jnp.array([0, 2, 1])


@pytest.fixture(scope="module")
def cnn_batch():
    model, _, xs = CASES["cnn"]
    return jax.jit(jax.vmap(_one, in_axes=(None, 0, 0)))(model, xs, CS)


def test_jit_and_vmap_with_a_class_per_example_equal_one_at_a_time(cnn_batch):
    model, _, xs = CASES["cnn"]
    for i in (0, 1):
        one = _one(model, xs[i], int(CS[i]))
        np.testing.assert_allclose(cnn_batch.attributions[i], one.attributions, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(cnn_batch.delta[i], one.delta, atol=1e-6)


def test_under_jig_sharded(cnn_batch):
    """3 examples over the 8 test devices (padded and trimmed); the model's arrays replicated."""
    model, _, xs = CASES["cnn"]
    params, static = eqx.partition(model, eqx.is_array)
    explain = jig.sharded(lambda x, c, p: _one(eqx.combine(p, static), x, c), in_axes=(0, 0, None))
    res = explain(xs, CS, params)
    assert res.attributions.shape == (3, 6, 8, 8)
    np.testing.assert_allclose(res.attributions, cnn_batch.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.delta, cnn_batch.delta, atol=1e-5)


def test_new_weights_give_new_results_without_recompiling():
    model, where, xs = CASES["mlp"]
    traces = []

    def f(y):
        traces.append(1)
        return y[0]

    explain = jig.equinox.layer_ig(model, where, f, steps=8)
    first = explain(model, xs[0]).attributions
    n = len(traces)
    scaled = eqx.tree_at(lambda m: m.layers[2].weight, model, replace=3 * model.layers[2].weight)
    second = explain(scaled, xs[0]).attributions
    assert len(traces) == n  # same structure: the compiled explainer is reused
    np.testing.assert_allclose(second, 3 * first, rtol=1e-5, atol=1e-7)  # the top is linear in that weight


def test_jig_ig_takes_the_model_as_an_argument():
    """Pixel IG with jig.ig: the model passed as an argument, its arrays traced."""
    model, _, xs = CASES["cnn"]
    explain = jig.ig(lambda x, m: m(x)[1], 0.0, STEPS, return_delta=True)
    A, delta = explain(xs[0], model)
    assert A.shape == xs[0].shape and abs(delta) < 1e-3 * abs(model(xs[0])[1] - model(0 * xs[0])[1]) + 1e-5
    scaled = eqx.tree_at(lambda m: m.head.weight, model, replace=2 * model.head.weight)
    A2, _ = explain(xs[0], scaled)
    np.testing.assert_allclose(A2, 2 * A, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- errors


def test_unknown_submodule_lists_the_valid_ones():
    model = CASES["cnn"][0]
    listing = r"m\.conv1, m\.conv2, m\.head"
    with pytest.raises(ValueError, match=r"jig.equinox.layer_ig: where must be a function picking a submodule of the model, got one that raises AttributeError.*" + listing):
        jig.equinox.layer_ig(model, lambda m: m.conv3)
    with pytest.raises(ValueError, match=r"where must be a function picking a callable submodule .*, got one that picks an array of shape \(4, 1, 3, 3\).*" + listing):
        jig.equinox.layer_ig(model, lambda m: m.conv1.weight)
    with pytest.raises(ValueError, match=r"jig.equinox.split: where must be a function picking a submodule, not the model itself"):
        jig.equinox.split(model, lambda m: m)
    with pytest.raises(ValueError, match=r"m\.layers\[0\], m\.layers\[1\], m\.layers\[2\]"):
        jig.equinox.split(mlp(), lambda m: m.layers[3])


def test_bad_arguments():
    model, where, xs = CASES["cnn"]
    with pytest.raises(TypeError, match=r"jig.equinox.layer_ig: model must be an equinox.Module, got .* of type dict; for Flax models use jig.flax"):
        jig.equinox.layer_ig({"w": jnp.ones(2)}, where)
    with pytest.raises(TypeError, match=r"jig.equinox.split: where must be a callable model -> submodule"):
        jig.equinox.split(model, "conv2")
    with pytest.raises(TypeError, match=r"jig.equinox.layer_ig: call_index must be an int >= 0, got 'first'"):
        jig.equinox.layer_ig(model, where, call_index="first")
    with pytest.raises(ValueError, match=r"jig.equinox.layer_ig: baseline and baseline_input must be given one at a time, got both; give either baseline"):
        jig.equinox.layer_ig(model, where, _pick, 0.0, baseline_input=jnp.zeros_like)


def test_submodule_never_called_or_called_inside_the_models_vmap():
    model, _, ids = CASES["attention"]
    explain = jig.equinox.layer_ig(model, lambda m: m.embed.table, _pick, steps=8)
    with pytest.raises(ValueError, match=r"calls directly, got m\.embed\.table, which the model calls inside a JAX transform of its own"):
        explain(model, ids[0])

    class Unused(eqx.Module):
        used: eqx.nn.Linear
        spare: eqx.nn.Linear

        def __call__(self, x):
            return jnp.sum(self.used(x))

    m = Unused(eqx.nn.Linear(2, 2, key=KEYS[6]), eqx.nn.Linear(2, 2, key=KEYS[7]))
    with pytest.raises(ValueError, match=r"submodule the forward pass calls, got m\.spare, which Unused never calls.*m\.used, m\.spare"):
        jig.equinox.split(m, lambda m: m.spare).bottom(m, jnp.ones(2))


def test_submodules_lists_nested_paths():
    names = list(jig.equinox.submodules(CASES["attention"][0]))
    assert names[:2] == ["m.embed", "m.embed.table"] and "m.attn.query_proj" in names and names[-1] == "m.head"


def test_lazy_attribute():
    """jig.equinox is reached as an attribute (import jig alone imports neither extra: see test_keras)."""
    assert "equinox" in dir(jig) and "keras" in dir(jig) and jig.equinox.__name__ == "jig.equinox"


# --------------------------------------------------------------------------- the example


def test_example_quick(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "equinox_image.py")
    spec = importlib.util.spec_from_file_location("example_equinox_image", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "completeness" in out
    import matplotlib.image

    img = matplotlib.image.imread(tmp_path / "equinox_digits.png")
    assert img.ndim == 3 and min(img.shape[:2]) > 100 and img[..., :3].std() > 0.02
