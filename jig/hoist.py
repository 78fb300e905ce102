"""Hoisting ``f``'s affine first layers out of the path sum.

On the straight path ``x(α) = b + α d`` (``d = x - b``) every value that ``f``
computes from its input by affine operations only (a dense or convolution
layer's product and bias, reshapes, transposes, slices, sums) is itself a straight
line: ``P(b + α d) = P(b) + α J_P d``. So is its gradient's trip back through those
operations: ``∇_x F = J_Pᵀ ∇_h R`` with a constant ``J_P``. IG can therefore

- evaluate the affine prefix ``P`` once per explanation (``h0 = P(b)`` and
  ``h1 = J_P d`` by one ``jax.jvp``) instead of once per path point;
- run the model's remainder ``R`` (everything from the first non-linear operation
  on) at ``h0 + α_k h1`` for each node;
- apply the transpose ``J_Pᵀ`` once, to the weighted sum ``Σ_k w_k ∇_h R``,
  instead of once per point.

For a network whose first layer is a dense or convolution layer this removes that
layer's forward and backward pass from every path point: the sum is the same up to
floating-point rounding. :func:`split` finds ``P`` and ``R`` by reading ``f``'s
jaxpr; ``jig.ig`` uses it on the straight path (``jig.paths.straight``) and falls
back to the plain sum wherever the split does not apply.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.extend import core as jex

__all__ = ["Split", "split"]

_CONST, _AFFINE, _OTHER = 0, 1, 2

# Affine in every operand: any mix of input-dependent (affine) and constant operands.
_ADDITIVE = frozenset({"add", "add_any", "sub", "concatenate"})
# Linear maps of their first operand (the rest, if any, must not depend on the input).
_LINEAR_FIRST = frozenset({
    "neg", "reduce_sum", "reshape", "squeeze", "expand_dims", "broadcast_in_dim",
    "transpose", "slice", "rev", "copy", "copy_p", "cumsum", "pad", "dynamic_slice",
    "gather",
})
# Bilinear: affine when exactly one operand depends on the input.
_BILINEAR = frozenset({"mul", "dot_general", "conv_general_dilated"})
# The operations whose removal from every path point is worth a split.
_HEAVY = frozenset({"dot_general", "conv_general_dilated"})
_CALLS = frozenset({"jit", "pjit"})


class Split(NamedTuple):
    """``F = rest ∘ prefix`` with ``prefix`` affine in ``F``'s input.

    Attributes:
      prefix: ``x -> h``: the affine part, ``x`` a pytree like ``F``'s input and
        ``h`` a tuple of arrays (the values the rest of ``F`` reads).
      rest: ``h -> F(x)``: everything else.
      sizes: ``(input elements, h elements)``, for reports.
    """

    prefix: Callable[[Any], tuple]
    rest: Callable[[tuple], Any]
    sizes: tuple[int, int]


class _Eqn(NamedTuple):
    prim: Any
    params: dict
    ins: tuple  # int keys, or _Lit
    outs: tuple  # int keys
    ctx: Any  # the equation's context (its .manager is entered around bind)


class _Lit(NamedTuple):
    value: Any


def _flatten(jaxpr, in_atoms, values, eqns, counter) -> list:
    """Append ``jaxpr``'s equations to ``eqns`` with fresh integer keys, inlining
    nested ``jit`` calls; return the keys (or literals) of its outputs."""
    env = {}

    def read(v):
        return _Lit(v.val) if isinstance(v, jex.Literal) else env[v]

    def fresh(v):
        counter[0] += 1
        env[v] = counter[0]
        return counter[0]

    for v, a in zip(jaxpr.invars, in_atoms):
        env[v] = a
    for e in jaxpr.eqns:
        ins = tuple(read(v) for v in e.invars)
        inner = e.params.get("jaxpr")
        if e.primitive.name in _CALLS and isinstance(inner, jex.ClosedJaxpr) and not inner.effects:
            outs = _flatten_closed(inner, ins, values, eqns, counter)
            for v, o in zip(e.outvars, outs):
                env[v] = o
            continue
        outs = tuple(fresh(v) for v in e.outvars)
        eqns.append(_Eqn(e.primitive, e.params, ins, outs, e.ctx))
    return [read(v) for v in jaxpr.outvars]


def _fresh_keys(n, counter) -> list[int]:
    counter[0] += n
    return list(range(counter[0] - n + 1, counter[0] + 1))


def _flatten_closed(closed, in_atoms, values, eqns, counter) -> list:
    """:func:`_flatten` for a closed jaxpr: its consts get fresh keys in ``values`` and
    are bound to its constvars, which come first."""
    const_keys = _fresh_keys(len(closed.consts), counter)
    values.update(zip(const_keys, closed.consts))
    return _flatten(_WithConsts(closed.jaxpr), const_keys + list(in_atoms), values, eqns, counter)


class _WithConsts:
    """A jaxpr seen with its constvars as leading invars."""

    def __init__(self, jaxpr):
        self.invars = list(jaxpr.constvars) + list(jaxpr.invars)
        self.eqns = jaxpr.eqns
        self.outvars = jaxpr.outvars


def _status(eqn: _Eqn, state: dict) -> int:
    st = [_CONST if isinstance(a, _Lit) else state[a] for a in eqn.ins]
    if all(s == _CONST for s in st):
        return _CONST
    if any(s == _OTHER for s in st):
        return _OTHER
    name = eqn.prim.name
    dep = [s != _CONST for s in st]
    if name in _ADDITIVE:
        return _AFFINE
    if name in _LINEAR_FIRST:
        return _AFFINE if dep[0] and not any(dep[1:]) else _OTHER
    if name in _BILINEAR:
        return _AFFINE if sum(dep) == 1 else _OTHER
    if name == "div":
        return _AFFINE if dep[0] and not dep[1] else _OTHER
    if name == "select_n":  # a constant predicate picks among affine/constant cases
        return _AFFINE if not dep[0] else _OTHER
    if name == "convert_element_type":
        new = eqn.params.get("new_dtype")
        return _AFFINE if new is not None and jnp.issubdtype(new, jnp.floating) else _OTHER
    return _OTHER


def _bind(eqn: _Eqn, invals):
    params = eqn.prim.get_bind_params(eqn.params)
    subfuns = []
    if isinstance(params, tuple):  # JAX < 0.7 returned (subfuns, params)
        subfuns, params = params
    with eqn.ctx.manager:
        out = eqn.prim.bind(*subfuns, *invals, **params)
    return out if eqn.prim.multiple_results else [out]


def _run(eqns, keep, values):
    """Evaluate the equations whose status is in ``keep`` into ``values`` (a dict)."""
    for eqn, st in eqns:
        if st not in keep:
            continue
        invals = [a.value if isinstance(a, _Lit) else values[a] for a in eqn.ins]
        for k, v in zip(eqn.outs, _bind(eqn, invals)):
            values[k] = v


def split(F: Callable[[Any], Any], x: Any) -> Split | None:
    """Split ``F`` into an affine prefix and the rest, or ``None`` if nothing is gained.

    Args:
      F: a function of one pytree argument (``jig.ig``'s attributed input), closing
        over everything else; it is traced once, at ``x``'s shapes and dtypes.
      x: an example of ``F``'s argument (arrays or tracers).

    Returns:
      A :class:`Split` when the affine prefix contains a matrix product or a
      convolution that reads the input (so hoisting it saves work at every path
      point); ``None`` when it does not, when ``F`` has side effects, or when its
      output does not depend on ``x``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jig import hoist
      >>> w = jnp.array([[1.0, -1.0], [2.0, 0.5]])
      >>> F = lambda x: jnp.sum(jnp.tanh(x @ w + 1.0))
      >>> s = hoist.split(F, jnp.ones(2))
      >>> h = s.prefix(jnp.array([0.3, -0.2]))   # (x @ w + 1.0,)
      >>> bool(jnp.allclose(s.rest(h), F(jnp.array([0.3, -0.2]))))
      True
    """
    closed = jax.make_jaxpr(F)(x)
    if closed.effects:
        return None
    leaves, treedef = jax.tree.flatten(x)
    values0: dict[int, Any] = {}
    flat: list[_Eqn] = []
    counter = [0]
    x_keys = _fresh_keys(len(leaves), counter)
    (out,) = _flatten_closed(closed, x_keys, values0, flat, counter)
    if isinstance(out, _Lit):
        return None

    state = {k: _CONST for k in values0}
    state.update({k: _AFFINE for k in x_keys})
    tagged = []
    frontier: dict[int, None] = {}
    heavy = False
    for eqn in flat:
        st = _status(eqn, state)
        for k in eqn.outs:
            state[k] = st
        if st == _OTHER:
            for a in eqn.ins:
                if not isinstance(a, _Lit) and state[a] == _AFFINE:
                    frontier[a] = None
        heavy = heavy or (st == _AFFINE and eqn.prim.name in _HEAVY)
        tagged.append((eqn, st))
    if state[out] == _CONST:
        return None
    if state[out] == _AFFINE:
        frontier[out] = None
    front = tuple(frontier)
    if not heavy or set(front) <= set(x_keys):
        return None

    def prefix(z):
        z_leaves = treedef.flatten_up_to(z)
        values = dict(values0)
        values.update(zip(x_keys, z_leaves))
        _run(tagged, (_CONST, _AFFINE), values)
        return tuple(values[k] for k in front)

    def rest(h):
        values = dict(values0)
        values.update(zip(front, h))
        _run(tagged, (_CONST, _OTHER), values)
        return values[out]

    # The gradients of the rest are summed in the frontier's dtype: it must be the
    # input's (a layer run in bfloat16 after a cast would otherwise sum in bfloat16).
    shapes = jax.eval_shape(prefix, x)
    if {jnp.result_type(leaf) for leaf in leaves} != {s.dtype for s in shapes}:
        return None
    n_in = sum(math.prod(jnp.shape(leaf)) for leaf in leaves)
    return Split(prefix, rest, (n_in, sum(math.prod(s.shape) for s in shapes)))
