"""Issue 12: where a picture cannot tell which axes of an image are spatial, it asks.

A 3-D image whose first axis has size 1, 3 or 4 before two larger axes may be CHW or a
very flat HWC image; the picture functions raise and ask for ``layout=`` instead of
drawing a strip. HW and HWC keep working without it.
"""

from __future__ import annotations

import numpy as np
import pytest

viz = pytest.importorskip("jig.viz")

RNG = np.random.default_rng(0)
HWC = RNG.normal(size=(28, 28, 3))
CHW = np.moveaxis(HWC, -1, 0)
IMG_HWC = RNG.uniform(size=(28, 28, 3))
IMG_CHW = np.moveaxis(IMG_HWC, -1, 0)


def _drawn(fig):
    """The arrays of every image drawn in every axes of ``fig``."""
    return [np.asarray(im.get_array()) for ax in fig.axes for im in ax.images]


def _same(fig_a, fig_b):
    a, b = _drawn(fig_a), _drawn(fig_b)
    assert len(a) == len(b) and a
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


ASK = r"layout must be given for {} of shape \({}\), got None; .* pass layout='CHW' \(channels first\) or layout='HWC'"


@pytest.mark.parametrize("shape", [(3, 28, 28), (1, 28, 28), (4, 9, 9)])
def test_heatmap_asks_for_the_layout_of_ambiguous_attributions(shape):
    with pytest.raises(ValueError, match="jig.viz.heatmap: " + ASK.format("attributions", ", ".join(map(str, shape)))):
        viz.heatmap(np.ones(shape))


def test_heatmap_asks_for_the_layout_of_an_ambiguous_image():
    with pytest.raises(ValueError, match="jig.viz.heatmap: " + ASK.format("image", "3, 28, 28")):
        viz.heatmap(HWC.sum(-1), image=IMG_CHW)
    with pytest.raises(ValueError, match="jig.viz.heatmap: " + ASK.format("image", "1, 28, 28")):
        viz.heatmap(HWC.sum(-1), image=IMG_CHW[:1])


def test_heatmap_chw_equals_hwc():
    fig = viz.heatmap(CHW, image=IMG_CHW, layout="CHW")
    assert _drawn(fig)[0].shape[:2] == (28, 28)
    _same(fig, viz.heatmap(HWC, image=IMG_HWC))
    # a summed (H, W) map over a CHW image, and HWC said explicitly
    _same(viz.heatmap(HWC.sum(-1), image=IMG_CHW, layout="CHW"), viz.heatmap(HWC, image=IMG_HWC))
    _same(viz.heatmap(HWC, image=IMG_HWC, layout="HWC"), viz.heatmap(HWC, image=IMG_HWC))


def test_hw_and_hwc_need_no_layout():
    # unambiguous shapes draw as before: HW, HWC, a small HWC whose first axis is 4 but not
    # smaller than both others, a (1, 1, 5) one-pixel image
    for a in (HWC.sum(-1), HWC, RNG.normal(size=(4, 4, 3)), RNG.normal(size=(3, 2, 8))):
        assert _drawn(viz.heatmap(a))[0].shape[:2] == a.shape[:2]
    # an explicit HWC reads a flat image as it is
    assert _drawn(viz.heatmap(np.ones((3, 28, 28)), layout="HWC"))[0].shape[:2] == (3, 28)


def test_grid_asks_and_reads_channels_first():
    batch_hwc, ims_hwc = np.stack([HWC, -HWC]), np.stack([IMG_HWC, 1 - IMG_HWC])
    batch_chw, ims_chw = np.moveaxis(batch_hwc, -1, 1), np.moveaxis(ims_hwc, -1, 1)
    with pytest.raises(ValueError, match=r"jig.viz.grid: " + ASK.format(r"columns\['ig'\]", "2, 3, 28, 28")):
        viz.grid({"ig": batch_chw})
    with pytest.raises(ValueError, match=r"jig.viz.grid: " + ASK.format("images", "2, 3, 28, 28")):
        viz.grid({"ig": batch_hwc}, images=ims_chw)
    _same(viz.grid({"ig": batch_chw}, images=ims_chw, layout="CHW"), viz.grid({"ig": batch_hwc}, images=ims_hwc))
    # (N, H, W) batches are not ambiguous: three grey 28x28 maps
    assert len(viz.grid({"ig": batch_hwc.sum(-1)[:1].repeat(3, 0)}, colorbar=False).axes) == 3


def test_bad_layout_value():
    with pytest.raises(ValueError, match=r"jig.viz.heatmap: layout must be one of \['CHW', 'HWC'\], got 'chw'"):
        viz.heatmap(CHW, layout="chw")
    with pytest.raises(ValueError, match=r"jig.viz.grid: layout must be one of \['CHW', 'HWC'\], got 'NCHW'"):
        viz.grid({"ig": CHW[None]}, layout="NCHW")
