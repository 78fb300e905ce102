"""Guided IG's walk (Kapishnikov et al. 2021): the sequential engine of :func:`jig.paths.guided`.

At each of the rule's steps the features with the smallest ``|∇F|`` move towards the
input first, until the L1 distance to the input has shrunk to the step's target; the
attribution of a step is ``(x_new - x_old) ⊙ ∇F(x_old)``. See :func:`jig.paths.guided`.

How a step runs (one gradient, no sort). The paper's step is a loop of selection
rounds: each round takes the ``fraction`` quantile (NumPy's ``method='lower'``: the
entry at rank ``r = floor(fraction (n - 1))`` of the sorted scores) of the scores
``|∇F|``, with ``inf`` for the features already at the step's upper edge ``x_max``,
selects every finite score up to it (ties included) and moves the selection to
``x_max``, or, in the round that reaches the step's L1 target, only the needed share
``γ`` of the way. The gradient is fixed within a step and a selected feature ends at
``x_max``, so the rounds take consecutive blocks of one ascending order of the scores:
from the first unselected position ``p`` a round takes everything up to the value at
``p + r`` (all the rest when fewer than ``r + 1`` finite scores are left). Each round's
threshold is found by bisection on the scores' bit patterns (non-negative floats order
as their bit patterns do: one count over the features per bit), inside one flat
``lax.while_loop`` per step that stops at the round that reaches the target. Then
everything moves at once: scores up to the last full round's threshold go to
``x_max``, those of the final round take its share ``γ``. The outcome is the paper's
(and the ``saliency`` package's) up to floating-point rounding, ties included; the
selection carries no gradient (``stop_gradient``), the moves do, so the walk is
differentiable in reverse and forward mode as before.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["walk", "step", "inner_moves"]


def inner_moves(n: int, fraction: float) -> int:
    """An upper bound on Guided IG's selection rounds within one step (static).

    A round that does not reach the step's target moves every selected feature to
    the step's upper bound; a round selects at least ``r`` features, and once fewer
    than ``n - r + 1`` are left all of them are selected, which reaches the target.
    (:func:`walk` no longer runs a fixed number of rounds; the bound documents the
    worst case of its loop.)
    """
    r = math.floor(fraction * max(n - 1, 0)) + 1
    return math.ceil(max(n - r + 1, 0) / r) + 2


def _rounds(bits, dist, need, finite, rank: int, stop):
    """The selection rounds of one step: ``(v_whole, v_last)``, as score bit patterns.

    ``bits``: the scores ``|∇F|`` as integers (non-negative floats order as their bit
    patterns do), the largest integer for features already at the window's edge;
    ``dist``: each feature's distance to the edge; ``finite``: how many are not there.
    A round that starts after the ``p`` smallest scores takes every score up to the
    one at rank ``p + rank`` (ties included), or all the rest if fewer are left.
    Rounds run while what is taken falls short of ``need``. Scores ``<= v_whole``
    (the rounds before the last) move all the way, those up to ``v_last`` take a share.

    One flat ``while_loop``: each iteration either halves the bisection interval of
    the current round's order statistic (one count over the features) or, once it
    has closed, ends the round (one count and one sum). No sort, no nested loop.
    """
    none = jnp.asarray(-1, bits.dtype)  # below every score
    largest = jnp.max(jnp.where(bits < jnp.iinfo(bits.dtype).max, bits, none))
    finite = finite.astype(bits.dtype)
    lo0 = jnp.where(rank < finite, 0, largest)
    # the state, packed in one vector (fewer, larger kernels to compile):
    # [lo, hi, p, v_prev, stop]: the bisection interval of the current round's
    # threshold, how many scores the finished rounds took, their threshold, done
    state0 = jnp.stack([lo0, largest, jnp.zeros_like(largest), none, stop.astype(bits.dtype)])

    def body(state):
        lo, hi, p, v_prev = state[0], state[1], state[2], state[3]
        searching = lo < hi
        mid = lo + (hi - lo) // 2
        t = jnp.where(searching, mid, lo)
        taken = bits <= t
        count = jnp.sum(taken, dtype=bits.dtype)
        amount = jnp.sum(jnp.where(taken, dist, 0))
        enough = count > p + rank  # bisection: the smallest t with > p + rank scores <= t
        finished = (amount >= need) | (count >= finite)  # once the interval has closed on t
        search = jnp.stack([jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi), p, v_prev,
                            jnp.zeros_like(lo)])
        nxt = jnp.stack([jnp.where(count + rank >= finite, largest, t + 1), largest, count, t,
                         jnp.zeros_like(lo)])
        done = state.at[4].set(1)
        return jnp.where(searching, search, jnp.where(finished, done, nxt))

    state = jax.lax.while_loop(lambda st: st[4] == 0, body, state0)
    return jnp.where(stop, none, state[3]), jnp.where(stop, none, state[0])


def step(g, xc, xv, bv, diff, moving, l1_total, a, *, max_dist: float, rank: int):
    """One step of the walk from ``xc`` with the gradient ``g`` there: the new point.

    Public so that other methods on Guided IG's path (``jig.idgi``) can re-run the walk
    point by point. ``xv``, ``bv``: input and baseline (flat); ``diff = xv - bv``;
    ``moving = diff != 0``; ``l1_total = Σ|diff|``; ``a``: the step's target progress;
    ``max_dist``: the window half-width; ``rank``: the selection quantile's rank
    (``floor(fraction * (n - 1))``), as :func:`walk` computes them.
    """
    dtype = xv.dtype
    a_min = jnp.maximum(a - max_dist, 0.0)
    a_max = jnp.minimum(a + max_dist, 1.0)
    x_min = bv + a_min * diff
    x_max = bv + a_max * diff
    # features lagging behind the window jump to its lower edge
    progress = jnp.where(moving, (xc - bv) / jnp.where(moving, diff, 1.0), a_max)
    x1 = jnp.where(progress < a_min, x_min, xc)
    need = jnp.sum(jnp.abs(xv - x1)) - l1_total * (1.0 - a)
    done = need <= 1e-6 * l1_total
    at_edge = x1 == x_max
    dist = jnp.where(at_edge, 0, jnp.abs(x_max - x1))
    # scores: |∇F| as integers (same order), the features at the edge above all others
    width = jnp.finfo(dtype).bits
    itype = jnp.int64 if width == 64 else jnp.int32
    sg = jax.lax.stop_gradient
    top = jnp.asarray(jnp.iinfo(itype).max, itype)
    score = jax.lax.bitcast_convert_type(sg(jnp.abs(g)), jnp.dtype(f"int{width}")).astype(itype)
    bits = jnp.where(at_edge, top, score)
    finite = jnp.sum(~at_edge, dtype=jnp.int32)
    v_whole, v_last = _rounds(bits, sg(dist), sg(need), finite, rank, sg(done))
    whole = bits <= v_whole
    last = (bits <= v_last) & ~whole
    before = jnp.sum(jnp.where(whole, dist, 0))
    block = jnp.sum(jnp.where(last, dist, 0))
    has = block > 0
    share = jnp.clip((need - before) / jnp.where(has, block, 1.0), 0.0, 1.0)
    moved = jnp.where(whole, x_max, jnp.where(last, x1 + share * (x_max - x1), x1))
    return jnp.where(done, x1, moved)


def walk(grad_vec: Callable[[jax.Array], jax.Array], xv: jax.Array, bv: jax.Array,
         weights: jax.Array, *, fraction: float, max_dist: float, unroll: int | bool = 1
         ) -> jax.Array:
    """Guided IG's walk from ``bv`` to ``xv`` (flat vectors): the attributions ``(n,)``.

    Args:
      grad_vec: ``point (n,) -> ∇F(point) (n,)`` in ``xv``'s dtype.
      xv, bv: the input and the baseline, flattened.
      weights: the rule's weights; their cumulative sums are the steps' targets.
      fraction, max_dist: see :func:`jig.paths.guided`.
      unroll: how many steps each iteration of the ``lax.scan`` over steps runs
        (``True``: all of them, no loop). On XLA:CPU a convolution's input gradient
        runs 2-4x slower inside a rolled loop, so ``True`` runs a conv model's walk
        faster (1.2-1.6x end to end on the benchmark CNN), but every step's selection
        loop is then compiled on its own: the first call took 36-49 s for 64 steps
        instead of ~4 s (2 shared cores). The default keeps the loop rolled.

    Example:
      >>> import jax.numpy as jnp
      >>> from jig import guided
      >>> w = jnp.array([1.0, -2.0, 3.0])
      >>> A = guided.walk(lambda v: w, jnp.ones(3), jnp.zeros(3), jnp.full(4, 0.25),
      ...                 fraction=0.25, max_dist=0.02)
      >>> A.round(4).tolist()   # a linear model: w * (x - b)
      [1.0, -2.0, 3.0]
    """
    n = xv.shape[0]
    diff = xv - bv
    moving = diff != 0
    l1_total = jnp.sum(jnp.abs(diff))
    # progress targets: cumulative rule weights, the paper's k/m for Riemann rules
    ends = jnp.cumsum(weights) / jnp.sum(weights)
    ends = ends.at[-1].set(1.0)
    last = jnp.arange(ends.shape[0]) == ends.shape[0] - 1
    rank = math.floor(fraction * max(n - 1, 0))

    def one_step(carry, target):
        xc, attr = carry
        a, is_last = target
        g = grad_vec(xc)
        xn = step(g, xc, xv, bv, diff, moving, l1_total, a.astype(xv.dtype),
                  max_dist=max_dist, rank=rank)
        xn = jnp.where(is_last, xv, xn)  # land exactly on x
        return (xn, attr + (xn - xc) * g), None

    (_, attr), _ = jax.lax.scan(one_step, (bv, jnp.zeros_like(xv)), (ends, last), unroll=unroll)
    return attr
