"""Important Direction Gradient Integration (IDGI; Yang, Wang and Bilen, CVPR 2023).

IG sums ``∇F(γ_k) ⊙ Δγ_k`` along a path; the part of each step that moves across the
gradient's direction adds noise without changing ``F``. IDGI keeps only the output's
change along the gradient: for consecutive path points ``γ_k → γ_{k+1}`` with gradient
``g_k = ∇F(γ_k)``,

    A += g_k ⊙ g_k / ‖g_k‖² · (F(γ_{k+1}) - F(γ_k)),

so every step's share sums to the output's change and completeness holds exactly, by
telescoping, on any path: ``Σ A = F(x) - F(γ(0))`` to rounding, whatever the number
of steps. The points are the rule's nodes with the endpoints 0 and 1 added (sorted,
without repeats); the rule's weights are not used.

Example:
  >>> import jax.numpy as jnp, jig
  >>> f = lambda x: jnp.sum(jnp.sin(3 * x))
  >>> A, delta = jig.idgi(f, 0.0, 4, return_delta=True)(jnp.array([0.3, -1.0, 0.8]))
  >>> bool(abs(delta) < 1e-6)     # exact completeness with 4 steps
  True
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jig import _checks, _frontend, _static
from jig import engine as _engine
from jig import guided as _guided
from jig import integrand as _integrand
from jig import paths as _paths
from jig import rules as _rules
from jig._ig import check_chunk_size, check_mesh, check_path
from jig._types import ArgNums, Baseline, Explainer, Targets

__all__ = ["idgi", "IDGIConfig", "sequence", "run"]


class IDGIConfig(NamedTuple):
    """IDGI's static options (hashable)."""

    rule: _rules.Rule
    steps: int
    chunk_size: int | str | None
    mesh: Any


def sequence(rule: str | _rules.Rule, steps: int) -> np.ndarray:
    """The path positions IDGI visits: the rule's nodes with 0 and 1, sorted, unique.

    Example:
      >>> from jig.idgi import sequence
      >>> sequence("riemann_trapezoid", 5).tolist()   # the authors' linspace(0, 1, 5)
      [0.0, 0.25, 0.5, 0.75, 1.0]
      >>> sequence("riemann_middle", 2).tolist()
      [0.0, 0.25, 0.75, 1.0]
    """
    alphas, _ = _rules.get(rule)(steps)
    return np.unique(np.concatenate([[0.0], alphas, [1.0]]))


def _value_and_derivative(F, out_shape: tuple, forward: bool):
    """``z -> (D, F(z))``: the gradient (or Jacobian rows, ``out_shape = (K,)``) and the value."""

    def both(z):
        y = F(z)
        return y, y

    if out_shape == ():
        return jax.grad(both, has_aux=True)
    return (jax.jacfwd if forward else jax.jacrev)(both, has_aux=True)


def _share(sq, norm, step_sq, step_norm):
    """Each feature's share of one step's output change: ``g²/‖g‖²``, or ``Δγ²/‖Δγ‖²``
    where the gradient vanishes (0 where the step does not move either). A step's
    shares sum to 1, so completeness holds either way.

    ``sq``: leaves ``T + leaf`` (``T`` the outputs), ``norm``: ``T``; ``step_sq``:
    leaves ``leaf``, ``step_norm``: a scalar. Divisions are guarded on both branches
    so that derivatives stay finite."""
    has_g = norm > 0
    safe_norm = jnp.where(has_g, norm, 1.0)
    has_step = step_norm > 0
    step_scale = jnp.where(has_step, 1.0 / jnp.where(has_step, step_norm, 1.0), 0.0)

    def one(s, m):
        expand = lambda a: a.reshape(a.shape + (1,) * (s.ndim - a.ndim))  # noqa: E731
        by_step = jnp.broadcast_to(m * step_scale, s.shape)
        return jnp.where(expand(has_g), s / expand(safe_norm), by_step)

    return jax.tree.map(one, sq, step_sq)


def _leaf_sum(tree, n_out: int):
    return sum(jnp.sum(a, axis=tuple(range(n_out, a.ndim))) for a in jax.tree.leaves(tree))


def _pairs(config: IDGIConfig, path, P, params):
    seq = sequence(config.rule, config.steps)
    a, b = jnp.asarray(seq[:-1], P.work), jnp.asarray(seq[1:], P.work)
    ones = jnp.ones(a.shape, P.work)
    nodes_a, weights = path.nodes(params, P.x, P.baseline, a, ones)
    nodes_b, _ = path.nodes(params, P.x, P.baseline, b, ones)
    return (nodes_a, nodes_b), weights


def _walk(config: IDGIConfig, path, P):
    """IDGI along Guided IG's walk: the walk's points re-run here (``jig.guided``'s
    step), each point's gradient and value computed once."""
    fraction, max_dist = path.guide
    _, weights = config.rule(config.steps)
    xv, unravel = ravel_pytree(P.x)
    bv, _ = ravel_pytree(P.baseline)

    def walk_for(F):
        vg = jax.value_and_grad(lambda v: F(unravel(v)))
        idgi_attr, _ = guided_idgi(vg, xv, bv, jnp.asarray(weights, xv.dtype), fraction=fraction,
                                   max_dist=max_dist, f_x=F(P.x))
        return unravel(idgi_attr)

    if P.out_shape == ():
        return walk_for(P.F)
    return jax.vmap(lambda k: walk_for(lambda z: P.F(z)[k]))(jnp.arange(P.out_shape[0]))


def guided_idgi(value_and_grad: Callable, xv: jax.Array, bv: jax.Array, weights: jax.Array, *,
                fraction: float, max_dist: float, f_x: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """IDGI along Guided IG's walk from ``bv`` to ``xv`` (flat vectors).

    Follows :func:`jig.guided.walk` step by step (same targets, same selection), with
    one ``value_and_grad`` per point; returns ``(idgi, ig)``: IDGI's attributions and,
    as a check, Guided IG's own ``Σ (x_{k+1} - x_k) ⊙ g_k`` over the same points.
    """
    diff = xv - bv
    moving = diff != 0
    l1_total = jnp.sum(jnp.abs(diff))
    ends = jnp.cumsum(weights) / jnp.sum(weights)
    ends = ends.at[-1].set(1.0)
    last = jnp.arange(ends.shape[0]) == ends.shape[0] - 1
    rank = math.floor(fraction * max(xv.shape[0] - 1, 0))
    f_end = value_and_grad(xv)[0] if f_x is None else f_x

    def step(carry, target):
        xc, attr, ig = carry
        a, is_last = target
        fc, g = value_and_grad(xc)
        xn = _guided.step(g, xc, xv, bv, diff, moving, l1_total, a.astype(xv.dtype), max_dist=max_dist, rank=rank)
        xn = jnp.where(is_last, xv, xn)
        return (xn, attr, ig + (xn - xc) * g), (fc, g, xn - xc)

    zero = jnp.zeros_like(xv)
    (_, _, ig), (fs, gs, moves) = jax.lax.scan(step, (bv, zero, zero), (ends, last))
    f_next = jnp.concatenate([fs[1:], jnp.reshape(f_end, (1,)).astype(fs.dtype)])
    share = jax.vmap(lambda g, m: _share(g * g, jnp.sum(g * g), m * m, jnp.sum(m * m)))(gs, moves)
    return _integrand.weighted_sum(jnp.ones_like(fs), share * (f_next - fs)[:, None]), ig


def run(config: IDGIConfig, path: _paths.Path, problem: _frontend.Problem, params, plain_dtypes: bool
        ) -> _frontend.Result:
    """IDGI of ``problem`` along ``path``: pairs of consecutive points, summed by the engine."""
    del plain_dtypes
    P = problem
    if path.guide is not None:
        return _frontend.Result(_walk(config, path, P), points=config.steps)
    kernel = _value_and_derivative(P.F, P.out_shape, P.forward)
    n_out = len(P.out_shape)

    def block(nodes, weights, constrain):
        nodes_a, nodes_b = nodes
        at = lambda node: path.point(params, node, P.x, P.baseline)[0]  # noqa: E731
        pa = constrain(jax.vmap(at)(nodes_a))
        pb = constrain(jax.vmap(at)(nodes_b))
        D, fa = jax.vmap(kernel)(pa)  # leaves (N, *T, *leaf), (N, *T)
        fb = jax.vmap(P.F)(pb)
        sq = jax.tree.map(jnp.square, D)
        moves = jax.tree.map(lambda u, v: jnp.square(v - u), pa, pb)
        share = jax.vmap(lambda s, m: _share(s, _leaf_sum(s, n_out), m, _leaf_sum(m, 0)))(sq, moves)
        change = fb - fa
        values = jax.tree.map(lambda s: s * change.reshape(change.shape + (1,) * (s.ndim - change.ndim)), share)
        return _integrand.weighted_sum(weights, values)

    probe = jax.eval_shape(lambda z: kernel(z)[0], P.x)
    zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), probe)
    it = _integrand.Integrand(block, zero, lambda total: total)
    nodes, weights = _pairs(config, path, P, params)
    chunk_size = config.chunk_size
    if chunk_size == "auto":  # as jig.ig: a few unrolled chunks for conv nets, bounded memory
        nbytes, prims = _engine.profile(kernel, P.x)
        chunk_size = _engine.auto_chunk(weights.shape[0], 2 * nbytes, prims)
    total = _engine.fixed(it, nodes, weights, chunk_size=chunk_size, mesh=config.mesh)
    return _frontend.Result(total, points=weights.shape[0])


def idgi(
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
    static_argnums: int | tuple[int, ...] | None = None,
    static_argnames: str | tuple[str, ...] | None = None,
) -> Explainer:
    """Important Direction Gradient Integration of ``f``: IG's options, exact completeness.

    Returns a jit-compiled function with the signature of ``f`` that computes, over the
    path points ``γ_0 = γ(0), ..., γ_M = x`` at the positions :func:`sequence` (the
    rule's nodes with 0 and 1),

        A = Σ_k g_k ⊙ g_k / ‖g_k‖² · (F(γ_{k+1}) - F(γ_k)),     g_k = ∇F(γ_k)

    (``‖·‖`` over all leaves of a pytree input). ``Σ A = F(x) - F(γ(0))`` holds to
    rounding by telescoping. Where ``g_k = 0`` (a ReLU network's flat region) the
    step's change is shared by the step's own direction ``Δγ_k² / ‖Δγ_k‖²``, so
    completeness never breaks (the authors' code divides by zero there). Each step
    costs one gradient at ``γ_k`` and one forward pass at ``γ_{k+1}``; the pairs are
    independent, so ``chunk_size`` and ``mesh`` work as in :func:`jig.ig`.

    Args:
      f, baseline, argnums, targets, return_delta, return_info, check_finite, mesh,
        static_argnums, static_argnames: as in :func:`jig.ig` (with ``targets``, one
        gradient direction and one output change per output).
      steps: the number of rule nodes (``steps + 2`` points at most, endpoints added).
      path: ``None`` (the straight line), :func:`jig.paths.straight`,
        :func:`jig.paths.blur`, :func:`jig.paths.custom`, :func:`jig.paths.expected`
        (exact form: one sequence per baseline, averaged) or
        :func:`jig.paths.guided` (the walk's points; ``chunk_size``/``mesh`` have no
        effect there, as in :func:`jig.ig`). The Monte Carlo form of
        ``expected`` raises: random positions are not consecutive steps.
      rule: a rule of :mod:`jig.rules`; only its nodes matter (positions), and for
        ``guided`` its cumulative weights (the walk's targets).
        ``"riemann_trapezoid"`` with ``steps = m`` visits ``linspace(0, 1, m)``, the
        authors' setting.
      chunk_size: path steps evaluated at once: ``"auto"`` (default) chooses as
        :func:`jig.ig` does (:func:`jig.engine.auto_chunk`), ``None`` takes all at once,
        an int that many (a compensated running sum).
      tol, max_steps: do not apply (IDGI is complete by construction, there is no
        quadrature error to refine); passing either raises ``ValueError``.

    Returns:
      The attributions with the structure, shapes and dtypes of argument ``argnums``
      (``S +`` or ``(K,) +`` with ``targets``), or ``(attributions, delta)``.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> f = lambda x, w: jnp.tanh(jnp.dot(w, x)) ** 2
      >>> x, w = jnp.array([1.0, -0.5, 2.0]), jnp.array([0.4, 1.0, -0.3])
      >>> A, delta = jig.idgi(f, 0.0, 16, return_delta=True)(x, w)
      >>> bool(abs(A.sum() - f(x, w)) < 1e-6), bool(abs(delta) < 1e-6)
      (True, True)
    """
    caller = "jig.idgi"
    if tol is not None or max_steps is not None:
        which = "tol" if tol is not None else "max_steps"
        raise _checks.fail(
            caller, which, "None (adaptive steps do not apply)", tol if tol is not None else max_steps,
            "IDGI's sum telescopes, so completeness holds exactly at any steps; there is no "
            "quadrature error for tol= to refine", raw=False,
        )
    rule = _rules.get(rule)
    rule(steps)
    chunk_size = check_chunk_size(caller, chunk_size)
    path = check_path(caller, path)
    if path.name == "expected (Monte Carlo)":
        raise _checks.fail(
            caller, "path", "a path with ordered positions (the exact jig.paths.expected(stack))",
            "jig.paths.expected(..., key=, samples=)", "IDGI's steps join consecutive points; random "
            "positions are not steps. Drop key= and samples=", raw=True,
        )
    argnums = _frontend.check_argnums(caller, argnums)
    mesh = check_mesh(caller, mesh)
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
        caller=caller, f=_static.Static(f), baseline_fn=baseline_fn, argnums=argnums,
        targets=None if targets is None else ("all" if isinstance(targets, str) else "array"),
        return_delta=return_delta, return_info=return_info, check_finite=check_finite,
    )
    config = IDGIConfig(rule, steps, chunk_size, mesh)
    return _frontend.explainer(
        options, _frontend.Method(path, run, config), baseline_arg, targets,
        static_argnums=static_nums, static_argnames=static_names, wraps=f,
        doc=f"IDGI of {getattr(f, '__name__', 'f')} ({rule.name}, {steps} steps, {path.name} path).",
    )
