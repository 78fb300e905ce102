"""Which parts of an explainer's arguments are traced and which are static.

Every jig front-end compiles one function per *static* configuration and passes the
rest as traced arguments, so that

- arrays and numbers are traced: new values never recompile and are never frozen
  into the compiled explainer;
- objects that *hold* arrays are traced too: registered pytrees (Equinox modules,
  ``flax.nnx`` modules, NamedTuples) through their leaves, Keras layers and models
  through their variables (read at every call, inside a ``keras.StatelessScope``),
  and plain Python objects through the arrays in their attributes (the function
  receives a shallow copy whose array attributes are tracers). A model whose weights
  change between two calls therefore gives new attributions;
- everything else (strings, bools, ``None``, callables, Python numbers that are an
  object's attributes such as an Equinox module's dropout rate, Python ints named in
  ``static_argnums``) is static: part of the compilation's cache key, compared by
  value where it is hashable.

Example:
  >>> import jax.numpy as jnp
  >>> from jig import _static
  >>> dyn, treedef, static = _static.partition(((jnp.ones(2), "relu"), {}))
  >>> len(dyn), [s.value for _, s in static]
  (1, ['relu'])
  >>> _static.merge(dyn, treedef, static)[0][1]
  'relu'
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["Static", "Holder", "partition", "merge", "is_dynamic", "entered"]


def is_dynamic(leaf) -> bool:
    """Arrays and non-bool numbers are traced."""
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return True
    return isinstance(leaf, (int, float, complex)) and not isinstance(leaf, bool)


class Static:
    """A hashable wrapper for a static leaf: compared by value when hashable, else by identity."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        try:
            return hash(self.value)
        except TypeError:
            return id(self.value)

    def __eq__(self, other):
        return isinstance(other, Static) and (self.value is other.value or _safe_eq(self.value, other.value))

    def __repr__(self):
        return f"Static({self.value!r:.60})"


def _safe_eq(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects with array-valued __eq__
        return False


# --------------------------------------------------------------------------- holders


def _is_keras(obj) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("keras") and hasattr(obj, "variables") and hasattr(obj, "trainable_variables")


def _array_attrs(obj) -> tuple[str, ...]:
    d = getattr(obj, "__dict__", None)
    if not isinstance(d, dict):
        return ()
    return tuple(sorted(k for k, v in d.items() if isinstance(v, (jax.Array, np.ndarray))))


class Holder(NamedTuple):
    """The static half of an object that holds arrays: how to rebuild it around tracers.

    ``kind`` is ``"keras"`` (a Keras layer or model: its variables are traced) or
    ``"object"`` (a plain object: its array attributes are traced). ``obj`` is the
    object itself (its non-array state is static); ``names`` the traced attributes.
    """

    kind: str
    obj: Any
    names: tuple

    def __hash__(self):
        return hash((self.kind, id(self.obj), self.names))

    def __eq__(self, other):
        return (
            isinstance(other, Holder) and self.kind == other.kind and self.obj is other.obj
            and self.names == other.names
        )


def _holder(leaf) -> tuple[Holder, list] | None:
    """``(Holder, arrays)`` for an object that holds arrays, else ``None``."""
    if _is_keras(leaf):
        variables = list(leaf.variables)
        return Holder("keras", leaf, tuple(v.path for v in variables)), [v.value for v in variables]
    names = _array_attrs(leaf)
    if names and not callable(getattr(leaf, "tree_flatten", None)):
        return Holder("object", leaf, names), [getattr(leaf, n) for n in names]
    return None


def _rebuild(holder: Holder, arrays: list, scopes: list):
    if holder.kind == "keras":
        scopes.append(list(zip(holder.obj.variables, arrays)))
        return holder.obj
    clone = copy.copy(holder.obj)
    for name, value in zip(holder.names, arrays):
        object.__setattr__(clone, name, value)
    return clone


# --------------------------------------------------------------------------- partition


def _is_python_number(leaf) -> bool:
    return isinstance(leaf, (int, float, complex)) and not isinstance(leaf, bool)


def _inside_object(path) -> bool:
    """Whether a leaf is an attribute of an object (an Equinox module's field, a
    dataclass's): such Python numbers are configuration (a dropout rate, a size) and stay
    static, as ``equinox.filter_jit`` treats them; numbers in tuples, lists and dicts
    (the call's own arguments) are traced."""
    return any(isinstance(k, jax.tree_util.GetAttrKey) for k in path)


def partition(tree) -> tuple[list, Any, tuple]:
    """Split a pytree's leaves into traced ones and a hashable static description.

    Returns ``(dynamic_leaves, treedef, static)``: ``static`` is a tuple of
    ``(leaf_index, Static(leaf))`` for static leaves and ``(leaf_index, Holder, n)``
    for objects holding ``n`` arrays (whose arrays are in ``dynamic_leaves``).
    :func:`merge` undoes it inside the trace.
    """
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    dyn, static = [], []
    for i, (path, leaf) in enumerate(with_paths):
        if is_dynamic(leaf) and not (_is_python_number(leaf) and _inside_object(path)):
            dyn.append(leaf)
            continue
        held = _holder(leaf)
        if held is None:
            static.append((i, Static(leaf)))
        else:
            static.append((i, held[0], len(held[1])))
            dyn.extend(held[1])
    return dyn, treedef, tuple(static)


def merge(dyn, treedef, static, scopes: list | None = None):
    """The pytree :func:`partition` split, rebuilt (inside a trace: with tracers).

    Keras objects need their variables mapped while the model runs: their
    ``(variable, value)`` mappings are appended to ``scopes`` (enter them with
    :func:`entered` around every call of the user's function).
    """
    scopes = [] if scopes is None else scopes
    n_leaves = treedef.num_leaves
    special = {entry[0]: entry for entry in static}
    leaves, it = [], iter(dyn)
    for i in range(n_leaves):
        entry = special.get(i)
        if entry is None:
            leaves.append(next(it))
        elif len(entry) == 2:
            leaves.append(entry[1].value)
        else:
            arrays = [next(it) for _ in range(entry[2])]
            leaves.append(_rebuild(entry[1], arrays, scopes))
    return jax.tree.unflatten(treedef, leaves)


@contextlib.contextmanager
def entered(scopes: list):
    """Map the Keras variables in ``scopes`` to their traced values for the block."""
    if not scopes:
        yield
        return
    import keras  # only reached when a Keras object was passed

    with keras.StatelessScope(state_mapping=[pair for mapping in scopes for pair in mapping]):
        yield
