"""Attribution to a submodule of an Equinox model.

An Equinox model is a pytree, so its weights are arrays like any others: they are
traced arguments of every function here, never constants frozen into a compiled
explainer. To attribute to an inner layer (the token embeddings of a text model,
a block of a CNN), split the model at a submodule chosen by a ``where`` function,
as :func:`equinox.tree_at` takes it (``lambda m: m.layers[1]``), into

    bottom(model, x, ...)    -> h, the submodule's output on x
    top(model, x, h, ...)    -> the model's output with that output replaced by h

so that ``top(model, x, bottom(model, x)) == model(x)``, and integrate the gradient
of ``top`` along a path in ``h``. Completeness then holds at the submodule:
``Σ A = F(top(x, h_x)) - F(top(x, h_baseline))``. The model is not rewritten: the
submodule is swapped, inside the trace, for a stand-in that records its output
(``bottom``) or returns ``h`` instead (``top``); the stand-in passes every other
attribute through to the submodule.

The submodule must be called directly by the model's forward pass, not inside a
JAX transform the model applies itself (``jax.vmap(self.embedding)(ids)``,
``jax.lax.scan``): split at the module that applies the transform instead.

This module needs the optional extra ``pip install 'jig[equinox]'``.

Example:
  >>> import jax, jax.numpy as jnp, equinox as eqx, jig
  >>> model = eqx.nn.Sequential([eqx.nn.Linear(3, 4, key=jax.random.key(0)),
  ...                            eqx.nn.Lambda(jnp.tanh),
  ...                            eqx.nn.Linear(4, 2, key=jax.random.key(1))])
  >>> x = jnp.array([0.5, -1.0, 2.0])
  >>> explain = jig.equinox.layer_ig(model, lambda m: m.layers[1], lambda y: y[0],
  ...                                steps=32, return_delta=True)
  >>> res = explain(model, x)
  >>> res.attributions.shape, bool(abs(res.delta) < 1e-5)
  ((4,), True)
"""

from __future__ import annotations

import sys
from typing import Any, Callable, NamedTuple

try:
    import equinox as eqx
except ImportError:  # pragma: no cover - the optional extra is missing: each function says how to install it
    eqx = None

import jax  # noqa: E402

from jig import _checks  # noqa: E402
from jig import layers as _layers  # noqa: E402
from jig._types import Baseline, Explainer, PyTree  # noqa: E402

__all__ = ["Split", "split", "layer_ig", "submodules"]

_TRACE = "jig.equinox"


def _require(caller: str) -> None:
    if eqx is None:
        raise ImportError(f"{caller} needs equinox, the optional extra: pip install 'jig[equinox]'")


if eqx is None and "pytest" in sys.modules:  # pragma: no cover - the examples below need equinox
    import pytest

    @pytest.fixture(autouse=True)
    def _examples_need_equinox():
        pytest.skip("jig.equinox's examples need equinox: pip install 'jig[equinox]'")


class Split(NamedTuple):
    """An Equinox model split at one submodule, as two pure functions of the model.

    Attributes:
      bottom: ``(model, x, *args, **kwargs) -> h``: the submodule's output on ``x``.
      top: ``(model, x, h, *args, **kwargs) -> output``: the model's output on ``x``
        with the submodule's output replaced by ``h`` (so it is differentiable in
        ``h`` even when ``x`` holds token ids).
      where: the submodule's path, as written in a ``where`` function
        (``"m.layers[1]"``).
    """

    bottom: Callable[..., Any]
    top: Callable[..., Any]
    where: str


# --------------------------------------------------------------------------- submodules


def submodules(model: PyTree) -> dict[str, Any]:
    """Every submodule of an Equinox model by its path, in field order.

    The paths are written as in a ``where`` function of a model named ``m``
    (``"m.layers[0]"``, ``"m.blocks[1].attention"``); they are what the errors of
    :func:`split` list.

    Args:
      model: an ``equinox.Module``.

    Returns:
      A dict from path to the submodule (every ``equinox.Module`` inside the model,
      nested ones included; the model itself is left out).

    Example:
      >>> import jax, equinox as eqx, jig
      >>> mlp = eqx.nn.MLP(2, 1, 3, depth=1, key=jax.random.key(0))
      >>> list(jig.equinox.submodules(mlp))[:2]
      ['m.layers[0]', 'm.layers[1]']
    """
    _require("jig.equinox.submodules")
    out: dict[str, Any] = {}

    def walk(node, prefix):
        found = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda n: n is not node and isinstance(n, eqx.Module))[0]
        for keypath, leaf in found:
            if isinstance(leaf, eqx.Module):
                path = prefix + jax.tree_util.keystr(keypath)
                out.setdefault(path, leaf)
                walk(leaf, path)

    walk(model, "m")
    return out


def _listing(model) -> str:
    names = [name for name, module in submodules(model).items() if callable(module)]
    return ", ".join(names) if names else "(none)"


def _name_of(model, sub) -> str:
    for name, module in submodules(model).items():
        if module is sub:
            return name
    return f"a {type(sub).__name__}"


def _resolve(caller: str, model, where) -> Any:
    """The submodule ``where(model)`` picks, or a ``ValueError`` listing the valid ones."""
    fix = f"write where as a function of the model, e.g. lambda m: m.layers[0]; its callable submodules are: {_listing(model)}"
    try:
        sub = where(model)
    except Exception as e:  # noqa: BLE001 - any failure of the user's where means "not found"
        raise _checks.fail(caller, "where", "a function picking a submodule of the model", f"one that raises {type(e).__name__}: {e}", fix, raw=True) from None
    if not isinstance(sub, eqx.Module) or not callable(sub):
        raise _checks.fail(caller, "where", "a function picking a callable submodule (an equinox.Module)", f"one that picks {_checks.shown(sub)}", fix, raw=True)
    if sub is model:
        raise _checks.fail(caller, "where", "a function picking a submodule, not the model itself", "lambda m: m", fix, raw=True)
    return sub


# --------------------------------------------------------------------------- the stand-in


def _tap(caller: str, name: str, call_index: int | None, **kw) -> _layers.CallTap:
    """A :class:`jig.layers.CallTap` for the submodule ``name``, with this adapter's messages."""
    messages = _layers.TapMessages(
        nested=(
            f"{caller}: where must pick a submodule that the model calls directly, got "
            f"{name}, which the model calls inside a JAX transform of its own (jax.vmap, "
            "jax.lax.scan, jax.jit...); pick the module that applies the transform instead "
            "(for jax.vmap(self.embedding)(ids): the module whose __call__ contains that line)"
        ),
        missing=lambda model: (
            f"{caller}: where must pick a submodule the forward pass calls, got {name}, "
            f"which {type(model).__name__} never calls (only __call__ is intercepted); "
            f"its callable submodules are: {_listing(model)}"
        ),
        repeated=lambda n: (
            f"{caller}: where must pick a submodule called once per forward pass, got "
            f"{name}, called {n} times; pass call_index=i (0 <= i < {n}, in call order)"
        ),
        index=lambda n, want: (
            f"{caller}: call_index must be < {n} (the calls of {name} per forward "
            f"pass), got {want}"
        ),
    )
    return _layers.CallTap(messages, call_index, convention=_TRACE, **kw)


class _StandIn:
    """Takes the submodule's place in the model: ``__call__`` goes through the tap."""

    def __init__(self, module, tap: _layers.CallTap):
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_tap", tap)

    def __call__(self, *args, **kwargs):
        return self._tap.handle(lambda: self._module(*args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._module, name)


def _check_call_index(caller: str, call_index) -> int | None:
    if call_index is None:
        return None
    return _checks.positive_int(caller, "call_index", call_index, minimum=0)


def _check_model(caller: str, model) -> None:
    _require(caller)
    if not isinstance(model, eqx.Module):
        raise _checks.type_fail(caller, "model", "an equinox.Module", model,
                                "for Flax models use jig.flax, for Keras models jig.keras")


def _is_state(node) -> bool:
    return isinstance(node, eqx.nn.State)


# --------------------------------------------------------------------------- split


def split(model: PyTree, where: Callable[[Any], Any], *, call_index: int | None = None,
          caller: str = "jig.equinox.split") -> Split:
    """Split an Equinox model at a submodule into ``bottom`` and ``top``.

    ``bottom(model, x, *a, **k)`` is the submodule's output ``h`` on ``x``;
    ``top(model, x, h, *a, **k)`` runs ``model(x, *a, **k)`` with that output replaced
    by ``h``, so ``top(m, x, bottom(m, x)) == m(x)``. Both are pure functions of the
    model (a pytree whose arrays are traced like any argument) and the input, and
    compose with ``jax.jit``, ``jax.vmap`` and ``jax.grad``. ``where`` is applied to
    the model each is given, so a trained copy of the same architecture works too.

    Args:
      model: an ``equinox.Module``; ``where`` is checked against it now.
      where: a function from the model to the submodule, as for
        :func:`equinox.tree_at` (``lambda m: m.layers[1]``). An unknown one raises
        ``ValueError`` listing the submodules (:func:`submodules`).
      call_index: which call of a submodule called more than once per forward pass
        (0-based, in call order); ``None`` requires exactly one call.
      caller: the public name that errors are reported under.

    Returns:
      A :class:`Split` ``(bottom, top, where)``.

    Example:
      >>> import jax, jax.numpy as jnp, equinox as eqx, jig
      >>> mlp = eqx.nn.MLP(3, 2, 8, depth=2, key=jax.random.key(0))
      >>> s = jig.equinox.split(mlp, lambda m: m.layers[1])
      >>> x = jnp.ones(3)
      >>> h = s.bottom(mlp, x)
      >>> s.where, h.shape, bool(jnp.allclose(s.top(mlp, x, h), mlp(x)))
      ('m.layers[1]', (8,), True)
    """
    _check_model(caller, model)
    _checks.callable_(caller, "where", where, "model -> submodule, e.g. lambda m: m.layers[0]")
    call_index = _check_call_index(caller, call_index)
    name = _name_of(model, _resolve(caller, model, where))

    def run(tap: _layers.CallTap, m, x, args, kwargs):
        sub = _resolve(caller, m, where)
        tapped = eqx.tree_at(where, m, replace=_StandIn(sub, tap))
        out = tapped(x, *args, **kwargs)
        tap.check(m)
        return out

    def bottom(m, x, *args, **kwargs):
        tap = _tap(caller, name, call_index)
        run(tap, m, x, args, kwargs)
        if any(isinstance(leaf, eqx.nn.State) for leaf in jax.tree.leaves(tap.captured, is_leaf=_is_state)):
            raise ValueError(
                f"{caller}: where must pick a submodule whose output is an array or pytree of arrays, got "
                f"{name}, which returns an eqx.nn.State (a stateful layer such as BatchNorm); pick the "
                "submodule before or after it, or a module of your own that wraps it and returns its output"
            )
        return tap.captured

    def top(m, x, h, *args, **kwargs):
        return run(_tap(caller, name, call_index, replacement=h, replace=True), m, x, args, kwargs)

    return Split(bottom, top, name)


# --------------------------------------------------------------------------- layer IG


def layer_ig(
    model: PyTree,
    where: Callable[[Any], Any],
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = None,
    steps: int = 50,
    *,
    baseline_input: Any = None,
    call_index: int | None = None,
    **options: Any,
) -> Explainer:
    """Integrated Gradients at a submodule of an Equinox model: :func:`jig.ig` over its output.

    With ``(bottom, top) = split(model, where)`` and ``F = f ∘ top``, returns
    ``explain(model, x, *args, **kwargs)`` that computes

        A = jig.ig(h -> F(model, x, h), h_baseline, steps)(bottom(model, x))

    i.e. on the straight line ``A = (h_x - h_b) ⊙ Σ_k w_k ∇_h F(h_b + α_k (h_x - h_b))``,
    with completeness at the submodule: ``Σ A = F(top(x, h_x)) - F(top(x, h_b))``.

    Args:
      model: an ``equinox.Module`` (``where`` is checked against it now).
      where: a function from the model to the submodule (see :func:`split`).
      f: maps the model's output to the scalar to explain, e.g.
        ``lambda logits: logits[c]``; ``None`` when the model returns a scalar.
      baseline: the baseline for the submodule's output ``h`` (a scalar, an array or
        pytree broadcasting to ``h``, or a callable ``h -> baseline``; default ``0.0``).
      steps: quadrature nodes.
      baseline_input: instead of ``baseline``, an input ``x'`` or a callable
        ``x -> x'``; the baseline is then ``bottom(model, x')``.
      call_index: which call of a submodule called several times (see :func:`split`).
      **options: every other option of :func:`jig.ig` (``path``, ``rule``,
        ``chunk_size``, ``return_delta``, ``check_finite``, ``mesh``, ``tol``,
        ``max_steps``, ``hoist``, ``targets``...).

    Returns:
      ``explain(model, x, *args, **kwargs) -> LayerAttribution(attributions,
      token_scores, delta)``. The model is an argument: its arrays are traced, so
      a retrained model gives new attributions without recompiling.

    Example:
      >>> import jax, jax.numpy as jnp, equinox as eqx, jig
      >>> mlp = eqx.nn.MLP(3, 2, 8, depth=2, key=jax.random.key(0))
      >>> explain = jig.equinox.layer_ig(mlp, lambda m: m.layers[1], lambda y: y[1],
      ...                                steps=16, return_delta=True)
      >>> res = jax.vmap(explain, in_axes=(None, 0))(mlp, jnp.ones((5, 3)))
      >>> res.attributions.shape, bool(jnp.all(jnp.abs(res.delta) < 1e-5))
      ((5, 8), True)
    """
    caller = "jig.equinox.layer_ig"
    s = split(model, where, call_index=call_index, caller=caller)

    # Equinox's convention (eqx.filter_jit): only the model's arrays are traced; every other
    # field (a dropout rate, an activation function) stays a static Python value.
    def bottom(params, x, rest, *args, **kwargs):
        return s.bottom(eqx.combine(params, rest.tree), x, *args, **kwargs)

    def top(params, x, h, rest, *args, **kwargs):
        return s.top(eqx.combine(params, rest.tree), x, h, *args, **kwargs)

    inner = _layers.layer_ig(bottom, top, f, baseline, steps, baseline_input=baseline_input, caller=caller,
                             name=s.where, **options)

    def explain(model, x, *args, **kwargs):
        _check_model(f"{caller} explainer", model)
        params, rest = eqx.partition(model, eqx.is_array)
        return inner(params, x, _Static(rest), *args, **kwargs)

    explain.__doc__ = f"Layer IG at {s.where} of {type(model).__name__} ({steps} steps)."
    return explain


class _Static:
    """The non-array part of a model, as one static value (compared by value, hashed when it can be)."""

    __slots__ = ("tree",)

    def __init__(self, tree):
        self.tree = tree

    def _key(self):
        leaves, treedef = jax.tree.flatten(self.tree)
        return treedef, leaves

    def __hash__(self):
        treedef, leaves = self._key()
        try:
            return hash((treedef, tuple(leaves)))
        except TypeError:
            return hash(treedef)

    def __eq__(self, other):
        if not isinstance(other, _Static):
            return False
        (t1, l1), (t2, l2) = self._key(), other._key()
        return t1 == t2 and all(a is b or _same(a, b) for a, b in zip(l1, l2))


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values whose == is not a bool
        return False
