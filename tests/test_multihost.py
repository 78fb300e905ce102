"""Two JAX processes joined by jax.distributed.initialize on 127.0.0.1 give one process's attributions.

Runs ``examples/multihost.py``'s workers as subprocesses (2 processes x 2 CPU devices,
process-local batches of 8 and 3 rows), bounded in time; the launcher kills any worker
still running when it returns or fails.
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _example():
    spec = importlib.util.spec_from_file_location("jig_example_multihost", ROOT / "examples" / "multihost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_equal_one_process(tmp_path):
    ex = _example()
    ex.launch(num_processes=2, devices=2, outdir=str(tmp_path), timeout=90)
    parts = {i: np.load(tmp_path / f"process{i}.npz") for i in range(2)}
    # each process got back exactly its own (uneven) rows
    assert [parts[i]["sharded"].shape[0] for i in range(2)] == [8, 3]
    multi, streamed = ex.gather(str(tmp_path), 2)

    params, xs, classes = ex.problem()
    one_process = np.asarray(jax.vmap(ex.make_explainer(), in_axes=(0, 0, None))(xs, classes, params))
    assert multi.shape == one_process.shape == (ex.ROWS, ex.FEATURES)
    np.testing.assert_allclose(multi, one_process, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(streamed, one_process, rtol=1e-5, atol=1e-6)
    # global jax.Array inputs: each process read its own shards of the global result
    for i in range(2):
        idx = parts[i]["global_idx"]
        np.testing.assert_allclose(parts[i]["global_rows"], one_process[idx], rtol=1e-5, atol=1e-6)
    # a call where process 1 passed no rows
    assert parts[1]["only_first"].shape == (0, ex.FEATURES)
    np.testing.assert_allclose(parts[0]["only_first"], one_process[:8], rtol=1e-5, atol=1e-6)
    # not a trivial agreement: the rows differ from each other
    assert np.abs(one_process[0] - one_process[-1]).max() > 1e-3
