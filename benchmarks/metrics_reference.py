"""Golden values for ``jig.metrics`` from the peers: Captum's infidelity and sensitivity_max,
Quantus's PixelFlipping, on a small torch CNN whose weights are drawn in NumPy.

Run it in the peers' venv (torch, captum, quantus; see /work/shared/PEERS.md) to
regenerate ``tests/data/metrics_reference.npz``:

    ~/peers-venv/bin/python benchmarks/metrics_reference.py     # a few seconds

Everything random is drawn here with NumPy and stored (inputs, weights, the infidelity
perturbations ``I``, the sensitivity perturbations ``δ``), and fed to the peers through
their ``perturb_func``s, so ``tests/test_metrics.py`` can recompute every value with
``jig.metrics`` on the same numbers (``perturb=`` given as an array) in a venv without
torch. The model, in torch layout (``x``: ``(1, 8, 8)``, channels first):

    conv 3x3 (1 -> 4, padding 1) -> tanh -> conv 3x3 stride 2 (4 -> 8, padding 1) -> tanh
    -> flatten (C, H, W) -> dense (128 -> 10)

Peer conventions used (Captum 0.9, Quantus 0.6):
- Captum's ``perturb_func`` receives ``repeat_interleave(x, S)`` (row ``i*S + s`` is
  input ``i``, sample ``s``) and returns ``(I, x - I)``; for "multiply by inputs" the
  ``infidelity_perturb_func_decorator(True)`` form returns only ``x - I``.
- Captum's ``Saliency`` is called with ``abs=False`` (the raw gradient).
- Quantus's ``PixelFlipping(features_in_step=4, perturb_baseline="black")`` replaces
  entries by the image minimum, most attributed first, and records the softmax
  probability of ``y`` after each step (16 steps for 64 entries).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "metrics_reference.npz")
BATCH, SAMPLES, STEPS_IG, FEATURES_IN_STEP = 4, 8, 16, 4


def weights(seed: int = 0) -> dict:
    """The CNN's weights in torch layout (OIHW kernels, (out, in) dense), float32."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return {
        "conv1_w": f32(rng.normal(size=(4, 1, 3, 3)) / 3.0), "conv1_b": f32(rng.normal(size=4) * 0.1),
        "conv2_w": f32(rng.normal(size=(8, 4, 3, 3)) / 6.0), "conv2_b": f32(rng.normal(size=8) * 0.1),
        "dense_w": f32(rng.normal(size=(10, 128)) / np.sqrt(128) * 3), "dense_b": f32(rng.normal(size=10) * 0.1),
    }


def torch_model(w: dict):
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.Tanh(),
        torch.nn.Flatten(), torch.nn.Linear(128, 10),
    )
    with torch.no_grad():
        for layer, name in ((net[0], "conv1"), (net[2], "conv2"), (net[5], "dense")):
            layer.weight.copy_(torch.from_numpy(w[f"{name}_w"]))
            layer.bias.copy_(torch.from_numpy(w[f"{name}_b"]))
    return net.eval()


def compute(seed: int = 0) -> dict:
    """Inputs, weights, perturbations and the peers' metric values, as a dict of arrays."""
    import torch
    from captum.attr import IntegratedGradients, Saliency
    from captum.metrics import infidelity, infidelity_perturb_func_decorator, sensitivity_max

    import quantus

    torch.set_num_threads(1)
    w = weights(seed)
    net = torch_model(w)
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(0.0, 1.0, size=(BATCH, 1, 8, 8)).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        logits = net(xt).numpy()
    y = logits.argmax(-1).astype(np.int64)
    yt = torch.from_numpy(y)
    noise = (rng.normal(size=(BATCH, SAMPLES, 1, 8, 8)) * 0.1).astype(np.float32)  # infidelity's I
    delta = rng.uniform(-0.02, 0.02, size=(BATCH, SAMPLES, 1, 8, 8)).astype(np.float32)  # sensitivity's δ
    noise_t = torch.from_numpy(noise.reshape(BATCH * SAMPLES, 1, 8, 8))  # repeat_interleave order
    delta_t = torch.from_numpy(delta.reshape(BATCH * SAMPLES, 1, 8, 8))

    saliency = Saliency(net).attribute(xt, target=yt, abs=False).detach()
    ig = IntegratedGradients(net).attribute(xt, target=yt, n_steps=STEPS_IG, method="gausslegendre").detach()

    def perturb(inputs):
        assert inputs.shape[0] == BATCH * SAMPLES
        return noise_t, inputs - noise_t

    @infidelity_perturb_func_decorator(True)
    def perturb_mbi(inputs):
        return inputs - noise_t

    def shift(inputs):
        return inputs + delta_t

    out = {
        "x": x, "y": y, "logits": logits, "noise": noise, "delta": delta,
        "saliency": saliency.numpy(), "ig": ig.numpy(),
        **{f"w_{k}": v for k, v in w.items()},
    }
    out["infidelity"] = infidelity(net, perturb, xt, saliency, target=yt, n_perturb_samples=SAMPLES).numpy()
    out["infidelity_normalized"] = infidelity(net, perturb, xt, saliency, target=yt, n_perturb_samples=SAMPLES,
                                              normalize=True).numpy()
    out["infidelity_ig_mbi"] = infidelity(net, perturb_mbi, xt, ig, target=yt, n_perturb_samples=SAMPLES).numpy()
    explain = lambda inputs, target: Saliency(net).attribute(inputs, target=target, abs=False)  # noqa: E731
    out["sensitivity_max"] = sensitivity_max(explain, xt, perturb_func=shift, n_perturb_samples=SAMPLES,
                                             target=yt).numpy()
    pf = quantus.PixelFlipping(features_in_step=FEATURES_IN_STEP, perturb_baseline="black",
                               disable_warnings=True, display_progressbar=False)
    curves = pf(model=net, x_batch=x, y_batch=y, a_batch=saliency.numpy(), device="cpu", channel_first=True)
    out["pixel_flipping"] = np.asarray(curves, np.float32)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=OUT)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = compute(args.seed)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1000:.0f} KB)")
    for k in ("infidelity", "infidelity_normalized", "infidelity_ig_mbi", "sensitivity_max"):
        print(f"  {k}: {np.round(out[k], 6).tolist()}")
    print(f"  pixel_flipping: shape {out['pixel_flipping'].shape}, first row {np.round(out['pixel_flipping'][0], 4).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
