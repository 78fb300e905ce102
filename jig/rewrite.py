"""Rewriting a function's jaxpr into a form that runs faster: :func:`fast`.

On XLA:CPU the backward pass of max pooling written with ``lax.reduce_window``
(``select_and_scatter``) is slow: on a small CNN it took about a third of IG's time.
When the pooling windows tile the input exactly (window = stride, no padding, no
dilation, every dimension divisible by its window), the same pooling is a reshape
followed by a max over the window axes,

    x.reshape(N, H/2, 2, W/2, 2, C).max(axis=(2, 4)),

whose backward pass is a cheap comparison with the maximum. :func:`fast` reads a
function's jaxpr and evaluates it again, with every such ``reduce_window_max`` replaced
by that form and every other equation bound unchanged.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.extend import core as jex

from jig import _checks

__all__ = ["fast", "tiled_max_pool", "count"]

_INLINED = frozenset({"jit", "pjit"})


def _tiles(params: dict, shape: tuple[int, ...]) -> bool:
    """Whether a ``reduce_window_max`` with these parameters tiles ``shape`` exactly."""
    window = tuple(params["window_dimensions"])
    return (
        window == tuple(params["window_strides"])
        and all(tuple(p) == (0, 0) for p in params["padding"])
        and all(d == 1 for d in params["base_dilation"])
        and all(d == 1 for d in params["window_dilation"])
        and len(window) == len(shape)
        and all(w >= 1 and s % w == 0 for s, w in zip(shape, window))
    )


def _split(shape: tuple[int, ...], window: tuple[int, ...]):
    """The shape with each windowed dimension split in (blocks, window), and the window axes."""
    split, axes = [], []
    for d, w in zip(shape, window):
        if w == 1:
            split.append(d)
        else:
            split.extend((d // w, w))
            axes.append(len(split) - 1)
    return tuple(split), tuple(axes)


def _first_maxima(xr: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """A mask of each window's first maximum, in row-major order over the window axes
    (``select_and_scatter``'s choice with ``>=``): ``xr`` is the split input."""
    first = xr == jnp.max(xr, axis=axes, keepdims=True)
    eq = first
    for k, ax in enumerate(axes):
        later = axes[k + 1:]
        hit = jnp.any(eq, axis=later, keepdims=True) if later else eq
        # whether a maximum comes earlier along this axis (same indices on the axes before)
        seen = jnp.zeros_like(lax_index(hit, 0, ax))
        earlier = []
        for i in range(xr.shape[ax]):
            earlier.append(seen)
            seen = seen | lax_index(hit, i, ax)
        first = first & ~jnp.concatenate(earlier, axis=ax)
    return first


def lax_index(a: jax.Array, i: int, axis: int) -> jax.Array:
    return jax.lax.index_in_dim(a, i, axis, keepdims=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def tiled_max_pool(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
    """Max pooling with non-overlapping windows that tile ``x``: reshape, then max.

    Equal to ``lax.reduce_window(x, -inf, lax.max, window, window, "VALID")`` when every
    dimension of ``x`` is divisible by its window, with the same derivatives: the
    tangent (and the gradient) of a window goes to its first maximum in row-major
    order, as ``reduce_window``'s ``select_and_scatter`` does, so ties (flat image
    regions give many) are broken the same way. Forward and reverse mode, any order.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jig import rewrite
      >>> x = jnp.array([[1.0, 1.0, 0.0, 7.0], [1.0, 0.5, 3.0, 2.0]])
      >>> rewrite.tiled_max_pool(x, (2, 2)).tolist()
      [[1.0, 7.0]]
      >>> jax.grad(lambda x: rewrite.tiled_max_pool(x, (2, 2)).sum())(x).tolist()
      [[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    """
    split, axes = _split(x.shape, window)
    if not axes:
        return x
    return jnp.max(x.reshape(split), axis=axes)


@tiled_max_pool.defjvp
def _tiled_max_pool_jvp(window, primals, tangents):
    (x,), (t,) = primals, tangents
    split, axes = _split(x.shape, window)
    if not axes:
        return x, t
    xr = x.reshape(split)
    first = jax.lax.stop_gradient(_first_maxima(xr, axes))
    y = jnp.max(xr, axis=axes)
    return y, jnp.sum(jnp.where(first, t.reshape(split), 0), axis=axes)


def _bind(eqn, invals):
    params = eqn.primitive.get_bind_params(eqn.params)
    subfuns = []
    if isinstance(params, tuple):  # JAX < 0.7 returned (subfuns, params)
        subfuns, params = params
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*subfuns, *invals, **params)
    return out if eqn.primitive.multiple_results else [out]


def _eval(jaxpr, consts, args, counts: dict) -> list:
    """Evaluate ``jaxpr`` on ``args`` with tiling max pools rewritten and nested
    ``jit`` calls inlined (and rewritten); ``counts`` tallies what was done."""
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, jex.Literal) else env[v]

    for v, a in zip(jaxpr.constvars, consts):
        env[v] = a
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        inner = eqn.params.get("jaxpr")
        if name == "reduce_window_max" and _tiles(eqn.params, tuple(jnp.shape(invals[0]))):
            with eqn.ctx.manager:
                outs = [tiled_max_pool(invals[0], tuple(eqn.params["window_dimensions"]))]
            counts["rewritten"] = counts.get("rewritten", 0) + 1
        elif name in _INLINED and isinstance(inner, jex.ClosedJaxpr) and not inner.effects:
            outs = _eval(inner.jaxpr, inner.consts, invals, counts)
        else:
            if name == "reduce_window_max":
                counts["kept"] = counts.get("kept", 0) + 1
            outs = _bind(eqn, invals)
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def fast(f: Callable[..., Any]) -> Callable[..., Any]:
    """``f`` with its tiling max pools rewritten as reshape + max (faster backward).

    Returns a function with ``f``'s signature and values. Each call traces ``f`` to a
    jaxpr (``jax.make_jaxpr``, once per compilation under ``jax.jit``) and evaluates
    it again, replacing every ``reduce_window_max`` (``lax.reduce_window`` with
    ``lax.max``, e.g. ``flax.linen.max_pool``) whose window equals its stride, with no
    padding or dilation and every dimension divisible by its window, by
    :func:`tiled_max_pool`. Every other equation is bound unchanged. Nested ``jax.jit``
    calls are inlined and rewritten too; the bodies of ``custom_jvp``/``custom_vjp``
    functions, ``jax.checkpoint``, ``scan``, ``while_loop`` and ``cond`` are left as
    they are (a max pool inside them is not rewritten).

    Values and derivatives (forward and reverse mode, any order) are equal, ties
    included: like ``reduce_window``'s, the derivative of each window goes to its
    first maximum in row-major order (see :func:`tiled_max_pool`).

    Args:
      f: a function of arrays (pytrees of arrays) returning arrays; it is traced with
        the arguments it is called with, so every argument must be an array or a
        pytree of arrays (close over static values).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jig import rewrite
      >>> def f(x):
      ...     pooled = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (2, 2), (2, 2), "VALID")
      ...     return jnp.sum(pooled ** 2)
      >>> x = jnp.array([[1.0, 2.0, 0.5, 0.0], [3.0, -1.0, 4.0, 2.0]])
      >>> bool(rewrite.fast(f)(x) == f(x))
      True
      >>> jax.grad(rewrite.fast(f))(x).tolist()
      [[0.0, 0.0, 0.0, 0.0], [6.0, 0.0, 8.0, 0.0]]
    """
    _checks.callable_("jig.rewrite.fast", "f", f, "f(*arrays) -> arrays")

    @functools.wraps(f)
    def rewritten(*args, **kwargs):
        flat, in_tree = jax.tree.flatten((args, kwargs))

        def flat_f(*leaves):
            a, k = jax.tree.unflatten(in_tree, leaves)
            return f(*a, **k)

        closed, out_shape = jax.make_jaxpr(flat_f, return_shape=True)(*flat)
        outs = _eval(closed.jaxpr, closed.consts, flat, {})
        return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

    return rewritten


def count(f: Callable[..., Any], *args, **kwargs) -> dict[str, int]:
    """How many max pools :func:`fast` rewrites (``"rewritten"``) and leaves (``"kept"``)
    in ``f`` called with these arguments (pools inside the bodies :func:`fast` leaves
    alone are not counted).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jig import rewrite
      >>> pool = lambda x, w, s: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, w, s, "VALID")
      >>> f = lambda x: jnp.sum(pool(x, (2, 2), (2, 2))) + jnp.sum(pool(x, (3, 3), (1, 1)))
      >>> rewrite.count(f, jnp.ones((4, 4)))
      {'rewritten': 1, 'kept': 1}
    """
    flat, in_tree = jax.tree.flatten((args, kwargs))

    def flat_f(*leaves):
        a, k = jax.tree.unflatten(in_tree, leaves)
        return f(*a, **k)

    closed = jax.make_jaxpr(flat_f)(*flat)
    counts: dict[str, int] = {"rewritten": 0, "kept": 0}
    jax.make_jaxpr(lambda *xs: _eval(closed.jaxpr, closed.consts, xs, counts))(*flat)
    return counts
