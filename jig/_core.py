"""``jig.ig``: the Integrated Gradients transform.

The integrand is ``∇F(γ(α)) ⊙ γ'(α)``; a quadrature rule turns the integral into
a weighted sum over path points, evaluated with ``jax.grad`` under ``jax.vmap``
(all points at once, or ``chunk_size`` at a time with a running sum) inside one
``jax.jit``.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jig import adaptive as _adaptive
from jig import hoist as _hoist
from jig import paths as _paths
from jig import rules as _rules

__all__ = ["ig"]

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
_UNROLL_CHUNKS = 8  # chunk loops of at most this many chunks are unrolled (BUILD_NOTES)


# --------------------------------------------------------------------------- checks


def _check_argnums(argnums) -> int | tuple[int, ...]:
    def ok(a):
        return isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 0

    if ok(argnums):
        return int(argnums)
    if isinstance(argnums, tuple) and argnums and all(ok(a) for a in argnums):
        if len(set(argnums)) != len(argnums):
            raise ValueError(f"argnums must not repeat an argument, got {argnums}")
        return tuple(int(a) for a in argnums)
    raise TypeError(
        f"argnums must be a non-negative int or a non-empty tuple of them (the "
        f"positional argument(s) of f to attribute), got {argnums!r}"
    )


def _check_chunk_size(chunk_size) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(
            f"chunk_size must be None or a positive int (path points evaluated at "
            f"once), got {chunk_size!r} of type {type(chunk_size).__name__}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be None or >= 1, got {chunk_size}")
    return int(chunk_size)


def _check_bool(name, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def _check_path(path) -> _paths.Path:
    if path is None:
        return _paths.straight()
    if isinstance(path, _paths.Path):
        return path
    raise TypeError(
        "path must be None (the straight line) or a jig.paths.Path made by a "
        "constructor in jig.paths (e.g. jig.paths.straight()), "
        f"got {path!r} of type {type(path).__name__}"
    )


def _check_input(x, argnums) -> None:
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        dtype = jnp.result_type(leaf)
        where = f"argument {argnums}" + jax.tree_util.keystr(keypath)
        if jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_):
            raise TypeError(
                f"jig.ig: {where} has dtype {dtype}; IG integrates gradients along a "
                "continuous path, so the attributed input must be floating point. For "
                "token ids or other discrete inputs, attribute to the embedding layer "
                "instead (jig.flax), or pass argnums to pick a float argument."
            )
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"jig.ig: {where} has dtype {dtype}; expected a real floating dtype"
            )
    if not jax.tree.leaves(x):
        raise ValueError(f"jig.ig: argument {argnums} has no array leaves to attribute")


def _working_dtype(dtype):
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in _HALF else dtype


def _prepare_baseline(baseline, x):
    """Broadcast ``baseline`` to ``x``'s structure and shapes, in the working dtype."""
    x_leaves, x_tree = jax.tree.flatten(x)
    if isinstance(baseline, (numbers.Number, np.ndarray, np.generic, jax.Array)):
        b_leaves = [baseline] * len(x_leaves)
    else:
        b_leaves, b_tree = jax.tree.flatten(baseline)
        if b_tree != x_tree:
            raise ValueError(
                "baseline must be a scalar, or an array or pytree that broadcasts to "
                f"the attributed input; the input has structure {x_tree} but the "
                f"baseline has structure {b_tree}"
            )
    out = []
    for i, (b, xl) in enumerate(zip(b_leaves, x_leaves)):
        b_dtype = jnp.result_type(b)
        if not (jnp.issubdtype(b_dtype, jnp.floating) or jnp.issubdtype(b_dtype, jnp.integer)):
            raise TypeError(f"baseline leaf {i} has dtype {b_dtype}; expected a real number")
        b = jnp.asarray(b)
        try:
            shape = jnp.broadcast_shapes(b.shape, xl.shape)
        except ValueError:
            shape = None
        if shape != tuple(xl.shape):
            raise ValueError(
                f"baseline leaf {i} has shape {tuple(b.shape)}, which does not broadcast "
                f"to the attributed input's shape {tuple(xl.shape)}"
            )
        work = _working_dtype(xl.dtype)
        out.append(jnp.broadcast_to(b.astype(work), xl.shape))
    return jax.tree.unflatten(x_tree, out)


def _check_output(F, x) -> None:
    out = jax.eval_shape(F, x)
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"jig.ig: f must return a scalar, but it returned shape {shape}. To explain "
            "one output of a multi-output model, select it in a closure, e.g. "
            "jig.ig(lambda x: model(x)[class_index], ...); under jax.vmap the index may "
            "differ per example."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"jig.ig: f must return a real floating scalar, got dtype {out.dtype}")


def _raise_if_nonfinite(bad):
    if bad:
        raise FloatingPointError(
            "jig.ig: the attributions contain NaN or inf (check_finite=True). Check the "
            "model for log/division at the baseline or along the path."
        )


# --------------------------------------------------------------------------- static args


def _is_dynamic(leaf) -> bool:
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return True
    return isinstance(leaf, (int, float, complex)) and not isinstance(leaf, bool)


class _Static:
    """A hashable wrapper for the non-array leaves of f's extra arguments."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        try:
            return hash(self.value)
        except TypeError:
            return id(self.value)

    def __eq__(self, other):
        return isinstance(other, _Static) and (
            self.value is other.value or _safe_eq(self.value, other.value)
        )


def partition_static(tree) -> tuple[list, Any, tuple]:
    """Split a pytree's leaves into traced ones (arrays, numbers) and static ones.

    Returns ``(dynamic_leaves, treedef, static)`` where ``static`` is a hashable tuple
    of ``(leaf_index, _Static(leaf))``, ready for ``jax.jit``'s static arguments;
    :func:`merge_static` undoes it inside the trace.
    """
    leaves, treedef = jax.tree.flatten(tree)
    dyn, static = [], []
    for i, leaf in enumerate(leaves):
        if _is_dynamic(leaf):
            dyn.append(leaf)
        else:
            static.append((i, _Static(leaf)))
    return dyn, treedef, tuple(static)


def merge_static(dyn, treedef, static):
    """The pytree :func:`partition_static` split, rebuilt from its two parts."""
    leaves = list(dyn)
    for i, s in static:
        leaves.insert(i, s.value)
    return jax.tree.unflatten(treedef, leaves)


def _safe_eq(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects with array-valued __eq__
        return False


# --------------------------------------------------------------------------- the sum


def _weighted_sum(w, g):
    return jax.tree.map(lambda leaf: jnp.tensordot(w, leaf, axes=1), g)


def _tree_add(a, b):
    return jax.tree.map(jnp.add, a, b)


def _chunked_sum(block, node_stack, weights, chunk_size, zero):
    """``Σ`` of ``block(nodes, weights)`` over the node stack, ``chunk_size`` nodes at a
    time (all at once for ``None``), as a running sum starting at ``zero``."""
    n = weights.shape[0]
    size = n if chunk_size is None else min(chunk_size, n)
    n_full, rem = divmod(n, size)
    if n_full == 1 and rem == 0:
        return block(node_stack, weights)
    head = jax.tree.map(lambda a: a[: n_full * size].reshape((n_full, size) + a.shape[1:]), node_stack)
    w_head = weights[: n_full * size].reshape(n_full, size)

    def body(carry, chunk):
        return _tree_add(carry, block(*chunk)), None

    # Few chunks: unrolled (a conv's input gradient inside a rolled XLA:CPU while
    # loop runs ~3-4x slower); many chunks: rolled, so memory stays bounded.
    unroll = n_full <= _UNROLL_CHUNKS
    total, _ = jax.lax.scan(body, zero, (head, w_head), unroll=unroll)
    if rem:
        tail = jax.tree.map(lambda a: a[n_full * size :], node_stack)
        total = _tree_add(total, block(tail, weights[n_full * size :]))
    return total


def _integrate(path, params, grad_fn, x, baseline, node_stack, weights, chunk_size, mesh):
    """``Σ_n w_n ∇F(γ_n) ⊙ γ'_n`` over the node stack, optionally in chunks."""
    constrain = None if mesh is None else functools.partial(_shard_leading, mesh=mesh)

    def block(nodes_b, w_b):
        if mesh is not None:
            nodes_b, w_b = _pad_to(nodes_b, w_b, mesh.size)
        grads = _paths.integrand(path, params, grad_fn, nodes_b, x, baseline, constrain)
        return _weighted_sum(w_b, grads)

    total = _chunked_sum(block, node_stack, weights, chunk_size, jax.tree.map(jnp.zeros_like, x))
    first = jax.tree.map(lambda a: a[0], node_stack)
    return _paths.apply_velocity(path, params, first, x, baseline, total)


def _lines(split, starts, x):
    """The hoisted form of straight lines from ``starts`` (a stack of ``K``) to ``x``:
    ``(h0, h1, finish)`` with ``h0 = P(s_k)``, ``h1 = J_P (x - s_k)`` (tuples of
    ``(K, ...)`` arrays) and ``finish``: per-start weighted sums of ``∇R`` ``(K, ...)`` ->
    attributions ``Σ_k (x - s_k) ⊙ J_Pᵀ G_k``."""
    velocity = jax.tree.map(lambda s, xl: xl[None] - s, starts, x)
    h0, h1 = jax.vmap(lambda s, v: jax.jvp(split.prefix, (s,), (v,)))(starts, velocity)
    _, pullback = jax.vjp(split.prefix, jax.tree.map(lambda s: s[0], starts))

    def finish(sums):
        back = jax.vmap(lambda g: pullback(g)[0])(sums)  # J_Pᵀ is the same at every point
        return jax.tree.map(lambda b, v: jnp.sum(b * v, axis=0), back, velocity)

    return h0, h1, finish


def _line_points(h0, h1, alphas, index=None):
    """``h0[k_n] + α_n h1[k_n]`` for a block of nodes (``index=None``: one start)."""
    col = lambda p: alphas.astype(p.dtype).reshape((-1,) + (1,) * (p.ndim - 1))  # noqa: E731
    if index is None:
        return tuple(p0 + col(p1) * p1 for p0, p1 in zip(h0, h1))
    return tuple(p0[index] + col(p1) * p1[index] for p0, p1 in zip(h0, h1))


def _integrate_hoisted(split, path, params, x, baseline, node_stack, weights, chunk_size, mesh):
    """The sum over a path of straight lines ``γ_n = s_n + α_n (x - s_n)`` with ``f``'s
    affine prefix ``P`` hoisted (:mod:`jig.hoist`):
    ``Σ_k (x - s_k) ⊙ J_Pᵀ Σ_{n: k_n = k} w_n ∇R(P(s_k) + α_n J_P (x - s_k))``."""
    starts, index, alphas = path.line(params, x, baseline, node_stack)
    k = jax.tree.leaves(starts)[0].shape[0]
    h0, h1, finish = _lines(split, starts, x)
    grad_rest = jax.grad(split.rest)
    constrain = None if mesh is None else functools.partial(_shard_leading, mesh=mesh)

    def block(nodes_b, w_b):
        if mesh is not None:
            nodes_b, w_b = _pad_to(nodes_b, w_b, mesh.size)
        i_b, a_b = nodes_b
        # one start (the straight path): no gather, no per-start sums
        points = _line_points(h0, h1, a_b, None if k == 1 else i_b)
        if constrain is not None:
            points = constrain(points)
        grads = jax.vmap(grad_rest)(points)
        if k == 1:
            return tuple(s[None] for s in _weighted_sum(w_b, grads))
        per_start = jax.nn.one_hot(i_b, k, dtype=w_b.dtype) * w_b[:, None]  # (n, K)
        return tuple(jnp.tensordot(per_start, g, axes=(0, 0)) for g in grads)

    zero = tuple(jnp.zeros_like(p) for p in h0)
    return finish(_chunked_sum(block, (index, alphas), weights, chunk_size, zero))


def _adaptive_parts(split, path, params, grad_fn, x, baseline, work):
    """``(grads_at, finish, zero)`` for :func:`jig.adaptive.integrate`: plain, or with
    the affine prefix hoisted (``split``; the straight path). ``work``: the working dtype."""
    if split is None:
        def grads_at(alphas):
            return _paths.integrand(path, params, grad_fn, alphas, x, baseline)

        def finish(t):
            return _paths.apply_velocity(path, params, jnp.zeros((), work), x, baseline, t)

        return grads_at, finish, jax.tree.map(jnp.zeros_like, x)
    starts, _, _ = path.line(params, x, baseline, jnp.zeros((1,), work))
    h0, h1, finish_k = _lines(split, starts, x)
    grad_rest = jax.grad(split.rest)

    def grads_at(alphas):
        return jax.vmap(grad_rest)(_line_points(h0, h1, alphas))

    return grads_at, lambda t: finish_k(tuple(s[None] for s in t)), tuple(jnp.zeros_like(p[0]) for p in h0)


def _pad_to(nodes, weights, multiple):
    """Pad the node axis with zero-weight copies of node 0 to a multiple of ``multiple``."""
    n = weights.shape[0]
    extra = (-n) % multiple
    if not extra:
        return nodes, weights
    pad = lambda a: jnp.concatenate([a, jnp.repeat(a[:1], extra, axis=0)])  # noqa: E731
    return jax.tree.map(pad, nodes), jnp.concatenate([weights, jnp.zeros((extra,), weights.dtype)])


def _auto_mesh(mesh):
    """The same devices and axis names with Auto axes (sharding constraints need them)."""
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    return jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)


def _shard_leading(tree, mesh):
    spec = jax.sharding.PartitionSpec(tuple(mesh.axis_names))
    sharding = jax.sharding.NamedSharding(mesh, spec)
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), tree)


# --------------------------------------------------------------------------- the transform


class _Config(NamedTuple):
    """Everything static about an explainer; hashable, so equal configurations share
    one compiled function across ``jig.ig`` constructions."""

    f: Any
    baseline_fn: Any
    rule: _rules.Rule | None  # None with adaptive steps
    steps: int
    path: _paths.Path  # with params=None; the params travel as arguments
    argnums: int | tuple[int, ...]
    chunk_size: int | None
    return_delta: bool
    check_finite: bool
    mesh: Any
    adaptive: _adaptive.Adaptive | None = None
    hoist: bool = True


def _rule_nodes(config: _Config, work):
    alphas, weights = config.rule(config.steps)
    return jnp.asarray(alphas, dtype=work), jnp.asarray(weights, dtype=work)


@functools.partial(jax.jit, static_argnames=("config", "treedef", "static"))
def _explain(dyn, baseline_in, params, *, config: _Config, treedef, static):
    """The compiled explainer: IG of ``config.f`` at the call's arguments."""
    f, baseline_fn, path, argnums = config.f.value, config.baseline_fn, config.path, config.argnums
    multi = isinstance(argnums, tuple)
    args, kwargs = merge_static(dyn, treedef, static)
    x = tuple(args[i] for i in argnums) if multi else args[argnums]
    _check_input(x, argnums)

    def F(z):
        new = list(args)
        for i, zi in zip(argnums, z) if multi else [(argnums, z)]:
            new[i] = zi
        return f(*new, **kwargs)

    _check_output(F, x)
    x_dtypes = jax.tree.map(lambda a: jnp.result_type(a), x)
    xw = jax.tree.map(lambda a: jnp.asarray(a).astype(_working_dtype(jnp.result_type(a))), x)
    if baseline_fn is not None:
        b = _prepare_baseline(baseline_fn.value(x), x)
    elif baseline_in is None:
        b = None
    else:
        b = _prepare_baseline(baseline_in, x)

    def to_input(z):
        return jax.tree.map(lambda zl, d: zl.astype(d), z, x_dtypes)

    def grad_fn(point):
        g = jax.grad(F)(to_input(point))
        return jax.tree.map(lambda gl, xl: gl.astype(xl.dtype), g, xw)

    work = jnp.result_type(*jax.tree.leaves(xw))

    def ends():  # F(x) and the mean of F over the path's start(s)
        starts = path.starts(params, xw, b)
        f_start = jnp.mean(jax.vmap(lambda s: F(to_input(s)))(starts).astype(work))
        return F(x).astype(work), f_start

    split = None
    if config.hoist and path.line is not None and path.integrate is None and jax.tree.all(
        jax.tree.map(lambda d, a: d == a.dtype, x_dtypes, xw)
    ):
        split = _hoist.split(F, xw)
    if config.adaptive is not None:
        parts = _adaptive_parts(split, path, params, grad_fn, xw, b, work)
        total, info = _adaptive.integrate(config.adaptive, *parts, *ends())
    elif path.integrate is not None:
        total = path.integrate(params, grad_fn, xw, b, *_rule_nodes(config, work))
    else:
        node_stack, node_w = path.nodes(params, xw, b, *_rule_nodes(config, work))
        if split is not None:
            total = _integrate_hoisted(
                split, path, params, xw, b, node_stack, node_w, config.chunk_size, config.mesh
            )
        else:
            total = _integrate(
                path, params, grad_fn, xw, b, node_stack, node_w, config.chunk_size, config.mesh
            )
    if config.check_finite:
        bad = ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(t)) for t in jax.tree.leaves(total)]))
        jax.debug.callback(_raise_if_nonfinite, bad)
    attributions = to_input(total)
    if not config.return_delta:
        return attributions
    if config.adaptive is not None:
        return attributions, info
    f_x, f_start = ends()
    total_sum = sum(jnp.sum(t) for t in jax.tree.leaves(total))
    return attributions, total_sum - (f_x - f_start)


# --------------------------------------------------------------------------- ig


def ig(
    f: Callable[..., Any],
    baseline: Any = 0.0,
    steps: int = 50,
    *,
    path: _paths.Path | None = None,
    rule: str | _rules.Rule = "gauss_legendre",
    argnums: int | Sequence[int] = 0,
    chunk_size: int | None = None,
    return_delta: bool = False,
    check_finite: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    tol: float | None = None,
    max_steps: int | None = None,
    hoist: bool = True,
) -> Callable[..., Any]:
    """Integrated Gradients of ``f``: a function transform, like :func:`jax.grad`.

    Returns a jit-compiled function with the signature of ``f`` that computes, for
    the argument ``argnums``,

        A = ∫_0^1 ∇F(γ(α)) ⊙ γ'(α) dα  ≈  Σ_k w_k ∇F(γ(α_k)) ⊙ γ'(α_k),

    where ``γ`` is the path (by default the straight line ``b + α (x - b)`` from
    the baseline ``b`` to the input ``x``) and ``(α_k, w_k)`` are the quadrature
    rule's nodes and weights. Completeness: ``Σ A = F(x) - F(γ(0))`` up to the
    quadrature error, which ``return_delta=True`` reports.

    Args:
      f: the function to explain, ``f(x, *args, **kwargs) -> scalar``. To explain one
        output of a multi-output model, close over it:
        ``jig.ig(lambda x: logits(x)[c], ...)``. Large arrays (model parameters)
        should reach ``f`` as arguments, not closed-over constants, so that XLA does
        not constant-fold them.
      baseline: the start of the path: a scalar, an array or pytree broadcasting to
        the attributed input, a callable ``x -> baseline``, or ``None`` for a path
        that defines its own start (``jig.paths.blur``).
      steps: the number of quadrature nodes along the path (a Python int >= 1).
      path: ``None`` (the straight line) or a :class:`jig.paths.Path`.
      rule: ``"gauss_legendre"`` (default), ``"riemann_left"``, ``"riemann_right"``,
        ``"riemann_middle"``, ``"riemann_trapezoid"`` or a :class:`jig.rules.Rule`.
      argnums: which positional argument of ``f`` to attribute (an int, or a tuple of
        ints for several, as in :func:`jax.grad`).
      chunk_size: ``None`` evaluates all path points in one batch (memory grows
        with ``steps``); an int evaluates that many at a time and keeps a running
        weighted sum, so peak memory does not grow with ``steps``. Up to 8 chunks
        are unrolled (on XLA:CPU often faster than one batch: ``steps // 8`` is a
        good choice for conv nets), more run in a rolled loop (least memory).
      return_delta: also return the completeness error
        ``delta = Σ A - (F(x) - F(γ(0)))`` (a float32 scalar; float64 under x64).
      check_finite: raise ``FloatingPointError`` (wrapped by JAX's runtime error)
        when an attribution is NaN or inf. Off by default; ``delta`` is NaN whenever
        an attribution is, so it doubles as a cheap detector.
      mesh: a :class:`jax.sharding.Mesh`; the path points of each explanation are
        split across all of its devices and the weighted sum reduced across them
        (for a single large input; see :func:`jig.sharded` for batches).
      tol: adaptive steps (:mod:`jig.adaptive`): refine a nested rule until
        ``|delta| <= tol * |F(x) - F(γ(0))|``. ``steps`` is then the first level's
        number of intervals (``steps + 1`` points, doubled per refinement), ``rule``
        must be ``"romberg"`` (the default ``"gauss_legendre"`` means it) or
        ``"riemann_trapezoid"``, ``chunk_size`` (points per loop iteration) must
        divide ``steps``, and ``return_delta=True`` returns
        ``(attributions, jig.AdaptiveInfo(delta, points, converged))``.
      max_steps: with ``tol``, the most path points per explanation (default
        ``64 * steps + 1``); the refinement stops at the last level that fits.
      hoist: on the straight path (and expected gradients' straight lines), evaluate
        the affine operations that ``f``
        applies to its input first (a dense or convolution layer's product and
        bias) once per explanation instead of once per path point, and apply their
        transpose once to the weighted sum (:mod:`jig.hoist`; the same sum up to
        rounding). ``False`` evaluates ``f`` whole at every point.

    Returns:
      A function taking the same arguments as ``f`` and returning the attributions,
      with the structure, shapes and dtypes of argument ``argnums`` (or
      ``(attributions, delta)`` with ``return_delta=True``). Extra arguments pass
      through to ``f``; array and numeric arguments are traced, other Python
      objects (strings, bools, None, callables) are treated as static. Half-precision
      inputs are integrated in float32 and returned in their own dtype.

    Example:
      >>> import jax, jax.numpy as jnp, jig
      >>> f = lambda x, w: jnp.sum(w * x ** 2)
      >>> explain = jig.ig(f, baseline=0.0, steps=8)
      >>> x, w = jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 0.5, -1.0])
      >>> explain(x, w).round(4).tolist()  # closed form: w * (x**2 - 0**2)
      [1.0, 2.0, -9.0]
      >>> A, delta = jig.ig(f, 0.0, 8, return_delta=True)(x, w)
      >>> bool(abs(delta) < 1e-5)
      True
    """
    chunk_size = _check_chunk_size(chunk_size)
    adaptive = None
    if tol is None and max_steps is None:
        rule = _rules.get(rule)
        rule(steps)  # checks steps against the rule, before anything is traced
    else:
        steps = _rules.check_steps(steps)
        adaptive = _adaptive.configure(tol, steps, max_steps, rule, chunk_size)
        rule = None
    path = _check_path(path)
    argnums = _check_argnums(argnums)
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"mesh must be None or a jax.sharding.Mesh, got {type(mesh).__name__}")
    if adaptive is not None:
        _adaptive.check_path(path, mesh)
    if mesh is not None:
        mesh = _auto_mesh(mesh)
    baseline_fn = None
    if baseline is None:
        if path.needs_baseline:
            raise ValueError(
                f"baseline=None needs a path that defines its own start (e.g. "
                f"jig.paths.blur); the {path.name!r} path needs a baseline"
            )
    elif callable(baseline) and not isinstance(baseline, jax.Array):
        baseline_fn = baseline
    else:
        for leaf in jax.tree.leaves(baseline):
            if not _is_dynamic(leaf):
                raise TypeError(
                    "baseline must be a scalar, an array or pytree of arrays, a callable "
                    f"x -> baseline, or None; got a leaf {leaf!r} of type {type(leaf).__name__}"
                )
    multi = isinstance(argnums, tuple)
    config = _Config(
        f=_Static(f),
        baseline_fn=None if baseline_fn is None else _Static(baseline_fn),
        rule=rule,
        steps=steps,
        path=path._replace(params=None),
        argnums=argnums,
        chunk_size=chunk_size,
        return_delta=bool(return_delta),
        check_finite=bool(check_finite),
        mesh=mesh,
        adaptive=adaptive,
        hoist=_check_bool("hoist", hoist),
    )
    baseline_arg = None if baseline_fn is not None else baseline

    @functools.wraps(f)
    def explainer(*args, **kwargs):
        needed = max(argnums) if multi else argnums
        if needed >= len(args):
            raise TypeError(
                f"argnums={argnums} names positional argument {needed}, but the "
                f"explainer was called with {len(args)} positional argument(s)"
            )
        dyn, treedef, static = partition_static((args, kwargs))
        return _explain(dyn, baseline_arg, path.params, config=config, treedef=treedef, static=static)

    how = f"{rule.name}, {steps} steps" if adaptive is None else f"adaptive, tol={adaptive.tol}"
    explainer.__doc__ = f"Integrated Gradients of {getattr(f, '__name__', 'f')} ({how}, {path.name} path)."
    return explainer
