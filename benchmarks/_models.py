"""The three benchmark models, in JAX and (optionally) PyTorch, with the same weights.

Weights are drawn once in NumPy (float32) and copied into both frameworks, so the
attributions of jig and of the PyTorch peers can be compared number for number.

- ``mlp``: 30-256-256-2 ReLU MLP (tabular input of 30 features).
- ``cnn``: 28x28x1 image -> conv3x3(16) -> ReLU -> conv3x3/2(32) -> ReLU ->
  conv3x3/2(32) -> ReLU -> dense(10). Strided convolutions, no max pool (whose
  backward pass is slow on XLA:CPU, see JAX-NOTES).
- ``transformer``: two post-norm encoder layers (d=64, 4 heads, feed-forward 128,
  ReLU), the exact math of ``torch.nn.TransformerEncoderLayer(batch_first=True)``,
  mean pooling and a 2-class head; attributed to the token embeddings (seq x 64).

Every JAX model is ``logits(x, params)`` for one example (no batch axis); the
benchmarks ``vmap`` over the batch.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Bench(NamedTuple):
    """One benchmark problem: a JAX model, its parameters, inputs and target classes."""

    name: str
    logits: Callable[[Any, Any], jax.Array]  # one example -> (classes,)
    params: Any  # NumPy float32 pytree
    xs: np.ndarray  # (batch, *example shape), JAX layout
    targets: np.ndarray  # (batch,) int32: the predicted class of each example
    steps: int  # the steps of the equal-steps comparison
    torch_model: Callable[[], Any]  # () -> torch.nn.Module with the same weights
    to_torch: Callable[[np.ndarray], np.ndarray]  # JAX layout -> torch layout
    from_torch: Callable[[np.ndarray], np.ndarray]  # torch layout -> JAX layout


def _dense(rng, n_in, n_out):
    w = rng.normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)
    b = rng.normal(size=(n_out,)) * 0.05
    return w.astype(np.float32), b.astype(np.float32)


def _targets(logits, params, xs):
    out = jax.jit(jax.vmap(logits, in_axes=(0, None)))(jnp.asarray(xs), params)
    return np.asarray(jnp.argmax(out, axis=-1), dtype=np.int32)


# --------------------------------------------------------------------------- MLP


def mlp_logits(x, params):
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def mlp(batch: int = 256, seed: int = 0, classes: int = 2) -> Bench:
    rng = np.random.default_rng(seed)
    params = [_dense(rng, 30, 256), _dense(rng, 256, 256), _dense(rng, 256, classes)]
    xs = rng.normal(size=(batch, 30)).astype(np.float32)

    def torch_model():
        import torch

        layers = []
        for i, (w, b) in enumerate(params):
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(params) - 1:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers).eval()

    ident = lambda a: a  # noqa: E731
    return Bench("mlp", mlp_logits, params, xs, _targets(mlp_logits, params, xs), 64,
                 torch_model, ident, ident)


# --------------------------------------------------------------------------- CNN


def _conv(rng, c_in, c_out):
    """A 3x3 HWIO convolution's weights (He normal) and bias, float32."""
    w = rng.normal(size=(3, 3, c_in, c_out)) * np.sqrt(2.0 / (9 * c_in))
    return w.astype(np.float32), (rng.normal(size=(c_out,)) * 0.05).astype(np.float32)


def _load_conv_net(net, params):
    """Copy ``params`` (HWIO convs, a dense head) into a torch net with ``convs`` and ``head``."""
    import torch

    with torch.no_grad():
        for conv, (w, b) in zip(net.convs, params["convs"]):
            conv.weight.copy_(torch.from_numpy(np.transpose(w, (3, 2, 0, 1)).copy()))
            conv.bias.copy_(torch.from_numpy(b))
        net.head.weight.copy_(torch.from_numpy(params["head"][0].T.copy()))
        net.head.bias.copy_(torch.from_numpy(params["head"][1]))
    return net.eval()


def _nhwc_to_nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, -3))


def _nchw_to_nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))

_CONVS = ((1, 16, 1), (16, 32, 2), (32, 32, 2))  # (in, out, stride), 3x3, padding 1


def cnn_logits(x, params):
    h = x[None]  # NHWC
    for (w, b), (_, _, stride) in zip(params["convs"], _CONVS):
        h = jax.lax.conv_general_dilated(
            h, w, (stride, stride), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.nn.relu(h + b)
    # flatten in torch's (C, H, W) order so the dense weights are shared as they are
    h = jnp.transpose(h[0], (2, 0, 1)).reshape(-1)
    w, b = params["head"]
    return h @ w + b


def cnn(batch: int = 16, seed: int = 1) -> Bench:
    rng = np.random.default_rng(seed)
    convs = []
    for c_in, c_out, _ in _CONVS:
        convs.append(_conv(rng, c_in, c_out))
    params = {"convs": convs, "head": _dense(rng, 32 * 7 * 7, 10)}
    # smooth blobs in [0, 1], like digits
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    imgs = []
    for _ in range(batch):
        c = rng.uniform(0.25, 0.75, size=(3, 2))
        img = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02) for cy, cx in c)
        imgs.append(np.clip(img, 0, 1))
    xs = np.stack(imgs)[..., None].astype(np.float32)

    def torch_model():
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.convs = torch.nn.ModuleList(
                    torch.nn.Conv2d(ci, co, 3, stride=s, padding=1) for ci, co, s in _CONVS
                )
                self.head = torch.nn.Linear(32 * 7 * 7, 10)

            def forward(self, x):
                for conv in self.convs:
                    x = torch.relu(conv(x))
                return self.head(x.flatten(1))

        return _load_conv_net(Net(), params)

    return Bench("cnn", cnn_logits, params, xs, _targets(cnn_logits, params, xs), 64,
                 torch_model, _nhwc_to_nchw, _nchw_to_nhwc)


# --------------------------------------------------------------------------- max-pool CNN


def cnn_pool_logits(x, params):
    """conv3x3(1->16) -> ReLU -> conv3x3(16->32) -> ReLU -> 2x2 max-pool -> dense(10), the
    model users write (``lax.reduce_window`` max pooling, as ``flax.linen.max_pool``)."""
    h = x[None]
    for w, b in params["convs"]:
        h = jax.lax.conv_general_dilated(h, w, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(h + b)
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    h = jnp.transpose(h[0], (2, 0, 1)).reshape(-1)
    w, b = params["head"]
    return h @ w + b


def cnn_pool(batch: int = 16, seed: int = 3) -> Bench:
    rng = np.random.default_rng(seed)
    convs = []
    for c_in, c_out in ((1, 16), (16, 32)):
        convs.append(_conv(rng, c_in, c_out))
    params = {"convs": convs, "head": _dense(rng, 32 * 14 * 14, 10)}
    xs = cnn(batch, seed).xs

    def torch_model():
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.convs = torch.nn.ModuleList(torch.nn.Conv2d(ci, co, 3, padding=1) for ci, co in ((1, 16), (16, 32)))
                self.head = torch.nn.Linear(32 * 14 * 14, 10)

            def forward(self, x):
                for conv in self.convs:
                    x = torch.relu(conv(x))
                return self.head(torch.nn.functional.max_pool2d(x, 2).flatten(1))

        return _load_conv_net(Net(), params)

    return Bench("cnn_pool", cnn_pool_logits, params, xs, _targets(cnn_pool_logits, params, xs), 64,
                 torch_model, _nhwc_to_nchw, _nchw_to_nhwc)


# --------------------------------------------------------------------------- transformer

D, HEADS, FF, LAYERS = 64, 4, 128, 2


def _layer_norm(h, g, b, eps=1e-5):
    mu = jnp.mean(h, -1, keepdims=True)
    var = jnp.mean((h - mu) ** 2, -1, keepdims=True)
    return (h - mu) / jnp.sqrt(var + eps) * g + b


def _encoder_layer(h, p):
    s = h.shape[0]
    qkv = h @ p["in_w"].T + p["in_b"]  # (s, 3D), torch's in_proj layout
    q, k, v = (qkv[:, i * D:(i + 1) * D].reshape(s, HEADS, D // HEADS) for i in range(3))
    att = jax.nn.softmax(jnp.einsum("qhd,khd->hqk", q, k) / np.sqrt(D // HEADS), axis=-1)
    o = jnp.einsum("hqk,khd->qhd", att, v).reshape(s, D) @ p["out_w"].T + p["out_b"]
    h = _layer_norm(h + o, p["n1_g"], p["n1_b"])
    ff = jax.nn.relu(h @ p["l1_w"].T + p["l1_b"]) @ p["l2_w"].T + p["l2_b"]
    return _layer_norm(h + ff, p["n2_g"], p["n2_b"])


def transformer_logits(x, params):
    h = x
    for p in params["layers"]:
        h = _encoder_layer(h, p)
    w, b = params["head"]
    return jnp.mean(h, axis=0) @ w + b


def transformer(batch: int = 8, seq: int = 64, seed: int = 2, classes: int = 2) -> Bench:
    rng = np.random.default_rng(seed)

    def mat(*shape):
        return (rng.normal(size=shape) / np.sqrt(shape[-1])).astype(np.float32)

    def vec(n, scale=0.02):
        return (rng.normal(size=(n,)) * scale).astype(np.float32)

    layers = []
    for _ in range(LAYERS):
        layers.append({
            "in_w": mat(3 * D, D), "in_b": vec(3 * D), "out_w": mat(D, D), "out_b": vec(D),
            "l1_w": mat(FF, D), "l1_b": vec(FF), "l2_w": mat(D, FF), "l2_b": vec(D),
            "n1_g": 1 + vec(D, 0.1), "n1_b": vec(D), "n2_g": 1 + vec(D, 0.1), "n2_b": vec(D),
        })
    params = {"layers": layers, "head": _dense(rng, D, classes)}
    xs = rng.normal(size=(batch, seq, D)).astype(np.float32)

    def torch_model():
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = torch.nn.ModuleList(
                    torch.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
                    for _ in range(LAYERS)
                )
                self.head = torch.nn.Linear(D, classes)

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                return self.head(x.mean(1))

        net = Net()
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        with torch.no_grad():
            for layer, p in zip(net.layers, layers):
                layer.self_attn.in_proj_weight.copy_(t(p["in_w"]))
                layer.self_attn.in_proj_bias.copy_(t(p["in_b"]))
                layer.self_attn.out_proj.weight.copy_(t(p["out_w"]))
                layer.self_attn.out_proj.bias.copy_(t(p["out_b"]))
                layer.linear1.weight.copy_(t(p["l1_w"]))
                layer.linear1.bias.copy_(t(p["l1_b"]))
                layer.linear2.weight.copy_(t(p["l2_w"]))
                layer.linear2.bias.copy_(t(p["l2_b"]))
                layer.norm1.weight.copy_(t(p["n1_g"]))
                layer.norm1.bias.copy_(t(p["n1_b"]))
                layer.norm2.weight.copy_(t(p["n2_g"]))
                layer.norm2.bias.copy_(t(p["n2_b"]))
            net.head.weight.copy_(t(params["head"][0].T))
            net.head.bias.copy_(t(params["head"][1]))
        return net.eval()

    ident = lambda a: a  # noqa: E731
    return Bench("transformer", transformer_logits, params, xs,
                 _targets(transformer_logits, params, xs), 50, torch_model, ident, ident)


MODELS = {"mlp": mlp, "cnn": cnn, "transformer": transformer}
#: Models of the "defaults" table (benchmarks/defaults.py): the three above and a max-pool CNN.
DEFAULTS_MODELS = {"mlp": mlp, "cnn": cnn, "cnn_pool": cnn_pool, "transformer": transformer}
