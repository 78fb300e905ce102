"""Adaptive steps: refine a nested quadrature until completeness holds.

``jig.ig(f, baseline, steps, tol=1e-3)`` does not fix the number of path points.
It starts with the trapezoid rule on ``steps`` intervals (``steps + 1`` points,
both ends included) and halves the intervals, level after level, until the
completeness error of the current estimate is small enough,

    |delta| <= tol * |F(x) - F(γ(0))|,     delta = Σ A - (F(x) - F(γ(0))),

or the next level would exceed ``max_steps`` path points. Level ``L`` has
``steps * 2**L + 1`` points; a refinement evaluates only the new midpoints and
reuses every gradient already computed (the rules are nested), so stopping at
level ``L`` costs exactly ``steps * 2**L + 1`` gradient evaluations.

Two nested rules are offered (``jig.ig``'s ``rule`` argument):

- ``"romberg"`` (also what the default ``"gauss_legendre"`` means here, because
  Gauss-Legendre nodes do not nest): the trapezoid sums of all levels combined
  by Richardson extrapolation. Level ``L`` integrates polynomials of degree
  ``2L + 1`` exactly, so smooth models converge in few levels. Memory: ``L + 1``
  copies of the input.
- ``"riemann_trapezoid"``: the plain trapezoid sum of the finest level (second
  order; no extrapolation), the safer choice when the integrand has jumps
  (ReLU networks), where extrapolation does not help.

The refinement is a ``lax.while_loop`` inside the explainer's one ``jax.jit``;
each iteration evaluates one block of ``chunk_size`` (default ``steps``) path
points under ``jax.vmap``, so peak memory is that of a fixed rule with
``chunk_size`` points, whatever the number of levels. Under ``jax.vmap`` over
examples, each example stops at its own level: the loop runs until the last
example has converged, and the finished ones keep their results and counts
(JAX's batched ``while_loop`` freezes their state), so every example's result is
what it would be alone.

With ``return_delta=True`` the explainer returns ``(attributions, delta)`` as with a
fixed rule; with ``return_info=True`` it returns ``(attributions, info)``, where
``info`` is an :class:`AdaptiveInfo`: the completeness ``delta`` of the returned
attributions, the number of ``points`` used and whether the tolerance was met
(``converged``). With ``targets=`` the refinement goes on until every output meets
the tolerance (``delta`` then has one entry per output).

Example:
  >>> import jax.numpy as jnp, jig
  >>> f = lambda x: jnp.sum(jnp.tanh(x) ** 2)
  >>> explain = jig.ig(f, 0.0, 4, tol=1e-4, return_info=True)
  >>> A, info = explain(jnp.array([0.5, -1.0, 2.0]))
  >>> int(info.points), bool(info.converged)
  (17, True)
  >>> bool(abs(info.delta) <= 1e-4 * abs(f(jnp.array([0.5, -1.0, 2.0]))))
  True
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jig import paths as _paths
from jig.integrand import Integrand

__all__ = ["AdaptiveInfo", "Adaptive", "configure", "integrate", "RULES"]

#: The nested rules ``jig.ig(..., tol=...)`` accepts; ``"gauss_legendre"`` (the
#: default of ``rule``) is read as ``"romberg"``.
RULES = ("romberg", "riemann_trapezoid")

#: Refinements allowed when ``max_steps`` is not given: ``steps * 64 + 1`` points.
DEFAULT_LEVELS = 6


class AdaptiveInfo(NamedTuple):
    """What an adaptive explanation used (one per example under ``jax.vmap``).

    Attributes:
      delta: the completeness error ``Σ A - (F(x) - F(γ(0)))`` of the returned
        attributions (working dtype, float32 for half-precision inputs).
      points: the number of path points (gradient evaluations) used, an int32:
        ``steps * 2**L + 1`` after ``L`` refinements.
      converged: ``True`` when ``|delta| <= tol * |F(x) - F(γ(0))|`` (or within
        float rounding of zero); ``False`` when ``max_steps`` stopped the refinement
        first, in which case ``delta`` is still the honest error of the result.
    """

    delta: jax.Array
    points: jax.Array
    converged: jax.Array


class Adaptive(NamedTuple):
    """The static plan of an adaptive explainer (hashable; made by :func:`configure`).

    Attributes:
      tol: the relative completeness tolerance.
      steps: intervals of the first level (``steps + 1`` points).
      levels: the most refinements; the last level has ``steps * 2**levels + 1`` points.
      block: path points evaluated per loop iteration (divides ``steps``).
      extrapolate: ``True`` for Romberg, ``False`` for the plain trapezoid rule.
    """

    tol: float
    steps: int
    levels: int
    block: int
    extrapolate: bool

    @property
    def max_points(self) -> int:
        return self.steps * 2**self.levels + 1


def configure(tol, steps, max_steps, rule, chunk_size) -> Adaptive:
    """Check the adaptive arguments of :func:`jig.ig` and return the plan.

    ``steps`` and ``chunk_size`` must already be checked ints (``chunk_size`` may be
    ``None``). Raises ``TypeError``/``ValueError`` naming the bad argument.

    Example:
      >>> import jig
      >>> plan = jig.adaptive.configure(1e-3, 8, 129, "romberg", None)
      >>> plan.levels, plan.max_points, plan.block
      (4, 129, 8)
    """
    if tol is None:
        raise ValueError(
            "max_steps is only used with tol= (adaptive steps); pass tol, e.g. tol=1e-3, "
            "or leave max_steps=None"
        )
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(
            f"tol must be a real number in (0, 1) (the completeness error allowed, relative "
            f"to |F(x) - F(start)|), got {tol!r} of type {type(tol).__name__}"
        )
    tol = float(tol)
    if not (math.isfinite(tol) and 0.0 < tol < 1.0):
        raise ValueError(
            f"tol must be in (0, 1) (relative completeness error, e.g. 1e-3), got {tol}"
        )
    if max_steps is None:
        levels = DEFAULT_LEVELS
    else:
        if isinstance(max_steps, (bool, np.bool_)) or not isinstance(max_steps, (int, np.integer)):
            raise TypeError(
                f"max_steps must be None or an int (the most path points), got {max_steps!r} "
                f"of type {type(max_steps).__name__}"
            )
        if max_steps < steps + 1:
            raise ValueError(
                f"max_steps must be >= steps + 1 = {steps + 1} (the first level of the "
                f"adaptive rule has steps + 1 points), got {max_steps}"
            )
        levels = int(math.floor(math.log2((int(max_steps) - 1) / steps) + 1e-12))
    name = getattr(rule, "name", rule)
    if name == "gauss_legendre":
        name = "romberg"
    if not isinstance(name, str) or name not in RULES:
        raise ValueError(
            f"with tol= the rule must be nested (reusing its points when refined): one of "
            f"{list(RULES)} (the default 'gauss_legendre' means 'romberg'), got {rule!r}"
        )
    block = steps if chunk_size is None else chunk_size
    if steps % block:
        raise ValueError(
            f"with tol=, chunk_size must divide steps (each refinement adds a multiple of "
            f"steps points), got chunk_size={chunk_size} and steps={steps}"
        )
    return Adaptive(tol, int(steps), levels, int(block), name == "romberg")


def check_path(path: _paths.Path, mesh) -> None:
    """Raise unless ``path`` has one point per alpha (straight, blur, custom paths)."""
    if path.guide is not None or path.nodes is not _paths.default_nodes:
        raise ValueError(
            f"tol= (adaptive steps) needs a path with one point per alpha (e.g. straight, "
            f"blur, custom); the {path.name!r} path defines its own nodes; use a fixed steps"
        )
    if mesh is not None:
        raise ValueError("tol= (adaptive steps) does not support mesh=; use a fixed steps")


def node_table(plan: Adaptive) -> tuple[np.ndarray, np.ndarray]:
    """The alphas in evaluation order, shape ``(blocks, block)``, and each block's weights.

    Level 0 is ``k / steps`` for ``k = 0 .. steps - 1`` (``α = 1`` is evaluated
    before the loop), level ``L >= 1`` the midpoints ``(2k + 1) / (steps 2**L)``.
    The weights are the trapezoid weights up to the factor ``1 / (steps 2**L)``:
    1, except 1/2 at ``α = 0``.

    Example:
      >>> import jig
      >>> a, w = jig.adaptive.node_table(jig.adaptive.configure(0.1, 2, 9, "romberg", None))
      >>> a.tolist(), w.tolist()
      ([[0.0, 0.5], [0.25, 0.75], [0.125, 0.375], [0.625, 0.875]], [[0.5, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    """
    m = plan.steps
    parts = [np.arange(m) / m]
    for level in range(1, plan.levels + 1):
        n = m * 2**level
        parts.append((2 * np.arange(n // 2) + 1) / n)
    alphas = np.concatenate(parts).reshape(-1, plan.block)
    weights = np.ones_like(alphas)
    weights[0, 0] = 0.5
    return alphas, weights


def _level_ends(plan: Adaptive) -> tuple[np.ndarray, np.ndarray]:
    """Per block: whether it completes a level, and that level (else -1)."""
    per = plan.steps // plan.block
    ends = np.full(per * 2**plan.levels, -1, dtype=np.int32)
    ends[per - 1] = 0
    for level in range(1, plan.levels + 1):
        ends[per * 2**level - 1] = level
    return ends >= 0, ends


def _total(attributions):
    return sum(jnp.sum(t) for t in jax.tree.leaves(attributions))


def integrate(
    plan: Adaptive,
    integrand: Integrand,
    f_x: jax.Array,
    f_start: jax.Array,
    outputs: Callable[[Any], jax.Array] = _total,
) -> tuple[Any, AdaptiveInfo]:
    """Attributions refined to ``plan.tol``, and their :class:`AdaptiveInfo`.

    Args:
      plan: from :func:`configure`.
      integrand: what is summed (:mod:`jig.integrand`); its nodes are alphas.
      f_x, f_start: ``F(x)`` and ``F(γ(0))`` in the working dtype, shape ``T``
        (``()`` for a scalar output, ``(K,)`` for ``K`` targets).
      outputs: ``attributions -> Σ A`` per output, shape ``T`` (default: the sum of
        every leaf). With several outputs the refinement goes on until every one
        meets the tolerance.

    Returns:
      ``(total, info)``: the attributions in the working dtype and the info
      (``delta`` of shape ``T``).
    """
    work = jnp.result_type(*jax.tree.leaves(integrand.zero))
    alphas_np, weights_np = node_table(plan)
    ends_np, level_np = _level_ends(plan)
    alphas = jnp.asarray(alphas_np, work)
    weights = jnp.asarray(weights_np, work)
    ends = jnp.asarray(ends_np)
    level_of = jnp.asarray(level_np)
    n_blocks = alphas.shape[0]
    gap = f_x - f_start
    eps = jnp.finfo(work).eps
    block = lambda a, w: integrand.block(a, w, lambda p: p)  # noqa: E731
    g_end = block(jnp.ones((1,), work), jnp.ones((1,), work))  # the value at α = 1

    def estimate(sums, table, level):
        h = (1.0 / plan.steps) * jnp.exp2(-level.astype(work))
        trap = jax.tree.map(lambda s, g1: h * (s + 0.5 * g1), sums, g_end)
        if not plan.extrapolate:
            return trap, table
        rows = [trap]
        for k in range(1, plan.levels + 1):  # Richardson: R(L,k) from R(L,k-1), R(L-1,k-1)
            c = 1.0 / (4.0**k - 1.0)
            old = jax.tree.map(lambda t: t[k - 1], table)
            rows.append(jax.tree.map(lambda p, o: p + c * (p - o), rows[-1], old))
        new_table = jax.tree.map(lambda *r: jnp.stack(r), *rows)
        best = jax.tree.map(lambda t: jax.lax.dynamic_index_in_dim(t, level, keepdims=False), new_table)
        return best, new_table

    def cond(state):
        i, _, _, _, _, done = state
        return jnp.logical_and(~done, i < n_blocks)

    def body(state):
        i, sums, table, total, delta, done = state
        sums = jax.tree.map(jnp.add, sums, block(alphas[i], weights[i]))
        end, level = ends[i], jnp.maximum(level_of[i], 0)
        est, new_table = estimate(sums, table, level)
        est = integrand.finish(est)
        est_delta = outputs(est) - gap
        est_abs = outputs(jax.tree.map(jnp.abs, est))
        floor = 8 * eps * (jnp.abs(f_x) + jnp.abs(f_start) + est_abs)
        ok = jnp.all(jnp.abs(est_delta) <= plan.tol * jnp.abs(gap) + floor)
        pick = lambda new, old: jnp.where(end, new, old)  # noqa: E731
        return (
            i + 1,
            sums,
            jax.tree.map(pick, new_table, table),
            jax.tree.map(pick, est, total),
            pick(est_delta, delta),
            jnp.logical_and(end, ok),
        )

    zero = integrand.zero
    table0 = jax.tree.map(lambda z: jnp.zeros((plan.levels + 1,) + z.shape, z.dtype), zero)
    state = (jnp.int32(0), zero, table0, integrand.finish(zero), -gap, jnp.bool_(False))
    i, _, _, total, delta, done = jax.lax.while_loop(cond, body, state)
    points = i * plan.block + 1
    return total, AdaptiveInfo(delta, points.astype(jnp.int32), done)
