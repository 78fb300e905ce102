"""Baselines for :func:`jig.ig`: what "absence of signal" means for an input.

IG explains ``F(x) - F(baseline)``, so the baseline fixes the question being
answered; a baseline far from the data (an all-black image for a model that
never saw one) can give attributions that are hard to read. Each helper here
returns either an array (computed from a dataset) or a jitted callable
``x -> baseline``, both accepted as ``jig.ig(f, baseline=...)``. The ones
with ``num=`` (and :func:`sample`) give a stack of baselines with a leading
axis for :func:`jig.paths.expected`, which averages IG over them.

==================  ============================================================
helper              a good choice when
==================  ============================================================
:func:`zeros`       zero means "nothing" (centred/normalised features, black
                    images, padding embeddings); the default ``0.0``
:func:`constant`    another value means "nothing" (e.g. mid-grey 0.5)
:func:`uniform`     no single value is neutral; average several draws
:func:`gaussian`    you want the input's own noisy neighbourhood as reference
:func:`blurred`     images whose fine detail is the signal (Blur IG's start)
:func:`mean`        tabular data: the average row is a typical "nothing special"
:func:`median`      the same, robust to outliers and skewed features
:func:`sample`      no baseline is neutral: Expected Gradients over data rows
==================  ============================================================

Example:
  >>> import jax, jax.numpy as jnp, jig
  >>> f = lambda x: jnp.sum(x ** 2)
  >>> x = jnp.array([1.0, 2.0])
  >>> jig.ig(f, jig.baselines.constant(1.0), 8)(x).round(4).tolist()  # x² - 1
  [0.0, 3.0]
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jig import paths as _paths

__all__ = ["blurred", "constant", "gaussian", "mean", "median", "sample", "uniform", "zeros"]


def _float_dtype(leaf):
    dtype = jnp.result_type(leaf)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32)


def _check_num(num) -> int | None:
    if num is None:
        return None
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num must be None (one baseline) or an int >= 1 (a stack for jig.paths.expected), got {num!r}")
    return int(num)


def _check_key(key) -> None:
    ok = isinstance(key, (jax.Array, np.ndarray)) and (
        (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ())
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not ok:
        raise TypeError(f"key must be a PRNG key (jax.random.key(seed)), got {key!r}")


def _check_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _per_leaf_noise(key, x, num, draw):
    """``draw(key, shape, dtype)`` for every leaf of ``x`` (with a leading ``num`` axis)."""
    leaves, tree = jax.tree.flatten(x)
    keys = jax.random.split(key, max(len(leaves), 1))
    lead = () if num is None else (num,)
    out = [draw(k, lead + tuple(jnp.shape(leaf)), _float_dtype(leaf)) for k, leaf in zip(keys, leaves)]
    return jax.tree.unflatten(tree, out)


def zeros() -> Callable[[Any], Any]:
    """``x -> 0`` like ``x``: the default baseline (``jig.ig(f, 0.0, ...)``).

    Good when zero means "nothing": standardised tabular features (0 is the mean),
    black images, all-zero embeddings. Poor when zero is itself informative (a black
    pixel in a dark-object classifier gets no attribution, whatever its role).

    Example:
      >>> import jax.numpy as jnp, jig
      >>> jig.baselines.zeros()(jnp.ones(3)).tolist()
      [0.0, 0.0, 0.0]
    """
    return lambda x: jax.tree.map(lambda leaf: jnp.zeros(jnp.shape(leaf), _float_dtype(leaf)), x)


def constant(value: float) -> Callable[[Any], Any]:
    """``x -> value`` like ``x``: a fixed reference level.

    Good when a known value means "nothing": mid-grey (0.5) for images in [0, 1], a
    sensor's resting value, the padding embedding. Features equal to ``value`` get
    no attribution (a known blind spot of any fixed baseline).

    Example:
      >>> import jax.numpy as jnp, jig
      >>> jig.baselines.constant(0.5)(jnp.zeros(2)).tolist()
      [0.5, 0.5]
    """
    value = _check_real("value", value)
    return lambda x: jax.tree.map(lambda leaf: jnp.full(jnp.shape(leaf), value, _float_dtype(leaf)), x)


def uniform(key: jax.Array, low: float = 0.0, high: float = 1.0, *, num: int | None = None) -> Callable[[Any], Any]:
    """``x -> U(low, high)`` noise shaped like ``x`` (a stack of ``num`` with ``num=``).

    Good when no single value is neutral (images in [0, 1]: black and white are both
    content), so no feature is systematically blind; noise baselines are meant to be
    averaged, so use ``num=`` with :func:`jig.paths.expected`. The same ``key``
    gives the same noise (also for every example of a ``jax.vmap`` batch).

    Args:
      key: a PRNG key.
      low, high: the range.
      num: ``None`` for one baseline, or ``K`` for a stack ``(K, *x.shape)``.

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> b = jig.baselines.uniform(jax.random.key(0), num=4)(jnp.zeros(3))
      >>> b.shape, bool(jnp.all((b >= 0) & (b <= 1)))
      ((4, 3), True)
    """
    _check_key(key)
    low, high = _check_real("low", low), _check_real("high", high)
    if not low < high:
        raise ValueError(f"uniform: expected low < high, got low={low}, high={high}")
    num = _check_num(num)

    def draw(k, shape, dtype):
        return jax.random.uniform(k, shape, dtype, low, high)

    return jax.jit(lambda x: _per_leaf_noise(key, x, num, draw))


def gaussian(
    key: jax.Array,
    stddev: float = 0.1,
    *,
    num: int | None = None,
    clip: tuple[float, float] | None = None,
) -> Callable[[Any], Any]:
    """``x -> x + N(0, stddev²)`` (optionally clipped): a noisy copy of the input.

    Good when the question is "which features matter compared with nearby inputs",
    the Gaussian baseline of Sturmfels et al. (Distill, 2020): it stays close to the
    data, and averaging several draws (``num=`` with :func:`jig.paths.expected`)
    reduces the noise. ``clip=(lo, hi)`` keeps it in the valid input range. The
    same ``key`` gives the same noise.

    Args:
      key: a PRNG key.
      stddev: the noise scale (> 0), in the input's units.
      num: ``None`` for one baseline, or ``K`` for a stack ``(K, *x.shape)``.
      clip: optional ``(lo, hi)`` range.

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> b = jig.baselines.gaussian(jax.random.key(0), 0.1, clip=(0.0, 1.0))(jnp.full(4, 0.5))
      >>> b.shape, bool(jnp.all(jnp.abs(b - 0.5) < 0.5))
      ((4,), True)
    """
    _check_key(key)
    stddev = _check_real("stddev", stddev)
    if not stddev > 0:
        raise ValueError(f"gaussian: stddev must be > 0, got {stddev}")
    if clip is not None:
        if not (isinstance(clip, (tuple, list)) and len(clip) == 2):
            raise TypeError(f"gaussian: clip must be None or a pair (lo, hi), got {clip!r}")
        lo, hi = _check_real("clip[0]", clip[0]), _check_real("clip[1]", clip[1])
        if not lo < hi:
            raise ValueError(f"gaussian: clip must satisfy lo < hi, got {clip}")
    num = _check_num(num)

    def baseline(x):
        noise = _per_leaf_noise(key, x, num, lambda k, s, d: stddev * jax.random.normal(k, s, d))

        def add(leaf, eps):
            out = jnp.asarray(leaf).astype(eps.dtype) + eps
            return out if clip is None else jnp.clip(out, lo, hi)

        return jax.tree.map(add, x, noise)

    return jax.jit(baseline)


def blurred(sigma: float = 10.0, *, axes: Sequence[int] | None = None, truncate: float = 3.0,
            mode: str = "reflect") -> Callable[[Any], Any]:
    """``x -> gaussian_blur(x, sigma)`` over the spatial ``axes`` (default the H, W of
    an ``HW``/``HWC`` image): a straight-line baseline that removes fine detail but
    keeps colour and layout.

    Good for images when edges and texture carry the signal and a black image would
    be out of distribution. For the blur *path* (blurring along the whole path),
    use :func:`jig.paths.blur` instead. ``axes`` and ``mode`` are as in
    :func:`jig.paths.gaussian_blur`: an input whose first axis may be channels
    (``(3, 28, 28)``) needs ``axes=(1, 2)``, and ``mode="constant"`` pads with zeros
    (the baseline then darkens towards the edges) instead of reflecting.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> img = jnp.zeros((5, 5)).at[2, 2].set(1.0)
      >>> b = jig.baselines.blurred(1.0)(img)
      >>> round(float(b.sum()), 4), bool(b[2, 2] < 0.5)
      (1.0, True)
    """
    sigma = _paths._check_sigma("sigma", sigma, allow_zero=False)
    axes = _paths._check_axes(axes)
    mode = _paths._check_mode("jig.baselines.blurred", mode)
    radius = int(np.ceil(float(truncate) * sigma))

    def baseline(x):
        return jax.tree.map(lambda leaf: _paths._blur_leaf(leaf, sigma, axes, radius, mode, "jig.baselines.blurred"), x)

    return jax.jit(baseline)


def _dataset(data, what: str):
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{what}: data has no array leaves; pass an array of rows (N, ...)")
    n = None
    for i, leaf in enumerate(leaves):
        shape = jnp.shape(leaf)
        if len(shape) < 1 or shape[0] < 1:
            raise ValueError(f"{what}: data leaf {i} has shape {tuple(shape)}; expected rows along a leading axis, (N, ...) with N >= 1")
        if n is not None and shape[0] != n:
            raise ValueError(f"{what}: data leaves disagree on the number of rows ({n} vs {shape[0]})")
        n = shape[0]
    return n


def mean(data) -> Any:
    """The mean row of ``data`` (rows along axis 0; pytrees leaf by leaf).

    Good for tabular data: the average example, so attributions answer "why does
    this example differ from a typical one". For binary/one-hot features the mean
    is not a valid input; prefer :func:`median` or :func:`sample` then.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> jig.baselines.mean(jnp.array([[0.0, 2.0], [2.0, 4.0]])).tolist()
      [1.0, 3.0]
    """
    _dataset(data, "mean")
    return jax.tree.map(lambda d: jnp.mean(jnp.asarray(d, _float_dtype(d)), axis=0), data)


def median(data) -> Any:
    """The per-feature median of ``data`` (rows along axis 0).

    Like :func:`mean` but robust to outliers and skew, and it keeps binary
    features at valid values (0 or 1 when N is odd).

    Example:
      >>> import jax.numpy as jnp, jig
      >>> jig.baselines.median(jnp.array([[0.0], [1.0], [100.0]])).tolist()
      [1.0]
    """
    _dataset(data, "median")
    return jax.tree.map(lambda d: jnp.median(jnp.asarray(d, _float_dtype(d)), axis=0), data)


def sample(data, num: int, key: jax.Array, *, replace: bool = False) -> Any:
    """``num`` rows of ``data`` drawn with ``key``: a stack for :func:`jig.paths.expected`.

    Good when no single baseline is neutral: Expected Gradients averages IG over
    baselines drawn from the data, so attributions answer "why this example rather
    than a typical one" without picking one reference. Without replacement by
    default (``num`` must then be at most N).

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> rows = jnp.arange(12.0).reshape(6, 2)
      >>> stack = jig.baselines.sample(rows, 3, jax.random.key(0))
      >>> stack.shape
      (3, 2)
      >>> f = lambda x: jnp.sum(x ** 2)
      >>> jig.ig(f, None, 8, path=jig.paths.expected(stack))(jnp.ones(2)).shape
      (2,)
    """
    n = _dataset(data, "sample")
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"sample: num must be an int >= 1, got {num!r}")
    if not replace and num > n:
        raise ValueError(f"sample: num={num} rows without replacement, but data has only {n}; pass replace=True or a smaller num")
    _check_key(key)
    index = jax.random.choice(key, n, (int(num),), replace=bool(replace))
    return jax.tree.map(lambda d: jnp.asarray(d)[index], data)
