"""Guided IG's walk (Kapishnikov et al. 2021): the sequential engine of :func:`jig.paths.guided`.

At each of the rule's steps the features with the smallest ``|∇F|`` move towards the
input first, until the L1 distance to the input has shrunk to the step's target; the
attribution of a step is ``(x_new - x_old) ⊙ ∇F(x_old)``. See :func:`jig.paths.guided`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["walk", "inner_moves"]


def inner_moves(n: int, fraction: float) -> int:
    """An upper bound on Guided IG's selection rounds within one step (static).

    A round that does not reach the step's target moves every selected feature to
    the step's upper bound; a round selects at least ``r`` features, and once fewer
    than ``n - r + 1`` are left all of them are selected, which reaches the target.
    """
    r = math.floor(fraction * max(n - 1, 0)) + 1
    return math.ceil(max(n - r + 1, 0) / r) + 2


def walk(grad_vec, xv, bv, weights, *, fraction: float, max_dist: float):
    """Guided IG's walk from ``bv`` to ``xv`` (flat vectors): the attributions ``(n,)``.

    Args:
      grad_vec: ``point (n,) -> ∇F(point) (n,)`` in ``xv``'s dtype.
      xv, bv: the input and the baseline, flattened.
      weights: the rule's weights; their cumulative sums are the steps' targets.
      fraction, max_dist: see :func:`jig.paths.guided`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jig import guided
      >>> w = jnp.array([1.0, -2.0, 3.0])
      >>> A = guided.walk(lambda v: w, jnp.ones(3), jnp.zeros(3), jnp.full(4, 0.25),
      ...                 fraction=0.25, max_dist=0.02)
      >>> A.round(4).tolist()   # a linear model: w * (x - b)
      [1.0, -2.0, 3.0]
    """
    dtype = xv.dtype
    n = xv.shape[0]
    diff = xv - bv
    moving = diff != 0
    safe_diff = jnp.where(moving, diff, 1.0)
    l1_total = jnp.sum(jnp.abs(diff))
    tol = 1e-6 * l1_total
    # progress targets: cumulative rule weights, the paper's k/m for Riemann rules
    ends = jnp.cumsum(weights) / jnp.sum(weights)
    ends = ends.at[-1].set(1.0)
    last = jnp.arange(ends.shape[0]) == ends.shape[0] - 1
    inf = jnp.asarray(jnp.inf, dtype)
    rounds = inner_moves(n, fraction)
    rank = math.floor(fraction * max(n - 1, 0))

    def step(carry, target):
        xc, attr = carry
        a, is_last = target
        g = grad_vec(xc)
        a_min = jnp.maximum(a - max_dist, 0.0)
        a_max = jnp.minimum(a + max_dist, 1.0)
        x_min = bv + a_min * diff
        x_max = bv + a_max * diff
        l1_target = l1_total * (1.0 - a)

        def select_round(state, _):
            xi, done = state
            # features lagging behind the window jump to its lower edge
            progress = jnp.where(moving, (xi - bv) / safe_diff, a_max)
            xi = jnp.where(~done & (progress < a_min), x_min, xi)
            l1_now = jnp.sum(jnp.abs(xv - xi))
            done = done | (l1_now <= l1_target + tol)
            # the `fraction` of movable features with the smallest |gradient| move
            score = jnp.where(xi == x_max, inf, jnp.abs(g))
            threshold = jnp.sort(score)[rank]  # the lower `fraction` quantile
            chosen = (score <= threshold) & (score != inf)
            l1_chosen = jnp.sum(jnp.abs(xi - x_max) * chosen)
            has = l1_chosen > 0
            share = jnp.where(has, (l1_now - l1_target) / jnp.where(has, l1_chosen, 1.0), inf)
            whole = share > 1.0  # moving them all the way stays short of the target
            share = jnp.clip(share, 0.0, 1.0)
            moved = jnp.where(whole, x_max, xi + share * (x_max - xi))
            xi = jnp.where(chosen & ~done, moved, xi)
            return (xi, done | ~whole), None

        (xn, _), _ = jax.lax.scan(select_round, (xc, jnp.asarray(False)), None, length=rounds)
        xn = jnp.where(is_last, xv, xn)  # land exactly on x
        return (xn, attr + (xn - xc) * g), None

    (_, attr), _ = jax.lax.scan(step, (bv, jnp.zeros_like(xv)), (ends, last))
    return attr
