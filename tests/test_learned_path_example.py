"""examples/learned_path.py: the quick run improves its stated objective."""

import importlib.util
import pathlib

import numpy as np

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "learned_path.py"


def load_example():
    spec = importlib.util.spec_from_file_location("learned_path", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_warp_is_a_monotone_reparametrisation_starting_at_the_identity():
    ex = load_example()
    alphas = np.linspace(0.0, 1.0, 11)
    identity = [float(ex.warp(a, np.zeros(ex.DEGREE, np.float32))) for a in alphas]
    np.testing.assert_allclose(identity, alphas, atol=1e-6)
    theta = np.random.default_rng(0).normal(size=ex.DEGREE).astype(np.float32) * 2
    phi = np.array([float(ex.warp(a, theta)) for a in alphas])
    assert phi[0] == 0.0 and abs(phi[-1] - 1.0) < 1e-6
    assert np.all(np.diff(phi) > 0)


def test_quick_run_lowers_the_completeness_objective(capsys):
    ex = load_example()
    result = ex.main(["--quick"])
    before, after = result["before"], result["after"]
    assert after["train"] < 0.5 * before["train"]
    assert after["held_out"] < 0.5 * before["held_out"]  # it generalises to new digits
    assert after["attribution_error"] < before["attribution_error"]
    out = capsys.readouterr().out
    assert "objective (train batch)" in out and "learned warp" in out
