"""jig.baselines: values, shapes, reproducibility, and that each plugs into jig.ig and
jig.paths.expected."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig

KEY = jax.random.key(0)
X = jnp.array([0.5, -1.0, 2.0, 0.25])
TREE = {"a": jnp.ones((2, 3)), "b": (jnp.zeros(4, jnp.bfloat16),)}
ROWS = jnp.asarray(np.random.default_rng(0).normal(size=(9, 4)), jnp.float32)


def square(x):
    return jnp.sum(x**2)


def test_zeros_and_constant_give_closed_form_ig():
    np.testing.assert_allclose(jig.ig(square, jig.baselines.zeros(), 4)(X), X**2, rtol=1e-6)
    np.testing.assert_allclose(jig.ig(square, jig.baselines.constant(0.5), 4)(X), X**2 - 0.25, rtol=1e-5, atol=1e-6)
    b = jig.baselines.constant(2.0)(TREE)
    chex.assert_trees_all_equal_shapes(b, TREE)
    assert b["b"][0].dtype == jnp.bfloat16 and float(b["a"][0, 0]) == 2.0


def test_uniform_noise_is_in_range_reproducible_and_stackable():
    one = jig.baselines.uniform(KEY, -1.0, 1.0)
    b = one(X)
    assert b.shape == X.shape and bool(jnp.all((b >= -1) & (b <= 1)))
    np.testing.assert_array_equal(b, one(X))
    assert not np.allclose(b, jig.baselines.uniform(jax.random.key(1), -1.0, 1.0)(X))
    # as a jig.ig baseline, the callable equals passing its array
    np.testing.assert_allclose(jig.ig(square, one, 4)(X), X**2 - b**2, rtol=1e-5, atol=1e-5)
    stack = jig.baselines.uniform(KEY, num=500)(TREE)
    assert stack["a"].shape == (500, 2, 3) and stack["b"][0].dtype == jnp.bfloat16
    np.testing.assert_allclose(float(jnp.mean(stack["a"])), 0.5, atol=0.03)
    # different leaves get different noise
    assert not np.allclose(stack["a"][:, 0, :2].ravel()[:8], stack["b"][0][:2].astype(jnp.float32).ravel())


def test_gaussian_noise_is_centred_on_the_input_and_clipped():
    stack = jig.baselines.gaussian(KEY, 0.2, num=4000)(X)
    assert stack.shape == (4000, 4)
    np.testing.assert_allclose(jnp.mean(stack, 0), X, atol=0.02)
    np.testing.assert_allclose(jnp.std(stack, 0), 0.2 * jnp.ones(4), rtol=0.05)
    clipped = jig.baselines.gaussian(KEY, 1.0, clip=(0.0, 1.0), num=50)(X)
    assert float(jnp.min(clipped)) >= 0.0 and float(jnp.max(clipped)) <= 1.0
    g = jig.baselines.gaussian(KEY, 0.1)
    np.testing.assert_array_equal(g(X), g(X))


def test_blurred_keeps_constants_and_matches_gaussian_blur():
    img = jnp.asarray(np.random.default_rng(1).uniform(size=(6, 6, 3)), jnp.float32)
    b = jig.baselines.blurred(1.5)(img)
    np.testing.assert_allclose(b, jig.paths.gaussian_blur(img, 1.5), rtol=1e-6)
    np.testing.assert_allclose(jig.baselines.blurred(2.0)(jnp.full((5, 5), 0.3)), jnp.full((5, 5), 0.3), rtol=1e-6)
    assert float(jnp.std(b)) < float(jnp.std(img))  # detail removed
    A = jig.ig(square, jig.baselines.blurred(1.5), 4)(img)
    np.testing.assert_allclose(A, img**2 - b**2, rtol=1e-4, atol=1e-5)


def test_dataset_mean_median_and_sample():
    np.testing.assert_allclose(jig.baselines.mean(ROWS), np.mean(np.asarray(ROWS), 0), rtol=1e-6)
    np.testing.assert_allclose(jig.baselines.median(ROWS), np.median(np.asarray(ROWS), 0), rtol=1e-6)
    tree_mean = jig.baselines.mean({"a": ROWS, "b": jnp.arange(9.0)})
    assert float(tree_mean["b"]) == 4.0
    stack = jig.baselines.sample(ROWS, 5, KEY)
    assert stack.shape == (5, 4)
    rows = {tuple(np.asarray(r)) for r in np.asarray(ROWS)}
    picked = [tuple(np.asarray(r)) for r in np.asarray(stack)]
    assert set(picked) <= rows and len(set(picked)) == 5  # distinct rows of the data
    np.testing.assert_array_equal(stack, jig.baselines.sample(ROWS, 5, KEY))
    assert jig.baselines.sample(ROWS, 20, KEY, replace=True).shape == (20, 4)


def test_mean_baseline_and_sampled_stack_plug_into_ig_and_expected():
    m = jig.baselines.mean(ROWS)
    np.testing.assert_allclose(jig.ig(square, m, 4)(X), X**2 - m**2, rtol=1e-4, atol=1e-5)
    stack = jig.baselines.sample(ROWS, 4, KEY)
    A = jig.ig(square, None, 4, path=jig.paths.expected(stack))(X)
    np.testing.assert_allclose(A, X**2 - jnp.mean(stack**2, 0), rtol=1e-4, atol=1e-5)
    noise = jig.baselines.gaussian(KEY, 0.5, num=3)
    A2 = jig.ig(square, None, 4, path=jig.paths.expected(noise))(X)
    np.testing.assert_allclose(A2, X**2 - jnp.mean(noise(X) ** 2, 0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: jig.baselines.uniform(0), TypeError, "key must be a PRNG key"),
        (lambda: jig.baselines.uniform(KEY, 1.0, 1.0), ValueError, "expected low < high"),
        (lambda: jig.baselines.uniform(KEY, num=0), ValueError, "num must be None .* or an int >= 1"),
        (lambda: jig.baselines.gaussian(KEY, 0.0), ValueError, "stddev must be > 0"),
        (lambda: jig.baselines.gaussian(KEY, 0.1, clip=(1.0, 0.0)), ValueError, "clip must satisfy lo < hi"),
        (lambda: jig.baselines.gaussian(KEY, 0.1, clip=1.0), TypeError, "clip must be None or a pair"),
        (lambda: jig.baselines.constant("grey"), TypeError, "value must be a real number"),
        (lambda: jig.baselines.blurred(0.0), ValueError, "sigma must be finite and > 0"),
        (lambda: jig.baselines.mean(jnp.float32(1.0)), ValueError, r"expected rows along a leading axis"),
        (lambda: jig.baselines.median({}), ValueError, "data has no array leaves"),
        (lambda: jig.baselines.sample(ROWS, 10, KEY), ValueError, "num=10 rows without replacement, but data has only 9"),
        (lambda: jig.baselines.sample(ROWS, 0, KEY), ValueError, "num must be an int >= 1"),
        (lambda: jig.baselines.mean({"a": ROWS, "b": jnp.ones(3)}), ValueError, "disagree on the number of rows"),
    ],
)
def test_baselines_reject_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()
