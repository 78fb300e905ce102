"""Argument checks shared by every jig front-end, with one message format.

Every check takes the caller's public name first (``"jig.ig"``, ``"jig.metrics.deletion"``)
and raises ``TypeError`` (wrong kind) or ``ValueError`` (right kind, bad value) as

    {caller}: {argument} must be {what was expected}, got {what was given}[; {the fix}]

so a user reads which call, which argument, what it wanted and how to fix it.

Example:
  >>> from jig import _checks
  >>> _checks.positive_int("jig.ig", "steps", 8)
  8
  >>> _checks.positive_int("jig.ig", "steps", 0)
  Traceback (most recent call last):
  ...
  ValueError: jig.ig: steps must be an int >= 1, got 0
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "fail",
    "type_fail",
    "shown",
    "positive_int",
    "optional_positive_int",
    "boolean",
    "real",
    "prng_key",
    "one_of",
    "callable_",
]


def shown(value: Any) -> str:
    """A short description of ``value`` for an error message (never a huge repr)."""
    if isinstance(value, (jax.Array, np.ndarray)):
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} of type {type(value).__name__}"


def fail(caller: str, argument: str, expected: str, got: Any, fix: str | None = None, *, raw: bool = False):
    """A ``ValueError`` in the shared format (``raw=True``: ``got`` is already text)."""
    text = got if raw else shown(got)
    return ValueError(f"{caller}: {argument} must be {expected}, got {text}" + (f"; {fix}" if fix else ""))


def type_fail(caller: str, argument: str, expected: str, got: Any, fix: str | None = None, *, raw: bool = False):
    """A ``TypeError`` in the shared format."""
    text = got if raw else shown(got)
    return TypeError(f"{caller}: {argument} must be {expected}, got {text}" + (f"; {fix}" if fix else ""))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(caller: str, argument: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum``, or raise."""
    if not _is_int(value):
        raise type_fail(caller, argument, f"an int >= {minimum}", value)
    if value < minimum:
        raise fail(caller, argument, f"an int >= {minimum}", str(int(value)), raw=True)
    return int(value)


def optional_positive_int(caller: str, argument: str, value, minimum: int = 1) -> int | None:
    """``None``, or ``value`` as an ``int >= minimum``."""
    return None if value is None else positive_int(caller, argument, value, minimum)


def boolean(caller: str, argument: str, value) -> bool:
    """``value`` as a ``bool`` (``True``/``False`` only), or raise."""
    if not isinstance(value, (bool, np.bool_)):
        raise type_fail(caller, argument, "True or False", value)
    return bool(value)


def real(caller: str, argument: str, value, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the given interval, or raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise type_fail(caller, argument, "a real number", value)
    value = float(value)
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise fail(caller, argument, f"a finite number in {interval}", str(value), raw=True)
    return value


def prng_key(caller: str, argument: str, key) -> jax.Array:
    """``key`` if it is a PRNG key (``jax.random.key`` or a legacy ``PRNGKey``), else raise."""
    if isinstance(key, (jax.Array, np.ndarray)):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
    raise type_fail(caller, argument, "a PRNG key", key, "make one with jax.random.key(seed)")


def one_of(caller: str, argument: str, value, choices) -> Any:
    """``value`` if it is one of ``choices``, else raise listing them."""
    if not isinstance(value, str) or value not in choices:
        raise fail(caller, argument, f"one of {sorted(choices)}", value)
    return value


def callable_(caller: str, argument: str, value, signature: str) -> Any:
    """``value`` if callable, else raise naming the expected ``signature``."""
    if not callable(value):
        raise type_fail(caller, argument, f"a callable {signature}", value)
    return value
