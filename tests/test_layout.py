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


# ----------------------------------------------------------------------- blur: layout and padding

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jig  # noqa: E402

BLUR_ASK = (r"{}: axes must be given for {} of shape \({}\), got None \(the default \(0, 1\)\); .* pass "
            r"axes=\(1, 2\) to blur a CHW image")


def _image(shape, seed=1):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def test_gaussian_blur_asks_for_axes_where_the_layout_is_in_doubt():
    for shape in [(3, 12, 12), (1, 12, 12), (4, 9, 9), (1, 12, 12, 3)]:
        with pytest.raises(ValueError, match=BLUR_ASK.format("jig.paths.gaussian_blur", "the input",
                                                             ", ".join(map(str, shape)))):
            jig.paths.gaussian_blur(_image(shape), 1.0)
    # CHW with axes=(1, 2) is the HWC blur, moved
    hwc = _image((12, 12, 3))
    chw = np.moveaxis(hwc, -1, 0)
    blur = jax.jit(jig.paths.gaussian_blur, static_argnames=("axes", "radius"))
    np.testing.assert_allclose(np.asarray(blur(chw, 1.5, radius=5, axes=(1, 2))),
                               np.moveaxis(np.asarray(blur(hwc, 1.5, radius=5)), -1, 0), atol=1e-6)
    # HW and HWC (and a flat HWC said explicitly) keep the default
    for shape in [(12, 12), (4, 4, 3), (3, 2, 8)]:
        x = _image(shape)
        np.testing.assert_array_equal(np.asarray(blur(x, 1.0, radius=3)), np.asarray(blur(x, 1.0, radius=3, axes=(0, 1))))
    assert blur(_image((3, 12, 12)), 1.0, radius=3, axes=(0, 1)).shape == (3, 12, 12)


def test_blur_path_and_blurred_baseline_ask_for_axes():
    f = lambda x: jnp.sum(jnp.tanh(x) ** 2)  # noqa: E731
    chw = _image((3, 10, 10))
    with pytest.raises(ValueError, match=BLUR_ASK.format("jig.paths.blur", r"the attributed input \(leaf 0\)",
                                                         "3, 10, 10")):
        jig.ig(f, None, 8, path=jig.paths.blur(2.0))(chw)
    with pytest.raises(ValueError, match=BLUR_ASK.format("jig.baselines.blurred", "the input", "3, 10, 10")):
        jig.baselines.blurred(2.0)(chw)
    # with axes=(1, 2) a CHW explanation is the HWC one, moved
    hwc = np.moveaxis(chw, 0, -1)
    a_chw = jig.ig(f, None, 8, path=jig.paths.blur(2.0, axes=(1, 2)))(chw)
    a_hwc = jig.ig(f, None, 8, path=jig.paths.blur(2.0))(hwc)
    np.testing.assert_allclose(np.moveaxis(np.asarray(a_chw), 0, -1), np.asarray(a_hwc), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jig.baselines.blurred(2.0, axes=(1, 2))(chw)),
                               np.moveaxis(np.asarray(jig.baselines.blurred(2.0)(hwc)), -1, 0), atol=1e-6)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_blur_modes_equal_scipy(mode):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = _image((12, 10, 3))
    for sigma in (0.7, 2.0):
        got = np.asarray(jax.jit(lambda x: jig.paths.gaussian_blur(x, sigma, truncate=4.0, mode=mode))(x))
        want = ndimage.gaussian_filter(x, sigma=[sigma, sigma, 0], mode=mode, truncate=4.0)
        np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(np.asarray(jig.baselines.blurred(1.5, truncate=4.0, mode=mode)(x)),
                               ndimage.gaussian_filter(x, sigma=[1.5, 1.5, 0], mode=mode, truncate=4.0), atol=2e-6)


def test_constant_mode_pads_with_zeros_and_reflect_keeps_mass():
    ones = np.ones((9, 9), np.float32)
    reflect, constant = (np.asarray(jax.jit(lambda x: jig.paths.gaussian_blur(x, 2.0, mode=m))(ones))
                         for m in ("reflect", "constant"))
    np.testing.assert_allclose(reflect, ones, atol=1e-6)  # a flat image stays flat
    assert constant[4, 4] < 1.0 and constant[0, 0] < constant[0, 4] < constant[4, 4]  # darker to the edges
    # the path's start is the zero-padded blur, and completeness holds against it
    f = lambda x: jnp.sum(jnp.sin(3 * x) * x)  # noqa: E731
    x = _image((9, 9))
    A, delta = jig.ig(f, None, 32, path=jig.paths.blur(2.0, mode="constant"), return_delta=True)(x)
    start = jax.jit(lambda x: jig.paths.gaussian_blur(x, 2.0, mode="constant", radius=6))(x)
    assert abs(float(A.sum()) - float(f(x) - f(start))) < 2e-3 and abs(float(delta)) < 2e-3
    A_reflect = jig.ig(f, None, 32, path=jig.paths.blur(2.0))(x)
    assert np.abs(np.asarray(A) - np.asarray(A_reflect)).max() > 1e-2  # the modes differ at the edges


def test_bad_mode():
    with pytest.raises(ValueError, match=r"jig.paths.blur: mode must be one of \['constant', 'reflect'\], got 'wrap'"):
        jig.paths.blur(2.0, mode="wrap")
    with pytest.raises(ValueError, match=r"jig.paths.gaussian_blur: mode must be one of .*got 'zeros'"):
        jig.paths.gaussian_blur(np.ones((4, 4)), 1.0, mode="zeros")
    with pytest.raises(ValueError, match=r"jig.baselines.blurred: mode must be one of .*got None"):
        jig.baselines.blurred(1.0, mode=None)
