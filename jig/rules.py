"""Quadrature rules on [0, 1]: ``steps -> (alphas, weights)``.

A rule turns the path integral ``∫_0^1 g(α) dα`` into ``Σ_k w_k g(α_k)``. Every
rule here returns float64 NumPy arrays (computed once, outside any trace) whose
weights sum to 1, so a constant integrand is always integrated exactly.

====================  ==========================  =========================
rule                  nodes                       exact for polynomials of
====================  ==========================  =========================
``riemann_left``      k/m, k = 0..m-1             degree 0
``riemann_right``     k/m, k = 1..m               degree 0
``riemann_middle``    (k + 1/2)/m, k = 0..m-1     degree 1
``riemann_trapezoid`` k/(m-1), ends weighted 1/2  degree 1
``gauss_legendre``    Legendre nodes on [0, 1]    degree 2m - 1
====================  ==========================  =========================

Example:
  >>> import jig
  >>> alphas, weights = jig.rules.riemann_middle(4)
  >>> alphas.tolist(), weights.tolist()
  ([0.125, 0.375, 0.625, 0.875], [0.25, 0.25, 0.25, 0.25])
"""

from __future__ import annotations

import operator
from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "Rule",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gauss_legendre",
    "RULES",
    "get",
    "nodes",
]


class Rule(NamedTuple):
    """A quadrature rule on [0, 1].

    Attributes:
      name: the rule's name, as accepted by ``jig.ig(rule=...)``.
      fn: ``steps -> (alphas, weights)``, two 1-D arrays of length ``steps``
        (alphas in [0, 1], weights summing to 1).
      degree: ``steps -> d``, the highest polynomial degree the rule integrates
        exactly with that many nodes (documentation and tests rely on it).
      min_steps: the smallest number of nodes the rule accepts.

    Calling a rule, ``rule(steps)``, returns ``(alphas, weights)`` after
    checking ``steps``. Build your own with ``Rule("mine", fn, degree)``.
    """

    name: str
    fn: Callable[[int], tuple[np.ndarray, np.ndarray]]
    degree: Callable[[int], int] = lambda m: 0
    min_steps: int = 1

    def __call__(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        return nodes(self, steps)


def check_steps(steps, min_steps: int = 1, rule_name: str | None = None) -> int:
    """Return ``steps`` as an ``int`` or raise a clear error naming it."""
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
        raise TypeError(
            f"steps must be a Python int >= {min_steps} (the number of path points), "
            f"got {steps!r} of type {type(steps).__name__}"
        )
    steps = operator.index(steps)
    if steps < min_steps:
        who = f" for rule {rule_name!r}" if rule_name else ""
        raise ValueError(f"steps must be >= {min_steps}{who}, got {steps}")
    return steps


def nodes(rule: Rule, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, weights)`` of ``rule`` with ``steps`` nodes, checked."""
    steps = check_steps(steps, rule.min_steps, rule.name)
    alphas, weights = rule.fn(steps)
    alphas = np.asarray(alphas, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if alphas.shape != (steps,) or weights.shape != (steps,):
        raise ValueError(
            f"rule {rule.name!r} returned alphas of shape {alphas.shape} and weights of "
            f"shape {weights.shape}; expected both of shape ({steps},)"
        )
    if not (np.all(np.isfinite(alphas)) and np.all(np.isfinite(weights))):
        raise ValueError(f"rule {rule.name!r} returned non-finite alphas or weights")
    if np.any(alphas < 0.0) or np.any(alphas > 1.0):
        raise ValueError(f"rule {rule.name!r} returned alphas outside [0, 1]")
    return alphas, weights


def _left(m):
    return np.arange(m) / m, np.full(m, 1.0 / m)


def _right(m):
    return np.arange(1, m + 1) / m, np.full(m, 1.0 / m)


def _middle(m):
    return (np.arange(m) + 0.5) / m, np.full(m, 1.0 / m)


def _trapezoid(m):
    w = np.full(m, 1.0 / (m - 1))
    w[0] = w[-1] = 0.5 / (m - 1)
    return np.arange(m) / (m - 1), w


def _gauss_legendre(m):
    # NumPy's leggauss solves an m x m companion eigenproblem: O(m^2) memory and
    # O(m^3) time (~260 MB and seconds at m = 4096), so large m use Newton's method.
    t, w = np.polynomial.legendre.leggauss(m) if m <= 100 else _legendre_newton(m)
    return (t + 1.0) / 2.0, w / 2.0


def _legendre_newton(m):
    """Gauss-Legendre nodes and weights on [-1, 1] by Newton on P_m: O(m) memory."""
    t = -np.cos(np.pi * (np.arange(1, m + 1) - 0.25) / (m + 0.5))  # ascending guesses
    for _ in range(50):
        p0, p1 = np.ones_like(t), t.copy()
        for j in range(2, m + 1):  # three-term recurrence for P_m and P_{m-1}
            p0, p1 = p1, ((2 * j - 1) * t * p1 - (j - 1) * p0) / j
        dp = m * (t * p1 - p0) / (t * t - 1.0)
        step = p1 / dp
        t = t - step
        if np.max(np.abs(step)) < 1e-15:
            break
    return t, 2.0 / ((1.0 - t * t) * dp * dp)


riemann_left = Rule("riemann_left", _left, lambda m: 0)
riemann_right = Rule("riemann_right", _right, lambda m: 0)
riemann_middle = Rule("riemann_middle", _middle, lambda m: 1)
riemann_trapezoid = Rule("riemann_trapezoid", _trapezoid, lambda m: 1, min_steps=2)
gauss_legendre = Rule("gauss_legendre", _gauss_legendre, lambda m: 2 * m - 1)

RULES: dict[str, Rule] = {
    r.name: r
    for r in (riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gauss_legendre)
}


def get(rule: str | Rule) -> Rule:
    """Resolve ``rule`` (a name or a :class:`Rule`) or raise naming the valid ones."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        try:
            return RULES[rule]
        except KeyError:
            pass
        raise ValueError(
            f"rule must be one of {sorted(RULES)} or a jig.rules.Rule, got {rule!r}"
        )
    raise TypeError(
        f"rule must be one of {sorted(RULES)} or a jig.rules.Rule, "
        f"got {rule!r} of type {type(rule).__name__}"
    )
