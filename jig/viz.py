"""Pictures of attributions: image heatmaps, method grids, coloured text, feature bars.

Every function returns a :class:`matplotlib.figure.Figure` (built without
``pyplot``, so no global state and no window) or an HTML string; saving is the
caller's choice (``fig.savefig("a.png")``, ``open("a.html", "w").write(s)``).
matplotlib is the optional extra ``jig[viz]``; ``import jig`` works without it.

Colours follow one convention everywhere: **green** for evidence *for* the
explained output (positive attribution), **red** for evidence *against* it
(negative), white/transparent for zero, intensity by magnitude. Outliers are
clipped at a percentile of ``|A|`` so that one extreme pixel does not wash out
the rest.

Example:
  >>> import numpy as np, jig.viz
  >>> A = np.outer(np.arange(-2.0, 2.0), np.ones(4))
  >>> fig = jig.viz.heatmap(A, image=np.ones((4, 4)))
  >>> len(fig.axes)
  1
  >>> html = jig.viz.text_html(["good", "bad"], [1.0, -0.5])
  >>> html.count("<span")
  2
"""

from __future__ import annotations

import html as _html
from typing import Mapping, Sequence

try:
    import matplotlib
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("jig.viz needs matplotlib, the optional extra: pip install 'jig[viz]'") from e
import matplotlib.cm  # noqa: E402
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jig import _checks

__all__ = [
    "SIGNS",
    "CMAP",
    "UNDERLAYS",
    "LAYOUTS",
    "normalize",
    "heatmap",
    "grid",
    "text_html",
    "text_figure",
    "bars",
]

SIGNS = ("all", "positive", "negative", "absolute")

_NEG = np.array([0.843, 0.188, 0.153])  # red  (#d7301f-ish)
_POS = np.array([0.102, 0.596, 0.314])  # green (#1a9850)
_ABS = np.array([0.85, 0.37, 0.01])  # orange, for |A|
_NEUTRAL = np.array([0.33, 0.42, 0.55])  # slate, for unsigned importances

#: The diverging colormap used for signed attributions: red (negative), white (0), green (positive).
CMAP = mcolors.LinearSegmentedColormap.from_list("jig", [_NEG, (1.0, 1.0, 1.0), _POS])


# --------------------------------------------------------------------------- scaling


def _check_sign(sign: str) -> str:
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    return sign


def _check_percentile(clip_percentile) -> float:
    if isinstance(clip_percentile, bool) or not isinstance(clip_percentile, (int, float, np.number)):
        raise TypeError(f"clip_percentile must be a number in (0, 100], got {clip_percentile!r}")
    if not 0 < clip_percentile <= 100:
        raise ValueError(f"clip_percentile must be in (0, 100], got {clip_percentile}")
    return float(clip_percentile)


def _as_float_array(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be an array of real numbers, got {type(a).__name__}") from e
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; it must be finite to be drawn")
    return arr


def normalize(attributions, sign: str = "all", clip_percentile: float = 99.0) -> np.ndarray:
    """Scale attributions to ``[-1, 1]`` for drawing: select a sign, clip outliers.

    ``A'`` is the selected part (``all``: ``A``; ``positive``: ``max(A, 0)``;
    ``negative``: ``min(A, 0)``; ``absolute``: ``|A|``), the scale ``s`` is the
    ``clip_percentile``-th percentile of its non-zero magnitudes (with 100: the
    largest), and the result is ``clip(A' / s, -1, 1)``, so magnitudes above the
    percentile saturate. All-zero input gives zeros.

    Args:
      attributions: an array of any shape.
      sign: ``"all"``, ``"positive"``, ``"negative"`` or ``"absolute"``.
      clip_percentile: in ``(0, 100]``; ``100`` scales by the largest magnitude.

    Returns:
      A float64 array of the same shape, in ``[-1, 1]`` (``[0, 1]`` for
      ``positive``/``absolute``, ``[-1, 0]`` for ``negative``).

    Example:
      >>> import numpy as np, jig.viz
      >>> jig.viz.normalize(np.array([-2.0, 1.0, 4.0]), clip_percentile=100).tolist()
      [-0.5, 0.25, 1.0]
      >>> jig.viz.normalize(np.array([-2.0, 1.0, 4.0]), sign="negative", clip_percentile=100).tolist()
      [-1.0, 0.0, 0.0]
    """
    _check_sign(sign)
    q = _check_percentile(clip_percentile)
    a = _as_float_array(attributions, "attributions")
    if sign == "positive":
        a = np.maximum(a, 0.0)
    elif sign == "negative":
        a = np.minimum(a, 0.0)
    elif sign == "absolute":
        a = np.abs(a)
    mags = np.abs(a)
    nonzero = mags[mags > 0]
    if nonzero.size == 0:
        return np.zeros_like(a)
    scale = float(np.percentile(nonzero if q < 100 else mags, q))
    if scale <= 0:
        scale = float(mags.max())
    return np.clip(a / scale, -1.0, 1.0) + 0.0  # +0.0 turns -0.0 into 0.0


# --------------------------------------------------------------------------- images


#: The layouts of a 3-D image the picture functions take: channels last or first.
LAYOUTS = ("HWC", "CHW")


def _check_layout(caller: str, layout) -> str | None:
    return None if layout is None else _checks.one_of(caller, "layout", layout, LAYOUTS)


def _may_be_channels_first(shape) -> bool:
    """A 3-D image shape whose first axis could be channels: 1, 3 or 4, before two larger axes."""
    return len(shape) == 3 and shape[0] in (1, 3, 4) and shape[0] < shape[1] and shape[0] < shape[2]


def _channels_last(arr: np.ndarray, layout, caller: str, name: str, batched: bool = False) -> np.ndarray:
    """A 3-D image (a 4-D batch of them with ``batched``) in ``HWC`` order, read by ``layout``.

    ``layout=None`` reads ``HWC``, except where the first axis may be channels (see
    :func:`_may_be_channels_first`): then it raises and asks for the layout. Arrays of
    other ranks pass through (2-D images are ``HW``; wrong ranks are reported later).
    """
    if arr.ndim != (4 if batched else 3):
        return arr
    one = arr.shape[1:] if batched else arr.shape
    if layout is None:
        if _may_be_channels_first(one):
            raise _checks.fail(
                caller, "layout", f"given for {name} of shape {arr.shape}", "None",
                f"its axis of size {one[0]} before two larger ones may be channels or image rows; pass "
                f"layout='CHW' (channels first) or layout='HWC' (a {one[0]}-pixel-high image with "
                f"{one[2]} channels)", raw=True,
            )
        return arr
    return np.moveaxis(arr, -3, -1) if layout == "CHW" else arr


def _image_2d(attributions, name: str = "attributions") -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(H, W)``, summing channels (IG is additive)."""
    a = _as_float_array(attributions, name)
    if a.ndim == 3:
        return a.sum(axis=-1)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be one image's attributions with shape (H, W) or (H, W, C), "
            f"got shape {a.shape}; for a batch use jig.viz.grid"
        )
    return a


def _gray(image, shape, name: str = "image") -> np.ndarray:
    """An image as grey levels in [0, 1] with shape ``shape``."""
    im = _as_float_array(image, name)
    if im.ndim == 3 and im.shape[-1] in (1, 3, 4):
        im = im[..., :3].mean(axis=-1) if im.shape[-1] != 1 else im[..., 0]
    if im.ndim != 2:
        raise ValueError(
            f"{name} must have shape (H, W) or (H, W, C) with C in (1, 3, 4), got shape {im.shape}"
        )
    if im.shape != tuple(shape):
        raise ValueError(
            f"{name} has spatial shape {im.shape} but the attributions have {tuple(shape)}"
        )
    lo, hi = float(im.min()), float(im.max())
    return (im - lo) / (hi - lo) if hi > lo else np.zeros_like(im)


def _overlay_rgba(values: np.ndarray, sign: str, alpha: float, cmap) -> np.ndarray:
    """RGBA for normalized values; opacity grows with |value| so zero is see-through."""
    if sign == "absolute":
        rgba = np.zeros(values.shape + (4,))
        rgba[..., :3] = _ABS
    else:
        rgba = np.asarray(cmap((values + 1.0) / 2.0), dtype=np.float64)
    rgba[..., 3] = alpha * np.sqrt(np.abs(values))
    return rgba


UNDERLAYS = ("gray", "outline")


def _outline(ax, gray: np.ndarray, min_side: int = 96) -> None:
    """The contour of ``gray`` at 0.5, computed on a cubic upsampling so small images get smooth lines."""
    h, w = gray.shape
    f = max(1, int(np.ceil(min_side / min(h, w))))
    if f > 1:
        import jax  # a dependency of jig; only the resize is used here

        fine = np.asarray(jax.image.resize(gray, (h * f, w * f), method="cubic"))
        ys = (np.arange(h * f) + 0.5) / f - 0.5  # fine pixel centres in the image's pixel coordinates
        xs = (np.arange(w * f) + 0.5) / f - 0.5
        ax.contour(xs, ys, fine, levels=[0.5], colors="0.15", linewidths=0.9)
    else:
        ax.contour(gray, levels=[0.5], colors="0.15", linewidths=0.9)


def _check_underlay(underlay: str) -> str:
    if underlay not in UNDERLAYS:
        raise ValueError(f"underlay must be one of {UNDERLAYS}, got {underlay!r}")
    return underlay


def _draw(ax, a2d, image, *, sign, clip_percentile, alpha, cmap, title, underlay="gray",
          interpolation="nearest"):
    values = normalize(a2d, sign, clip_percentile)
    if image is not None:
        gray = _gray(image, a2d.shape)
        if underlay == "gray":
            # the image, lightened to [0.45, 1] so that the colours stay readable on dark pixels
            ax.imshow(0.45 + 0.55 * gray, cmap="gray", vmin=0.0, vmax=1.0, interpolation=interpolation)
        else:
            ax.imshow(np.ones_like(gray), cmap="gray", vmin=0.0, vmax=1.0)
        ax.imshow(_overlay_rgba(values, sign, alpha, cmap), interpolation=interpolation)
        if underlay == "outline" and gray.max() > gray.min():
            _outline(ax, gray)
    else:
        if sign == "absolute":
            rgba = _overlay_rgba(values, sign, 1.0, cmap)
            ax.imshow(rgba, interpolation=interpolation)
        else:
            ax.imshow(values, cmap=cmap, vmin=-1.0, vmax=1.0, interpolation=interpolation)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def heatmap(
    attributions,
    image=None,
    *,
    sign: str = "all",
    clip_percentile: float = 99.0,
    alpha: float = 0.85,
    cmap=CMAP,
    underlay: str = "gray",
    interpolation: str = "nearest",
    title: str | None = None,
    size: float = 3.0,
    ax=None,
    layout: str | None = None,
) -> Figure:
    """One image's attributions as a heatmap, blended over the image if given.

    Channels are summed (``(H, W, C) -> (H, W)``, attributions are additive),
    the map is scaled by :func:`normalize` and drawn with a diverging colormap
    centred at zero (green positive, red negative). Over an image, the image is
    shown in light grey (levels 0.45-1) and each pixel's colour is laid on it with opacity growing
    with ``|A|``, so unimportant pixels keep the image visible.

    Args:
      attributions: ``(H, W)`` or ``(H, W, C)`` (``(C, H, W)`` with ``layout="CHW"``).
      image: ``None`` or the input, ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4
        (``(C, H, W)`` with ``layout="CHW"``); shown in grey (channel mean),
        min-max scaled to [0, 1].
      sign: ``"all"`` (default), ``"positive"``, ``"negative"`` or ``"absolute"``.
      clip_percentile: magnitudes above this percentile of ``|A|`` saturate.
      alpha: the overlay's largest opacity, in ``[0, 1]``.
      cmap: a matplotlib colormap for the signed modes (default :data:`CMAP`).
      underlay: how the image is shown under the colours: ``"gray"`` (lightened
        grey levels) or ``"outline"`` (white, with the image's contour at half its
        range drawn as a thin line; clearest for line drawings such as digits).
      interpolation: matplotlib's ``imshow`` interpolation for the display
        (``"nearest"`` shows pixels as they are; ``"bilinear"`` smooths small images).
      title: an optional axes title.
      size: figure side in inches (ignored with ``ax``).
      ax: ``None`` (a new figure) or a matplotlib Axes to draw into, to compose
        several heatmaps in one figure of your own.
      layout: how a 3-D ``attributions`` or ``image`` is laid out: ``"HWC"``
        (channels last) or ``"CHW"`` (channels first); 2-D arrays are ``(H, W)``.
        ``None`` (default) reads ``HWC``, but where the first axis may be channels
        (size 1, 3 or 4, before two larger axes, e.g. ``(3, 28, 28)``) it raises
        ``ValueError`` and asks for the layout instead of drawing a 3-row strip.

    Returns:
      A Figure with one axes showing an ``H x W`` image (with ``ax``: ``ax``'s figure).

    Example:
      >>> import numpy as np, jig.viz
      >>> fig = jig.viz.heatmap(np.random.default_rng(0).normal(size=(8, 8, 3)), sign="positive")
      >>> fig.axes[0].images[0].get_array().shape[:2]
      (8, 8)
      >>> chw = np.random.default_rng(0).normal(size=(3, 8, 8))  # channels first: say so
      >>> jig.viz.heatmap(chw, layout="CHW").axes[0].images[0].get_array().shape[:2]
      (8, 8)
    """
    _check_sign(sign)
    _check_percentile(clip_percentile)
    _check_underlay(underlay)
    alpha = _check_alpha(alpha)
    layout = _check_layout("jig.viz.heatmap", layout)
    a2d = _image_2d(_channels_last(_as_float_array(attributions, "attributions"), layout, "jig.viz.heatmap",
                                   "attributions"))
    if image is not None:
        image = _channels_last(_as_float_array(image, "image"), layout, "jig.viz.heatmap", "image")
    if ax is None:
        fig = Figure(figsize=(size, size), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    _draw(ax, a2d, image, sign=sign, clip_percentile=clip_percentile, alpha=alpha, cmap=cmap, title=title,
          underlay=underlay, interpolation=interpolation)
    return fig


def grid(
    columns: Mapping[str, object],
    images=None,
    *,
    labels: Sequence[str] | None = None,
    methods_as_rows: bool = False,
    sign: str = "all",
    clip_percentile: float = 99.0,
    alpha: float = 0.85,
    cmap=CMAP,
    underlay: str = "gray",
    interpolation: str = "nearest",
    colorbar: bool = True,
    size: float = 1.8,
    title: str | None = None,
    layout: str | None = None,
) -> Figure:
    """Several methods side by side: one row per input, one column per method (or transposed).

    Args:
      columns: ``{method name: attributions}`` with each value a batch of shape
        ``(N, H, W)`` or ``(N, H, W, C)`` (``(N, C, H, W)`` with ``layout="CHW"``);
        all with the same ``N, H, W``. Each
        map is scaled on its own (:func:`normalize`), as methods differ in scale.
      images: ``None`` or the ``N`` inputs, ``(N, H, W)`` or ``(N, H, W, C)`` (or
        ``(N, C, H, W)`` with ``layout="CHW"``); when
        given, a first column shows them and every heatmap is blended over its input.
      labels: ``None`` or ``N`` strings naming the inputs (beside each input's row,
        or under each input's column when ``methods_as_rows``).
      methods_as_rows: put the methods in rows and the inputs in columns (wide
        figures for many inputs and few methods).
      sign, clip_percentile, alpha, cmap, underlay, interpolation: as in :func:`heatmap`.
      colorbar: add one horizontal colour key (an extra axes) under the grid.
      size: the side of one cell in inches.
      title: an optional figure title.
      layout: ``"HWC"`` or ``"CHW"``, how each image of a 4-D batch is laid out
        (``(N, C, H, W)`` with ``"CHW"``); ``None`` reads ``(N, H, W, C)`` but raises
        where the axis after ``N`` may be channels (size 1, 3 or 4, before two
        larger axes), as in :func:`heatmap`.

    Returns:
      A Figure with ``N * (len(columns) + (images is not None)) + colorbar`` axes.

    Example:
      >>> import numpy as np, jig.viz
      >>> rng = np.random.default_rng(0)
      >>> A = {"zero": rng.normal(size=(2, 8, 8)), "blur": rng.normal(size=(2, 8, 8))}
      >>> fig = jig.viz.grid(A, images=rng.uniform(size=(2, 8, 8)), labels=["a", "b"])
      >>> len(fig.axes)  # 2 rows x (1 image + 2 methods) + colour key
      7
    """
    _check_sign(sign)
    _check_percentile(clip_percentile)
    _check_underlay(underlay)
    alpha = _check_alpha(alpha)
    layout = _check_layout("jig.viz.grid", layout)
    if not isinstance(columns, Mapping) or not columns:
        raise TypeError(
            "columns must be a non-empty mapping {method name: attributions of shape (N, H, W[, C])}, "
            f"got {type(columns).__name__}"
        )
    batches = {}
    for name, a in columns.items():
        arr = _channels_last(_as_float_array(a, f"columns[{name!r}]"), layout, "jig.viz.grid",
                             f"columns[{name!r}]", batched=True)
        if arr.ndim not in (3, 4):
            raise ValueError(
                f"columns[{name!r}] must be a batch of attributions with shape (N, H, W) or "
                f"(N, H, W, C), got shape {arr.shape}; for one image use jig.viz.heatmap"
            )
        batches[name] = arr.sum(axis=-1) if arr.ndim == 4 else arr
    shapes = {name: b.shape for name, b in batches.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"columns must all have the same (N, H, W); got {shapes}")
    n, h, w = next(iter(shapes.values()))
    ims = None
    if images is not None:
        ims = _channels_last(_as_float_array(images, "images"), layout, "jig.viz.grid", "images", batched=True)
        if ims.ndim not in (3, 4) or ims.shape[:3] != (n, h, w):
            raise ValueError(
                f"images must have shape (N, H, W) or (N, H, W, C) = ({n}, {h}, {w}[, C]) to match "
                f"columns, got shape {ims.shape}"
            )
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must have one label per input ({n}), got {len(labels)}")
    kinds = (["input"] if ims is not None else []) + list(batches)
    rows, cols = (len(kinds), n) if methods_as_rows else (n, len(kinds))
    fig = Figure(figsize=(size * cols + 0.4, size * rows + (0.55 if colorbar else 0) + (0.3 if title else 0)),
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i in range(n):
        for k, kind in enumerate(kinds):
            ax = axes[k, i] if methods_as_rows else axes[i, k]
            if kind == "input" and ims is not None and k == 0:
                ax.imshow(_gray(ims[i], (h, w), "images"), cmap="gray", vmin=0, vmax=1,
                          interpolation=interpolation)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                _draw(ax, batches[kind][i], None if ims is None else ims[i], sign=sign,
                      clip_percentile=clip_percentile, alpha=alpha, cmap=cmap, title=None,
                      underlay=underlay, interpolation=interpolation)
            if methods_as_rows:
                if i == 0:
                    ax.set_ylabel(kind, fontsize=10)
                if k == len(kinds) - 1 and labels is not None:
                    ax.set_xlabel(labels[i], fontsize=9)
            else:
                if i == 0:
                    ax.set_title(kind, fontsize=10)
                if k == 0 and labels is not None:
                    ax.set_ylabel(labels[i], fontsize=9)
    if colorbar:
        if sign == "absolute":
            key = mcolors.LinearSegmentedColormap.from_list("jig_abs", [(1, 1, 1), _ABS])
            norm, label = mcolors.Normalize(0, 1), "|attribution|"
        else:
            key, norm = cmap, mcolors.Normalize(-1, 1)
            label = "red: against the output   \u2190  0  \u2192   green: for it"
        mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=key)
        cb = fig.colorbar(mappable, ax=axes, orientation="horizontal", fraction=0.035, shrink=0.6, aspect=45, pad=0.02)
        cb.set_ticks([])
        cb.set_label(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# --------------------------------------------------------------------------- text


def _texts(tokens, scores):
    """Normalise one text or several to lists of (tokens, scores) and check them."""
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of strings (one per token), not a single string; "
                        "split the text first, e.g. text.split()")
    tokens = list(tokens)
    nested = bool(tokens) and not isinstance(tokens[0], str)
    if nested:
        token_rows = [list(t) for t in tokens]
        if isinstance(scores, np.ndarray) and scores.ndim == 1:
            raise ValueError("scores must be one sequence of scores per text when tokens holds several texts")
        score_rows = list(scores)
        if len(score_rows) != len(token_rows):
            raise ValueError(
                f"tokens holds {len(token_rows)} texts but scores holds {len(score_rows)}; "
                "give one score sequence per text"
            )
    else:
        token_rows, score_rows = [tokens], [scores]
    out = []
    for i, (tk, sc) in enumerate(zip(token_rows, score_rows)):
        where = f" (text {i})" if nested else ""
        if not all(isinstance(t, str) for t in tk):
            raise TypeError(f"tokens{where} must all be strings")
        s = _as_float_array(sc, "scores")
        if s.ndim != 1:
            raise ValueError(
                f"scores{where} must be 1-D, one score per token, got shape {s.shape}; "
                "for embedding attributions of shape (T, D) sum the last axis first"
            )
        if len(tk) != s.shape[0]:
            raise ValueError(
                f"tokens and scores must have the same length{where}: {len(tk)} tokens but "
                f"{s.shape[0]} scores"
            )
        out.append((tk, s))
    return out, nested


def _token_colours(scores: np.ndarray, clip_percentile: float, scale: float | None):
    """Per token: an RGB background blended from white towards green/red by |score|."""
    if scale is None:
        v = normalize(scores, "all", clip_percentile)
    else:
        v = np.clip(scores / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(scores)
    rgb = []
    for x in v:
        base = _POS if x >= 0 else _NEG
        t = 0.8 * abs(x)
        rgb.append((1.0 - t) * np.ones(3) + t * base)
    return v, rgb


def _shared_scale(rows, clip_percentile, shared):
    if not shared:
        return None
    allm = np.concatenate([np.abs(s) for _, s in rows]) if rows else np.zeros(0)
    allm = allm[allm > 0]
    return float(np.percentile(allm, clip_percentile)) if allm.size else 0.0


def text_html(
    tokens: Sequence[str] | Sequence[Sequence[str]],
    scores,
    *,
    labels: Sequence[str] | None = None,
    clip_percentile: float = 100.0,
    shared_scale: bool = False,
) -> str:
    """Tokens as HTML, each in one ``<span>`` coloured by its attribution.

    Green backgrounds mark positive scores (evidence for the explained output),
    red negative; the colour's strength is ``|score|`` over the text's largest
    magnitude (or the ``clip_percentile`` of them). Each span's ``title`` holds
    the score, so hovering shows it. Tokens are HTML-escaped.

    Args:
      tokens: one text as a sequence of token strings, or several texts as a
        sequence of such sequences (one line each).
      scores: one score per token (for several texts: one sequence per text).
      labels: ``None`` or one label per text, shown before it (e.g. the prediction).
      clip_percentile: magnitudes above this percentile saturate (default 100: none).
      shared_scale: scale all texts together instead of each on its own.

    Returns:
      An HTML fragment (a ``<div>``) with exactly one ``<span>`` per token and no
      other spans, ready to embed in a page or a notebook (``IPython.display.HTML``).

    Example:
      >>> import jig.viz
      >>> html = jig.viz.text_html(["good", "<b>"], [0.5, -1.0])
      >>> html.count("<span "), html.count("</span>"), "&lt;b&gt;" in html
      (2, 2, True)
    """
    _check_percentile(clip_percentile)
    rows, nested = _texts(tokens, scores)
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"labels must have one label per text ({len(rows)}), got {len(labels)}")
    scale = _shared_scale(rows, clip_percentile, shared_scale)
    lines = []
    for i, (tk, s) in enumerate(rows):
        _, rgb = _token_colours(s, clip_percentile, scale)
        spans = [
            f'<span style="background-color: {mcolors.to_hex(c)}; padding: 1px 3px; '
            f'border-radius: 3px;" title="{float(x):.4g}">{_html.escape(t)}</span>'
            for t, x, c in zip(tk, s, rgb)
        ]
        head = f"<b>{_html.escape(labels[i])}</b> " if labels is not None else ""
        lines.append("<div>" + head + " ".join(spans) + "</div>")
    return '<div class="jig-text" style="font-family: sans-serif; line-height: 2;">' + "\n".join(lines) + "</div>"


def text_figure(
    tokens: Sequence[str] | Sequence[Sequence[str]],
    scores,
    *,
    labels: Sequence[str] | None = None,
    clip_percentile: float = 100.0,
    shared_scale: bool = False,
    width: float = 8.0,
    fontsize: float = 12.0,
    title: str | None = None,
) -> Figure:
    """The same coloured tokens as :func:`text_html`, drawn as a figure (for PNGs, terminals).

    Tokens are laid out left to right in boxes coloured like the HTML and wrap
    at ``width`` inches; each text starts on a new line, after its label.

    Args:
      tokens, scores, labels, clip_percentile, shared_scale: as in :func:`text_html`.
      width: the figure width in inches; the height follows from the wrapping.
      fontsize: the token font size in points.
      title: an optional title line.

    Returns:
      A Figure with one axes (axis lines hidden), one text artist per token
      (plus one per label and the title).

    Example:
      >>> import jig.viz
      >>> fig = jig.viz.text_figure(["I", "love", "it"], [0.1, 2.0, -0.3])
      >>> len(fig.axes[0].texts)
      3
    """
    _check_percentile(clip_percentile)
    rows, _ = _texts(tokens, scores)
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"labels must have one label per text ({len(rows)}), got {len(labels)}")
    scale = _shared_scale(rows, clip_percentile, shared_scale)
    fig = Figure(figsize=(width, 1.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    renderer = FigureCanvasAgg(fig).get_renderer()
    dpi = fig.dpi
    pad_px, gap_px = 0.45 * fontsize * dpi / 72, 0.35 * fontsize * dpi / 72
    line_px = 2.1 * fontsize * dpi / 72
    margin = 0.15 * dpi
    max_x = width * dpi - margin
    # First lay out in pixels from the top-left, then convert once the height is known.
    placed = []  # (x_px, line_index, artist)
    line = 0
    if title:
        t = ax.text(0, 0, title, fontsize=fontsize, fontweight="bold", va="center", ha="left")
        placed.append((margin, line, t))
        line += 1
    label_artists = []
    if labels is not None:
        label_artists = [ax.text(0, 0, str(lab), fontsize=fontsize * 0.85, color="0.35", va="center",
                                 ha="left", fontstyle="italic") for lab in labels]
    indent = margin
    if label_artists:
        indent += max(t.get_window_extent(renderer).width for t in label_artists) + 2 * gap_px
    for i, (tk, s) in enumerate(rows):
        if label_artists:
            placed.append((margin, line, label_artists[i]))
        x = indent
        _, rgb = _token_colours(s, clip_percentile, scale)
        for tok, c in zip(tk, rgb):
            t = ax.text(0, 0, tok, fontsize=fontsize, va="center", ha="left",
                        bbox=dict(boxstyle="round,pad=0.25", facecolor=c, edgecolor="none"))
            w = t.get_window_extent(renderer).width + pad_px
            if x + w > max_x and x > indent:
                line += 1
                x = indent
            placed.append((x, line, t))
            x += w + gap_px
        line += 1
    height_px = line * line_px + 2 * margin * 0.5
    fig.set_size_inches(width, height_px / dpi)
    for x_px, ln, t in placed:
        y_px = height_px - margin * 0.5 - (ln + 0.5) * line_px
        t.set_position((x_px / (width * dpi), y_px / height_px))
    return fig


# --------------------------------------------------------------------------- tabular


def bars(
    scores,
    names: Sequence[str],
    *,
    top: int = 10,
    signed: bool = True,
    title: str | None = None,
    width: float = 4.2,
) -> Figure:
    """Horizontal bar chart of the ``top`` features by ``|score|``, green positive, red negative.

    Args:
      scores: ``(F,)`` scores (e.g. mean attributions over a data set), or a
        mapping ``{panel title: (F,) scores}`` to compare several rankings side by
        side; features are ranked by the first panel and kept in that order in all.
      names: ``F`` feature names.
      top: how many features to show (the largest ``|score|`` first).
      signed: colour bars by sign (green/red); ``False`` draws them in one neutral
        colour, for magnitudes such as mean ``|A|`` or permutation importance.
      title: an optional figure title.
      width: the width of one panel in inches.

    Returns:
      A Figure with one axes per panel, each with ``min(top, F)`` bars.

    Example:
      >>> import numpy as np, jig.viz
      >>> fig = jig.viz.bars(np.array([0.1, -2.0, 0.5]), ["a", "b", "c"], top=2)
      >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
      ['b', 'c']
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    panels = dict(scores) if isinstance(scores, Mapping) else {"": scores}
    if not panels:
        raise ValueError("scores must not be an empty mapping")
    names = [str(n) for n in names]
    arrs = {}
    for key, s in panels.items():
        a = _as_float_array(s, "scores" if key == "" else f"scores[{key!r}]")
        if a.ndim != 1:
            raise ValueError(f"scores must be 1-D, one value per feature, got shape {a.shape}")
        if a.shape[0] != len(names):
            raise ValueError(f"names must have one name per score: {len(names)} names but {a.shape[0]} scores")
        arrs[key] = a
    first = next(iter(arrs.values()))
    order = np.argsort(-np.abs(first), kind="stable")[: min(int(top), first.shape[0])]
    k = len(order)
    fig = Figure(figsize=(width * len(arrs), 0.32 * k + 1.0 + (0.3 if title else 0)), layout="constrained")
    axes = fig.subplots(1, len(arrs), squeeze=False, sharey=True)[0]
    ypos = np.arange(k)[::-1]
    for ax, (key, a) in zip(axes, arrs.items()):
        vals = a[order]
        colours = [(_POS if v >= 0 else _NEG) if signed else _NEUTRAL for v in vals]
        ax.barh(ypos, vals, color=colours, height=0.7)
        ax.axvline(0.0, color="0.3", lw=0.8)
        ax.set_yticks(ypos, [names[i] for i in order], fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="x", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
        if key:
            ax.set_title(key, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
