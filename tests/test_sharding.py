"""jig.sharded, jig.explain_dataset and jig.ig(mesh=) on 8 simulated CPU devices (see conftest.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

import jig

FEATURES, CLASSES, HIDDEN, STEPS = 6, 3, 8, 16


def _params(seed=0):
    rng = np.random.RandomState(seed)
    return {
        "w1": rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32) / np.sqrt(FEATURES),
        "w2": rng.normal(size=(HIDDEN, CLASSES)).astype(np.float32) / np.sqrt(HIDDEN),
    }


PARAMS = _params()


def logits(x, params):
    return jnp.tanh(x @ params["w1"]) @ params["w2"]


def explain_class(x, c, params):
    """IG of one example for its own class c (a traced per-example index)."""
    return jig.ig(lambda x, p: logits(x, p)[c], 0.0, STEPS)(x, params)


def explain_baseline(x, b, params):
    """IG of one example from its own baseline b, class 1."""
    return jig.ig(lambda x, p: logits(x, p)[1], b, STEPS)(x, params)


def _data(n, seed=1):
    rng = np.random.RandomState(seed)
    xs = rng.normal(size=(n, FEATURES)).astype(np.float32)
    return xs, (np.arange(n) % CLASSES).astype(np.int32)


# one sharded function per explainer, reused so compilations are shared across tests
BY_CLASS = jig.sharded(explain_class, in_axes=(0, 0, None))
BY_BASELINE = jig.sharded(explain_baseline, in_axes=(0, 0, None))
VMAP_CLASS = jax.jit(jax.vmap(explain_class, in_axes=(0, 0, None)))


def test_eight_devices():
    assert jax.device_count() == 8


@pytest.mark.parametrize("n", [1, 7, 8, 13, 64])
def test_sharded_equals_vmap_per_example_classes(n):
    xs, cs = _data(n)
    got = BY_CLASS(xs, cs, PARAMS)
    want = VMAP_CLASS(xs, cs, PARAMS)
    assert got.shape == (n, FEATURES)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
    # and each row is the single-example explanation of its own class
    i = n - 1
    np.testing.assert_allclose(np.asarray(got[i]), np.asarray(explain_class(xs[i], cs[i], PARAMS)), rtol=1e-6, atol=1e-6)


def _linear_one(x, b, c, w):
    return jig.ig(lambda x, w: (x @ w)[c], b, 2)(x, w)


LINEAR = jig.sharded(_linear_one, in_axes=(0, 0, 0, None))


def test_per_example_baselines_closed_form_on_a_linear_model():
    # linear model: IG is exact, A = W[:, c] * (x - b) for each example's own baseline
    w = np.random.RandomState(2).normal(size=(FEATURES, CLASSES)).astype(np.float32)
    xs, cs = _data(13)
    bs = np.random.RandomState(3).normal(size=xs.shape).astype(np.float32)
    got = np.asarray(LINEAR(xs, bs, cs, w))
    np.testing.assert_allclose(got, w[:, cs].T * (xs - bs), rtol=1e-5, atol=1e-5)


@settings(max_examples=15)
@given(n=st.integers(1, 24), seed=st.integers(0, 2**16))
def test_any_batch_size_gives_the_closed_form(n, seed):
    # padded sizes are multiples of 8, so this compiles at most 3 times
    rng = np.random.RandomState(seed)
    xs, bs = rng.normal(size=(2, n, FEATURES)).astype(np.float32)
    cs = rng.randint(0, CLASSES, size=n)
    w = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)
    got = np.asarray(LINEAR(xs, bs, cs, w))
    np.testing.assert_allclose(got, w[:, cs].T * (xs - bs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", [7, 16])
def test_per_example_baselines_equal_vmap(n):
    xs, _ = _data(n)
    bs = 0.5 * _data(n, seed=4)[0]
    got = BY_BASELINE(xs, bs, PARAMS)
    want = jax.vmap(explain_baseline, in_axes=(0, 0, None))(xs, bs, PARAMS)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
    # completeness per example: sum A = F(x) - F(b)
    f = lambda x: logits(x, PARAMS)[:, 1]  # noqa: E731
    np.testing.assert_allclose(np.asarray(got).sum(1), f(xs) - f(bs), atol=1e-3)


# ----------------------------------------------------------------------- blur and expected paths

SIDE = 6


def image_model(x, w):
    return jnp.sum(jnp.tanh(x * w)) + jnp.sum(x[1:4, 1:4]) ** 2 / 9.0


def explain_blur(x, w):
    return jig.ig(image_model, None, STEPS, path=jig.paths.blur(1.5), return_delta=True)(x, w)


def explain_expected(x, c, stack, params):
    """Expected Gradients over a shared stack of baselines, per-example class."""
    return jig.ig(lambda x, p: logits(x, p)[c], None, 8, path=jig.paths.expected(stack))(x, params)


def explain_expected_mc(x, key, stack, params):
    """Monte Carlo Expected Gradients with a per-example PRNG key."""
    path = jig.paths.expected(stack, key=key, samples=16)
    return jig.ig(lambda x, p: logits(x, p)[0], None, 8, path=path)(x, params)


def test_blur_path_sharded_equals_vmap():
    rng = np.random.RandomState(5)
    imgs = rng.uniform(size=(13, SIDE, SIDE)).astype(np.float32)
    w = rng.normal(size=(SIDE, SIDE)).astype(np.float32)
    A, delta = jig.sharded(explain_blur, in_axes=(0, None))(imgs, w)
    A2, delta2 = jax.vmap(explain_blur, in_axes=(0, None))(imgs, w)
    assert A.shape == imgs.shape and delta.shape == (13,)
    np.testing.assert_allclose(np.asarray(A), np.asarray(A2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(delta), np.asarray(delta2), atol=1e-6)
    assert np.abs(np.asarray(delta)).max() < 1e-2  # completeness against F(x) - F(blurred x)


def test_expected_path_sharded_equals_vmap_and_closed_form():
    xs, cs = _data(13)
    stack = np.random.RandomState(6).normal(size=(4, FEATURES)).astype(np.float32)
    got = jig.sharded(explain_expected, in_axes=(0, 0, None, None))(xs, cs, stack, PARAMS)
    want = jax.vmap(explain_expected, in_axes=(0, 0, None, None))(xs, cs, stack, PARAMS)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    # linear model: Expected Gradients = W[:, c] * (x - mean of the baselines)
    w = np.random.RandomState(7).normal(size=(FEATURES, CLASSES)).astype(np.float32)
    linear = lambda x, c, s, w: jig.ig(lambda x, w: (x @ w)[c], None, 2, path=jig.paths.expected(s))(x, w)  # noqa: E731
    got = jig.sharded(linear, in_axes=(0, 0, None, None))(xs, cs, stack, w)
    np.testing.assert_allclose(np.asarray(got), w[:, cs].T * (xs - stack.mean(0)), rtol=1e-5, atol=1e-5)


def test_expected_monte_carlo_with_per_example_keys():
    xs, _ = _data(7)
    keys = jax.random.split(jax.random.key(0), 7)
    stack = np.random.RandomState(8).normal(size=(4, FEATURES)).astype(np.float32)
    got = jig.sharded(explain_expected_mc, in_axes=(0, 0, None, None))(xs, keys, stack, PARAMS)
    want = jax.vmap(explain_expected_mc, in_axes=(0, 0, None, None))(xs, keys, stack, PARAMS)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(got[0]), np.asarray(got[1]))


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_blur_and_expected_path_points_over_a_mesh_equal_one_device(chunk_size):
    mesh = jax.make_mesh((8,), ("points",))
    rng = np.random.RandomState(9)
    img = rng.uniform(size=(SIDE, SIDE)).astype(np.float32)
    w = rng.normal(size=(SIDE, SIDE)).astype(np.float32)
    blur = lambda **kw: jig.ig(image_model, None, 11, path=jig.paths.blur(1.5), chunk_size=chunk_size, **kw)  # noqa: E731
    np.testing.assert_allclose(np.asarray(blur(mesh=mesh)(img, w)), np.asarray(blur()(img, w)), rtol=1e-5, atol=1e-6)
    stack = rng.normal(size=(3, FEATURES)).astype(np.float32)  # 3 baselines x 5 steps = 15 nodes
    exp = lambda **kw: jig.ig(_big_input_model, None, 5, path=jig.paths.expected(stack), chunk_size=chunk_size, **kw)  # noqa: E731
    x = _data(1)[0][0]
    np.testing.assert_allclose(np.asarray(exp(mesh=mesh)(x, PARAMS)), np.asarray(exp()(x, PARAMS)), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------- output sharding


def test_output_sharding_default_mesh():
    xs, cs = _data(16)
    out = BY_CLASS(xs, cs, PARAMS)
    assert isinstance(out, jax.Array)
    assert out.sharding.spec == P("batch")
    assert out.sharding.mesh.axis_names == ("batch",) and out.sharding.mesh.size == 8
    assert sorted(s.data.shape for s in out.addressable_shards) == [(2, FEATURES)] * 8
    assert {s.device for s in out.addressable_shards} == set(jax.devices())


def test_output_sharding_on_a_user_explicit_mesh_and_an_axis_of_a_2d_mesh():
    explicit = jax.make_mesh((8,), ("data",))  # Explicit axes by default
    assert explicit.axis_types == (AxisType.Explicit,)
    xs, cs = _data(16)
    out = jig.sharded(explain_class, mesh=explicit, in_axes=(0, 0, None))(xs, cs, PARAMS)
    assert out.sharding == NamedSharding(explicit, P("data"))
    np.testing.assert_allclose(np.asarray(out), np.asarray(VMAP_CLASS(xs, cs, PARAMS)), rtol=1e-6, atol=1e-6)

    grid = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    out = jig.sharded(explain_class, mesh=grid, axis="data", in_axes=(0, 0, None))(xs, cs, PARAMS)
    assert out.sharding == NamedSharding(grid, P("data"))
    assert {s.data.shape for s in out.addressable_shards} == {(4, FEATURES)}  # 16 rows / 4, replicated x2
    np.testing.assert_allclose(np.asarray(out), np.asarray(VMAP_CLASS(xs, cs, PARAMS)), rtol=1e-6, atol=1e-6)


def test_uneven_batch_is_trimmed_and_replicated_as_documented():
    xs, cs = _data(13)
    out = BY_CLASS(xs, cs, PARAMS)
    assert out.shape == (13, FEATURES)
    assert out.sharding.is_fully_replicated


def test_already_sharded_inputs_on_an_explicit_mesh():
    explicit = jax.make_mesh((8,), ("batch",))
    xs, cs = _data(13)  # uneven: needs padding of an already-placed array
    put = jax.device_put(xs, NamedSharding(explicit, P()))
    got = BY_CLASS(put, jnp.asarray(cs), jax.device_put(PARAMS, NamedSharding(explicit, P())))
    np.testing.assert_allclose(np.asarray(got), np.asarray(VMAP_CLASS(xs, cs, PARAMS)), rtol=1e-6, atol=1e-6)
    xs16, cs16 = _data(16)
    put = jax.device_put(xs16, NamedSharding(explicit, P("batch")))
    got = BY_CLASS(put, cs16, PARAMS)
    np.testing.assert_allclose(np.asarray(got), np.asarray(VMAP_CLASS(xs16, cs16, PARAMS)), rtol=1e-6, atol=1e-6)


def test_pytree_inputs_and_outputs():
    # attributions to a dict input, plus the delta: the output pytree keeps its structure
    def one(x, params):
        f = lambda x, p: jnp.sum(logits(x["a"] * x["b"], p))  # noqa: E731
        return jig.ig(f, 0.0, STEPS, return_delta=True)(x, params)

    xs, _ = _data(9)
    tree = {"a": xs, "b": 1.0 + xs**2}
    (A, delta) = jig.sharded(one, in_axes=(0, None))(tree, PARAMS)
    (A2, delta2) = jax.vmap(one, in_axes=(0, None))(tree, PARAMS)
    assert set(A) == {"a", "b"} and A["a"].shape == (9, FEATURES) and delta.shape == (9,)
    for k in A:
        np.testing.assert_allclose(np.asarray(A[k]), np.asarray(A2[k]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(delta), np.asarray(delta2), atol=1e-6)


def test_composes_with_jit_and_grad():
    # attributions differentiable w.r.t. the parameters (e.g. an attribution prior), batch of 13.
    # Linear model: A = w[:, c] * (x - b), so d/dw sum(A**2) = sum over examples of class c of
    # 2 w[:, c] (x - b)**2.
    xs, cs = _data(13)
    bs = 0.5 * _data(13, seed=11)[0]
    w = np.random.RandomState(12).normal(size=(FEATURES, CLASSES)).astype(np.float32)
    g = jax.jit(jax.grad(lambda w: jnp.sum(LINEAR(xs, bs, cs, w) ** 2)))(w)
    want = np.zeros_like(w)
    for x, b, c in zip(xs, bs, cs):
        want[:, c] += 2 * w[:, c] * (x - b) ** 2
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.jit(LINEAR)(xs, bs, cs, w)), w[:, cs].T * (xs - bs), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------- pmap


def test_pmap_over_a_vmapped_explainer():
    xs, cs = _data(16)
    per_device = jax.pmap(jax.vmap(explain_class, in_axes=(0, 0, None)), in_axes=(0, 0, None))
    got = per_device(xs.reshape(8, 2, FEATURES), cs.reshape(8, 2), PARAMS)
    assert got.shape == (8, 2, FEATURES)
    np.testing.assert_allclose(
        np.asarray(got).reshape(16, FEATURES), np.asarray(VMAP_CLASS(xs, cs, PARAMS)), rtol=1e-6, atol=1e-6
    )


# ----------------------------------------------------------------------- path points over a mesh


def _big_input_model(x, params):
    return jnp.sum(logits(x, params) ** 2)


@pytest.mark.parametrize("chunk_size", [None, 5])
@pytest.mark.parametrize("mesh_kind", ["auto", "explicit"])
def test_path_points_over_a_mesh_equal_one_device(chunk_size, mesh_kind):
    # 13 steps over 8 devices: the nodes are padded (zero weight) to a multiple of 8
    types = (AxisType.Auto,) if mesh_kind == "auto" else (AxisType.Explicit,)
    mesh = jax.make_mesh((8,), ("points",), axis_types=types)
    x = _data(1)[0][0]
    one = jig.ig(_big_input_model, 0.5, 13, chunk_size=chunk_size, return_delta=True)
    spread = jig.ig(_big_input_model, 0.5, 13, chunk_size=chunk_size, return_delta=True, mesh=mesh)
    (a1, d1), (a2, d2) = one(x, PARAMS), spread(x, PARAMS)
    np.testing.assert_allclose(np.asarray(a2), np.asarray(a1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(d2), float(d1), atol=1e-5)


def test_path_points_over_a_mesh_really_are_split():
    # the compiled program is partitioned over 8 devices and reduces across them
    mesh = jax.make_mesh((8,), ("points",), axis_types=(AxisType.Auto,))
    x = _data(1)[0][0]
    spread = jig.ig(_big_input_model, 0.0, 13, mesh=mesh)
    hlo = jax.jit(spread).lower(x, PARAMS).compile().as_text()
    assert "all-reduce" in hlo or "reduce-scatter" in hlo
    plain = jax.jit(jig.ig(_big_input_model, 0.0, 13)).lower(x, PARAMS).compile().as_text()
    assert "all-reduce" not in plain


# ----------------------------------------------------------------------- explain_dataset


def test_explain_dataset_equals_vmap_and_streams_to_npy(tmp_path):
    xs, cs = _data(37)
    want = np.asarray(VMAP_CLASS(xs, cs, PARAMS))
    got = jig.explain_dataset(explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=16, progress=False)
    assert isinstance(got, np.ndarray) and got.shape == (37, FEATURES)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

    path = tmp_path / "attributions.npy"
    mm = jig.explain_dataset(
        explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=16, progress=False, out=str(path)
    )
    assert isinstance(mm, np.memmap)
    np.testing.assert_allclose(np.load(path), want, rtol=1e-6, atol=1e-6)

    buf = np.zeros((37, FEATURES), np.float32)
    same = jig.explain_dataset(explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=16, progress=False, out=buf)
    assert same is buf
    np.testing.assert_allclose(buf, want, rtol=1e-6, atol=1e-6)


def test_explain_dataset_empty_and_pytree_outputs():
    xs, cs = _data(0)
    empty = jig.explain_dataset(explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), progress=False)
    assert empty.shape == (0, FEATURES) and empty.dtype == np.float32
    xs, cs = _data(11)
    two = lambda x, c, p: {"A": explain_class(x, c, p), "c": c}  # noqa: E731
    got = jig.explain_dataset(two, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=8, progress=False)
    np.testing.assert_array_equal(got["c"], cs)
    np.testing.assert_allclose(got["A"], np.asarray(VMAP_CLASS(xs, cs, PARAMS)), rtol=1e-6, atol=1e-6)


def test_explain_dataset_progress_bar(capsys):
    xs, cs = _data(20)
    got = jig.explain_dataset(explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=16, progress=True)
    np.testing.assert_allclose(got, np.asarray(VMAP_CLASS(xs, cs, PARAMS)), rtol=1e-6, atol=1e-6)
    assert "20/20" in capsys.readouterr().err


def test_explain_dataset_bad_input(tmp_path):
    xs, cs = _data(10)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        jig.explain_dataset(explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=0, progress=False)
    with pytest.raises(ValueError, match=r"out must hold 10 rows of shape \(6,\)"):
        jig.explain_dataset(
            explain_class, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=16, progress=False, out=np.zeros((9, 6))
        )
    two = lambda x, c, p: (explain_class(x, c, p), explain_class(x, c, p))  # noqa: E731
    with pytest.raises(ValueError, match="must return a single array"):
        jig.explain_dataset(two, xs, cs, PARAMS, in_axes=(0, 0, None), batch_size=16, progress=False, out=tmp_path / "a.npy")
    with pytest.raises(ValueError, match="must share the leading"):
        jig.explain_dataset(explain_class, xs, cs[:9], PARAMS, in_axes=(0, 0, None), progress=False)


# ----------------------------------------------------------------------- bad input


def test_mesh_without_the_named_axis():
    mesh = jax.make_mesh((8,), ("data",))
    with pytest.raises(ValueError, match=r"axis='model' is not an axis of the mesh; the mesh has axes \('data',\)"):
        jig.sharded(explain_class, mesh=mesh, axis="model")
    with pytest.raises(ValueError, match=r"axis='data' is not an axis of the mesh; the mesh has axes \('batch',\)"):
        jig.sharded(explain_class, axis="data")  # the default mesh's axis is "batch"
    with pytest.raises(TypeError, match="mesh must be None or a jax.sharding.Mesh"):
        jig.sharded(explain_class, mesh=jax.devices())


def test_mismatched_leading_axes():
    xs, cs = _data(8)
    with pytest.raises(ValueError, match=r"must share the leading \(batch\) axis size, but argument 0 has 8 rows and argument 1 has 7"):
        BY_CLASS(xs, cs[:7], PARAMS)
    with pytest.raises(ValueError, match=r"argument 0 has 8 rows and argument 2\['w1'\] has 6 \(mark arguments shared"):
        # params batched by mistake: w1 has 6 rows, not 8
        jig.sharded(explain_class, in_axes=0)(xs, cs, PARAMS)
    with pytest.raises(ValueError, match="is a scalar with no leading axis"):
        jig.sharded(explain_class, in_axes=(0, 0, None))(xs, np.int32(1), PARAMS)


def test_bad_in_axes():
    xs, cs = _data(8)
    with pytest.raises(TypeError, match="in_axes must be 0"):
        jig.sharded(explain_class, in_axes=(0, 1, None))
    with pytest.raises(ValueError, match="in_axes has 2 entries but the function was called with 3"):
        jig.sharded(explain_class, in_axes=(0, None))(xs, cs, PARAMS)
    with pytest.raises(ValueError, match="no argument is batched"):
        jig.sharded(explain_class, in_axes=None)(xs, cs, PARAMS)
    with pytest.raises(TypeError, match="fn must be a callable"):
        jig.sharded("ig")
    with pytest.raises(TypeError, match=r"argument 2\['act'\] is a str \('relu'\); the arguments must be arrays"):
        BY_CLASS(xs, cs, {**PARAMS, "act": "relu"})
