"""examples/transformer_sentiment.py in its reduced form, and the text helpers it rests on."""

import html
import importlib.util
import pathlib
import re
import sys

import flax.nnx as nnx
import jax.numpy as jnp
import numpy as np
import pytest

import jig
from jig.discretized import anchor_points, discretized

_EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"jig_example_{name}", _EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ex = _load("transformer_sentiment")
    out = tmp_path_factory.mktemp("transformer")
    return ex, ex.main(["--quick", "--out", str(out)]), out


def test_quick_run_writes_both_paths_token_by_token(run):
    ex, res, out = run
    assert res["tokens"][0] == ["i", "love", "you", ",", "but", "i", "also", "kind", "of", "dislike", "you"]
    page = (out / "transformer_sentiment.html").read_text(encoding="utf-8")
    assert html.escape(ex.SEED_SENTENCE) in page
    spans = [html.unescape(s) for s in re.findall(r"<span[^>]*>([^<]*)</span>", page)]
    expected = [t for toks in res["tokens"] for t in toks]
    assert spans == expected + expected  # straight IG, then DIG, one span per token
    png = out / "transformer_sentiment.png"
    assert png.stat().st_size < 300_000 and png.read_bytes()[:4] == b"\x89PNG"
    for name in ("IG (straight)", "DIG (greedy)"):
        assert [len(s) for s in res["scores"][name]] == [len(t) for t in res["tokens"]]
        assert np.all(np.isfinite(res["deltas"][name]))
    assert set(res["seed_scores"]) == set(res["tokens"][0])
    assert 0.0 <= res["accuracy"] <= 1.0 and np.all((res["probabilities"] >= 0) & (res["probabilities"] <= 1))


def test_table_measures_are_probabilities_differences(run):
    _, res, _ = run
    for row in res["table"].values():
        assert -1.0 <= row["comprehensiveness"] <= 1.0 and -1.0 <= row["sufficiency"] <= 1.0
        assert np.isfinite(row["log-odds"]) and row["delta"] >= 0


def test_erasure_scores_at_the_extremes(run):
    ex, res, _ = run
    model, vocab = res["model"], res["vocab"]
    ids = np.stack([vocab.encode(t, 32) for t in res["tokens"][:4]])
    scores = np.random.default_rng(0).normal(size=ids.shape)
    everything = ex.erasure_scores(model, ids, scores, top=1.0)
    # keeping every token changes nothing; removing every token leaves the empty sentence
    assert abs(everything["sufficiency"]) < 1e-6
    probs = ex.predict(model, ids)
    c = probs.argmax(1)
    empty = ex.predict(model, np.zeros_like(ids))[np.arange(len(ids)), c]
    np.testing.assert_allclose(everything["comprehensiveness"], np.mean(probs[np.arange(len(ids)), c] - empty), atol=1e-5)


def test_completeness_and_dig_path_on_the_trained_model(run):
    ex, res, _ = run
    model, vocab = res["model"], res["vocab"]
    ids = jnp.asarray(vocab.encode(res["tokens"][0], 16))
    explain = jig.flax.layer_ig(model, "embed", lambda y: y[1] - y[0], steps=128,
                                baseline_input=jnp.zeros_like, return_delta=True)
    out = explain(nnx.state(model), ids)
    gap = float(out.token_scores.sum() - out.delta)
    assert abs(float(out.delta)) < 0.02 * abs(gap) + 1e-3
    table = model.embed.embedding[...]
    h = table[ids]
    pts = np.asarray(anchor_points(discretized(table, 6), h, jnp.zeros_like(h)))
    np.testing.assert_array_equal(pts[-1], np.asarray(h))  # ends at the sentence's embeddings
    assert np.all(np.diff(pts, axis=0) * np.sign(np.asarray(h))[None] >= 0)  # monotone from the pad baseline


def test_text_helpers():
    t = _load("_text")
    assert t.tokenize("It's <br />GREAT, isn't it?") == ["it", "'s", "great", ",", "is", "n't", "it", "?"]
    vocab = t.Vocab.build([["a", "b", "a"], ["a", "c", "c"]], size=10)
    assert vocab.words == ("<pad>", "<unk>", "<s>", "</s>", "a", "c")
    np.testing.assert_array_equal(vocab.encode(["c", "zzz"], 4), [5, t.UNK, t.PAD, t.PAD])
    table, found = t.glove(["<pad>", "king", "queen", "qqqzzzx"])
    assert found.tolist() == [False, True, True, False] and np.all(table[0] == 0)
    cos = table[1] @ table[2] / np.linalg.norm(table[1]) / np.linalg.norm(table[2])
    assert 0.7 < cos < 0.85  # GloVe 6B 50-d: cos(king, queen) = 0.78
    lengths = np.array([3, 20, 5, 40, 7, 9, 33, 2])
    seen = []
    for rows, length in t.length_batches(lengths, 2, np.random.default_rng(0)):
        assert length % 16 == 0 and length >= lengths[rows].max()
        seen += rows.tolist()
    assert sorted(seen) == list(range(8))


def test_help_documents_quick_and_out(capsys):
    with pytest.raises(SystemExit) as e:
        _load("transformer_sentiment").main(["--help"])
    assert e.value.code == 0 and "--quick" in capsys.readouterr().out
