"""How faithful is an explanation? Attribution metrics as compiled, batched JAX programs.

Each metric is a pure function of ONE example (batch it with ``jax.vmap`` or
:func:`jig.sharded`); each evaluates all of its perturbed inputs in one ``vmap``-ed
call inside one ``jax.jit``, and samples only with the PRNG key it is given.

- :func:`infidelity` (Yeh et al. 2019): ``E_I[(Iᵀ A − (F(x) − F(x − I)))²]``, as
  ``captum.metrics.infidelity`` defines it (its ``normalize`` option and its
  "multiply by inputs" perturbations included).
- :func:`sensitivity_max` (Yeh et al. 2019): the largest relative change
  ``‖E(x + δ) − E(x)‖ / ‖E(x)‖`` of an explanation over ``δ ~ U(−r, r)``, as
  ``captum.metrics.sensitivity_max`` defines it.
- :func:`deletion` / :func:`insertion` (Petsiuk et al. 2018): ``F`` as the most
  attributed features are removed from ``x`` (replaced by a baseline), or inserted
  into the baseline; the curve and its area.
- :func:`randomization` (Adebayo et al. 2018): the similarity of the explanation to
  itself as a model's layers are re-initialised one by one from the top.

The completeness error of IG itself is ``jig.ig(..., return_delta=True)``.

Example:
  >>> import jax, jax.numpy as jnp, jig
  >>> w = jnp.array([3.0, -1.0, 2.0, 0.5])
  >>> f = lambda x: x @ w
  >>> x = jnp.ones(4)
  >>> a = jig.ig(f, 0.0, 8)(x)                      # = w * x for a linear model
  >>> round(float(jig.metrics.infidelity(f, x, a, key=jax.random.key(0))), 6)
  0.0
  >>> jig.metrics.deletion(f, x, a, steps=4).values.tolist()  # drop 3, then 2, then 0.5, then -1
  [4.5, 1.5, -0.5, -1.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any, Callable, NamedTuple, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks
from jig._types import Explainer, PyTree

__all__ = [
    "Curve",
    "Randomization",
    "infidelity",
    "sensitivity_max",
    "deletion",
    "insertion",
    "randomization",
    "param_layers",
    "spearman",
    "pearson",
    "cosine",
]

#: ``None`` (the default noise), a callable ``(key, x) -> perturbation``, or an array
#: of perturbations stacked along a leading samples axis.
Perturb = Union[None, Callable[[jax.Array, jax.Array], jax.Array], jax.Array]

_NAME = "jig.metrics."
_UNROLL = 16  # sensitivity_max: at most this many separate explain calls per program


# --------------------------------------------------------------------------- checks


def _array(caller: str, argument: str, value) -> jax.Array:
    """``value`` as a floating JAX array (a tracer stays a tracer)."""
    if not isinstance(value, (jax.Array, np.ndarray, np.generic, float, int, list, tuple)) or isinstance(
            value, (bool, np.bool_)):
        raise _checks.type_fail(caller, argument, "a floating-point array", value)
    value = jnp.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise _checks.type_fail(
            caller, argument, "a floating-point array", value,
            "these metrics perturb x continuously; for token ids, measure at the embedding layer "
            "(f taking the embeddings, see jig.flax.split)",
        )
    return value


def _like_x(caller: str, argument: str, value, x: jax.Array) -> jax.Array:
    value = _array(caller, argument, value)
    if value.shape != x.shape:
        raise _checks.fail(caller, argument, f"an array of x's shape {tuple(x.shape)}", value,
                           "pass the attributions of this x (for a batch, jax.vmap the metric)")
    return value


def _baseline(caller: str, value, x: jax.Array) -> jax.Array:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = float(value)  # baseline=0 means 0.0
    value = _array(caller, "baseline", value)
    try:
        ok = np.broadcast_shapes(value.shape, x.shape) == tuple(x.shape)
    except ValueError:
        ok = False
    if not ok:
        raise _checks.fail(caller, "baseline", f"a scalar or an array broadcasting to x's shape {tuple(x.shape)}", value)
    return jnp.broadcast_to(value.astype(x.dtype), x.shape)


def _key(caller: str, key, needed: str) -> jax.Array:
    if key is None:
        raise _checks.type_fail(caller, "key", "a PRNG key", key, f"{needed}; make one with jax.random.key(seed)")
    return _checks.prng_key(caller, "key", key)


def _scalar_output(caller: str, out, what: str = "f") -> None:
    if jnp.shape(out) != ():
        raise _checks.fail(
            caller, f"{what}'s output", "a scalar", f"shape {tuple(jnp.shape(out))}",
            "pick one output with a closure, e.g. lambda x: model(x)[c]", raw=True,
        )


def _perturbations(caller: str, perturb: Perturb, key, samples: int, x: jax.Array, what: str):
    """``(keys, perturb, None)`` to draw the perturbations, or ``(None, None, table)`` given as an array."""
    if perturb is not None and not callable(perturb):
        table = _array(caller, "perturb", perturb)
        if table.ndim != x.ndim + 1 or table.shape[1:] != x.shape:
            raise _checks.fail(caller, "perturb", f"a callable (key, x) -> {what}, or an array of shape "
                               f"(samples, *{tuple(x.shape)})", table)
        return None, None, table.astype(x.dtype)
    key = _key(caller, key, f"it draws the {what}s")
    samples = _checks.positive_int(caller, "samples", samples)
    return jax.random.split(key, samples), perturb, None


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree)))


def _flat(tree) -> jax.Array:
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(tree)])


# --------------------------------------------------------------------------- infidelity


@partial(jax.jit, static_argnames=("f", "perturb", "normalize", "multiply_by_inputs"))
def _infidelity(f, x, attributions, baseline, keys, table, stddev, *, perturb, normalize, multiply_by_inputs):
    if keys is None:
        noise = table
    elif perturb is None:  # the default: I ~ N(0, stddev²), stddev traced (no recompilation per value)
        noise = stddev.astype(x.dtype) * jax.vmap(lambda k: jax.random.normal(k, x.shape, x.dtype))(keys)
    else:
        noise = jax.vmap(perturb, in_axes=(0, None))(keys, x)
    if noise.shape[1:] != x.shape:
        raise _checks.fail(_NAME + "infidelity", "perturb's output", f"an array of x's shape {tuple(x.shape)}",
                           f"shape {tuple(noise.shape[1:])}", raw=True)
    fx = f(x)
    _scalar_output(_NAME + "infidelity", fx)
    diff = fx - jax.vmap(f)(x - noise)  # F(x) - F(x - I), one batched call
    if multiply_by_inputs:  # Captum's infidelity_perturb_func_decorator(True): I / (x - b), 0 -> 1
        span = x - baseline
        noise = noise / jnp.where(span == 0, jnp.ones_like(span), span)
    dots = jnp.sum((noise * attributions).reshape(noise.shape[0], -1), axis=1)  # Iᵀ A per sample
    if normalize:  # beta = E[Iᵀ A (F(x) - F(x - I))] / E[(Iᵀ A)²], a zero denominator read as 1
        den = jnp.sum(dots * dots)
        beta = jnp.sum(dots * diff) / jnp.where(den == 0, jnp.ones_like(den), den)
        dots = beta * dots
    return jnp.mean(jnp.square(dots - diff))


def infidelity(
    f: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    attributions: jax.Array,
    *,
    key: jax.Array | None = None,
    samples: int = 10,
    stddev: float = 0.1,
    perturb: Perturb = None,
    normalize: bool = False,
    multiply_by_inputs: bool = False,
    baseline: Any = 0.0,
) -> jax.Array:
    """Explanation infidelity (Yeh et al. 2019), exactly as Captum's ``infidelity``.

    Computes, over perturbations ``I_1..I_S`` of ``x``,

        infidelity = (1/S) Σ_s (I_sᵀ A − (F(x) − F(x − I_s)))²

    the mean squared error of the attributions ``A`` as a first-order model of how
    ``F`` changes when ``I`` is taken away from the input. All ``S`` perturbed inputs
    are evaluated in one batched call.

    Args:
      f: ``x -> scalar`` (e.g. ``lambda x: logits(x, params)[c]``).
      x: the input (a floating array; one example).
      attributions: the explanation of ``F`` at ``x``, shaped like ``x``.
      key: a PRNG key; the perturbations are drawn with ``jax.random.split(key, samples)``
        (one key per sample). Needed unless ``perturb`` is an array.
      samples: the number of perturbations ``S`` (int >= 1).
      stddev: the default perturbation is ``I ~ N(0, stddev²)``, entry by entry.
      perturb: replaces the default noise: a callable ``(key, x) -> I`` (called once per
        sample, under ``vmap``), or an array of shape ``(S, *x.shape)`` holding the
        perturbations themselves (then ``key`` and ``samples`` are not used); the model
        is evaluated at ``x − I``.
      normalize: rescale ``A`` by ``β = Σ_s (I_sᵀA)(F(x) − F(x − I_s)) / Σ_s (I_sᵀA)²``
        first (Captum's ``normalize=True``; invariant to scaling ``A``; a zero
        denominator counts as 1).
      multiply_by_inputs: for "global" attributions that already include the
        ``(x − baseline)`` factor (IG, DeepLift): the dot product uses
        ``I / (x − baseline)`` (a zero denominator counts as 1), Captum's
        ``infidelity_perturb_func_decorator(multiply_by_inputs=True)``. With it, IG of
        a linear model has infidelity 0 under any perturbation.
      baseline: the baseline of ``multiply_by_inputs`` (a scalar or an array
        broadcasting to ``x``; Captum's ``baselines=None`` is ``0.0``).

    Returns:
      The infidelity, a float scalar (0 is perfect).

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> f = lambda x: jnp.sum(x ** 2)
      >>> x = jnp.array([1.0, -2.0, 0.5])
      >>> grad = jax.grad(f)(x)                    # a local explanation
      >>> noise = jnp.array([[0.1, 0.0, 0.0]])     # F(x) - F(x - I) = 0.2 - 0.01
      >>> round(float(jig.metrics.infidelity(f, x, grad, perturb=noise)), 7)  # (0.2 - 0.19)²
      0.0001
    """
    caller = _NAME + "infidelity"
    _checks.callable_(caller, "f", f, "x -> scalar")
    x = _array(caller, "x", x)
    attributions = _like_x(caller, "attributions", attributions, x)
    stddev = _checks.real(caller, "stddev", stddev, low=0.0)
    normalize = _checks.boolean(caller, "normalize", normalize)
    multiply_by_inputs = _checks.boolean(caller, "multiply_by_inputs", multiply_by_inputs)
    base = _baseline(caller, baseline, x)
    keys, fn, table = _perturbations(caller, perturb, key, samples, x, "perturbation")
    return _infidelity(f, x, attributions.astype(x.dtype), base, keys, table, jnp.float32(stddev),
                       perturb=fn, normalize=normalize, multiply_by_inputs=multiply_by_inputs)


# --------------------------------------------------------------------------- sensitivity


@partial(jax.jit, static_argnames=("explain", "perturb"))
def _sensitivity(explain, x, keys, table, radius, *, perturb):
    if keys is None:
        delta = table
    elif perturb is None:  # the default: U(-radius, radius), radius traced
        r = radius.astype(x.dtype)
        delta = jax.vmap(lambda k: jax.random.uniform(k, x.shape, x.dtype, -r, r))(keys)
    else:
        delta = jax.vmap(perturb, in_axes=(0, None))(keys, x)
    e0 = explain(x)
    # up to _UNROLL separate calls of explain inside this one program, each vmapped over its
    # share of the samples: on XLA:CPU ten separate IG calls ran ~5x faster than one IG
    # vmapped over ten inputs (jig.ig's hoisting of the first layer applies per call)
    groups = np.array_split(np.arange(delta.shape[0]), min(delta.shape[0], _UNROLL))
    parts = [jax.tree_util.tree_map(lambda e: e[None], explain(x + delta[g[0]])) if len(g) == 1
             else jax.vmap(explain)(x + delta[g[0]:g[-1] + 1]) for g in groups]
    moved = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
    diffs = jax.tree_util.tree_map(lambda m, e: m - e, moved, e0)
    num = jnp.sqrt(sum(jnp.sum(jnp.square(d).reshape(d.shape[0], -1), axis=1)
                       for d in jax.tree_util.tree_leaves(diffs)))
    den = _norm(e0)
    return jnp.max(num / jnp.where(den == 0, jnp.ones_like(den), den))


def sensitivity_max(
    explain: Explainer,
    x: jax.Array,
    *,
    key: jax.Array | None = None,
    radius: float = 0.02,
    samples: int = 10,
    perturb: Perturb = None,
) -> jax.Array:
    """Max-sensitivity of an explanation (Yeh et al. 2019), as Captum's ``sensitivity_max``.

    Computes

        max_s ‖E(x + δ_s) − E(x)‖_F / ‖E(x)‖_F,     δ_s ~ U(−radius, radius) entry by entry

    (the L∞ ball of the given radius; a zero ``‖E(x)‖`` counts as 1). The ``S``
    perturbed explanations are computed in one compiled program, as up to 16 calls of
    ``explain`` each ``vmap``-ed over its share of the samples (on XLA:CPU separate
    calls of an IG explainer ran several times faster than one over all samples; the
    compile time grows with the number of calls).

    Args:
      explain: ``x -> attributions`` (an array or pytree; the norm is over all its
        entries), e.g. ``lambda x: jig.ig(f, 0.0, 32)(x, params)``.
      x: the input (a floating array; one example).
      key: a PRNG key (``δ_s`` from ``jax.random.split(key, samples)``); needed unless
        ``perturb`` is an array.
      radius: the L∞ radius (Captum's default 0.02; Quantus's MaxSensitivity uses 0.2).
      samples: the number of perturbations ``S`` (int >= 1).
      perturb: replaces the uniform noise: a callable ``(key, x) -> δ`` or an array of
        shape ``(S, *x.shape)`` holding the ``δ_s`` (added to ``x``).

    Returns:
      The max-sensitivity, a float scalar (0: the explanation does not move).

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> explain = jax.grad(lambda x: jnp.sum(x ** 2))     # E(x) = 2x
      >>> x = jnp.array([3.0, 4.0])                           # ‖E(x)‖ = 10
      >>> deltas = jnp.array([[0.01, 0.0], [0.0, -0.02]])     # E moves by 0.02, then 0.04
      >>> round(float(jig.metrics.sensitivity_max(explain, x, perturb=deltas)), 6)
      0.004
    """
    caller = _NAME + "sensitivity_max"
    _checks.callable_(caller, "explain", explain, "x -> attributions")
    x = _array(caller, "x", x)
    radius = _checks.real(caller, "radius", radius, low=0.0)
    keys, fn, table = _perturbations(caller, perturb, key, samples, x, "perturbation")
    return _sensitivity(explain, x, keys, table, jnp.float32(radius), perturb=fn)


# --------------------------------------------------------------------------- deletion, insertion


class Curve(NamedTuple):
    """A deletion or insertion curve (a pytree: works under ``jit`` and ``vmap``).

    Attributes:
      fractions: ``(steps + 1,)``, the share of features removed (deletion) or inserted
        (insertion) at each point, from 0 to 1.
      values: ``(steps + 1,)``, ``F`` at each point (``values[0]``: ``F(x)`` for deletion,
        ``F(baseline)`` for insertion).
      area: the trapezoid area under ``values`` over ``fractions`` (deletion: lower is
        more faithful; insertion: higher is).
    """

    fractions: jax.Array
    values: jax.Array
    area: jax.Array


def _feature_axes(caller: str, feature_axes, ndim: int) -> tuple[int, ...]:
    if feature_axes is None:
        return ()
    axes = (feature_axes,) if isinstance(feature_axes, (int, np.integer)) else feature_axes
    if (not isinstance(axes, (tuple, list)) or not all(_checks._is_int(a) for a in axes)):
        raise _checks.type_fail(caller, "feature_axes", "None, an int or a tuple of ints", feature_axes)
    if not all(-ndim <= a < ndim for a in axes):
        raise _checks.fail(caller, "feature_axes", f"axes of x (x has {ndim} axes)", feature_axes)
    norm = tuple(sorted(int(a) % ndim for a in axes))
    if len(set(norm)) != len(norm) or len(norm) == ndim:
        raise _checks.fail(caller, "feature_axes", f"distinct axes leaving at least one of x's {ndim} axes",
                           feature_axes, "feature_axes are the axes inside one feature, e.g. -1 for an image's channels")
    return norm


@partial(jax.jit, static_argnames=("f", "steps", "axes", "insert"))
def _curve(f, x, attributions, baseline, *, steps, axes, insert):
    scores = jnp.sum(attributions, axis=axes, keepdims=True) if axes else attributions
    grid = scores.shape
    flat = scores.reshape(-1)
    n = flat.size
    order = jnp.argsort(-flat, stable=True)  # most attributed first; ties in index order
    rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    counts = (np.arange(steps + 1) * n) // steps  # features moved at each point
    moved = rank[None, :] < jnp.asarray(counts, jnp.int32)[:, None]  # (steps + 1, n)
    moved = moved.reshape((steps + 1, *grid))
    src, dst = (baseline, x) if insert else (x, baseline)
    inputs = jnp.where(moved, dst[None], src[None])
    out = jax.vmap(f)(inputs)  # every masked input in one batched call
    _scalar_output(_NAME + ("insertion" if insert else "deletion"), out[0])
    fractions = jnp.asarray(counts / n, out.dtype)
    return Curve(fractions, out, jnp.trapezoid(out, fractions))


def _ordering(caller, f, x, attributions, baseline, steps, feature_axes, insert) -> Curve:
    _checks.callable_(caller, "f", f, "x -> scalar")
    x = _array(caller, "x", x)
    attributions = _like_x(caller, "attributions", attributions, x)
    steps = _checks.positive_int(caller, "steps", steps)
    axes = _feature_axes(caller, feature_axes, x.ndim)
    n = math.prod(d for i, d in enumerate(x.shape) if i not in axes)
    if steps > n:
        raise _checks.fail(caller, "steps", f"at most the number of features ({n})", str(steps), raw=True)
    return _curve(f, x, attributions, _baseline(caller, baseline, x), steps=steps, axes=axes, insert=insert)


def deletion(
    f: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    attributions: jax.Array,
    *,
    baseline: Any = 0.0,
    steps: int = 20,
    feature_axes: int | Sequence[int] | None = None,
) -> Curve:
    """The deletion curve (Petsiuk et al. 2018): ``F`` as the most attributed features go.

    Features are ranked by attribution, largest (most positive) first; at point
    ``k = 0..steps`` the top ``⌊k·n/steps⌋`` of the ``n`` features are replaced by the
    baseline. A faithful explanation makes ``F`` fall fast: a small ``area``. All
    ``steps + 1`` masked inputs are evaluated in one batched call.

    With ``steps = n / m`` and the baseline at ``x``'s minimum, ``values[1:]`` is
    Quantus's ``PixelFlipping(features_in_step=m)`` curve (which has no unperturbed
    point).

    Args:
      f: ``x -> scalar`` (e.g. the class probability, ``lambda x: softmax(logits(x))[c]``).
      x: the input (a floating array; one example).
      attributions: the explanation, shaped like ``x``.
      baseline: what a removed feature becomes: a scalar or an array broadcasting to ``x``.
      steps: the number of removal steps (an int in ``[1, n]``).
      feature_axes: the axes of ``x`` that form ONE feature, removed together and ranked
        by their summed attribution: ``-1`` for all channels of an image's pixel, or for
        a token's embedding. ``None``: every entry is a feature.

    Returns:
      A :class:`Curve` ``(fractions, values, area)`` of ``steps + 1`` points.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> x = jnp.ones((2, 2, 3))                                 # 2x2 pixels, 3 channels
      >>> a = jnp.arange(12.0).reshape(2, 2, 3)                   # pixel (1, 1) most attributed
      >>> c = jig.metrics.deletion(jnp.sum, x, a, steps=4, feature_axes=-1)
      >>> c.values.tolist(), c.fractions.tolist()
      ([12.0, 9.0, 6.0, 3.0, 0.0], [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    return _ordering(_NAME + "deletion", f, x, attributions, baseline, steps, feature_axes, False)


def insertion(
    f: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    attributions: jax.Array,
    *,
    baseline: Any = 0.0,
    steps: int = 20,
    feature_axes: int | Sequence[int] | None = None,
) -> Curve:
    """The insertion curve (Petsiuk et al. 2018): ``F`` as the most attributed features arrive.

    Starts from the baseline; at point ``k = 0..steps`` the top ``⌊k·n/steps⌋``
    features (largest attribution first) take their values from ``x``. A faithful
    explanation makes ``F`` rise fast: a large ``area``. Same arguments as
    :func:`deletion`; ``values[0] = F(baseline)``, ``values[-1] = F(x)``.

    Returns:
      A :class:`Curve` ``(fractions, values, area)`` of ``steps + 1`` points.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> w = jnp.array([1.0, 4.0, 2.0])
      >>> c = jig.metrics.insertion(lambda x: x @ w, jnp.ones(3), w, steps=3)
      >>> c.values.tolist(), float(c.area)
      ([0.0, 4.0, 6.0, 7.0], 4.5)
    """
    return _ordering(_NAME + "insertion", f, x, attributions, baseline, steps, feature_axes, True)


# --------------------------------------------------------------------------- similarities


def _ranks(v: jax.Array) -> jax.Array:
    """1-based ranks, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    s = jnp.sort(v)
    lo = jnp.searchsorted(s, v, side="left")
    hi = jnp.searchsorted(s, v, side="right")
    return (lo + hi + 1).astype(jnp.result_type(v.dtype, jnp.float32)) / 2


def pearson(a: PyTree, b: PyTree) -> jax.Array:
    """Pearson correlation of all entries of ``a`` and ``b`` (NaN if either is constant)."""
    a, b = _flat(a), _flat(b)
    a, b = a - a.mean(), b - b.mean()
    return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))


def spearman(a: PyTree, b: PyTree) -> jax.Array:
    """Spearman rank correlation of all entries (average ranks for ties, as SciPy's ``spearmanr``)."""
    return pearson(_ranks(_flat(a)), _ranks(_flat(b)))


def cosine(a: PyTree, b: PyTree) -> jax.Array:
    """Cosine similarity of all entries of ``a`` and ``b``."""
    a, b = _flat(a), _flat(b)
    return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))


_SIMILARITIES = {"spearman": spearman, "pearson": pearson, "cosine": cosine}


# --------------------------------------------------------------------------- randomization


class Randomization(NamedTuple):
    """The result of :func:`randomization`.

    Attributes:
      layers: the layers in the order they were randomised (top first), each a
        ``/``-joined path into ``params``.
      similarity: ``(len(layers) + 1,)``: ``similarity[k]`` compares the explanation
        after re-initialising the first ``k`` layers with the original one
        (``similarity[0]`` compares the original with itself: 1).
    """

    layers: tuple
    similarity: jax.Array


def _is_leaf(node) -> bool:
    return not isinstance(node, (Mapping, list, tuple))


def _children(node):
    return list(node.items()) if isinstance(node, Mapping) else list(enumerate(node))


def param_layers(params: PyTree) -> list[tuple]:
    """The layers of a parameter pytree, as key paths, in the containers' own order.

    A layer is a dict (or list/tuple) whose children are all arrays, e.g. a Flax
    module's ``{"kernel", "bias"}``; an array beside sub-dicts is a layer of its own.
    For Flax variables (a dict with a ``"params"`` collection) only ``"params"`` is
    walked. :func:`randomization` orders these groups by the model's forward order.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> p = {"params": {"conv": {"kernel": jnp.ones(3), "bias": jnp.ones(1)},
      ...                 "dense": {"kernel": jnp.ones(2)}}}
      >>> jig.metrics.param_layers(p)
      [('params', 'conv'), ('params', 'dense')]
    """
    def walk(node, prefix):
        kids = _children(node)
        if not kids:
            return []
        if all(_is_leaf(v) for _, v in kids):
            return [prefix]
        out = []
        for k, v in kids:
            out += [prefix + (k,)] if _is_leaf(v) else walk(v, prefix + (k,))
        return out

    if _is_leaf(params):
        return [()]
    if isinstance(params, Mapping) and "params" in params:
        return walk(params["params"], ("params",))
    return walk(params, ())


def _first_reads(explain, params, x) -> list[float]:
    """For each leaf of ``params`` (flatten order): when ``explain(params, x)`` first reads it.

    The time is the position of the first equation of ``explain``'s jaxpr that takes the
    leaf, counted depth-first through nested calls (``jit``, custom derivatives, ``scan``
    bodies); ``inf`` for a leaf it never reads. A model reads its layers in forward order.
    """
    from jax.extend import core as jex

    spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), (params, x))
    closed = jax.make_jaxpr(explain)(*spec)
    n = len(jax.tree_util.tree_leaves(params))
    first: dict[int, int] = {}
    clock = [0]

    def walk(jaxpr, names):
        for eqn in jaxpr.eqns:
            clock[0] += 1
            used = [(k, v) for k, v in enumerate(eqn.invars) if not isinstance(v, jex.Literal) and v in names]
            subs = [v for v in eqn.params.values() if isinstance(v, (jex.ClosedJaxpr, jex.Jaxpr))]
            inner = subs[0].jaxpr if len(subs) == 1 and isinstance(subs[0], jex.ClosedJaxpr) else (subs or [None])[0]
            if len(subs) == 1 and len(inner.invars) == len(eqn.invars):  # a call: follow the arguments in
                walk(inner, {inner.invars[k]: names[v] for k, v in used})
            else:
                for _, v in used:
                    first.setdefault(names[v], clock[0])

    walk(closed.jaxpr, {v: i for i, v in enumerate(closed.jaxpr.invars[:n])})
    return [first.get(i, math.inf) for i in range(n)]


def _key_of(entry) -> Any:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    return entry


def _default_init(key, leaf):
    """A fresh draw from a normal with the array's own mean and standard deviation."""
    mean, std = jnp.mean(leaf), jnp.std(leaf)
    return (mean + std * jax.random.normal(key, leaf.shape, jnp.result_type(leaf.dtype, jnp.float32))).astype(leaf.dtype)


@partial(jax.jit, static_argnames=("explain", "index", "init", "similarity", "absolute"))
def _randomization(explain, params, x, key, *, index, init, similarity, absolute):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    levels = 1 + max((j for j in index if j is not None), default=-1)
    fresh = [None if j is None else init(jax.random.fold_in(key, i), leaf)
             for i, (leaf, j) in enumerate(zip(leaves, index))]

    def level(k):  # level k: layers 0..k-1 of the cascade re-initialised, the others trained
        mixed = [leaf if j is None or j >= k else new for leaf, new, j in zip(leaves, fresh, index)]
        e = explain(jax.tree_util.tree_unflatten(treedef, mixed), x)
        return jax.tree_util.tree_map(jnp.abs, e) if absolute else e

    # the levels unrolled (a handful): each level's model has plain weights chosen at trace
    # time; a lax.map over levels (a while loop) ran ~40x slower on XLA:CPU and a vmap over
    # stacked weights turns every convolution into a grouped one
    first = level(0)
    return jnp.stack([similarity(first, first if k == 0 else level(k)) for k in range(levels + 1)])


def randomization(
    explain: Callable[[PyTree, jax.Array], PyTree],
    params: PyTree,
    x: jax.Array,
    *,
    key: jax.Array | None = None,
    similarity: str | Callable[[PyTree, PyTree], jax.Array] = "spearman",
    layers: Sequence[tuple | str] | None = None,
    init: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    absolute: bool = False,
) -> Randomization:
    """Model-parameter randomisation test, cascading (Adebayo et al. 2018).

    From the top (output) layer down, re-initialise one more layer at a time and
    compare each explanation with the original one:
    ``similarity[k] = sim(E(params_k, x), E(params, x))`` where ``params_k`` has its
    top ``k`` layers re-initialised (the cascade keeps each draw: level ``k + 1``
    re-initialises one more layer on top of level ``k``). An explanation that depends
    on what the model learned falls well below 1; one that does not (an edge detector)
    stays high. The ``L + 1`` explanations run in one compiled program (the levels
    unrolled, each with plain weights).

    Args:
      explain: ``(params, x) -> attributions`` (an array or pytree, compared whole),
        e.g. ``lambda p, x: jig.ig(lambda x, p: logits(x, p)[c], 0.0, 32)(x, p)`` or a
        ``jig.flax.layer_ig`` explainer's ``.attributions``.
      params: the trained parameters: Flax variables or any pytree of arrays.
      x: the input explained (any pytree ``explain`` accepts).
      key: a PRNG key for the re-initialisation (required).
      similarity: ``"spearman"`` (rank correlation, the paper's), ``"pearson"``,
        ``"cosine"``, or a callable ``(a, b) -> scalar``.
      layers: the layers to randomise, in cascade order (first randomised first), each a
        key path (a tuple of keys, or a ``/``-joined string) selecting a subtree of
        ``params``. Default: the groups of :func:`param_layers` ``(params)``, ordered
        from the top: by where ``explain``'s computation (its jaxpr) first reads them,
        last read first. A model reads its layers in forward order, so this does not
        depend on key names or dict order (JAX sorts dict keys, so trained parameters
        lose their insertion order). Layers ``explain`` never reads are left out.
      init: ``(key, array) -> new array`` re-initialising one array. Default: a fresh
        normal draw with the array's own mean and standard deviation (an array that is
        constant, e.g. a zero bias, stays as it is).
      absolute: compare ``|attributions|`` (the paper shows both).

    Returns:
      A :class:`Randomization` ``(layers, similarity)``, ``similarity`` of length
      ``len(layers) + 1`` with ``similarity[0] == 1``.

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> def logits(x, p):
      ...     return jnp.tanh(x @ p["hidden"]["w"]) @ p["out"]["w"]
      >>> k1, k2 = jax.random.split(jax.random.key(0))
      >>> p = {"hidden": {"w": jax.random.normal(k1, (6, 8))}, "out": {"w": jax.random.normal(k2, (8,))}}
      >>> explain = lambda p, x: jig.ig(logits, 0.0, 16)(x, p)
      >>> r = jig.metrics.randomization(explain, p, jnp.linspace(-1, 1, 6), key=jax.random.key(1))
      >>> r.layers, r.similarity.shape, float(r.similarity[0])
      (('out', 'hidden'), (3,), 1.0)
    """
    caller = _NAME + "randomization"
    _checks.callable_(caller, "explain", explain, "(params, x) -> attributions")
    key = _key(caller, key, "it draws the re-initialised parameters")
    if isinstance(similarity, str):
        similarity = _SIMILARITIES[_checks.one_of(caller, "similarity", similarity, _SIMILARITIES)]
    _checks.callable_(caller, "similarity", similarity, "(a, b) -> scalar")
    absolute = _checks.boolean(caller, "absolute", absolute)
    init = _default_init if init is None else _checks.callable_(caller, "init", init, "(key, array) -> array")
    paths = [tuple(_key_of(e) for e in p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if not paths:
        raise _checks.fail(caller, "params", "a pytree with at least one array", params)
    if layers is None:  # the groups of param_layers, ordered by explain's first read: top (last read) first
        reads = _first_reads(explain, params, x)
        when = {}
        for group in param_layers(params):
            hits = [reads[i] for i, p in enumerate(paths) if p[: len(group)] == group]
            when[group] = min(hits, default=math.inf)
        chosen = sorted((g for g in when if when[g] < math.inf), key=lambda g: -when[g])
        if not chosen:
            raise _checks.fail(caller, "params", "parameters that explain reads", params,
                               "explain(params, x) must compute with params (not closed-over copies)")
    else:
        if isinstance(layers, (str, tuple)) or not isinstance(layers, Sequence):
            raise _checks.type_fail(caller, "layers", "a list of key paths (tuples of keys or '/'-joined strings)",
                                    layers, "wrap a single layer in a list")
        chosen = [tuple(l.split("/")) if isinstance(l, str) else tuple(l) for l in layers]
        if not chosen:
            raise _checks.fail(caller, "layers", "a non-empty list of key paths", layers)
    index: list = [None] * len(paths)
    for j, layer in enumerate(chosen):
        hits = [i for i, p in enumerate(paths) if tuple(str(k) for k in p[: len(layer)]) == tuple(map(str, layer))]
        if not hits:
            some = sorted({"/".join(map(str, p[:-1])) or "/".join(map(str, p)) for p in paths})[:8]
            raise _checks.fail(caller, "layers", f"key paths into params (e.g. {some})", "/".join(map(str, layer)),
                               raw=True)
        for i in hits:
            if index[i] is not None:
                raise _checks.fail(caller, "layers", "layers that do not overlap", "/".join(map(str, layer)),
                                   f"it overlaps layer {'/'.join(map(str, chosen[index[i]]))}", raw=True)
            index[i] = j
    sims = _randomization(explain, params, x, key, index=tuple(index), init=init, similarity=similarity,
                          absolute=absolute)
    return Randomization(tuple("/".join(map(str, layer)) for layer in chosen), sims)
