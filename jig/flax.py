"""Attribution to a layer of a Flax model (``flax.linen`` or ``flax.nnx``).

IG needs a continuous input, but a text model takes token ids. The fix is to
attribute to a layer instead: split the model at the layer into

    bottom(params, x, ...)    -> h, the layer's output (e.g. token embeddings)
    top(params, x, h, ...)    -> the model's output with that layer's output replaced by h

so that ``top(params, x, bottom(params, x)) == model(x)``, and integrate the gradient
of ``top`` along a path in ``h``. Completeness then holds at the layer:
``Σ A = F(top(x, h_x)) - F(top(x, h_baseline))``. The model is not rewritten: a
linen layer is intercepted with :func:`flax.linen.intercept_methods`; an nnx layer
is intercepted on a merged copy of the model (``nnx.merge``), so the model itself
is never mutated. Layers are named by their path, joined with ``/``
(``"embed"``, ``"encoder/layers/0"``).

Models built the way large ones are, with their blocks as one module whose weights
are stacked and run by ``nnx.scan`` (and ``nnx.remat``), are split at any layer
outside the scan as usual, and at block ``k`` inside it with ``scan_index=k``: jig
adds its own variables to the stacked module in its copy of the model (a block
index, and a slot the scan carries out for ``bottom``), so the scan itself is not
rewritten and keeps its memory. Layers inside ``flax.linen`` lifted transforms
(``nn.scan``, ``nn.remat``) or the model's own ``jax.lax.scan`` raise a
``ValueError`` that says so.

``params`` is what the model's forward pass needs as arrays: the linen variables
(``{"params": ...}``, as for ``model.apply``) or the nnx state (``nnx.state(model)``,
or the model itself). They are arguments, never closed-over constants, so the
compiled functions are reused across calls.

Example (linen; nnx works the same with ``params = nnx.state(model)``):
  >>> import jax, jax.numpy as jnp, flax.linen as nn, jig
  >>> class Bag(nn.Module):
  ...     @nn.compact
  ...     def __call__(self, ids):
  ...         h = nn.Embed(20, 4, name="embed")(ids)          # (tokens, 4)
  ...         return nn.Dense(2, name="head")(h.mean(axis=0))  # 2 logits
  >>> model, ids = Bag(), jnp.array([3, 7, 1])
  >>> params = model.init(jax.random.key(0), ids)
  >>> bottom, top, _ = jig.flax.split(model, "embed")
  >>> h = bottom(params, ids)
  >>> h.shape, bool(jnp.allclose(top(params, ids, h), model.apply(params, ids)))
  ((3, 4), True)
  >>> explain = jig.flax.layer_ig(model, "embed", lambda logits: logits[1], steps=16,
  ...                             baseline_input=jnp.zeros_like, return_delta=True)
  >>> res = explain(params, ids)
  >>> res.attributions.shape, res.token_scores.shape, bool(abs(res.delta) < 1e-5)
  ((3, 4), (3,), True)
"""

from __future__ import annotations

import contextvars
import difflib
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import nnx

from jig import conductance as _conductance
from jig import layers as _layers
from jig._types import Baseline
from jig.layers import LayerAttribution, token_scores

__all__ = ["Split", "LayerAttribution", "split", "layer_ig", "conductance", "layer_names", "token_scores"]


class Split(NamedTuple):
    """A Flax model split at one layer, as two pure functions.

    Attributes:
      bottom: ``(params, x, *args, **kwargs) -> h``: the layer's output on ``x``
        (an array or pytree, as the layer returns it).
      top: ``(params, x, h, *args, **kwargs) -> output``: the model's output on
        ``x`` with the layer's output replaced by ``h``; everything the layer
        computes from ``x`` is ignored, so ``top`` is differentiable in ``h``
        even when ``x`` holds token ids.
      layer: the layer's path, ``/``-joined.
    """

    bottom: Callable[..., Any]
    top: Callable[..., Any]
    layer: str


# --------------------------------------------------------------------------- the tap


class _Tap:
    """One forward pass's record: calls of every layer, and what to do at the target.

    ``scan_index``: the target runs inside an ``nnx`` transform (``nnx.scan`` over
    a stack of blocks), and block ``scan_index`` of the stack is the one to use.
    """

    def __init__(self, target: str, call_index: int | None, replacement: Any = None, replace: bool = False,
                 shown: str | None = None, scan_index: int | None = None):
        self.target = target
        self.shown = repr(target) if shown is None else shown
        self.want = 0 if call_index is None else call_index
        self.call_index = call_index
        self.scan_index = scan_index
        self.replacement = replacement
        self.replace = replace
        self.counts: dict[str, int] = {}
        self.captured: Any = None
        self.inner: Any = None  # the output's shapes, when the target ran inside an nnx transform
        self.trace = _layers.trace_state("flax")

    def _chosen(self, name: str) -> bool:
        """Count a call of layer ``name``; whether it is the call to attribute to."""
        i = self.counts.get(name, 0)
        self.counts[name] = i + 1
        return name == self.target and i == self.want

    def handle(self, name: str, run: Callable[[], Any]) -> Any:
        if not self._chosen(name):
            return run()
        if _layers.trace_state("flax") != self.trace:
            raise ValueError(
                f"jig.flax: layer {self.shown} is called inside a JAX transform of the model's "
                f"own (jax.lax.scan, jax.vmap, jax.checkpoint, or a flax.linen lifted transform "
                f"such as nn.scan or nn.remat), where its output cannot be taken out or replaced; "
                f"split the model at a layer outside that transform, or write the stack with "
                f"flax.nnx's nnx.scan/nnx.remat (supported: scan_index=k picks block k)"
            )
        if self.scan_index is not None:
            raise ValueError(
                f"jig.flax: scan_index={self.scan_index} but layer {self.shown} is not called "
                f"inside an nnx.scan over its stacked weights; pass scan_index=None"
            )
        if self.replace:
            return self.replacement
        self.captured = run()
        return self.captured

    def handle_inner(self, name: str, module: Any, run: Callable[[], Any]) -> Any:
        """A call of a re-merged copy of a layer, inside an nnx transform (scan, remat)."""
        if not self._chosen(name):
            return run()
        index = module.__dict__.get("_jig_index")  # the block index, when scan_index is given
        if index is None and _sliced(module):
            raise ValueError(
                f"jig.flax: layer {self.shown} runs inside an nnx transform that slices its "
                f"stacked weights (nnx.scan over a stack of blocks); pass scan_index=k "
                f"(0 <= k < {_stack_size(module.__dict__['_jig_shapes'])}) to choose the block"
            )
        if index is not None and jnp.ndim(index[...]) != 0:
            raise ValueError(
                f"jig.flax: scan_index={self.scan_index} but layer {self.shown} is called with "
                f"all its weights, not one block's slice of them (it does not run under an "
                f"nnx.scan over axis 0 of a stack); pass scan_index=None"
            )
        if self.replace:
            if index is None:
                return self.replacement
            out = run()  # this block's own output, replaced at block scan_index only
            here = index[...] == self.scan_index
            return jax.tree.map(lambda r, o: jnp.where(here, r, o), self.replacement, out)
        out = run()
        self.inner = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), out)
        slots = module.__dict__.get("_jig_out")
        if slots is not None:
            for slot, leaf in zip(slots, jax.tree.leaves(out)):
                slot[...] = leaf
        return out

    def check(self, model_name: str) -> None:
        """Raise if the target was not called, or called ambiguously."""
        n = self.counts.get(self.target, 0)
        if n == 0:
            raise ValueError(_missing_message(self.target, model_name, list(self.counts)))
        if self.call_index is None and n > 1:
            raise ValueError(
                f"jig.flax: layer {self.shown} of {model_name} is called {n} times in "
                f"one forward pass, so its output is ambiguous; pass call_index=i "
                f"(0 <= i < {n}, in call order) to choose the call to attribute to"
            )
        if self.want >= n:
            raise ValueError(
                f"jig.flax: call_index={self.want} but layer {self.shown} of "
                f"{model_name} is called {n} time(s) per forward pass; expected "
                f"0 <= call_index < {n}"
            )


def _missing_message(target: str, model_name: str, available: list[str], called: bool = True) -> str:
    close = difflib.get_close_matches(target, available, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(repr(a) for a in available) or "(none)"
    where, which = ("is called in", "called in its forward pass") if called else ("exists in", "it has")
    return (
        f"jig.flax: no layer named {target!r} {where} {model_name}.{hint} Layers are "
        f"named by their path joined with '/'; the layers {which} are: {listing}"
    )


def _layer_name(layer) -> str:
    if isinstance(layer, str) and layer:
        return layer.strip("/")
    if isinstance(layer, tuple) and layer and all(isinstance(p, (str, int)) for p in layer):
        return "/".join(str(p) for p in layer)
    raise TypeError(
        "layer must be the layer's path as a non-empty string joined with '/' "
        f"(e.g. 'encoder/embed') or a tuple of names, got {layer!r}"
    )


def _check_index(name: str, value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be None or a non-negative int ({what}), got {value!r}")
    return int(value)


def _check_call_index(call_index) -> int | None:
    return _check_index("call_index", call_index, "which call of the layer, in call order")


# --------------------------------------------------------------------------- linen


def _linen_runner(model: nn.Module) -> Callable[..., Any]:
    def run(tap: _Tap, params, x, args, kwargs):
        def interceptor(next_fun, a, k, context):
            path = context.module.path
            if context.method_name != "__call__" or not path:
                return next_fun(*a, **k)
            return tap.handle("/".join(str(p) for p in path), lambda: next_fun(*a, **k))

        with nn.intercept_methods(interceptor):
            return model.apply(params, x, *args, **kwargs)

    return run


# --------------------------------------------------------------------------- nnx

_ACTIVE: contextvars.ContextVar[tuple[_Tap, dict[int, str]] | None] = contextvars.ContextVar(
    "jig_flax_active_tap", default=None
)
_TAPPED_CLASSES: dict[type, type] = {}


def _tapped_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``__call__`` reports to the active tap."""
    if cls not in _TAPPED_CLASSES:

        def __call__(self, *args, **kwargs):
            active = _ACTIVE.get()
            run = lambda: cls.__call__(self, *args, **kwargs)  # noqa: E731
            if active is None:
                return run()
            tap, names = active
            name = names.get(id(self))
            if name is not None:
                return tap.handle(name, run)
            # a copy that an nnx transform (nnx.scan, nnx.remat) merged from the model's
            # state: the layer's path travels in the graph definition as a static attribute
            name = self.__dict__.get("_jig_path")
            return run() if name is None else tap.handle_inner(name, self, run)

        _TAPPED_CLASSES[cls] = type(f"_JigTapped{cls.__name__}", (cls,), {"__call__": __call__})
    return _TAPPED_CLASSES[cls]


class _JigVar(nnx.Variable):
    """jig's own state on a layer of a model's copy: the block index, the captured output."""


def _shapes(module) -> tuple[tuple[int, ...], ...]:
    """The shapes of a module's own weights (not jig's), in a fixed order."""
    state = nnx.state(module, nnx.Not(_JigVar))
    return tuple(tuple(np.shape(a)) for a in jax.tree.leaves(state))


def _sliced(module) -> bool:
    """Whether a re-merged copy of a layer holds slices of its weights (it runs under nnx.scan)."""
    outer, inner = module.__dict__.get("_jig_shapes", ()), _shapes(module)
    return bool(outer) and len(outer) == len(inner) and all(o[1:] == i for o, i in zip(outer, inner))


def _stack_size(shapes: tuple[tuple[int, ...], ...]) -> int | None:
    """The common leading size of a stacked layer's weights, or ``None``."""
    sizes = {s[0] for s in shapes if s}
    return sizes.pop() if len(sizes) == 1 and all(shapes) else None


def _nnx_modules(model: nnx.Module) -> dict[str, Any]:
    """Every callable submodule under each of its ``/``-joined paths, in attribute order.

    A module shared between attributes appears under every path; the first one is its
    canonical name (the one the tap reports).
    """
    out: dict[str, Any] = {}
    expanded = {id(model)}

    def walk(node, prefix):
        for key, child in nnx.graph.iter_children(node):
            if isinstance(child, nnx.Variable) or not nnx.graph.is_graph_node(child):
                continue
            path = prefix + (str(key),)
            if isinstance(child, nnx.Module) and callable(child):
                out["/".join(path)] = child
            if id(child) not in expanded:
                expanded.add(id(child))
                walk(child, path)

    walk(model, ())
    return out


def _canonical_names(modules: dict[str, Any]) -> dict[int, str]:
    """``id(module) -> its first path``."""
    names: dict[int, str] = {}
    for name, module in modules.items():
        names.setdefault(id(module), name)
    return names


def _nnx_runner(model: nnx.Module) -> Callable[..., Any]:
    graphdef, _ = nnx.split(model)
    model_name = type(model).__name__

    def prepare(tap: _Tap, params, slots: Any = None):
        state = nnx.state(params) if isinstance(params, nnx.Module) else params
        # fresh Variables at the current trace level: nnx transforms inside the model
        # (nnx.scan, nnx.remat) refuse Variables made under an outer trace
        state = jax.tree.map(lambda a: a, state)
        copy = nnx.merge(graphdef, state)  # a fresh copy: the user's model is never touched
        modules = _nnx_modules(copy)
        names = _canonical_names(modules)
        for module in {id(m): m for m in modules.values()}.values():
            object.__setattr__(module, "__class__", _tapped_class(type(module)))
            object.__setattr__(module, "_jig_path", names[id(module)])
        target = modules.get(tap.target)
        if target is not None:
            shapes = _shapes(target)
            object.__setattr__(target, "_jig_shapes", shapes)
            if tap.scan_index is not None:
                n = _stack_size(shapes)
                if n is None:
                    raise ValueError(
                        f"jig.flax: scan_index={tap.scan_index} but layer {tap.shown} of {model_name} "
                        f"is not a stack of blocks (its weights' shapes {list(shapes)} share no "
                        f"leading size); pass scan_index=None, or name the stacked module"
                    )
                if tap.scan_index >= n:
                    raise ValueError(
                        f"jig.flax: scan_index={tap.scan_index} but layer {tap.shown} of {model_name} "
                        f"is a stack of {n} blocks; expected 0 <= scan_index < {n}"
                    )
                target._jig_index = _JigVar(jnp.arange(n))
            if slots is not None:
                target._jig_out = nnx.List([_JigVar(jnp.zeros(s.shape, s.dtype)) for s in slots])
        return copy, names, target

    def call(tap, copy, names, x, args, kwargs):
        token = _ACTIVE.set((tap, names))
        try:
            return copy(x, *args, **kwargs)
        finally:
            _ACTIVE.reset(token)

    def run(tap: _Tap, params, x, args, kwargs):
        copy, names, target = prepare(tap, params)
        out = call(tap, copy, names, x, args, kwargs)
        if tap.replace or tap.inner is None:  # replaced, or captured outside any transform
            return out
        # the layer ran inside an nnx transform: its output cannot leave the transform's
        # trace, so run again with a slot per output leaf that the transform carries out
        # (stacked, one row per block, under nnx.scan)
        leaves, tree = jax.tree.flatten(tap.inner)
        n = None if tap.scan_index is None else target._jig_index[...].shape[0]  # blocks under nnx.scan
        slots = [jax.ShapeDtypeStruct(((n,) if n is not None else ()) + l.shape, l.dtype) for l in leaves]
        copy, names, target = prepare(tap, params, slots=slots)
        tap.counts, tap.inner = {}, None
        out = call(tap, copy, names, x, args, kwargs)
        values = [v[...] if n is None else v[...][tap.scan_index] for v in target._jig_out]
        tap.captured = jax.tree.unflatten(tree, values)
        return out

    return run


# --------------------------------------------------------------------------- split


def _runner(model) -> tuple[Callable[..., Any], str]:
    if isinstance(model, nn.Module):
        return _linen_runner(model), type(model).__name__
    if isinstance(model, nnx.Module):
        return _nnx_runner(model), type(model).__name__
    mod = type(model).__module__ or ""
    fix = ("for an Equinox model use jig.equinox.layer_ig; " if mod.startswith("equinox") else
           "for a Keras model use jig.keras.layer_ig; " if mod.startswith("keras") else "")
    raise TypeError(
        "model must be a flax.linen.Module or a flax.nnx.Module, "
        f"got a {type(model).__name__} from {mod or 'an unknown module'}; {fix}any other model "
        "can be split by hand into bottom/top functions for jig.layers.layer_ig"
    )


def split(model, layer: str | tuple, *, call_index: int | None = None, scan_index: int | None = None) -> Split:
    """Split a Flax model at a named layer into ``bottom`` and ``top``.

    ``bottom(params, x, *a, **k)`` is the layer's output ``h`` on ``x``;
    ``top(params, x, h, *a, **k)`` runs the model on ``x`` with that output replaced
    by ``h``, so ``top(params, x, bottom(params, x)) == model(x)``. Both are pure
    functions of their arguments and compose with ``jax.jit``, ``jax.vmap`` and
    ``jax.grad``. Under ``jit`` the parts of the forward pass that ``bottom`` does
    not need (and the layer itself in ``top``) are dead code, removed by XLA.

    Args:
      model: a ``flax.linen.Module`` (``params`` = its variables, as for
        ``model.apply``) or a ``flax.nnx.Module`` (``params`` = ``nnx.state(model)``
        or a model of the same structure; put it in eval mode first, since state
        updates such as batch statistics are discarded).
      layer: the layer's path joined with ``/`` (``"embed"``,
        ``"encoder/layers/0"``), or a tuple of path names. Only calls of the
        layer's ``__call__`` are intercepted.
      call_index: which call to use when the layer is called more than once per
        forward pass (0-based, in call order). ``None`` requires exactly one call.
      scan_index: for an nnx model whose blocks are one module with stacked weights,
        run by ``nnx.scan`` (often with ``nnx.remat``): which block of the stack
        (0-based, along the stack's leading axis). ``layer`` names the stacked module
        (``"blocks"``) or a sublayer of it (``"blocks/attn"``). ``bottom`` is block
        ``k``'s output; ``top`` replaces it at block ``k`` only. The scan and the
        rematerialisation stay as the model wrote them, so the gradient through
        ``top`` keeps remat's memory. ``None`` (the default) for any other layer.
        Layers inside ``nnx.remat`` alone need no index.

    Returns:
      A :class:`Split` ``(bottom, top, layer)``. An unknown layer (its message
      lists the layers the forward pass calls) or an ambiguous repeated one raises
      ``ValueError`` when ``bottom`` or ``top`` is first traced.

    Example:
      >>> import jax, jax.numpy as jnp, flax.nnx as nnx, jig
      >>> class Net(nnx.Module):
      ...     def __init__(self, rngs):
      ...         self.embed = nnx.Embed(10, 3, rngs=rngs)
      ...         self.head = nnx.Linear(3, 1, rngs=rngs)
      ...     def __call__(self, ids):
      ...         return self.head(self.embed(ids).sum(0))[0]
      >>> model = Net(nnx.Rngs(0))
      >>> params, ids = nnx.state(model), jnp.array([1, 2])
      >>> s = jig.flax.split(model, "embed")
      >>> h = s.bottom(params, ids)
      >>> bool(jnp.allclose(s.top(params, ids, h), model(ids)))
      True
      >>> float(s.top(params, ids, jnp.zeros_like(h)) - model.head.bias[0])
      0.0
    """
    name = _layer_name(layer)
    shown = repr(name)
    call_index = _check_call_index(call_index)
    scan_index = _check_index("scan_index", scan_index, "which block of a stack run under nnx.scan")
    run, model_name = _runner(model)
    if scan_index is not None and not isinstance(model, nnx.Module):
        raise ValueError(
            f"jig.flax.split: scan_index is for flax.nnx models (a stack of blocks under nnx.scan), "
            f"got a {model_name}; for flax.linen's nn.scan, split at the module around the scan"
        )
    if isinstance(model, nnx.Module):
        modules = _nnx_modules(model)
        if name not in modules:  # fail now: nnx models list their layers without a forward pass
            raise ValueError(_missing_message(name, model_name, list(modules), called=False))
        canonical = _canonical_names(modules)[id(modules[name])]  # a shared module: its first path
        if canonical != name:
            shown, name = f"{name!r} (the same module as {canonical!r})", canonical

    def bottom(params, x, *args, **kwargs):
        tap = _Tap(name, call_index, shown=shown, scan_index=scan_index)
        run(tap, params, x, args, kwargs)
        tap.check(model_name)
        return tap.captured

    def top(params, x, h, *args, **kwargs):
        tap = _Tap(name, call_index, replacement=h, replace=True, shown=shown, scan_index=scan_index)
        out = run(tap, params, x, args, kwargs)
        tap.check(model_name)
        return out

    return Split(bottom, top, name)


def layer_names(model, params, x, *args, **kwargs) -> dict[str, int]:
    """The layers a forward pass calls, in call order, with their call counts.

    Runs the model abstractly (``jax.eval_shape``: no computation). The keys are
    the names :func:`split` and :func:`layer_ig` accept.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jig
      >>> model = nn.Sequential([nn.Dense(3), nn.relu, nn.Dense(1)])
      >>> params = model.init(jax.random.key(0), jnp.ones(2))
      >>> jig.flax.layer_names(model, params, jnp.ones(2))
      {'layers_0': 1, 'layers_2': 1}
    """
    run, _ = _runner(model)
    tap = _Tap("", None)
    jax.eval_shape(lambda p, x: run(tap, p, x, args, kwargs), params, x)
    return dict(tap.counts)


# --------------------------------------------------------------------------- layer IG


def layer_ig(
    model,
    layer: str | tuple,
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = None,
    steps: int = 50,
    *,
    baseline_input: Any = None,
    call_index: int | None = None,
    scan_index: int | None = None,
    argnums: int | tuple[int, ...] = 0,
    **ig_options: Any,
) -> Callable[..., LayerAttribution]:
    """Integrated Gradients at a layer of a Flax model: :func:`jig.ig` over its output.

    With ``(bottom, top) = split(model, layer)`` and ``F = f ∘ top``, returns a
    jit-compiled ``explain(params, x, *args, **kwargs)`` that computes

        A = jig.ig(h -> F(params, x, h), h_baseline, steps)(bottom(params, x))

    i.e. ``A = (h_x - h_b) ⊙ Σ_k w_k ∇_h F(h_b + α_k (h_x - h_b))`` on the straight
    line, with completeness at the layer:
    ``Σ A = F(top(x, h_x)) - F(top(x, h_b))``, where ``top(x, h_x)`` is the model's
    output on ``x``. A thin front-end: :func:`split` finds the layer, and
    :func:`jig.layers.layer_ig` does the rest.

    Args:
      model: a ``flax.linen.Module`` or ``flax.nnx.Module`` (see :func:`split`).
      layer: the layer's ``/``-joined path, e.g. ``"embed"``.
      f: maps the model's output to what is explained: a scalar, e.g.
        ``lambda logits: logits[c]`` (``c`` may be a ``vmap``-ed per-example class),
        or an array with ``targets=``. ``None`` when the model already returns it.
      baseline: the baseline for the layer's output: a scalar, an array or pytree
        broadcasting to ``h``, or a callable ``h -> baseline``. Default ``0.0``
        (or ``None`` for a path with its own start). Not together with
        ``baseline_input``.
      steps: quadrature nodes (passed to :func:`jig.ig`).
      baseline_input: instead of ``baseline``, an input ``x'`` (array like ``x``) or
        a callable ``x -> x'`` (e.g. ``jnp.zeros_like`` for pad id 0); the baseline
        is then the layer's output on it, ``h_b = bottom(params, x')``.
      call_index: which call of a layer that runs several times (see :func:`split`).
      scan_index: which block of a stack run under ``nnx.scan`` (see :func:`split`).
      argnums: what to attribute among ``(h, *args)`` (see :func:`jig.layers.layer_ig`).
      **ig_options: every option of :func:`jig.ig`: ``path``, ``rule``,
        ``chunk_size``, ``targets`` (``"all"`` on a sequence model's per-position
        outputs gives a token-to-token matrix in one call), ``return_delta``,
        ``return_info``, ``check_finite``, ``mesh``, ``tol``, ``max_steps``, ``hoist``.

    Returns:
      ``explain(params, x, *args, **kwargs) -> LayerAttribution`` with the
      attributions over ``h``, their per-token sums over the last axis, and the
      delta (or ``None``). Extra arguments go to the model; arrays and numbers are
      traced, other objects (``deterministic=True``) are static. Build the
      explainer once and reuse it: each call of ``layer_ig`` compiles anew.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jig
      >>> class Bag(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, ids):
      ...         return nn.Dense(2)(nn.Embed(20, 4, name="embed")(ids).sum(0))
      >>> model, ids = Bag(), jnp.array([[3, 7, 1], [2, 0, 0]])
      >>> params = model.init(jax.random.key(0), ids[0])
      >>> explain = jig.flax.layer_ig(model, "embed", lambda y: y[1] - y[0], steps=8,
      ...                             return_delta=True)
      >>> res = jax.vmap(explain, in_axes=(None, 0))(params, ids)   # a batch of sentences
      >>> res.token_scores.shape, bool(jnp.all(jnp.abs(res.delta) < 1e-5))
      ((2, 3), True)
      >>> both = jig.flax.layer_ig(model, "embed", steps=8, targets="all", return_delta=True)
      >>> res = both(params, ids[0])                  # both logits in one pass
      >>> res.token_scores.shape, res.delta.shape
      ((2, 3), (2,))
    """
    s = split(model, layer, call_index=call_index, scan_index=scan_index)
    return _layers.layer_ig(
        s.bottom, s.top, f, baseline, steps, baseline_input=baseline_input, argnums=argnums,
        caller="jig.flax.layer_ig", name=f"layer {s.layer!r} of {type(model).__name__}", **ig_options,
    )


def conductance(
    model,
    layer: str | tuple,
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = 0.0,
    steps: int = 50,
    *,
    call_index: int | None = None,
    scan_index: int | None = None,
    **options: Any,
) -> Callable[..., LayerAttribution]:
    """Each hidden unit's conductance at a layer of a Flax model (Dhamdhere et al. 2018).

    ``∫ ∂F/∂y_j · dy_j(γ(α))/dα dα`` along the straight path ``γ`` in the *input* space
    from the baseline to ``x`` (``y`` the layer's output): how much of
    ``F(x) − F(baseline)`` flows through unit ``j``; the units' conductances sum to it.
    Captum's ``LayerConductance``, with ``dy/dα`` exact (``jax.jvp``) instead of a finite
    difference. A thin front-end: :func:`split` finds the layer and
    :func:`jig.conductance.conductance` does the rest (its options: ``rule``,
    ``chunk_size``, ``mesh``, ``targets``, ``return_delta``, ``check_finite``).

    Neuron attribution (the inputs' IG for one hidden unit ``j``) is a one-liner with
    :func:`split`: ``jig.ig(lambda x, p: s.bottom(p, x)[j], 0.0, steps)(x, params)``.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jig
      >>> model = nn.Sequential([nn.Dense(4), nn.tanh, nn.Dense(1)])   # layers_0 is the hidden layer
      >>> x = jnp.array([0.5, -1.0, 2.0])
      >>> params = model.init(jax.random.key(0), x)
      >>> res = jig.flax.conductance(model, "layers_0", lambda y: y[0], steps=32, return_delta=True)(params, x)
      >>> res.attributions.shape, bool(abs(res.delta) < 1e-4)   # 4 units, summing to F(x) - F(0)
      ((4,), True)
    """
    s = split(model, layer, call_index=call_index, scan_index=scan_index)
    return _conductance.conductance(
        s.bottom, s.top, f, baseline, steps, caller="jig.flax.conductance",
        name=f"layer {s.layer!r} of {type(model).__name__}", **options,
    )
