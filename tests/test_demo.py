"""`jig demo` end to end with small settings, its command line, and its checks."""

import os
import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from jig import _demo
from jig.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--steps", "6", "--train-steps", "40", "--text-steps", "40", "--examples", "3", "--baselines", "2", "--quiet"]


def test_demo_runs_end_to_end_and_writes_its_files(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed

    # the table: every method under both rules, with finite deltas and times
    rows = re.findall(r"^(zero baseline|blur IG|expected gradients)\s+(\w+)\s+6\s+(\S+)\s+(\S+)\s+(\S+)\s+"
                      r"(\S+)s\s+(\d+)ms$", printed, flags=re.M)
    assert {(r[0], r[1]) for r in rows} == {
        (m, rule) for m in ("zero baseline", "blur IG", "expected gradients")
        for rule in ("gauss_legendre", "riemann_middle")
    }
    for method, rule, mean_d, max_d, gap, first, warm in rows:
        assert 0 <= float(mean_d) <= float(max_d) < np.inf and float(gap) > 0 and float(first) > 0
        if rule == "gauss_legendre" and method != "blur IG":  # smooth model: 6 nodes are plenty
            assert float(max_d) < 1e-2 * float(gap), (method, max_d, gap)

    # the heatmap grid: 4 rows (input + 3 methods) x 3 digits, a real picture
    png = matplotlib.image.imread(out / "digits.png")
    assert png.ndim == 3 and png.shape[0] > 300 and png.shape[1] > 300
    assert png[..., :3].std() > 0.05

    # the text: one coloured span per token of the seed sentence and the held-out ones
    page = (out / "sentiment.html").read_text()
    seed_tokens = _demo.tokenize(_demo.SEED_SENTENCE)
    first_div = page.split("<div>")[1]
    assert first_div.count("<span ") == len(seed_tokens)
    assert page.count("<span ") == page.count("</span>") > len(seed_tokens)
    assert matplotlib.image.imread(out / "sentiment.png").shape[1] > 500
    assert sorted(os.listdir(out)) == ["digits.png", "sentiment.html", "sentiment.png"]


@pytest.mark.parametrize(
    "argv, match",
    [(["--steps", "0"], "--steps must be >= 1"), (["--examples", "11"], "--examples must be <= 10")],
)
def test_demo_rejects_bad_settings(argv, match, tmp_path):
    with pytest.raises(SystemExit, match=match):
        _demo.main(["--out", str(tmp_path), *argv])


def test_python_m_jig_demo_help_documents_the_options():
    out = subprocess.run([sys.executable, "-m", "jig", "demo", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    for option in ("--out", "--steps", "--seed", "--help", "digits", "sentiment.html"):
        assert option in out.stdout
