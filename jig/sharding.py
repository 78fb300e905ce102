"""Batches of explanations spread over devices and hosts: :func:`sharded`, :func:`explain_dataset`.

:func:`sharded` turns an explanation function of ONE example into a function over a
batch whose leading axis is split across the devices of a :class:`jax.sharding.Mesh`.
It is one ``jax.jit`` of ``jax.vmap(fn)`` whose inputs are placed with a
:class:`~jax.sharding.NamedSharding` on the batch axis and whose output carries the
same sharding, so XLA runs each device's slice of the batch on that device (no
Python loop over devices). The same code runs on one CPU, several GPUs, a TPU slice,
or several processes after :func:`jax.distributed.initialize`.

Example:
  >>> import jax, jax.numpy as jnp, numpy as np, jig
  >>> f = lambda x, w: jnp.sum(w * x ** 2)
  >>> explain = jig.sharded(jig.ig(f, 0.0, 8), in_axes=(0, None))
  >>> xs, w = np.ones((5, 3), np.float32), np.array([1.0, 2.0, 3.0], np.float32)
  >>> explain(xs, w).round(4).tolist()[0]   # closed form: w * x**2
  [1.0, 2.0, 3.0]
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jig import _checks

__all__ = ["sharded", "explain_dataset", "default_mesh"]

InAxes = int | None | Sequence[int | None]


class _OneArgument:
    """The default of ``in_axes``: ``0`` when ``fn`` takes one positional argument;
    with more, ``in_axes`` must be given (nothing is batched by guessing)."""

    def __repr__(self) -> str:
        return "<0 for one argument, else required>"


FIRST_ONLY_IF_ONE = _OneArgument()


# --------------------------------------------------------------------------- checks


def _check_in_axes(in_axes) -> InAxes:
    if in_axes is FIRST_ONLY_IF_ONE:
        return in_axes

    def ok(a):
        return a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a == 0)

    if ok(in_axes):
        return in_axes
    if isinstance(in_axes, (tuple, list)) and all(ok(a) for a in in_axes):
        return tuple(in_axes)
    raise TypeError(
        "in_axes must be 0 (every argument is batched along its leading axis), None, or a "
        "tuple with one entry per positional argument, each 0 (batched) or None (the same "
        f"for every example, e.g. model parameters, replicated); got {in_axes!r}"
    )


def _auto(mesh: Mesh) -> Mesh:
    """The same devices and axis names with Auto axis types (safe for any model)."""
    if all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(jax.sharding.AxisType.Auto,) * mesh.devices.ndim)


def _check_axes(mesh: Mesh, axis) -> tuple[str, ...]:
    if axis is None:
        return tuple(mesh.axis_names)
    axes = (axis,) if isinstance(axis, str) else tuple(axis)
    if not axes or not all(isinstance(a, str) for a in axes):
        raise TypeError(f"axis must be None, a mesh axis name or a tuple of them, got {axis!r}")
    for a in axes:
        if a not in mesh.axis_names:
            raise ValueError(
                f"axis={a!r} is not an axis of the mesh; the mesh has axes {tuple(mesh.axis_names)} "
                f"(shape {dict(mesh.shape)}). Pass one of those names, or axis=None for all of them."
            )
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis must not repeat a mesh axis, got {axes}")
    return axes


def default_mesh() -> Mesh:
    """The mesh :func:`sharded` uses by default: 1-D, named ``"batch"``, over ``jax.devices()``.

    Every device of every process, with an Auto axis type. Call it after
    :func:`jax.distributed.initialize` in a multi-process run.

    Example:
      >>> import jax, jig
      >>> mesh = jig.sharding.default_mesh()
      >>> mesh.axis_names, mesh.size == jax.device_count()
      (('batch',), True)
    """
    return Mesh(np.array(jax.devices()), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


class _Plan:
    """The resolved mesh, batch axes and shardings of one :func:`sharded` function."""

    def __init__(self, mesh: Mesh, axes: tuple[str, ...]):
        self.mesh, self.axes = mesh, axes
        self.auto = _auto(mesh)
        spec = PartitionSpec(axes[0] if len(axes) == 1 else axes)
        self.spec = spec
        self.batch = NamedSharding(self.auto, spec)
        self.out = NamedSharding(mesh, spec)
        self.replicated = NamedSharding(self.auto, PartitionSpec())
        self.shards = math.prod(mesh.shape[a] for a in axes)
        me = jax.process_index()
        self.multiprocess = any(d.process_index != me for d in mesh.devices.flat)
        # how many distinct batch shards this process holds (rows are split in blocks of them)
        starts = {idx[0].start for idx in self.batch.addressable_devices_indices_map((self.shards,)).values()}
        self.local_shards = len(starts)
        if self.local_shards == 0:
            raise ValueError(
                f"jig.sharded: process {me} holds no device of the mesh; every process that "
                "calls the function must own devices of the mesh"
            )


def _expand_in_axes(in_axes: InAxes, nargs: int, who: str = "jig.sharded") -> tuple[int | None, ...]:
    if in_axes is FIRST_ONLY_IF_ONE:
        if nargs <= 1:
            return (0,) * nargs
        example = "(0, " + ", ".join(["None"] * (nargs - 1)) + ")"
        raise _checks.fail(
            who,
            "in_axes",
            "given when fn is called with more than one positional argument (one entry per "
            "argument: 0 batched along the leading axis, None shared by every example)",
            f"{nargs} positional arguments and no in_axes",
            f"e.g. in_axes={example} batches the first argument and shares the others (such as "
            f"model parameters), in_axes=0 batches them all",
            raw=True,
        )
    if not isinstance(in_axes, tuple):
        return (in_axes,) * nargs
    if len(in_axes) != nargs:
        raise ValueError(
            f"in_axes has {len(in_axes)} entries but the function was called with {nargs} "
            "positional argument(s); give one entry (0 or None) per argument"
        )
    return in_axes


def _batch_size(args, in_axes_t, who: str) -> int:
    """The common leading-axis size of the batched arguments (checked)."""
    for i, arg in enumerate(args):
        for keypath, leaf in jax.tree_util.tree_flatten_with_path(arg)[0]:
            if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, complex)):
                raise TypeError(
                    f"{who}: argument {i}{jax.tree_util.keystr(keypath)} is a {type(leaf).__name__} "
                    f"({leaf!r:.40}); the arguments must be arrays, numbers or pytrees of them. "
                    "Close over other Python objects in fn (e.g. with functools.partial)."
                )
    first = None
    for i, (arg, ax) in enumerate(zip(args, in_axes_t)):
        if ax is None:
            continue
        for keypath, leaf in jax.tree_util.tree_flatten_with_path(arg)[0]:
            where = f"argument {i}" + jax.tree_util.keystr(keypath)
            shape = np.shape(leaf)
            if not shape:
                raise ValueError(
                    f"{who}: {where} is batched (in_axes 0) but is a scalar with no leading axis; "
                    "give it a leading batch axis, or mark it None in in_axes to share it"
                )
            if first is None:
                first = (where, shape[0])
            elif shape[0] != first[1]:
                raise ValueError(
                    f"{who}: the batched arguments must share the leading (batch) axis size, but "
                    f"{first[0]} has {first[1]} rows and {where} has {shape[0]} (mark arguments "
                    "shared by every example, such as model parameters, None in in_axes)"
                )
    if first is None:
        raise ValueError(f"{who}: no argument is batched; in_axes must mark at least one argument 0")
    return first[1]


# --------------------------------------------------------------------------- padding


def _pad_rows(leaf, target: int):
    """``leaf`` with its leading axis edge-padded (last row repeated; zeros if empty) to ``target``."""
    n = np.shape(leaf)[0]
    if n == target:
        return leaf
    if isinstance(leaf, jax.Array):
        if n == 0:
            return jnp.zeros((target,) + leaf.shape[1:], leaf.dtype)
        return jnp.concatenate([leaf, jnp.repeat(leaf[-1:], target - n, axis=0)])
    leaf = np.asarray(leaf)
    if n == 0:
        return np.zeros((target,) + leaf.shape[1:], leaf.dtype)
    return np.concatenate([leaf, np.repeat(leaf[-1:], target - n, axis=0)])


def _to_auto(leaf):
    """A jax.Array on an Explicit-axes mesh re-labelled onto its Auto twin (no copy)."""
    sh = getattr(leaf, "sharding", None)
    if isinstance(leaf, jax.Array) and isinstance(sh, NamedSharding):
        auto = _auto(sh.mesh)
        if auto is not sh.mesh:
            return jax.device_put(leaf, NamedSharding(auto, sh.spec))
    return leaf


def _local_rows(out, n: int):
    """This process's rows of a global array, in order, as one NumPy array (``n`` rows)."""
    pieces = {}
    for shard in out.addressable_shards:
        start = shard.index[0].start or 0
        if start not in pieces:
            pieces[start] = np.asarray(shard.data)
    return np.concatenate([pieces[s] for s in sorted(pieces)])[:n]


def _allgather_sizes(n: int) -> np.ndarray:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray([n], np.int64))).reshape(-1)


# --------------------------------------------------------------------------- sharded


def sharded(
    fn: Callable[..., Any],
    *,
    mesh: Mesh | None = None,
    axis: str | Sequence[str] | None = None,
    in_axes: InAxes | _OneArgument = FIRST_ONLY_IF_ONE,
) -> Callable[..., Any]:
    """Split a batch of explanations across the devices of a mesh.

    ``sharded(fn)(*batch_args)`` computes ``jax.vmap(fn, in_axes)(*batch_args)``:
    ``fn`` explains ONE example (e.g. ``jig.ig(...)``, or a closure taking
    per-example extras such as a class index or a baseline), and the batch's
    leading axis is split across the devices of ``mesh`` along ``axis``. It is one
    ``jax.jit`` over ``jax.vmap(fn)``: the batched inputs are placed with
    ``NamedSharding(mesh, P(axis))``, the arguments marked ``None`` in ``in_axes``
    are replicated, and each device computes its slice of the batch. A batch whose
    size does not divide the number of shards is padded by repeating its last row
    and the result is trimmed.

    It composes with ``jax.jit`` and ``jax.grad`` (attribution priors): inside a
    trace the placement becomes ``jax.lax.with_sharding_constraint``.

    Output sharding (one process): every output leaf is a ``jax.Array`` of the
    batch's size. When the batch size is a multiple of the number of shards
    (the product of the sizes of ``axis``), its sharding is exactly
    ``NamedSharding(mesh, P(axis))`` on the mesh you passed (its leading axis split
    like the input); otherwise the trimmed slice is laid out by JAX, currently
    replicated (``P()``). Keep batches a multiple of the shard count (or use
    :func:`explain_dataset`) to keep results sharded.

    Several processes (after :func:`jax.distributed.initialize`, with a mesh that
    spans them, such as the default): every process calls the function at the same
    time with its LOCAL rows (NumPy arrays or arrays on its own devices; the local
    row counts may differ between processes, even be 0) and gets back the
    attributions of exactly those rows, in order, as NumPy arrays. The global batch
    is built with :func:`jax.make_array_from_process_local_data` (each process's
    rows padded to a common size agreed by one small all-gather). Arguments marked
    ``None`` in ``in_axes`` must be equal on every process. If the batched inputs
    are already global ``jax.Array``s (not fully addressable), the result is the
    global ``jax.Array`` instead, and the batch size must divide the shard count.

    Args:
      fn: a function of one example, ``fn(x, *extras) -> attributions`` (any pytree
        of arrays). All arguments must be arrays, pytrees of arrays or numbers;
        close over other Python objects.
      mesh: a :class:`jax.sharding.Mesh` (Auto or Explicit axis types). ``None``:
        a 1-D mesh named ``"batch"`` over ``jax.devices()`` (all devices of all
        processes), made at the first call.
      axis: the mesh axis name (or tuple of names) the batch is split over.
        ``None``: all axes of the mesh, i.e. every device gets a slice.
      in_axes: as in :func:`jax.vmap` but per positional argument only: ``0``
        (batched along the leading axis) or ``None`` (shared, e.g. model
        parameters, replicated on every device). A single value applies to all.
        Not given: ``fn`` called with ONE positional argument batches it; called
        with more, ``ValueError`` asks for ``in_axes``. Nothing is batched by
        guessing: parameters whose leading size happens to equal the batch's
        would otherwise be sliced per example without any error, so
        ``jig.sharded(jig.ig(f, ...))(xs, params)`` needs ``in_axes=(0, None)``.
        Shared NumPy arrays are copied to the devices at every call; place them
        once with ``jax.device_put(params, NamedSharding(mesh, P()))`` to avoid it.

    Returns:
      A function of the batched arguments returning ``jax.vmap(fn, in_axes)`` of
      them (see the output sharding above).

    Raises:
      ValueError: ``axis`` names no axis of ``mesh``; the batched arguments have
        different leading sizes; ``in_axes`` does not match the arguments, or is
        not given for a call with several positional arguments.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, jig
      >>> logits = lambda x, w: x @ w                    # 3 features -> 2 classes
      >>> def explain_one(x, c, w):                      # per-example class c
      ...     return jig.ig(lambda x, w: logits(x, w)[c], 0.0, 16)(x, w)
      >>> explain = jig.sharded(explain_one, in_axes=(0, 0, None))
      >>> xs = np.ones((13, 3), np.float32)
      >>> cs = np.arange(13) % 2
      >>> w = np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 3.0]], np.float32)
      >>> A = explain(xs, cs, w)
      >>> A.shape, A[0].round(4).tolist(), A[1].round(4).tolist()
      ((13, 3), [1.0, 2.0, 0.0], [-1.0, 0.0, 3.0])
      >>> jig.sharded(jig.ig(lambda x: jnp.sum(x ** 2), 0.0, 8))(xs).shape  # one argument: batched
      (13, 3)
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable explaining one example, got {type(fn).__name__}")
    in_axes = _check_in_axes(in_axes)
    if mesh is not None and not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be None or a jax.sharding.Mesh, got {type(mesh).__name__}")
    state: dict[str, Any] = {}
    if mesh is not None:
        state["plan"] = _Plan(mesh, _check_axes(mesh, axis))
    elif axis is not None:
        _check_axes(default_mesh(), axis)

    def plan() -> _Plan:
        if "plan" not in state:
            m = default_mesh()
            state["plan"] = _Plan(m, _check_axes(m, axis))
        return state["plan"]

    def compiled(in_axes_t: tuple[int | None, ...]):
        return _jitted(fn, in_axes_t, plan().out)

    def batched(*args):
        p = plan()
        in_axes_t = _expand_in_axes(in_axes, len(args))
        n = _batch_size(args, in_axes_t, "jig.sharded")
        return _run(p, compiled(in_axes_t), args, in_axes_t, n)

    batched.__doc__ = f"{getattr(fn, '__name__', 'fn')} over a batch split across a mesh (jig.sharded)."
    batched._plan = plan  # type: ignore[attr-defined]  # for explain_dataset
    batched._compiled = compiled  # type: ignore[attr-defined]
    return batched


@functools.lru_cache(maxsize=64)
def _jitted(fn, in_axes_t, out_sharding):
    """``jit(vmap(fn))``, shared by every :func:`sharded` of the same fn, axes and mesh."""
    return jax.jit(jax.vmap(fn, in_axes=in_axes_t), out_shardings=out_sharding)


def _is_global(leaf) -> bool:
    return isinstance(leaf, jax.Array) and not leaf.is_fully_addressable


def _shared(p: _Plan, leaf):
    """An argument shared by every example, replicated over the mesh."""
    if p.multiprocess and not _is_global(leaf):
        # not jax.device_put: across processes it all-gathers every leaf to check equality
        host = np.asarray(leaf)
        return jax.make_array_from_process_local_data(p.replicated, host, host.shape)
    return jax.device_put(_to_auto(leaf), p.replicated)


def _run(p: _Plan, jitted, args, in_axes_t, n: int, padded_to: int | None = None):
    """Place the arguments on the mesh, run ``jitted`` and return the caller's rows."""
    if any(isinstance(l, jax.core.Tracer) for l in jax.tree.leaves(args)):
        # inside jax.jit / jax.grad: constrain instead of placing (the caller's trace runs it)
        target = -(-max(n, 1) // p.shards) * p.shards

        def constrain(leaf, ax):
            if ax is None:
                return jax.lax.with_sharding_constraint(jnp.asarray(leaf), p.replicated)
            return jax.lax.with_sharding_constraint(_pad_rows(jnp.asarray(leaf), target), p.batch)

        placed = [jax.tree.map(lambda l, ax=ax: constrain(l, ax), a) for a, ax in zip(args, in_axes_t)]
        out = jitted(*placed)
        return out if target == n else jax.tree.map(lambda o: o[:n], out)

    batched_leaves = [l for a, ax in zip(args, in_axes_t) if ax == 0 for l in jax.tree.leaves(a)]
    if any(_is_global(l) for l in batched_leaves):
        if not all(_is_global(l) for l in batched_leaves):
            raise ValueError(
                "jig.sharded: either every batched argument is a global (multi-process) jax.Array "
                "or none is; got a mix of global arrays and process-local rows"
            )
        if n % p.shards:
            raise ValueError(
                f"jig.sharded: global (multi-process) input arrays need a batch size divisible by "
                f"the {p.shards} shards of axis {p.axes}, got {n}; pass process-local rows "
                "instead to have them padded"
            )

        def place(leaf, ax):
            return _shared(p, leaf) if ax is None else jax.device_put(_to_auto(leaf), p.batch)

        placed = [jax.tree.map(lambda l, ax=ax: place(l, ax), a) for a, ax in zip(args, in_axes_t)]
        return jitted(*placed)

    if not p.multiprocess:
        target = -(-max(n, 1) // p.shards) * p.shards

        def place(leaf, ax):
            if ax is None:
                return _shared(p, leaf)
            return jax.device_put(_pad_rows(_to_auto(leaf), target), p.batch)

        placed = [jax.tree.map(lambda l, ax=ax: place(l, ax), a) for a, ax in zip(args, in_axes_t)]
        out = jitted(*placed)
        if target != n:
            out = jax.tree.map(lambda o: o[:n], out)
        return out

    # several processes, process-local rows
    k = p.local_shards
    if padded_to is None:
        largest = int(_allgather_sizes(n).max())
        padded_to = -(-max(largest, 1) // k) * k
    global_rows = padded_to * (p.shards // k)

    def place(leaf, ax):
        if ax is None:
            return _shared(p, leaf)
        host = np.asarray(_pad_rows(np.asarray(leaf), padded_to))
        return jax.make_array_from_process_local_data(p.batch, host, (global_rows,) + host.shape[1:])

    placed = [jax.tree.map(lambda l, ax=ax: place(l, ax), a) for a, ax in zip(args, in_axes_t)]
    out = jitted(*placed)
    return jax.tree.map(lambda o: _local_rows(o, n), out)


# --------------------------------------------------------------------------- datasets



#: ``explain_dataset(out=path)`` records its progress in ``path + PROGRESS_SUFFIX``.
PROGRESS_SUFFIX = ".progress.json"
_PROGRESS_FORMAT = "jig.explain_dataset progress 1"


def explain_dataset(
    fn: Callable[..., Any],
    *args: Any,
    batch_size: int = 256,
    in_axes: InAxes | _OneArgument = FIRST_ONLY_IF_ONE,
    mesh: Mesh | None = None,
    axis: str | Sequence[str] | None = None,
    progress: bool = True,
    out: Any = None,
    overwrite: bool = False,
    resume: bool = False,
) -> Any:
    """Explain every row of a dataset, streaming fixed-size batches through :func:`sharded`.

    Computes the same as ``jax.vmap(fn, in_axes)(*args)``, but in batches of
    ``batch_size`` rows split across the mesh's devices, with the host copy of one
    batch's result overlapping the next batch's computation, so memory stays
    bounded for many thousands of examples. Every batch, the last one included, is
    padded to the same size, so the explainer is compiled once.

    Several processes: each passes its local rows (row counts may differ) and gets
    its own rows' attributions; all processes must call it together (it runs the
    same number of steps everywhere). ``batch_size`` is then per process, and each
    process passes its own ``out`` path (e.g. ``f"part-{jax.process_index()}.npy"``).

    Writing to a file (``out=path``): before anything is computed, the folder must
    exist and accept a new file, ``out``'s row shape and dtype are worked out with
    :func:`jax.eval_shape`, and an existing ``out`` is refused unless
    ``overwrite=True`` or ``resume=True``. After each batch its rows are flushed
    to the ``.npy`` memory map and then the progress record ``out +
    ".progress.json"`` (the shape, dtype, batch size, number of batches and how
    many are done) is replaced atomically (a temporary file and
    :func:`os.replace`), so a run killed at any point leaves a record of the
    batches whose rows are on disk. ``resume=True`` checks the record against this
    call (same rows, row shape, dtype, batch size and processes) and computes only
    the batches not yet done; on a finished run it computes nothing and returns
    the file. The record stays beside the file when the run ends. With several
    processes each keeps its own record; a resumed run starts at the first batch
    that some process has not finished (one all-gather agrees on it), and a
    process that had gone further computes those batches with the others (the
    programs are collective) without writing them again.

    Args:
      fn: an explanation function of one example (see :func:`sharded`).
      *args: the dataset, as positional arguments of ``fn``: arrays (NumPy,
        ``np.memmap`` or JAX) with the examples on the leading axis for arguments
        marked ``0`` in ``in_axes``, anything else for ``None`` entries.
      batch_size: rows per step, rounded up to a multiple of this process's number
        of shards.
      in_axes, mesh, axis: as in :func:`sharded` (``in_axes`` is required when
        ``fn`` takes more than one positional argument).
      progress: show a tqdm progress bar (on process 0). Needs ``tqdm``
        (``pip install tqdm``, in the ``demo``/``test`` extras).
      out: where to put the attributions. ``None``: new NumPy arrays (a pytree
        like ``fn``'s output with a leading axis of the dataset's size). A path
        (``str``/``os.PathLike``, single-array output only): a ``.npy`` file written
        batch by batch through a memory map, returned as a read-write
        ``np.memmap``. A NumPy array (or a pytree of them) of the right shapes:
        filled in place and returned.
      overwrite: replace an existing file at ``out`` (and its progress record).
      resume: continue the interrupted run whose file is at ``out`` from its last
        completed batch (``out`` must be a path; not with ``overwrite``).

    Returns:
      The attributions for every row, as NumPy arrays (or the memmap / ``out``).

    Raises:
      FileExistsError: ``out`` exists and neither ``overwrite`` nor ``resume`` is set.
      ValueError: ``out``'s folder is missing or not writable; ``resume=True``
        without a progress record, or with one for a different shape, dtype,
        batch size or process layout; ``out=path`` for a pytree output.

    Example:
      >>> import os, tempfile, numpy as np, jax.numpy as jnp, jig
      >>> explain = jig.ig(lambda x: jnp.sum(x ** 2), 0.0, 8)
      >>> xs = np.arange(30, dtype=np.float32).reshape(10, 3)
      >>> A = jig.explain_dataset(explain, xs, batch_size=4, progress=False)
      >>> A.shape, bool(np.allclose(A, xs ** 2, rtol=1e-5))
      ((10, 3), True)
      >>> path = os.path.join(tempfile.mkdtemp(), "A.npy")
      >>> _ = jig.explain_dataset(explain, xs, batch_size=4, progress=False, out=path)
      >>> jig.explain_dataset(explain, xs, batch_size=4, progress=False, out=path)
      Traceback (most recent call last):
      ...
      FileExistsError: jig.explain_dataset: out must be a path that does not exist yet, ...
      >>> B = jig.explain_dataset(explain, xs, batch_size=4, progress=False, out=path, resume=True)
      >>> bool(np.array_equal(B, A))   # the run was complete: nothing computed again
      True
      >>> import shutil; shutil.rmtree(os.path.dirname(path))
    """
    who = "jig.explain_dataset"
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (rows per step), got {batch_size!r}")
    overwrite = _checks.boolean(who, "overwrite", overwrite)
    resume = _checks.boolean(who, "resume", resume)
    to_file = isinstance(out, (str, os.PathLike))
    if resume and not to_file:
        raise _checks.fail(who, "out", "a path (str or os.PathLike) when resume=True", out,
                           "resume continues the .npy file of an earlier call with the same out")
    if resume and overwrite:
        raise _checks.fail(who, "overwrite", "False when resume=True", "True",
                           "resume=True continues the file at out, overwrite=True starts it again; pass one",
                           raw=True)
    explain = sharded(fn, mesh=mesh, axis=axis, in_axes=in_axes)
    p: _Plan = explain._plan()  # type: ignore[attr-defined]
    in_axes_t = _expand_in_axes(_check_in_axes(in_axes), len(args), who)
    n = _batch_size(args, in_axes_t, who)
    k = p.local_shards if p.multiprocess else p.shards
    bs = -(-int(batch_size) // k) * k
    steps = -(-n // bs)
    if p.multiprocess:
        steps = int(max(-(-int(s) // bs) for s in _allgather_sizes(n)))

    # the output file: checked, created or reopened before anything is computed
    dest, done, saver, error = out, 0, None, None
    if to_file:
        try:
            dest, done, saver = _open_out(who, out, fn, args, in_axes_t, n, bs, steps, overwrite, resume)
        except Exception as e:  # noqa: BLE001 - re-raised below, after telling the other processes
            if not p.multiprocess:
                raise
            error = e
    start = done
    if p.multiprocess:  # every process must be able to start, and they start at the same batch
        from jax.experimental import multihost_utils

        info = np.asarray(multihost_utils.process_allgather(np.asarray([error is None, done], np.int64)))
        info = info.reshape(-1, 2)
        if error is not None:
            raise error
        failed = [i for i, ok in enumerate(info[:, 0]) if not ok]
        if failed:
            raise RuntimeError(
                f"{who}: process(es) {failed} could not open their out file (their error says why); "
                "nothing was computed"
            )
        start = int(info[:, 1].min())

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError as e:  # pragma: no cover - tqdm is in the test extra
            raise ImportError(
                "jig.explain_dataset(progress=True) needs tqdm: pip install tqdm, or pass progress=False"
            ) from e
        bar = tqdm(total=n, initial=min(start * bs, n), unit="ex", desc="jig", disable=jax.process_index() != 0)

    jitted = explain._compiled(in_axes_t)  # type: ignore[attr-defined]
    # shared arguments (parameters) go to the devices once, not once per batch
    args = tuple(
        jax.tree.map(_to_auto, a) if ax == 0 else jax.tree.map(lambda l: _shared(p, l), a)
        for a, ax in zip(args, in_axes_t)
    )

    def batch(i):
        lo, hi = i * bs, min((i + 1) * bs, n)
        rows = []
        for a, ax in zip(args, in_axes_t):
            if ax is None:
                rows.append(a)
                continue

            def take(leaf):
                part = leaf[lo:hi] if lo < n else leaf[n - 1 : n] if n else leaf[:0]
                part = np.asarray(part) if not isinstance(part, jax.Array) else part
                return _pad_rows(part, bs)

            rows.append(jax.tree.map(take, a))
        return max(0, hi - lo), rows

    def run(i):
        m, rows = batch(i)
        res = _run(p, jitted, rows, in_axes_t, bs, padded_to=bs if p.multiprocess else None)
        return i, m, res

    pending = run(start) if start < steps else None
    for i in range(start, steps):
        nxt = run(i + 1) if i + 1 < steps else None  # dispatched before we block on `pending`
        j, m, res = pending
        host = jax.tree.map(lambda r: np.asarray(r)[:m], res)
        if dest is None:
            dest = _allocate(host, n)
        if j >= done:  # a process that had gone further (several processes) keeps its rows
            _write(dest, host, j * bs, n)
            if saver is not None:
                saver(j + 1)  # after the rows are flushed
        if bar is not None:
            bar.update(m)
        pending = nxt
    if bar is not None:
        bar.close()
    if dest is None:  # empty dataset
        one_row = [jax.tree.map(lambda l: _pad_rows(l, 1), a) if ax == 0 else a for a, ax in zip(args, in_axes_t)]
        shapes = jax.eval_shape(jax.vmap(fn, in_axes=in_axes_t), *one_row)
        dest = _allocate(jax.tree.map(lambda s: np.zeros((0,) + s.shape[1:], s.dtype), shapes), n)
    if isinstance(dest, np.memmap):
        dest.flush()
    return dest


def _allocate(first, n: int):
    return jax.tree.map(lambda r: np.empty((n,) + r.shape[1:], r.dtype), first)


def _write(dest, host, lo: int, n: int):
    dl, dt = jax.tree.flatten(dest)
    hl, ht = jax.tree.flatten(host)
    if dt != ht:
        raise ValueError(f"jig.explain_dataset: out has structure {dt} but fn returns {ht}")
    for d, h in zip(dl, hl):
        if not hasattr(d, "shape") or tuple(d.shape) != (n,) + h.shape[1:]:
            raise ValueError(
                f"jig.explain_dataset: out must hold {n} rows of shape {h.shape[1:]} "
                f"(shape {(n,) + h.shape[1:]}), got an array of shape {getattr(d, 'shape', None)}"
            )
        d[lo : lo + h.shape[0]] = h


# --------------------------------------------------------------------------- out=<path>


def _save_record(path: str, record: dict) -> None:
    """Write ``record`` as JSON to ``path`` atomically (a temporary file, fsync, os.replace)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _out_row(fn, args, in_axes_t):
    """The shape and dtype of one row of ``vmap(fn)``'s output, by tracing only."""
    one_row = [
        a if ax is None else jax.tree.map(lambda l: jax.ShapeDtypeStruct((1,) + tuple(np.shape(l)[1:]), l.dtype), a)
        for a, ax in zip(args, in_axes_t)
    ]
    return jax.eval_shape(jax.vmap(fn, in_axes=in_axes_t), *one_row)


def _open_out(who, out, fn, args, in_axes_t, n, bs, steps, overwrite, resume):
    """Check, create or reopen the ``.npy`` at ``out``; return (memmap, batches done, saver)."""
    given = os.fspath(out)
    path = os.path.abspath(given)
    record_path = path + PROGRESS_SUFFIX
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise _checks.fail(who, "out", "a path in an existing folder", repr(given),
                           f"the folder {folder} does not exist; create it first (os.makedirs)", raw=True)
    if os.path.isdir(path):
        raise _checks.fail(who, "out", "a file path", f"{given!r}, a folder", "name a .npy file in it", raw=True)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".jig-write-check-"):
            pass
    except OSError as e:
        raise _checks.fail(who, "out", "a path in a folder this process can create files in", repr(given),
                           f"creating a file in {folder} failed ({e})", raw=True) from e
    shapes = _out_row(fn, args, in_axes_t)
    if not isinstance(shapes, jax.ShapeDtypeStruct):
        raise ValueError(
            f"{who}: out=<path> writes one .npy file, so fn must return a single array; it returned a "
            f"pytree with {len(jax.tree.leaves(shapes))} leaves. Pass out=None or a pytree of arrays."
        )
    shape, dtype = (n,) + tuple(shapes.shape[1:]), np.dtype(shapes.dtype)
    record = {
        "format": _PROGRESS_FORMAT,
        "shape": list(shape),
        "dtype": dtype.str,
        "batch_size": bs,
        "batches": steps,
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
    }

    if resume:
        if not os.path.exists(record_path):
            raise _checks.fail(
                who, "resume", f"True only for an interrupted run: its progress record {record_path}",
                "no such file", "run without resume=True to start (overwrite=True replaces an existing out)",
                raw=True,
            )
        try:
            with open(record_path) as f:
                saved = json.load(f)
            done = saved["batches_done"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _checks.fail(who, "resume", "True only with a readable progress record",
                               f"{record_path}, which could not be read ({e!r:.60})",
                               "pass overwrite=True to start again", raw=True) from e
        differ = [f"{key} {saved.get(key)!r} (this call: {value!r})" for key, value in record.items()
                  if saved.get(key) != value]
        if differ:
            raise _checks.fail(
                who, "resume", "True only for the same call as the interrupted one",
                f"a progress record {record_path} with " + ", ".join(differ),
                "resume with the same rows, fn, batch_size and processes, or pass overwrite=True to start again",
                raw=True,
            )
        if not isinstance(done, int) or not 0 <= done <= steps:
            raise _checks.fail(who, "resume", "True only with a valid progress record",
                               f"batches_done={done!r} in {record_path}", "pass overwrite=True to start again",
                               raw=True)
        try:
            dest = np.lib.format.open_memmap(path, mode="r+")
        except (OSError, ValueError) as e:
            raise _checks.fail(who, "resume", f"True only when the file {path} can be reopened",
                               f"an error ({e!r:.80})", "pass overwrite=True to start again", raw=True) from e
        if tuple(dest.shape) != shape or dest.dtype != dtype:
            raise _checks.fail(who, "resume", f"True only when {path} holds {shape} {dtype}",
                               f"a file of shape {tuple(dest.shape)} and dtype {dest.dtype}",
                               "pass overwrite=True to start again", raw=True)
    else:
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(str(_checks.fail(
                who, "out", "a path that does not exist yet", f"{given!r}, which exists",
                "pass overwrite=True to replace it, or resume=True to continue an interrupted run", raw=True,
            )))
        if os.path.exists(record_path):
            os.remove(record_path)
        dest = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        done = 0

    def saver(batches_done: int) -> None:
        dest.flush()  # the rows first, then the record that says they are there
        _save_record(record_path, {**record, "batches_done": batches_done, "rows_done": min(batches_done * bs, n)})

    if not resume:
        saver(0)
    return dest, done, saver
