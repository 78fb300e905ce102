"""Explain one batch across several JAX processes on this machine (127.0.0.1 only).

Each process stands in for a host: it gets its own CPU devices, joins the others with
``jax.distributed.initialize`` (CPU collectives), passes ONLY ITS OWN rows of the batch
to ``jig.sharded`` and to ``jig.explain_dataset``, and gets back the attributions of
exactly those rows. The launcher then checks them against one process running a plain
``jax.vmap`` over the whole batch.

    python examples/multihost.py                      # 2 processes x 2 CPU devices
    python examples/multihost.py --processes 3 --devices 4

On real hosts, run the worker part on every host with the coordinator's address (and
no ``--devices``: each host uses its accelerators); the jig calls are unchanged.
The coordinator here listens on 127.0.0.1 only (``coordinator_bind_address``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

FEATURES, CLASSES, HIDDEN, ROWS, STEPS = 6, 3, 16, 11, 16


def problem():
    """The model parameters, the whole batch and its per-example classes (same in every process)."""
    rng = np.random.RandomState(0)
    params = {
        "w1": rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32) / np.sqrt(FEATURES),
        "w2": rng.normal(size=(HIDDEN, CLASSES)).astype(np.float32) / np.sqrt(HIDDEN),
    }
    xs = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    classes = (np.arange(ROWS) % CLASSES).astype(np.int32)
    return params, xs, classes


def local_slice(process_id: int, num_processes: int) -> slice:
    """Uneven split: process 0 gets the most rows, the others 3 each (row counts may differ)."""
    others = 3 * (num_processes - 1)
    if process_id == 0:
        return slice(0, ROWS - others)
    start = ROWS - others + 3 * (process_id - 1)
    return slice(start, start + 3)


def make_explainer():
    import jax.numpy as jnp

    import jig

    def logits(x, params):
        return jnp.tanh(x @ params["w1"]) @ params["w2"]

    def explain_one(x, c, params):  # one example, its own class; params as an argument
        return jig.ig(lambda x, p: logits(x, p)[c], 0.0, STEPS)(x, params)

    return explain_one


def worker(process_id: int, num_processes: int, port: int, outdir: str) -> None:
    import jax

    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        coordinator_bind_address=f"127.0.0.1:{port}",
        initialization_timeout=60,
    )
    from jax.sharding import NamedSharding, PartitionSpec

    import jig

    params, xs, classes = problem()
    rows = local_slice(process_id, num_processes)
    explain_one = make_explainer()

    # 1. jig.sharded: the batch axis spans every device of every process (the default mesh);
    #    each process passes its own rows and gets their attributions back (NumPy)
    explain = jig.sharded(explain_one, in_axes=(0, 0, None))
    local = explain(xs[rows], classes[rows], params)

    # 2. a call where only process 0 has rows: the others pass 0 rows and get 0 back
    mine = rows if process_id == 0 else slice(0, 0)
    only_first = explain(xs[mine], classes[mine], params)

    # 3. jig.explain_dataset: batches of 2 local rows; processes with fewer rows keep step
    streamed = jig.explain_dataset(
        explain_one, xs[rows], classes[rows], params, in_axes=(0, 0, None), batch_size=2, progress=False
    )

    # 4. already-global arrays in, global array out (one row per device)
    k = jax.local_device_count()
    global_idx = (np.arange(k) + k * process_id) % ROWS
    batch = NamedSharding(jig.sharding.default_mesh(), PartitionSpec("batch"))
    glob = [jax.make_array_from_process_local_data(batch, a[global_idx]) for a in (xs, classes)]
    out = explain(*glob, params)
    shards = sorted(out.addressable_shards, key=lambda s: s.index[0].start)
    global_rows = np.concatenate([np.asarray(s.data) for s in shards])

    print(
        f"process {process_id}/{num_processes}: {jax.local_device_count()} local of "
        f"{jax.device_count()} devices, rows {rows.start}..{rows.stop - 1}, "
        f"attributions {local.shape}, row sums {np.array2string(local.sum(axis=1), precision=4)}",
        flush=True,
    )
    np.savez(
        os.path.join(outdir, f"process{process_id}.npz"),
        start=rows.start,
        sharded=local,
        dataset=streamed,
        only_first=only_first,
        global_idx=global_idx,
        global_rows=global_rows,
    )
    jax.distributed.shutdown()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(num_processes: int, devices: int, outdir: str, timeout: float = 120.0) -> None:
    """Start the worker processes (127.0.0.1 only), wait for them, kill them on failure."""
    port = free_port()
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(i), "--processes", str(num_processes), "--port", str(port), "--out", outdir],
            env=env,
        )
        for i in range(num_processes)
    ]
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    bad = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    if bad:
        raise RuntimeError(f"worker process(es) failed (process id, exit code): {bad}")


def gather(outdir: str, num_processes: int):
    """The per-process results, in row order: (sharded, explain_dataset)."""
    parts = [np.load(os.path.join(outdir, f"process{i}.npz")) for i in range(num_processes)]
    parts.sort(key=lambda z: int(z["start"]))
    return np.concatenate([z["sharded"] for z in parts]), np.concatenate([z["dataset"] for z in parts])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--devices", type=int, default=2, help="CPU devices per process")
    ap.add_argument("--out", default=None, help="folder for the per-process results")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.processes, args.port, args.out)
        return 0
    if args.processes < 1 or 3 * (args.processes - 1) >= ROWS:
        ap.error(f"--processes must be between 1 and {(ROWS - 1) // 3}")

    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.out or tmp
        launch(args.processes, args.devices, outdir, args.timeout)
        multi, streamed = gather(outdir, args.processes)

    # the single-process reference: a plain vmap over the whole batch
    import jax

    params, xs, classes = problem()
    reference = np.asarray(jax.vmap(make_explainer(), in_axes=(0, 0, None))(xs, classes, params))
    err = max(np.abs(multi - reference).max(), np.abs(streamed - reference).max())
    ok = multi.shape == reference.shape and err < 1e-5
    print(f"{args.processes} processes vs one process: max |difference| = {err:.2e} -> {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
