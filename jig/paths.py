"""Integration paths for :func:`jig.ig`.

A path ``γ(α)`` runs from a start (``α = 0``, usually the baseline) to the input
(``α = 1``). IG along it is ``A = ∫_0^1 ∇F(γ(α)) ⊙ γ'(α) dα``. A path is a
:class:`Path`: a NamedTuple of pure functions plus the arrays they use
(``params``), which :func:`jig.ig` passes into its compiled function as
arguments (never as closed-over constants).

Example:
  >>> import jax.numpy as jnp, jig
  >>> explain = jig.ig(lambda x: jnp.sum(x ** 2), 0.0, 8, path=jig.paths.straight())
  >>> explain(jnp.array([1.0, 2.0])).round(4).tolist()
  [1.0, 4.0]
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Path", "straight", "default_nodes"]


def default_nodes(params, x, baseline, alphas, weights):
    """The rule's nodes unchanged: one path point per alpha."""
    del params, x, baseline
    return alphas, weights


class Path(NamedTuple):
    """A path for :func:`jig.ig`, as pure functions.

    All functions receive ``x`` and ``baseline`` as pytrees with the structure
    and shapes of the attributed input, already in the working dtype (float32
    for half-precision inputs); ``baseline`` is ``None`` for a path with
    ``needs_baseline=False``.

    Attributes:
      name: shown in errors and reprs.
      point: ``(params, node, x, baseline) -> (point, velocity)``: ``γ`` and
        ``γ' = dγ/dα`` at one node (pytrees like ``x``).
      starts: ``(params, x, baseline) -> stack``: the start point(s) ``γ(0)`` as a
        pytree like ``x`` with a leading axis of size ``S``; the completeness
        delta compares against the mean of ``F`` over them.
      nodes: ``(params, x, baseline, alphas, weights) -> (nodes, weights)``: the
        quadrature nodes as a pytree with leading axis ``N`` and their weights
        ``(N,)``. The default keeps the rule's alphas; a multi-baseline path
        pairs them with baseline indices. Chunking splits this leading axis.
      params: a pytree of arrays used by the functions above (or ``None``).
      needs_baseline: ``False`` for a path that defines its own start (blur),
        which then takes ``baseline=None``.
      constant_velocity: ``True`` when ``γ'`` does not depend on ``α`` (the
        straight line); the velocity is then applied once after the sum.
      integrate: optional override for paths that are not a fixed set of nodes
        (e.g. adaptive paths): ``(params, grad_fn, x, baseline, alphas,
        weights) -> attributions``, where ``grad_fn(point)`` returns ``∇F`` at a
        point in the working dtype.
    """

    name: str
    point: Callable[..., tuple[Any, Any]]
    starts: Callable[..., Any]
    nodes: Callable[..., tuple[Any, jax.Array]] = default_nodes
    params: Any = None
    needs_baseline: bool = True
    constant_velocity: bool = False
    integrate: Callable[..., Any] | None = None


def _straight_point(params, alpha, x, baseline):
    del params
    velocity = jax.tree.map(jnp.subtract, x, baseline)
    point = jax.tree.map(lambda b, v: b + alpha.astype(v.dtype) * v, baseline, velocity)
    return point, velocity


def _straight_starts(params, x, baseline):
    del params, x
    return jax.tree.map(lambda b: b[None], baseline)


def straight() -> Path:
    """The straight line ``γ(α) = b + α (x - b)``, with ``γ' = x - b``.

    IG then reduces to ``(x - b) ⊙ Σ_k w_k ∇F(b + α_k (x - b))``: the velocity
    is applied once, after the weighted sum. This is the path of
    ``jig.ig(..., path=None)``.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> f = lambda x: x[0] * x[1]
      >>> jig.ig(f, 0.0, 4, path=jig.paths.straight())(jnp.array([2.0, 3.0])).tolist()
      [3.0, 3.0]
    """
    return Path(
        name="straight",
        point=_straight_point,
        starts=_straight_starts,
        constant_velocity=True,
    )
