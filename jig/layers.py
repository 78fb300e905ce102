"""Layer attribution for any model split into ``bottom`` and ``top``.

IG needs a continuous input, but a text model takes token ids; and a user may want to
know what a hidden layer contributes. Both are IG over a layer's output ``h``: with

    bottom(params, x, *args, **kwargs) -> h          the layer's output on x
    top(params, x, h, *args, **kwargs)  -> output    the model with that output replaced by h

and ``F = f ∘ top``, :func:`layer_ig` computes ``jig.ig(h -> F(params, x, h), h_b,
steps)(bottom(params, x))``, with completeness at the layer:
``Σ A = F(top(x, h_x)) - F(top(x, h_b))``. The framework adapters are thin
front-ends that only split a model: :func:`jig.flax.layer_ig` (linen and nnx),
``jig.equinox.layer_ig``, ``jig.keras.layer_ig``.

Example:
  >>> import jax, jax.numpy as jnp, jig
  >>> W = jnp.array([[1.0, -1.0], [0.5, 2.0]])
  >>> bottom = lambda p, x: jnp.tanh(x @ p)            # the hidden layer
  >>> top = lambda p, x, h: jnp.sum(h ** 2)            # the rest of the model
  >>> explain = jig.layers.layer_ig(bottom, top, steps=16, return_delta=True)
  >>> res = explain(W, jnp.array([0.3, -0.7]))
  >>> [round(float(a), 4) for a in res.attributions], bool(abs(res.delta) < 1e-5)   # h² per unit
  ([0.0025, 0.875], True)
"""

from __future__ import annotations

import functools

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks, _static
from jig._ig import ig as _ig
from jig._types import Baseline, PyTree

__all__ = ["LayerAttribution", "CallTap", "TapMessages", "layer_ig", "token_scores"]


class LayerAttribution(NamedTuple):
    """The result of a layer explainer (a pytree: works under jit and vmap).

    Attributions:
      attributions: IG over the layer's output ``h``, shaped like ``h`` (``S + h.shape``
        or ``(K,) + h.shape`` with ``targets``; a tuple with a tuple ``argnums``).
      token_scores: the layer's attributions summed over their last (embedding) axis:
        for an embedding layer of shape ``(..., tokens, dim)``, one score per token.
      delta: ``Σ attributions - (F(top(x, h_x)) - F(top(x, h_baseline)))``, the
        completeness error at the layer (shape ``S``/``(K,)`` with ``targets``), a
        :class:`jig.AdaptiveInfo` with ``return_info=True``, else ``None``.
    """

    attributions: Any
    token_scores: Any
    delta: Any


class TapMessages(NamedTuple):
    """What a :class:`CallTap` says when the chosen call is wrong, in the adapter's words.

    Attributes:
      nested: the call ran inside a JAX transform of the model's own (scan, vmap).
      missing: ``model -> message``: the layer is never called.
      repeated: ``n -> message``: called ``n`` times and no ``call_index`` given.
      index: ``(n, want) -> message``: ``call_index`` ``want`` is not below ``n``.
    """

    nested: str
    missing: Callable[[Any], str]
    repeated: Callable[[int], str]
    index: Callable[[int, int], str]


def trace_state(convention: str) -> Any:
    """The current JAX trace, opaque, as the adapter named ``convention`` sees it: a layer
    call made under another trace than its tap's runs inside the model's own transform."""
    from jax.extend.core import get_opaque_trace_state

    return get_opaque_trace_state(convention=convention)


class CallTap:
    """One forward pass's record of a layer's calls, and what to do at the chosen one:
    record its output (``bottom``) or return ``replacement`` instead (``top``).

    Shared by the adapters that split a model by intercepting a layer's call
    (``jig.equinox``, ``jig.keras``): they route each call of the layer through
    ``handle`` and raise with ``check`` after the forward pass. ``convention``
    names the adapter for ``jax.extend.core.get_opaque_trace_state``: a chosen call made
    under another trace than the tap's (inside the model's own ``scan``/``vmap``) raises.
    """

    def __init__(self, messages: TapMessages, call_index: int | None, *, convention: str,
                 replacement: Any = None, replace: bool = False):
        self._trace_state = functools.partial(trace_state, convention)
        self.messages, self.call_index = messages, call_index
        self.want = 0 if call_index is None else call_index
        self.replacement, self.replace = replacement, replace
        self.calls, self.captured = 0, None
        self.trace = self._trace_state()

    def handle(self, run: Callable[[], Any]) -> Any:
        i, self.calls = self.calls, self.calls + 1
        if i != self.want:
            return run()
        if self._trace_state() != self.trace:
            raise ValueError(self.messages.nested)
        if self.replace:
            return self.replacement
        self.captured = run()
        return self.captured

    def check(self, model) -> None:
        n = self.calls
        if n == 0:
            raise ValueError(self.messages.missing(model))
        if self.call_index is None and n > 1:
            raise ValueError(self.messages.repeated(n))
        if self.want >= n:
            raise ValueError(self.messages.index(n, self.want))


def token_scores(attributions: PyTree) -> PyTree:
    """Sum layer attributions over their last (embedding) axis: one score per token.

    Example:
      >>> import jax.numpy as jnp, jig
      >>> jig.layers.token_scores(jnp.array([[1.0, 2.0], [-3.0, 0.5]])).tolist()
      [3.0, -2.5]
    """
    return jax.tree.map(lambda a: jnp.sum(a, axis=-1), attributions)


def _same_layout(a, b) -> bool:
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        jnp.shape(u) == jnp.shape(v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def layer_ig(
    bottom: Callable[..., PyTree],
    top: Callable[..., Any],
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = None,
    steps: int = 50,
    *,
    baseline_input: Any = None,
    argnums: int | tuple[int, ...] = 0,
    caller: str = "jig.layers.layer_ig",
    name: str = "the layer",
    **ig_options: Any,
) -> Callable[..., LayerAttribution]:
    """Integrated Gradients at a layer: :func:`jig.ig` over ``h = bottom(params, x)``.

    Returns a jit-compiled ``explain(params, x, *args, **kwargs)`` computing

        A = jig.ig(h -> f(top(params, x, h, *args, **kwargs)), h_b, steps)(bottom(params, x, ...))

    Args:
      bottom: ``(params, x, *args, **kwargs) -> h``, the layer's output.
      top: ``(params, x, h, *args, **kwargs) -> output``, the model with the layer's
        output replaced by ``h``.
      f: maps the model's output to what is explained: a scalar, e.g.
        ``lambda logits: logits[c]``, or an array with ``targets=``. ``None`` when the
        model's output already is.
      baseline: the baseline for ``h``: a scalar, an array or pytree broadcasting to
        ``h``, or a callable ``h -> baseline``. Default ``0.0`` (``None`` for a path
        with its own start). Not together with ``baseline_input``.
      steps: quadrature nodes.
      baseline_input: instead of ``baseline``, an input ``x'`` like ``x`` or a
        callable ``x -> x'`` (e.g. ``jnp.zeros_like`` for pad id 0); the baseline is
        then ``h_b = bottom(params, x')``.
      argnums: what to attribute among ``(h, *args)``: ``0`` is the layer's output;
        ``i >= 1`` is the explainer's ``i``-th extra positional argument after ``x``
        (a tuple for several, as in :func:`jax.grad`).
      caller, name: the public function and the layer, for error messages.
      **ig_options: every option of :func:`jig.ig`: ``path``, ``rule``,
        ``chunk_size``, ``targets``, ``return_delta``, ``return_info``,
        ``check_finite``, ``mesh``, ``tol``, ``max_steps``, ``hoist``.

    Returns:
      ``explain(params, x, *args, **kwargs) -> LayerAttribution``. Arrays, numbers and
      objects holding arrays are traced; other arguments are static. Build the
      explainer once and reuse it.
    """
    if f is not None and not callable(f):
        raise _checks.type_fail(caller, "f", "None or a callable output -> scalar", f)
    if baseline_input is not None and baseline is not None:
        raise _checks.fail(
            caller, "baseline and baseline_input", "given one at a time", "both", "give either baseline "
            "(for the layer's output) or baseline_input (an input whose layer output is the baseline)",
            raw=True,
        )
    for bad in ("static_argnums", "static_argnames"):
        if bad in ig_options:
            raise TypeError(f"{caller}: {bad} is not supported here; non-array arguments are static already")
    path = ig_options.get("path")
    if baseline is None and baseline_input is None:
        baseline = 0.0 if getattr(path, "needs_baseline", True) else None
    multi = isinstance(argnums, tuple)
    attributed = argnums if multi else (argnums,)
    # Check every option now, before any tracing (the explainer below re-creates it per trace).
    _ig(lambda h, *rest: jnp.sum(h), 0.0, steps, argnums=argnums, **ig_options)
    ig_options = dict(ig_options)
    check_finite = ig_options.pop("check_finite", None)
    return_delta = ig_options.get("return_delta", False) or ig_options.get("return_info", False)
    targets = ig_options.get("targets")

    def scalar(out):
        y = out if f is None else f(out)
        if targets is None and getattr(y, "shape", None) != ():
            raise ValueError(
                f"{caller}: the explained output must be a scalar, got shape "
                f"{getattr(y, 'shape', type(y).__name__)}; pass f to pick one, e.g. "
                "f=lambda logits: logits[class_index], or targets='all' for every output"
            )
        return y

    def run(dyn, *, treedef, static):
        scopes: list = []
        params, x, args, kwargs = _static.merge(dyn, treedef, static, scopes)
        with _static.entered(scopes):
            h = bottom(params, x, *args, **kwargs)
        if baseline_input is None:
            hb = baseline
        else:
            xb = baseline_input(x) if callable(baseline_input) else baseline_input
            with _static.entered(scopes):
                hb = bottom(params, xb, *args, **kwargs)
            if not _same_layout(hb, h):
                raise ValueError(
                    f"{caller}: baseline_input gives a layer output of shape "
                    f"{jax.tree.map(jnp.shape, hb)}, but the input gives "
                    f"{jax.tree.map(jnp.shape, h)} at {name}; pass an input shaped like x"
                )
        n = len(args)

        def F(h, *rest):
            extra, (params, x, kwargs) = rest[:n], rest[n:]
            with _static.entered(scopes):
                return scalar(top(params, x, h, *extra, **kwargs))

        opts = dict(ig_options, check_finite=bool(check_finite))
        out = _ig(F, hb, steps, argnums=argnums, **opts)(h, *args, params, x, kwargs)
        A, delta = out if return_delta else (out, None)
        layer_part = (A[attributed.index(0)] if multi else A) if 0 in attributed else None
        return LayerAttribution(A, None if layer_part is None else token_scores(layer_part), delta)

    compiled = jax.jit(run, static_argnames=("treedef", "static"))

    def explain(params, x, *args, **kwargs) -> LayerAttribution:
        dyn, treedef, static = _static.partition((params, x, args, kwargs))
        res = compiled(dyn, treedef=treedef, static=static)
        if check_finite is not False and not any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(res)):
            if not all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(res.attributions)):
                raise FloatingPointError(
                    f"{caller}: the attributions at {name} are not finite (NaN or inf); check the "
                    "model's output at the input and the baseline, and its gradients between them "
                    "(jig.diagnose shows where); check_finite=False skips this check"
                )
        return res

    return explain
