"""jig.metrics against Captum's and Quantus's metrics on the same CNN, batch and perturbations.

The model is ``benchmarks/_models.cnn`` (28x28x1, three 3x3 ReLU convolutions, a dense
head; 16 images), the same weights in JAX and torch. Each metric is timed for the whole
batch (jig: one ``jax.jit(jax.vmap(metric))`` call; the peers: one call on the batch),
repetitions interleaved, medians; the values are checked to agree first wherever the
two libraries compute the same definition on the same perturbations:

| metric | jig | Captum | Quantus |
|---|---|---|---|
| infidelity, 10 samples, N(0, 0.1²) | ``infidelity`` | ``infidelity`` (same I: agreement checked) | ``Infidelity`` (its own, patch-based definition: timed only) |
| sensitivity_max, IG 16 steps, r = 0.02, 10 samples | ``sensitivity_max`` | ``sensitivity_max`` (same δ: checked) | ``MaxSensitivity`` (same explainer, own noise: timed only) |
| deletion, 16 steps of 49 pixels | ``deletion`` | (none) | ``PixelFlipping`` (same order and baseline: checked) |
| insertion, 16 steps | ``insertion`` | (none) | (none) |
| randomisation, IG 16 steps, 4 layers | ``randomization`` | (none) | ``MPRT`` (its own draws: timed only) |

By default torch runs with ``torch.set_num_threads(2)`` (``--torch-threads``) and XLA
with its default threads on two CPU devices, as ``benchmarks/peers.py`` does; jig is timed
in two forms (one ``vmap``-ed call, or per-example calls round-robin on the devices) and
the faster is reported. On the shared 2-core machine a 2-thread torch pool is ~10x slower
under load, so the figures in BUILD_NOTES pin both sides to one thread:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        ~/peers-venv/bin/python benchmarks/metrics.py --reps 5 --torch-threads 1

Run it in the peers' venv (``/work/shared/PEERS.md``; ``--quick``: 4 images, 2 repetitions).
"""

from __future__ import annotations

import os

# two CPU devices (before JAX starts), as in benchmarks/peers.py: the "rr" form places the
# examples round-robin on them, so that asynchronous dispatch runs two side by side
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _models  # noqa: E402
import _timing  # noqa: E402

import jig  # noqa: E402
from jig import metrics  # noqa: E402

SAMPLES, IG_STEPS, RADIUS, STDDEV, DEL_STEPS = 10, 16, 0.02, 0.1, 16


def _peer_patches():
    """Quantus 0.6 calls np.trapz (gone in NumPy 2.4): restore it for this process only."""
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid


def build(batch: int):
    bench = _models.cnn(batch=batch)
    params = jax.tree.map(jnp.asarray, bench.params)
    xs, ts = jnp.asarray(bench.xs), jnp.asarray(bench.targets)
    logits = bench.logits
    rng = np.random.default_rng(0)
    noise = (rng.normal(size=(batch, SAMPLES, *bench.xs.shape[1:])) * STDDEV).astype(np.float32)
    delta = rng.uniform(-RADIUS, RADIUS, size=(batch, SAMPLES, *bench.xs.shape[1:])).astype(np.float32)

    def ig_of(t, p):
        return jig.ig(lambda x, p: logits(x, p)[t], 0.0, IG_STEPS)

    attrs = jax.jit(jax.vmap(lambda x, t, p: ig_of(t, p)(x, p), (0, 0, None)))(xs, ts, params)
    return bench, params, xs, ts, noise, delta, np.asarray(attrs), ig_of


def _forms(one, *args):
    """The two ways to run a per-example metric over the batch (``args``: batched, then params).

    ``vmap``: one ``jax.jit(jax.vmap(one))`` call; ``rr``: the jitted ``one`` per example,
    examples placed round-robin on the CPU devices (XLA:CPU runs several small programs
    faster than one large one, see BUILD_NOTES; a usage pattern, not a jig feature).
    """
    *batched, params = args
    fn_v = jax.jit(jax.vmap(one, (0,) * len(batched) + (None,)))
    fn_1 = jax.jit(one)
    devs = jax.devices()
    ps = [jax.device_put(params, d) for d in devs]
    rows = [tuple(jax.device_put(a[i], devs[i % len(devs)]) for a in batched) + (ps[i % len(devs)],)
            for i in range(len(batched[0]))]
    return {"vmap": lambda: fn_v(*batched, params), "rr": lambda: [fn_1(*r) for r in rows]}


def jig_contenders(bench, params, xs, ts, noise, delta, attrs, ig_of):
    logits = bench.logits
    A = jnp.asarray(attrs)
    I, D = jnp.asarray(noise), jnp.asarray(delta)
    prob = lambda x, t, p: jax.nn.softmax(logits(x, p))[t]  # noqa: E731
    per_example = {
        "infidelity": (lambda x, t, a, i, p: metrics.infidelity(lambda x: logits(x, p)[t], x, a, perturb=i),
                       xs, ts, A, I),
        "sensitivity_max": (lambda x, t, d, p: metrics.sensitivity_max(lambda x: ig_of(t, p)(x, p), x, perturb=d),
                            xs, ts, D),
        "deletion": (lambda x, t, a, p: metrics.deletion(lambda x: prob(x, t, p), x, a, baseline=jnp.min(x),
                                                         steps=DEL_STEPS), xs, ts, A),
        "insertion": (lambda x, t, a, p: metrics.insertion(lambda x: prob(x, t, p), x, a, steps=DEL_STEPS),
                      xs, ts, A),
        "randomization": (lambda x, t, p: metrics.randomization(lambda p, x: ig_of(t, p)(x, p), p, x,
                                                                key=jax.random.key(0)).similarity, xs, ts),
    }
    out = {}
    for name, (one, *batched) in per_example.items():
        for form, fn in _forms(one, *batched, params).items():
            out[f"{name}/{form}"] = fn
    return out


def peer_contenders(bench, noise, delta, attrs):
    import torch
    from captum.attr import IntegratedGradients
    from captum.metrics import infidelity, sensitivity_max

    import quantus

    _peer_patches()
    net = bench.torch_model()
    xt = torch.from_numpy(bench.to_torch(bench.xs))
    tt = torch.from_numpy(bench.targets.astype(np.int64))
    at = torch.from_numpy(bench.to_torch(attrs))
    b = len(bench.xs)
    noise_t = torch.from_numpy(bench.to_torch(noise.reshape(b * SAMPLES, *noise.shape[2:])))
    delta_t = torch.from_numpy(bench.to_torch(delta.reshape(b * SAMPLES, *delta.shape[2:])))
    x_np, a_np, y_np = bench.to_torch(bench.xs), bench.to_torch(attrs), bench.targets.astype(np.int64)

    def captum_ig(inputs, target, model=None):
        return IntegratedGradients(model or net).attribute(inputs, target=target, n_steps=IG_STEPS,
                                                          method="gausslegendre", internal_batch_size=256)

    def quantus_explain(model, inputs, targets, **kwargs):  # Quantus's explain_func protocol, Captum's IG inside
        out = captum_ig(torch.as_tensor(inputs), torch.as_tensor(targets), model)
        return out.detach().numpy()

    def c_infid():
        return infidelity(net, lambda x: (noise_t, x - noise_t), xt, at, target=tt, n_perturb_samples=SAMPLES)

    def c_sens():
        return sensitivity_max(captum_ig, xt, perturb_func=lambda x: x + delta_t, n_perturb_samples=SAMPLES,
                               target=tt)

    q_kw = dict(disable_warnings=True, display_progressbar=False)
    q_infid = quantus.Infidelity(n_perturb_samples=SAMPLES, **q_kw)
    q_sens = quantus.MaxSensitivity(nr_samples=SAMPLES, lower_bound=RADIUS, **q_kw)
    q_pf = quantus.PixelFlipping(features_in_step=x_np[0].size // DEL_STEPS, perturb_baseline="black", **q_kw)
    q_mprt = quantus.MPRT(layer_order="top_down", abs=False, normalise=False, **q_kw)
    call = dict(model=net, x_batch=x_np, y_batch=y_np, device="cpu", channel_first=True)
    return {
        "captum infidelity": c_infid,
        "captum sensitivity_max": c_sens,
        "quantus Infidelity": lambda: q_infid(a_batch=a_np, **call),
        "quantus MaxSensitivity": lambda: q_sens(a_batch=a_np, explain_func=quantus_explain, **call),
        "quantus PixelFlipping": lambda: q_pf(a_batch=a_np, **call),
        "quantus MPRT": lambda: q_mprt(a_batch=a_np, explain_func=quantus_explain, **call),
    }


def check_agreement(jig_fns, peer_fns, bench):
    """The metrics both sides define identically must give the same numbers."""
    out = {}
    j = np.asarray(jig_fns["infidelity/vmap"]())
    np.testing.assert_allclose(np.asarray(jig_fns["infidelity/rr"]()), j, rtol=1e-5, atol=1e-9)
    c = peer_fns["captum infidelity"]().numpy()
    np.testing.assert_allclose(j, c, rtol=1e-3, atol=1e-7)
    out["infidelity_max_rel_diff"] = float(np.max(np.abs(j - c) / np.abs(c)))
    j = np.asarray(jig_fns["sensitivity_max/vmap"]())
    np.testing.assert_allclose(np.asarray(jig_fns["sensitivity_max/rr"]()), j, rtol=1e-4, atol=1e-7)
    c = peer_fns["captum sensitivity_max"]().numpy()
    np.testing.assert_allclose(j, c, rtol=1e-2, atol=1e-4)  # IG of a ReLU net: float32 kinks move a little
    out["sensitivity_max_max_rel_diff"] = float(np.max(np.abs(j - c) / np.abs(c)))
    j = np.asarray(jig_fns["deletion/vmap"]().values)[:, 1:]
    np.testing.assert_allclose(np.stack([c.values[1:] for c in jig_fns["deletion/rr"]()]), j, rtol=1e-5, atol=1e-8)
    q = np.asarray(peer_fns["quantus PixelFlipping"](), np.float64)
    np.testing.assert_allclose(j, q, rtol=1e-3, atol=1e-5)
    out["deletion_max_abs_diff"] = float(np.max(np.abs(j - q)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--quick", action="store_true", help="batch 4, 2 repetitions")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads (default 2: the cores)")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.reps = 4, 2
    import torch

    torch.set_num_threads(args.torch_threads)
    bench, params, xs, ts, noise, delta, attrs, ig_of = build(args.batch)
    jig_fns = jig_contenders(bench, params, xs, ts, noise, delta, attrs, ig_of)
    peer_fns = peer_contenders(bench, noise, delta, attrs)
    agree = check_agreement(jig_fns, peer_fns, bench)
    print(f"agreement: {agree}")
    times = _timing.interleaved({**{f"jig {k}": v for k, v in jig_fns.items()}, **peer_fns}, reps=args.reps)
    load = os.getloadavg()
    print(f"\nCNN 28x28, batch {args.batch}, torch threads {torch.get_num_threads()}, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}, {len(jax.devices())} CPU device(s); load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; medians of {args.reps} interleaved repetitions")
    rows = [("infidelity", "captum infidelity", "quantus Infidelity"),
            ("sensitivity_max", "captum sensitivity_max", "quantus MaxSensitivity"),
            ("deletion", None, "quantus PixelFlipping"),
            ("insertion", None, None),
            ("randomization", None, "quantus MPRT")]
    print("| metric | jig s (form) | jig vmap s | Captum s | Quantus s | Captum / jig | Quantus / jig |\n"
          "|---|---|---|---|---|---|---|")
    table = {}
    for name, cap, qua in rows:
        form = min(("vmap", "rr"), key=lambda m: times[f"jig {name}/{m}"]["median_s"])
        j = times[f"jig {name}/{form}"]["median_s"]
        c = times[cap]["median_s"] if cap else None
        q = times[qua]["median_s"] if qua else None
        fmt = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731
        ratio = lambda v: "—" if v is None else f"{v / j:.1f}x"  # noqa: E731
        print(f"| {name} | {fmt(j)} ({form}) | {fmt(times[f'jig {name}/vmap']['median_s'])} | {fmt(c)} | {fmt(q)} "
              f"| {ratio(c)} | {ratio(q)} |")
        table[name] = {"jig_s": j, "jig_form": form, "captum_s": c, "quantus_s": q}
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": _timing.machine(), "agreement": agree, "table": table,
                                               "times": times, "batch": args.batch}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
