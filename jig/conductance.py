"""Conductance: how much of ``F(x) - F(baseline)`` flows through each unit of a layer.

For a model split at a layer into

    bottom(params, x, *args, **kwargs) -> y            the layer's output on x
    top(params, x, y, *args, **kwargs) -> output       the rest, with the layer's output y

and the straight path ``γ(α) = b + α (x - b)`` in the *input* space, the conductance
of unit ``j`` (Dhamdhere, Sundararajan and Yan 2018, "How important is a neuron?";
Captum's ``LayerConductance``) is

    C_j = ∫_0^1 ∂F/∂y_j (y(α)) · dy_j(γ(α))/dα  dα,      y(α) = bottom(params, γ(α)),

and the units share out the whole difference: ``Σ_j C_j = F(x) - F(b)`` (the chain
rule makes the integrand sum to ``dF(γ(α))/dα``). jig evaluates it with a quadrature
rule: at each node ``y(α)`` and its exact α-derivative come from one ``jax.jvp`` of
``α ↦ bottom(params, γ(α))``, and ``∂F/∂y`` from a VJP of ``top`` at ``y(α)`` (with
``γ(α)`` as the input), summed by :func:`jig.engine.fixed` (``chunk_size``, ``mesh``).

Captum approximates the velocity by the difference of the layer's outputs at
consecutive nodes, ``Σ_k ∂F/∂y(α_k) (y(α_{k+1}) - y(α_k))`` over ``steps + 1`` nodes: a
first-order sum that converges to the same integral (more slowly); see
``docs/smooth_conductance.md``.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jig.conductance import conductance
  >>> W = jnp.array([[1.0, -1.0], [0.5, 2.0]])
  >>> bottom = lambda p, x: jnp.tanh(x @ p)        # the hidden layer: 2 units
  >>> top = lambda p, x, y: jnp.sum(y ** 2)        # the rest of the model
  >>> explain = conductance(bottom, top, steps=16, return_delta=True)
  >>> res = explain(W, jnp.array([0.3, -0.7]))
  >>> [round(float(c), 4) for c in res.attributions], bool(abs(res.delta) < 1e-5)   # y_j² here
  ([0.0025, 0.875], True)
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks, _frontend, _static
from jig import engine as _engine
from jig import integrand as _integrand
from jig import rules as _rules
from jig._types import Baseline, Targets
from jig.layers import LayerAttribution, token_scores

__all__ = ["conductance", "LayerAttribution"]


def conductance(
    bottom: Callable[..., Any],
    top: Callable[..., Any],
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = 0.0,
    steps: int = 50,
    *,
    rule: str | _rules.Rule = "gauss_legendre",
    chunk_size: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    targets: Targets = None,
    return_delta: bool = False,
    argnums: int | tuple[int, ...] = 0,
    check_finite: bool | None = None,
    caller: str = "jig.conductance",
    name: str = "the layer",
) -> Callable[..., LayerAttribution]:
    """Conductance of every unit of a layer, along the straight path in the input space.

    Returns a jit-compiled ``explain(params, x, *args, **kwargs)`` computing, for
    ``y(α) = bottom(params, γ(α))`` and ``F = f ∘ top``,

        C = Σ_k w_k ∂F/∂y (γ(α_k), y(α_k)) ⊙ dy/dα (α_k),     γ(α) = b + α (x - b),

    the rule's approximation of ``∫_0^1 ∂F/∂y ⊙ dy/dα dα``, with ``Σ C = F(x) - F(b)``
    when ``top`` depends on ``x`` only through ``y``. What goes around the layer (a
    residual connection, ``top`` reading ``x``) is no unit's conductance: it shows in
    ``delta`` (then ``-(`` the bypass's share ``)``). Out-of-range ``targets`` indices
    give NaN deltas.

    Args:
      bottom: ``(params, x, *args, **kwargs) -> y``, the layer's output (an array or
        pytree).
      top: ``(params, x, y, *args, **kwargs) -> output``, the model's output with the
        layer's output replaced by ``y`` (``x`` is the path point).
      f: maps the model's output to what is explained (a scalar, or an array with
        ``targets=``), e.g. ``lambda logits: logits[c]``; ``None`` when the model's
        output already is.
      baseline: the path's start in the input space: a scalar, an array or pytree
        broadcasting to the input, or a callable ``x -> baseline``.
      steps: the number of quadrature nodes (an int >= 1).
      rule: a quadrature rule name (``"gauss_legendre"``, ``"riemann_middle"``...) or a
        :class:`jig.rules.Rule`.
      chunk_size: ``None`` evaluates every node at once; an int that many at a time
        (peak memory independent of ``steps``).
      mesh: a :class:`jax.sharding.Mesh` to split each block of nodes across.
      targets: ``None`` (a scalar output), ``"all"`` (every output of any shape ``S``:
        attributions ``S + y.shape``) or an int array ``(K,)`` of output indices
        (attributions ``(K,) + y.shape``), as in :func:`jig.ig`.
      return_delta: also return ``delta = Σ C - (F(x) - F(b))`` (per target).
      argnums: which of the explainer's inputs ``(x, *args)`` the path runs through,
        counted as in :func:`jig.ig` (``0`` is ``x``; a tuple for several, with a
        tuple baseline or a scalar). The others stay fixed along the path.
      check_finite: ``None``/``True``: raise ``FloatingPointError`` when an eager
        call's conductances are not finite; ``False``: never check.
      caller, name: the public function and the layer, for error messages.

    Returns:
      ``explain(params, x, *args, **kwargs) -> LayerAttribution`` with the
      conductances (shaped like ``y``; with ``targets``, a leading target axis), their
      sums over the last axis (``token_scores``) and the delta (``None`` unless
      ``return_delta``). It composes with ``jax.jit``, ``jax.vmap`` and ``jax.grad``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jig.conductance import conductance
      >>> W1, W2 = jnp.array([[1.0, 2.0, -1.0], [0.5, -1.0, 1.0]]), jnp.array([1.0, -0.5, 2.0])
      >>> bottom = lambda p, x: x @ p[0]                      # a linear layer: 3 units
      >>> top = lambda p, x, y: jnp.dot(jax.nn.softplus(y), p[1])
      >>> res = conductance(bottom, top, steps=32, return_delta=True)((W1, W2), jnp.array([1.0, 2.0]))
      >>> res.attributions.shape, bool(abs(res.delta) < 1e-4)
      ((3,), True)
      >>> y, y0 = jnp.array([1.0, 2.0]) @ W1, jnp.zeros(3)     # units act alone here: closed form
      >>> bool(jnp.allclose(res.attributions, W2 * (jax.nn.softplus(y) - jax.nn.softplus(y0)), atol=1e-4))
      True
    """
    _checks.callable_(caller, "bottom", bottom, "(params, x, *args) -> the layer's output")
    _checks.callable_(caller, "top", top, "(params, x, y, *args) -> the model's output")
    if f is not None:
        _checks.callable_(caller, "f", f, "output -> the explained value")
    try:
        rule = _rules.get(rule)
        rule(steps)  # checks steps against the rule, before anything is traced
    except (TypeError, ValueError) as e:
        raise type(e)(f"{caller}: {e}") from None
    chunk_size = _checks.optional_positive_int(caller, "chunk_size", chunk_size)
    if mesh is not None:
        if not isinstance(mesh, jax.sharding.Mesh):
            raise _checks.type_fail(caller, "mesh", "None or a jax.sharding.Mesh", mesh)
        mesh = _engine.auto_mesh(mesh)
    targets = _frontend.check_targets(caller, targets)
    targets_kind = None if targets is None else ("all" if isinstance(targets, str) else "array")
    targets_arg = targets if targets_kind == "array" else None
    return_delta = _checks.boolean(caller, "return_delta", return_delta)
    if check_finite is not None:
        check_finite = _checks.boolean(caller, "check_finite", check_finite)
    argnums = _frontend.check_argnums(caller, argnums)
    if baseline is None:
        raise _checks.type_fail(
            caller, "baseline", "a scalar, an array or pytree like the input, or a callable x -> baseline",
            baseline, "conductance runs along the straight line from the baseline input to x",
        )
    baseline_fn, baseline_arr = _frontend.check_baseline(caller, baseline, True, "straight")
    multi = isinstance(argnums, tuple)
    alphas_np, weights_np = rule(steps)

    def run(dyn, baseline_in, targets_in, *, treedef, static):
        scopes: list = []
        params, args, kwargs = _static.merge(dyn, treedef, static, scopes)
        args = list(args)
        if (max(argnums) if multi else argnums) >= len(args):
            raise TypeError(
                f"{caller}: argnums={argnums} names input {max(argnums) if multi else argnums} of "
                f"(x, *args), but the explainer was called with {len(args)} input(s) after params"
            )
        x_in = tuple(args[i] for i in argnums) if multi else args[argnums]
        for path, leaf in jax.tree_util.tree_flatten_with_path(x_in)[0]:
            dtype = jnp.result_type(leaf)
            if not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(
                    f"{caller}: the input the path runs through (argnums={argnums}"
                    f"{jax.tree_util.keystr(path)}) must be floating point, got dtype {dtype}; "
                    "conductance interpolates the input, so token ids cannot be the path: "
                    "split the model after the embedding and pass embeddings as x"
                )
        dtypes = jax.tree.map(jnp.result_type, x_in)
        x = jax.tree.map(lambda a: jnp.asarray(a).astype(_frontend.working_dtype(jnp.result_type(a))), x_in)
        work = jnp.result_type(*jax.tree.leaves(x))
        b_raw = baseline_fn.value(x_in) if baseline_fn is not None else baseline_in
        b = _frontend.prepare_baseline(caller, b_raw, x)
        velocity = jax.tree.map(jnp.subtract, x, b)

        def place(z):
            new = list(args)
            if multi:
                for i, zi, d in zip(argnums, z, dtypes):
                    new[i] = jax.tree.map(lambda a, dt: a.astype(dt), zi, d)
            else:
                new[argnums] = jax.tree.map(lambda a, dt: a.astype(dt), z, dtypes)
            return new

        def layer(z):
            new = place(z)
            with _static.entered(scopes):
                return bottom(params, *new, **kwargs)

        def model(z, y):
            new = place(z)
            with _static.entered(scopes):
                out = top(params, new[0], y, *new[1:], **kwargs)
                return jnp.asarray(out if f is None else f(out))

        y_probe = jax.eval_shape(layer, x)
        select, out_shape, restore = _frontend.select_outputs(caller, jax.eval_shape(model, x, y_probe), targets_kind, targets_in)

        def F(z, y):
            return select(model(z, y)).astype(work)

        def at_point(z):
            y, dy = jax.jvp(layer, (z,), (velocity,))
            D = _integrand.derivative(lambda yy: F(z, yy), out_shape)(y)
            return jax.tree.map(lambda d, t: (d * t.astype(work)).astype(work), D, dy)

        def block(alphas, weights, constrain):
            points = jax.vmap(lambda a: jax.tree.map(lambda bl, v: bl + a.astype(bl.dtype) * v, b, velocity))(alphas)
            return _integrand.weighted_sum(weights, jax.vmap(at_point)(constrain(points)))

        probe = jax.eval_shape(at_point, x)
        zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), probe)
        it = _integrand.Integrand(block, zero, lambda total: total)
        alphas, weights = jnp.asarray(alphas_np, work), jnp.asarray(weights_np, work)
        total = _engine.fixed(it, alphas, weights, chunk_size=chunk_size, mesh=mesh)
        delta = None
        if return_delta:
            n_out = len(out_shape)
            summed = sum(jnp.sum(t, axis=tuple(range(n_out, t.ndim))) for t in jax.tree.leaves(total))
            full = lambda z: F(z, layer(z))  # noqa: E731
            delta = restore(summed - (full(x) - full(b)))
        attributions = restore(jax.tree.map(lambda t, s: t.astype(s.dtype), total, y_probe))
        return LayerAttribution(attributions, token_scores(attributions), delta)

    compiled = jax.jit(run, static_argnames=("treedef", "static"))

    def explain(params, x, *args, **kwargs) -> LayerAttribution:
        dyn, treedef, static = _static.partition((params, (x, *args), kwargs))
        res = compiled(dyn, baseline_arr, targets_arg, treedef=treedef, static=static)
        if check_finite is not False and not any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(res)):
            if not all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(res.attributions)):
                raise FloatingPointError(
                    f"{caller}: the conductances at {name} are not finite (NaN or inf); check the model's "
                    "output at the input and the baseline, and its gradients between them; "
                    "check_finite=False skips this check"
                )
        return res

    return explain

