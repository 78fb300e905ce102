"""jig.flax: layer attribution for linen and nnx models, checked against hand-split models."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import jig

V, D, C, T = 12, 5, 3, 6  # vocabulary, embedding width, classes, tokens
STEPS = 32
IDS = jnp.array([[3, 1, 4, 1, 5, 0], [2, 7, 1, 8, 2, 8], [11, 0, 0, 9, 6, 10]])
CLASSES = jnp.array([0, 2, 1])


# --------------------------------------------------------------------------- models


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, ids):
        h = nn.Embed(V, D, name="embed")(ids)
        z = jnp.tanh(nn.Dense(D, name="mix")(h))
        return nn.Dense(C, name="head")(z.mean(axis=-2))


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(V, D, rngs=rngs)
        self.mix = nnx.Linear(D, D, rngs=rngs)
        self.head = nnx.Linear(D, C, rngs=rngs)

    def __call__(self, ids):
        z = jnp.tanh(self.mix(self.embed(ids)))
        return self.head(z.mean(axis=-2))


def _top_by_hand(w, h):
    """The model above the embedding, written out: the same math for both models."""
    z = jnp.tanh(h @ w["mix_k"] + w["mix_b"])
    return z.mean(axis=-2) @ w["head_k"] + w["head_b"]


def _linen_weights(params):
    p = params["params"]
    return dict(emb=p["embed"]["embedding"], mix_k=p["mix"]["kernel"], mix_b=p["mix"]["bias"],
                head_k=p["head"]["kernel"], head_b=p["head"]["bias"])


def _nnx_weights(model):
    return dict(emb=model.embed.embedding[...], mix_k=model.mix.kernel[...], mix_b=model.mix.bias[...],
                head_k=model.head.kernel[...], head_b=model.head.bias[...])


def _numpy_fill(tree, seed):
    """Random values (biases too, which Flax zero-initialises) for abstract arrays, drawn
    with NumPy: no JAX random-number kernels to compile in the tests."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(0.5 * rng.standard_normal(a.shape), a.dtype), tree)


def _linen_params(model, seed=0):
    return _numpy_fill(jax.eval_shape(model.init, jax.random.key(0), IDS[0]), seed)


def _nnx_model(cls, seed=0):
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: cls(nnx.Rngs(0))))
    return nnx.merge(graphdef, _numpy_fill(abstract, seed))


@pytest.fixture(scope="module")
def linen():
    model = LinenNet()
    params = _linen_params(model)
    return model, params, _linen_weights(params)


@pytest.fixture(scope="module")
def nnx_model():
    model = _nnx_model(NnxNet, seed=1)
    return model, nnx.state(model), _nnx_weights(model)




def _hand_ig(w, ids, c, hb):
    """IG of the hand-split model: jig.ig over h with the hand-written top."""
    h = w["emb"][ids]
    return jig.ig(lambda h, w: _top_by_hand(w, h)[c], hb, STEPS, return_delta=True)(h, w)


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("kind", ["linen", "nnx"])
def test_split_matches_the_hand_split(kind, linen, nnx_model):
    model, params, w = linen if kind == "linen" else nnx_model
    s = jig.flax.split(model, "embed")
    assert s.layer == "embed"
    ids = IDS[0]
    np.testing.assert_allclose(s.bottom(params, ids), w["emb"][ids], rtol=1e-6)
    h = jnp.asarray(np.random.default_rng(3).standard_normal((T, D)), jnp.float32)
    np.testing.assert_allclose(s.top(params, ids, h), _top_by_hand(w, h), rtol=1e-5, atol=1e-6)
    # top at bottom's output is the model itself
    full = model.apply(params, ids) if kind == "linen" else model(ids)
    np.testing.assert_allclose(s.top(params, ids, s.bottom(params, ids)), full, rtol=1e-5, atol=1e-6)


def test_nnx_split_accepts_the_model_and_leaves_it_untouched(nnx_model):
    model, state, w = nnx_model
    s = jig.flax.split(model, ("embed",))
    h = jnp.ones((T, D))
    np.testing.assert_allclose(s.top(model, IDS[0], h), s.top(state, IDS[0], h), rtol=1e-6)
    assert type(model.embed) is nnx.Embed  # the tap works on a merged copy only
    np.testing.assert_allclose(model(IDS[0]), _top_by_hand(w, w["emb"][IDS[0]]), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- layer IG


def _one(model, ids, c, params):
    """Layer IG of one sentence for class ``c`` (a closure on ``c``, vmap-able over it)."""
    explain = jig.flax.layer_ig(model, "embed", lambda y: y[c], steps=STEPS,
                                baseline_input=jnp.zeros_like, return_delta=True)
    return explain(params, ids)


def _layer_ig_batch(model, params):
    """Layer IG of a batch of sentences, one class each."""
    one = functools.partial(_one, model, params=params)
    return one, jax.jit(jax.vmap(one))(IDS, CLASSES)


@pytest.fixture(scope="module")
def linen_batch(linen):
    return _layer_ig_batch(*linen[:2])


@pytest.mark.parametrize("kind", ["linen", "nnx"])
def test_layer_ig_equals_ig_of_the_hand_split_model(kind, linen, nnx_model, linen_batch):
    model, params, w = linen if kind == "linen" else nnx_model
    hb = w["emb"][jnp.zeros(T, int)]  # the pad token's embedding
    _, res = linen_batch if kind == "linen" else _layer_ig_batch(model, params)
    A, delta = jax.vmap(lambda ids, c: _hand_ig(w, ids, c, hb))(IDS, CLASSES)
    assert res.attributions.shape == (3, T, D) and res.token_scores.shape == (3, T)
    np.testing.assert_allclose(res.attributions, A, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.delta, delta, atol=1e-5)


@pytest.fixture(scope="module")
def linen_explainer(linen):
    """One compilation for every class: the class is a traced argument of the closure."""
    model, _, _ = linen
    return jax.jit(lambda params, ids, c: _one(model, ids, c, params))


@functools.partial(jax.jit, static_argnums=0)
def _model_and_baseline_outputs(model, params, ids):
    s = jig.flax.split(model, "embed")
    return model.apply(params, ids), s.top(params, ids, s.bottom(params, jnp.zeros_like(ids)))


@settings(max_examples=8)
@given(ids=st.lists(st.integers(0, V - 1), min_size=T, max_size=T), c=st.integers(0, C - 1))
def test_completeness_and_token_sums_at_the_layer(linen, linen_explainer, ids, c):
    model, params, w = linen
    ids = jnp.array(ids)
    res = linen_explainer(params, ids, c)
    f_x, f_b = _model_and_baseline_outputs(model, params, ids)
    f_x, f_b = f_x[c], f_b[c]
    total = jnp.sum(res.attributions)
    assert abs(float(total - (f_x - f_b))) < 1e-4
    assert abs(float(res.delta)) < 1e-4
    # per-token scores are the sums over the embedding axis, and add up to the total
    np.testing.assert_allclose(res.token_scores, res.attributions.sum(-1), rtol=1e-6)
    assert res.token_scores.shape == (T,)
    assert abs(float(jnp.sum(res.token_scores) - total)) < 1e-5
    # a pad token equals the baseline at its position: h_x - h_b = 0 there, exactly
    np.testing.assert_array_equal(res.token_scores[np.asarray(ids) == 0], 0.0)


def test_given_baseline_array_and_scalar(linen):
    model, params, w = linen
    ids, hb = IDS[1], jnp.full((T, D), 0.25)
    A_hand, _ = _hand_ig(w, ids, 2, hb)
    arr = jig.flax.layer_ig(model, "embed", lambda y: y[2], hb, STEPS)(params, ids)
    scalar = jig.flax.layer_ig(model, "embed", lambda y: y[2], 0.25, STEPS)(params, ids)
    np.testing.assert_allclose(arr.attributions, A_hand, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scalar.attributions, A_hand, rtol=1e-4, atol=1e-6)
    assert arr.delta is None


def test_rule_and_chunk_size_pass_through(nnx_model):
    model, state, w = nnx_model
    ids = IDS[2]
    ref = jig.flax.layer_ig(model, "embed", lambda y: y[1], steps=12, rule="riemann_middle")(state, ids)
    chunked = jig.flax.layer_ig(model, "embed", lambda y: y[1], steps=12, rule="riemann_middle",
                                chunk_size=5)(state, ids)
    hand = jig.ig(lambda h, w: _top_by_hand(w, h)[1], 0.0, 12, rule="riemann_middle")(w["emb"][ids], w)
    np.testing.assert_allclose(ref.attributions, hand, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(chunked.attributions, ref.attributions, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- jit / vmap


def test_jit_vmap_over_sentences_and_classes_equals_one_at_a_time(linen_batch):
    one, batch = linen_batch
    single = one(IDS[1], int(CLASSES[1]))  # eager, no vmap, no outer jit
    np.testing.assert_allclose(batch.attributions[1], single.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(batch.token_scores[1], single.token_scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(batch.delta[1], single.delta, atol=1e-5)


def test_split_under_jit_and_vmap_with_params_as_arguments(linen):
    model, params, w = linen
    s = jig.flax.split(model, "embed")
    hs = jax.jit(jax.vmap(s.bottom, in_axes=(None, 0)))(params, IDS)
    np.testing.assert_allclose(hs, w["emb"][IDS], rtol=1e-6)
    out = jax.jit(jax.vmap(s.top, in_axes=(None, 0, 0)))(params, IDS, hs)
    np.testing.assert_allclose(out, jax.vmap(model.apply, in_axes=(None, 0))(params, IDS), rtol=1e-5, atol=1e-6)
    # the parameters are real arguments: the compiled function has no large constants
    text = jax.jit(s.top).lower(params, IDS[0], hs[0]).as_text()
    assert "dense<" not in text or text.count("dense<") < 3


# --------------------------------------------------------------------------- repeated layers


class LinenTwice(nn.Module):
    def setup(self):
        self.embed = nn.Embed(V, D)
        self.block = nn.Dense(D)
        self.head = nn.Dense(1)

    def __call__(self, ids):
        h = jnp.tanh(self.block(self.embed(ids)))
        h = jnp.tanh(self.block(h))  # the same layer, a second time
        return self.head(h.sum(0))[0]


class NnxTwice(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(V, D, rngs=rngs)
        self.block = nnx.Linear(D, D, rngs=rngs)
        self.head = nnx.Linear(D, 1, rngs=rngs)

    def __call__(self, ids):
        h = jnp.tanh(self.block(self.embed(ids)))
        h = jnp.tanh(self.block(h))
        return self.head(h.sum(0))[0]


@pytest.mark.parametrize("kind", ["linen", "nnx"])
def test_repeated_layer_needs_call_index(kind):
    if kind == "linen":
        model = LinenTwice()
        params = _linen_params(model)
        p = params["params"]
        k, b, hk, hb = p["block"]["kernel"], p["block"]["bias"], p["head"]["kernel"], p["head"]["bias"]
        emb = p["embed"]["embedding"]
    else:
        model = _nnx_model(NnxTwice)
        params = nnx.state(model)
        k, b = model.block.kernel[...], model.block.bias[...]
        hk, hb, emb = model.head.kernel[...], model.head.bias[...], model.embed.embedding[...]
    ids = IDS[0]
    s = jig.flax.split(model, "block")
    with pytest.raises(ValueError, match=r"layer 'block' .* is called 2 times .* pass call_index=i \(0 <= i < 2"):
        s.bottom(params, ids)
    with pytest.raises(ValueError, match="called 2 times"):
        jig.flax.layer_ig(model, "block", steps=4)(params, ids)
    with pytest.raises(ValueError, match=r"call_index=2 but layer 'block' .* expected 0 <= call_index < 2"):
        jig.flax.split(model, "block", call_index=2).bottom(params, ids)
    # call_index=1 is the second call: its input is tanh(block(embed(ids)))
    first = emb[ids] @ k + b
    second = jnp.tanh(first) @ k + b
    s0, s1 = jig.flax.split(model, "block", call_index=0), jig.flax.split(model, "block", call_index=1)
    np.testing.assert_allclose(s0.bottom(params, ids), first, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s1.bottom(params, ids), second, rtol=1e-5, atol=1e-6)
    h = jnp.asarray(np.random.default_rng(4).standard_normal((T, D)), jnp.float32)
    np.testing.assert_allclose(s1.top(params, ids, h), (jnp.tanh(h).sum(0) @ hk + hb)[0], rtol=1e-5, atol=1e-6)
    A = jig.flax.layer_ig(model, "block", call_index=1, steps=16)(params, ids).attributions
    A_hand = jig.ig(lambda h: (jnp.tanh(h).sum(0) @ hk + hb)[0], 0.0, 16)(second)
    np.testing.assert_allclose(A, A_hand, rtol=1e-4, atol=1e-6)


class NnxAliased(nnx.Module):
    """One Linear under two attribute names (``block`` and ``again``), called twice."""

    def __init__(self, rngs):
        self.embed = nnx.Embed(V, D, rngs=rngs)
        self.block = nnx.Linear(D, D, rngs=rngs)
        self.again = self.block
        self.head = nnx.Linear(D, 1, rngs=rngs)

    def __call__(self, ids):
        h = jnp.tanh(self.block(self.embed(ids)))
        return self.head(jnp.tanh(self.again(h)).sum(0))[0]


def test_nnx_shared_module_is_one_layer_under_every_name():
    model = _nnx_model(NnxAliased)
    state, ids = nnx.state(model), IDS[0]
    assert jig.flax.layer_names(model, state, ids) == {"embed": 1, "again": 2, "head": 1}
    with pytest.raises(ValueError, match=r"layer 'block' \(the same module as 'again'\) .* called 2 times"):
        jig.flax.split(model, "block").bottom(state, ids)
    first = jnp.tanh(model.embed(ids) @ model.block.kernel[...] + model.block.bias[...])
    by_alias = jig.flax.split(model, "block", call_index=1)
    np.testing.assert_allclose(by_alias.bottom(state, ids), first @ model.block.kernel[...] + model.block.bias[...],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_alias.bottom(state, ids),
                               jig.flax.split(model, "again", call_index=1).bottom(state, ids), rtol=1e-6)


# --------------------------------------------------------------------------- errors


def test_unknown_layer_lists_the_available_ones(linen, nnx_model):
    model, params, _ = linen
    s = jig.flax.split(model, "embedding")
    with pytest.raises(ValueError, match=r"no layer named 'embedding' is called in LinenNet\. "
                       r"Did you mean 'embed'\?.*'embed', 'mix', 'head'"):
        s.bottom(params, IDS[0])
    with pytest.raises(ValueError, match="no layer named 'embedding'"):
        jig.flax.layer_ig(model, "embedding", lambda y: y[0], steps=4)(params, IDS[0])
    # nnx models know their layers without running: the error comes at split time
    with pytest.raises(ValueError, match=r"no layer named 'emb' exists in NnxNet.*'embed', 'head', 'mix'"):
        jig.flax.split(nnx_model[0], "emb")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        jig.flax.layer_ig(nnx_model[0], "nope")


def test_layer_names_in_call_order(linen, nnx_model):
    model, params, _ = linen
    assert jig.flax.layer_names(model, params, IDS[0]) == {"embed": 1, "mix": 1, "head": 1}
    m2 = LinenTwice()
    assert jig.flax.layer_names(m2, _linen_params(m2), IDS[0]) == {"embed": 1, "block": 2, "head": 1}
    model, state, _ = nnx_model
    assert jig.flax.layer_names(model, state, IDS[0]) == {"embed": 1, "mix": 1, "head": 1}


def test_bad_arguments(linen):
    model, params, _ = linen
    with pytest.raises(TypeError, match="model must be a flax.linen.Module or a flax.nnx.Module"):
        jig.flax.split(lambda x: x, "embed")
    with pytest.raises(TypeError, match="layer must be the layer's path"):
        jig.flax.split(model, "")
    with pytest.raises(ValueError, match="call_index must be None or a non-negative int"):
        jig.flax.split(model, "embed", call_index=-1)
    with pytest.raises(ValueError, match="either baseline .* or baseline_input"):
        jig.flax.layer_ig(model, "embed", lambda y: y[0], 0.0, baseline_input=jnp.zeros_like)
    with pytest.raises(ValueError, match="steps"):
        jig.flax.layer_ig(model, "embed", lambda y: y[0], steps=0)
    with pytest.raises(ValueError, match="rule"):
        jig.flax.layer_ig(model, "embed", lambda y: y[0], rule="simpson")
    with pytest.raises(TypeError, match="f must be None or a callable"):
        jig.flax.layer_ig(model, "embed", 3)
    with pytest.raises(ValueError, match=r"must be a scalar, got shape \(3,\); pass f to pick one"):
        jig.flax.layer_ig(model, "embed", steps=4)(params, IDS[0])
    with pytest.raises(ValueError, match="baseline_input gives a layer output of shape"):
        jig.flax.layer_ig(model, "embed", lambda y: y[0], steps=4, baseline_input=jnp.zeros(3, int))(params, IDS[0])


def test_jig_flax_does_not_shadow_the_flax_package():
    import flax as real_flax

    assert real_flax.__name__ == "flax" and hasattr(real_flax, "linen") and hasattr(real_flax, "nnx")
    assert jig.flax.__name__ == "jig.flax" and jig.flax is not real_flax
    assert jig.flax.nn is real_flax.linen and jig.flax.nnx is real_flax.nnx


def test_layer_ig_under_jig_sharded(linen, linen_batch):
    """A batch of sentences split across the 8 test devices (3 rows: padded and trimmed)."""
    model, params, _ = linen
    _, batch = linen_batch
    explain = jig.sharded(functools.partial(_one, model), in_axes=(0, 0, None))
    res = explain(IDS, CLASSES, params)
    assert res.attributions.shape == (3, T, D)
    np.testing.assert_allclose(res.attributions, batch.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.token_scores, batch.token_scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.delta, batch.delta, atol=1e-5)

