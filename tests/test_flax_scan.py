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


class Scanned(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(20, D, rngs=rngs)

        @nnx.split_rngs(splits=L)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make(rngs):
            return Block(rngs)

        self.blocks = make(rngs)
        self.head = nnx.Linear(D, 2, rngs=rngs)

    def __call__(self, ids):
        h = self.embed(ids)

        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        @nnx.remat
        def body(h, block):
            return block(h)

        return self.head(body(h, self.blocks).mean(0))


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
