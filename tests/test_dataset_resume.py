"""Issue 12: jig.sharded never batches an argument by guessing; explain_dataset(out=path)
refuses to replace a file, checks it can write before computing, and resumes a killed run.

The kill tests run this file as a script (``python tests/test_dataset_resume.py ...``):
a worker explains ROWS rows in batches of BATCH with a ``jax.debug.callback`` that logs
each row it computes and, in the first run, stops for good at row ``hold`` (so the run is
killed with SIGKILL in the middle, at a known batch).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import jig

ROWS, FEATURES, BATCH = 36, 5, 4  # 9 batches on one device
W = np.linspace(-1.0, 1.0, FEATURES * 3, dtype=np.float32).reshape(FEATURES, 3)


# ----------------------------------------------------------------------- the explained model


def _data(rows=ROWS, process=0):
    rng = np.random.RandomState(process)
    xs = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    ids = np.arange(rows, dtype=np.int32) + 1000 * process
    return xs, ids


def _gradient_x_input(x, w):
    return jax.grad(lambda x: jnp.sum(jnp.tanh(x @ w)))(x) * x


def _closed_form(xs, w=W):
    return (1.0 - np.tanh(xs @ w) ** 2) @ w.T * xs


def _counted(calls: list):
    """An explainer of one row that appends its row id to ``calls`` when it runs."""

    def explain_one(x, i, w):
        jax.debug.callback(lambda i: calls.append(int(i)), i)
        return _gradient_x_input(x, w)

    return explain_one


def _one_device():  # not at import: the workers call jax.distributed.initialize first
    return Mesh(np.array(jax.devices()[:1]), ("batch",))


def _run(calls, xs, ids, out, **kw):
    return jig.explain_dataset(
        _counted(calls), xs, ids, W, in_axes=(0, 0, None), batch_size=BATCH, progress=False, out=out,
        mesh=_one_device(), **kw,
    )


# ----------------------------------------------------------------------- item 1: in_axes


def test_sharded_does_not_slice_parameters_whose_size_equals_the_batch():
    # w has as many entries as there are rows: the old default (every argument batched)
    # sliced it per row without any error (row 0 came out w[0] * x**2 for every feature)
    f = lambda x, w: jnp.sum(w * x**2)  # noqa: E731
    xs = np.ones((4, 4), np.float32)
    w = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    explain = jig.ig(f, 0.0, 8)
    with pytest.raises(ValueError, match=r"jig.sharded: in_axes must be given when fn is called with more than "
                                         r"one positional argument .*got 2 positional arguments and no in_axes; "
                                         r"e.g. in_axes=\(0, None\)"):
        jig.sharded(explain)(xs, w)
    with pytest.raises(ValueError, match=r"jig.explain_dataset: in_axes must be given .*in_axes=\(0, None, None\)"):
        jig.explain_dataset(lambda x, w, v: x, xs, w, w, progress=False)
    got = np.asarray(jig.sharded(explain, in_axes=(0, None))(xs, w))
    np.testing.assert_allclose(got, np.broadcast_to(w * xs[0] ** 2, (4, 4)), rtol=1e-5)
    # batching every argument stays available, said explicitly
    per_row = np.asarray(jig.sharded(lambda x, w: _gradient_x_input(x, w[:, None]), in_axes=0)(xs, np.ones((4, 4), np.float32)))
    assert per_row.shape == (4, 4)
    # one argument: batched without in_axes
    np.testing.assert_allclose(np.asarray(jig.sharded(jig.ig(lambda x: jnp.sum(x**2), 0.0, 8))(xs)), xs**2, rtol=1e-5)


# ----------------------------------------------------------------------- item 2: out=path


def test_existing_out_is_refused_before_computing_unless_overwrite(tmp_path):
    xs, ids = _data()
    out = tmp_path / "A.npy"
    np.save(out, np.full((3,), 7.0))
    before = out.read_bytes()
    calls: list = []
    with pytest.raises(FileExistsError, match=r"jig.explain_dataset: out must be a path that does not exist yet, "
                                              r"got '.*A.npy', which exists; pass overwrite=True"):
        _run(calls, xs, ids, str(out))
    assert out.read_bytes() == before and calls == []
    (tmp_path / "B.npy").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="which exists"):
        _run(calls, xs, ids, tmp_path / "B.npy")  # a PathLike too
    assert calls == []
    got = _run(calls, xs, ids, str(out), overwrite=True)
    np.testing.assert_allclose(np.load(out), _closed_form(xs), rtol=1e-5, atol=1e-6)
    assert isinstance(got, np.memmap) and sorted(calls) == ids.tolist()
    record = json.loads((tmp_path / "A.npy.progress.json").read_text())
    assert record["batches_done"] == record["batches"] == ROWS // BATCH and record["shape"] == [ROWS, FEATURES]


def test_out_folder_and_writability_are_checked_before_computing(tmp_path):
    xs, ids = _data()
    calls: list = []
    with pytest.raises(ValueError, match=r"jig.explain_dataset: out must be a path in an existing folder, got "
                                         r"'.*missing/A.npy'; the folder .*missing does not exist"):
        _run(calls, xs, ids, str(tmp_path / "missing" / "A.npy"))
    with pytest.raises(ValueError, match=r"out must be a file path, got '.*', a folder"):
        _run(calls, xs, ids, str(tmp_path))
    two = lambda x, i, w: (x, x)  # noqa: E731
    with pytest.raises(ValueError, match="must return a single array"):
        jig.explain_dataset(two, xs, ids, W, in_axes=(0, 0, None), progress=False, out=tmp_path / "two.npy")
    assert not (tmp_path / "two.npy").exists()
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(ValueError, match=r"out must be a path in a folder this process can create files in"):
                _run(calls, xs, ids, str(locked / "A.npy"))
        finally:
            locked.chmod(0o755)
    assert calls == []


def test_resume_errors(tmp_path):
    xs, ids = _data()
    calls: list = []
    out = str(tmp_path / "A.npy")
    with pytest.raises(ValueError, match=r"jig.explain_dataset: resume must be True only for an interrupted run: its "
                                         r"progress record .*A.npy.progress.json, got no such file; run without resume"):
        _run(calls, xs, ids, out, resume=True)
    with pytest.raises(ValueError, match=r"out must be a path \(str or os.PathLike\) when resume=True, got None"):
        _run(calls, xs, ids, None, resume=True)
    with pytest.raises(ValueError, match=r"overwrite must be False when resume=True"):
        _run(calls, xs, ids, out, resume=True, overwrite=True)
    with pytest.raises(TypeError, match=r"resume must be True or False, got 'yes'"):
        _run(calls, xs, ids, out, resume="yes")
    assert calls == []
    _run(calls, xs, ids, out)
    calls.clear()
    with pytest.raises(ValueError, match=r"resume must be True only for the same call as the interrupted one, got a "
                                         r"progress record .* with batch_size 4 \(this call: 8\)"):
        jig.explain_dataset(_counted(calls), xs, ids, W, in_axes=(0, 0, None), batch_size=8, progress=False,
                            out=out, mesh=_one_device(), resume=True)
    with pytest.raises(ValueError, match=r"shape \[36, 5\] \(this call: \[40, 5\]\)"):
        _run(calls, *_data(40), out, resume=True)
    with pytest.raises(ValueError, match=r"dtype '<f4' \(this call: '<f2'\)"):
        jig.explain_dataset(lambda x, i, w: _gradient_x_input(x, w).astype(jnp.float16), xs, ids, W,
                            in_axes=(0, 0, None), batch_size=BATCH, progress=False, out=out, mesh=_one_device(),
                            resume=True)
    pathlib.Path(out + ".progress.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"resume must be True only with a readable progress record"):
        _run(calls, xs, ids, out, resume=True)
    assert calls == []


# ----------------------------------------------------------------------- item 2: killed and resumed


def _worker(out: str, log: str, hold: int, resume: bool, processes: int, process: int, port: int) -> None:
    if processes > 1:
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=processes, process_id=process,
            coordinator_bind_address=f"127.0.0.1:{port}", initialization_timeout=60,
        )

    def note(i):
        i = int(i)
        if i == hold:
            pathlib.Path(log + ".held").touch()
            time.sleep(600)  # killed here
        with open(log, "a") as f:
            f.write(f"{i}\n")

    def explain_one(x, i, w):
        jax.debug.callback(note, i)
        return _gradient_x_input(x, w)

    xs, ids = _data(ROWS - 8 * process, process)  # process 1 has fewer rows
    jig.explain_dataset(explain_one, xs, ids, W, in_axes=(0, 0, None), batch_size=BATCH, progress=False,
                        out=out, resume=resume)
    if processes > 1:
        jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, name, hold, resume, processes=1, **popen):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    port = _free_port()
    return [
        subprocess.Popen(
            [sys.executable, __file__, str(tmp_path / f"{name}{i}.npy"), str(tmp_path / f"log{i}"), str(hold),
             str(int(resume)), str(processes), str(i), str(port)],
            env=env, **popen,
        )
        for i in range(processes)
    ]


def _wait(procs, timeout=120, ok=True):
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if ok:
        assert [p.returncode for p in procs] == [0] * len(procs)


def _kill_when_held(tmp_path, procs, timeout=120):
    held = tmp_path / "log0.held"
    deadline = time.monotonic() + timeout
    while not held.exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "the worker never reached the held row"
        time.sleep(0.05)
    time.sleep(0.5)  # let the batches before the held one be written
    for p in procs:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


def _logged(tmp_path, i):
    path = tmp_path / f"log{i}"
    rows = [int(r) for r in path.read_text().split()] if path.exists() else []
    path.unlink(missing_ok=True)
    return rows


def _done(tmp_path, name, i):
    return json.loads((tmp_path / f"{name}{i}.npy.progress.json").read_text())["batches_done"]


def test_killed_run_resumes_from_the_last_completed_batch(tmp_path):
    hold = 5 * BATCH  # the first row of batch 5 never finishes in the first run
    _kill_when_held(tmp_path, _start(tmp_path, "A", hold, resume=False))
    done = _done(tmp_path, "A", 0)
    assert 4 <= done <= 5, done  # batch 5 is held: 5 batches recorded, or 4 if dispatch blocked on it
    first = _logged(tmp_path, 0)
    assert set(range(done * BATCH)) <= set(first)
    assert not any(r >= 6 * BATCH for r in first)  # nothing past the held batch ran

    second: list = []
    _run(second, *_data(), str(tmp_path / "A0.npy"), resume=True)  # resumed here, on one device
    # the resumed run computed exactly the batches not recorded as done, each row once
    assert sorted(second) == list(range(done * BATCH, ROWS))
    assert _done(tmp_path, "A", 0) == ROWS // BATCH

    calls: list = []
    _run(calls, *_data(), str(tmp_path / "B0.npy"))  # an uninterrupted run
    assert sorted(calls) == list(range(ROWS))
    resumed, straight = np.load(tmp_path / "A0.npy"), np.load(tmp_path / "B0.npy")
    np.testing.assert_array_equal(resumed, straight)  # row for row, bit for bit
    np.testing.assert_allclose(resumed, _closed_form(_data()[0]), rtol=1e-5, atol=1e-6)


def test_killed_run_of_two_processes_resumes(tmp_path):
    hold = 5 * BATCH  # process 0 stops in its batch 5; process 1 may run ahead
    _kill_when_held(tmp_path, _start(tmp_path, "A", hold, resume=False, processes=2))
    done = [_done(tmp_path, "A", i) for i in range(2)]
    start = min(done)
    assert 4 <= done[0] <= 5, done
    for i in range(2):
        _logged(tmp_path, i)

    _wait(_start(tmp_path, "A", -1, resume=True, processes=2))
    rows = [ROWS, ROWS - 8]
    # an unpartitioned debug callback sees the global batch, so process 0 logs every process's rows
    logged = _logged(tmp_path, 0) + _logged(tmp_path, 1)
    expect = [r for i in range(2) for r in _data(rows[i], i)[1][start * BATCH:].tolist()]
    # both processes ran every batch from the earliest unfinished one, and no earlier one
    assert sorted(set(logged)) == sorted(expect)
    # each row once; only process 1's last row repeats, as the padding of batches past its rows
    assert all(logged.count(r) == 1 for r in expect if r != expect[-1])
    for i in range(2):
        got = np.load(tmp_path / f"A{i}.npy")
        record = json.loads((tmp_path / f"A{i}.npy.progress.json").read_text())
        assert record["process_index"] == i and record["process_count"] == 2
        assert record["batches_done"] == record["batches"] == ROWS // BATCH and record["rows_done"] == rows[i]
        np.testing.assert_allclose(got, _closed_form(_data(rows[i], i)[0]), rtol=1e-5, atol=1e-6)

    # a fresh run where only process 1's file exists: it refuses, and process 0 hears of it
    # instead of waiting for process 1 in the first collective program
    for suffix in ("", ".progress.json"):
        (tmp_path / f"A0.npy{suffix}").unlink()
    procs = _start(tmp_path, "A", -1, resume=False, processes=2, stderr=subprocess.PIPE, text=True)
    try:
        err = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        _wait(procs, ok=False)  # kills any still running
    assert [p.returncode for p in procs] != [0, 0]
    assert "FileExistsError: jig.explain_dataset: out must be a path that does not exist yet" in err[1]
    assert "RuntimeError: jig.explain_dataset: process(es) [1] could not open their out file" in err[0]
    assert not (tmp_path / "log0").exists()  # nothing was computed


if __name__ == "__main__":
    out, log, hold, resume, processes, process, port = sys.argv[1:8]
    _worker(out, log, int(hold), resume == "1", int(processes), int(process), int(port))
