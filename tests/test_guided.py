"""jig.guided.walk: the one-sort-per-step walk against a plain NumPy transcription of the
paper's algorithm (round by round, a full sort each round), ties included."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig
from jig import guided


def reference_walk(grad, x, b, weights, fraction, max_dist):
    """Kapishnikov et al.'s Guided IG written plainly in NumPy float64: every round
    re-ranks the scores with a full sort, as the paper (and `saliency`) do.

    The steps' targets are the weights' cumulative sums formed as the walk forms them
    (``jnp.cumsum``): a target 1 ulp away can flip a knife-edge decision (a round whose
    selection meets the target exactly, common when max_dist is a multiple of 1/m)."""
    x, b = np.asarray(x, np.float64), np.asarray(b, np.float64)
    n = x.size
    cur, attr = b.copy(), np.zeros(n)
    diff = x - b
    l1_total = np.abs(diff).sum()
    with jax.enable_x64(True):
        w64 = jnp.asarray(weights, jnp.float64)
        ends = np.asarray(jnp.cumsum(w64) / jnp.sum(w64))
    for k, a in enumerate(ends):
        a = 1.0 if k == len(ends) - 1 else a
        g = np.asarray(grad(cur), np.float64)
        score = np.abs(g)
        a_min, a_max = max(a - max_dist, 0.0), min(a + max_dist, 1.0)
        x_min, x_max = b + a_min * diff, b + a_max * diff
        target = l1_total * (1 - a)
        while True:
            old = cur.copy()
            with np.errstate(divide="ignore", invalid="ignore"):
                progress = np.where(diff != 0, (cur - b) / diff, a_max)
            lag = progress < a_min
            cur[lag] = x_min[lag]
            l1 = np.abs(x - cur).sum()
            if l1 - target <= 1e-9 * l1_total:
                attr += (cur - old) * g
                break
            score[cur == x_max] = np.inf
            threshold = np.sort(score)[math.floor(fraction * (n - 1))]
            chosen = (score <= threshold) & (score != np.inf)
            l1_chosen = (np.abs(cur - x_max) * chosen).sum()
            gamma = (l1 - target) / l1_chosen if l1_chosen > 0 else np.inf
            if gamma > 1:
                cur[chosen] = x_max[chosen]
            else:
                cur[chosen] = cur[chosen] + gamma * (x_max[chosen] - cur[chosen])
            attr += (cur - old) * g
            if gamma <= 1 or not chosen.any():
                break
    attr += (x - cur) * g  # the last step lands exactly on x
    return attr


def _problem(seed, n, ties):
    """F(x) = sum(tanh(A x + c)) + s · G(x) with a known gradient; with ``ties`` the
    gradient is u G'(u·x) for a vector u with repeated |u_i|, so |∇F| has exact ties
    along the whole path, and some features have x_i = b_i."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    b = rng.normal(size=n) * 0.3
    if ties:
        u = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], size=n)
        b[: n // 5] = x[: n // 5]

        def grad_np(z):
            return u * np.cos(u @ z)

        def grad_jax(z):
            return u * jnp.cos(u @ z)

    else:
        A = rng.normal(size=(3, n)) / np.sqrt(n)
        c = rng.normal(size=3)

        def grad_np(z):
            return A.T @ (1 - np.tanh(A @ z + c) ** 2)

        def grad_jax(z):
            return A.T @ (1 - jnp.tanh(A @ z + c) ** 2)

    return x, b, grad_np, grad_jax


CASES = [  # (seed, n, ties, steps, fraction, max_dist); max_dist no multiple of 1/steps
    (1, 50, False, 32, 0.25, 0.02),
    (2, 200, False, 20, 0.1, 0.0731),
    (3, 64, True, 24, 0.25, 0.02),
    (4, 101, True, 12, 0.3, 0.37),
    (6, 40, True, 8, 0.05, 0.0),
]


@pytest.mark.parametrize("seed,n,ties,steps,fraction,max_dist", CASES)
def test_walk_equals_the_round_by_round_reference(seed, n, ties, steps, fraction, max_dist):
    x, b, grad_np, grad_jax = _problem(seed, n, ties)
    weights = np.full(steps, 1.0 / steps)  # riemann_right: targets k/m
    want = reference_walk(grad_np, x, b, weights, fraction, max_dist)
    with jax.enable_x64(True):
        got = guided.walk(grad_jax, jnp.asarray(x), jnp.asarray(b), jnp.asarray(weights),
                          fraction=fraction, max_dist=max_dist)
        got = np.asarray(got)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
    # the path is not the straight line: the attributions differ from IG's left sum
    if 0 < max_dist < 1 and not ties:
        assert np.abs(want - _left_riemann(grad_np, x, b, steps)).max() > 1e-6


def _left_riemann(grad, x, b, m):
    return (x - b) * np.mean([grad(b + k / m * (x - b)) for k in range(m)], axis=0)


def test_ties_are_moved_together():
    # |∇F| takes 3 values in blocks; with fraction 0.25 the first round's threshold is
    # the smallest value, and every feature tied with it moves in that round
    u = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0])
    x, b = np.linspace(0.5, 1.2, 8), np.zeros(8)
    grad_np = lambda z: u * (1 + 0.1 * np.sum(z))
    grad_jax = lambda z: u * (1 + 0.1 * jnp.sum(z))
    w = np.full(5, 0.2)
    want = reference_walk(grad_np, x, b, w, 0.25, 1.0)
    with jax.enable_x64(True):
        got = np.asarray(guided.walk(grad_jax, jnp.asarray(x), jnp.asarray(b), jnp.asarray(w),
                                     fraction=0.25, max_dist=1.0))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the five smallest-gradient features (tied) all reach x in the first steps, so
    # they are credited at F's early slope, the others at later (steeper) slopes
    ratio = got / (u * x)
    assert np.all(ratio[:5] < ratio[5:].min())


def test_float32_walk_agrees_with_the_reference():
    x, b, grad_np, grad_jax = _problem(7, 300, False)
    w = np.full(64, 1 / 64)
    want = reference_walk(grad_np, x, b, w, 0.25, 0.02)
    got = np.asarray(guided.walk(grad_jax, jnp.asarray(x, jnp.float32), jnp.asarray(b, jnp.float32),
                                 jnp.asarray(w, jnp.float32), fraction=0.25, max_dist=0.02))
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_linear_model_gets_straight_line_ig_exactly():
    rng = np.random.default_rng(8)
    wvec = jnp.asarray(rng.normal(size=500), jnp.float32)
    x = jnp.asarray(rng.normal(size=500), jnp.float32)
    b = jnp.zeros(500, jnp.float32)
    A = guided.walk(lambda v: wvec, x, b, jnp.full(10, 0.1), fraction=0.25, max_dist=0.02)
    np.testing.assert_allclose(A, wvec * x, rtol=1e-6, atol=1e-7)


def test_unroll_does_not_change_the_result():
    x, b, _, grad_jax = _problem(9, 60, True)
    args = (grad_jax, jnp.asarray(x, jnp.float32), jnp.asarray(b, jnp.float32), jnp.full(4, 1 / 4))
    a1 = guided.walk(*args, fraction=0.25, max_dist=0.02, unroll=1)
    a2 = guided.walk(*args, fraction=0.25, max_dist=0.02, unroll=True)
    np.testing.assert_array_equal(a1, a2)
    assert np.abs(np.asarray(a1)).max() > 0.1


def test_jit_vmap_and_grad_compose():
    rng = np.random.default_rng(10)
    W = jnp.asarray(rng.normal(size=(4, 20)) / 4, jnp.float32)
    F = lambda z: jnp.sum(jnp.tanh(W @ z) ** 2)
    grad = jax.grad(F)
    xs = jnp.asarray(rng.normal(size=(3, 20)), jnp.float32)
    b = jnp.zeros(20, jnp.float32)
    w = jnp.full(8, 1 / 8)

    def one(x):
        return guided.walk(grad, x, b, w, fraction=0.25, max_dist=0.1)

    batched = jax.jit(jax.vmap(one))(xs)
    single = jax.jit(one)
    for i in range(3):
        np.testing.assert_allclose(batched[i], single(xs[i]), rtol=1e-5, atol=1e-6)
        # completeness up to the left sum's discretisation error
        gap = F(xs[i]) - F(b)
        assert abs(float(jnp.sum(batched[i]) - gap)) < 0.3 * abs(float(gap)) + 1e-3
    # reverse mode through the walk (the selection is piecewise constant)
    loss = jax.jit(lambda x: jnp.sum(one(x) ** 2))
    dx = jax.jit(jax.grad(lambda x: jnp.sum(one(x) ** 2)))(xs[0])
    assert dx.shape == (20,) and bool(jnp.all(jnp.isfinite(dx)))
    eps = 1e-3
    e = jnp.zeros(20).at[3].set(eps)
    fd = (loss(xs[0] + e) - loss(xs[0] - e)) / (2 * eps)
    assert abs(float(fd - dx[3])) < 0.05 * (abs(float(fd)) + 1e-2)


def test_through_jig_ig_matches_the_reference():
    x, b, grad_np, _ = _problem(11, 40, False)
    rng = np.random.default_rng(11)
    A = rng.normal(size=(3, 40)) / np.sqrt(40)
    c = rng.normal(size=3)
    F = lambda z: jnp.sum(jnp.tanh(jnp.asarray(A, jnp.float32) @ z + jnp.asarray(c, jnp.float32)))
    got = jig.ig(F, jnp.asarray(b, jnp.float32), 32, path=jig.paths.guided(), rule="riemann_right")(
        jnp.asarray(x, jnp.float32))
    want = reference_walk(lambda z: A.T @ (1 - np.tanh(A @ z + c) ** 2), x, b, np.full(32, 1 / 32),
                          0.25, 0.02)
    assert np.abs(np.asarray(got) - want).max() <= 1e-4 * np.abs(want).max()
