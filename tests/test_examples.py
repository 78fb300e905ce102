"""The examples' reduced forms (--quick) run end to end and write their pictures."""

import importlib.util
import os
import re

import matplotlib.image
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_ok(path):
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) > 100 and img[..., :3].std() > 0.02


def test_digits_quick(tmp_path, capsys):
    assert _load("digits").main(["--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    rows = re.findall(r"^(zero|blurred|uniform noise|expected \(train\))\s+(\S+)\s+(\S+)\s+\S+s$", printed, re.M)
    assert [r[0] for r in rows] == ["zero", "blurred", "uniform noise", "expected (train)"]
    for _, delta, gap in rows:  # completeness: the error is small next to what is explained
        assert float(delta) < 0.05 * abs(float(gap)) + 1e-4
    assert sorted(os.listdir(tmp_path)) == ["digits_baselines.png", "digits_signs.png"]
    for name in os.listdir(tmp_path):
        _png_ok(tmp_path / name)


def test_tabular_quick(tmp_path, capsys):
    assert _load("tabular").main(["--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    pattern = r"Spearman rank correlation, .* vs permutation importance: ([+-][\d.]+)"
    rhos = [float(r) for r in re.findall(pattern, printed)]
    assert len(rhos) == 2 and all(-1 <= r <= 1 for r in rhos)
    accuracy = float(re.search(r"held-out accuracy: ([\d.]+)%", printed).group(1))
    assert accuracy > 80
    assert sorted(os.listdir(tmp_path)) == ["tabular_global.png", "tabular_patient.png"]
    for name in os.listdir(tmp_path):
        _png_ok(tmp_path / name)


@pytest.mark.parametrize("name", ["digits", "tabular"])
def test_examples_document_quick_and_out(name, capsys):
    with pytest.raises(SystemExit) as e:
        _load(name).main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--out" in out
