"""Engines: how the path points of an :class:`jig.integrand.Integrand` are visited.

===================  ==============================================================
engine               visits
===================  ==============================================================
:func:`fixed`        a quadrature rule's nodes: all at once, or ``chunk_size`` at a
                     time with a compensated running sum, optionally split across
                     the devices of a ``mesh``
:mod:`jig.adaptive`  nested rules, refined until completeness holds (``tol=``)
:mod:`jig.guided`    Guided IG's sequential walk (each step needs the last gradient)
===================  ==============================================================

Example:
  >>> import jax.numpy as jnp
  >>> import jig
  >>> from jig import engine, integrand, paths
  >>> f = lambda x: jnp.sum(jnp.sin(x))
  >>> x, b = jnp.array([1.0, 2.0]), jnp.zeros(2)
  >>> it = integrand.along_path(integrand.derivative(f, ()), paths.straight(), None, x, b,
  ...                           jnp.zeros(()))
  >>> alphas, weights = (jnp.asarray(a, jnp.float32) for a in jig.rules.gauss_legendre(8))
  >>> A = engine.fixed(it, alphas, weights, chunk_size=3)
  >>> bool(jnp.allclose(A, jnp.sin(x), atol=1e-6))   # completeness per feature here
  True
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jig.integrand import Integrand

__all__ = ["fixed", "auto_chunk", "batch_sensitive", "profile", "UNROLL_CHUNKS", "MEMORY_BUDGET", "shard_leading", "auto_mesh"]

#: Chunk loops of at most this many chunks are unrolled: a convolution's input gradient
#: inside a rolled XLA:CPU while loop runs 3-4x slower (BUILD_NOTES).
UNROLL_CHUNKS = 8


#: Activation bytes the default chunk keeps per block (per example under ``jax.vmap``).
MEMORY_BUDGET = 256 * 2**20

# Operations whose gradients XLA:CPU runs several times slower on one large batch than
# on a few smaller ones (BUILD_NOTES: "chunk_size on a conv net").
_BATCH_SENSITIVE = frozenset({"conv_general_dilated", "reduce_window_max", "reduce_window",
                              "select_and_scatter_add", "reduce_window_sum"})


def profile(fn, *args) -> tuple[int, frozenset]:
    """``(bytes, primitive names)``: the total size of every value ``fn`` computes at
    ``args`` (its activations, nested calls included) and the primitives it uses."""
    closed = jax.make_jaxpr(fn)(*args)
    total, names = 0, set()

    def walk(jaxpr):
        nonlocal total
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for v in eqn.outvars:
                aval = getattr(v, "aval", None)
                if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                    total += int(np.prod(aval.shape, dtype=np.int64)) * np.dtype(aval.dtype).itemsize
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", param)
                if hasattr(inner, "eqns"):
                    walk(inner)

    walk(closed.jaxpr)
    return total, frozenset(names)


def batch_sensitive(primitives: frozenset) -> bool:
    """Whether a function with these primitives has gradients that XLA:CPU runs faster in
    several mid-sized batches than in one large one (convolutions, window pooling)."""
    return bool(primitives & _BATCH_SENSITIVE)


def auto_chunk(n: int, bytes_per_point: int, primitives: frozenset) -> int | None:
    """The default ``chunk_size`` for ``n`` path points (``None``: all at once).

    - Models with convolutions or window pooling: at most :data:`UNROLL_CHUNKS`
      unrolled chunks (``ceil(n / 8)`` points each): XLA:CPU runs their gradients
      2-3x faster on a few mid-sized batches than on one large one.
    - Any model: chunks small enough that one chunk's activations stay under
      :data:`MEMORY_BUDGET`, so memory does not grow with ``steps``.
    - Otherwise all points at once (dense models are fastest that way).

    Example:
      >>> from jig.engine import auto_chunk
      >>> auto_chunk(64, 4096, frozenset({"dot_general"})), auto_chunk(64, 4096, frozenset({"conv_general_dilated"}))
      (None, 8)
      >>> auto_chunk(10**6, 4096, frozenset({"dot_general"}))   # bounded memory
      65536
    """
    size = n
    if batch_sensitive(primitives):
        size = -(-n // UNROLL_CHUNKS)
    cap = max(1, MEMORY_BUDGET // max(1, bytes_per_point))
    size = min(size, cap)
    return None if size >= n else int(size)


def _add(carry, value):
    """Neumaier's compensated sum, ``carry = (sum, correction)``: the error stays ``O(ε)``
    over any number of chunks (a plain running float32 sum drifts like ``chunks · ε``)."""
    total, comp = carry
    treedef = jax.tree.structure(total)
    t_leaves, c_leaves, v_leaves = treedef.flatten_up_to(total), treedef.flatten_up_to(comp), treedef.flatten_up_to(value)
    new_t, new_c = [], []
    for s, c, v in zip(t_leaves, c_leaves, v_leaves):
        t = s + v
        new_c.append(c + jnp.where(jnp.abs(s) >= jnp.abs(v), (s - t) + v, (v - t) + s))
        new_t.append(t)
    return treedef.unflatten(new_t), treedef.unflatten(new_c)


def _pad_to(nodes, weights, multiple):
    """Pad the node axis with zero-weight copies of node 0 to a multiple of ``multiple``."""
    n = weights.shape[0]
    extra = (-n) % multiple
    if not extra:
        return nodes, weights
    pad = lambda a: jnp.concatenate([a, jnp.repeat(a[:1], extra, axis=0)])  # noqa: E731
    return jax.tree.map(pad, nodes), jnp.concatenate([weights, jnp.zeros((extra,), weights.dtype)])


def auto_mesh(mesh):
    """The same devices and axis names with Auto axes (sharding constraints need them)."""
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    return jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)


def shard_leading(tree, mesh):
    """Constrain every leaf's leading axis to be split across all of ``mesh``'s devices."""
    spec = jax.sharding.PartitionSpec(tuple(mesh.axis_names))
    sharding = jax.sharding.NamedSharding(mesh, spec)
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), tree)


def _identity(tree):
    return tree


def fixed(integrand: Integrand, nodes: Any, weights: jax.Array, *, chunk_size: int | None = None,
          mesh: jax.sharding.Mesh | None = None) -> Any:
    """``integrand.finish(Σ_n w_n v(node_n))`` over a fixed set of nodes.

    Args:
      integrand: what is summed (:mod:`jig.integrand`).
      nodes: a pytree whose leaves lead with the node axis ``N`` (alphas, or
        ``(index, alpha)`` pairs for several starts).
      weights: ``(N,)`` quadrature weights.
      chunk_size: ``None`` evaluates all nodes in one block; an int evaluates that
        many at a time and keeps a compensated running sum (peak memory independent
        of ``N``). Up to :data:`UNROLL_CHUNKS` chunks are unrolled, more run in a
        rolled ``lax.scan``.
      mesh: split each block's points across the devices of this mesh (padded with
        zero-weight points to a multiple of its size); XLA reduces the sum across them.

    Returns:
      The integrand's result.
    """
    if mesh is None:
        constrain = _identity
    else:
        constrain = functools.partial(shard_leading, mesh=mesh)

    def block(nodes_b, w_b):
        if mesh is not None:
            nodes_b, w_b = _pad_to(nodes_b, w_b, mesh.size)
        return integrand.block(nodes_b, w_b, constrain)

    n = weights.shape[0]
    size = n if chunk_size is None else min(chunk_size, n)
    n_full, rem = divmod(n, size)
    if n_full == 1 and rem == 0:
        return integrand.finish(block(nodes, weights))
    head = jax.tree.map(lambda a: a[: n_full * size].reshape((n_full, size) + a.shape[1:]), nodes)
    w_head = weights[: n_full * size].reshape(n_full, size)

    def body(carry, chunk):
        return _add(carry, block(*chunk)), None

    zero = integrand.zero
    carry = (zero, jax.tree.map(jnp.zeros_like, zero))
    carry, _ = jax.lax.scan(body, carry, (head, w_head), unroll=n_full <= UNROLL_CHUNKS)
    if rem:
        tail = jax.tree.map(lambda a: a[n_full * size :], nodes)
        carry = _add(carry, block(tail, weights[n_full * size :]))
    total, comp = carry
    return integrand.finish(jax.tree.map(jnp.add, total, comp))
