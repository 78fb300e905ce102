"""Layer attribution in a Flax NNX model whose blocks run under nnx.scan and nnx.remat
(the way large text models are built): the embedding layer's attributions equal those of
the same model with its blocks unrolled, and completeness holds."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jig

L, D = 3, 8


class Block(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, h):
        return h + jnp.tanh(self.lin(h))


class Stack(nnx.Module):
    """Float inputs ``(tokens, D)`` -> L blocks (stacked weights, nnx.scan + nnx.remat) -> 2 outputs."""

    def __init__(self, rngs):
        @nnx.split_rngs(splits=L)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make(rngs):
            return Block(rngs)

        self.blocks = make(rngs)
        self.head = nnx.Linear(D, 2, rngs=rngs)

    def __call__(self, h):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        @nnx.remat
        def body(h, block):
            return block(h)

        return self.head(body(h, self.blocks).mean(0))


class Scanned(Stack):
    """Token ids -> embedding -> the scanned stack."""

    def __init__(self, rngs):
        self.embed = nnx.Embed(20, D, rngs=rngs)
        super().__init__(rngs)

    def __call__(self, ids):
        return super().__call__(self.embed(ids))


def unrolled(state, ids):
    """The same model, its blocks applied one after another with sliced weights."""
    h = state["embed"]["embedding"][...][ids]
    lin = state["blocks"]["lin"]
    for k in range(L):
        h = h + jnp.tanh(h @ lin["kernel"][...][k] + lin["bias"][...][k])
    head = state["head"]
    return h.mean(0) @ head["kernel"][...] + head["bias"][...]


def test_embedding_attribution_through_scanned_rematerialised_blocks():
    model = Scanned(nnx.Rngs(0))
    state = nnx.state(model)
    ids = jnp.array([3, 7, 1, 9])
    np.testing.assert_allclose(model(ids), unrolled(state, ids), rtol=1e-5, atol=1e-6)
    res = jig.flax.layer_ig(model, "embed", lambda y: y[1], steps=32, return_delta=True)(state, ids)
    assert abs(float(res.delta)) < 1e-4
    # the unrolled model, attributed by hand through jig.ig on the embeddings
    h = state["embed"]["embedding"][...][ids]

    def top(h, state):
        lin = state["blocks"]["lin"]
        for k in range(L):
            h = h + jnp.tanh(h @ lin["kernel"][...][k] + lin["bias"][...][k])
        return (h.mean(0) @ state["head"]["kernel"][...] + state["head"]["bias"][...])[1]

    ref = jig.ig(top, 0.0, 32)(h, state)
    np.testing.assert_allclose(res.attributions, ref, rtol=1e-4, atol=1e-6)
    # targets='all' through the scanned model too
    both = jig.flax.layer_ig(model, "embed", steps=32, targets="all")(state, ids)
    np.testing.assert_allclose(both.token_scores[1], res.token_scores, rtol=1e-4, atol=1e-6)


def test_gradient_of_block_k_attributions_in_the_stacked_weights():
    """jax.grad of IG at block 1 of the scanned stack, in the stacked weights, equals the
    gradient of the same IG written by hand on the unrolled blocks (block j's slice)."""
    model = Scanned(nnx.Rngs(0))
    state = nnx.state(model)
    ids = jnp.array([3, 7, 1, 9])
    ex = jig.flax.layer_ig(model, "blocks", lambda y: y[1], steps=8, scan_index=1)

    def by_hand(state):
        lin = state["blocks"]["lin"]
        step = lambda h, j: h + jnp.tanh(h @ lin["kernel"][...][j] + lin["bias"][...][j])  # noqa: E731
        h = step(step(state["embed"]["embedding"][...][ids], 0), 1)

        def top(h):
            h = step(h, 2)
            return (h.mean(0) @ state["head"]["kernel"][...] + state["head"]["bias"][...])[1]

        return jig.ig(top, 0.0, 8)(h).sum(-1)[0]

    np.testing.assert_allclose(ex(state, ids).token_scores[0], by_hand(state), rtol=1e-5, atol=1e-6)
    g, ref = jax.grad(lambda s: ex(s, ids).token_scores[0])(state), jax.grad(by_hand)(state)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- the example's transformer
# examples/_text.py's Transformer (issue 15 item 1), with its blocks in a list and the same
# weights stacked under nnx.scan + nnx.remat (`_text.scanned`): attribution at the embedding
# and at block k of the scanned model must equal the unrolled model's at "blocks/k".

import importlib.util  # noqa: E402
import pathlib  # noqa: E402

import flax.linen as nn  # noqa: E402
import pytest  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "jig_example__text_scan", pathlib.Path(__file__).resolve().parents[1] / "examples" / "_text.py")
_text = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_text)

LAYERS = 2
GAP = lambda logits: logits[1] - logits[0]  # noqa: E731


@pytest.fixture(scope="module")
def pair():
    table = np.random.default_rng(0).normal(0.0, 0.5, (40, 12)).astype(np.float32)
    table[_text.PAD] = 0.0
    model = _text.Transformer(table, outputs=2, dim=16, heads=2, layers=LAYERS, hidden=32, rngs=nnx.Rngs(0))
    scanned = _text.scanned(model)
    ids = jnp.array([[5, 7, 9, 12, 30, 0, 0, 0], [4, 4, 11, 0, 0, 0, 0, 0]])
    return model, scanned, ids


def test_scanned_transformer_is_the_same_function(pair):
    model, scanned, ids = pair
    assert scanned.scan and not model.scan
    assert nnx.state(scanned)["blocks"]["up"]["kernel"][...].shape[0] == LAYERS  # stacked
    run = nnx.jit(lambda m, ids, key: (m(ids), m(ids, key=key)))
    key = jax.random.key(1)  # with a key: dropout, whose keys must reach the same blocks
    for a, b in zip(run(scanned, ids, key), run(model, ids, key)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    built = _text.Transformer(np.zeros((40, 12), np.float32), outputs=2, dim=16, heads=2, layers=LAYERS,
                              hidden=32, scan=True, rngs=nnx.Rngs(0))  # built scanned
    assert nnx.state(built)["blocks"]["up"]["kernel"][...].shape == (LAYERS, 16, 32)
    assert run(built, ids, key)[1].shape == (2, 2)


@pytest.mark.parametrize("k", [0, LAYERS - 1])
def test_block_k_of_the_scanned_stack_equals_the_unrolled_block(pair, k):
    model, scanned, ids = pair
    s, ss = nnx.state(model), nnx.state(scanned)
    unrolled = jig.flax.split(model, f"blocks/{k}")
    split = jig.flax.split(scanned, "blocks", scan_index=k)
    bottom, top, ubottom, utop = map(jax.jit, (split.bottom, split.top, unrolled.bottom, unrolled.top))
    h = bottom(ss, ids[0])
    np.testing.assert_allclose(h, ubottom(s, ids[0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(top(ss, ids[0], h), model(ids[0]), rtol=1e-5, atol=1e-6)
    other = jax.random.normal(jax.random.key(k), h.shape)  # top is block k's replacement, not another's
    np.testing.assert_allclose(top(ss, ids[0], other), utop(s, ids[0], other), rtol=1e-5, atol=1e-5)
    # baseline: the block's output on the all-padding sentence (a zero output would sit on the
    # next block's LayerNorm singularity, which no quadrature integrates in a few steps)
    common = dict(baseline_input=jnp.zeros_like, return_delta=True)
    ref = jig.flax.layer_ig(model, f"blocks/{k}", GAP, steps=16, **common)(s, ids[0])
    res = jig.flax.layer_ig(scanned, "blocks", GAP, steps=16, scan_index=k, **common)(ss, ids[0])
    np.testing.assert_allclose(res.attributions, ref.attributions, rtol=1e-4, atol=1e-5)
    # completeness at block k, against the model run by hand on both ends
    gap = float(GAP(model(ids[0])) - GAP(top(ss, ids[0], bottom(ss, jnp.zeros_like(ids[0])))))
    assert float(res.attributions.sum()) == pytest.approx(gap, abs=1e-3 * max(1.0, abs(gap)))
    np.testing.assert_allclose(res.delta, ref.delta, atol=1e-5)


def test_embedding_and_sublayer_of_the_scanned_transformer(pair):
    model, scanned, ids = pair
    s, ss = nnx.state(model), nnx.state(scanned)
    for ex, exs in [
        (jig.flax.layer_ig(model, "embed", GAP, steps=16, return_delta=True),
         jig.flax.layer_ig(scanned, "embed", GAP, steps=16, return_delta=True)),
        (jig.flax.layer_ig(model, "blocks/1/attn", GAP, steps=16, return_delta=True),
         jig.flax.layer_ig(scanned, "blocks/attn", GAP, steps=16, scan_index=1, return_delta=True)),
    ]:
        a, b = ex(s, ids[0]), exs(ss, ids[0])
        np.testing.assert_allclose(b.attributions, a.attributions, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b.delta, a.delta, rtol=1e-3, atol=1e-5)


def test_scanned_block_under_vmap_and_targets(pair):
    model, scanned, ids = pair
    s, ss = nnx.state(model), nnx.state(scanned)
    ex = jig.flax.layer_ig(scanned, "blocks", GAP, steps=8, scan_index=1)
    ref = jig.flax.layer_ig(model, "blocks/1", GAP, steps=8)
    batched = jax.jit(jax.vmap(ex, in_axes=(None, 0)))(ss, ids)
    for i in range(len(ids)):
        np.testing.assert_allclose(batched.attributions[i], ref(s, ids[i]).attributions, rtol=1e-4, atol=1e-5)
    both = jig.flax.layer_ig(scanned, "blocks", steps=8, scan_index=1, targets="all")(ss, ids[0])
    one = jig.flax.layer_ig(scanned, "blocks", lambda y: y[0], steps=8, scan_index=1)(ss, ids[0])
    np.testing.assert_allclose(both.attributions[0], one.attributions, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [0, L - 1])
def test_conductance_at_a_scanned_block(k):
    model = Stack(nnx.Rngs(1))  # float inputs: conductance interpolates the input
    state = nnx.state(model)
    x = jax.random.normal(jax.random.key(2), (5, D))
    res = jig.flax.conductance(model, "blocks", GAP, steps=64, scan_index=k, return_delta=True)(state, x)
    # by hand: the unrolled stack, split after block k, conductance through jig.conductance
    lin = state["blocks"]["lin"]
    step = lambda h, j: h + jnp.tanh(h @ lin["kernel"][...][j] + lin["bias"][...][j])  # noqa: E731

    def bottom(x):
        for j in range(k + 1):
            x = step(x, j)
        return x

    def top(x, h):
        for j in range(k + 1, L):
            h = step(h, j)
        return GAP(h.mean(0) @ state["head"]["kernel"][...] + state["head"]["bias"][...])

    ref = jig.conductance.conductance(lambda p, x: bottom(x), lambda p, x, h: top(x, h), None, 0.0, 64,
                                      return_delta=True)(state, x)
    np.testing.assert_allclose(res.attributions, ref.attributions, rtol=1e-4, atol=1e-5)
    assert abs(float(res.delta)) < 1e-3


def _temp_bytes(fn, *args) -> int:
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_remat_memory_is_kept_at_a_scanned_block():
    """IG at block k of the scanned, rematerialised stack needs the memory of IG at the
    embedding of the same model (the stack's activations are recomputed, not stored), and
    far less than the unrolled model, which keeps every block's activations."""
    table = np.random.default_rng(0).normal(0.0, 0.5, (50, 16)).astype(np.float32)
    model = _text.Transformer(table, outputs=2, dim=32, heads=2, layers=4, hidden=64, rngs=nnx.Rngs(0))
    scanned = _text.scanned(model)
    s, ss = nnx.state(model), nnx.state(scanned)
    ids = jnp.array(np.random.default_rng(1).integers(4, 50, 32))
    at_embed = _temp_bytes(jig.flax.layer_ig(scanned, "embed", GAP, steps=8), ss, ids)
    at_block = _temp_bytes(jig.flax.layer_ig(scanned, "blocks", GAP, steps=8, scan_index=0), ss, ids)
    unrolled = _temp_bytes(jig.flax.layer_ig(model, "blocks/0", GAP, steps=8), s, ids)
    assert at_block <= 1.1 * at_embed
    assert at_block < 0.5 * unrolled


def test_layer_inside_nnx_remat_alone():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(4, 4, rngs=rngs)
            self.b = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x):
            return self.b(nnx.remat(lambda a, x: jnp.tanh(a(x)))(self.a, x))[0]

    model, x = Net(nnx.Rngs(0)), jnp.arange(4.0)
    state = nnx.state(model)
    split = jig.flax.split(model, "a")
    h = split.bottom(state, x)
    np.testing.assert_allclose(h, model.a(x), rtol=1e-6)
    np.testing.assert_allclose(split.top(state, x, h), model(x), rtol=1e-6)
    res = jig.flax.layer_ig(model, "a", steps=32, return_delta=True)(state, x)
    ref = jig.ig(lambda h: model.b(jnp.tanh(h))[0], 0.0, 32)(h)
    np.testing.assert_allclose(res.attributions, ref, rtol=1e-5, atol=1e-6)


def test_scan_errors_name_the_argument_and_the_fix(pair):
    model, scanned, ids = pair
    ss = nnx.state(scanned)
    with pytest.raises(ValueError, match=r"layer 'blocks' runs inside an nnx transform that slices its "
                                         r"stacked weights .*pass scan_index=k \(0 <= k < 2\)"):
        jig.flax.split(scanned, "blocks").bottom(ss, ids[0])
    with pytest.raises(ValueError, match=r"scan_index=2 but layer 'blocks' of Transformer is a stack of 2 "
                                         r"blocks; expected 0 <= scan_index < 2"):
        jig.flax.split(scanned, "blocks", scan_index=2).bottom(ss, ids[0])
    with pytest.raises(ValueError, match=r"scan_index=0 but layer 'embed' is not called inside an nnx.scan"):
        jig.flax.split(scanned, "embed", scan_index=0).top(ss, ids[0], jnp.zeros((8, 12)))
    with pytest.raises(ValueError, match=r"scan_index=0 but layer 'head' of Transformer is not a stack of blocks"):
        jig.flax.split(scanned, "head", scan_index=0).bottom(ss, ids[0])
    with pytest.raises(ValueError, match=r"scan_index must be None or a non-negative int .*got -1"):
        jig.flax.layer_ig(scanned, "blocks", GAP, scan_index=-1)
    with pytest.raises(ValueError, match=r"scan_index is for flax.nnx models"):
        jig.flax.split(nn.Dense(2), "x", scan_index=0)


def test_layers_inside_transforms_jig_cannot_reach_say_so():
    class LinenBlock(nn.Module):
        @nn.compact
        def __call__(self, h, _):
            return h + jnp.tanh(nn.Dense(4, name="lin")(h)), None

    class LinenStack(nn.Module):
        @nn.compact
        def __call__(self, x):
            scan = nn.scan(nn.remat(LinenBlock), variable_axes={"params": 0}, split_rngs={"params": True}, length=3)
            h, _ = scan(name="stack")(x, None)
            return nn.Dense(1, name="head")(h)[0]

    x = jnp.arange(4.0)
    linen = LinenStack()
    params = linen.init(jax.random.key(0), x)
    np.testing.assert_allclose(  # outside the scan: fine
        jig.flax.layer_ig(linen, "head", lambda y: y, steps=8, return_delta=True)(params, x).delta, 0.0, atol=1e-5)
    for fn in ("bottom", "top"):
        with pytest.raises(ValueError, match=r"layer 'stack/lin' is called inside a JAX transform of the model's own"):
            s = jig.flax.split(linen, "stack/lin")
            s.bottom(params, x) if fn == "bottom" else s.top(params, x, jnp.zeros(4))

    class LaxScan(nnx.Module):  # jax.lax.scan over an nnx layer (not nnx.scan)
        def __init__(self, rngs):
            self.lin = nnx.Linear(4, 4, rngs=rngs)

        def __call__(self, x):
            return jax.lax.scan(lambda h, _: (jnp.tanh(self.lin(h)), None), x, None, length=2)[0].sum()

    model = LaxScan(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"layer 'lin' is called inside a JAX transform of the model's own"):
        jig.flax.split(model, "lin").bottom(nnx.state(model), x)


def test_linen_embedding_through_scanned_rematerialised_blocks():
    """flax.linen: the embedding of a model whose blocks run under nn.scan + nn.remat."""

    class LinenBlock(nn.Module):
        @nn.compact
        def __call__(self, h, _):
            return h + jnp.tanh(nn.Dense(D, name="lin")(h)), None

    class LinenScanned(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(20, D, name="embed")(ids)
            scan = nn.scan(nn.remat(LinenBlock), variable_axes={"params": 0}, split_rngs={"params": True}, length=L)
            h, _ = scan(name="stack")(h, None)
            return nn.Dense(2, name="head")(h.mean(0))

    model, ids = LinenScanned(), jnp.array([3, 7, 1, 9])
    params = model.init(jax.random.key(0), ids)
    res = jig.flax.layer_ig(model, "embed", lambda y: y[1], steps=32, return_delta=True)(params, ids)
    p = params["params"]

    def top(h):
        for k in range(L):
            h = h + jnp.tanh(h @ p["stack"]["lin"]["kernel"][k] + p["stack"]["lin"]["bias"][k])
        return (h.mean(0) @ p["head"]["kernel"] + p["head"]["bias"])[1]

    ref = jig.ig(top, 0.0, 32)(p["embed"]["embedding"][ids])
    np.testing.assert_allclose(res.attributions, ref, rtol=1e-4, atol=1e-6)
    assert abs(float(res.delta)) < 1e-4
