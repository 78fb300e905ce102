"""``jig.diagnose`` (module ``jig.diagnostics``): why do these attributions look wrong?

Re-runs an explainer's path for one call and reports what a user checks when
attributions look wrong: the completeness error, non-finite values (in the input, the
baseline, ``F(x)``, ``F(start)`` or the gradients), the share of path points where the
gradient is exactly zero (a flat or non-differentiable model: ``round``, ``argmax``,
saturated ReLUs), and saturation (the share of the path on which the output has
already reached its final value, so the gradients there say nothing).

Example:
  >>> import jax.numpy as jnp, jig
  >>> explain = jig.ig(lambda x: jnp.sum(jnp.round(x)), 0.0, 16)   # no gradient anywhere
  >>> d = jig.diagnose(explain, jnp.array([1.2, 2.7]))
  >>> d.zero_gradient_fraction, round(float(d.relative_delta), 3)
  (1.0, -1.0)
  >>> print(d.findings[0])   # doctest: +ELLIPSIS
  The gradient is exactly zero at 100% of the path points...
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks, _frontend
from jig import _ig

__all__ = ["Diagnosis", "diagnose"]


class Diagnosis(NamedTuple):
    """What :func:`diagnose` found (``str(d)`` prints it as a table).

    Attributes:
      delta: ``Σ A - (F(x) - F(start))`` (per output with ``targets``).
      relative_delta: ``delta / |F(x) - F(start)|``.
      f_x, f_start: the explained output at the input and at the path's start.
      nonfinite: the names of what is NaN or inf (empty when all is finite).
      zero_gradient_fraction: the share of path points whose gradient is exactly 0.
      saturated_fraction: the share of the path (by quadrature weight) where
        ``|F(γ(α)) - F(x)| <= 1%`` of ``|F(x) - F(start)|``.
      alphas, outputs, gradient_norms: the path profile: the nodes, ``F`` and
        ``‖∇F‖`` at each (straight reference line for Guided IG).
      findings: plain sentences about what looks wrong, most serious first.
    """

    delta: Any
    relative_delta: Any
    f_x: Any
    f_start: Any
    nonfinite: tuple
    zero_gradient_fraction: float
    saturated_fraction: float
    alphas: np.ndarray
    outputs: np.ndarray
    gradient_norms: np.ndarray
    findings: tuple

    def __str__(self) -> str:
        rows = [
            ("completeness error (delta)", np.array2string(np.asarray(self.delta), precision=4)),
            ("relative to |F(x) - F(start)|", np.array2string(np.asarray(self.relative_delta), precision=4)),
            ("F(x)", np.array2string(np.asarray(self.f_x), precision=4)),
            ("F(start)", np.array2string(np.asarray(self.f_start), precision=4)),
            ("non-finite", ", ".join(self.nonfinite) or "none"),
            ("path points with zero gradient", f"{self.zero_gradient_fraction:.0%}"),
            ("path saturated (output within 1% of F(x))", f"{self.saturated_fraction:.0%}"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [""] + [f"- {f}" for f in self.findings] if self.findings else ["", "- nothing looks wrong"]
        return "\n".join(lines)


@functools.partial(jax.jit, static_argnames=("call",))
def _profile(dyn, baseline_in, targets_in, params, *, call):
    options, method = call.options, call.method
    config, path = method.config, method.path
    scopes: list = []
    args, kwargs = _frontend.call_arguments(call, dyn, scopes)
    P, plain = _frontend.prepare(options, args, kwargs, scopes, baseline_in, targets_in, path)
    res = method.run(config, path, P, params, plain)
    f_x = P.F(P.x)
    starts = path.starts(params, P.x, P.baseline)
    f_start = jnp.mean(jax.vmap(P.F)(starts), axis=0)
    n_out = len(P.out_shape)
    delta = sum(jnp.sum(t, axis=tuple(range(n_out, t.ndim))) for t in jax.tree.leaves(res.total)) - (f_x - f_start)
    if config.rule is not None:
        alphas, weights = config.rule(config.steps)
    else:  # adaptive: profile on its first levels' trapezoid nodes
        m = 4 * config.adaptive.steps + 1
        alphas, weights = np.linspace(0.0, 1.0, m), np.full(m, 1.0 / m)
    alphas = jnp.asarray(alphas, P.work)
    weights = jnp.asarray(weights, P.work)
    probe = path if path.guide is None else path._replace(guide=None)  # Guided IG: the straight reference
    nodes, node_w = probe.nodes(params, P.x, P.baseline, alphas, weights)
    points, _ = jax.vmap(lambda n: probe.point(params, n, P.x, P.baseline))(nodes)
    outputs = jax.vmap(P.F)(points)
    kernel = jax.grad(P.F) if n_out == 0 else jax.jacrev(P.F)
    grads = jax.vmap(kernel)(points)
    norms = jnp.sqrt(sum(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in jax.tree.leaves(grads)))
    flags = jnp.stack([
        _frontend.finite(P.x),
        _frontend.finite(P.baseline) if P.baseline is not None else jnp.bool_(True),
        _frontend.finite(f_x), _frontend.finite(f_start), _frontend.finite(res.total),
    ])
    return delta, f_x, f_start, flags, alphas, node_w, outputs, norms


def diagnose(explain: _frontend.Explainer, *args: Any, **kwargs: Any) -> Diagnosis:
    """Diagnose one call of a :func:`jig.ig` explainer: ``diagnose(explain, x, *args)``.

    Args:
      explain: an explainer made by :func:`jig.ig` (any path, rule, ``tol``, targets).
      *args, **kwargs: the arguments the explainer would be called with.

    Returns:
      A :class:`Diagnosis`; ``print(d)`` shows the table and the findings.
    """
    if not isinstance(explain, _frontend.Explainer) or explain.method.run is not _ig.run:
        raise _checks.type_fail("jig.diagnose", "explain", "an explainer made by jig.ig(...)", explain)
    call, dyn = explain.split_call(args, kwargs)
    out = _profile(dyn, explain.baseline, explain._targets_arg, explain.method.path.params, call=call)
    delta, f_x, f_start, flags, alphas, weights, outputs, norms = (np.asarray(o) for o in out)
    gap = f_x - f_start
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(gap != 0, delta / np.abs(gap), np.where(delta == 0, 0.0, np.inf))
        close = np.abs(outputs - f_x) <= 0.01 * np.abs(gap)
    close = close.reshape(close.shape[0], -1).all(axis=1)
    weights = weights / weights.sum()
    saturated = float(np.sum(weights * close)) if np.all(np.isfinite(outputs)) else float("nan")
    zero = float(np.mean(norms == 0))
    bad = tuple(w for w, ok in zip(_frontend._WHAT, flags) if not ok)
    findings = []
    if bad:
        findings.append(f"Non-finite values in {', '.join(bad)}: the attributions are meaningless.")
    if zero > 0:
        findings.append(
            f"The gradient is exactly zero at {zero:.0%} of the path points: the model is flat or not "
            "differentiable there (round, argmax, comparisons, dead ReLUs), so IG cannot see it; "
            "explain a differentiable score (e.g. logits instead of a class decision)."
        )
    if np.all(np.isfinite(relative)) and np.max(np.abs(relative)) > 0.05:
        findings.append(
            f"Completeness is off by {np.max(np.abs(relative)):.1%} of F(x) - F(start): use more steps, "
            "rule='gauss_legendre', or tol= (adaptive steps)."
        )
    if np.all(np.abs(gap) < 1e-6 * (1 + np.abs(f_x))):
        findings.append("F(x) equals F(start): there is nothing to attribute; choose another baseline.")
    if saturated > 0.5:
        findings.append(
            f"The output is within 1% of F(x) on {saturated:.0%} of the path (saturation): the "
            "attributions come from a short stretch near the baseline; consider more steps there or "
            "another baseline/path."
        )
    return Diagnosis(delta, relative, f_x, f_start, bad, zero, saturated, alphas, outputs, norms, tuple(findings))
