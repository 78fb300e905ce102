"""examples/sentiment.py in its reduced form: trains, explains through the embedding layer, writes HTML."""

import html
import importlib.util
import pathlib
import re
import sys

import numpy as np

_PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "sentiment.py"


def _load():
    spec = importlib.util.spec_from_file_location("jig_example_sentiment", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (linen modules) look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_one_span_per_token(tmp_path):
    ex = _load()
    out = ex.main(["--quick", "--out", str(tmp_path)])
    page = (tmp_path / "sentiment.html").read_text(encoding="utf-8")
    # the seeds' sentence comes first, verbatim in the page and token by token in spans
    assert out["tokens"][0] == ex.tokenize(ex.SEED_SENTENCE)
    assert out["tokens"][0][:4] == ["i", "love", "you", ","]
    assert html.escape(ex.SEED_SENTENCE) in page
    spans = re.findall(r"<span[^>]*>([^<]*)</span>", page)
    expected = [t for toks in out["tokens"] for t in toks]
    assert [html.unescape(s) for s in spans] == expected
    assert page.count("<span") == len(expected)
    # one score per token, completeness at the embedding layer, probabilities in range
    assert [len(s) for s in out["scores"]] == [len(t) for t in out["tokens"]]
    assert np.all(np.abs(out["deltas"]) < 1e-3)
    assert np.all((out["probabilities"] >= 0) & (out["probabilities"] <= 1))
    assert 0.0 <= out["accuracy"] <= 1.0


def test_tokenizer_and_vocabulary():
    ex = _load()
    assert ex.tokenize("It's <br />GREAT, isn't it?") == ["it's", "great", ",", "isn't", "it", "?"]
    vocab = ex.Vocab.build([["a", "b", "a"], ["a", "c", "c"]], size=10, min_count=2)
    assert vocab.words == ("<pad>", "<unk>", "a", "c")
    np.testing.assert_array_equal(vocab.encode(["c", "zzz", "a"], 5), [3, ex.UNK, 2, ex.PAD, ex.PAD])
    np.testing.assert_array_equal(vocab.encode(list("aaaaaaa"), 3), [2, 2, 2])
