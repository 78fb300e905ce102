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

import math
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
    # NumPy's leggauss solves an m x m companion eigenproblem (O(m^2) memory, O(m^3)
    # time); above 100 nodes the asymptotic method below takes O(m) time and memory.
    if m <= 100:
        t, w = np.polynomial.legendre.leggauss(m)
        return (t + 1.0) / 2.0, w / 2.0
    theta, w = _legendre_theta(m)
    # nodes x_k = cos θ_k >= 0 (θ ascending); on [0, 1] the left half is
    # (1 - cos θ)/2 = sin²(θ/2), with full relative precision next to 0
    s = np.sin(theta / 2.0) ** 2
    mid = m % 2  # an odd m has the node θ = π/2 (alpha 1/2) once
    alphas = np.concatenate([s, 1.0 - s[len(s) - 1 - mid::-1]])
    weights = np.concatenate([w, w[len(w) - 1 - mid::-1]]) / 2.0
    return alphas, weights


# Gauss-Legendre nodes in O(m). With x = cos θ, the nodes are the zeros of P_m(cos θ)
# and the weights (on [-1, 1]) are 2 / (dP_m/dθ)² there. Newton's method in θ finds
# them from Frenzen and Wong's uniform asymptotic guess
#     θ_k ≈ ψ + (ψ cot ψ - 1) / (8 ψ ρ²),  ψ = j_{0,k} / ρ,  ρ = m + 1/2
# (j_{0,k}: the zeros of the Bessel function J_0), evaluating P_m and dP_m/dθ by
# - Stieltjes' expansion (Szegő, Orthogonal Polynomials, (8.21.11)) in the interior:
#     P_m(cos θ) = C_m Σ_j h_j cos((m + j + 1/2)θ - (j + 1/2)π/2) / (2 sin θ)^(j+1/2),
#     h_0 = 1, h_{j+1} = h_j (j + 1/2)² / ((j + 1)(m + j + 3/2)),
#     C_m = (2/√π) Γ(m+1)/Γ(m+3/2),
#   whose error is below twice the first omitted term: each node sums the terms it
#   needs for 1e-17, a few in the bulk, up to ~50 next to the ends (the series stops
#   converging fast enough within ~6 nodes of an end);
# - next to the ends (the _ENDS nodes nearest each), the exact cosine series
#     P_m(cos θ) = Σ_{i=0}^{m} g_i g_{m-i} cos((m - 2i)θ),  g_i = Γ(i+1/2)/(√π Γ(i+1)),
#   whose terms are all positive-weighted (no cancellation beyond that of P itself);
#   O(m) per node, evaluated for all end nodes at once as one complex matrix product.
# Only the half θ <= π/2 is computed; the other is its mirror image.

_ENDS = 8
_J0 = (2.4048255576957724, 5.520078110286311, 8.653727912911013, 11.791534439014281)
# Bernoulli numbers B_2, B_4, ..., B_16, for the expansion of Γ(z+1/2)/Γ(z+1)
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)
# ln(√z Γ(z+1/2)/Γ(z+1)) = Σ_{k odd} (2^-k - 2) B_{k+1} / (k (k+1) z^k)
_RATIO_SERIES = tuple(
    (2.0**-k - 2.0) * b / (k * (k + 1)) for k, b in zip(range(1, 16, 2), _BERNOULLI)
)
_RATIO_SMALL = 32
_RATIO_TABLE = np.sqrt(np.pi) * np.cumprod(
    np.concatenate([[1.0], (np.arange(1, _RATIO_SMALL) - 0.5) / np.arange(1, _RATIO_SMALL)])
)


def _half_gamma_ratio(z: np.ndarray) -> np.ndarray:
    """``Γ(z + 1/2) / Γ(z + 1)`` for integers ``z >= 0``, to a few ulps (no overflow)."""
    z = np.asarray(z, dtype=np.int64)
    out = np.empty(z.shape)
    small = z < _RATIO_SMALL
    out[small] = _RATIO_TABLE[z[small]]
    big = z[~small].astype(np.float64)
    inv = 1.0 / big
    inv2 = inv * inv
    s = np.zeros_like(big)
    for c in reversed(_RATIO_SERIES):
        s = s * inv2 + c
    out[~small] = np.exp(s * inv) / np.sqrt(big)
    return out


def _bessel_j0_zeros(k: np.ndarray) -> np.ndarray:
    """The zeros ``j_{0,k}`` of ``J_0``: McMahon's expansion, tabulated for ``k <= 4``."""
    b = (k - 0.25) * np.pi
    u = 1.0 / (8.0 * b)
    u2 = u * u
    z = b + u * (1.0 + u2 * (-124.0 / 3.0 + u2 * (120928.0 / 15.0 - u2 * 401743168.0 / 105.0)))
    few = min(len(_J0), k.size)
    z[:few] = _J0[:few]
    return z


def _cosine_series(m: int, g: np.ndarray):
    """``theta -> (P_m(cos θ), dP_m/dθ)`` for a few ``θ``, by the cosine series."""
    half = (m + 1) // 2
    i = np.arange(half)
    a = 2.0 * g[i] * g[m - i]  # the terms i and m - i together
    # frequency m - 2i with i = q B + r: e^{i(m-2i)θ} = e^{i(m - 2qB)θ} e^{-2irθ}
    B = max(1, math.isqrt(half))
    Q = -(-half // B)
    coef = np.zeros((2, Q * B))
    coef[0, :half] = a
    coef[1, :half] = a * (m - 2.0 * i)
    coef = coef.reshape(2 * Q, B)
    q = np.arange(Q) * B
    r = np.arange(B)
    const = g[m // 2] ** 2 if m % 2 == 0 else 0.0

    def evaluate(theta):
        inner = coef @ np.exp(-2j * np.outer(r, theta))  # (2Q, nodes)
        outer = np.exp(1j * np.outer(m - 2.0 * q, theta))  # (Q, nodes)
        p = np.sum(inner[:Q] * outer, axis=0)
        dp = np.sum(inner[Q:] * outer, axis=0)
        return p.real + const, -dp.imag

    return evaluate


def _stieltjes(m: int, theta: np.ndarray, tol: float = 1e-17):
    """``(f, df/dθ)`` with ``P_m(cos θ) = C_m f(θ)`` for ascending ``θ`` in ``(0, π/2]``."""
    s2 = 2.0 * np.sin(theta)
    cot2 = 2.0 * np.cos(theta) / s2
    f = np.zeros_like(theta)
    df = np.zeros_like(theta)
    term = 1.0 / np.sqrt(s2)  # h_j / (2 sin θ)^(j + 1/2)
    bound = np.ones_like(theta)  # the same relative to the first term
    c = theta.size  # the nodes that still need terms: a prefix, as sin θ grows
    j = 0
    while c:
        th, t = theta[:c], term[:c]
        nu = m + j + 0.5
        angle = nu * th - (j + 0.5) * (np.pi / 2)
        ca, sa = np.cos(angle), np.sin(angle)
        f[:c] += t * ca
        df[:c] -= t * (nu * sa + (j + 0.5) * cot2[:c] * ca)
        ratio = (j + 0.5) ** 2 / ((j + 1) * (m + j + 1.5)) / s2[:c]
        term, bound = t * ratio, bound[:c] * ratio
        c = int(np.count_nonzero(bound >= tol))
        j += 1
    return f, df


def _newton(evaluate, theta, lam, fixed=None):
    """Newton's method on ``f(θ) = 0``; returns ``θ`` and ``df/dθ`` at the roots."""
    for _ in range(30):
        f, df = evaluate(theta)
        step = f / df
        if fixed is not None:
            step[fixed] = 0.0
        theta = theta - step
        if np.max(np.abs(step) / theta) < 1e-9:
            # converged quadratically: θ is exact to rounding. Move df to the new θ
            # with the ODE f'' = -cot θ f' - λ f: df(θ - s) = df + s (cot θ df + λ f).
            df = df + step * (df / np.tan(theta) + lam * f)
            return theta, df
    raise RuntimeError("Gauss-Legendre nodes: Newton's method did not converge")


def _legendre_theta(m: int) -> tuple[np.ndarray, np.ndarray]:
    """``θ_k`` ascending in ``(0, π/2]`` (nodes ``cos θ_k``) and their weights on [-1, 1]."""
    half = (m + 1) // 2
    rho = m + 0.5
    lam = m * (m + 1.0)
    psi = _bessel_j0_zeros(np.arange(1, half + 1, dtype=np.float64)) / rho
    theta = psi + (psi / np.tan(psi) - 1.0) / (8.0 * psi * rho * rho)
    if m % 2:
        theta[-1] = np.pi / 2
    e = min(_ENDS, half)
    g = _half_gamma_ratio(np.arange(m + 1)) / np.sqrt(np.pi)
    theta[:e], dp = _newton(_cosine_series(m, g), theta[:e], lam)
    w = np.empty(half)
    w[:e] = 2.0 / dp**2
    if e < half:
        fixed = half - e - 1 if m % 2 else None  # θ = π/2 is exact
        theta[e:], df = _newton(lambda t: _stieltjes(m, t), theta[e:], lam, fixed)
        c_m = (2.0 / np.sqrt(np.pi)) / (rho * _half_gamma_ratio(np.array([m]))[0])
        w[e:] = 2.0 / (c_m * df) ** 2
    return theta, w


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
