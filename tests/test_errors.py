"""Every bad input of jig.ig gets a clear error that names the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jig

f = lambda x: jnp.sum(x**2)  # noqa: E731
x = jnp.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "steps,exc,msg",
    [
        (0, ValueError, r"steps must be >= 1 for rule 'gauss_legendre', got 0"),
        (-3, ValueError, r"steps must be >= 1"),
        (2.0, TypeError, r"steps must be a Python int >= 1 .* got 2.0 of type float"),
        ("50", TypeError, r"steps must be a Python int"),
        (True, TypeError, r"steps must be a Python int"),
        (None, TypeError, r"steps must be a Python int"),
    ],
)
def test_bad_steps(steps, exc, msg):
    with pytest.raises(exc, match=msg):
        jig.ig(f, 0.0, steps)


def test_numpy_integer_steps_are_fine():
    np.testing.assert_allclose(jig.ig(f, 0.0, np.int64(4))(x), x**2, rtol=1e-6)


@pytest.mark.parametrize(
    "chunk,exc,msg",
    [(0, ValueError, "chunk_size must be None or >= 1, got 0"), (2.5, TypeError, "chunk_size must be None or a positive int")],
)
def test_bad_chunk_size(chunk, exc, msg):
    with pytest.raises(exc, match=msg):
        jig.ig(f, 0.0, 4, chunk_size=chunk)


@pytest.mark.parametrize("argnums", [-1, 1.0, (), (0, 0), "x"])
def test_bad_argnums(argnums):
    with pytest.raises((TypeError, ValueError), match="argnums"):
        jig.ig(f, 0.0, 4, argnums=argnums)


def test_argnums_beyond_the_call():
    with pytest.raises(TypeError, match=r"argnums=1 names positional argument 1, but the explainer was called with 1"):
        jig.ig(f, 0.0, 4, argnums=1)(x)


def test_unknown_path():
    with pytest.raises(TypeError, match=r"path must be None \(the straight line\) or a jig.paths.Path"):
        jig.ig(f, 0.0, 4, path="straight")


def test_baseline_none_needs_a_path_with_its_own_start():
    with pytest.raises(ValueError, match=r"baseline=None needs a path that defines its own start .* 'straight' path needs a baseline"):
        jig.ig(f, None, 4)


def test_baseline_shape_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"baseline leaf 0 has shape \(2,\), which does not broadcast to the attributed input's shape \(3,\)"):
        jig.ig(f, jnp.zeros(2), 4)(x)
    # broadcasting that would enlarge the input is refused too
    with pytest.raises(ValueError, match=r"shape \(2, 3\), which does not broadcast .* \(3,\)"):
        jig.ig(f, jnp.zeros((2, 3)), 4)(x)


def test_baseline_structure_that_does_not_match():
    with pytest.raises(ValueError, match=r"the input has structure .* but the baseline has structure"):
        jig.ig(lambda d: d["a"] * d["b"], {"a": 0.0}, 4)({"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match="baseline has structure"):
        jig.ig(f, lambda x: (x, x), 4)(x)


def test_baseline_of_a_wrong_type():
    with pytest.raises(TypeError, match="baseline must be a scalar, an array or pytree of arrays, a callable"):
        jig.ig(f, "zeros", 4)
    with pytest.raises(TypeError, match=r"baseline leaf 0 has dtype complex64; expected a real number"):
        jig.ig(f, jnp.zeros(3, jnp.complex64), 4)(x)


def test_non_scalar_output_says_how_to_pick_a_class():
    logits = lambda x: jnp.stack([x.sum(), -x.sum()])  # noqa: E731
    with pytest.raises(ValueError, match=r"f must return a scalar, but it returned shape \(2,\).*lambda x: model\(x\)\[class_index\]"):
        jig.ig(logits, 0.0, 4)(x)
    with pytest.raises(ValueError, match=r"returned shape \(1,\)"):
        jig.ig(lambda x: x[:1], 0.0, 4)(x)
    with pytest.raises(ValueError, match="f must return a scalar"):
        jig.ig(lambda x: (x.sum(), x.sum()), 0.0, 4)(x)


def test_integer_output_is_refused():
    with pytest.raises(TypeError, match="f must return a real floating scalar, got dtype int32"):
        jig.ig(lambda x: jnp.argmax(x), 0.0, 4)(x)


@pytest.mark.parametrize("bad", [jnp.array([1, 2, 3]), jnp.array([True, False]), np.arange(3)])
def test_integer_or_boolean_input_says_use_the_embedding_layer(bad):
    with pytest.raises(TypeError, match=r"argument 0 has dtype (int32|int64|bool).*attribute to the embedding layer instead \(jig.flax\)"):
        jig.ig(lambda t: jnp.sum(t * 1.0), 0.0, 4)(bad)


def test_integer_leaf_in_a_pytree_is_named():
    with pytest.raises(TypeError, match=r"argument 0\['ids'\] has dtype int32"):
        jig.ig(lambda d: jnp.sum(d["emb"]) + d["ids"].sum(), 0.0, 4)({"emb": x, "ids": jnp.array([1, 2])})


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="has dtype complex64; expected a real floating dtype"):
        jig.ig(lambda z: jnp.real(jnp.sum(z)), 0.0, 4)(jnp.ones(2, jnp.complex64))


def test_mesh_of_the_wrong_type():
    with pytest.raises(TypeError, match="mesh must be None or a jax.sharding.Mesh, got list"):
        jig.ig(f, 0.0, 4, mesh=jax.devices())


def test_errors_are_raised_at_trace_time_under_jit_and_vmap():
    # the same checks hold when the explainer is itself traced
    with pytest.raises(TypeError, match="attribute to the embedding layer"):
        jax.jit(jig.ig(lambda t: jnp.sum(t * 1.0), 0.0, 4))(jnp.arange(3))
    with pytest.raises(ValueError, match="does not broadcast"):
        jax.vmap(jig.ig(f, jnp.zeros(2), 4))(jnp.ones((4, 3)))
