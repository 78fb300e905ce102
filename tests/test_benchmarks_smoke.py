"""The benchmark driver's quick mode still runs (no torch needed): the scripts do not rot,
and the two properties that do not depend on timing noise hold."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quick_benchmarks_run_and_report(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-peers", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    assert {r["model"] for r in results["overhead"]["overhead"]} == {"mlp", "cnn", "transformer"}
    assert all(r["overhead"] > 0 for r in results["overhead"]["overhead"])
    # chunked peak memory does not grow with steps (the unchunked run does)
    rows = {(r["steps"], r["chunk_size"]): r["peak_rss_mb"] for r in results["memory"]["rows"]}
    small = min(s for s, _ in rows)
    large = max(s for s, _ in rows)
    chunk = next(c for _, c in rows if c is not None)
    assert rows[(large, chunk)] <= 1.3 * rows[(small, chunk)]
    assert rows[(large, None)] > rows[(large, chunk)]
    assert "jig vs the hand-written floor" in out.with_suffix(".md").read_text()
