"""Which explanation is more faithful? A table of IG variants x jig.metrics, on two models.

Models (both trained here, offline, in seconds):

- the digits CNN of ``jig demo`` (``jig._demo.train_digits``, scikit-learn's 8x8 digits),
  explained at its input pixels;
- the sentiment classifier of ``examples/sentiment.py`` (an embedding bag on Rotten
  Tomatoes), explained at its token embeddings (``jig.flax.split(model, "embed")``;
  one feature = one token's embedding).

Methods: IG from a zero baseline, from a blurred image (digits), expected gradients
over training inputs, Guided IG, and IDGI / SmoothGrad-IG where this jig has them
(``jig.idgi``, ``jig.smooth``). Each explains the predicted class's logit, 32 steps.

Metrics (``jig.metrics``, one example at a time, vmapped over the held-out examples):

- deletion / insertion AUC of the predicted class's probability, 16 steps, black image
  or zero embedding as the baseline (deletion: lower is better; insertion: higher);
- infidelity with the "remove a random subset" perturbation of Yeh et al. for global
  attributions (each pixel / token removed with probability 1/4; ``I = x ⊙ mask``),
  ``normalize=True`` (lower is better);
- max-sensitivity, radius 0.02 (digits, pixel units) or 0.01 (embeddings), 5 samples
  (lower is steadier);
- randomisation: Spearman similarity after re-initialising every layer (near 0 is
  what a model-dependent explanation should show; |value| reported).

Means ± standard deviations over 3 seeds (each seed retrains the model and redraws the
held-out examples, baselines and perturbations). Writes ``faithfulness.md`` (the
tables) and ``faithfulness.png`` (mean deletion and insertion curves) to ``--out``.

    python benchmarks/faithfulness.py --out faithfulness-out          # ~20 minutes on 2 busy cores (compiles)
    python benchmarks/faithfulness.py --quick --out /tmp/f            # 1 seed, small settings
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jig
from jig import _demo, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = (("deletion", "deletion AUC ↓"), ("insertion", "insertion AUC ↑"), ("infidelity", "infidelity ↓"),
           ("sensitivity", "max-sensitivity ↓"), ("randomization", "|rand. Spearman| ↓"))


def _sentiment_module():
    spec = importlib.util.spec_from_file_location("example_sentiment", os.path.join(ROOT, "examples", "sentiment.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _methods(steps: int, *, blur: bool, starts, key) -> dict:
    """``{name: (f, x, params) -> attributions}`` for one example; ``f(x, params)`` is the scalar."""
    out = {
        "IG, zero baseline": lambda f, x, p: jig.ig(f, 0.0, steps)(x, p),
    }
    if blur:
        out["IG, blurred baseline"] = lambda f, x, p: jig.ig(f, jig.baselines.blurred(1.0), steps)(x, p)
    out["IG, expected (train)"] = lambda f, x, p: jig.ig(f, None, steps, path=jig.paths.expected(starts))(x, p)
    out["Guided IG"] = lambda f, x, p: jig.ig(f, 0.0, steps, path=jig.paths.guided(), rule="riemann_right")(x, p)
    if hasattr(jig, "idgi"):
        out["IDGI"] = lambda f, x, p: jig.idgi(f, 0.0, steps)(x, p)
    if hasattr(jig, "smooth"):
        out["SmoothGrad-IG"] = lambda f, x, p: jig.smooth(jig.ig(f, 0.0, steps), samples=8)(key, x, p)
    return out


def _subset_removal(rate: float, feature_axes):
    """Yeh et al.'s perturbation for global attributions: I = x ⊙ m, m ~ Bernoulli(rate) per feature."""
    def perturb(key, x):
        shape = tuple(1 if i in feature_axes else d for i, d in enumerate(x.shape))
        return x * jax.random.bernoulli(key, rate, shape).astype(x.dtype)

    return perturb


def evaluate(name, f, prob, xs, classes, params, methods, *, feature_axes, radius, steps, key, samples):
    """``{method: {metric: per-example array}}`` and the mean curves, for one model and seed."""
    axes = tuple(a % (xs.ndim - 1) for a in feature_axes)
    perturb = _subset_removal(0.25, axes)
    results, curves = {}, {}
    for method, explain in methods.items():
        def one(x, c, k, explain=explain):
            fc = lambda x, p: f(x, p, c)  # noqa: E731
            a = explain(fc, x, params)
            pc = lambda x: prob(x, params, c)  # noqa: E731
            d = metrics.deletion(pc, x, a, steps=steps, feature_axes=feature_axes or None)
            i = metrics.insertion(pc, x, a, steps=steps, feature_axes=feature_axes or None)
            k1, k2, k3 = jax.random.split(k, 3)
            inf = metrics.infidelity(lambda x: fc(x, params), x, a, key=k1, samples=samples, perturb=perturb,
                                     normalize=True)
            sens = metrics.sensitivity_max(lambda x: explain(fc, x, params), x, key=k2, radius=radius, samples=5)
            rand = metrics.randomization(lambda p, x: explain(fc, x, p), params, x, key=k3).similarity[-1]
            return d, i, inf, sens, jnp.abs(rand)

        keys = jax.random.split(key, len(xs))
        d, i, inf, sens, rand = jax.jit(jax.vmap(one))(xs, classes, keys)
        results[method] = {"deletion": np.asarray(d.area), "insertion": np.asarray(i.area),
                           "infidelity": np.asarray(inf), "sensitivity": np.asarray(sens),
                           "randomization": np.asarray(rand)}
        curves[method] = (np.asarray(d.fractions[0]), np.asarray(d.values).mean(0), np.asarray(i.values).mean(0))
    return results, curves


def digits(seed: int, *, n: int, steps: int, train_steps: int, samples: int):
    x_tr, y_tr, x_te, y_te = _demo.load_digits(seed=seed)
    apply, params = _demo.train_digits(x_tr, y_tr, steps=train_steps, seed=seed, progress=False)
    pick = np.random.default_rng(seed).choice(len(x_te), n, replace=False)
    xs = jnp.asarray(x_te[pick])
    classes = jnp.argmax(apply(params, xs), -1)
    starts = jnp.asarray(x_tr[np.random.default_rng(seed + 100).choice(len(x_tr), 16, replace=False)])
    key = jax.random.key(seed)
    f = lambda x, p, c: apply(p, x[None])[0, c]  # noqa: E731
    prob = lambda x, p, c: jax.nn.softmax(apply(p, x[None])[0])[c]  # noqa: E731
    methods = _methods(32, blur=True, starts=starts, key=key)
    return evaluate("digits", f, prob, xs, classes, params, methods, feature_axes=(), radius=0.02,
                    steps=16, key=key, samples=samples)


def sentiment(seed: int, *, n: int, steps: int, epochs: int, samples: int):
    s = _sentiment_module()
    texts, labels, sources = s.load_corpus()
    rt = np.random.default_rng(seed).permutation(np.flatnonzero(sources == "rotten_tomatoes"))
    test, train_idx = rt[: len(rt) // 5], rt[len(rt) // 5:]
    length = 32
    toks = {i: s.tokenize(texts[i])[:length] for i in rt}
    vocab = s.Vocab.build([toks[i] for i in train_idx], size=20000)
    encode = lambda idx: np.stack([vocab.encode(toks[i], length) for i in idx])  # noqa: E731
    model, params = s.train(encode(train_idx), labels[train_idx], len(vocab.words), epochs=epochs, seed=seed,
                            log=lambda *a: None)
    # held-out sentences with at least 8 tokens
    pool = [i for i in test if len(toks[i]) >= 8]
    ids = jnp.asarray(encode(np.random.default_rng(seed).choice(pool, n, replace=False)))
    split = jig.flax.split(model, "embed")
    hs = jax.vmap(lambda i: split.bottom(params, i))(ids)
    classes = jnp.argmax(model.apply(params, ids), -1)
    starts = jax.vmap(lambda i: split.bottom(params, i))(
        jnp.asarray(encode(np.random.default_rng(seed + 100).choice(train_idx, 8, replace=False))))
    key = jax.random.key(seed)
    # the model at its embedding layer: top(params, ids, h); ids only set the padding mask, so a
    # removed token is a zero embedding in its slot. Each example's "class" is (class, ids).
    f = lambda h, p, ci: split.top(p, ci[1], h)[ci[0]]  # noqa: E731
    prob = lambda h, p, ci: jax.nn.softmax(split.top(p, ci[1], h))[ci[0]]  # noqa: E731
    methods = _methods(32, blur=False, starts=starts, key=key)
    # randomisation: explain reads the layers above the embeddings only (h is given), so the
    # cascade covers "hidden" and "head"
    return evaluate("sentiment", f, prob, hs, (classes, ids), params, methods, feature_axes=(-1,), radius=0.01,
                    steps=16, key=key, samples=samples)


def _fmt(values) -> str:
    values = np.asarray(values)
    return f"{values.mean():.3g} ± {values.std():.2g}" if len(values) > 1 else f"{values.mean():.3g}"


def table(per_seed: list[dict]) -> str:
    methods = list(per_seed[0])
    head = "| method | " + " | ".join(c for _, c in COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS) + "\n"
    rows = []
    for m in methods:
        cells = [_fmt([np.mean(run[m][k]) for run in per_seed]) for k, _ in COLUMNS]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def picture(curves: dict, path: str) -> None:
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(m for runs in curves.values() for m in runs[0]))
    colour = {m: f"C{i}" for i, m in enumerate(names)}  # one colour per method in every panel
    fig = Figure(figsize=(10, 6.4), layout="constrained")
    for row, (model, runs) in enumerate(curves.items()):
        for col, (title, which) in enumerate((("deletion", 1), ("insertion", 2))):
            ax = fig.add_subplot(len(curves), 2, 2 * row + col + 1)
            for k, method in enumerate(runs[0]):
                fr = runs[0][method][0]
                mean = np.mean([run[method][which] for run in runs], axis=0)
                ax.plot(fr, mean, label=method, lw=2.2 - 0.4 * k, color=colour[method])  # overlaps stay visible
            ax.set_title(f"{model}: {title}", fontsize=10)
            ax.set_xlabel("share of features " + ("removed" if which == 1 else "inserted"))
            ax.set_ylabel("p(predicted class)")
            ax.grid(alpha=0.3)
            if col == 1:
                ax.legend(fontsize=8)
    fig.suptitle("Deletion and insertion curves (means over examples and seeds)", fontsize=11)
    fig.savefig(path, dpi=100)
    np.savez(os.path.splitext(path)[0] + "_curves.npz",
             **{f"{model}|{method}|{i}": np.stack(run[method]) for model, runs in curves.items()
                for i, run in enumerate(runs) for method in run})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="faithfulness-out")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--examples", type=int, default=8, help="held-out examples per model and seed")
    p.add_argument("--quick", action="store_true", help="1 seed, 4 examples, short training (seconds; tests)")
    args = p.parse_args(argv)
    seeds, n, train_steps, epochs, samples = args.seeds, args.examples, 400, 2, 16
    if args.quick:
        seeds, n, train_steps, epochs, samples = 1, 4, 60, 1, 4
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    tables, curves = {}, {}
    for model, run in (("digits CNN", lambda s: digits(s, n=n, steps=32, train_steps=train_steps, samples=samples)),
                       ("sentiment (embeddings)", lambda s: sentiment(s, n=n, steps=32, epochs=epochs,
                                                                     samples=samples))):
        per_seed, model_curves = [], []
        for seed in range(seeds):
            res, cur = run(seed)
            per_seed.append(res)
            model_curves.append(cur)
            print(f"{model}, seed {seed}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
        tables[model], curves[model] = table(per_seed), model_curves
    text = "".join(f"### {model}\n\n{t}\n" for model, t in tables.items())
    text += (f"{seeds} seed(s) x {n} held-out examples; mean over examples, then mean ± std over seeds. "
             f"{time.perf_counter() - t0:.0f} s.\n")
    print(text)
    with open(os.path.join(args.out, "faithfulness.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    picture(curves, os.path.join(args.out, "faithfulness.png"))
    print(f"wrote {args.out}/faithfulness.md and faithfulness.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
