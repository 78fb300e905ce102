"""Regenerate the README gallery (docs/gallery/*.png) from the demo and the examples.

    python examples/make_gallery.py            # ~2 minutes on 2 CPU cores, offline

It runs ``jig demo`` and ``examples/digits.py`` / ``examples/tabular.py`` at their
default settings into a temporary folder, then stores the pictures the README shows
as 256-colour PNGs at most 960 pixels wide (each under 200 KB) in ``docs/gallery/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile

from PIL import Image  # a dependency of matplotlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLERY = {  # gallery name: (producer, file it writes)
    "demo_digits.png": ("demo", "digits.png"),
    "demo_sentiment.png": ("demo", "sentiment.png"),
    "digits_baselines.png": ("digits", "digits_baselines.png"),
    "tabular_patient.png": ("tabular", "tabular_patient.png"),
}
LIMIT = 200_000


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compact_png(src: str, dst: str, max_width: int = 960) -> int:
    """Save ``src`` at most ``max_width`` pixels wide as an optimised 256-colour PNG; returns its size."""
    img = Image.open(src).convert("RGB")
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)), Image.Resampling.LANCZOS)
    img.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(dst, optimize=True)
    return os.path.getsize(dst)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "gallery"), help="gallery folder")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from jig.__main__ import main as jig_main

    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: os.path.join(tmp, name) for name in ("demo", "digits", "tabular")}
        jig_main(["demo", "--out", folders["demo"], "--quiet"])
        _example("digits").main(["--out", folders["digits"]])
        _example("tabular").main(["--out", folders["tabular"]])
        for target, (producer, produced) in GALLERY.items():
            dst = os.path.join(args.out, target)
            size = compact_png(os.path.join(folders[producer], produced), dst)
            print(f"{dst}: {size / 1000:.0f} KB")
            if size > LIMIT:
                raise SystemExit(f"{dst} is {size} bytes, over the gallery's {LIMIT}-byte limit")
        # benchmarks/faithfulness.py (jig.metrics): the README's table of IG variants x metrics,
        # printed and written as faithfulness.md, and its deletion/insertion curves (several minutes)
        spec = importlib.util.spec_from_file_location("faithfulness", os.path.join(ROOT, "benchmarks", "faithfulness.py"))
        faithfulness = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(faithfulness)
        faithfulness.main(["--out", os.path.join(tmp, "faithfulness")])
        dst = os.path.join(args.out, "faithfulness.png")
        size = compact_png(os.path.join(tmp, "faithfulness", "faithfulness.png"), dst)
        print(f"{dst}: {size / 1000:.0f} KB")
        if size > LIMIT:
            raise SystemExit(f"{dst} is {size} bytes, over the gallery's {LIMIT}-byte limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
