"""Discretized Integrated Gradients (Sanyal and Ren, 2021): a path through real word embeddings.

IG on a text model integrates along the straight line from a baseline embedding (say the
padding token's) to each token's embedding; the points in between are not embeddings of
any word, and the model may never have seen anything like them. DIG instead walks
through *anchors*: words of the model's own embedding table near the input word,
each moved ("monotonized") just enough that every coordinate of the path moves
monotonically from the baseline to the input. The path is piecewise linear:

    baseline = c_m+1,  c_m, ..., c_1,  c_0 = x          (per token, in embedding space)

with ``c_{i+1}`` built from the previous point ``c_i``:

1. anchor search: among the ``neighbours`` nearest words of the current anchor word (at
   the start, the word nearest to ``x``; the baseline's word and words already on the
   path are excluded), pick

   * ``"greedy"``: the word ``a`` closest to its own monotonized point ``M(a)``;
   * ``"maxcount"``: the word with the most monotonic coordinates
     (``b_j <= a_j <= c_ij`` or ``c_ij <= a_j <= b_j``);

2. monotonize: ``c_{i+1} = M(a)``: coordinates of ``a`` between ``b`` and ``c_i`` are kept,
   each other coordinate moves a ``1/anchors`` share of the way from ``c_i`` towards ``b``.

So each coordinate of ``c_{i+1}`` lies between ``b`` and ``c_i``, and the path is monotone.
The last segment joins ``c_m`` to the baseline. Tokens equal to the baseline (padding) stay
put. The attribution sums the integral over each of the ``anchors + 1`` segments, each with
the rule's ``steps`` nodes, so it costs ``(anchors + 1) * steps`` gradients and completeness
holds as for any path (``Σ A = F(x) - F(baseline)``). The paper's estimator, one gradient
at the start of each segment, is ``rule="riemann_left", steps=1``; Gauss-Legendre nodes per
segment make the delta small with a few nodes each.

The anchors are computed from ``x``, the baseline and the table inside the path, in JAX (a
``lax.scan`` over the anchors): the path works under ``jit`` and ``vmap``, the table is a
traced argument (not a constant folded into the compiled code), and anchors do not depend
on the node, so under the core's ``vmap`` over nodes they are computed once per call.

Example:
  >>> import jax, jax.numpy as jnp, jig
  >>> from jig.discretized import discretized, anchor_points
  >>> table = jax.random.normal(jax.random.key(0), (50, 4)).at[0].set(0.0)  # row 0: padding
  >>> x, b = table[jnp.array([3, 7])], jnp.zeros((2, 4))     # two tokens, pad baseline
  >>> path = discretized(table, anchors=6)
  >>> pts = anchor_points(path, x, b)                          # (anchors + 2, tokens, dim)
  >>> pts.shape, bool(jnp.all(pts[0] == b)), bool(jnp.all(pts[-1] == x))
  ((8, 2, 4), True, True)
  >>> f = lambda h: jnp.sum(jnp.tanh(h @ jnp.ones(4)))
  >>> A, delta = jig.ig(f, b, 4, path=path, return_delta=True)(x)
  >>> A.shape, bool(abs(delta) < 1e-4)
  ((2, 4), True)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks
from jig.paths import Path

__all__ = ["discretized", "anchor_points", "knn_graph", "STRATEGIES"]

STRATEGIES = ("greedy", "maxcount")
_CALLER = "jig.paths.discretized"


class _Config(NamedTuple):
    anchors: int
    strategy: str
    neighbours: int


# --------------------------------------------------------------------------- nearest words


def _sq_dist(points, table):
    """``(R, V)`` squared distances of rows ``points (R, D)`` to every table row."""
    return (jnp.sum(points * points, -1)[:, None] - 2.0 * points @ table.T + jnp.sum(table * table, -1)[None, :])


def knn_graph(table, neighbours: int = 64, *, block: int = 2048) -> jax.Array:
    """The ``neighbours`` nearest words of every word (Euclidean), ``(V, neighbours)`` int32.

    Precompute it once for a table and pass it as ``discretized(table, graph=...)``: the
    path then looks neighbours up instead of searching the whole table at every anchor.
    A word is not its own neighbour (ties with duplicates of a row may include them).

    Example:
      >>> import jax.numpy as jnp
      >>> from jig.discretized import knn_graph
      >>> table = jnp.array([[0.0], [1.0], [3.0], [3.5]])
      >>> knn_graph(table, 2).tolist()
      [[1, 2], [0, 2], [3, 1], [2, 1]]
    """
    table = jnp.asarray(table)
    if table.ndim != 2:
        raise _checks.fail("jig.discretized.knn_graph", "table", "a (vocabulary, dim) array", table)
    v = table.shape[0]
    neighbours = _checks.positive_int("jig.discretized.knn_graph", "neighbours", neighbours)
    if neighbours >= v:
        raise _checks.fail("jig.discretized.knn_graph", "neighbours", f"an int < the vocabulary size {v}",
                           str(neighbours), raw=True)

    @jax.jit
    def rows(start):
        pts = jax.lax.dynamic_slice_in_dim(table, start, block)
        d = _sq_dist(pts, table).at[jnp.arange(block), start + jnp.arange(block)].set(jnp.inf)
        return jax.lax.top_k(-d, neighbours)[1].astype(jnp.int32)

    if v < block:
        block = v
    starts = list(range(0, v - block + 1, block))
    if starts[-1] + block < v:
        starts.append(v - block)  # the last block overlaps the one before it
    out = np.zeros((v, neighbours), np.int32)
    for s in starts:
        out[s : s + block] = np.asarray(rows(s))
    return jnp.asarray(out)


# --------------------------------------------------------------------------- anchors


def _monotonic(a, b, c):
    """Per coordinate: does ``a`` lie between the baseline ``b`` and the point ``c`` (inclusive)?"""
    return (a >= jnp.minimum(b, c)) & (a <= jnp.maximum(b, c))


def _monotonize(a, b, c, anchors: int):
    """``a`` with its non-monotonic coordinates moved to ``c - (c - b) / anchors``."""
    return jnp.where(_monotonic(a, b, c), a, c - (c - b) / anchors)


def _token_path(config: _Config, table, graph, x, b):
    """Points ``(anchors + 2, D)`` from ``b`` to ``x`` for one token."""
    m, k = config.anchors, config.neighbours
    is_base = jnp.all(table == b[None, :], axis=-1)  # (V,): the baseline's own word(s)
    start = jnp.argmin(_sq_dist(x[None, :], table)[0])

    def candidates(word):
        if graph is not None:
            return graph[word]
        d = _sq_dist(table[word][None, :], table)[0].at[word].set(jnp.inf)
        return jax.lax.top_k(-d, k)[1]

    def step(carry, _):
        word, c, visited, done = carry
        ids = candidates(word)  # (k,)
        a = table[ids]  # (k, D)
        if config.strategy == "greedy":
            score = jnp.sum((a - _monotonize(a, b[None], c[None], m)) ** 2, axis=-1)
        else:  # maxcount: fewest non-monotonic coordinates
            score = -jnp.sum(_monotonic(a, b[None], c[None]), axis=-1).astype(a.dtype)
        banned = is_base[ids] | jnp.any(ids[:, None] == visited[None, :], axis=-1)
        score = jnp.where(banned, jnp.inf, score)
        best = jnp.argmin(score)
        done = done | jnp.isinf(score[best])  # nothing left to walk to: go to the baseline
        nxt = jnp.where(done, b, _monotonize(a[best], b, c, m))
        new_word = jnp.where(done, word, ids[best])
        visited = jnp.where(jnp.arange(m + 1) == jnp.sum(visited >= 0), new_word, visited)
        return (new_word, nxt, visited, done), nxt

    visited = jnp.full((m + 1,), -1, jnp.int32).at[0].set(start.astype(jnp.int32))
    init = (start.astype(jnp.int32), x, visited, jnp.asarray(False))
    _, cs = jax.lax.scan(step, init, None, length=m)  # c_1 .. c_m
    pts = jnp.concatenate([b[None], cs[::-1], x[None]], axis=0)
    still = jnp.all(x == b)  # padding (or any token equal to the baseline) stays at the baseline
    return jnp.where(still, b[None], pts)


def _points(config: _Config, params, x, baseline):
    """``(anchors + 2, *x.shape)``: the path's corners, baseline first, ``x`` last."""
    table, graph = params["table"], params["graph"]
    x = jnp.asarray(x)
    d = table.shape[-1]
    if x.ndim < 1 or x.shape[-1] != d:
        raise _checks.fail(_CALLER, "the attributed input", f"embeddings with a last axis of size {d} "
                           "(the table's width)", f"shape {tuple(x.shape)}", raw=True,
                           fix="attribute to the embedding layer's output, e.g. with jig.flax.layer_ig")
    b = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
    rows_x, rows_b = x.reshape(-1, d), b.reshape(-1, d)
    table = table.astype(x.dtype)
    pts = jax.vmap(lambda xr, br: _token_path(config, table, graph, xr, br), out_axes=1)(rows_x, rows_b)
    return pts.reshape((config.anchors + 2,) + x.shape)


# --------------------------------------------------------------------------- the Path


def _nodes(config: _Config, params, x, baseline, alphas, weights):
    del params, x, baseline
    segments = config.anchors + 1
    n = alphas.shape[0]
    segment = jnp.repeat(jnp.arange(segments, dtype=jnp.int32), n)
    return {"alpha": jnp.tile(alphas, segments), "segment": segment}, jnp.tile(weights, segments) / segments


def _point(config: _Config, params, node, x, baseline):
    pts = _points(config, params, x, baseline)
    k, a = node["segment"], node["alpha"]
    lo, hi = pts[k], pts[k + 1]
    velocity = (config.anchors + 1) * (hi - lo)  # the segment's share of alpha is 1 / (anchors + 1)
    return lo + a.astype(lo.dtype) * (hi - lo), velocity


def _starts(config: _Config, params, x, baseline):
    del config, params
    return jnp.broadcast_to(jnp.asarray(baseline, jnp.asarray(x).dtype), jnp.shape(x))[None]


class _Bound(NamedTuple):
    """``fn`` with its static configuration bound; hashable, compared by value."""

    fn: Any
    config: _Config

    def __call__(self, *rest):
        return self.fn(self.config, *rest)


def discretized(table, anchors: int = 16, *, strategy: str = "greedy", neighbours: int = 64,
                graph: Any = None) -> Path:
    """Discretized IG's path (Sanyal and Ren, 2021) through the words of an embedding table.

    Use it on embeddings (the output of a model's token embedding layer, e.g. through
    ``jig.flax.layer_ig(..., path=discretized(table))``), with a baseline that is an
    embedding too (the padding token's, ``baseline_input=jnp.zeros_like`` for pad id 0).
    For each token the path runs from the baseline through ``anchors`` monotonized
    neighbouring words to the token's embedding (see the module docstring); every
    coordinate moves monotonically, and the path ends exactly at the input.

    Args:
      table: the model's embedding table ``(vocabulary, dim)`` (e.g.
        ``model.embed.embedding.value``). It is passed to the compiled explainer as an
        argument: a new table of the same shape does not recompile.
      anchors: the number of anchor words per token (the paper's ``steps``, 30 there);
        the path has ``anchors + 1`` straight segments.
      strategy: ``"greedy"`` (the neighbour closest to its monotonized point) or
        ``"maxcount"`` (the neighbour with the most monotonic coordinates).
      neighbours: how many nearest words of the current anchor word are candidates
        (at most the vocabulary size - 1; a larger value means every other word).
      graph: optional ``(vocabulary, neighbours)`` int array of precomputed nearest
        words (:func:`knn_graph`); without it each anchor step searches the whole table
        (cost ``vocabulary x dim`` per token and anchor).

    Returns:
      A :class:`jig.paths.Path` for ``jig.ig(f, baseline, steps, path=...)``: each of the
      ``anchors + 1`` segments gets the rule's ``steps`` nodes.

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> from jig.discretized import discretized
      >>> table = jax.random.normal(jax.random.key(1), (30, 3)).at[0].set(0.0)
      >>> w = jnp.array([1.0, -2.0, 0.5])
      >>> x = table[jnp.array([4, 9])]                            # two tokens' embeddings
      >>> A = jig.ig(lambda h: jnp.sum(h @ w), 0.0, 2, path=discretized(table, 5))(x)
      >>> bool(jnp.allclose(A, x * w, atol=1e-5))                 # linear f: any path gives w * (x - b)
      True
    """
    table = jnp.asarray(table)
    if table.ndim != 2 or not jnp.issubdtype(table.dtype, jnp.floating):
        raise _checks.fail(_CALLER, "table", "a float array of shape (vocabulary, dim)", table,
                           "pass the embedding layer's table, e.g. model.embed.embedding.value")
    anchors = _checks.positive_int(_CALLER, "anchors", anchors)
    strategy = _checks.one_of(_CALLER, "strategy", strategy, STRATEGIES)
    neighbours = _checks.positive_int(_CALLER, "neighbours", neighbours)
    if graph is not None:
        graph = jnp.asarray(graph)
        if graph.ndim != 2 or graph.shape[0] != table.shape[0] or not jnp.issubdtype(graph.dtype, jnp.integer):
            raise _checks.fail(_CALLER, "graph", f"an int array of shape ({table.shape[0]}, neighbours)", graph,
                               "make one with jig.discretized.knn_graph(table, neighbours)")
        neighbours = int(graph.shape[1])
    elif table.shape[0] < 2:
        raise _checks.fail(_CALLER, "table", "a table of at least 2 words", table)
    else:
        neighbours = min(neighbours, table.shape[0] - 1)  # a small table: every other word is a candidate
    config = _Config(anchors, strategy, neighbours)
    return Path(
        name=f"discretized({strategy})",
        point=_Bound(_point, config),
        starts=_Bound(_starts, config),
        nodes=_Bound(_nodes, config),
        params={"table": table, "graph": graph},
    )


def anchor_points(path: Path, x, baseline) -> jax.Array:
    """The corners of a :func:`discretized` path: ``(anchors + 2, *x.shape)``, baseline first, ``x`` last.

    For inspection and tests (e.g. which words the path visits:
    ``argmin`` of distances to the table).

    Example:
      >>> import jax.numpy as jnp
      >>> from jig.discretized import discretized, anchor_points
      >>> table = jnp.array([[0.0, 0.0], [1.0, 2.0], [0.5, 1.0], [2.0, -1.0]])
      >>> anchor_points(discretized(table, 2, neighbours=3), table[1], jnp.zeros(2)).tolist()
      [[0.0, 0.0], [0.25, 0.5], [0.5, 1.0], [1.0, 2.0]]
    """
    if not isinstance(path.point, _Bound) or path.point.fn is not _point:
        raise _checks.type_fail("jig.discretized.anchor_points", "path", "a path made by discretized(...)", path)
    return _points(path.point.config, path.params, x, baseline)
