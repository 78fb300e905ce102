"""Integration paths for :func:`jig.ig`.

A path ``γ(α)`` runs from a start (``α = 0``, usually the baseline) to the input
(``α = 1``). IG along it is ``A = ∫_0^1 ∇F(γ(α)) ⊙ γ'(α) dα``. A path is a
:class:`Path`: a NamedTuple of pure functions plus the arrays they use
(``params``), which :func:`jig.ig` passes into its compiled function as
arguments (never as closed-over constants).

==================  =====================================  ==================
constructor         path                                   ``baseline=``
==================  =====================================  ==================
:func:`straight`    ``b + α (x - b)`` (the default)        the baseline
:func:`blur`        ``gaussian_blur(x, (1 - α) σ_max)``    ``None``
:func:`expected`    straight lines from K baselines,        ``None``
                    averaged (Expected Gradients)
:func:`custom`      any ``gamma(α, x, b)``; ``γ'`` by jvp  the baseline
:func:`guided`      Guided IG's adaptive path               the baseline
:func:`discretized` Discretized IG through an embedding     the baseline
                    table's words (text models)             embedding
==================  =====================================  ==================

Example:
  >>> import jax.numpy as jnp, jig
  >>> explain = jig.ig(lambda x: jnp.sum(x ** 2), 0.0, 8, path=jig.paths.straight())
  >>> explain(jnp.array([1.0, 2.0])).round(4).tolist()
  [1.0, 4.0]
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Path",
    "blur",
    "custom",
    "default_nodes",
    "expected",
    "gaussian_blur",
    "guided",
    "discretized",
    "straight",
]


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
      line: optional, for paths made of straight lines ``γ_n = s_n + α_n (x - s_n)``
        (the straight path, expected gradients): ``(params, x, baseline, nodes) ->
        (starts, index, alphas)`` with ``starts`` a pytree like ``x`` with a leading
        axis ``K``, and per node the index of its start ``(N,)`` and its ``α`` ``(N,)``.
        ``jig.ig`` then hoists ``f``'s affine first layers out of the sum
        (:mod:`jig.hoist`).
      guide: for a curve that the gradient steers (Guided IG): its parameters
        ``(fraction, max_dist)``; ``None`` for a curve given by ``point``. Such a
        curve is walked in sequence by :mod:`jig.guided` (each step needs the last
        gradient), with the rule's cumulative weights as the steps' targets.

    The functions are part of the compiled explainer's static configuration, so
    they should compare equal for equal paths (the constructors here use
    :class:`_Bound`, a hashable partial) to share compilations.
    """

    name: str
    point: Callable[..., tuple[Any, Any]]
    starts: Callable[..., Any]
    nodes: Callable[..., tuple[Any, jax.Array]] = default_nodes
    params: Any = None
    needs_baseline: bool = True
    constant_velocity: bool = False
    line: Callable[..., tuple[Any, jax.Array, jax.Array]] | None = None
    guide: tuple[float, float] | None = None


class _Bound(NamedTuple):
    """``fn`` with leading static arguments bound; hashable and compared by value
    (unlike ``functools.partial``), so equal paths share one compilation."""

    fn: Callable[..., Any]
    args: tuple

    def __call__(self, *rest):
        return self.fn(*self.args, *rest)


def _no_baseline(name: str, baseline) -> None:
    if baseline is not None:
        raise ValueError(
            f"the {name!r} path defines its own start, so it takes baseline=None; "
            f"call jig.ig(f, None, steps, path=...) (the default baseline 0.0 would be ignored)"
        )


# --------------------------------------------------------------------------- straight


def _straight_point(params, alpha, x, baseline):
    del params
    velocity = jax.tree.map(jnp.subtract, x, baseline)
    point = jax.tree.map(lambda b, v: b + alpha.astype(v.dtype) * v, baseline, velocity)
    return point, velocity


def _straight_line(params, x, baseline, nodes):
    del params, x
    return jax.tree.map(lambda b: b[None], baseline), jnp.zeros(nodes.shape, jnp.int32), nodes


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
        line=_straight_line,
    )


# --------------------------------------------------------------------------- blur


#: The padding modes of the blur: scipy.ndimage's names for the same boundaries.
BLUR_MODES = ("reflect", "constant")


def _check_mode(caller: str, mode) -> str:
    from jig import _checks

    return _checks.one_of(caller, "mode", mode, BLUR_MODES)


def _check_axes(axes) -> tuple[int, ...] | None:
    if axes is None:
        return None
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        axes = (axes,)
    if (
        not isinstance(axes, (tuple, list))
        or not axes
        or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes)
    ):
        raise TypeError(f"axes must be an int or a non-empty tuple of ints (the spatial axes), got {axes!r}")
    axes = tuple(int(a) for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes must not repeat an axis, got {axes}")
    return axes


def _check_sigma(name: str, value, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive Python float (pixels), got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{name} must be finite and {bound} (the Gaussian's standard deviation in "
            f"pixels), got {value}"
        )
    return value


def _may_be_channels_first(shape: tuple[int, ...]) -> bool:
    """A first axis of size 1, 3 or 4 before two larger ones: CHW (or NHWC), not HW or HWC."""
    return len(shape) >= 3 and shape[0] in (1, 3, 4) and shape[0] < shape[1] and shape[0] < shape[2]


def _resolve_axes(axes: tuple[int, ...] | None, shape: tuple[int, ...], what: str,
                  caller: str = "jig.paths.gaussian_blur") -> tuple[int, ...]:
    if axes is None:  # the default: H and W of HW / HWC, unless the layout is in doubt
        if _may_be_channels_first(shape):
            from jig import _checks

            raise _checks.fail(
                caller, "axes", f"given for {what} of shape {shape}", "None (the default (0, 1))",
                f"its first axis of size {shape[0]} before larger ones may be channels (CHW) or a batch; "
                f"pass axes=(1, 2) to blur a CHW image, or axes=(0, 1) if it really is HWC",
                raw=True,
            )
        axes = (0, 1)
    ndim = len(shape)
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(
            f"{what} has shape {shape}, which lacks the spatial axes {axes} to blur over; "
            f"blur expects an image of shape HW or HWC (axes=(0, 1), the default) and "
            f"takes axes=... for other layouts (e.g. axes=(1, 2) for CHW)"
        )
    resolved = tuple(a % ndim for a in axes)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"axes {axes} name the same axis twice for {what} of shape {shape}")
    return resolved


def _reflect_index(n: int, radius: int) -> np.ndarray:
    """``(n, 2r+1)`` source indices of a ``reflect`` padded window (scipy.ndimage's
    ``mode='reflect'``: ``d c b a | a b c d | d c b a``), for any radius."""
    j = (np.arange(n)[:, None] + np.arange(-radius, radius + 1)[None, :]) % (2 * n)
    return np.where(j >= n, 2 * n - 1 - j, j)


# below this sigma the kernel is the identity in float32 (exp(-200) rounds to 0)
_SIGMA_FLOOR = 0.05


def _kernel(sigma, radius: int, dtype):
    """Normalised Gaussian taps at offsets ``-r..r``; smooth in ``sigma``, with
    all derivatives 0 at ``sigma -> 0``, where it becomes the identity."""
    t = jnp.arange(-radius, radius + 1, dtype=dtype)
    sigma = jnp.asarray(sigma, dtype)
    s = jnp.where(sigma > _SIGMA_FLOOR, sigma, _SIGMA_FLOOR)
    return jax.nn.softmax(-(t * t) / (2 * s * s))


def _blur_matrix(kernel, n: int, radius: int, mode: str = "reflect"):
    """The ``(n, n)`` matrix of a 1-D convolution with ``kernel``, padded by ``mode``:
    ``reflect`` folds the taps that fall outside back in (the rows sum to 1),
    ``constant`` drops them (zeros outside: the rows near an edge sum to less)."""
    if mode == "reflect":
        cols = _reflect_index(n, radius)
        taps = jnp.broadcast_to(kernel, cols.shape)
    else:
        cols = np.arange(n)[:, None] + np.arange(-radius, radius + 1)[None, :]
        inside = (cols >= 0) & (cols < n)
        cols = np.clip(cols, 0, n - 1)
        taps = jnp.where(inside, kernel, jnp.zeros((), kernel.dtype))
    rows = np.broadcast_to(np.arange(n)[:, None], cols.shape)
    return jnp.zeros((n, n), kernel.dtype).at[rows, cols].add(taps)


def gaussian_blur(x, sigma, *, axes: Sequence[int] | None = None, radius: int | None = None,
                  truncate: float = 3.0, mode: str = "reflect"):
    """Gaussian blur of an array (or every leaf of a pytree) over ``axes``.

    Separable: one 1-D convolution per axis, padded as
    ``scipy.ndimage.gaussian_filter(mode=mode)`` pads (``reflect``: the image
    mirrored at its edges, ``d c b a | a b c d | d c b a``; ``constant``: zeros,
    so the edges darken as the blur grows, which is what PAIR saliency's BlurIG
    does), with a kernel of fixed radius ``radius`` (default
    ``ceil(truncate * sigma)``; pass it when ``sigma`` is traced). Differentiable
    in ``x`` and in ``sigma``; ``sigma = 0`` returns ``x`` (exactly in float32; the
    kernel is smooth in ``sigma``, and below 0.05 pixels its off-centre taps are
    ``exp(-200)`` or less, which float32 rounds to 0).

    Args:
      x: an array or pytree of arrays with the spatial ``axes``.
      sigma: the standard deviation in pixels (a float or a traced scalar >= 0).
      axes: the spatial axes. ``None`` (default): ``(0, 1)``, the H and W of an
        ``HW`` or ``HWC`` image; but a leaf whose first axis has size 1, 3 or 4
        before larger ones (``(3, 28, 28)``, ``(1, 28, 28, 3)``) raises
        ``ValueError`` asking for ``axes`` (``(1, 2)`` for ``CHW``) instead of
        blurring channels into rows.
      radius: kernel half-width in pixels (static). Required when ``sigma`` is
        traced.
      truncate: the radius in standard deviations when ``radius`` is not given.
      mode: the padding, ``"reflect"`` (default) or ``"constant"`` (zeros).

    Example:
      >>> import jax.numpy as jnp, jig
      >>> img = jnp.zeros((5, 5)).at[2, 2].set(1.0)
      >>> out = jig.paths.gaussian_blur(img, 1.0)
      >>> round(float(out.sum()), 4), bool(out[2, 2] < 1.0)
      (1.0, True)
      >>> bool(jnp.all(jig.paths.gaussian_blur(img, 0.0, radius=3) == img))
      True
      >>> corner = jnp.zeros((5, 5)).at[0, 0].set(1.0)   # zero padding loses mass at the edge
      >>> round(float(jig.paths.gaussian_blur(corner, 1.0, mode="constant").sum()), 3)
      0.489
    """
    mode = _check_mode("jig.paths.gaussian_blur", mode)
    axes = _check_axes(axes)
    if radius is None:
        if isinstance(sigma, jax.core.Tracer):
            raise TypeError("gaussian_blur: sigma is traced, so pass the kernel's radius= (static pixels)")
        radius = math.ceil(truncate * _check_sigma("sigma", sigma, allow_zero=True))
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be an int >= 0 (pixels), got {radius!r}")
    return jax.tree.map(lambda leaf: _blur_leaf(leaf, sigma, axes, int(radius), mode), x)


def _blur_leaf(leaf, sigma, axes, radius, mode="reflect", caller="jig.paths.gaussian_blur"):
    leaf = jnp.asarray(leaf)
    dtype = leaf.dtype if jnp.issubdtype(leaf.dtype, jnp.floating) else jnp.float32
    leaf = leaf.astype(dtype)
    resolved = _resolve_axes(axes, tuple(leaf.shape), "the input", caller)
    if radius == 0:
        return leaf
    kernel = _kernel(sigma, radius, dtype)
    for axis in resolved:
        m = _blur_matrix(kernel, leaf.shape[axis], radius, mode)
        leaf = jnp.moveaxis(jnp.tensordot(m, leaf, axes=([1], [axis])), 0, axis)
    return leaf


def _blur_check(config, x, baseline):
    _no_baseline("blur", baseline)
    for i, leaf in enumerate(jax.tree.leaves(x)):
        _resolve_axes(config[1], tuple(leaf.shape), f"the attributed input (leaf {i})", "jig.paths.blur")


def _blur_path_point(config, x, sigma):
    _, axes, radius, mode = config
    return jax.tree.map(lambda leaf: _blur_leaf(leaf, sigma, axes, radius, mode, "jig.paths.blur"), x)


def _blur_point(config, params, alpha, x, baseline):
    del params
    _blur_check(config, x, baseline)
    along = lambda a: _blur_path_point(config, x, (1.0 - a) * config[0])
    return jax.jvp(along, (alpha,), (jnp.ones_like(alpha),))


def _blur_starts(config, params, x, baseline):
    del params
    _blur_check(config, x, baseline)
    return jax.tree.map(lambda s: s[None], _blur_path_point(config, x, config[0]))


def blur(max_sigma: float = 10.0, *, axes: Sequence[int] | None = None, truncate: float = 3.0,
         mode: str = "reflect") -> Path:
    """Blur IG (Xu et al. 2020): the path from a blurred copy of ``x`` to ``x``.

    ``γ(α) = gaussian_blur(x, σ(α))`` with ``σ(α) = (1 - α) max_sigma``, so the
    start is ``x`` blurred with ``max_sigma`` and the end is ``x`` exactly. No
    baseline: call ``jig.ig(f, None, steps, path=jig.paths.blur(...))`` (a
    baseline other than ``None`` raises). ``γ'`` is exact, by ``jax.jvp`` in
    ``α`` through the blur, and completeness holds against
    ``F(x) - F(gaussian_blur(x, max_sigma))``.

    The blur is separable over the spatial ``axes`` (default ``(0, 1)``: the H
    and W of an ``HW`` or ``HWC`` input; under ``jax.vmap`` the batch axis is not
    counted), padded by ``mode``, with a fixed kernel radius
    ``ceil(truncate * max_sigma)``; see :func:`gaussian_blur`. An input without
    those axes raises ``ValueError`` naming its shape, and so does, with the
    default ``axes``, an input whose first axis may be channels (size 1, 3 or 4
    before larger ones, e.g. ``(3, 28, 28)``): pass ``axes=(1, 2)`` for ``CHW``.
    Each leaf of a pytree input is blurred on its own.

    Args:
      max_sigma: the blur of the start, in pixels; must be > 0 (``ValueError``
        otherwise). As ``max_sigma -> 0`` the path shrinks to the point ``x``:
        attributions and delta go to 0 (below 0.05 pixels they are exactly 0).
      axes: the spatial axes to blur over; ``None``: ``(0, 1)``, checked as above.
      truncate: kernel radius in standard deviations of ``max_sigma``.
      mode: the padding. ``"reflect"`` (default): the image mirrored at its
        edges, so a blurred image keeps its brightness up to the border.
        ``"constant"``: zeros outside, as PAIR saliency's BlurIG
        (``scipy.ndimage.gaussian_filter(mode="constant")``); the start darkens
        towards the edges, so border pixels get attribution for their brightness
        as well as their detail. With ``truncate=4`` and ``rule="riemann_right"``
        this is saliency's BlurIG with an exact velocity (Spearman 1.000 on a
        32x32 image; ``benchmarks/blur_agreement.py``).

    Example:
      >>> import jax.numpy as jnp, jig
      >>> img = jnp.zeros((6, 6)).at[2:4, 2:4].set(1.0)
      >>> f = lambda x: jnp.sum(x[2:4, 2:4] ** 2)
      >>> A, delta = jig.ig(f, None, 32, path=jig.paths.blur(3.0), return_delta=True)(img)
      >>> A.shape, bool(abs(delta) < 1e-4)
      ((6, 6), True)
    """
    max_sigma = _check_sigma("max_sigma", max_sigma, allow_zero=False)
    axes = _check_axes(axes)
    if isinstance(truncate, bool) or not isinstance(truncate, numbers.Real) or not truncate > 0:
        raise ValueError(f"truncate must be a float > 0 (standard deviations), got {truncate!r}")
    mode = _check_mode("jig.paths.blur", mode)
    config = (max_sigma, axes, max(1, math.ceil(float(truncate) * max_sigma)), mode)
    return Path(
        name="blur",
        point=_Bound(_blur_point, (config,)),
        starts=_Bound(_blur_starts, (config,)),
        needs_baseline=False,
    )


# --------------------------------------------------------------------------- expected


def _is_key(key) -> bool:
    if not isinstance(key, (jax.Array, np.ndarray)):
        return False
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.shape == ()
    return key.dtype == jnp.uint32 and key.shape == (2,)


def _stack_leaves_k(baselines) -> int:
    leaves = jax.tree.leaves(baselines)
    if not leaves:
        raise ValueError("expected: baselines has no array leaves; pass a stack of shape (K, *x.shape)")
    ks = set()
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, (jax.Array, np.ndarray)) and not hasattr(leaf, "shape"):
            raise TypeError(
                f"expected: baselines leaf {i} is a {type(leaf).__name__}; expected an array "
                "stack of shape (K, *x.shape) (or a callable x -> stack)"
            )
        dtype = jnp.result_type(leaf)
        if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
            raise TypeError(f"expected: baselines leaf {i} has dtype {dtype}; expected real numbers")
        if leaf.ndim < 1 or leaf.shape[0] < 1:
            raise ValueError(
                f"expected: baselines leaf {i} has shape {tuple(leaf.shape)}; expected a stack "
                "with a leading axis of K >= 1 baselines, shape (K, *x.shape)"
            )
        ks.add(leaf.shape[0])
    if len(ks) != 1:
        raise ValueError(f"expected: the baselines' leaves disagree on K (leading axis sizes {sorted(ks)})")
    return ks.pop()


def _expected_stack(config, params, x, baseline):
    """The stack of baselines, checked against ``x`` (at trace time), in x's dtypes."""
    stack_fn = config[0]
    _no_baseline("expected", baseline)
    stack = params["stack"] if stack_fn is None else stack_fn(x)
    x_leaves, x_tree = jax.tree.flatten(x)
    s_leaves, s_tree = jax.tree.flatten(stack)
    if s_tree != x_tree:
        raise ValueError(
            f"expected: the baselines stack has structure {s_tree}, but the attributed "
            f"input has structure {x_tree}; expected the input's structure with a leading "
            "axis K on every leaf"
        )
    k = _stack_leaves_k(stack)
    for i, (s, xl) in enumerate(zip(s_leaves, x_leaves)):
        if tuple(s.shape[1:]) != tuple(xl.shape):
            raise ValueError(
                f"expected: baselines leaf {i} has shape {tuple(s.shape)}, whose trailing "
                f"shape {tuple(s.shape[1:])} does not match the attributed input's shape "
                f"{tuple(xl.shape)}; expected (K, *x.shape) = (K, {', '.join(map(str, xl.shape))})"
            )
    stack = jax.tree.map(lambda s, xl: jnp.asarray(s).astype(xl.dtype), stack, x)
    return stack, k


def _expected_nodes(config, params, x, baseline, alphas, weights):
    _, samples = config
    _, k = _expected_stack(config, params, x, baseline)
    if samples is None:  # exact: every (baseline, alpha) pair, weights w_j / K
        m = alphas.shape[0]
        index = jnp.repeat(jnp.arange(k, dtype=jnp.int32), m)
        return {"alpha": jnp.tile(alphas, k), "index": index}, jnp.tile(weights, k) / k
    k_index, k_alpha = jax.random.split(params["key"])
    index = jax.random.randint(k_index, (samples,), 0, k, dtype=jnp.int32)
    alpha = jax.random.uniform(k_alpha, (samples,), dtype=alphas.dtype)
    return {"alpha": alpha, "index": index}, jnp.full((samples,), 1.0 / samples, weights.dtype)


def _expected_point(config, params, node, x, baseline):
    stack, _ = _expected_stack(config, params, x, baseline)
    b = jax.tree.map(lambda s: s[node["index"]], stack)
    return _straight_point(None, node["alpha"], x, b)


def _expected_line(config, params, x, baseline, nodes):
    stack, _ = _expected_stack(config, params, x, baseline)
    return stack, nodes["index"], nodes["alpha"]


def _expected_starts(config, params, x, baseline):
    return _expected_stack(config, params, x, baseline)[0]


def expected(baselines, *, key: jax.Array | None = None, samples: int | None = None) -> Path:
    """Expected Gradients (Erion et al.): IG averaged over K baselines.

    ``A = (1/K) Σ_k IG(x; b_k)``, each along the straight line from ``b_k``.

    * exact (default): every pair of a baseline and a rule node, with weight
      ``w_j / K``: the mean of K straight-line IGs with the rule of
      :func:`jig.ig`. Costs ``K * steps`` gradients (use ``chunk_size`` to bound
      memory).
    * Monte Carlo (``key`` and ``samples``): ``samples`` pairs ``(k, α)`` with
      ``k`` uniform over the stack and ``α ~ U[0, 1]``, each weighted
      ``1 / samples``: the estimator of Erion et al. ``steps`` and ``rule`` of
      :func:`jig.ig` are then not used. The same key gives the same result, and
      every example of a ``jax.vmap`` batch gets the same draws.

    Completeness holds against the mean: ``Σ A = F(x) - mean_k F(b_k)``, which is
    what ``return_delta`` reports (in the Monte Carlo form only in expectation).
    Call with ``baseline=None``: the stack replaces it.

    Args:
      baselines: a stack with a leading axis of K baselines, shape ``(K, *x.shape)``
        (a pytree like ``x`` with that leading axis on each leaf), e.g. a batch of
        training rows (:func:`jig.baselines.sample`); or a callable
        ``x -> stack`` (e.g. ``jig.baselines.uniform(key, num=8)``). The trailing
        shape is checked against ``x`` when the explainer is traced.
      key: a PRNG key for the Monte Carlo form (with ``samples``).
      samples: the number of ``(baseline, alpha)`` draws (with ``key``).

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> f = lambda x: jnp.sum(x ** 2)
      >>> stack = jnp.array([[0.0, 0.0], [1.0, -1.0]])
      >>> x = jnp.array([2.0, 1.0])
      >>> jig.ig(f, None, 4, path=jig.paths.expected(stack))(x).round(4).tolist()  # mean of x²-b²
      [3.5, 0.5]
      >>> mc = jig.paths.expected(stack, key=jax.random.key(0), samples=256)
      >>> A = jig.ig(f, None, 4, path=mc)(x)
      >>> A.shape
      (2,)
    """
    if (key is None) != (samples is None):
        raise ValueError(
            "expected: pass both key and samples for the Monte Carlo form, or neither for "
            f"the exact form; got key={'None' if key is None else 'a key'}, samples={samples!r}"
        )
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise ValueError(f"expected: samples must be an int >= 1, got {samples!r}")
        samples = int(samples)
        if not _is_key(key):
            raise TypeError(
                "expected: key must be a PRNG key (jax.random.key(seed), or a legacy "
                f"jax.random.PRNGKey), got {key!r}"
            )
    if callable(baselines) and not isinstance(baselines, (jax.Array, np.ndarray)):
        stack_fn, stack = baselines, None
    else:
        stack_fn, stack = None, baselines
        _stack_leaves_k(stack)
    config = (stack_fn, samples)
    return Path(
        name="expected" if samples is None else "expected (Monte Carlo)",
        point=_Bound(_expected_point, (config,)),
        starts=_Bound(_expected_starts, (config,)),
        nodes=_Bound(_expected_nodes, (config,)),
        params={"stack": stack, "key": key},
        needs_baseline=False,
        line=_Bound(_expected_line, (config,)),
    )


# --------------------------------------------------------------------------- custom


def _call_gamma(config, params, alpha, x, baseline):
    gamma, with_params = config[0], config[1]
    out = gamma(alpha, x, baseline, params) if with_params else gamma(alpha, x, baseline)
    x_leaves, x_tree = jax.tree.flatten(x)
    o_leaves, o_tree = jax.tree.flatten(out)
    if o_tree != x_tree:
        raise ValueError(
            f"custom: gamma(alpha, x, baseline) returned structure {o_tree}; expected the "
            f"attributed input's structure {x_tree}"
        )
    for i, (o, xl) in enumerate(zip(o_leaves, x_leaves)):
        if tuple(jnp.shape(o)) != tuple(xl.shape):
            raise ValueError(
                f"custom: gamma(alpha, x, baseline) returned leaf {i} of shape "
                f"{tuple(jnp.shape(o))}; expected the input's shape {tuple(xl.shape)}"
            )
    return jax.tree.map(lambda o, xl: jnp.asarray(o).astype(xl.dtype), out, x)


def _custom_point(config, params, alpha, x, baseline):
    if config[2]:  # the endpoint check; it does not depend on alpha, so vmap runs it once
        _check_endpoints(config, params, x, baseline, alpha.dtype)
    along = lambda a: _call_gamma(config, params, a, x, baseline)
    return jax.jvp(along, (alpha,), (jnp.ones_like(alpha),))


def _custom_starts(config, params, x, baseline):
    dtype = jax.tree.leaves(x)[0].dtype
    start = _call_gamma(config, params, jnp.zeros((), dtype), x, baseline)
    return jax.tree.map(lambda s: s[None], start)


def _endpoint_error(got, want, rtol, atol):
    """The largest ``|got - want| / (atol + rtol * max|want|)`` over the leaves."""
    ratios = [
        jnp.max(jnp.abs(g - w)) / (atol + rtol * jnp.max(jnp.abs(w)))
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want))
        if w.size
    ]
    return jnp.max(jnp.stack(ratios)) if ratios else jnp.zeros(())


def _raise_endpoints(start_ratio, end_ratio):
    start_ratio, end_ratio = np.max(np.asarray(start_ratio)), np.max(np.asarray(end_ratio))
    if not start_ratio <= 1.0:
        raise ValueError(
            "custom: gamma(0, x, baseline) must equal the baseline (the path's start), but it "
            f"differs by {start_ratio:.3g}x the tolerance (atol + rtol * max|baseline|); "
            "pass check=False to skip this check"
        )
    if not end_ratio <= 1.0:
        raise ValueError(
            "custom: gamma(1, x, baseline) must equal x (the path's end), but it differs by "
            f"{end_ratio:.3g}x the tolerance (atol + rtol * max|x|); pass check=False to skip "
            "this check"
        )


def _check_endpoints(config, params, x, baseline, dtype):
    _, _, _, rtol, atol = config
    end = _call_gamma(config, params, jnp.ones((), dtype), x, baseline)
    end_ratio = _endpoint_error(end, x, rtol, atol)
    start_ratio = jnp.zeros((), dtype)
    if baseline is not None:
        start = _call_gamma(config, params, jnp.zeros((), dtype), x, baseline)
        start_ratio = _endpoint_error(start, baseline, rtol, atol)
    jax.debug.callback(
        _raise_endpoints, jax.lax.stop_gradient(start_ratio), jax.lax.stop_gradient(end_ratio)
    )


def custom(
    gamma: Callable[..., Any],
    params: Any = None,
    *,
    needs_baseline: bool = True,
    check: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> Path:
    """A user path ``gamma(alpha, x, baseline) -> point``; ``γ'`` by ``jax.jvp``.

    ``gamma`` takes a scalar ``alpha`` in [0, 1] and pytrees ``x`` and
    ``baseline`` like the attributed input and returns a point like ``x``; it
    must be differentiable in ``alpha`` and satisfy ``gamma(0) = baseline`` and
    ``gamma(1) = x``. Completeness then holds against ``F(x) - F(gamma(0))``.

    A path with parameters: pass ``params`` (a pytree of arrays), and ``gamma``
    is called as ``gamma(alpha, x, baseline, params)``; the parameters enter the
    compiled explainer as arguments, so changing them does not recompile, and
    attributions are differentiable in them (``jax.grad`` through ``jig.ig``),
    e.g. to train a path with optax (``examples/learned_path.py``). Closing
    over parameters also works, but recompiles for each new closure.

    Args:
      gamma: the path, a pure JAX function of ``(alpha, x, baseline)`` (or
        ``(alpha, x, baseline, params)``).
      params: optional parameters passed to ``gamma``.
      needs_baseline: ``False`` for a path that defines its own start (then
        ``baseline=None`` is passed to ``gamma`` and only the end is checked).
      check: verify the endpoints on the actual ``x`` and baseline of every call:
        ``|gamma(0) - baseline| <= atol + rtol * max|baseline|`` and the same for
        ``gamma(1)`` against ``x``. The values are only known at run time inside
        the compiled function, so the check runs there (two extra evaluations of
        ``gamma``, no gradients) and a failure raises ``ValueError`` inside JAX's
        runtime error (``jax.errors.JaxRuntimeError``) naming the endpoint. The
        output's structure and shapes are checked when tracing.
      rtol, atol: the endpoint tolerance.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> f = lambda x: jnp.sum(x ** 3)
      >>> slow_start = jig.paths.custom(lambda a, x, b: b + a ** 2 * (x - b))
      >>> x = jnp.array([1.0, 2.0])
      >>> jig.ig(f, 0.0, 16, path=slow_start)(x).round(3).tolist()  # same as the straight line
      [1.0, 8.0]
    """
    if not callable(gamma):
        raise TypeError(f"custom: gamma must be a callable (alpha, x, baseline) -> point, got {gamma!r}")
    wanted = "(alpha, x, baseline, params)" if params is not None else "(alpha, x, baseline)"
    try:
        signature = inspect.signature(gamma)
    except (TypeError, ValueError):  # builtins and some C callables have none: called as is
        signature = None
    if signature is not None:
        try:
            signature.bind(*range(4 if params is not None else 3))
        except TypeError:
            raise TypeError(
                f"jig.paths.custom: gamma must accept {wanted}, but its signature is "
                f"{getattr(gamma, '__name__', 'gamma')}{signature}"
                + ("" if params is not None else "; pass params=... for a path with parameters")
            ) from None
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"custom: {name} must be a float >= 0, got {value!r}")
    config = (gamma, params is not None, bool(check), float(rtol), float(atol))
    return Path(
        name=f"custom({getattr(gamma, '__name__', 'gamma')})",
        point=_Bound(_custom_point, (config,)),
        starts=_Bound(_custom_starts, (config,)),
        params=params,
        needs_baseline=bool(needs_baseline),
    )


# --------------------------------------------------------------------------- guided


def guided(fraction: float = 0.25, max_dist: float = 0.02) -> Path:
    """Guided IG (Kapishnikov et al. 2021): an adaptive path chosen by the gradient.

    The path starts at the baseline and, at each of ``steps`` steps, moves the
    features with the smallest absolute gradient towards ``x`` first, until the
    L1 distance to ``x`` has shrunk to the step's target ``(1 - t_k) |x - b|_1``.
    Within a step, the ``fraction`` of still-movable features with the smallest
    ``|∇F|`` moves to the upper edge of a window ``[t_k - max_dist, t_k +
    max_dist]`` (in units of each feature's own ``x_i - b_i``); this repeats
    until the target is met, the last move taking only the needed share.
    Features that lag behind the window's lower edge first jump to it. The
    attribution of a step is ``(x_new - x_old) ⊙ ∇F(x_old)``, so the sum
    telescopes to ``F(x) - F(b)`` up to discretisation error (completeness; the
    core's ``return_delta`` reports it against the baseline), and on a linear
    model it equals straight-line IG exactly.

    The steps run in a ``lax.scan`` (one gradient each, in sequence), with a
    fixed number of selection rounds per step, so the whole path jits, vmaps and
    is differentiable (piecewise: the selection itself has no gradient). The
    rule's weights set the targets ``t_k`` (their cumulative sums: ``k/m``, the
    paper's schedule, for the Riemann rules); its nodes are not used, and
    ``chunk_size`` does not apply (one point is evaluated at a time). Features
    of all leaves of a pytree input compete in one ranking.

    Args:
      fraction: the share of features moved per selection round, in (0, 1].
      max_dist: half-width of the window around ``t_k``, in [0, 1]; 0 forces
        every feature to follow the straight line's schedule.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> w = jnp.array([1.0, -2.0, 3.0])
      >>> explain = jig.ig(lambda x: jnp.dot(w, x), 0.0, 10, path=jig.paths.guided())
      >>> explain(jnp.array([1.0, 1.0, 1.0])).round(4).tolist()  # linear: w * (x - b)
      [1.0, -2.0, 3.0]
    """
    for name, value, low_open in (("fraction", fraction, True), ("max_dist", max_dist, False)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"guided: {name} must be a float, got {value!r}")
        ok = (0 < value <= 1) if low_open else (0 <= value <= 1)
        if not ok:
            interval = "(0, 1]" if low_open else "[0, 1]"
            raise ValueError(f"guided: {name} must lie in {interval}, got {value}")
    return Path(
        name="guided",
        point=_straight_point,  # the reference line; the walk itself is jig.guided's
        starts=_straight_starts,
        guide=(float(fraction), float(max_dist)),
    )


def discretized(table, anchors: int = 16, *, strategy: str = "greedy", neighbours: int = 64,
                graph: Any = None) -> Path:
    """Discretized IG (Sanyal and Ren 2021): a path through the words of an embedding table.

    For embedding inputs: from the baseline embedding, through ``anchors`` monotonized
    neighbouring words, to each token's embedding; every coordinate moves
    monotonically and the path ends exactly at the input. The same function as
    :func:`jig.discretized.discretized` (see it for the arguments: ``strategy``
    ``"greedy"`` or ``"maxcount"``, ``neighbours``, a precomputed ``graph``); the table
    is traced (the path's ``params``).

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> table = jax.random.normal(jax.random.key(0), (50, 4))      # 50 words, 4 dims
      >>> h = table[jnp.array([3, 7])]                                # a 2-token sentence
      >>> path = jig.paths.discretized(table, anchors=3)
      >>> f = lambda h: jnp.sum(jnp.tanh(h) ** 2)
      >>> A, delta = jig.ig(f, 0.0, 16, path=path, return_delta=True)(h)
      >>> A.shape, bool(abs(delta) < 1e-2 * abs(f(h)))
      ((2, 4), True)
    """
    from jig import discretized as _discretized  # jig.discretized builds on Path: imported on use

    return _discretized.discretized(table, anchors, strategy=strategy, neighbours=neighbours, graph=graph)
