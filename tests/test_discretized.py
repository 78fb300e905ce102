"""Discretized IG (jig/discretized.py): the path's shape, its anchors, completeness, jit/vmap, errors."""

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig
from jig.discretized import anchor_points, discretized, knn_graph

V, D, T = 60, 6, 5


def _table(seed=0):
    return jax.random.normal(jax.random.key(seed), (V, D)).at[0].set(0.0)  # row 0: padding


def _f(h):
    """A small non-linear model of a (tokens, dim) embedding: tanh layer, pooled, scalar."""
    w = jnp.sin(jnp.arange(D * 8, dtype=h.dtype).reshape(D, 8))
    return jnp.sum(jnp.tanh(h @ w) * jnp.cos(jnp.arange(8.0)))


@pytest.mark.parametrize("strategy", ["greedy", "maxcount"])
@pytest.mark.parametrize("zero_baseline", [True, False])
def test_path_is_monotone_and_runs_from_baseline_to_input(strategy, zero_baseline):
    table = _table()
    x = table[jnp.array([3, 17, 0, 42, 8])]  # one padding token
    b = jnp.zeros((T, D)) if zero_baseline else jax.random.normal(jax.random.key(5), (T, D))
    path = discretized(table, anchors=8, strategy=strategy)
    pts = np.asarray(anchor_points(path, x, b))
    assert pts.shape == (10, T, D)
    np.testing.assert_array_equal(pts[0], np.asarray(b))
    np.testing.assert_array_equal(pts[-1], np.asarray(x))  # ends exactly at the input's embeddings
    steps = np.diff(pts, axis=0) * np.sign(np.asarray(x - b))[None]
    assert np.all(steps >= 0), "a coordinate moved away from the input"
    flat = np.asarray(x == b)
    assert np.all(np.diff(pts, axis=0)[:, flat] == 0)  # equal coordinates never move
    # the curve itself: gamma at the end of the last segment is x, at the start of the first is b
    end, _ = path.point(path.params, {"alpha": jnp.float32(1.0), "segment": jnp.int32(8)}, x, b)
    start, _ = path.point(path.params, {"alpha": jnp.float32(0.0), "segment": jnp.int32(0)}, x, b)
    np.testing.assert_allclose(end, x, atol=1e-6)
    np.testing.assert_allclose(start, b, atol=1e-6)
    if zero_baseline:  # the padding token (x == b) stays at the baseline
        assert np.all(pts[:, 2] == 0)


@pytest.mark.parametrize("strategy", ["greedy", "maxcount"])
def test_corners_are_monotonized_words_of_the_table(strategy):
    table = _table(1)
    x, b = table[jnp.array([7, 21])], jnp.zeros((2, D))
    m = 6
    pts = np.asarray(anchor_points(discretized(table, anchors=m, strategy=strategy), x, b))
    tab, bb = np.asarray(table), np.asarray(b)
    for i in range(m):  # c_{i+1} (pts[-2 - i]) comes from c_i (pts[-1 - i]) and one word a
        c, nxt = pts[-1 - i], pts[-2 - i]
        for t in range(2):
            lo, hi = np.minimum(bb[t], c[t]), np.maximum(bb[t], c[t])
            mono = (tab >= lo) & (tab <= hi)  # (V, D)
            made = np.where(mono, tab, c[t] - (c[t] - bb[t]) / m)
            match = np.flatnonzero(np.all(np.isclose(made, nxt[t], atol=1e-6), axis=1) & ~np.all(tab == bb[t], 1))
            assert match.size >= 1, f"corner {i + 1} of token {t} is no monotonized word"


def test_greedy_picks_the_neighbour_closest_to_its_monotonized_point():
    # 1-D: from x = 4 towards b = 0, candidates 3 (monotonic, distance 0) and 5 (not) and 1
    table = jnp.array([[0.0], [4.0], [3.0], [5.0], [1.0]])
    pts = anchor_points(discretized(table, anchors=1, neighbours=3), table[1], jnp.zeros(1))
    assert pts[:, 0].tolist() == [0.0, 3.0, 4.0]
    # maxcount in 2-D: word [3, -1] has one monotonic coordinate, [3.5, 1] two
    table = jnp.array([[0.0, 0.0], [4.0, 2.0], [3.0, -1.0], [3.5, 1.0]])
    pts = anchor_points(discretized(table, anchors=2, strategy="maxcount", neighbours=2), table[1], jnp.zeros(2))
    np.testing.assert_allclose(pts[2], [3.5, 1.0])


def test_completeness_and_the_papers_left_riemann_estimator():
    table = _table(2)
    x, b = table[jnp.array([5, 9, 33, 12, 0])], jnp.zeros((T, D))
    path = discretized(table, anchors=10)
    A, delta = jig.ig(_f, b, 8, path=path, return_delta=True)(x)
    gap = _f(x) - _f(b)
    assert abs(float(gap)) > 0.1 and abs(float(delta)) < 1e-4 * max(1.0, abs(float(gap)))
    assert A.shape == x.shape and np.all(np.asarray(A[4]) == 0)  # the padding token gets nothing
    # rule riemann_left with one node per segment is the paper's sum of grad(p_k) . (p_{k+1} - p_k)
    pts = anchor_points(path, x, b)
    manual = jnp.sum(jax.vmap(jax.grad(_f))(pts[:-1]) * jnp.diff(pts, axis=0), axis=0)
    left = jig.ig(_f, b, 1, path=path, rule="riemann_left")(x)
    np.testing.assert_allclose(left, manual, rtol=1e-5, atol=1e-6)


def test_knn_graph_matches_brute_force_and_gives_the_same_path():
    table = _table(3)
    g = np.asarray(knn_graph(table, 7, block=16))  # blocks overlap at the end (60 = 3*16 + 12)
    d = ((np.asarray(table)[:, None] - np.asarray(table)[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(g, np.argsort(d, axis=1, kind="stable")[:, :7])
    x, b = table[jnp.array([4, 11, 29, 50, 6])], jnp.zeros((T, D))
    with_graph = anchor_points(discretized(table, 6, neighbours=7, graph=g), x, b)
    searched = anchor_points(discretized(table, 6, neighbours=7), x, b)
    np.testing.assert_allclose(with_graph, searched, atol=1e-6)


def test_jit_vmap_and_a_traced_table():
    table = _table(4)
    ids = jnp.array([[3, 8, 15, 0, 0], [22, 4, 9, 31, 2]])
    xs = table[ids]
    path = discretized(table, anchors=5)
    explain = jig.ig(_f, 0.0, 4, path=path)
    batched = jax.jit(jax.vmap(explain))(xs)
    for i in range(2):
        np.testing.assert_allclose(batched[i], explain(xs[i]), rtol=1e-5, atol=1e-6)

    @jax.jit
    def with_table(tab, ids):  # the table as a traced argument: anchors follow it
        return jig.ig(_f, 0.0, 4, path=discretized(tab, anchors=5))(tab[ids])

    np.testing.assert_allclose(with_table(table, ids[1]), explain(xs[1]), rtol=1e-5, atol=1e-6)
    other = with_table(2.0 * table, ids[1])
    assert not np.allclose(other, explain(xs[1]))


def test_through_a_flax_embedding_layer():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.embed = nnx.Embed(V, D, rngs=rngs)
            self.head = nnx.Linear(D, 2, rngs=rngs)

        def __call__(self, ids):
            return self.head(jnp.tanh(self.embed(ids)).sum(0))

    model = Net(nnx.Rngs(0))
    model.embed.embedding[...] = model.embed.embedding[...].at[0].set(0.0)
    ids = jnp.array([5, 17, 2, 0])
    path = discretized(model.embed.embedding[...], anchors=8)
    explain = jig.flax.layer_ig(model, "embed", lambda y: y[1] - y[0], steps=4, path=path,
                                baseline_input=jnp.zeros_like, return_delta=True)
    res = explain(nnx.state(model), ids)
    assert res.token_scores.shape == (4,) and float(res.token_scores[3]) == 0.0
    assert abs(float(res.delta)) < 1e-4


def test_errors_name_the_argument():
    table = _table()
    with pytest.raises(ValueError, match=r"jig.paths.discretized: strategy must be one of \['greedy', 'maxcount'\]"):
        discretized(table, strategy="nearest")
    with pytest.raises(ValueError, match="jig.paths.discretized: anchors must be an int >= 1, got 0"):
        discretized(table, anchors=0)
    with pytest.raises(ValueError, match=r"jig.paths.discretized: table must be a float array of shape \(vocabulary, dim\)"):
        discretized(jnp.zeros(5))
    with pytest.raises(ValueError, match=r"graph must be an int array of shape \(60, neighbours\)"):
        discretized(table, graph=jnp.zeros((3, 2), jnp.int32))
    with pytest.raises(ValueError, match="last axis of size 6"):
        jig.ig(lambda h: jnp.sum(h ** 2), 0.0, 2, path=discretized(table))(jnp.ones((T, 4)))
    with pytest.raises(TypeError, match="anchor_points: path must be a path made by discretized"):
        anchor_points(jig.paths.straight(), table[:2], jnp.zeros((2, D)))
