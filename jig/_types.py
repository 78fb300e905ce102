"""The few type aliases of jig's public signatures (documentation, not enforcement)."""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import jax

#: A pytree: an array, or nested tuples/lists/dicts/registered nodes of arrays.
PyTree = Any
#: A scalar, an array or pytree like the attributed input, or a callable ``x -> baseline``;
#: ``None`` for a path that defines its own start.
Baseline = Union[float, jax.Array, PyTree, Callable[[PyTree], PyTree], None]
#: Which positional argument(s) of ``f`` to attribute.
ArgNums = Union[int, Sequence[int]]
#: ``None`` (``f`` returns a scalar), ``"all"`` (every output) or an int array ``(K,)``.
Targets = Union[None, str, jax.Array, Sequence[int]]
#: An explainer: the callable a jig transform returns (see jig.Explainer).
Explainer = Callable[..., Any]

__all__ = ["PyTree", "Baseline", "ArgNums", "Targets", "Explainer"]
