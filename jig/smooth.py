"""``jig.smooth``: SmoothGrad, SmoothGrad² and VarGrad over any jig explainer.

Noise-averaged attributions (Smilkov et al. 2017; Adebayo et al. 2018): explain ``n``
noisy copies ``x + σ ε_i`` of the input (``ε_i`` standard normal) and combine:

==================  ===============================  ===============================
``kind``            result                           Captum ``NoiseTunnel`` name
==================  ===============================  ===============================
``"smoothgrad"``    ``E[a]  = (1/n) Σ a_i``          ``nt_type="smoothgrad"``
``"smoothgrad_sq"`` ``E[a²] = (1/n) Σ a_i²``         ``nt_type="smoothgrad_sq"``
``"vargrad"``       ``E[a²] - E[a]²`` (biased var.)  ``nt_type="vargrad"``
==================  ===============================  ===============================

with ``a_i = explain(x + σ ε_i, *args)``. ``σ`` is ``stddev × (max(x) - min(x))``
(``relative=True``, saliency's ``stdev_spread``) or ``stddev`` itself
(``relative=False``, Captum's ``stdevs``). Samples are ``vmap``-ed, ``chunk_size`` at a
time, with running means and centred sums of squares combined per chunk (Chan et al.),
so memory is bounded and VarGrad does not cancel catastrophically.

Example:
  >>> import jax, jax.numpy as jnp, jig
  >>> w = jnp.array([1.0, -2.0, 0.5])
  >>> explain = jig.ig(lambda x: jnp.dot(w, x), 0.0, 8)     # IG of a linear model: w ⊙ x
  >>> smoothed = jig.smooth(explain, stddev=0.1, samples=64)
  >>> x = jnp.array([1.0, 2.0, 3.0])
  >>> a = smoothed(jax.random.key(0), x)                   # ≈ E[w ⊙ (x + σε)] = w ⊙ x
  >>> bool(jnp.allclose(a, w * x, atol=0.15))
  True
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks, _static
from jig import engine as _engine
from jig._types import PyTree

__all__ = ["smooth", "gaussian", "KINDS"]

#: The statistics :func:`smooth` computes over the noisy samples' attributions.
KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")

_CALLER = "jig.smooth"


def gaussian(key: jax.Array, index: jax.Array, x: PyTree) -> PyTree:
    """The default noise: standard normal draws shaped like ``x`` (one key per leaf).

    Args:
      key: this sample's key (``jax.random.fold_in(key, index)`` of the caller's key).
      index: the sample's index (unused here; a custom sampler may use it, e.g. for
        antithetic pairs or fixed draws).
      x: the input, a pytree of float arrays.

    Returns:
      A pytree like ``x`` of ``N(0, 1)`` draws in each leaf's dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jig.smooth import gaussian
      >>> gaussian(jax.random.key(0), 0, jnp.zeros((2, 3))).shape
      (2, 3)
    """
    del index
    leaves, treedef = jax.tree.flatten(x)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([jax.random.normal(k, jnp.shape(l), jnp.result_type(l)) for k, l in zip(keys, leaves)])


def _check_output(out) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{_CALLER}: explain must return floating arrays (or a pytree of them), got a leaf "
                f"{jax.tree_util.keystr(path) or '(the output)'} of dtype {dtype}; smooth an explainer "
                "without integer or boolean outputs (e.g. return_delta=True instead of return_info=True)"
            )


def _chunk_stats(values):
    """``(mean, centred sum of squares)`` of a block of samples (leading axis), per leaf."""
    mean = jax.tree.map(lambda v: jnp.mean(v, axis=0), values)
    m2 = jax.tree.map(lambda v, m: jnp.sum(jnp.square(v - m), axis=0), values, mean)
    return mean, m2


def _combine(a, b):
    """Chan et al.'s parallel update of ``(count, mean, m2)`` (exact, and stable)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    frac = n_b / n
    mean = jax.tree.map(lambda ma, mb: ma + (mb - ma) * frac.astype(ma.dtype), mean_a, mean_b)
    m2 = jax.tree.map(
        lambda qa, qb, ma, mb: qa + qb + jnp.square(mb - ma) * (n_a * frac).astype(ma.dtype),
        m2_a, m2_b, mean_a, mean_b,
    )
    return n, mean, m2


def _accumulate(one: Callable[[jax.Array], PyTree], samples: int, chunk_size: int | None):
    """``(mean, m2)`` of ``one(i)`` over ``i = 0..samples-1``, ``chunk_size`` at a time."""
    size = samples if chunk_size is None else min(chunk_size, samples)
    n_full, rem = divmod(samples, size)

    def block(indices):
        return _chunk_stats(jax.vmap(one)(indices))

    first_mean, first_m2 = block(jnp.arange(size))
    state = (jnp.float32(size), first_mean, first_m2)
    if n_full > 1:
        starts = jnp.arange(1, n_full) * size

        def body(carry, start):
            mean, m2 = block(start + jnp.arange(size))
            return _combine(carry, (jnp.float32(size), mean, m2)), None

        state, _ = jax.lax.scan(body, state, starts, unroll=n_full - 1 <= _engine.UNROLL_CHUNKS)
    if rem:
        mean, m2 = block(n_full * size + jnp.arange(rem))
        state = _combine(state, (jnp.float32(rem), mean, m2))
    _, mean, m2 = state
    return mean, m2


def _finish(kind: str, mean, m2, samples: int):
    if kind == "smoothgrad":
        return mean
    var = jax.tree.map(lambda q: q / samples, m2)
    if kind == "vargrad":
        return var
    return jax.tree.map(lambda v, m: v + jnp.square(m), var, mean)


def smooth(
    explain: Callable[..., Any],
    *,
    stddev: float = 0.15,
    samples: int = 25,
    kind: str = "smoothgrad",
    relative: bool = True,
    chunk_size: int | None = None,
    argnums: int = 0,
    noise: Callable[[jax.Array, jax.Array, PyTree], PyTree] | None = None,
) -> Callable[..., Any]:
    """Average an explainer over noisy copies of its input: SmoothGrad and relatives.

    Returns ``smoothed(key, x, *args, **kwargs)`` computing, with
    ``a_i = explain(x + σ ⊙ ε_i, *args, **kwargs)`` for ``i = 0..samples-1``,

    - ``kind="smoothgrad"``: ``E[a] = (1/n) Σ a_i``;
    - ``kind="smoothgrad_sq"``: ``E[a²]``;
    - ``kind="vargrad"``: ``E[a²] - E[a]²`` (the biased variance),

    as Captum's ``NoiseTunnel`` defines them. The noise ``ε_i`` is standard normal,
    drawn from ``jax.random.fold_in(key, i)`` (so the result depends on the key and
    ``samples`` only, not on ``chunk_size``), and ``σ = stddev × (max(x) - min(x))``
    per leaf of ``x`` with ``relative=True`` (saliency's ``stdev_spread``), or
    ``σ = stddev`` with ``relative=False`` (Captum's ``stdevs``).

    Outputs that are pytrees are smoothed leaf by leaf: ``(attributions, delta)``
    from ``return_delta=True`` gives the statistic of the attributions and the same
    statistic of the deltas (the mean completeness error with ``"smoothgrad"``); a
    :class:`jig.layers.LayerAttribution` gives it per field (``token_scores`` of the
    mean are the mean of the ``token_scores``; for the squared kinds the
    ``token_scores`` field is the statistic of the per-sample token scores, not the
    row sums of the result). Every output leaf must be floating point.

    Args:
      explain: any explainer ``explain(x, *args, **kwargs) -> attributions``: a
        ``jig.ig(...)`` with any path, rule or ``targets=``, a layer explainer, or any
        JAX function (``jax.grad(f)`` gives SmoothGrad proper).
      stddev: the noise level, a float ``>= 0`` (``0`` gives ``explain`` itself).
      samples: the number of noisy copies ``n``, an int ``>= 1``.
      kind: ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
      relative: scale ``stddev`` by the input's value range ``max(x) - min(x)``
        (per leaf; per example under ``jax.vmap``), or use it as the absolute
        standard deviation (``False``).
      chunk_size: ``None`` explains every sample in one ``vmap``; an int explains
        that many at a time (memory bounded by one chunk).
      argnums: which positional argument of ``smoothed`` after ``key`` receives the
        noise (``0``: ``x``), e.g. ``1`` for ``jig.ig(f, argnums=1)`` over
        ``f(params, x)``.
      noise: ``None`` (Gaussian) or a sampler ``(key, index, x) -> ε`` returning a
        pytree like ``x`` of unit-scale draws for sample ``index`` (``key`` is that
        sample's own key): other noise distributions, antithetic pairs, or fixed
        draws injected to compare with another library. It is scaled by ``σ``.

    Returns:
      ``smoothed(key, x, *args, **kwargs)``, jit-compiled, with ``key`` a PRNG key
      (``jax.random.key(seed)``). The same key gives the same result; it composes
      with ``jax.jit``, ``jax.vmap`` (split the key per example for independent
      noise), ``jax.grad`` and :func:`jig.sharded`.

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> f = lambda x: jnp.sum(jnp.sin(x))
      >>> x = jnp.array([0.5, 1.0, 2.0])
      >>> sg = jig.smooth(jax.grad(f), stddev=0.2, samples=256, relative=False)
      >>> a = sg(jax.random.key(1), x)       # E[cos(x + σε)] = cos(x) exp(-σ²/2)
      >>> bool(jnp.allclose(a, jnp.cos(x) * jnp.exp(-0.02), atol=0.03))
      True
      >>> ig_sg = jig.smooth(jig.ig(f, 0.0, 16), stddev=0.1, samples=8, kind="vargrad")
      >>> ig_sg(jax.random.key(0), x).shape
      (3,)
    """
    _checks.callable_(_CALLER, "explain", explain, "x, *args -> attributions")
    stddev = _checks.real(_CALLER, "stddev", stddev, low=0.0)
    samples = _checks.positive_int(_CALLER, "samples", samples)
    kind = _checks.one_of(_CALLER, "kind", kind, KINDS)
    relative = _checks.boolean(_CALLER, "relative", relative)
    chunk_size = _checks.optional_positive_int(_CALLER, "chunk_size", chunk_size)
    argnums = _checks.positive_int(_CALLER, "argnums", argnums, minimum=0)
    sampler = gaussian if noise is None else _checks.callable_(_CALLER, "noise", noise, "(key, index, x) -> draws like x")

    def run(key, dyn, *, treedef, static):
        args, kwargs = _static.merge(dyn, treedef, static)
        x = args[argnums]
        for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
            if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
                raise TypeError(
                    f"{_CALLER}: argument {argnums}{jax.tree_util.keystr(path)} (the noisy input) must be "
                    f"floating point, got dtype {jnp.result_type(leaf)}; add noise to a continuous input "
                    "(for token ids, smooth a layer explainer's embedding input instead), or pick it with argnums"
                )
        if relative:
            scale = jax.tree.map(lambda l: stddev * (jnp.max(l) - jnp.min(l)), x)
        else:
            scale = jax.tree.map(lambda l: jnp.asarray(stddev, jnp.result_type(l)), x)

        def one(i):
            eps = sampler(jax.random.fold_in(key, i), i, x)
            noisy = jax.tree.map(lambda l, s, e: l + (s * e).astype(jnp.result_type(l)), x, scale, eps)
            new = list(args)
            new[argnums] = noisy
            out = explain(*new, **kwargs)
            return jax.tree.map(lambda a: jnp.asarray(a, jnp.promote_types(jnp.result_type(a), jnp.float32)), out)

        out_shape = jax.eval_shape(lambda: explain(*args, **kwargs))
        _check_output(out_shape)
        mean, m2 = _accumulate(one, samples, chunk_size)
        result = _finish(kind, mean, m2, samples)
        return jax.tree.map(lambda r, s: r.astype(s.dtype), result, out_shape)

    compiled = jax.jit(run, static_argnames=("treedef", "static"))

    def smoothed(key, *args, **kwargs):
        if not (isinstance(key, (jax.Array, np.ndarray)) and (
                jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32)):
            raise _checks.type_fail(
                _CALLER, "key", "a PRNG key (the smoothed function is called as smoothed(key, x, *args))",
                key, "make one with jax.random.key(seed)",
            )
        key = _checks.prng_key(_CALLER, "key", key)
        if argnums >= len(args):
            raise TypeError(
                f"{_CALLER}: the smoothed function takes (key, x, *args) and adds noise to argument "
                f"{argnums} after the key, but it was called with {len(args)} argument(s) after the key"
            )
        if isinstance(key, np.ndarray):
            key = jnp.asarray(key)
        dyn, treedef, static = _static.partition((args, kwargs))
        return compiled(key, dyn, treedef=treedef, static=static)

    name = getattr(explain, "__name__", "explain")
    smoothed.__doc__ = f"{kind} of {name} over {samples} noisy samples (stddev={stddev}, relative={relative})."
    return smoothed
