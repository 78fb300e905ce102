"""``jig.ig``: the Integrated Gradients front-end.

A thin front-end over the shared parts: it checks IG's options, then gives
:func:`jig._frontend.explainer` a ``run`` that builds the integrand
(:mod:`jig.integrand`: the gradient, or a Jacobian's rows for ``targets=``, plain or
with the affine prefix hoisted) and hands it to an engine (:mod:`jig.engine`'s fixed
rule, :mod:`jig.adaptive`, or :mod:`jig.guided`'s walk).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jig import _checks, _frontend, _static
from jig import adaptive as _adaptive
from jig import engine as _engine
from jig import guided as _guided
from jig import hoist as _hoist
from jig import integrand as _integrand
from jig import paths as _paths
from jig import rewrite as _rewrite
from jig import rules as _rules
from jig._types import ArgNums, Baseline, Targets

__all__ = ["ig", "IGConfig", "check_path", "check_chunk_size", "check_mesh", "run"]


class IGConfig(NamedTuple):
    """IG's static options (hashable: equal configurations share one compilation)."""

    rule: _rules.Rule | None  # None with adaptive steps
    steps: int
    chunk_size: int | str | None  # "auto": chosen per compiled shape (jig.engine.auto_chunk)
    mesh: Any
    adaptive: _adaptive.Adaptive | None = None
    hoist: bool = True
    rewrite: bool = True


def check_path(caller: str, path) -> _paths.Path:
    """``None`` (the straight line) or a :class:`jig.paths.Path`."""
    if path is None:
        return _paths.straight()
    if isinstance(path, _paths.Path):
        return path
    raise _checks.type_fail(
        caller, "path", "None (the straight line) or a jig.paths.Path made by a constructor in "
        "jig.paths (e.g. jig.paths.straight())", path,
    )


def check_chunk_size(caller: str, chunk_size) -> int | str | None:
    """``"auto"``, ``None`` or an int >= 1 (path points evaluated at once)."""
    if chunk_size is None or chunk_size == "auto":
        return chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int,)) and not hasattr(chunk_size, "__index__"):
        raise TypeError(
            f"{caller}: chunk_size must be None or a positive int (path points evaluated at "
            f"once), or 'auto', got {chunk_size!r} of type {type(chunk_size).__name__}"
        )
    if isinstance(chunk_size, float) or chunk_size < 1:
        raise ValueError(f"{caller}: chunk_size must be None or >= 1, got {chunk_size} ('auto' chooses it)")
    return int(chunk_size)


def check_mesh(caller: str, mesh):
    """``None`` or a :class:`jax.sharding.Mesh` (returned with Auto axes)."""
    if mesh is None:
        return None
    if not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"mesh must be None or a jax.sharding.Mesh, got {type(mesh).__name__}")
    return _engine.auto_mesh(mesh)


def _rule_nodes(config: IGConfig, work):
    alphas, weights = config.rule(config.steps)
    return jnp.asarray(alphas, dtype=work), jnp.asarray(weights, dtype=work)


def _walk(config: IGConfig, path, problem, params):
    """Guided IG: one sequential walk per output (a walk follows one gradient)."""
    fraction, max_dist = path.guide
    _, weights = _rule_nodes(config, problem.work)
    xv, unravel = ravel_pytree(problem.x)
    bv, _ = ravel_pytree(problem.baseline)

    def walk_for(F):
        grad = jax.grad(F)
        grad_vec = lambda v: ravel_pytree(grad(unravel(v)))[0].astype(xv.dtype)  # noqa: E731
        return unravel(_guided.walk(grad_vec, xv, bv, weights, fraction=fraction, max_dist=max_dist))

    if problem.out_shape == ():
        return walk_for(problem.F)
    return jax.vmap(lambda k: walk_for(lambda z: problem.F(z)[k]))(jnp.arange(problem.out_shape[0]))


def run(config: IGConfig, path: _paths.Path, problem: _frontend.Problem, params, plain_dtypes: bool) -> _frontend.Result:
    """IG of ``problem`` along ``path``: the integrand, then the engine."""
    P = problem
    nbytes, prims = _engine.profile(P.F, P.x)
    if config.rewrite and "reduce_window_max" in prims:  # tiling max pools: reshape + max (same values, faster backward)
        P = P._replace(F=_rewrite.fast(P.F))
    if path.guide is not None:
        return _frontend.Result(_walk(config, path, P, params), points=config.steps)
    split = None
    if config.hoist and path.line is not None and plain_dtypes and not P.forward:
        split = _hoist.split(P.F, P.x)
    sequential = _engine.batch_sensitive(prims)  # targets: K backward passes one by one on conv nets
    kernel = _integrand.derivative(P.F, P.out_shape, forward=P.forward, sequential=sequential)
    if config.adaptive is not None:
        if split is not None:
            starts, _, _ = path.line(params, P.x, P.baseline, jnp.zeros((1,), P.work))
            it = _integrand.hoisted(split, starts, P.x, P.out_shape, sequential=sequential)
        else:
            it = _integrand.along_path(kernel, path, params, P.x, P.baseline, jnp.zeros((), P.work))
        f_x = P.F(P.x)
        f_start = jnp.mean(jax.vmap(P.F)(path.starts(params, P.x, P.baseline)), axis=0)
        n_out = len(P.out_shape)
        outputs = lambda a: sum(  # noqa: E731
            jnp.sum(t, axis=tuple(range(n_out, t.ndim))) for t in jax.tree.leaves(a)
        )
        total, info = _adaptive.integrate(config.adaptive, it, f_x, f_start, outputs)
        return _frontend.Result(total, f_x, f_start, info.points, info.converged, info.delta)
    nodes, weights = path.nodes(params, P.x, P.baseline, *_rule_nodes(config, P.work))
    if split is not None:
        starts, index, alphas = path.line(params, P.x, P.baseline, nodes)
        it = _integrand.hoisted(split, starts, P.x, P.out_shape, sequential=sequential)
        nodes = alphas if jax.tree.leaves(starts)[0].shape[0] == 1 else (index, alphas)
    else:
        node0 = jax.tree.map(lambda a: a[0], nodes)
        it = _integrand.along_path(kernel, path, params, P.x, P.baseline, node0)
    chunk_size = config.chunk_size
    if chunk_size == "auto":
        if split is not None:
            nbytes, _ = _engine.profile(split.rest, split.prefix(P.x))
        chunk_size = _engine.auto_chunk(weights.shape[0], nbytes, prims)
    total = _engine.fixed(it, nodes, weights, chunk_size=chunk_size, mesh=config.mesh)
    return _frontend.Result(total, points=weights.shape[0])


def ig(
    f: Callable[..., Any],
    baseline: Baseline = 0.0,
    steps: int = 50,
    *,
    path: _paths.Path | None = None,
    rule: str | _rules.Rule = "gauss_legendre",
    argnums: ArgNums = 0,
    targets: Targets = None,
    chunk_size: int | str | None = "auto",
    return_delta: bool = False,
    return_info: bool = False,
    check_finite: bool | None = None,
    mesh: jax.sharding.Mesh | None = None,
    tol: float | None = None,
    max_steps: int | None = None,
    hoist: bool = True,
    rewrite: bool = True,
    static_argnums: int | tuple[int, ...] | None = None,
    static_argnames: str | tuple[str, ...] | None = None,
) -> _frontend.Explainer:
    """Integrated Gradients of ``f``: a function transform, like :func:`jax.grad`.

    Returns a jit-compiled function with the signature of ``f`` that computes, for
    the argument ``argnums``,

        A = ∫_0^1 ∇F(γ(α)) ⊙ γ'(α) dα  ≈  Σ_k w_k ∇F(γ(α_k)) ⊙ γ'(α_k),

    where ``γ`` is the path (by default the straight line ``b + α (x - b)`` from
    the baseline ``b`` to the input ``x``) and ``(α_k, w_k)`` are the quadrature
    rule's nodes and weights. Completeness: ``Σ A = F(x) - F(γ(0))`` up to the
    quadrature error, which ``return_delta=True`` reports.

    Args:
      f: the function to explain, ``f(x, *args, **kwargs) -> scalar`` (or an array of
        outputs with ``targets``). To explain one output of a multi-output model, close
        over it: ``jig.ig(lambda x: logits(x)[c], ...)``. Models and their parameters
        belong in the arguments (``f(x, params)`` or ``f(x, model)``), not in a
        closure: like :func:`jax.jit`, jig caches its compiled function per ``f``, and
        arrays a closure captures are frozen into it (a closed-over model mutated later
        gives the old result); arrays in the arguments, and objects holding arrays
        (Flax/Equinox modules, Keras models, plain objects), are traced at every call.
      baseline: the start of the path: a scalar, an array or pytree broadcasting to
        the attributed input, a callable ``x -> baseline``, or ``None`` for a path
        that defines its own start (``jig.paths.blur``).
      steps: the number of quadrature nodes along the path (a Python int >= 1).
      path: ``None`` (the straight line) or a :class:`jig.paths.Path`.
      rule: ``"gauss_legendre"`` (default), ``"riemann_left"``, ``"riemann_right"``,
        ``"riemann_middle"``, ``"riemann_trapezoid"`` or a :class:`jig.rules.Rule`.
      argnums: which positional argument of ``f`` to attribute (an int, or a tuple of
        ints for several, as in :func:`jax.grad`).
      targets: ``None`` (``f`` returns a scalar); ``"all"``: ``f`` returns an array of
        any shape ``S`` and the attributions of every output come back with shape
        ``S + x.shape`` per leaf (like :func:`jax.jacrev`), ``delta`` with shape ``S``;
        or an integer array of shape ``(K,)``: ``f`` returns a vector, attributions
        ``(K,) + x.shape``. One model evaluation per path point serves all outputs (one
        forward pass and ``K`` cotangents; forward mode when the input has fewer
        elements than ``K``). The array is traced, so under :func:`jax.vmap` each
        example may have its own. Out-of-range indices raise when known, and give NaN
        deltas when traced.
      chunk_size: ``"auto"`` (default) chooses per compiled shape
        (:func:`jig.engine.auto_chunk`): a few unrolled chunks for models with
        convolutions or window pooling (faster on XLA:CPU than one big batch), and
        chunks whose activations fit a memory budget for every model, so memory does
        not grow with ``steps``; otherwise all points at once. ``None`` evaluates all
        path points in one batch (memory grows with ``steps``); an int evaluates that
        many at a time and keeps a compensated running sum. Up to 8 chunks are
        unrolled, more run in a rolled loop (least memory).
      return_delta: also return the completeness error
        ``delta = Σ A - (F(x) - F(γ(0)))`` (a float32 scalar, or shape ``S`` with
        ``targets``; float64 under x64), with a fixed rule or with ``tol`` alike.
      return_info: instead, return ``(attributions, jig.AdaptiveInfo(delta, points,
        converged))``: the delta, the number of path points used, and whether the
        tolerance was met (with a fixed rule: whether delta is finite).
      check_finite: ``None`` (default): when the explainer is called eagerly (not
        under an outer ``jit``/``vmap``), raise ``FloatingPointError`` if the
        attributions are NaN or inf, naming what is non-finite (the input, the
        baseline, ``F(x)``, ``F(start)`` or the gradients along the path). ``True``:
        also check under outer transformations (a host callback; JAX then wraps the
        error in ``jax.errors.JaxRuntimeError``). ``False``: never check.
      mesh: a :class:`jax.sharding.Mesh`; the path points of each explanation are
        split across all of its devices and the weighted sum reduced across them
        (for a single large input; see :func:`jig.sharded` for batches).
      tol: adaptive steps (:mod:`jig.adaptive`): refine a nested rule until
        ``|delta| <= tol * |F(x) - F(γ(0))|``. ``steps`` is then the first level's
        number of intervals (``steps + 1`` points, doubled per refinement), ``rule``
        must be ``"romberg"`` (the default ``"gauss_legendre"`` means it) or
        ``"riemann_trapezoid"``, ``chunk_size`` (points per loop iteration) must
        divide ``steps``, and ``return_delta=True`` returns
        ``(attributions, delta)`` like a fixed rule (``return_info=True`` for
        ``jig.AdaptiveInfo(delta, points, converged)``).
      max_steps: with ``tol``, the most path points per explanation (default
        ``64 * steps + 1``); the refinement stops at the last level that fits.
      hoist: on the straight path (and expected gradients' straight lines), evaluate
        the affine operations that ``f``
        applies to its input first (a dense or convolution layer's product and
        bias) once per explanation instead of once per path point, and apply their
        transpose once to the weighted sum (:mod:`jig.hoist`; the same sum up to
        rounding). ``False`` evaluates ``f`` whole at every point.
      rewrite: rewrite the max pools of ``f`` whose windows tile the input (window =
        stride, no padding) as reshape + max (:func:`jig.rewrite.fast`): the same values
        and derivatives, ties included, and a 1.6-2x faster backward pass on XLA:CPU.
        ``False`` runs ``f`` as written.
      static_argnums, static_argnames: positional indices / keyword names of ``f``'s
        arguments to treat as static (hashable Python values used as shapes, slice
        bounds or flags), as in :func:`jax.jit`. Python ints are traced otherwise.

    Returns:
      A function taking the same arguments as ``f`` and returning the attributions,
      with the structure, shapes and dtypes of argument ``argnums`` (``S +`` or
      ``(K,) +`` each shape with ``targets``), or ``(attributions, delta)`` with
      ``return_delta=True`` (``(attributions, info)`` with ``return_info=True``). Extra arguments pass
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
      >>> logits = lambda x, w: jnp.stack([jnp.sum(w * x), jnp.sum(x ** 2)])
      >>> A, delta = jig.ig(logits, 0.0, 8, targets="all", return_delta=True)(x, w)
      >>> A.round(4).tolist(), delta.shape   # both outputs in one pass
      ([[1.0, 1.0, -3.0], [1.0, 4.0, 9.0]], (2,))
    """
    caller = "jig.ig"
    chunk_size = check_chunk_size(caller, chunk_size)
    adaptive = None
    if tol is None and max_steps is None:
        rule = _rules.get(rule)
        rule(steps)  # checks steps against the rule, before anything is traced
    else:
        steps = _rules.check_steps(steps)
        adaptive = _adaptive.configure(tol, steps, max_steps, rule, None if chunk_size == "auto" else chunk_size)
        rule = None
    path = check_path(caller, path)
    argnums = _frontend.check_argnums(caller, argnums)
    mesh = check_mesh(caller, mesh)
    if adaptive is not None:
        _adaptive.check_path(path, mesh)
    targets = _frontend.check_targets(caller, targets)
    static_nums, static_names = _frontend.check_static_argnums(caller, static_argnums, static_argnames, argnums)
    baseline_fn, baseline_arg = _frontend.check_baseline(caller, baseline, path.needs_baseline, path.name)
    return_delta = _checks.boolean(caller, "return_delta", return_delta)
    return_info = _checks.boolean(caller, "return_info", return_info)
    if return_delta and return_info:
        raise ValueError(f"{caller}: pass return_delta=True or return_info=True, not both (the info holds delta)")
    if check_finite is not None:
        check_finite = _checks.boolean(caller, "check_finite", check_finite)
    options = _frontend.Options(
        caller=caller,
        f=_static.Static(f),
        baseline_fn=baseline_fn,
        argnums=argnums,
        targets=None if targets is None else ("all" if isinstance(targets, str) else "array"),
        return_delta=return_delta,
        return_info=return_info,
        check_finite=check_finite,
    )
    config = IGConfig(rule, steps, chunk_size, mesh, adaptive, _checks.boolean(caller, "hoist", hoist),
                      _checks.boolean(caller, "rewrite", rewrite))
    method = _frontend.Method(path, run, config)
    how = f"{rule.name}, {steps} steps" if adaptive is None else f"adaptive, tol={adaptive.tol}"
    return _frontend.explainer(
        options, method, baseline_arg, targets, static_argnums=static_nums, static_argnames=static_names,
        wraps=f, doc=f"Integrated Gradients of {getattr(f, '__name__', 'f')} ({how}, {path.name} path).",
    )
