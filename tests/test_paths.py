"""jig.paths: blur, expected, custom and guided paths, checked against closed forms,
independent references, the straight line, and each other."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from _nets import init_mlp, mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jig

RULES = tuple(jig.rules.RULES)


# --------------------------------------------------------------------------- models


def init_cnn(seed=0, c_in=2, c_out=3, hw=8):
    rng = np.random.default_rng(seed)
    return {
        "k": (rng.normal(size=(3, 3, c_in, c_out)) / 3).astype(np.float32),
        "w": (rng.normal(size=(hw * hw * c_out,)) / hw).astype(np.float32),
    }


def cnn(x, p):
    """A scalar CNN on one HWC image: 3x3 conv, tanh, dense."""
    h = jax.lax.conv_general_dilated(
        x[None], p["k"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )[0]
    return jnp.dot(jnp.tanh(h).reshape(-1), p["w"])


CNN = init_cnn()
IMG = jnp.asarray(np.random.default_rng(1).uniform(size=(8, 8, 2)), jnp.float32)

MLP = init_mlp(2, sizes=(6, 12, 1))
X6 = jnp.asarray(np.random.default_rng(3).normal(size=(6,)), jnp.float32)


def tanh_mlp(x, p):
    return mlp(x, p, "tanh")


def scipy_blur(x, sigma, radius):
    x = np.asarray(x, np.float64)
    if sigma == 0:
        return x
    return scipy.ndimage.gaussian_filter(x, sigma, mode="reflect", radius=radius, axes=(0, 1))


# --------------------------------------------------------------------------- blur


def test_gaussian_blur_matches_scipy_and_is_smooth_in_sigma():
    img = np.random.default_rng(0).normal(size=(7, 5, 2)).astype(np.float32)
    blur18 = jax.jit(lambda x, s: jig.paths.gaussian_blur(x, s, radius=18))
    for sigma in (0.0, 0.01, 0.3, 1.0, 2.5, 6.0):  # 6.0: radius 18 > the image, reflected
        ours = blur18(jnp.asarray(img), sigma)
        np.testing.assert_allclose(ours, scipy_blur(img, sigma, 18), rtol=1e-5, atol=1e-6)
    # d blur / d sigma by jvp agrees with a central difference of scipy's blur
    _, tangent = jax.jit(lambda x: jax.jvp(
        lambda s: jig.paths.gaussian_blur(x, s, radius=6), (1.3,), (1.0,)
    ))(jnp.asarray(img))
    fd = (scipy_blur(img, 1.3 + 1e-5, 6) - scipy_blur(img, 1.3 - 1e-5, 6)) / 2e-5
    np.testing.assert_allclose(tangent, fd, rtol=1e-3, atol=1e-4)


def test_blur_path_is_complete_against_the_most_blurred_input():
    max_sigma = 2.0
    explain = jig.ig(cnn, None, 32, path=jig.paths.blur(max_sigma), return_delta=True)
    A, delta = explain(IMG, CNN)
    start = jnp.asarray(scipy_blur(IMG, max_sigma, 6), jnp.float32)
    gap = float(cnn(IMG, CNN) - cnn(start, CNN))
    assert abs(gap) > 0.05  # the blur changes the output, so the check has teeth
    np.testing.assert_allclose(float(jnp.sum(A)), gap, rtol=1e-3, atol=1e-4)
    assert abs(float(delta)) < 1e-3 * abs(gap)
    np.testing.assert_allclose(float(delta), float(jnp.sum(A)) - gap, atol=1e-4)


def test_blur_path_matches_a_finite_difference_riemann_reference():
    # Independent reference: scipy's blur, velocity by central differences in alpha,
    # a fine midpoint sum; jig uses its own blur, jvp velocities and Gauss-Legendre.
    max_sigma, radius, m, h = 3.0, 9, 400, 1e-4
    alphas = (np.arange(m) + 0.5) / m
    sig = lambda a: max(0.0, (1.0 - a) * max_sigma)
    pts = np.stack([scipy_blur(IMG, sig(a), radius) for a in alphas])
    vel = np.stack(
        [(scipy_blur(IMG, sig(a + h), radius) - scipy_blur(IMG, sig(a - h), radius)) / (2 * h) for a in alphas]
    )
    grads = jax.vmap(jax.grad(cnn), in_axes=(0, None))(jnp.asarray(pts, jnp.float32), CNN)
    reference = np.mean(np.asarray(grads, np.float64) * vel, axis=0)
    A = jig.ig(cnn, None, 64, path=jig.paths.blur(max_sigma))(IMG, CNN)
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(A, reference, atol=2e-3 * scale)


def test_blur_with_a_tiny_max_sigma_gives_zero_attributions_and_delta():
    def run(x, p):  # several explainers in one jit: one compilation
        A, delta = jig.ig(cnn, None, 8, path=jig.paths.blur(1e-3), return_delta=True)(x, p)
        sums = [jnp.sum(jnp.abs(jig.ig(cnn, None, 16, path=jig.paths.blur(s))(x, p))) for s in (1.0, 0.25)]
        return A, delta, sums

    A, delta, sums = jax.jit(run)(IMG, CNN)
    # documented degeneration: below 0.05 px the blur is the identity, the path a point
    assert float(jnp.max(jnp.abs(A))) == 0.0
    assert float(delta) == 0.0
    # and attributions shrink continuously as max_sigma -> 0
    assert float(sums[0]) > float(sums[1]) > 0


def test_blur_over_chw_axes_equals_blur_over_hwc():
    f_chw = lambda x, p: cnn(jnp.transpose(x, (1, 2, 0)), p)

    def run(x, p):
        A_hwc = jig.ig(cnn, None, 16, path=jig.paths.blur(1.5))(x, p)
        A_chw = jig.ig(f_chw, None, 16, path=jig.paths.blur(1.5, axes=(1, 2)))(jnp.transpose(x, (2, 0, 1)), p)
        return A_hwc, A_chw

    A_hwc, A_chw = jax.jit(run)(IMG, CNN)
    np.testing.assert_allclose(jnp.transpose(A_chw, (1, 2, 0)), A_hwc, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: jig.paths.blur(0.0), "max_sigma must be finite and > 0"),
        (lambda: jig.paths.blur(-1.0), "max_sigma must be finite and > 0"),
        (lambda: jig.paths.blur(float("inf")), "max_sigma must be finite"),
        (lambda: jig.paths.blur("big"), "max_sigma must be a positive Python float"),
        (lambda: jig.paths.blur(1.0, axes=()), "axes must be an int or a non-empty tuple"),
        (lambda: jig.paths.blur(1.0, axes=(0, 0)), "axes must not repeat"),
        (lambda: jig.paths.blur(1.0, truncate=0), "truncate must be a float > 0"),
        (lambda: jax.jit(lambda s: jig.paths.gaussian_blur(jnp.ones((3, 3)), s))(1.0), "sigma is traced, so pass"),
        (lambda: jig.paths.gaussian_blur(jnp.ones((3, 3)), -1.0), "sigma must be finite and >= 0"),
    ],
)
def test_blur_rejects_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_blur_rejects_an_input_without_the_spatial_axes_and_a_baseline():
    f = lambda x: jnp.sum(x**2)
    with pytest.raises(ValueError, match=r"shape \(5,\), which lacks the spatial axes \(0, 1\)"):
        jig.ig(f, None, 4, path=jig.paths.blur(1.0))(jnp.ones(5))
    with pytest.raises(ValueError, match=r"lacks the spatial axes \(1, 2\)"):
        jig.ig(f, None, 4, path=jig.paths.blur(1.0, axes=(1, 2)))(jnp.ones((4, 4)))
    with pytest.raises(ValueError, match="'blur' path defines its own start, so it takes baseline=None"):
        jig.ig(f, 0.0, 4, path=jig.paths.blur(1.0))(jnp.ones((4, 4)))
    with pytest.raises(ValueError, match="baseline=None needs a path"):
        jig.ig(f, None, 4)(jnp.ones((4, 4)))


# --------------------------------------------------------------------------- expected

STACK = jnp.asarray(np.random.default_rng(4).normal(size=(5, 6)), jnp.float32)
EXPECTED_EXACT = {rule: jig.ig(tanh_mlp, None, 6, rule=rule, path=jig.paths.expected(STACK), return_delta=True) for rule in ("gauss_legendre", "riemann_trapezoid")}


@settings(max_examples=5)
@given(x=hnp.arrays(np.float32, (6,), elements=st.floats(-2, 2, width=32)))
def test_expected_exact_is_the_mean_of_straight_line_igs(x):
    for rule, explain in EXPECTED_EXACT.items():
        A, delta = explain(x, MLP)
        straight = jax.vmap(lambda b, rule=rule: jig.ig(tanh_mlp, b, 6, rule=rule)(x, MLP))(STACK)
        np.testing.assert_allclose(A, jnp.mean(straight, 0), rtol=1e-4, atol=1e-5)
        gap = tanh_mlp(x, MLP) - jnp.mean(jax.vmap(tanh_mlp, (0, None))(STACK, MLP))
        np.testing.assert_allclose(float(delta), float(jnp.sum(A) - gap), atol=1e-5)


def test_expected_chunked_equals_unchunked():
    path = jig.paths.expected(STACK)

    def run(x, p):  # 30 nodes = 5 baselines * 6 steps: chunks of 7 leave a remainder
        return [jig.ig(tanh_mlp, None, 6, path=path, chunk_size=c)(x, p) for c in (None, 1, 7, 10)]

    A, *chunked = jax.jit(run)(X6, MLP)
    for Ac in chunked:
        np.testing.assert_allclose(Ac, A, rtol=1e-5, atol=1e-6)


def test_expected_monte_carlo_converges_and_is_reproducible():
    exact = jig.ig(tanh_mlp, None, 16, path=jig.paths.expected(STACK))(X6, MLP)

    def mc(seed, samples):
        path = jig.paths.expected(STACK, key=jax.random.key(seed), samples=samples)
        return jig.ig(tanh_mlp, None, 16, path=path)(X6, MLP)

    errors = {n: np.mean([float(jnp.max(jnp.abs(mc(s, n) - exact))) for s in (0, 1, 2)]) for n in (16, 4096)}
    assert errors[4096] < 0.25 * errors[16], errors
    assert errors[4096] < 0.05 * float(jnp.max(jnp.abs(exact)))
    np.testing.assert_array_equal(mc(7, 16), mc(7, 16))
    assert not np.allclose(mc(7, 16), mc(8, 16))
    # a legacy uint32 key works too, with the same draws as the typed key
    legacy = jig.paths.expected(STACK, key=jax.random.PRNGKey(7), samples=16)
    np.testing.assert_allclose(jig.ig(tanh_mlp, None, 16, path=legacy)(X6, MLP), mc(7, 16), rtol=1e-6)
    # the Monte Carlo nodes do not use the rule
    left = jig.ig(tanh_mlp, None, 16, rule="riemann_left", path=jig.paths.expected(STACK, key=jax.random.key(7), samples=16))
    np.testing.assert_array_equal(left(X6, MLP), mc(7, 16))


def test_expected_on_a_pytree_input_and_a_callable_stack():
    f = lambda x: jnp.sum(x["a"] ** 2) * jnp.sum(jnp.sin(x["b"]))
    x = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([[0.5, 1.5]])}
    stack = {"a": jnp.array([[0.0, 0.0], [1.0, 1.0]]), "b": jnp.array([[[0.0, 0.0]], [[1.0, -1.0]]])}
    A = jig.ig(f, None, 16, path=jig.paths.expected(stack))(x)
    ref = [jig.ig(f, jax.tree.map(lambda s, k=k: s[k], stack), 16)(x) for k in range(2)]
    chex.assert_trees_all_close(A, jax.tree.map(lambda a, b: (a + b) / 2, *ref), rtol=1e-5, atol=1e-6)
    # a callable x -> stack (noise baselines), evaluated inside the explainer
    noise = jig.baselines.uniform(jax.random.key(0), num=3)
    A2 = jig.ig(tanh_mlp, None, 8, path=jig.paths.expected(noise))(X6, MLP)
    ref2 = jnp.mean(jax.vmap(lambda b: jig.ig(tanh_mlp, b, 8)(X6, MLP))(noise(X6)), 0)
    np.testing.assert_allclose(A2, ref2, rtol=1e-4, atol=1e-5)


def test_expected_rejects_bad_stacks_and_arguments():
    f = lambda x: jnp.sum(x**2)
    with pytest.raises(ValueError, match=r"leaf 0 has shape \(3, 4\), whose trailing shape \(4,\) does not match .* \(5,\)"):
        jig.ig(f, None, 4, path=jig.paths.expected(jnp.zeros((3, 4))))(jnp.ones(5))
    with pytest.raises(ValueError, match="baselines stack has structure"):
        jig.ig(lambda x: jnp.sum(x["a"]), None, 4, path=jig.paths.expected(jnp.zeros((3, 5))))({"a": jnp.ones(5)})
    with pytest.raises(ValueError, match="'expected' path defines its own start"):
        jig.ig(f, 0.0, 4, path=jig.paths.expected(jnp.zeros((3, 5))))(jnp.ones(5))
    with pytest.raises(ValueError, match="a leading axis of K >= 1"):
        jig.paths.expected(jnp.zeros((0, 5)))
    with pytest.raises(ValueError, match="a leading axis of K >= 1"):
        jig.paths.expected(jnp.float32(1.0))
    with pytest.raises(ValueError, match="disagree on K"):
        jig.paths.expected({"a": jnp.zeros((2, 1)), "b": jnp.zeros((3, 1))})
    with pytest.raises(ValueError, match="pass both key and samples"):
        jig.paths.expected(jnp.zeros((3, 5)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="samples must be an int >= 1"):
        jig.paths.expected(jnp.zeros((3, 5)), key=jax.random.key(0), samples=0)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        jig.paths.expected(jnp.zeros((3, 5)), key=0, samples=4)


# --------------------------------------------------------------------------- custom


def quadratic_time(a, x, b):
    return jax.tree.map(lambda xl, bl: bl + a**2 * (xl - bl), x, b)


def smoothstep_time(a, x, b):
    s = a * a * (3 - 2 * a)
    return jax.tree.map(lambda xl, bl: bl + s * (xl - bl), x, b)


def test_custom_reparametrised_straight_line_gives_straight_line_ig():
    def run(x, b, p):
        paths = (None, jig.paths.custom(quadratic_time), jig.paths.custom(smoothstep_time))
        return [jig.ig(tanh_mlp, b, 64, path=path)(x, p) for path in paths]

    straight, *warped = jax.jit(run)(X6, jnp.full((6,), 0.3), MLP)
    for A in warped:
        np.testing.assert_allclose(A, straight, rtol=1e-4, atol=1e-5)


def bent(a, x, b):
    """A curved path: per-feature speeds differ and it bulges away from the line."""
    powers = jnp.linspace(1.0, 3.0, x.shape[0])
    return b + (x - b) * a**powers + jnp.sin(jnp.pi * a) * jnp.cos(jnp.arange(x.shape[0]))


def test_custom_nonlinear_path_is_complete_and_differs_from_the_line():
    b = jnp.zeros(6)

    def run(x, b, p):
        bent_ig = jig.ig(tanh_mlp, b, 64, path=jig.paths.custom(bent), return_delta=True)(x, p)
        return bent_ig, jig.ig(tanh_mlp, b, 64)(x, p)

    (A, delta), straight = jax.jit(run)(X6, b, MLP)
    gap = float(tanh_mlp(X6, MLP) - tanh_mlp(b, MLP))
    assert abs(float(delta)) < 1e-4 * max(1.0, abs(gap))
    np.testing.assert_allclose(float(jnp.sum(A)), gap, rtol=1e-4, atol=1e-5)
    assert float(jnp.max(jnp.abs(A - straight))) > 1e-2


def warped(a, x, b, theta):
    """A straight line bent by theta: b + a (x - b) + a (1 - a) theta."""
    return b + a * (x - b) + a * (1 - a) * theta


def test_custom_gradient_through_attributions_matches_finite_differences():
    b = jnp.zeros(6)
    theta0 = jnp.asarray(np.random.default_rng(5).normal(size=(6,)) * 0.5, jnp.float32)
    probe = jnp.linspace(-1.0, 1.0, 6)

    def objective(theta):
        A = jig.ig(tanh_mlp, b, 16, path=jig.paths.custom(warped, theta))(X6, MLP)
        return jnp.dot(probe, A)

    def closed(theta):  # the same path, closing over theta instead
        path = jig.paths.custom(lambda a, x, b: warped(a, x, b, theta))
        return jnp.dot(probe, jig.ig(tanh_mlp, b, 16, path=path)(X6, MLP))

    g = jax.grad(objective)(theta0)
    np.testing.assert_allclose(jax.grad(closed)(theta0), g, rtol=1e-4, atol=1e-6)
    assert float(jnp.max(jnp.abs(g))) > 1e-3
    eps = 1e-2
    for i in (0, 3, 5):
        e = jnp.zeros(6).at[i].set(eps)
        fd = (objective(theta0 + e) - objective(theta0 - e)) / (2 * eps)
        np.testing.assert_allclose(g[i], fd, rtol=2e-2, atol=2e-4)


def test_custom_checks_the_endpoints_and_the_output_shape():
    f = lambda x: jnp.sum(x**2)
    off_start = jig.paths.custom(lambda a, x, b: b + a * (x - b) + (1 - a) * 0.1)
    off_end = jig.paths.custom(lambda a, x, b: b + a * (x - b) * 0.9)
    with pytest.raises(Exception, match=r"gamma\(0, x, baseline\) must equal the baseline"):
        jax.block_until_ready(jig.ig(f, 0.0, 4, path=off_start)(jnp.ones(3)))
    with pytest.raises(Exception, match=r"gamma\(1, x, baseline\) must equal x"):
        jax.block_until_ready(jig.ig(f, 0.0, 4, path=off_end)(jnp.ones(3)))
    # check=False skips it; the delta then reports the gap to the true start
    unchecked = jig.paths.custom(lambda a, x, b: b + a * (x - b) + (1 - a) * 0.1, check=False)
    A, delta = jig.ig(f, 0.0, 8, path=unchecked, return_delta=True)(jnp.ones(3))
    assert abs(float(delta)) < 1e-5
    np.testing.assert_allclose(float(jnp.sum(A)), 3.0 - 3 * 0.01, rtol=1e-5)
    with pytest.raises(ValueError, match=r"returned leaf 0 of shape \(2,\); expected the input's shape \(3,\)"):
        jig.ig(f, 0.0, 4, path=jig.paths.custom(lambda a, x, b: a * x[:2]))(jnp.ones(3))
    with pytest.raises(TypeError, match="gamma must be a callable"):
        jig.paths.custom(3)


def test_custom_path_without_a_baseline():
    # gamma(alpha) = alpha * x: its own start (0); only the end is checked
    path = jig.paths.custom(lambda a, x, b: a * x, needs_baseline=False)
    A, straight = jax.jit(lambda x, p: (jig.ig(tanh_mlp, None, 32, path=path)(x, p), jig.ig(tanh_mlp, 0.0, 32)(x, p)))(X6, MLP)
    np.testing.assert_allclose(A, straight, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- guided


def test_guided_is_complete_up_to_discretisation():
    b = jnp.zeros(6)
    gap = float(tanh_mlp(X6, MLP) - tanh_mlp(b, MLP))
    deltas = []

    def run(x, b, p):
        return [jig.ig(tanh_mlp, b, m, path=jig.paths.guided(), rule="riemann_left", return_delta=True)(x, p) for m in (16, 256)]

    for A, delta in jax.jit(run)(X6, b, MLP):
        np.testing.assert_allclose(float(delta), float(jnp.sum(A)) - gap, atol=1e-5)
        deltas.append(abs(float(delta)))
    assert deltas[1] < deltas[0] / 4
    assert deltas[1] < 1e-2 * abs(gap)


def test_guided_moves_small_gradient_features_first():
    # F = 3 x0 + 2 tanh(x0 x1): at the baseline 0, dF/dx1 = 0 < dF/dx0 = 3, and it stays
    # 0 while x0 = 0, so Guided IG moves x1 all the way first, then x0 (with x1 = 1).
    f = lambda x: 3.0 * x[0] + jnp.tanh(x[0] * x[1]) * 2.0
    x = jnp.array([1.0, 1.0])
    A, d = jig.ig(f, 0.0, 200, path=jig.paths.guided(fraction=0.5, max_dist=1.0), return_delta=True)(x)
    # x1 moves first (gradient 0 at the start), then x0 with x1 already at 1:
    # A1 ~ 0, A0 ~ f(x) - f(0) (the interaction goes to x0)
    np.testing.assert_allclose(A, [3.0 + 2 * np.tanh(1.0), 0.0], atol=3e-2)
    assert abs(float(d)) < 3e-2
    # the straight line, moving both at once, gives x1 a share of the interaction
    straight = jig.ig(f, 0.0, 64)(x)
    assert float(straight[1]) > 0.5


def linear(x, w):
    return jnp.dot(w, x)


@settings(max_examples=5)
@given(
    x=hnp.arrays(np.float32, (5,), elements=st.floats(-2, 2, width=32)),
    b=hnp.arrays(np.float32, (5,), elements=st.floats(-2, 2, width=32)),
)
def test_guided_equals_straight_line_ig_on_a_linear_model(x, b):
    w = jnp.array([1.0, -2.0, 0.5, 3.0, 0.0])
    for rule in ("riemann_left", "gauss_legendre"):
        A = jig.ig(linear, b, 7, rule=rule, path=jig.paths.guided())(x, w)
        np.testing.assert_allclose(A, w * (x - b), rtol=1e-5, atol=1e-5)


def test_guided_with_no_window_is_the_left_riemann_straight_line():
    # max_dist=0 pins every feature to the schedule: the straight line, left sums
    def run(x, b, p):
        guided = jig.ig(tanh_mlp, b, 12, path=jig.paths.guided(max_dist=0.0), rule="riemann_left")(x, p)
        return guided, jig.ig(tanh_mlp, b, 12, rule="riemann_left")(x, p)

    A, straight = jax.jit(run)(X6, jnp.full((6,), -0.2), MLP)
    np.testing.assert_allclose(A, straight, rtol=1e-4, atol=1e-6)


def test_guided_shape_and_dtype_on_pytrees_and_half_precision():
    f = lambda x: jnp.sum(jnp.tanh(x["a"]) * x["b"][0]) + jnp.sum(x["b"] ** 2)
    x = {"a": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array([[1.0, 0.0, -1.0]])}
    A, delta = jig.ig(f, 0.0, 64, path=jig.paths.guided(), return_delta=True)(x)
    chex.assert_trees_all_equal_shapes_and_dtypes(A, x)
    assert abs(float(delta)) < 0.05
    xh = IMG[:4, :4, 0].astype(jnp.bfloat16)
    Ah = jig.ig(lambda z: jnp.sum(jnp.sin(z.astype(jnp.float32))), 0.0, 16, path=jig.paths.guided())(xh)
    assert Ah.dtype == jnp.bfloat16 and Ah.shape == (4, 4)
    # x == baseline: no movement, zero attributions
    np.testing.assert_array_equal(jig.ig(tanh_mlp, X6, 8, path=jig.paths.guided())(X6, MLP), jnp.zeros(6))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fraction": 0.0}, r"fraction must lie in \(0, 1\]"),
        ({"fraction": 1.5}, r"fraction must lie in \(0, 1\]"),
        ({"max_dist": -0.1}, r"max_dist must lie in \[0, 1\]"),
        ({"fraction": "half"}, "fraction must be a float"),
    ],
)
def test_guided_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        jig.paths.guided(**kwargs)


# --------------------------------------------------------------------------- every path


def img_model(x, p):
    """A scalar model of a 4x4 image (HW), usable with every path."""
    return tanh_mlp(jnp.tanh(x.reshape(-1) @ p["proj"]), p["mlp"])


IMG_P = {"proj": jnp.asarray(np.random.default_rng(6).normal(size=(16, 6)) / 4, jnp.float32), "mlp": MLP}
IMGS = jnp.asarray(np.random.default_rng(7).uniform(size=(3, 4, 4)), jnp.float32)
BLUR_START = lambda x: jig.paths.gaussian_blur(x, 1.0, radius=3)
ALL_PATHS = {  # (path, baseline, x -> mean F over the start(s)); straight: see the core's tests
    "blur": (lambda: jig.paths.blur(1.0), None, lambda x: img_model(BLUR_START(x), IMG_P)),
    "expected": (
        lambda: jig.paths.expected(IMGS[1:] * 0.5),
        None,
        lambda x: jnp.mean(jax.vmap(img_model, (0, None))(IMGS[1:] * 0.5, IMG_P)),
    ),
    "expected_mc": (
        lambda: jig.paths.expected(IMGS[1:] * 0.5, key=jax.random.key(0), samples=20),
        None,
        lambda x: jnp.mean(jax.vmap(img_model, (0, None))(IMGS[1:] * 0.5, IMG_P)),
    ),
    "custom": (lambda: jig.paths.custom(smoothstep_time), 0.1, lambda x: img_model(jnp.full_like(x, 0.1), IMG_P)),
    "guided": (lambda: jig.paths.guided(), 0.1, lambda x: img_model(jnp.full_like(x, 0.1), IMG_P)),
}


@pytest.mark.parametrize("rule", RULES)
def test_every_path_with_every_rule_and_delta(rule):
    def run(x, p):  # every path's explainer for this rule, in one jit (one compilation)
        return {
            name: jig.ig(img_model, baseline, 6, rule=rule, path=make(), return_delta=True)(x, p)
            for name, (make, baseline, _) in ALL_PATHS.items()
        }

    x = IMGS[0]
    for name, (A, delta) in jax.jit(run)(x, IMG_P).items():
        chex.assert_shape(A, x.shape)
        assert A.dtype == x.dtype and delta.shape == ()
        # delta is measured against this path's own start(s)
        gap = float(img_model(x, IMG_P) - ALL_PATHS[name][2](x))
        np.testing.assert_allclose(float(jnp.sum(A) - delta), gap, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", list(ALL_PATHS))
def test_every_path_with_chunking_jit_vmap_grad(name):
    # chunking (a scan over chunks of 4 points, plus a remainder where 4 does not divide
    # the node count), jit, vmap and grad in one compilation: per-example attributions,
    # deltas and input gradients, against the unchunked explainer over the batch
    make, baseline, _ = ALL_PATHS[name]
    explain = jig.ig(img_model, baseline, 6, path=make(), return_delta=True)
    chunked = jig.ig(img_model, baseline, 6, path=make(), chunk_size=4, return_delta=True)

    def loss(z, p):  # an attribution prior: differentiable in the input
        Az, dz = chunked(z, p)
        return jnp.sum(Az**2), (Az, dz)

    def run(xs, p):
        per_example = jax.vmap(jax.value_and_grad(loss, has_aux=True), (0, None))(xs, p)
        return per_example, jax.vmap(explain, (0, None))(xs, p)

    ((lv, (Av, dv)), gv), (A, delta) = jax.jit(run)(IMGS, IMG_P)
    chex.assert_shape((Av, gv), IMGS.shape)
    chex.assert_shape(dv, (3,))
    np.testing.assert_allclose(Av, A, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dv, delta, atol=1e-5)
    np.testing.assert_allclose(lv, jnp.sum(Av**2, axis=(1, 2)), rtol=1e-5)
    assert np.all(np.isfinite(gv)) and float(jnp.min(jnp.max(jnp.abs(gv), axis=(1, 2)))) > 0
    # the batch agrees with one explanation at a time
    A2, d2 = explain(IMGS[2], IMG_P)
    np.testing.assert_allclose(A[2], A2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(delta[2], d2, atol=1e-5)
