"""Integrated Hessians (Janizek, Sturmfels and Lee, JMLR 2021): pairwise feature interactions.

Explaining the IG attribution ``A_i(x)`` itself with IG, from the same baseline ``b``,
gives a matrix ``Γ`` with ``Σ_j Γ_ij = A_i`` and ``Σ_ij Γ_ij = F(x) - F(b)``. With
``d = x - b`` and ``A_i(z) = (z_i - b_i) ∫_0^1 ∂_iF(b + α(z - b)) dα``,

    Γ_ij = d_j ∫_0^1 ∂_j A_i(b + β d) dβ
         = d_i d_j ∫∫ αβ ∂_ij F(b + αβ d) dα dβ  +  δ_ij d_i ∫∫ ∂_iF(b + αβ d) dα dβ.

Both double integrals depend on ``α`` and ``β`` only through ``t = αβ``, and
``∫_0^1∫_0^1 φ(αβ) dα dβ = ∫_0^1 φ(t) (-ln t) dt``, so

    Γ = D H̄ D + diag(d ⊙ ḡ),   H̄ = ∫_0^1 t H(b + t d) (-ln t) dt,   ḡ = ∫_0^1 ∇F(b + t d) (-ln t) dt

(``D = diag(d)``, ``H`` the Hessian): one integral against the weight ``-ln t``.
:data:`gauss_log` is the Gauss rule for that weight: ``m`` nodes integrate
``∫ p(t) (-ln t) dt`` exactly for polynomials ``p`` of degree ``2m - 1``, where a
product rule over the ``(α, β)`` square needs ``m²`` points for the same degree
(path_explain's grid of ``k`` equally spaced points per axis is exact only for
constants and errs like ``1/k``).

Example:
  >>> import jax.numpy as jnp, jig
  >>> A = jnp.array([[1.0, 2.0], [0.0, -1.0]])
  >>> f = lambda x: x @ A @ x
  >>> x = jnp.array([1.0, 3.0])
  >>> G = jig.interactions(f, 0.0, 2)(x)    # exact: f is quadratic
  >>> G.round(4).tolist()
  [[2.5, 1.5], [1.5, -7.5]]
  >>> round(float(G.sum()), 5), float(f(x))   # completeness: F(x) - F(0)
  (-2.0, -2.0)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jig import _checks, _frontend, _static
from jig import engine as _engine
from jig import integrand as _integrand
from jig import paths as _paths
from jig import rules as _rules
from jig._ig import check_chunk_size, check_mesh, check_path
from jig._types import ArgNums, Baseline, Explainer

__all__ = ["interactions", "token_matrix", "gauss_log", "log_nodes", "InteractionsConfig"]


# --------------------------------------------------------------------------- the -ln t rule


@functools.lru_cache(maxsize=64)
def _gauss_log_cached(m: int) -> tuple[np.ndarray, np.ndarray]:
    # Golub-Welsch on the recurrence of the polynomials orthogonal for -ln t on [0, 1],
    # computed by Gautschi's modified Chebyshev algorithm from the modified moments
    # ν_l = ∫ (-ln t) P*_l(t) dt = (-1)^l / (l (l + 1)) (l >= 1), ν_0 = 1, of the shifted
    # Legendre polynomials P*_l (recurrence a_l = 1/2, b_l = l² / (4 (4 l² - 1))). The
    # monic moments shrink like 4^-l, so every σ_{k,l} is kept scaled by 4^(k + l).
    n = 2 * m
    ell = np.arange(n)
    a = np.full(n, 0.5)
    b = np.zeros(n)
    b[1:] = ell[1:] ** 2 / (4.0 * (4.0 * ell[1:] ** 2 - 1.0))
    log_lead = np.array([math.lgamma(2 * k + 1) - 2 * math.lgamma(k + 1) for k in range(n)])
    nu = np.ones(n)
    nu[1:] = (-1.0) ** ell[1:] / (ell[1:] * (ell[1:] + 1.0))
    sigma = nu * np.exp(ell * math.log(4.0) - log_lead)  # 4^l × the monic moments
    previous = np.zeros(n)
    alpha, beta = np.zeros(m), np.zeros(m)
    alpha[0] = a[0] + sigma[1] / (4.0 * sigma[0])
    beta[0] = sigma[0]
    for k in range(1, m):
        new = np.zeros(n)
        l_ = np.arange(k, n - k)
        new[l_] = (sigma[l_ + 1] - 4.0 * (alpha[k - 1] - a[l_]) * sigma[l_]
                   - 16.0 * beta[k - 1] * previous[l_] + 16.0 * b[l_] * sigma[l_ - 1])
        alpha[k] = a[k] + new[k + 1] / (4.0 * new[k]) - sigma[k] / (4.0 * sigma[k - 1])
        beta[k] = new[k] / (16.0 * sigma[k - 1])
        previous, sigma = sigma, new
    off = np.sqrt(beta[1:])
    nodes, vectors = np.linalg.eigh(np.diag(alpha) + np.diag(off, 1) + np.diag(off, -1))
    weights = beta[0] * vectors[0] ** 2
    return nodes, weights / weights.sum()


def _gauss_log(m: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = _gauss_log_cached(int(m))
    return nodes.copy(), weights.copy()


#: The Gauss rule for ``∫_0^1 φ(t) (-ln t) dt`` (``-ln t`` integrates to 1, so the
#: weights sum to 1): ``m`` nodes in ``(0, 1)``, exact for polynomials of degree
#: ``2m - 1``. A rule for the weight ``-ln t``, not for ``jig.ig``'s plain integral.
gauss_log = _rules.Rule("gauss_log", _gauss_log, lambda m: 2 * m - 1)


def log_nodes(rule: str | _rules.Rule, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``t_k`` and weights ``w_k`` with ``Σ_k w_k φ(t_k) ≈ ∫_0^1 φ(t) (-ln t) dt``.

    ``"gauss_log"`` (:data:`gauss_log`): ``steps`` Gauss nodes for the weight
    ``-ln t``, exact for polynomials ``φ`` of degree ``2 steps - 1``. Any rule of
    :mod:`jig.rules` (a name or a :class:`jig.rules.Rule`), with nodes ``α_a`` and
    weights ``w_a``, is used as the product rule on the square through ``t = αβ``:
    nodes ``α_a α_b``, weights ``w_a w_b`` (the pairs ``(a, b)`` and ``(b, a)`` share a
    node, so ``steps (steps + 1) / 2`` nodes), exact for the degrees the rule is exact
    for (``2 steps - 1`` for ``"gauss_legendre"``, 1 for ``"riemann_middle"``...).

    Example:
      >>> from jig.interactions import log_nodes
      >>> t, w = log_nodes("gauss_log", 3)
      >>> round(float((w * t ** 5).sum()), 12), 1 / 36       # ∫ t⁵ (-ln t) dt = 1/36
      (0.027777777778, 0.027777777777777776)
      >>> log_nodes("riemann_middle", 4)[0].shape            # 4 × 5 / 2 product nodes
      (10,)
    """
    if isinstance(rule, str) and rule == "gauss_log" or rule is gauss_log:
        return gauss_log(steps)
    rule = _rules.get(rule)
    alphas, weights = rule(steps)
    i, j = np.triu_indices(alphas.shape[0])
    return alphas[i] * alphas[j], weights[i] * weights[j] * np.where(i == j, 1.0, 2.0)


# --------------------------------------------------------------------------- the method


class InteractionsConfig(NamedTuple):
    """Integrated Hessians' static options (hashable)."""

    t: tuple  # the -ln t rule's nodes
    w: tuple  # and weights
    rows: tuple | None
    chunk_size: int | str | None
    mesh: Any
    monte_carlo: bool


def _check_rows(caller: str, rows) -> tuple | None:
    if rows is None:
        return None
    if isinstance(rows, jax.core.Tracer):
        raise _checks.type_fail(
            caller, "rows", "a concrete 1-D int array or sequence (the rows are static: one "
            "compilation per set)", "a traced array", "pass rows as a NumPy array or a list", raw=True,
        )
    if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
        raise _checks.type_fail(caller, "rows", "a 1-D int array of feature indices", rows,
                                f"for one row pass rows=[{int(rows)}]")
    try:
        arr = np.asarray(rows)
    except Exception:  # noqa: BLE001 - reported below
        arr = None
    if arr is None or not (np.issubdtype(arr.dtype, np.integer)) or arr.dtype == np.bool_:
        raise _checks.type_fail(caller, "rows", "a 1-D int array of feature indices", rows)
    if arr.ndim != 1 or arr.size < 1:
        raise _checks.fail(caller, "rows", "a 1-D array of R >= 1 feature indices, shape (R,)", rows)
    if np.any(arr < 0):
        raise _checks.fail(caller, "rows", "non-negative feature indices (into the flattened input)",
                           str(arr.tolist()), raw=True)
    return tuple(int(r) for r in arr)


def _hessian_rows(Fv, basis):
    """``z -> (∇F(z), H(z) basisᵀ)``: the gradient and one Hessian-vector product per row
    of ``basis`` (forward over reverse; the gradient is computed once)."""
    grad = jax.grad(Fv)

    def at(z):
        return jax.vmap(lambda e: jax.jvp(grad, (z,), (e,)), out_axes=(None, 0))(basis)

    return at


def run(config: InteractionsConfig, path: _paths.Path, problem: _frontend.Problem, params,
        plain_dtypes: bool) -> _frontend.Result:
    """Integrated Hessians of ``problem`` along straight lines (one or several starts)."""
    del plain_dtypes
    P = problem
    xv, unravel = ravel_pytree(P.x)
    n = xv.shape[0]
    work = xv.dtype

    def Fv(z):
        return P.F(unravel(z))

    t = jnp.asarray(np.asarray(config.t), work)
    w = jnp.asarray(np.asarray(config.w), work)
    nodes, weights = path.nodes(params, P.x, P.baseline, t, w)
    starts, index, alphas = path.line(params, P.x, P.baseline, nodes)
    if config.monte_carlo:  # α ~ U[0, 1): t = 1 - α, importance weight -ln t
        alphas = 1.0 - alphas
        weights = weights * -jnp.log(alphas)
    starts = jax.vmap(lambda s: ravel_pytree(s)[0])(starts).astype(work)
    if config.rows is None:
        rows = None
        basis = jnp.eye(n, dtype=work)
    else:
        bad = [r for r in config.rows if r >= n]
        if bad:
            raise _checks.fail(
                "jig.interactions", "rows", f"feature indices in [0, {n}) (the input has {n} elements)",
                str(list(config.rows)), raw=True,
            )
        rows = jnp.asarray(config.rows, jnp.int32)
        basis = jax.nn.one_hot(rows, n, dtype=work)
    kernel = _hessian_rows(Fv, basis)

    def block(nodes_b, weights_b, constrain):
        idx, tb = nodes_b
        s = starts[idx]
        d = xv[None] - s
        z = constrain(s + tb[:, None] * d)
        g, hb = jax.vmap(kernel)(z)  # (N, n), (N, R, n)
        d_r = d if rows is None else d[:, rows]
        g_r = g if rows is None else g[:, rows]
        values = tb[:, None, None] * d_r[:, :, None] * d[:, None, :] * hb + basis[None] * (d_r * g_r)[:, :, None]
        return _integrand.weighted_sum(weights_b, values)

    def finish(total):
        if rows is None:  # a pytree like x, leaves leaf.shape + (n,) (nested by the front-end)
            return jax.vmap(unravel, in_axes=1, out_axes=-1)(total)
        return jax.vmap(unravel)(total)  # leaves (R,) + leaf.shape

    zero = jnp.zeros(basis.shape, work)
    it = _integrand.Integrand(block, zero, finish)
    chunk_size = config.chunk_size
    if chunk_size == "auto":  # bounded memory, a few unrolled chunks for conv nets (jig.engine.auto_chunk)
        nbytes, prims = _engine.profile(kernel, xv)
        chunk_size = _engine.auto_chunk(weights.shape[0], nbytes, prims)
    total = _engine.fixed(it, (index, alphas), weights, chunk_size=chunk_size, mesh=config.mesh)
    return _frontend.Result(total, points=weights.shape[0])


def _nest(gamma):
    """Leaves ``leaf_i.shape + (n,)`` (a pytree like ``x``) to ``jax.hessian``'s layout:
    ``x.shape + x.shape`` for an array, ``Γ[i][j]`` of shape ``leaf_i + leaf_j`` otherwise."""
    leaves, treedef = jax.tree.flatten(gamma)
    shapes = [leaf.shape[:-1] for leaf in leaves]
    if treedef == jax.tree.structure(0):
        return leaves[0].reshape(shapes[0] + shapes[0])
    sizes = [math.prod(s) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for leaf in leaves:
        cols = [leaf[..., offsets[j]:offsets[j + 1]].reshape(leaf.shape[:-1] + shapes[j]) for j in range(len(leaves))]
        out.append(treedef.unflatten(cols))
    return treedef.unflatten(out)


def interactions(
    f: Callable[..., Any],
    baseline: Baseline = 0.0,
    steps: int = 50,
    *,
    path: _paths.Path | None = None,
    rule: str | _rules.Rule = "gauss_log",
    argnums: ArgNums = 0,
    rows: Sequence[int] | np.ndarray | None = None,
    chunk_size: int | str | None = None,
    return_delta: bool = False,
    check_finite: bool | None = None,
    mesh: jax.sharding.Mesh | None = None,
    static_argnums: int | tuple[int, ...] | None = None,
    static_argnames: str | tuple[str, ...] | None = None,
) -> Explainer:
    """Integrated Hessians of ``f``: the matrix of pairwise interactions ``Γ``.

    Returns a jit-compiled function with the signature of ``f`` that computes, for the
    argument ``argnums`` (``x``, baseline ``b``, ``d = x - b``),

        Γ_ij = d_i d_j ∫_0^1 t ∂_ij F(b + t d) (-ln t) dt + δ_ij d_i ∫_0^1 ∂_iF(b + t d) (-ln t) dt,

    Janizek et al.'s double integral over ``(α, β)`` written in ``t = αβ`` (see the
    module's docstring), summed with a quadrature rule for the weight ``-ln t``. Rows
    sum to the IG attributions from the same baseline (``Σ_j Γ_ij = A_i``) and all
    entries to ``F(x) - F(b)`` (completeness), up to the quadrature error. Each path
    point costs one gradient and one Hessian-vector product per row (forward over
    reverse: ``jax.jvp`` of ``jax.grad``), all rows batched.

    Args:
      f: the function to explain, ``f(x, *args, **kwargs) -> scalar``; twice
        differentiable (a ReLU network's Hessian is zero almost everywhere: only the
        diagonal's first-order term remains; use smooth activations).
      baseline: the start, as in :func:`jig.ig` (a scalar, an array or pytree, a
        callable ``x -> baseline``), or ``None`` with ``path=jig.paths.expected(...)``.
      steps: with ``rule="gauss_log"``, the number of path points; with an ordinary
        rule, its nodes per axis of the ``(α, β)`` square (``steps (steps + 1) / 2``
        points).
      path: ``None`` (the straight line) or ``jig.paths.expected(stack)``: Expected
        Hessians, the exact mean of ``Γ`` over the stack's baselines (every baseline
        with every node); with ``key``/``samples``, Monte Carlo: uniform draws ``α``
        give ``t = 1 - α`` with importance weight ``-ln t``. Other paths raise
        (the ``t = αβ`` identity holds on straight lines).
      rule: ``"gauss_log"`` (default, :data:`gauss_log`: exact for polynomials of
        degree ``2 steps - 1`` in ``t``), or a rule of :mod:`jig.rules` used as a
        product rule on the square (:func:`log_nodes`). ``Rule`` nodes
        ``i/(k-1)`` with weights ``1/k`` reproduce path_explain's grid.
      argnums: the positional argument to explain (an int or a tuple, as in
        :func:`jax.hessian`).
      rows: ``None`` for the full matrix, or ``R`` feature indices into the
        flattened input (``ravel_pytree`` order): only those rows ``Γ_r·`` are
        computed (``R`` Hessian-vector products per point, not ``n``), returned with
        shape ``(R,) + x.shape`` (a pytree like ``x`` with a leading ``R``). Static: a
        new set of rows compiles anew. Not with ``return_delta`` (completeness needs
        every row; compare row sums with :func:`jig.ig`).
      chunk_size: ``None`` evaluates every point at once (memory ``points × R × n``);
        an int evaluates that many at a time with a compensated running sum;
        ``"auto"`` chooses as :func:`jig.ig` does (:func:`jig.engine.auto_chunk`).
      return_delta: also return ``delta = Σ Γ - (F(x) - F(start))`` (the mean over
        the starts for an expected path).
      check_finite: as in :func:`jig.ig`.
      mesh: split each block's path points across the devices of a
        :class:`jax.sharding.Mesh`, as in :func:`jig.ig`.
      static_argnums, static_argnames: as in :func:`jig.ig`.

    Returns:
      A function taking ``f``'s arguments and returning ``Γ``: for an array ``x`` of
      shape ``S``, shape ``S + S``; for a pytree, ``jax.hessian``'s layout
      (``Γ[i][j]`` of shape ``leaf_i + leaf_j``). With ``rows``, ``(R,) + S``. With
      ``return_delta=True``, ``(Γ, delta)``. :func:`token_matrix` sums the embedding
      axes of a ``(T, D, T, D)`` matrix into ``(T, T)``.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> f = lambda x, w: jnp.tanh(x @ w) * x[0]
      >>> x, w = jnp.array([0.5, -1.0, 2.0]), jnp.array([0.3, 0.8, -0.2])
      >>> G, delta = jig.interactions(f, 0.0, 16, return_delta=True)(x, w)
      >>> G.shape, bool(abs(delta) < 1e-5)
      ((3, 3), True)
      >>> A = jig.ig(f, 0.0, 64)(x, w)
      >>> bool(jnp.allclose(G.sum(axis=1), A, atol=1e-5))       # rows sum to IG
      True
      >>> R = jig.interactions(f, 0.0, 16, rows=[2])(x, w)      # one row: 1 HVP per point
      >>> bool(jnp.allclose(R[0], G[2], atol=1e-6))
      True
    """
    caller = "jig.interactions"
    if isinstance(rule, str) and rule == "gauss_log" or rule is gauss_log:
        t, w = gauss_log(steps)
    else:
        rule = _rules.get(rule)
        t, w = log_nodes(rule, steps)
    chunk_size = check_chunk_size(caller, chunk_size)
    path = check_path(caller, path)
    if path.line is None:
        raise _checks.fail(
            caller, "path", "None, jig.paths.straight() or jig.paths.expected(...) (Integrated "
            "Hessians integrate along straight lines, where the double integral becomes one with "
            "weight -ln t)", f"the {path.name!r} path", raw=True,
        )
    monte_carlo = path.name == "expected (Monte Carlo)"
    argnums = _frontend.check_argnums(caller, argnums)
    mesh = check_mesh(caller, mesh)
    rows = _check_rows(caller, rows)
    static_nums, static_names = _frontend.check_static_argnums(caller, static_argnums, static_argnames, argnums)
    baseline_fn, baseline_arg = _frontend.check_baseline(caller, baseline, path.needs_baseline, path.name)
    return_delta = _checks.boolean(caller, "return_delta", return_delta)
    if return_delta and rows is not None:
        raise _checks.fail(
            caller, "return_delta", "False when rows= is given", "True",
            "completeness sums every row; with rows, compare each row's sum with jig.ig's attribution",
            raw=True,
        )
    if check_finite is not None:
        check_finite = _checks.boolean(caller, "check_finite", check_finite)
    options = _frontend.Options(
        caller=caller, f=_static.Static(f), baseline_fn=baseline_fn, argnums=argnums, targets=None,
        return_delta=return_delta, return_info=False, check_finite=check_finite,
    )
    config = InteractionsConfig(tuple(t.tolist()), tuple(w.tolist()), rows, chunk_size, mesh, monte_carlo)
    name = rule if isinstance(rule, str) else rule.name
    doc = (f"Integrated Hessians of {getattr(f, '__name__', 'f')} ({name}, {steps} steps, "
           f"{path.name} path{'' if rows is None else f', rows {list(rows)}'}).")
    return _frontend.explainer(
        options, _frontend.Method(path, run, config), baseline_arg, None,
        static_argnums=static_nums, static_argnames=static_names, wraps=f, doc=doc,
        post=None if rows is not None else _nest,
    )


def token_matrix(gamma: jax.Array) -> jax.Array:
    """Token-by-token interactions: ``Γ`` of shape ``(T, *E, T, *E)`` summed over the
    embedding axes ``E`` to ``(T, T)``.

    For ``Γ`` of an embedding layer's output ``h`` (shape ``(T, D)``: tokens by
    features), entry ``(s, u)`` is the interaction of token ``s`` with token ``u``,
    ``Σ_{a,b} Γ[s, a, u, b]``; rows still sum to the per-token IG attributions and
    everything to ``F(x) - F(b)``.

    Args:
      gamma: the full matrix from :func:`interactions` on an input of shape ``(T, *E)``.

    Returns:
      An array of shape ``(T, T)``.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> from jig.interactions import token_matrix
      >>> f = lambda h: jnp.sum(h[0]) * jnp.sum(h[1])          # 2 tokens, 3 features
      >>> G = jig.interactions(f, 0.0, 2)(jnp.ones((2, 3)))
      >>> M = token_matrix(G)   # main effects on the diagonal, interactions off it
      >>> M.round(4).tolist(), float(M.sum())                 # the sum is F(x) - F(0) = 9
      ([[2.25, 2.25], [2.25, 2.25]], 9.0)
    """
    gamma = jnp.asarray(gamma)
    half = gamma.ndim // 2
    if gamma.ndim % 2 or half < 1 or gamma.shape[:half] != gamma.shape[half:]:
        raise _checks.fail(
            "jig.interactions.token_matrix", "gamma", "a full interaction matrix of shape (T, *E, T, *E)",
            f"an array of shape {tuple(gamma.shape)}", "pass the full matrix (not rows=) of a (T, D) input",
            raw=True,
        )
    t = gamma.shape[0]
    e = math.prod(gamma.shape[1:half])
    return gamma.reshape(t, e, t, e).sum(axis=(1, 3))
