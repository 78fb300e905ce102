"""Run every jig benchmark and write ``benchmarks/results.md`` and ``results.json``.

    python benchmarks/run.py            # the full run (about 15-25 minutes on 2 cores)
    python benchmarks/run.py --quick    # a smaller smoke run of every part
    python benchmarks/run.py --no-peers # without torch / captum / saliency

Parts: ``peers.py`` (Captum, saliency), ``overhead.py`` (hand-written floor,
compile time, recompilation), ``memory.py`` (peak RSS against steps). Every
figure is a ratio of medians measured inside one process with the contenders'
repetitions interleaved; the machine (CPU, cores, load average, versions) is
recorded with the results. These are benchmarks, not tests: CI does not run them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# two CPU devices for the peers' "rr" mode (see peers.py); must precede JAX's start
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _timing  # noqa: E402

TARGETS = {"mlp": 4.0, "cnn": 1.2, "transformer": None}  # equal-steps speedup over Captum


def _fmt(v, nd=3):
    return "n/a" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _ok(value, target, higher=True):
    if target is None or value is None:
        return ""
    return "met" if (value >= target if higher else value <= target) else "**missed**"


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# jig benchmark results",
        "",
        f"Command: `{res['command']}` ({res['mode']}), {res['started_utc']} UTC, "
        f"{res['wall_s']:.0f} s.",
        f"Machine: {m.get('cpu')}, {m.get('cpu_count')} cores, {m.get('platform')}; "
        f"load average at start {m.get('loadavg_1_5_15')}, at end {res.get('loadavg_end')}; "
        f"jax {m.get('jax')} ({', '.join(m.get('jax_devices', []))}), torch {m.get('torch')}, "
        f"captum {m.get('captum')}, saliency {m.get('saliency')}. No GPU.",
        "",
        "Ratios are medians of interleaved repetitions in one process; > 1 means jig is faster. "
        "jig modes: vmap = one jit(vmap) call, loop = one call per example, rr = per example "
        "round-robin on 2 CPU devices, sharded = jig.sharded over 2 CPU devices.",
        "",
    ]
    peers = res.get("peers")
    if peers:
        lines += [
            "## 1. jig vs Captum IntegratedGradients (same weights, attributions checked)",
            "",
            "jig s is jig's default (`hoist=True`); the last column times `hoist=False` (the model "
            "evaluated whole at every point, Captum's work) in the same interleaved run. max diff: "
            "jig with `hoist=False` against Captum, entry by entry; jig's default passed the "
            "kink-tolerant check (`benchmarks/_timing.py: agreement`).",
            "",
            "| model | batch x steps | max diff / max abs | Captum best internal_batch_size | "
            "jig setting (mode/chunk_size) | jig s | Captum s | speedup | target | hoist=False: speedup |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in peers["captum"]:
            e = r["equal_steps"]
            tgt = TARGETS.get(r["model"])
            lines.append(
                f"| {r['model']} | {r['batch']} x {r['steps']} | {r['agreement_max_abs_diff_rel']:.1e} | "
                f"{_fmt(e['captum_internal_batch_size'])} | {e.get('jig_mode')}/{_fmt(e['jig_chunk_size'])} | "
                f"{e['jig_s']:.4f} | {e['captum_s']:.4f} | {e['speedup']:.2f}x | "
                f"{'' if tgt is None else f'>= {tgt}x ' + _ok(e['speedup'], tgt)} | "
                f"{_fmt(e.get('speedup_no_hoist'), 2)}x |"
            )
        lines += [
            "",
            "Time to 1% completeness error (`Σ|δ_i| <= 0.01 Σ|F(x_i) - F(0)|` over the batch), "
            "each library's fastest rule and steps:",
            "",
            "| model | jig best | Captum best | jig s | Captum s | speedup | target |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in peers["captum"]:
            t = r["to_1pct"]
            lines.append(
                f"| {r['model']} | {t['jig_best']} | {t['captum_best']} | {t['jig_s']:.4f} | "
                f"{t['captum_s']:.4f} | {t['speedup']:.2f}x | >= 2x {_ok(t['speedup'], 2.0)} |"
            )
        lines += ["", "Steps each rule needs for 1% (same nodes in both libraries; Captum's own "
                  "delta confirmed them):", ""]
        for r in peers["captum"]:
            t = r["to_1pct"]
            lines.append(f"- {r['model']}: {t['steps_needed']}; jig candidates "
                         f"{ {k: round(v, 4) for k, v in t['jig_candidates'].items()} }")
        lines += [
            "",
            "## 2. jig vs PAIR saliency (same JAX model through call_model_function)",
            "",
            "| model | examples x steps | jig setting | IG: jig s | saliency s | speedup | BlurIG: jig s | "
            "saliency s | speedup | BlurIG correlation |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in peers["saliency"]:
            b = r.get("blur_ig", {})
            lines.append(
                f"| {r['model']} | {r['batch']} x {r['steps']} | {r.get('jig_mode')}/{_fmt(r.get('jig_chunk_size'))} | "
                f"{r['ig']['jig_s']:.4f} | "
                f"{r['ig']['saliency_s']:.4f} | {r['ig']['speedup']:.2f}x | "
                f"{_fmt(b.get('jig_s'), 4)} | {_fmt(b.get('saliency_s'), 4)} | "
                f"{_fmt(b.get('speedup'), 2)}{'x' if b else ''} | {_fmt(b.get('correlation'), 4)} |"
            )
        lines.append("")
    ov = res.get("overhead")
    if ov:
        lines += [
            "## 3. jig vs the hand-written floor `jax.jit(jax.vmap(ig_one))`",
            "",
            "Overhead: `jig.ig(..., hoist=False)` (the floor's work) against the floor. "
            "Hoisted: jig's default, which evaluates the model's affine first layer once per "
            "explanation (`jig.hoist`), against the same floor (> 1: faster than the floor).",
            "",
            "| model | batch x steps | jig (hoist=False) s | floor s | overhead | target | jig default s | default vs floor |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in ov["overhead"]:
            lines.append(f"| {r['model']} | {r['batch']} x {r['steps']} | {r['jig_s']:.4f} | "
                         f"{r['floor_s']:.4f} | {r['overhead']:.3f} | <= 1.10 {_ok(r['overhead'], 1.10, False)} | "
                         f"{r['jig_hoisted_s']:.4f} | {r['hoisted_speedup_over_floor']:.2f}x |")
        lines += [
            "",
            "## 5. Compile vs steady state; recompilation",
            "",
            "| model | trace+lower s | XLA compile s | steady s | compiles on new inputs (same shape) "
            "| compiles on a new shape |",
            "|---|---|---|---|---|---|",
        ]
        for r in ov["compile"]:
            lines.append(f"| {r['model']} | {r['trace_lower_s']:.3f} | {r['compile_s']:.3f} | "
                         f"{r['steady_s']:.4f} | {r['recompiles_on_new_inputs']} | "
                         f"{r['compiles_on_new_shape']} |")
        lines.append("")
    mem = res.get("memory")
    if mem:
        lines += [
            f"## 4. Peak process RSS against steps ({mem['model']}, each in its own process)",
            "",
            "| steps | chunk_size | peak RSS MB | XLA temp buffers MB |",
            "|---|---|---|---|",
        ]
        for r in mem["rows"]:
            lines.append(f"| {r['steps']} | {_fmt(r['chunk_size'])} | {r['peak_rss_mb']:.0f} | "
                         f"{_fmt(r['xla_temp_mb'], 1)} |")
        lo, hi = mem["steps_range"]
        ratio = mem["chunked_ratio_max_over_min_steps"]
        lines += [
            "",
            f"With chunk_size={mem['chunk_size']}: RSS at {hi} steps / at {lo} steps = {ratio:.2f} "
            f"(target <= 1.3: {_ok(ratio, 1.3, False)}); without: "
            f"{mem['unchunked_ratio_max_over_min_steps']:.2f}.",
            "",
        ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller problems and fewer repetitions")
    p.add_argument("--no-peers", action="store_true", help="skip Captum and saliency (no torch)")
    p.add_argument("--out", default=str(HERE / "results"), help="path stem for .md and .json")
    a = p.parse_args(argv)
    t0 = time.time()
    res: dict = {
        "command": "python benchmarks/run.py" + (" --quick" if a.quick else "")
        + (" --no-peers" if a.no_peers else ""),
        "mode": "quick" if a.quick else "full",
        "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": _timing.machine(),
    }
    quick = ["--quick"] if a.quick else []
    import overhead

    res["overhead"] = overhead.main(quick)
    import memory

    res["memory"] = memory.main(quick)
    if not a.no_peers:
        import peers

        res["peers"] = peers.main(quick + (["--models", "mlp,cnn,transformer"]))
    res["wall_s"] = time.time() - t0
    res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    Path(a.out + ".json").write_text(json.dumps(res, indent=1, default=str))
    Path(a.out + ".md").write_text(markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
