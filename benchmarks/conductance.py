"""``jig.conductance`` against Captum's ``LayerConductance`` on ported models: agreement and speed.

Two jobs (run in the peers' venv, see /work/shared/PEERS.md):

    ~/peers-venv/bin/python benchmarks/conductance.py --golden    # writes tests/data/conductance_reference.npz
    ~/peers-venv/bin/python benchmarks/conductance.py [--reps 5]  # times both on benchmarks/_models.cnn

The same weights (drawn in NumPy) run in torch and in Flax linen:

- ``mlp``: 6 -> 16 -> ReLU -> 16 -> ReLU -> 3, conductance of the second dense layer's
  16 units (Captum's layer ``net[2]``, linen's ``"dense2"``);
- ``cnn``: the tiny CNN of ``benchmarks/smooth.py`` (8x8x1, conv 4, tanh, conv 8 stride
  2, tanh, dense 10), conductance of ``conv2``'s 4x4x8 units.

What is compared. Captum's ``LayerConductance`` evaluates the layer at ``n + 1`` nodes of
its rule and sums ``∂F/∂y(α_k) · (y(α_{k+1}) - y(α_k))`` for ``k < n`` (a finite
difference for ``dy/dα``, the gradient at the left node); jig integrates
``∂F/∂y · dy/dα`` with the exact ``dy/dα`` (``jax.jvp``) and the rule's weights. So:

1. the golden file stores Captum at ``n = 16`` (``gausslegendre`` and ``riemann_middle``:
   ``riemann_trapezoid`` has the (n-1)/n weights quirk of PEERS.md; not used), and
   ``tests/test_conductance.py`` reproduces those numbers exactly with Captum's sum
   written over jig's ``split`` functions: the port (weights, layouts, layer) is right;
2. it stores Captum at ``n = 2048`` (its error falls like 1/n: ~3e-4 of the largest
   unit here), and jig's conductance (64 Gauss-Legendre nodes on the tanh CNN, 512 on
   the ReLU MLP, whose integrand jumps) must agree with it to ~1e-3;
3. Captum's ``NeuronIntegratedGradients`` for one hidden unit, against the documented
   one-liner ``jig.ig(lambda x, p: s.bottom(p, x)[unit], 0.0, steps)``.

Timing: the 16 digits-like 28x28 images and CNN of ``benchmarks/_models`` (as a linen
module with the same weights), conductance of the second convolution's 14x14x32
units for each image's predicted class, ``--steps`` Gauss-Legendre nodes in both,
Captum at each ``internal_batch_size`` in ``--ibs`` (its best reported), jig as
``jax.jit(jax.vmap(...))``. Timed in turns (medians); torch threads: ``--threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLDEN = ROOT / "tests" / "data" / "conductance_reference.npz"
sys.path.insert(0, str(HERE))

from smooth import tiny_torch, tiny_weights  # noqa: E402  (the same tiny CNN)

N_LOW, N_HIGH, UNIT = 16, 2048, 5
#: jig's Gauss-Legendre nodes per model: the ReLU MLP's integrand jumps where a unit
#: switches, so every rule converges like 1/n there (512 nodes: ~1e-3); the tanh CNN's is smooth.
JIG_STEPS = {"mlp": 512, "cnn": 64}


# --------------------------------------------------------------------------- models


def mlp_weights(seed: int = 3) -> dict:
    """The MLP's weights in torch layout ((out, in) matrices), float32."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    out = {}
    for i, (n_in, n_out) in enumerate(((6, 16), (16, 16), (16, 3))):
        out[f"mlp{i}_w"] = f32(rng.normal(size=(n_out, n_in)) * np.sqrt(2.0 / n_in))
        out[f"mlp{i}_b"] = f32(rng.normal(size=n_out) * 0.1)
    return out


def mlp_torch(w: dict):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 3))
    with torch.no_grad():
        for i, layer in enumerate((net[0], net[2], net[4])):
            layer.weight.copy_(torch.from_numpy(w[f"mlp{i}_w"]))
            layer.bias.copy_(torch.from_numpy(w[f"mlp{i}_b"]))
    return net.eval()


def linen_models():
    """``(MLP, TinyCNN, BenchCNN)`` linen modules for ONE example (no batch axis)."""
    import flax.linen as nn
    import jax.numpy as jnp

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.relu(nn.Dense(16, name="dense1")(x))
            h = nn.relu(nn.Dense(16, name="dense2")(h))
            return nn.Dense(3, name="out")(h)

    class TinyCNN(nn.Module):  # x: (8, 8, 1), NHWC without the batch axis
        @nn.compact
        def __call__(self, x):
            h = jnp.tanh(nn.Conv(4, (3, 3), padding=1, name="conv1")(x[None]))
            h = jnp.tanh(nn.Conv(8, (3, 3), strides=2, padding=1, name="conv2")(h))
            return nn.Dense(10, name="dense")(jnp.transpose(h[0], (2, 0, 1)).reshape(-1))  # torch's (C, H, W)

    class BenchCNN(nn.Module):  # benchmarks/_models.cnn: x (28, 28, 1)
        @nn.compact
        def __call__(self, x):
            h = x[None]
            for i, (c, s) in enumerate(((16, 1), (32, 2), (32, 2))):
                h = nn.relu(nn.Conv(c, (3, 3), strides=s, padding=1, name=f"conv{i}")(h))
            return nn.Dense(10, name="head")(jnp.transpose(h[0], (2, 0, 1)).reshape(-1))

    return MLP(), TinyCNN(), BenchCNN()


def linen_params(w: dict) -> tuple[dict, dict]:
    """The golden weights as linen variables ``(mlp, cnn)``."""
    mlp = {"params": {name: {"kernel": w[f"mlp{i}_w"].T, "bias": w[f"mlp{i}_b"]}
                      for i, name in enumerate(("dense1", "dense2", "out"))}}
    conv = lambda k: np.transpose(k, (2, 3, 1, 0))  # noqa: E731 - OIHW -> HWIO
    cnn = {"params": {"conv1": {"kernel": conv(w["conv1_w"]), "bias": w["conv1_b"]},
                      "conv2": {"kernel": conv(w["conv2_w"]), "bias": w["conv2_b"]},
                      "dense": {"kernel": w["dense_w"].T, "bias": w["dense_b"]}}}
    return mlp, cnn


# --------------------------------------------------------------------------- golden


def golden(seed: int = 0) -> dict:
    import torch
    from captum.attr import LayerConductance, NeuronIntegratedGradients

    torch.set_num_threads(1)
    w = dict(tiny_weights(seed), **mlp_weights())
    rng = np.random.default_rng(seed + 7)
    out = dict(w)
    mlp = mlp_torch(w)
    cnn = tiny_torch(w)
    xm = rng.normal(size=(4, 6)).astype(np.float32)
    xc = rng.uniform(0.0, 1.0, size=(3, 1, 8, 8)).astype(np.float32)
    for name, net, layer, x in (("mlp", mlp, mlp[2], xm), ("cnn", cnn, cnn[2], xc)):
        xt = torch.from_numpy(x)
        with torch.no_grad():
            t = net(xt).argmax(-1)
        out[f"{name}_x"], out[f"{name}_targets"] = x, t.numpy().astype(np.int32)
        lc = LayerConductance(net, layer)
        for method, n in (("gausslegendre", N_LOW), ("riemann_middle", N_LOW), ("gausslegendre", N_HIGH)):
            a = lc.attribute(xt, baselines=torch.zeros_like(xt), target=t, n_steps=n, method=method,
                             internal_batch_size=256)
            out[f"{name}_{method}_{n}"] = a.detach().numpy().astype(np.float32)
    nig = NeuronIntegratedGradients(mlp, mlp[2])
    a = nig.attribute(torch.from_numpy(xm), neuron_selector=UNIT, baselines=0.0, n_steps=N_LOW, method="gausslegendre")
    out["mlp_neuron_ig"] = a.detach().numpy().astype(np.float32)
    return out


def captum_alphas(method: str, n: int) -> np.ndarray:
    """Captum's ``n`` nodes of ``method`` (its ``approximation_parameters``)."""
    if method == "gausslegendre":
        return 0.5 * (1 + np.polynomial.legendre.leggauss(n)[0])
    return np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)


def captum_sum(bottom, top, f, params, x, alphas):
    """Captum's LayerConductance sum, ``Σ_k ∂F/∂y(α_k) (y(α_{k+1}) - y(α_k))``, in JAX."""
    import jax
    import jax.numpy as jnp

    alphas = jnp.asarray(alphas, jnp.float32)
    ys = jax.vmap(lambda a: bottom(params, a * x))(alphas)
    grads = jax.vmap(lambda a, y: jax.grad(lambda yy: f(top(params, a * x, yy)))(y))(alphas[:-1], ys[:-1])
    return jnp.sum(grads * (ys[1:] - ys[:-1]), axis=0)


def jig_side(ref: dict):
    """Everything the tests compute with jig on the golden inputs, as a dict of arrays."""
    import jax
    import jax.numpy as jnp

    import jig
    from jig.conductance import conductance

    MLP, TinyCNN, _ = linen_models()
    pm, pc = linen_params(ref)
    res = {}
    for name, model, params, layer, to_jax in (
        ("mlp", MLP, pm, "dense2", lambda a: a),
        ("cnn", TinyCNN, pc, "conv2", lambda a: np.moveaxis(a, 1, -1)),  # NCHW -> NHWC
    ):
        s = jig.flax.split(model, layer)
        xs, ts = jnp.asarray(to_jax(ref[f"{name}_x"])), jnp.asarray(ref[f"{name}_targets"])
        for method in ("gausslegendre", "riemann_middle"):
            al = captum_alphas(method, N_LOW + 1)
            fd = jax.jit(jax.vmap(lambda x, t, al: captum_sum(s.bottom, s.top, lambda o: o[t], params, x, al),
                                  in_axes=(0, 0, None)))
            res[f"{name}_captum_sum_{method}"] = np.asarray(fd(xs, ts, al))
        steps = JIG_STEPS[name]
        cond = jax.vmap(lambda x, t: conductance(s.bottom, s.top, lambda o: o[t], 0.0, steps, return_delta=True)(params, x))
        out = cond(xs, ts)
        res[f"{name}_jig"], res[f"{name}_jig_delta"] = np.asarray(out.attributions), np.asarray(out.delta)
        if name == "mlp":
            neuron = jig.ig(lambda x, p: s.bottom(p, x)[UNIT], 0.0, N_LOW)
            res["mlp_neuron_ig"] = np.asarray(jax.vmap(neuron, in_axes=(0, None))(xs, params))
    return res


def from_jax_layout(name: str, a: np.ndarray) -> np.ndarray:
    """jig's layer output layout -> Captum's (the CNN's (B, 1, H, W, C) -> (B, C, H, W))."""
    return np.moveaxis(a[:, 0], -1, 1) if name == "cnn" else a


def compare(ref: dict, ours: dict) -> dict:
    """Relative max differences (to each reference's max |value|)."""
    rel = lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))  # noqa: E731
    out = {}
    for name in ("mlp", "cnn"):
        for method in ("gausslegendre", "riemann_middle"):
            out[f"{name} captum sum ({method}, {N_LOW})"] = rel(
                from_jax_layout(name, ours[f"{name}_captum_sum_{method}"]), ref[f"{name}_{method}_{N_LOW}"])
        out[f"{name} jig {JIG_STEPS[name]} GL vs captum {N_HIGH}"] = rel(from_jax_layout(name, ours[f"{name}_jig"]),
                                                           ref[f"{name}_gausslegendre_{N_HIGH}"])
        out[f"{name} jig {JIG_STEPS[name]} GL vs captum {N_LOW}"] = rel(from_jax_layout(name, ours[f"{name}_jig"]),
                                                          ref[f"{name}_gausslegendre_{N_LOW}"])
    out["mlp neuron IG"] = rel(ours["mlp_neuron_ig"], ref["mlp_neuron_ig"])
    return out


# --------------------------------------------------------------------------- timing


def bench(args) -> dict:
    import jax
    import jax.numpy as jnp
    import torch
    from captum.attr import LayerConductance

    import _models
    import _timing

    import jig
    from jig.conductance import conductance

    torch.set_num_threads(args.threads)
    b = _models.cnn()
    net = b.torch_model()
    _, _, model = linen_models()
    params = {"params": {f"conv{i}": {"kernel": jnp.asarray(w), "bias": jnp.asarray(bb)}
                         for i, (w, bb) in enumerate(b.params["convs"])}}
    params["params"]["head"] = {"kernel": jnp.asarray(b.params["head"][0]), "bias": jnp.asarray(b.params["head"][1])}
    s = jig.flax.split(model, "conv1")
    xs, ts = jnp.asarray(b.xs), jnp.asarray(b.targets)
    xt, tt = torch.from_numpy(b.to_torch(b.xs)), torch.from_numpy(b.targets.astype(np.int64))

    ours = jax.jit(jax.vmap(lambda x, t: conductance(s.bottom, s.top, lambda o: o[t], 0.0, args.steps)(params, x)
                            .attributions))
    lc = LayerConductance(net, net.convs[1])

    def captum(ibs, steps=args.steps):
        return lambda: lc.attribute(xt, target=tt, n_steps=steps, method="gausslegendre", internal_batch_size=ibs)

    a_jig = np.moveaxis(np.asarray(ours(xs, ts))[:, 0], -1, 1)
    a_cap = captum(256)().detach().numpy()
    a_conv = captum(256, 1024)().detach().numpy()
    rel = lambda a, c: float(np.max(np.abs(a - c)) / np.max(np.abs(c)))  # noqa: E731
    fns = {"jig vmap": lambda: ours(xs, ts)}
    for chunk in args.chunks:  # one example per call (benchmarks/peers.py's "loop" mode)
        one = jax.jit(lambda x, t, chunk=chunk: conductance(
            s.bottom, s.top, lambda o: o[t], 0.0, args.steps, chunk_size=chunk or None)(params, x).attributions)
        fns[f"jig loop chunk_size={chunk or None}"] = (lambda one: lambda: [one(x, t) for x, t in zip(xs, ts)])(one)
    for ibs in args.ibs:
        fns[f"captum ibs={ibs}"] = captum(None if ibs == 0 else ibs)
    first = {k: _timing.once(fn) for k, fn in fns.items() if k.startswith("jig")}
    times = _timing.interleaved(fns, reps=args.reps, warmup=0)
    best = min((k for k in times if k.startswith("captum")), key=lambda k: times[k]["median_s"])
    best_jig = min((k for k in times if k.startswith("jig")), key=lambda k: times[k]["median_s"])
    return {
        "batch": len(b.xs), "steps": args.steps, "layer": "second conv (14x14x32)", "torch_threads": args.threads,
        "rel_diff_same_steps": rel(a_jig, a_cap), "rel_diff_vs_captum_1024": rel(a_jig, a_conv),
        "captum_same_steps_vs_captum_1024": rel(a_cap, a_conv),
        "jig_first_call_s": first, "times": times, "captum_best": best, "jig_best": best_jig,
        "speedup_vs_best_captum": times[best]["median_s"] / times[best_jig]["median_s"],
        "loadavg": os.getloadavg(), "machine": _timing.machine(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--golden", action="store_true", help="write tests/data/conductance_reference.npz")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ibs", type=int, nargs="+", default=[0, 64, 256, 1024])
    p.add_argument("--chunks", type=int, nargs="+", default=[8, 0],
                   help="conductance chunk_size values for the per-example loop (0: none)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    if args.golden:
        ref = golden()
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(GOLDEN, **ref)
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
        for k, v in compare(ref, jig_side(ref)).items():
            print(f"{k:40s} max |diff| / max |ref| = {v:.2e}")
        return 0
    res = bench(args)
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
