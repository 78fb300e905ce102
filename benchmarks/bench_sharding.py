"""Throughput of jig.sharded with 1, 2, 4 and 8 simulated CPU devices.

Each device count runs in its own subprocess, because XLA_FLAGS
(``--xla_force_host_platform_device_count``) must be set before JAX is imported.
The workload: Integrated Gradients (Gauss-Legendre, ``--steps`` nodes, per-example
class) of a small CNN on 32x32x3 inputs, a batch of ``--batch`` examples split across
the devices by ``jig.sharded``; plus one explanation with ``--big-steps`` path points
spread across the devices by ``jig.ig(..., mesh=...)``.

    python benchmarks/bench_sharding.py            # the full run (a few minutes on 2 cores)
    python benchmarks/bench_sharding.py --quick    # a smoke run (~1 minute)

Simulated devices share the machine's cores, so this measures jig's overhead and
XLA's partitioning, not a real multi-device speed-up; on real GPUs/TPUs each device
brings its own compute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(devices: int, batch: int, steps: int, big_steps: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jig

    assert jax.device_count() == devices, (jax.device_count(), devices)
    rng = np.random.RandomState(0)

    def conv(x, w):
        return jax.lax.conv_general_dilated(x[None], w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]

    params = {
        "c1": rng.normal(size=(3, 3, 3, 16)).astype(np.float32) / np.sqrt(27),
        "c2": rng.normal(size=(3, 3, 16, 32)).astype(np.float32) / np.sqrt(144),
        "d": rng.normal(size=(32, 10)).astype(np.float32) / np.sqrt(32),
    }

    def logits(x, p):
        h = jax.nn.relu(conv(x, p["c1"]))
        h = jax.nn.relu(conv(h, p["c2"]))
        return jnp.mean(h, axis=(0, 1)) @ p["d"]

    def explain_one(x, c, p):
        return jig.ig(lambda x, p: logits(x, p)[c], 0.0, steps)(x, p)

    xs = rng.uniform(size=(batch, 32, 32, 3)).astype(np.float32)
    cs = (np.arange(batch) % 10).astype(np.int32)
    explain = jig.sharded(explain_one, in_axes=(0, 0, None))

    t0 = time.perf_counter()
    explain(xs, cs, params).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        explain(xs, cs, params).block_until_ready()
        times.append(time.perf_counter() - t0)
    batch_s = float(np.min(times))  # the best call: other jobs on the machine only slow calls down

    mesh = jax.make_mesh((devices,), ("points",))
    big = jig.ig(lambda x, p: logits(x, p)[3], 0.0, big_steps, mesh=mesh)
    big(xs[0], params).block_until_ready()
    big_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        big(xs[0], params).block_until_ready()
        big_times.append(time.perf_counter() - t0)
    return {
        "devices": devices,
        "batch": batch,
        "steps": steps,
        "first_call_s": compile_s,
        "batch_s": batch_s,
        "explanations_per_s": batch / batch_s,
        "big_steps": big_steps,
        "big_s": float(np.min(big_times)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small batch, one repeat")
    ap.add_argument("--devices", default="1,2,4,8")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--big-steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    batch = args.batch or (16 if args.quick else 64)
    big_steps = args.big_steps or (128 if args.quick else 512)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.child is not None:
        print(json.dumps(child(args.child, batch, args.steps, big_steps, repeats)))
        return 0

    rows = []
    for n in [int(d) for d in args.devices.split(",")]:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        cmd = [sys.executable, __file__, "--child", str(n), "--batch", str(batch), "--steps", str(args.steps),
               "--big-steps", str(big_steps), "--repeats", str(repeats)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"jig.sharded throughput, small CNN 32x32x3, {args.steps} steps, batch {batch}, "
          f"best of {repeats} calls after the first; {os.cpu_count()} CPU cores, load average {load:.1f}")
    print("| devices | explanations/s | batch time (s) | first call (s) | one explanation, "
          f"{big_steps} points over the mesh (s) |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['devices']} | {r['explanations_per_s']:.1f} | {r['batch_s']:.3f} | "
              f"{r['first_call_s']:.2f} | {r['big_s']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
