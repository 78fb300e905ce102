"""jig.conductance: layer conductance over split functions, against closed forms and Captum.

Captum's LayerConductance (golden file from benchmarks/conductance.py, and live when
captum is importable) on the same weights in Flax linen; closed forms (units that act
alone, the identity layer = IG, completeness); options (chunks, rules, targets, mesh);
jit/vmap/grad; every bad input's error.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jig
from jig.conductance import conductance

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import conductance as bench  # noqa: E402  (benchmarks/conductance.py: the golden file's models)

GOLDEN = os.path.join(HERE, "data", "conductance_reference.npz")


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as f:
        ref = dict(f)
    return ref, bench.jig_side(ref)


# --------------------------------------------------------------------------- Captum


def test_port_reproduces_captums_finite_difference_sum(golden):
    """Captum's sum Σ_k ∂F/∂y(α_k)(y(α_{k+1}) - y(α_k)), written over jig.flax.split's
    functions, gives Captum's numbers: the weights, layouts and layer are the same."""
    ref, ours = golden
    for name in ("mlp", "cnn"):
        for method in ("gausslegendre", "riemann_middle"):
            want = ref[f"{name}_{method}_{bench.N_LOW}"]
            got = bench.from_jax_layout(name, ours[f"{name}_captum_sum_{method}"])
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.max(np.abs(want)), err_msg=f"{name} {method}")


def test_conductance_agrees_with_captum_converged(golden):
    """jig (exact dy/dα, the rule's weights) and Captum at 2048 steps: the same integral.
    Captum at 16 steps is 100x further off than jig is from its converged value."""
    ref, ours = golden
    for name, tol in (("mlp", 2e-3), ("cnn", 1e-3)):
        want = ref[f"{name}_gausslegendre_{bench.N_HIGH}"]
        got = bench.from_jax_layout(name, ours[f"{name}_jig"])
        scale = np.max(np.abs(want))
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale, err_msg=name)
        assert np.max(np.abs(ref[f"{name}_gausslegendre_{bench.N_LOW}"] - want)) > 5 * tol * scale
        gap = ours[f"{name}_jig"].reshape(len(want), -1).sum(-1) - ours[f"{name}_jig_delta"]  # = F(x) - F(0)
        assert np.all(np.abs(ours[f"{name}_jig_delta"]) < 2e-3 * np.abs(gap).max())


def test_neuron_ig_one_liner_is_captums_neuron_integrated_gradients(golden):
    ref, ours = golden
    np.testing.assert_allclose(ours["mlp_neuron_ig"], ref["mlp_neuron_ig"], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("captum") is None or importlib.util.find_spec("torch") is None,
                    reason="captum/torch are not installed in this venv (they live in ~/peers-venv); "
                           "tests/data/conductance_reference.npz carries their values (the golden tests)")
def test_live_captum_layer_conductance():
    live = bench.golden()
    with np.load(GOLDEN) as f:
        for k in f.files:
            np.testing.assert_allclose(live[k], f[k], rtol=1e-5, atol=1e-6, err_msg=k)


# --------------------------------------------------------------------------- closed forms


V = jnp.array([1.0, -0.5, 2.0])
W1 = jnp.array([[1.0, 2.0, -1.0], [0.5, -1.0, 1.0]])
X = jnp.array([0.8, -0.6])


def bottom(p, x):
    return jnp.tanh(x @ p[0])


def top_separable(p, x, y):  # each unit acts alone: C_j = v_j (softplus(y_j(x)) - softplus(y_j(b)))
    return jnp.dot(jax.nn.softplus(y), p[1])


def top_mixing(p, x, y):  # units interact
    return jnp.sin(jnp.dot(y, p[1])) * jnp.sum(y ** 2)


def top_bypass(p, x, y):  # and a path from x that goes around the layer (a residual)
    return top_mixing(p, x, y) + jnp.sum(x ** 3)


def test_separable_units_closed_form_and_completeness():
    b = jnp.array([0.2, 0.3])
    res = conductance(bottom, top_separable, baseline=b, steps=32, return_delta=True)((W1, V), X)
    want = V * (jax.nn.softplus(bottom((W1, V), X)) - jax.nn.softplus(bottom((W1, V), b)))
    np.testing.assert_allclose(res.attributions, want, rtol=1e-5, atol=1e-6)
    assert res.token_scores.shape == () and abs(float(res.delta)) < 1e-5

    res = conductance(bottom, top_mixing, steps=32, return_delta=True)((W1, V), X)
    F = lambda x: top_mixing((W1, V), x, bottom((W1, V), x))  # noqa: E731
    assert abs(float(res.delta)) < 1e-5
    np.testing.assert_allclose(jnp.sum(res.attributions), F(X) - F(jnp.zeros(2)), rtol=1e-5)
    # what bypasses the layer is no unit's conductance: it is all in delta
    bypass = conductance(bottom, top_bypass, steps=32, return_delta=True)((W1, V), X)
    np.testing.assert_allclose(bypass.attributions, res.attributions, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bypass.delta, -jnp.sum(X ** 3), rtol=1e-4)


def test_identity_layer_gives_integrated_gradients():
    """With the layer = the input itself, conductance is IG (top reads y only)."""
    f = lambda x, p: jnp.sin(jnp.dot(jnp.tanh(x @ p[0]), p[1]))  # noqa: E731
    res = conductance(lambda p, x: x, lambda p, x, y: f(y, p), baseline=0.1, steps=16)((W1, V), X)
    np.testing.assert_allclose(res.attributions, jig.ig(f, 0.1, 16)(X, (W1, V)), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- options


def logits(p, x, y):
    return jnp.stack([jnp.dot(y, p[1]), jnp.sum(jnp.sin(y)), jnp.sum(y ** 2) * x[0]])


def test_targets_chunks_rules_and_mesh_agree():
    p = (W1, V)
    one = lambda t, **kw: conductance(bottom, logits, lambda o: o[t], steps=12, **kw)(p, X)  # noqa: E731
    per_target = jnp.stack([one(t).attributions for t in range(3)])
    every = conductance(bottom, logits, targets="all", steps=12, return_delta=True)(p, X)
    np.testing.assert_allclose(every.attributions, per_target, rtol=1e-5, atol=1e-7)
    assert every.delta.shape == (3,) and every.token_scores.shape == (3,)
    picked = conductance(bottom, logits, targets=jnp.array([2, 0]), steps=12, chunk_size=5)(p, X)
    np.testing.assert_allclose(picked.attributions, per_target[jnp.array([2, 0])], rtol=1e-5, atol=1e-7)
    mesh = jax.make_mesh((1,), ("d",))
    meshed = one(1, mesh=mesh, rule="riemann_middle")
    mid = one(1, rule="riemann_middle")
    np.testing.assert_allclose(meshed.attributions, mid.attributions, rtol=1e-6)
    np.testing.assert_allclose(mid.attributions, per_target[1], rtol=2e-2)  # another rule, the same integral


def test_pytree_layer_argnums_and_callable_baseline():
    """A layer returning a dict; the path through a second input; baseline as a callable."""
    bot = lambda p, x, z: {"a": x * z, "b": jnp.tanh(x + z)}  # noqa: E731
    top = lambda p, x, y, z: jnp.sum(y["a"] ** 2) + jnp.sum(y["b"]) * p  # noqa: E731
    z = jnp.array([0.5, -1.0])
    res = conductance(bot, top, baseline=lambda z: 0.5 * z, steps=24, argnums=1, return_delta=True)(2.0, X, z)
    assert set(res.attributions) == {"a", "b"} and res.token_scores["a"].shape == ()
    F = lambda zz: top(2.0, X, bot(2.0, X, zz), zz)  # noqa: E731
    total = sum(jnp.sum(v) for v in res.attributions.values())
    np.testing.assert_allclose(total, F(z) - F(0.5 * z), rtol=1e-5)


def test_jit_vmap_grad():
    p = (W1, V)
    explain = conductance(bottom, top_mixing, steps=16)
    xs = jnp.stack([X, -X, 2 * X])
    batched = jax.jit(jax.vmap(lambda x: explain(p, x).attributions))(xs)
    np.testing.assert_allclose(batched[1], explain(p, -X).attributions, rtol=1e-5, atol=1e-7)
    # Σ C = F(x) - F(0) up to quadrature: so are their gradients in the parameters
    g = jax.grad(lambda p: jnp.sum(explain(p, X).attributions))(p)
    F = lambda p, x: top_mixing(p, x, bottom(p, x))  # noqa: E731
    want = jax.grad(lambda p: F(p, X) - F(p, jnp.zeros(2)))(p)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- Flax


class Net(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 5, rngs=rngs)
        self.out = nnx.Linear(5, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def test_flax_nnx_and_linen_splits():
    model = Net(nnx.Rngs(0))
    s = jig.flax.split(model, "hidden")
    x = jnp.array([0.3, -1.0, 2.0])
    res = conductance(s.bottom, s.top, lambda o: o[1], steps=32, return_delta=True)(nnx.state(model), x)
    assert res.attributions.shape == (5,) and abs(float(res.delta)) < 1e-4
    np.testing.assert_allclose(jnp.sum(res.attributions), model(x)[1] - model(jnp.zeros(3))[1], rtol=1e-4)

    lin = nn.Sequential([nn.Dense(5), jnp.tanh, nn.Dense(2)])
    params = lin.init(jax.random.key(0), x)
    s = jig.flax.split(lin, "layers_0")
    res = conductance(s.bottom, s.top, lambda o: o[0], steps=32, return_delta=True)(params, x)
    assert res.attributions.shape == (5,) and abs(float(res.delta)) < 1e-4
    if hasattr(jig.flax, "conductance"):  # the lead's one-line front-end over this function
        front = jig.flax.conductance(lin, "layers_0", lambda o: o[0], steps=32)(params, x)
        np.testing.assert_allclose(front.attributions, res.attributions, rtol=1e-6)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("args, kwargs, exc, message", [
    ((1, top_mixing), {}, TypeError, r"jig.conductance: bottom must be a callable"),
    ((bottom, None), {}, TypeError, r"jig.conductance: top must be a callable"),
    ((bottom, top_mixing, 3), {}, TypeError, r"jig.conductance: f must be a callable"),
    ((bottom, top_mixing), {"steps": 0}, ValueError, r"jig.conductance: steps must be >= 1"),
    ((bottom, top_mixing), {"rule": "simpson"}, ValueError, r"jig.conductance: rule must be one of"),
    ((bottom, top_mixing), {"chunk_size": 0}, ValueError, r"jig.conductance: chunk_size must be an int >= 1, got 0"),
    ((bottom, top_mixing), {"mesh": "cpu"}, TypeError, r"jig.conductance: mesh must be None or a jax.sharding.Mesh"),
    ((bottom, top_mixing), {"targets": "some"}, ValueError, r"jig.conductance: targets must be None, 'all'"),
    ((bottom, top_mixing), {"return_delta": 1}, TypeError, r"jig.conductance: return_delta must be True or False"),
    ((bottom, top_mixing), {"baseline": None}, TypeError, r"jig.conductance: baseline must be .*straight line"),
    ((bottom, top_mixing), {"argnums": -1}, TypeError, r"jig.conductance: argnums must be"),
])
def test_bad_options(args, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        conductance(*args, **kwargs)


def test_bad_calls():
    p = (W1, V)
    with pytest.raises(TypeError, match=r"jig.conductance: the input the path runs through .* must be floating "
                                        r"point, got dtype int32; .*split the model after the embedding"):
        conductance(bottom, top_mixing)(p, jnp.array([1, 2]))
    with pytest.raises(TypeError, match=r"jig.conductance: argnums=1 names input 1 of \(x, \*args\), but the "
                                        r"explainer was called with 1 input"):
        conductance(bottom, top_mixing, argnums=1)(p, X)
    with pytest.raises(ValueError, match=r"jig.conductance: f must return a scalar, but it returned shape "
                                         r"\(3,\)\. .*targets='all'"):
        conductance(bottom, logits)(p, X)
    with pytest.raises(ValueError, match=r"jig.conductance: baseline leaf 0 has shape \(3,\), which does not broadcast"):
        conductance(bottom, top_mixing, baseline=jnp.zeros(3))(p, X)
    with pytest.raises(FloatingPointError, match=r"jig.conductance: the conductances at the layer are not finite"):
        conductance(bottom, lambda p, x, y: jnp.sum(jnp.sqrt(y)))(p, X)  # y_2 < 0: a NaN gradient
