"""Headless Chromium renders jig's HTML: ``jig.viz.text_html`` output and the built site.

Checked from what the browser rendered: each token's computed background colour (the
DOM after layout) and the screenshot's pixels inside each token's box (positive tokens
green, negative red), and that the site's API page shows ``jig.ig``. Skipped where
Chromium is not installed (``apt-get install chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; .ci/run installs it)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1", "--allow-file-access-from-files"]

# Runs in the page after layout: each token's text, computed background and box, as JSON.
PROBE = """<pre id="probe"></pre><script>
const spans = [...document.querySelectorAll('.jig-text span')];
document.getElementById('probe').textContent = JSON.stringify(spans.map(s => {
  const r = s.getBoundingClientRect();
  return {text: s.textContent, score: parseFloat(s.title), bg: getComputedStyle(s).backgroundColor,
          box: [r.left, r.top, r.right, r.bottom]};
}));
</script>"""


def chromium(url: str, *extra: str, timeout: float = 90) -> str:
    """Run headless Chromium on ``url`` with a fresh profile; returns what it printed."""
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                             capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def _probe(dom: str):
    """The JSON the page's probe script wrote into ``<pre id="probe">``."""
    return json.loads(html.unescape(re.search(r'<pre id="probe"[^>]*>(.*?)</pre>', dom, re.S).group(1)))


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def _mode_colour(pixels: np.ndarray) -> np.ndarray:
    """The most frequent colour of a box: the background, not the glyphs drawn on it."""
    colours, counts = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def test_text_html_renders_positive_tokens_green_and_negative_red(tmp_path):
    import matplotlib.image

    import jig.viz

    tokens = ["a", "gorgeous", ",", "witty", "film", "but", "dull", "ending"]
    scores = [0.1, 1.9, 0.0, 3.9, 0.5, -0.4, -2.5, -1.2]
    page = tmp_path / "tokens.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body style='margin:20px; background:#fff'>"
                    + jig.viz.text_html(tokens, scores) + PROBE + "</body></html>", encoding="utf-8")
    dom = chromium(page.as_uri(), "--dump-dom")
    probe = _probe(dom)
    assert [t["text"] for t in probe] == tokens

    shot = tmp_path / "tokens.png"
    chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=900,300")
    image = matplotlib.image.imread(shot)[..., :3]  # floats in [0, 1]
    for token, score in zip(probe, scores):
        r, g, b = _rgb(token["bg"])
        left, top, right, bottom = (int(round(v)) for v in token["box"])
        pr, pg, pb = _mode_colour(image[top + 1:bottom - 1, left + 1:right - 1]) * 255
        if score > 0.3:  # green: the green channel leads
            assert g > r + 5 and g > b, (token, "computed style")
            assert pg > pr + 5 and pg > pb, (token, "screenshot", (pr, pg, pb))
        elif score < -0.3:  # red: the red channel leads
            assert r > g + 5 and r > b, (token, "computed style")
            assert pr > pg + 5 and pr > pb, (token, "screenshot", (pr, pg, pb))
        else:  # near zero: close to white
            assert min(r, g, b) > 200 and min(pr, pg, pb) > 200, token
        if abs(score) > 1.0:  # strong scores are clearly coloured on screen, not just tinted
            assert max(pr, pg, pb) - min(pr, pg, pb) > 30, (token, "screenshot", (pr, pg, pb))
    # stronger scores are more saturated: "witty" (3.9) is a deeper green than "film" (0.5)
    sat = {t["text"]: max(_rgb(t["bg"])) - min(_rgb(t["bg"])) for t in probe}
    assert sat["witty"] > sat["film"] and sat["dull"] > sat["but"]


def test_the_built_site_api_page_lists_jig_ig():
    from test_docs import build_site  # the site the docs tests build (or $JIG_DOCS_HTML)

    site = build_site()
    probe = """<pre id="probe"></pre><script>
    const e = document.getElementById('jig.ig');
    const r = e ? e.getBoundingClientRect() : null;
    document.getElementById('probe').textContent = JSON.stringify(
      {found: !!e, text: e ? e.textContent : '', visible: !!r && r.width > 0 && r.height > 0,
       title: document.title});
    </script>"""
    # the page as built, plus the probe (a copy, so the site stays as it was built)
    page = site / "api" / "jig.html"
    probed = page.with_name("jig.probe.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    try:
        dom = chromium(probed.as_uri(), "--dump-dom", "--window-size=1200,900")
    finally:
        probed.unlink()
    result = _probe(dom)
    assert result["found"] and result["visible"], result
    assert "jig.ig" in result["text"] or "ig(" in result["text"], result
    assert "jig" in result["title"]


def test_the_sentiment_tutorial_shows_coloured_tokens_when_executed():
    from test_docs import build_site

    page = build_site() / "tutorials" / "sentiment.html"
    if "jig-text" not in page.read_text(encoding="utf-8"):
        pytest.skip("this build did not run the tutorials (nb_execution_mode=off); .ci/run's full build does")
    probed = page.with_name("sentiment.probe.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = chromium(probed.as_uri(), "--dump-dom", "--window-size=1200,900")
    finally:
        probed.unlink()
    probe = _probe(dom)
    assert len(probe) > 10
    for token in probe:
        r, g, b = _rgb(token["bg"])
        if token["score"] > 0 and max(r, g, b) - min(r, g, b) > 40:
            assert g > r, token
        if token["score"] < 0 and max(r, g, b) - min(r, g, b) > 40:
            assert r > g, token
