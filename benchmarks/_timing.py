"""Timing helpers: interleaved repetitions, medians, and a description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any, Callable


def block(out: Any) -> Any:
    """Wait for JAX arrays (and pass NumPy / torch results through)."""
    import jax

    for leaf in jax.tree.leaves(out):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return out


def once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    block(fn())
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, dict]:
    """Median seconds of each function, timed in turns (A B C, B C A, ...).

    Interleaving spreads the load of other processes over all contenders, so
    their ratio is fairer than timing one after the other on a shared machine.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            once(fns[name])
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            samples[name].append(once(fns[name]))
    return {
        n: {"median_s": statistics.median(s), "min_s": min(s), "reps": len(s)}
        for n, s in samples.items()
    }


def machine() -> dict[str, Any]:
    """What ran the benchmark: CPU, cores, load, library versions."""
    import jax

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
    }
    try:
        with open("/proc/cpuinfo") as fh:
            models = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        info["loadavg_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    from importlib import metadata

    for mod in ("torch", "captum", "saliency", "jaxlib", "numpy"):
        try:
            info[mod] = metadata.version(mod)
        except metadata.PackageNotFoundError:  # optional peers
            info[mod] = None
    return info


def agreement(a, b, what: str, rtol: float = 1e-4, min_close: float = 0.99) -> dict:
    """Check that two attribution arrays agree; return the figures, raise if they don't.

    On ReLU models two correct float32 computations may place a path point on
    opposite sides of a kink (points formed in a different order of operations, or
    in float64, differ by an ulp) and so change one gradient: a few entries may then
    differ by more than ``rtol``. Required: at least ``min_close`` of the entries
    within ``rtol * max|b|`` and a relative L1 difference below ``rtol``.
    """
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = float(np.max(np.abs(b)))
    diff = np.abs(a - b)
    out = {"max_abs_diff_rel": float(np.max(diff)) / scale,
           "l1_diff_rel": float(np.sum(diff) / np.sum(np.abs(b))),
           "fraction_close": float(np.mean(diff <= rtol * scale))}
    if not (out["fraction_close"] >= min_close and out["l1_diff_rel"] <= rtol):
        raise AssertionError(f"{what}: attributions differ: {out}")
    return out
