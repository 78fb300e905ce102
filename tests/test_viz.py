"""jig.viz: figure shapes, colours by sign, HTML structure, and every bad input's message."""

import html.parser
import os
import subprocess
import sys

import matplotlib.colors as mcolors
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jig import viz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False).filter(lambda v: v == 0 or abs(v) > 1e-9)
arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite)


# --------------------------------------------------------------------------- normalize


@given(arrays, st.floats(0.01, 100.0))
def test_normalize_is_scale_invariant_and_odd(a, c):
    for sign in viz.SIGNS:
        np.testing.assert_allclose(viz.normalize(c * a, sign), viz.normalize(a, sign), atol=1e-9)
    np.testing.assert_allclose(viz.normalize(-a, "all"), -viz.normalize(a, "all"), atol=1e-12)
    np.testing.assert_allclose(viz.normalize(-a, "negative"), -viz.normalize(a, "positive"), atol=1e-12)


@given(arrays)
def test_normalize_ranges_and_sign_selection(a):
    v = viz.normalize(a, "all", 100)
    assert v.shape == a.shape and np.all(np.abs(v) <= 1)
    assert np.all(np.sign(v) == np.sign(a) * (np.abs(a) > 0))
    if np.any(a != 0):  # percentile 100 scales by the largest magnitude exactly
        assert np.isclose(np.abs(v).max(), 1.0)
    pos, neg, ab = (viz.normalize(a, s, 100) for s in ("positive", "negative", "absolute"))
    assert np.all(pos >= 0) and np.all(neg <= 0) and np.all(ab >= 0)
    assert np.all(pos[a <= 0] == 0) and np.all(neg[a >= 0] == 0)
    np.testing.assert_allclose(ab, np.abs(v))


def test_normalize_clips_outliers_at_the_percentile():
    a = np.concatenate([np.linspace(-1, 1, 99), [1000.0]])
    v = viz.normalize(a, "all", 90)
    scale = np.percentile(np.abs(a[a != 0]), 90)
    np.testing.assert_allclose(v[:99], np.clip(a[:99] / scale, -1, 1))
    assert v[-1] == 1.0  # the outlier saturates instead of washing out the rest
    assert viz.normalize(np.zeros(4)).tolist() == [0.0] * 4


# --------------------------------------------------------------------------- images


def _images(ax):
    return [im.get_array() for im in ax.get_images()]


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_heatmap_shape_and_channel_sum(shape):
    rng = np.random.default_rng(0)
    a = rng.normal(size=shape)
    fig = viz.heatmap(a, clip_percentile=100)
    assert len(fig.axes) == 1
    (arr,) = _images(fig.axes[0])
    assert arr.shape[:2] == (5, 7)
    summed = a.sum(-1) if a.ndim == 3 else a
    np.testing.assert_allclose(np.asarray(arr), viz.normalize(summed, "all", 100))


def test_heatmap_over_an_image_shows_the_image_then_the_overlay():
    a = np.zeros((4, 4))
    a[0, 0], a[3, 3] = 2.0, -1.0
    fig = viz.heatmap(a, image=np.ones((4, 4, 3)), clip_percentile=100)
    under, over = _images(fig.axes[0])
    assert under.shape == (4, 4) and over.shape == (4, 4, 4)
    over = np.asarray(over)
    assert over[1, 1, 3] == 0  # zero attribution: fully transparent
    assert over[0, 0, 1] > over[0, 0, 0] and over[3, 3, 0] > over[3, 3, 1]  # green positive, red negative
    assert over[0, 0, 3] > over[3, 3, 3] > 0  # opacity grows with |A|


def test_heatmap_outline_draws_a_contour_and_ax_composes():
    from matplotlib.figure import Figure

    img = np.zeros((8, 8))
    img[2:6, 2:6] = 1.0
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = viz.heatmap(np.ones((8, 8)), img, underlay="outline", ax=axes[1])
    assert out is fig and len(fig.axes) == 2
    assert len(axes[1].collections) >= 1 and not axes[0].get_images()


def test_grid_axes_count_and_orientation():
    rng = np.random.default_rng(1)
    cols = {"a": rng.normal(size=(3, 6, 5)), "b": rng.normal(size=(3, 6, 5, 2))}
    fig = viz.grid(cols, images=rng.uniform(size=(3, 6, 5)), labels=["x", "y", "z"])
    assert len(fig.axes) == 3 * 3 + 1
    gs = fig.axes[0].get_subplotspec().get_gridspec()
    assert gs.get_geometry() == (3, 3)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "a", "b"]
    for ax in fig.axes[:-1]:
        assert _images(ax)[0].shape[:2] == (6, 5)
    fig = viz.grid(cols, methods_as_rows=True, colorbar=False, labels=["x", "y", "z"])
    assert len(fig.axes) == 2 * 3
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 3)
    assert [ax.get_xlabel() for ax in fig.axes[3:]] == ["x", "y", "z"]


def test_absolute_mode_uses_one_hue_and_an_unsigned_key():
    a = np.array([[[-2.0, 0.0], [1.0, 0.5]]])
    fig = viz.grid({"m": a}, images=np.ones((1, 2, 2)), sign="absolute", clip_percentile=100)
    over = np.asarray(_images(fig.axes[1])[1])
    np.testing.assert_allclose(over[0, 0, :3], over[1, 0, :3])  # same hue for -2 and +1
    np.testing.assert_allclose(over[..., 3], 0.85 * np.sqrt(np.abs(a[0]) / 2))  # opacity by |A|
    assert fig.axes[-1].get_xlabel() == "|attribution|"


# --------------------------------------------------------------------------- text


class _Spans(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.spans, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "span":
            self._open = dict(attrs)
            self._open["text"] = ""

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "span":
            self.spans.append(self._open)
            self._open = None


def _parse(s):
    p = _Spans()
    p.feed(s)
    return p.spans


def _bg(span):
    style = dict(kv.split(":", 1) for kv in span["style"].split(";") if kv.strip())
    return np.array(mcolors.to_rgb(style["background-color"].strip()))


@given(st.lists(st.tuples(st.text(min_size=1, max_size=6), finite), min_size=1, max_size=12))
def test_text_html_one_coloured_span_per_token(pairs):
    tokens = [t for t, _ in pairs]
    scores = np.array([s for _, s in pairs])
    spans = _parse(viz.text_html(tokens, scores))
    assert len(spans) == len(tokens)
    assert [s["text"] for s in spans] == tokens  # escaped and unescaped back exactly
    peak = np.abs(scores).max()
    for span, score in zip(spans, scores):
        r, g, b = _bg(span)
        visible = abs(score) > 0.02 * peak  # paler than that rounds to white in 8-bit colour
        if score > 0 and visible:
            assert g > r
        elif score < 0 and visible:
            assert r > g
        if score == 0:
            assert np.allclose((r, g, b), 1.0)
        assert float(span["title"]) == pytest.approx(score, rel=1e-3, abs=1e-300)


def test_text_html_intensity_grows_with_magnitude_and_several_texts():
    s = viz.text_html([["a", "b", "c"], ["d"]], [[0.1, 0.5, 1.0], [-2.0]], labels=["one", "two"])
    spans = _parse(s)
    assert [x["text"] for x in spans] == ["a", "b", "c", "d"]
    whiteness = [_bg(x).sum() for x in spans[:3]]
    assert whiteness[0] > whiteness[1] > whiteness[2]  # stronger colour for larger |score|
    assert "one" in s and "two" in s
    shared = _parse(viz.text_html([["a"], ["b"]], [[1.0], [4.0]], shared_scale=True))
    assert _bg(shared[0]).sum() > _bg(shared[1]).sum()  # on a shared scale, 1 is paler than 4
    own = _parse(viz.text_html([["a"], ["b"]], [[1.0], [4.0]]))
    np.testing.assert_allclose(_bg(own[0]), _bg(own[1]))  # each text scaled on its own


def test_text_figure_one_box_per_token_coloured_like_the_html():
    tokens, scores = ["I", "love", "it", "not"], [0.1, 2.0, 0.0, -1.0]
    fig = viz.text_figure(tokens, scores, labels=["p=0.9"], title="T")
    texts = fig.axes[0].texts
    boxed = [t for t in texts if t.get_bbox_patch() is not None]
    assert [t.get_text() for t in boxed] == tokens
    assert len(texts) == len(tokens) + 2  # + label + title
    spans = _parse(viz.text_html(tokens, scores))
    for t, span in zip(boxed, spans):
        np.testing.assert_allclose(t.get_bbox_patch().get_facecolor()[:3], _bg(span), atol=1 / 255)
    w, h = fig.get_size_inches()
    assert w == 8.0 and 0 < h < 3
    long = viz.text_figure(["word"] * 60, np.ones(60), width=4.0)
    assert long.get_size_inches()[1] > h  # wraps onto more lines


# --------------------------------------------------------------------------- bars


def test_bars_top_features_in_order_with_sign_colours():
    scores = np.array([0.1, -3.0, 2.0, 0.5, -0.2])
    fig = viz.bars(scores, list("abcde"), top=3)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c", "d"]
    patches = sorted(ax.patches, key=lambda p: -p.get_y())
    assert [p.get_width() for p in patches] == [-3.0, 2.0, 0.5]
    r, g, _, _ = patches[0].get_facecolor()
    assert r > g  # negative: red
    fig = viz.bars({"one": scores, "two": -scores}, list("abcde"), top=10, signed=False)
    assert len(fig.axes) == 2 and all(len(ax.patches) == 5 for ax in fig.axes)
    colours = {tuple(p.get_facecolor()) for ax in fig.axes for p in ax.patches}
    assert len(colours) == 1  # unsigned: one neutral colour


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: viz.text_html(["a", "b"], [1.0]), ValueError, "tokens and scores must have the same length"),
        (lambda: viz.text_figure(["a"], [1.0, 2.0]), ValueError, "2 scores"),
        (lambda: viz.text_html("a b", [1.0, 2.0]), TypeError, "not a single string"),
        (lambda: viz.text_html(["a"], [[1.0]]), ValueError, "scores must be 1-D"),
        (lambda: viz.text_html([["a"], ["b"]], [[1.0]]), ValueError, "2 texts but scores holds 1"),
        (lambda: viz.text_html([["a"]], [[1.0]], labels=["x", "y"]), ValueError, "labels must have one label per text"),
        (lambda: viz.text_html(["a", 3], [1.0, 2.0]), TypeError, "tokens must all be strings"),
        (lambda: viz.text_html(["a"], [float("nan")]), ValueError, "scores contains NaN"),
        (lambda: viz.heatmap(np.ones(5)), ValueError, r"attributions must be .* \(H, W, C\), got shape \(5,\)"),
        (lambda: viz.heatmap(np.ones((2, 3, 4, 5))), ValueError, "for a batch use jig.viz.grid"),
        (lambda: viz.heatmap(np.ones((4, 4)), image=np.ones((5, 4))), ValueError, r"image has spatial shape \(5, 4\)"),
        (lambda: viz.heatmap(np.ones((4, 4)), image=np.ones((4, 4, 2))), ValueError, "image must have shape"),
        (lambda: viz.heatmap(np.ones((4, 4)), sign="pos"), ValueError, "sign must be one of"),
        (lambda: viz.heatmap(np.ones((4, 4)), underlay="x"), ValueError, "underlay must be one of"),
        (lambda: viz.heatmap(np.ones((4, 4)), clip_percentile=0), ValueError, "clip_percentile must be in"),
        (lambda: viz.heatmap(np.ones((4, 4)), alpha=2), ValueError, "alpha must be"),
        (lambda: viz.normalize(np.ones(3), sign="abs"), ValueError, "sign must be one of"),
        (lambda: viz.grid({}), TypeError, "columns must be a non-empty mapping"),
        (lambda: viz.grid({"a": np.ones((4, 4))}), ValueError, r"columns\['a'\] must be a batch"),
        (lambda: viz.grid({"a": np.ones((2, 4, 4)), "b": np.ones((3, 4, 4))}), ValueError, "same"),
        (lambda: viz.grid({"a": np.ones((2, 4, 4))}, images=np.ones((3, 4, 4))), ValueError, "images must have shape"),
        (lambda: viz.grid({"a": np.ones((2, 4, 4))}, labels=["x"]), ValueError, "labels must have one label per input"),
        (lambda: viz.bars(np.ones(3), ["a", "b"]), ValueError, "names must have one name per score"),
        (lambda: viz.bars(np.ones((3, 2)), ["a", "b", "c"]), ValueError, "scores must be 1-D"),
        (lambda: viz.bars(np.ones(3), list("abc"), top=0), ValueError, "top must be a positive int"),
        (lambda: viz.bars({}, []), ValueError, "must not be an empty mapping"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_import_jig_does_not_need_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import jig\n"
        "assert 'viz' in dir(jig)\n"
        "try:\n    jig.viz\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "jig.viz needs matplotlib" in out.stdout and "jig[viz]" in out.stdout
