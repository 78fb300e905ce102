"""examples/generation.py in its reduced form: the generated-token x context matrix in one targets='all' call."""

import html
import importlib.util
import pathlib
import re
import sys

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "generation.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("jig_example_generation", _PATH)
    ex = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ex
    spec.loader.exec_module(ex)
    out = tmp_path_factory.mktemp("generation")
    return ex, ex.main(["--quick", "--out", str(out), "--new", "5"]), out


def test_rows_equal_single_target_calls(run):
    _, res, _ = run
    scores, deltas = res["scores"], res["deltas"]
    g = len(res["tokens"]) - 1 - res["start"]
    assert 1 <= g <= 5 and scores.shape == (g, len(res["tokens"])) and deltas.shape == (g,)
    np.testing.assert_allclose(scores, res["single_scores"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(deltas, res["single_deltas"], rtol=1e-4, atol=1e-5)


def test_causal_structure_and_completeness_per_generated_token(run):
    _, res, _ = run
    scores, deltas, start = res["scores"], res["deltas"], res["start"]
    for i in range(scores.shape[0]):  # generated token i sits at position start + 1 + i
        assert np.all(scores[i, start + 1 + i :] == 0.0), "credit to a token at or after the generated one"
        assert np.any(scores[i, : start + 1 + i] != 0.0)
        gap = scores[i].sum() - deltas[i]  # log p(x) - log p(baseline) for this row
        assert abs(deltas[i]) < 0.05 * abs(gap) + 0.02
    assert np.all(res["logps"] <= 0.0)
    assert not {"<pad>", "<unk>", "<s>"} & set(res["tokens"][start + 1 :])  # the generated tokens


def test_pictures(run):
    _, res, out = run
    png = out / "generation.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 300_000
    page = (out / "generation.html").read_text(encoding="utf-8")
    spans = [html.unescape(s) for s in re.findall(r"<span[^>]*>([^<]*)</span>", page)]
    start, g = res["start"], len(res["deltas"])
    assert spans == [t for i in range(g) for t in res["tokens"][: start + 1 + i]]
