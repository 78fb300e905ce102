"""jig against its peers: Captum (PyTorch) and PAIR's ``saliency`` (driving the JAX model).

Figures (all ratios measured inside one process, repetitions interleaved, medians):

- equal steps: jig vs Captum ``IntegratedGradients`` at each model's step count, both
  with the ``riemann_middle`` nodes, after checking that the attributions agree; Captum
  at its best ``internal_batch_size`` (swept), jig at its best ``chunk_size`` (swept).
- time to 1%: each library's fastest way to get the batch within 1% completeness error
  (``Σ_i |delta_i| <= 0.01 Σ_i |F(x_i) - F(0)|``): for each rule the smallest
  steps on a grid that meets it (Captum's own ``return_convergence_delta`` confirms its
  choice), plus jig's adaptive steps (``tol=0.01``); the fastest candidate of each
  library is then timed against the other's.
- saliency: ``saliency.core.IntegratedGradients`` and ``BlurIG`` loop over examples and
  call a jitted JAX gradient through ``call_model_function``; jig runs the batch.

Run through ``python benchmarks/run.py``; ``python benchmarks/peers.py [--quick]`` runs
this part alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

# two CPU devices (before JAX starts): jig's per-example "rr" mode spreads examples over
# them; everything else runs on device 0 as usual. An explicit XLA_FLAGS wins.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _models  # noqa: E402
import _timing  # noqa: E402

import jig  # noqa: E402

GRID = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
JIG_RULES = ("gauss_legendre", "riemann_middle", "riemann_trapezoid", "riemann_left", "riemann_right")
CAPTUM_METHODS = {  # captum's name for the same nodes
    "gauss_legendre": "gausslegendre",
    "riemann_middle": "riemann_middle",
    "riemann_trapezoid": "riemann_trapezoid",
    "riemann_left": "riemann_left",
    "riemann_right": "riemann_right",
}


# --------------------------------------------------------------------------- jig


def jig_batch(bench: _models.Bench, steps: int, *, rule="gauss_legendre", chunk_size=None,
              tol=None, max_steps=None, return_delta=False, return_info=False, mode="vmap", hoist=True):
    """``() -> A`` (or ``(A, delta/info)``) for the whole batch.

    ``mode="vmap"``: one ``jax.jit(jax.vmap(explainer))`` call for the batch;
    ``mode="loop"``: the jitted explainer called once per example (a list of results),
    which on XLA:CPU is often faster: each call's working set stays in cache;
    ``mode="rr"``: the same loop with the examples placed round-robin on the CPU
    devices (``jax.devices()``), so JAX's asynchronous dispatch runs them side by side;
    ``mode="sharded"``: :func:`jig.sharded`, the batch split across the CPU devices.
    """
    logits = bench.logits

    def one(x, t, p):
        return jig.ig(lambda x, p: logits(x, p)[t], 0.0, steps, rule=rule, chunk_size=chunk_size,
                      tol=tol, max_steps=max_steps, return_delta=return_delta, return_info=return_info,
                      hoist=hoist)(x, p)

    xs, ts = jnp.asarray(bench.xs), jnp.asarray(bench.targets)
    params = jax.tree.map(jnp.asarray, bench.params)
    if mode in ("loop", "rr"):
        return _per_example(one, xs, ts, params, mode)
    if mode == "sharded":
        fn = jig.sharded(one, in_axes=(0, 0, None))
        params = jax.device_put(params, jax.sharding.NamedSharding(
            jax.make_mesh((len(jax.devices()),), ("batch",)), jax.sharding.PartitionSpec()))
        return lambda: fn(xs, ts, params)
    fn = jax.jit(jax.vmap(one, in_axes=(0, 0, None)))
    return lambda: fn(xs, ts, params)


def _per_example(one, xs, ts, params, mode):
    """``() -> [one(x_i, t_i, params)]``: the jitted ``one`` called per example, on device 0
    (``mode="loop"``) or with the examples placed round-robin on the devices (``"rr"``)."""
    fn1 = jax.jit(one)
    devs = jax.devices() if mode == "rr" else jax.devices()[:1]
    ps = [jax.device_put(params, d) for d in devs]
    rows = [(jax.device_put(xs[i], devs[i % len(devs)]), jax.device_put(ts[i], devs[i % len(devs)]),
             ps[i % len(devs)]) for i in range(len(xs))]
    return lambda: [fn1(*r) for r in rows]


def gaps(bench: _models.Bench) -> np.ndarray:
    """``F(x) - F(0)`` per example."""
    f = jax.vmap(lambda x, t, p: bench.logits(x, p)[t] - bench.logits(jnp.zeros_like(x), p)[t],
                 in_axes=(0, 0, None))
    return np.asarray(jax.jit(f)(jnp.asarray(bench.xs), jnp.asarray(bench.targets), bench.params))


def rel_err(delta, gap) -> float:
    """The batch's completeness error relative to its gaps: ``Σ|delta_i| / Σ|gap_i|``."""
    return float(np.sum(np.abs(np.asarray(delta))) / np.sum(np.abs(gap)))


def jig_steps_to(bench, rule, target, grid) -> int | None:
    """The smallest steps on ``grid`` whose worst relative completeness error <= target."""
    gap = gaps(bench)
    for n in grid:
        if rule == "riemann_trapezoid" and n < 2:
            continue
        _, delta = jig_batch(bench, n, rule=rule, return_delta=True)()
        if rel_err(delta, gap) <= target:
            return n
    return None


# --------------------------------------------------------------------------- captum


def captum_batch(bench, model, steps, method, ibs, return_delta=False):
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model)
    xt = torch.from_numpy(bench.to_torch(bench.xs))
    tt = torch.from_numpy(bench.targets.astype(np.int64))
    base = torch.zeros_like(xt)

    def run():
        return ig.attribute(xt, baselines=base, target=tt, n_steps=steps, method=method,
                            internal_batch_size=ibs, return_convergence_delta=return_delta)

    return run


def captum_ibs_candidates(bench, steps, quick):
    rows = len(bench.xs) * steps
    cands = [None] + [c for c in (4096, 1024, 512, 256, 128, 64) if c < rows]
    return cands[:3] if quick else cands


def best_captum_ibs(bench, model, steps, method, quick) -> tuple[Any, dict]:
    fns = {str(c): captum_batch(bench, model, steps, method, c)
           for c in captum_ibs_candidates(bench, steps, quick)}
    res = _timing.interleaved(fns, reps=2 if quick else 3)
    best = min(res, key=lambda k: res[k]["median_s"])
    return (None if best == "None" else int(best)), res


def best_jig_setting(bench, steps, rule, quick) -> tuple[tuple[str, int | None], dict]:
    """The fastest of batch modes (vmap / per-example loop) x chunk sizes (None, steps/8,
    steps/4; chunk loops of <= 8 chunks are unrolled in jig)."""
    chunks = [None, max(1, steps // 8)] + ([] if quick else [max(1, steps // 4)])
    modes = ("vmap", "loop") + (("rr", "sharded") if len(jax.devices()) > 1 else ())
    cands = [(m, c) for m in modes for c in chunks]
    fns = {f"{m}/{c}": jig_batch(bench, steps, rule=rule, chunk_size=c, mode=m) for m, c in cands}
    res = _timing.interleaved(fns, reps=2 if quick else 3)
    best = min(res, key=lambda k: res[k]["median_s"])
    return cands[list(fns).index(best)], res


def _scaled(setting, steps_then, steps_now):
    """The same batch mode and the same chunk fraction at another number of steps."""
    mode, chunk = setting
    return mode, (None if chunk is None else max(1, round(chunk * steps_now / steps_then)))


def captum_compare(bench: _models.Bench, quick: bool, reps: int) -> dict:
    import torch

    torch.manual_seed(0)
    model = bench.torch_model()
    n = bench.steps
    out: dict[str, Any] = {"model": bench.name, "batch": len(bench.xs), "steps": n,
                           "torch_threads": torch.get_num_threads()}
    # 1. agreement at equal steps, same nodes: jig evaluating the model whole at every
    # point (hoist=False, Captum's arithmetic) entry by entry; jig's default (the
    # affine first layer hoisted: points formed after it, so a ReLU exactly at a kink
    # may fall the other way) by the kink-tolerant check
    a_jig = np.asarray(jig_batch(bench, n, rule="riemann_middle", hoist=False)())
    a_cap = bench.from_torch(captum_batch(bench, model, n, "riemann_middle", None)().detach().numpy())
    scale = float(np.max(np.abs(a_jig)))
    err = float(np.max(np.abs(a_jig - a_cap)))
    out["agreement_max_abs_diff_rel"] = err / scale
    if not err <= 1e-4 * scale:
        raise AssertionError(f"{bench.name}: jig and Captum attributions differ by {err} (scale {scale})")
    out["agreement_hoisted"] = _timing.agreement(
        jig_batch(bench, n, rule="riemann_middle")(), a_cap, f"{bench.name}: jig (hoisted) vs Captum")
    # 2. equal steps, both at their best setting
    ibs, ibs_sweep = best_captum_ibs(bench, model, n, "riemann_middle", quick)
    (mode, chunk), chunk_sweep = best_jig_setting(bench, n, "riemann_middle", quick)
    res = _timing.interleaved({
        "jig": jig_batch(bench, n, rule="riemann_middle", chunk_size=chunk, mode=mode),
        "captum": captum_batch(bench, model, n, "riemann_middle", ibs),
        "jig_no_hoist": jig_batch(bench, n, rule="riemann_middle", chunk_size=chunk, mode=mode,
                                  hoist=False),
    }, reps=reps)
    out["equal_steps"] = {
        "captum_internal_batch_size": ibs, "jig_chunk_size": chunk, "jig_mode": mode,
        "captum_sweep": ibs_sweep, "jig_sweep": chunk_sweep,
        "jig_s": res["jig"]["median_s"], "captum_s": res["captum"]["median_s"],
        "speedup": res["captum"]["median_s"] / res["jig"]["median_s"],
        "jig_no_hoist_s": res["jig_no_hoist"]["median_s"],
        "speedup_no_hoist": res["captum"]["median_s"] / res["jig_no_hoist"]["median_s"],
    }
    # 3. time to 1% completeness error, each library's best rule
    out["to_1pct"] = time_to_target(bench, model, 0.01, ibs, (mode, chunk), n, quick, reps)
    return out


def time_to_target(bench, model, target, ibs, setting, steps_then, quick, reps) -> dict:
    gap = gaps(bench)
    grid = GRID[:9] if quick else GRID
    rules = JIG_RULES[:2] if quick else JIG_RULES
    needed = {r: jig_steps_to(bench, r, target, grid) for r in rules}
    jig_cands, cap_cands = {}, {}
    for rule, n in needed.items():
        if n is None:
            continue
        jig_cands[f"{rule}@{n}/vmap/None"] = jig_batch(bench, n, rule=rule)
        m, c = _scaled(setting, steps_then, n)  # the equal-steps winner's setting
        jig_cands[f"{rule}@{n}/{m}/{c}"] = jig_batch(bench, n, rule=rule, chunk_size=c, mode=m)
        # Captum's own delta must confirm the same steps (else try the next grid steps)
        method = CAPTUM_METHODS[rule]
        for m in [g for g in grid if g >= n]:
            _, d = captum_batch(bench, model, m, method, ibs, return_delta=True)()
            if rel_err(d.detach().numpy(), gap) <= target:
                for b in dict.fromkeys([ibs, None]):  # its equal-steps best, and all at once
                    cap_cands[f"{method}@{m}/ibs{b}"] = captum_batch(bench, model, m, method, b)
                break
    r_jig = _timing.interleaved(jig_cands, reps=2 if quick else 3)
    fastest = min(v["median_s"] for v in r_jig.values())
    # adaptive: every example to `target` on its own (stricter), at most 257 points; under
    # vmap the batch runs until its slowest example is done. Timed once first, and timed
    # again with the others only when that single run is within 1.5x of the fastest.
    adaptive = {}
    for rule in ("romberg", "riemann_trapezoid"):
        _, info = jig_batch(bench, 4, rule=rule, tol=target, max_steps=257, return_info=True)()
        if rel_err(info.delta, gap) > target:
            continue
        pts = np.asarray(info.points)
        name = f"adaptive-{rule}@4(points {int(pts.min())}-{int(pts.max())})"
        fn = jig_batch(bench, 4, rule=rule, tol=target, max_steps=257)
        _timing.once(fn)  # compiles
        single = _timing.once(fn)
        adaptive[name] = single
        if single < 1.5 * fastest:
            r_jig.update(_timing.interleaved({name: fn}, reps=2 if quick else 3))
            jig_cands[name] = fn
    r_cap = _timing.interleaved(cap_cands, reps=2 if quick else 3)
    best_jig = min(r_jig, key=lambda k: r_jig[k]["median_s"])
    best_cap = min(r_cap, key=lambda k: r_cap[k]["median_s"])
    final = _timing.interleaved({"jig": jig_cands[best_jig], "captum": cap_cands[best_cap]}, reps=reps)
    return {
        "target": target, "steps_needed": needed,
        "jig_candidates": {k: v["median_s"] for k, v in r_jig.items()},
        "jig_adaptive_single_run_s": adaptive,
        "captum_candidates": {k: v["median_s"] for k, v in r_cap.items()},
        "jig_best": best_jig, "captum_best": best_cap,
        "jig_s": final["jig"]["median_s"], "captum_s": final["captum"]["median_s"],
        "speedup": final["captum"]["median_s"] / final["jig"]["median_s"],
    }


# --------------------------------------------------------------------------- saliency


def saliency_compare(bench: _models.Bench, quick: bool, reps: int, blur: bool) -> dict:
    import saliency.core as saliency

    n = bench.steps
    grad = jax.jit(jax.vmap(jax.grad(lambda x, t, p: bench.logits(x, p)[t]), in_axes=(0, None, None)))
    params = jax.tree.map(jnp.asarray, bench.params)

    def call_model(xb, call_model_args=None, expected_keys=None):
        g = grad(jnp.asarray(xb, jnp.float32), call_model_args["t"], params)
        return {saliency.INPUT_OUTPUT_GRADIENTS: np.asarray(g)}

    examples = list(zip(bench.xs, bench.targets))
    if quick:
        examples = examples[:4]
    sub = bench._replace(xs=np.stack([e[0] for e in examples]),
                         targets=np.asarray([e[1] for e in examples], np.int32))
    ig = saliency.IntegratedGradients()

    def run_saliency():
        return [ig.GetMask(x, call_model, {"t": int(t)}, x_baseline=np.zeros_like(x),
                           x_steps=n, batch_size=n) for x, t in examples]

    # saliency's IG nodes: linspace(0, 1, n), each weighted 1/n
    lin = jig.rules.Rule("linspace", lambda m: (np.linspace(0, 1, m), np.full(m, 1.0 / m)))
    (mode, chunk), _ = best_jig_setting(sub, n, lin, quick)
    run_jig = jig_batch(sub, n, rule=lin, chunk_size=chunk, mode=mode)
    a_sal = np.stack(run_saliency())
    a_jig = np.asarray(jig_batch(sub, n, rule=lin, chunk_size=chunk)())
    scale = float(np.max(np.abs(a_jig)))
    err = float(np.max(np.abs(a_sal - a_jig)))
    # saliency forms its path points in float64 (NumPy alphas) before the float32 model,
    # jig in float32: a point 1 ulp apart can cross a ReLU kink and change one gradient,
    # so on ReLU models a few entries may differ; all others must agree to 1e-4.
    close = float(np.mean(np.abs(a_sal - a_jig) <= 1e-4 * scale))
    if not close >= 0.999:
        raise AssertionError(f"{bench.name}: jig and saliency IG differ by {err} (scale {scale}); "
                             f"only {close:.4%} of entries agree")
    res = _timing.interleaved({"jig": run_jig, "saliency": run_saliency}, reps=reps)
    out = {"model": bench.name, "batch": len(examples), "steps": n, "jig_chunk_size": chunk,
           "jig_mode": mode,
           "agreement_max_abs_diff_rel": err / scale, "agreement_fraction_close": close,
           "ig": {"jig_s": res["jig"]["median_s"], "saliency_s": res["saliency"]["median_s"],
                  "speedup": res["saliency"]["median_s"] / res["jig"]["median_s"]}}
    if blur and hasattr(jig.paths, "blur"):
        sigma = 5.0
        big = saliency.BlurIG()

        def run_blur_saliency():
            return [big.GetMask(x, call_model, {"t": int(t)}, max_sigma=sigma, steps=n, batch_size=n)
                    for x, t in examples]

        logits = sub.logits
        path = jig.paths.blur(sigma)
        def blur_one(x, t, p):
            return jig.ig(lambda x, p: logits(x, p)[t], None, n, path=path, rule="riemann_right",
                          chunk_size=chunk)(x, p)

        fn = jax.jit(jax.vmap(blur_one, in_axes=(0, 0, None)))
        xs, ts = jnp.asarray(sub.xs), jnp.asarray(sub.targets)
        if mode in ("loop", "rr"):
            run_blur_jig = _per_example(blur_one, xs, ts, params, mode)
        else:
            run_blur_jig = lambda: fn(xs, ts, params)  # noqa: E731
        b_sal, b_jig = np.stack(run_blur_saliency()).ravel(), np.asarray(fn(xs, ts, params)).ravel()
        res = _timing.interleaved({"jig": run_blur_jig, "saliency": run_blur_saliency}, reps=reps)
        out["blur_ig"] = {
            "max_sigma": sigma, "jig_s": res["jig"]["median_s"],
            "saliency_s": res["saliency"]["median_s"],
            "speedup": res["saliency"]["median_s"] / res["jig"]["median_s"],
            # saliency: finite differences in sigma and scipy's blur; jig: exact jvp
            "correlation": float(np.corrcoef(b_sal, b_jig)[0, 1]),
        }
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default="mlp,cnn,transformer")
    p.add_argument("--reps", type=int, default=None)
    a = p.parse_args(argv)
    reps = a.reps or (3 if a.quick else 7)
    out = {"captum": [], "saliency": []}
    for name in a.models.split(","):
        bench = _models.MODELS[name]()
        if a.quick:  # a quarter of the batch
            keep = max(1, len(bench.xs) // 4)
            bench = bench._replace(xs=bench.xs[:keep], targets=bench.targets[:keep])
        out["captum"].append(captum_compare(bench, a.quick, reps))
        print(json.dumps(out["captum"][-1], indent=1, default=str), flush=True)
        out["saliency"].append(saliency_compare(bench, a.quick, reps, blur=name == "cnn"))
        print(json.dumps(out["saliency"][-1], indent=1, default=str), flush=True)
    return out


if __name__ == "__main__":
    main()
