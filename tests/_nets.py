"""Small models shared by the core tests: parameters are arguments, so one compiled
explainer serves every hypothesis example of the same shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "gelu": jax.nn.gelu,
}


def init_mlp(seed: int, sizes=(6, 16, 16, 1), scale: float = 1.0):
    """Random MLP parameters as a list of (w, b) pairs (NumPy float32)."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(size=(n_in, n_out)) * scale / np.sqrt(n_in)
        b = rng.normal(size=(n_out,)) * 0.1
        params.append((w.astype(np.float32), b.astype(np.float32)))
    return params


def mlp(x, params, act="tanh"):
    """A scalar MLP: the last layer has one unit."""
    h = x
    for w, b in params[:-1]:
        h = ACTIVATIONS[act](h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[0]


def mlp_logits(x, params, act="tanh"):
    h = x
    for w, b in params[:-1]:
        h = ACTIVATIONS[act](h @ w + b)
    w, b = params[-1]
    return h @ w + b
