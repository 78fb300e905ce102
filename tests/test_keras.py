"""jig.keras: IG and layer attribution for Keras 3 models (JAX backend), checked against hand-split models."""

import importlib.util
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras first
    pytest.skip("keras was imported with another backend", allow_module_level=True)

import jig  # noqa: E402

STEPS = 48
keras.utils.set_random_seed(0)


# --------------------------------------------------------------------------- models


def make_mlp():
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(16, activation="tanh", name="first"),
        keras.layers.Dense(16, name="hidden"),
        keras.layers.Activation("tanh", name="act"),
        keras.layers.Dense(3, name="out"),
    ], name="mlp")


def make_cnn():
    x = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="gelu", name="conv1")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)  # non-trainable moving statistics
    h = keras.layers.Dropout(0.5, name="drop")(h)  # off: explanations run with training=False
    h = keras.layers.Conv2D(6, 3, padding="same", activation="gelu", name="conv2")(h)
    y = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(h))
    return keras.Model(x, y, name="cnn")


def make_attention():
    ids = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(12, 8, name="embed")(ids)
    z = keras.layers.MultiHeadAttention(2, 4, name="attn")(h, h)
    z = keras.layers.LayerNormalization(name="norm")(z + h)  # the embedding is used twice
    y = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling1D(name="pool")(z))
    return keras.Model(ids, y, name="attention")


class Shared(keras.Model):
    """A subclassed model (its call takes no training argument) applying one layer twice."""

    def __init__(self):
        super().__init__(name="shared")
        self.lin = keras.layers.Dense(3, name="lin")

    def call(self, x):
        return jnp.sum(self.lin(jnp.tanh(self.lin(x))), axis=-1)


MLP, CNN, ATT = make_mlp(), make_cnn(), make_attention()
_bn = CNN.get_layer("bn")  # moving statistics away from 0/1, so that they matter
_bn.moving_mean.assign(np.linspace(-0.2, 0.3, 4).astype("float32"))
_bn.moving_variance.assign(np.linspace(0.5, 2.0, 4).astype("float32"))
X_MLP = jax.random.normal(jax.random.key(1), (3, 4))
X_CNN = jax.random.normal(jax.random.key(2), (3, 8, 8, 1))
IDS = jnp.array([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8], [11, 0, 0, 9, 6, 10]], dtype=jnp.int32)

CASES = {  # name: (model, layer, inputs)
    "mlp": (MLP, "hidden", X_MLP),
    "cnn": (CNN, "conv1", X_CNN),
    "attention": (ATT, "embed", IDS),
}


def _pick(y):
    return y[1]


# --------------------------------------------------------------------------- split


def test_split_matches_the_hand_split_mlp():
    s, w, x = jig.keras.split(MLP, "hidden"), jig.keras.weights(MLP), X_MLP[0]
    k1, b1, k2, b2, k3, b3 = (np.asarray(a) for a in w.trainable)
    np.testing.assert_allclose(s.bottom(w, x), np.tanh(x @ k1 + b1) @ k2 + b2, rtol=1e-5, atol=1e-6)
    h = jnp.linspace(-1.0, 1.0, 16)
    np.testing.assert_allclose(s.top(w, x, h), np.tanh(h) @ k3 + b3, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- IG


def test_ig_equals_jig_ig_of_the_hand_written_model():
    w, x = jig.keras.weights(MLP), X_MLP[0]
    k1, b1, k2, b2, k3, b3 = w.trainable

    def by_hand(x, c):
        return (jnp.tanh(jnp.tanh(x @ k1 + b1) @ k2 + b2) @ k3 + b3)[c]

    A, delta = jig.keras.ig(MLP, _pick, steps=STEPS, return_delta=True)(x)
    expected, d_expected = jig.ig(by_hand, 0.0, STEPS, return_delta=True)(x, 1)
    np.testing.assert_allclose(A, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(delta, d_expected, atol=1e-6)
    gap = by_hand(x, 1) - by_hand(jnp.zeros_like(x), 1)
    np.testing.assert_allclose(jnp.sum(A), gap, rtol=1e-3, atol=1e-5)
    # every output at once: targets="all" with f=None (the three logits)
    every = jig.keras.ig(MLP, steps=STEPS, targets="all")(x)
    assert every.shape == (3, 4)
    np.testing.assert_allclose(every[1], A, rtol=1e-5, atol=1e-7)


def test_ig_on_the_cnn_with_batch_norm_and_dropout_in_inference_mode():
    x = X_CNN[0]
    A, delta = jig.keras.ig(CNN, _pick, 0.0, STEPS, return_delta=True)(x)
    logits = jax.jit(lambda x: CNN(x, training=False)[:, 1])(jnp.stack([x, 0 * x]))  # one compiled call
    gap = logits[0] - logits[1]
    assert A.shape == x.shape
    np.testing.assert_allclose(jnp.sum(A), gap, rtol=1e-3, atol=1e-5)


def test_weights_changed_between_calls_give_new_results_without_recompiling():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False, name="lin")])
    traces = []

    def f(y):
        traces.append(1)
        return y[0]

    explain = jig.keras.ig(model, f, steps=4)
    layer_explain = jig.keras.layer_ig(model, "lin", f, steps=4)
    x = jnp.array([1.0, -2.0, 0.5])
    for scale in (1.0, -3.0, 0.5):
        kernel = scale * np.arange(6.0, dtype="float32").reshape(3, 2)
        model.get_layer("lin").kernel.assign(kernel)
        np.testing.assert_allclose(explain(x), kernel[:, 0] * x, rtol=1e-6)  # closed form of a linear model
        res = layer_explain(x)
        np.testing.assert_allclose(res.attributions, [kernel[:, 0] @ x, 0.0], rtol=1e-6)
        if scale == 1.0:
            n = len(traces)
    assert len(traces) == n  # new values, same programs


# --------------------------------------------------------------------------- layer IG


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_and_completeness_at_the_layer(name):
    model, layer, xs = CASES[name]
    s, w = jig.keras.split(model, layer), jig.keras.weights(model)
    explain = jig.keras.layer_ig(model, layer, _pick, steps=STEPS, return_delta=True)

    @jax.jit
    def parts(w, x):  # h, top(h), the model's own call, top(h + 1), top(0): one program
        h = s.bottom(w, x)
        direct = model(x[None], training=False)[0]
        return h, s.top(w, x, h), direct, s.top(w, x, h + 1.0), s.top(w, x, jnp.zeros_like(h))

    for x in xs[:2]:
        h, again, direct, moved, at_zero = parts(w, x)
        np.testing.assert_allclose(again, direct, rtol=1e-5, atol=1e-6)  # top(x, bottom(x)) == model(x)
        assert not np.allclose(moved, direct)  # top really uses h
        res = explain(x)
        gap = _pick(direct) - _pick(at_zero)
        assert res.attributions.shape == h.shape == tuple(model.get_layer(layer).output.shape[1:])
        np.testing.assert_allclose(jnp.sum(res.attributions), gap, rtol=1e-3, atol=1e-5)
        assert abs(res.delta) < 1e-3 * abs(gap) + 1e-5
        np.testing.assert_allclose(res.token_scores, res.attributions.sum(-1), rtol=1e-5, atol=1e-6)


def test_layer_ig_equals_ig_of_the_hand_split_model():
    w, x = jig.keras.weights(MLP), X_MLP[2]
    k1, b1, k2, b2, k3, b3 = w.trainable
    h = jnp.tanh(x @ k1 + b1) @ k2 + b2
    expected, d_expected = jig.ig(lambda h: (jnp.tanh(h) @ k3 + b3)[2], 0.0, STEPS, return_delta=True)(h)
    res = jig.keras.layer_ig(MLP, "hidden", lambda y: y[2], steps=STEPS, return_delta=True)(x)
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.delta, d_expected, atol=1e-6)


def test_baseline_input_on_token_ids():
    ids = IDS[0]
    res = jig.keras.layer_ig(ATT, "embed", _pick, steps=STEPS, baseline_input=jnp.zeros_like, return_delta=True)(ids)
    gap = ATT(ids[None])[0, 1] - ATT(jnp.zeros_like(ids)[None])[0, 1]
    assert res.token_scores.shape == (6,)
    np.testing.assert_allclose(res.token_scores.sum(), gap, rtol=1e-3, atol=1e-5)


def test_call_index_chooses_the_call_of_a_shared_layer():
    model = Shared()
    x = jnp.array([0.3, -0.2, 0.9])
    model(x[None])
    with pytest.raises(ValueError, match=r"jig.keras.layer_ig: layer_name must name a layer called once .* called 2 times .*call_index"):
        jig.keras.layer_ig(model, "lin", steps=8)(x)
    k, b = jig.keras.weights(model).trainable
    lin = lambda v: v @ k + b  # noqa: E731
    for i, (h, above) in enumerate([(lin(x), lambda h: jnp.sum(lin(jnp.tanh(h)))), (lin(jnp.tanh(lin(x))), jnp.sum)]):
        res = jig.keras.layer_ig(model, "lin", steps=STEPS, call_index=i)(x)
        np.testing.assert_allclose(res.attributions, jig.ig(above, 0.0, STEPS)(h), rtol=1e-5, atol=1e-7)


class Counter(keras.layers.Layer):
    """A layer with state that its call updates: x * scale, then scale += 1."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(), initializer="ones", trainable=False, name="scale")

    def call(self, x):
        out = x * self.scale
        self.scale.assign(self.scale + 1.0)
        return out


def test_a_layer_updating_its_state_is_explained_at_the_current_state_and_left_unchanged():
    model = keras.Sequential([keras.Input((3,)), Counter(name="count"), keras.layers.Dense(1, use_bias=False, name="d")])
    model.get_layer("d").kernel.assign([[1.0], [2.0], [-1.0]])
    model.get_layer("count").scale.assign(3.0)
    x = jnp.array([1.0, 2.0, -1.0])
    explain, layer = jig.keras.ig(model, steps=4), jig.keras.layer_ig(model, "count", steps=4)
    for _ in range(2):  # the update inside the forward pass is discarded: same result twice
        np.testing.assert_allclose(explain(x), 3.0 * np.array([1.0, 4.0, 1.0]), rtol=1e-6)  # closed form: scale * w * x
        np.testing.assert_allclose(layer(x).attributions, 3.0 * np.array([1.0, 4.0, 1.0]), rtol=1e-6)
    assert float(model.get_layer("count").scale.value) == 3.0


# --------------------------------------------------------------------------- composition


CS = jnp.array([0, 2, 1])


def _one(x, c, w):
    return jig.keras.layer_ig(CNN, "conv2", lambda y: y[c], steps=16, return_delta=True)(x, weights=w)


@pytest.fixture(scope="module")
def cnn_batch():
    return jax.jit(jax.vmap(_one, in_axes=(0, 0, None)))(X_CNN, CS, jig.keras.weights(CNN))


def test_jit_and_vmap_with_a_class_per_example_equal_one_at_a_time(cnn_batch):
    for i, c in [(0, 0), (1, 2)]:
        one = jig.keras.layer_ig(CNN, "conv2", lambda y: y[c], steps=16, return_delta=True)(X_CNN[i])
        np.testing.assert_allclose(cnn_batch.attributions[i], one.attributions, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cnn_batch.delta[i], one.delta, atol=1e-6)


def test_ig_under_vmap_over_a_batch():
    explain = jig.keras.ig(MLP, _pick, steps=16)
    batch = jax.vmap(explain)(X_MLP)
    for i in range(2):
        np.testing.assert_allclose(batch[i], explain(X_MLP[i]), rtol=1e-5, atol=1e-7)


def test_under_jig_sharded(cnn_batch):
    """3 examples over the 8 test devices (padded and trimmed); the weights replicated."""
    res = jig.sharded(_one, in_axes=(0, 0, None))(X_CNN, CS, jig.keras.weights(CNN))
    assert res.attributions.shape == (3, 8, 8, 6)
    np.testing.assert_allclose(res.attributions, cnn_batch.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.delta, cnn_batch.delta, atol=1e-5)


# --------------------------------------------------------------------------- errors


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"jig.keras.layer_ig: layer_name must be the name of a layer of 'cnn', got 'conv3'; did you mean 'conv2'\? its layers are: 'conv1', 'bn', 'drop', 'conv2', 'pool', 'head'"):
        jig.keras.layer_ig(CNN, "conv3")
    with pytest.raises(ValueError, match=r"jig.keras.split: layer_name must be the name of a layer of 'cnn' \(the input layer is explained by jig.keras.ig\)"):
        jig.keras.split(CNN, CNN.layers[0].name)
    with pytest.raises(TypeError, match=r"jig.keras.layer_ig: layer_name must be a layer's name \(a str, as model.get_layer takes it\), got 2"):
        jig.keras.layer_ig(CNN, 2)


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"jig.keras.ig: model must be a keras.Model or keras.layers.Layer, got .* of type function; for Flax models use jig.flax"):
        jig.keras.ig(lambda x: x)
    with pytest.raises(ValueError, match=r"jig.keras.ig: model must be a built Keras model, got Sequential 'unbuilt', not built yet; call it once"):
        jig.keras.ig(keras.Sequential([keras.layers.Dense(2)], name="unbuilt"))
    with pytest.raises(TypeError, match=r"jig.keras.ig: f must be a callable output -> scalar"):
        jig.keras.ig(MLP, "logits")
    with pytest.raises(TypeError, match=r"jig.keras.ig explainer: weights must be None or jig.keras.weights\(model\)"):
        jig.keras.ig(MLP, _pick, steps=4)(X_MLP[0], weights=[1.0])
    with pytest.raises(ValueError, match=r"jig.keras.layer_ig: baseline and baseline_input must be given one at a time, got both; give either baseline"):
        jig.keras.layer_ig(MLP, "hidden", _pick, 0.0, baseline_input=jnp.zeros_like)
    with pytest.raises(ValueError, match=r"must return a scalar|must be a scalar"):
        jig.keras.ig(MLP, steps=4)(X_MLP[0])  # three outputs and no f


def test_import_jig_alone_and_another_backend_refused_with_the_fix():
    code = (
        "import os, sys, jig\n"
        "assert 'keras' not in sys.modules and 'equinox' not in sys.modules  # the extras load on first use\n"
        "os.environ['KERAS_BACKEND'] = 'torch'\n"
        "try:\n    import jig.keras\nexcept ImportError as e:\n    print(e)\n"
        "os.environ['KERAS_BACKEND'] = 'numpy'\n"
        "import keras\n"
        "try:\n    import jig.keras\nexcept ImportError as e:\n    print(e)\n"
        "assert 'jig.keras' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "jig.keras needs Keras on the JAX backend, but KERAS_BACKEND='torch'; set KERAS_BACKEND=jax before importing keras"
    assert second.startswith("jig.keras needs Keras on the JAX backend, but keras was imported with the 'numpy' backend; set KERAS_BACKEND=jax before importing keras")


# --------------------------------------------------------------------------- the example


def test_example_quick(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "keras_image.py")
    spec = importlib.util.spec_from_file_location("example_keras_image", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    assert "completeness" in capsys.readouterr().out
    import matplotlib.image

    img = matplotlib.image.imread(tmp_path / "keras_digits.png")
    assert img.ndim == 3 and min(img.shape[:2]) > 100 and img[..., :3].std() > 0.02
