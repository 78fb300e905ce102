"""Integrated Gradients for Keras 3 models on the JAX backend.

A Keras model keeps its weights in variables. The explainers here read their current
values at every call and pass them to the compiled explanation as traced arguments,
through ``model.stateless_call``; they are never compiled in as constants, so a
model trained (or edited with ``variable.assign``) between two calls gives new
attributions, with no recompilation.

- :func:`ig` explains the model's input (pixels, features);
- :func:`layer_ig` explains the output of a layer named as Keras names it
  (``model.get_layer(name)``): the token embeddings of a text model, a convolution's
  feature map. The model is split at the layer by intercepting that layer's ``call``
  during the (traced) forward pass, so Sequential, functional and subclassed models
  all work, and ``top`` replaces the layer's output while the rest of the model runs
  unchanged.

Both explain ONE example: ``x`` has no batch axis (a batch axis of 1 is added for the
model and removed from its output); for a batch use ``jax.vmap(explain)(xs)`` or
:func:`jig.sharded`. The model runs in inference mode (``training=False``: dropout
off, batch normalisation on its moving statistics); state updates are discarded.

This module needs Keras 3 with ``KERAS_BACKEND=jax`` (``pip install 'jig[keras]'``).
When keras is not imported yet and ``KERAS_BACKEND`` is unset, importing
``jig.keras`` sets it to ``"jax"``.

Example:
  >>> import jax, jax.numpy as jnp, keras, jig
  >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
  ...                           keras.layers.Dense(2)])
  >>> explain = jig.keras.ig(model, lambda y: y[1], steps=32, return_delta=True)
  >>> A, delta = explain(jnp.array([1.0, -0.5, 2.0]))
  >>> A.shape, bool(abs(delta) < 1e-5)
  ((3,), True)
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import sys
import threading
from typing import Any, Callable, NamedTuple

from jig import _checks
from jig._types import Baseline, Explainer, PyTree


def _import_keras():
    if "keras" not in sys.modules:
        backend = os.environ.get("KERAS_BACKEND")
        if backend not in (None, "jax"):
            raise ImportError(
                f"jig.keras needs Keras on the JAX backend, but KERAS_BACKEND={backend!r}; "
                "set KERAS_BACKEND=jax before importing keras"
            )
        os.environ["KERAS_BACKEND"] = "jax"
    try:
        import keras
    except ImportError:  # pragma: no cover - the optional extra is missing: each function says how to install it
        return None
    backend = keras.backend.backend()
    if backend != "jax":
        raise ImportError(
            f"jig.keras needs Keras on the JAX backend, but keras was imported with the {backend!r} "
            "backend; set KERAS_BACKEND=jax before importing keras (os.environ['KERAS_BACKEND'] = "
            "'jax' at the top of the program, or in the shell)"
        )
    return keras


keras = _import_keras()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jig import ig as _jig_ig  # noqa: E402
from jig import layers as _layers  # noqa: E402

__all__ = ["Weights", "Split", "weights", "forward", "split", "ig", "layer_ig"]

_TRACE = "jig.keras"


def _require(caller: str) -> None:
    if keras is None:
        raise ImportError(f"{caller} needs keras, the optional extra: pip install 'jig[keras]'")


if keras is None and "pytest" in sys.modules:  # pragma: no cover - the examples below need keras
    import pytest

    @pytest.fixture(autouse=True)
    def _examples_need_keras():
        pytest.skip("jig.keras's examples need keras: pip install 'jig[keras]'")
_LOCK = threading.RLock()  # a layer's call is swapped only while one forward pass is traced


class Weights(NamedTuple):
    """A Keras model's variable values, in the order ``stateless_call`` takes them.

    Attributes:
      trainable: the values of ``model.trainable_variables`` (a list of arrays).
      non_trainable: the values of ``model.non_trainable_variables`` (batch
        normalisation's moving statistics, frozen layers...).
    """

    trainable: list
    non_trainable: list


class Split(NamedTuple):
    """A Keras model split at one layer, as two pure functions of its :class:`Weights`.

    Attributes:
      bottom: ``(weights, x, *args, **kwargs) -> h``: the layer's output on one example
        ``x`` (no batch axis in ``x`` or ``h``).
      top: ``(weights, x, h, *args, **kwargs) -> output``: the model's output on ``x``
        with the layer's output replaced by ``h``.
      layer: the layer's name.
    """

    bottom: Callable[..., Any]
    top: Callable[..., Any]
    layer: str


# --------------------------------------------------------------------------- checks


def _check_model(caller: str, model, *, need_layers: bool = False):
    _require(caller)
    kind, cls = ("a keras.Model", keras.Model) if need_layers else ("a keras.Model or keras.layers.Layer", keras.layers.Layer)
    if not isinstance(model, cls):
        raise _checks.type_fail(caller, "model", kind, model,
                                "for Flax models use jig.flax, for Equinox models jig.equinox")
    if not model.built:
        raise _checks.fail(caller, "model", "a built Keras model", f"{type(model).__name__} {model.name!r}, not built yet",
                           "call it once on a batch, or give it a keras.Input, before explaining it", raw=True)
    return model


def _layer_names(model) -> list[str]:
    return [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _find_layer(caller: str, model, name):
    if not isinstance(name, str):
        raise _checks.type_fail(caller, "layer_name", "a layer's name (a str, as model.get_layer takes it)", name)
    names = _layer_names(model)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        inputs = " (the input layer is explained by jig.keras.ig)" if name in {layer.name for layer in model.layers} else ""
        raise _checks.fail(caller, "layer_name", f"the name of a layer of {model.name!r}{inputs}", repr(name),
                           f"{hint}its layers are: {', '.join(repr(n) for n in names) or '(none)'}", raw=True)
    return model.get_layer(name)


# --------------------------------------------------------------------------- the forward pass


def weights(model) -> Weights:
    """The current values of a Keras model's variables (read now, not frozen anywhere).

    Args:
      model: a built Keras model or layer.

    Returns:
      :class:`Weights` ``(trainable, non_trainable)``, lists of arrays.

    Example:
      >>> import keras, jig
      >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
      >>> [w.shape for w in jig.keras.weights(model).trainable]
      [(3, 2), (2,)]
    """
    _check_model("jig.keras.weights", model)
    return Weights([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])


def _takes_training(model) -> bool:
    try:
        params = inspect.signature(model.call).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def forward(model) -> Callable[..., Any]:
    """The model on one example as a pure function of its weights: ``(weights, x, *a, **k) -> y``.

    ``y = model.stateless_call(*weights, x[None], *a, training=False, **k)[0]`` with the
    batch axis removed from every output: differentiable in ``x`` and in the weights,
    and free of Keras state, so it composes with ``jax.jit``, ``jax.vmap``, ``jax.grad``
    and :func:`jig.ig`. ``x`` may be a list or dict for a model with several inputs.

    Example:
      >>> import jax.numpy as jnp, keras, jig
      >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
      >>> run = jig.keras.forward(model)
      >>> run(jig.keras.weights(model), jnp.ones(3)).shape
      (2,)
    """
    _check_model("jig.keras.forward", model)
    training = {"training": False} if _takes_training(model) else {}

    def run(w: Weights, x, *args, **kwargs):
        batch = jax.tree.map(lambda a: jnp.asarray(a)[None], x)
        y, _ = model.stateless_call(list(w[0]), list(w[1]), batch, *args, **training, **kwargs)
        return jax.tree.map(lambda a: a[0], y)

    return run


# --------------------------------------------------------------------------- split


def _tap(caller: str, name: str, call_index: int | None, **kw) -> _layers.CallTap:
    """A :class:`jig.layers.CallTap` for the layer ``name``, with this adapter's messages."""
    messages = _layers.TapMessages(
        nested=(
            f"{caller}: layer_name must name a layer that the model calls directly, got "
            f"{name!r}, which runs inside a loop or map of the model's own (an RNN cell, "
            "keras.ops.vectorized_map...); name the layer that contains it instead"
        ),
        missing=lambda model: (
            f"{caller}: layer_name must name a layer the forward pass calls, got {name!r}, "
            f"which {model.name!r} never calls; its layers are: {', '.join(map(repr, _layer_names(model)))}"
        ),
        repeated=lambda n: (
            f"{caller}: layer_name must name a layer called once per forward pass, got "
            f"{name!r}, called {n} times (a shared layer); pass call_index=i (0 <= i < {n}, in call order)"
        ),
        index=lambda n, want: (
            f"{caller}: call_index must be < {n} (the calls of {name!r} per forward pass), got {want}"
        ),
    )
    return _layers.CallTap(messages, call_index, convention=_TRACE, **kw)


@contextlib.contextmanager
def _tapped(layer, tap: _layers.CallTap):
    """``layer.call`` reports to ``tap`` for the block (an instance attribute, removed after)."""
    with _LOCK:
        had = "call" in vars(layer)
        saved = vars(layer).get("call")
        original = layer.call
        object.__setattr__(layer, "call", lambda *a, **k: tap.handle(lambda: original(*a, **k)))
        try:
            yield
        finally:
            if had:
                object.__setattr__(layer, "call", saved)
            else:
                object.__delattr__(layer, "call")


def split(model, layer_name: str, *, call_index: int | None = None, caller: str = "jig.keras.split") -> Split:
    """Split a Keras model at a named layer into ``bottom`` and ``top``.

    ``bottom(weights, x)`` is the layer's output ``h`` on one example ``x``;
    ``top(weights, x, h)`` is the model's output on ``x`` with that output replaced by
    ``h``, so ``top(w, x, bottom(w, x)) == forward(model)(w, x)``. Both are pure
    functions of the weights (:func:`weights`) and the input.

    Args:
      model: a built ``keras.Model`` (Sequential, functional or subclassed).
      layer_name: the layer's name, as ``model.get_layer(name)`` takes it (one of
        ``[l.name for l in model.layers]``). An unknown one raises ``ValueError``
        listing them.
      call_index: which call of a layer called more than once per forward pass
        (0-based); ``None`` requires exactly one call.
      caller: the public name that errors are reported under.

    Returns:
      A :class:`Split` ``(bottom, top, layer)``.

    Example:
      >>> import jax.numpy as jnp, keras, jig
      >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
      ...                           keras.layers.Dense(2)])
      >>> s, w, x = jig.keras.split(model, "hidden"), jig.keras.weights(model), jnp.ones(3)
      >>> h = s.bottom(w, x)
      >>> h.shape, bool(jnp.allclose(s.top(w, x, h), model(x[None])[0]))
      ((4,), True)
    """
    _check_model(caller, model, need_layers=True)
    layer = _find_layer(caller, model, layer_name)
    if call_index is not None:
        call_index = _checks.positive_int(caller, "call_index", call_index, minimum=0)
    run = forward(model)

    def bottom(w, x, *args, **kwargs):
        tap = _tap(caller, layer.name, call_index)
        with _tapped(layer, tap):
            run(w, x, *args, **kwargs)
        tap.check(model)
        return jax.tree.map(lambda a: a[0], tap.captured)

    def top(w, x, h, *args, **kwargs):
        tap = _tap(caller, layer.name, call_index, replacement=jax.tree.map(lambda a: a[None], h), replace=True)
        with _tapped(layer, tap):
            out = run(w, x, *args, **kwargs)
        tap.check(model)
        return out

    return Split(bottom, top, layer.name)


# --------------------------------------------------------------------------- explainers


def _scalar(f):
    def pick(y):
        y = y if f is None else f(y)
        return jnp.reshape(y, ()) if f is None and jnp.shape(y) == (1,) else y

    return pick


def _reading(model, inner, caller):
    """``explain(x, *args, weights=None, **kwargs)``: ``inner(weights, x, ...)`` with the current weights."""

    def explain(x, *args, weights: Weights | None = None, **kwargs):
        if weights is None:
            weights = Weights([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])
        elif not (isinstance(weights, tuple) and len(weights) == 2):
            raise _checks.type_fail(f"{caller} explainer", "weights", "None or jig.keras.weights(model)", weights)
        return inner(weights, x, *args, **kwargs)

    return explain


def ig(
    model,
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = 0.0,
    steps: int = 50,
    **options: Any,
) -> Explainer:
    """Integrated Gradients of a Keras model's input: :func:`jig.ig` through ``stateless_call``.

    Returns ``explain(x, *args, weights=None, **kwargs)`` computing, for one example
    ``x`` (no batch axis),

        A = jig.ig(x -> f(model(x)), baseline, steps)(x)

    with the model's current weights read at each call and passed as traced
    arguments: assigning new values to its variables changes the next result
    without recompiling. Completeness: ``Σ A = F(x) - F(baseline)``.

    Args:
      model: a built Keras model (or layer) on the JAX backend.
      f: maps the model's output on one example to the scalar to explain, e.g.
        ``lambda probs: probs[c]``; ``None`` for a model with one output (shape ``()``
        or ``(1,)`` per example).
      baseline: as for :func:`jig.ig` (a scalar, an array like ``x``, a callable
        ``x -> baseline``).
      steps: quadrature nodes.
      **options: every option of :func:`jig.ig` (``path``, ``rule``, ``chunk_size``,
        ``return_delta``, ``check_finite``, ``mesh``, ``tol``, ``max_steps``,
        ``hoist``, ``targets``...). ``argnums`` counts the explainer's arguments
        ``(x, *args)``.

    Returns:
      ``explain(x, *args, weights=None, **kwargs)``: the attributions, shaped like
      ``x`` (or ``(attributions, delta)`` with ``return_delta=True``). Extra arguments
      go to the model's call. Pass ``weights=jig.keras.weights(model)`` when calling it
      inside your own ``jax.jit`` or :func:`jig.sharded`, so that the weights are
      arguments there too (read inside a trace, they would be compiled in).

    Example:
      >>> import jax, jax.numpy as jnp, keras, jig
      >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
      >>> _ = model.layers[0].kernel.assign([[2.0], [-1.0]])
      >>> explain = jig.keras.ig(model, steps=4)       # one output: no f needed
      >>> explain(jnp.array([1.0, 3.0])).tolist()      # closed form: w * x
      [2.0, -3.0]
      >>> _ = model.layers[0].kernel.assign([[1.0], [1.0]])   # new weights, new result
      >>> explain(jnp.array([1.0, 3.0])).tolist()
      [1.0, 3.0]
    """
    caller = "jig.keras.ig"
    _check_model(caller, model)
    if f is not None:
        _checks.callable_(caller, "f", f, "output -> scalar, e.g. lambda probs: probs[c]")
    argnums = options.pop("argnums", 0)
    shifted = jax.tree.map(lambda i: i if i == 0 else i + 1, argnums) if isinstance(argnums, (int, tuple)) else argnums
    run, pick = forward(model), _scalar(f)
    inner = _jig_ig(lambda x, w, *args, **kwargs: pick(run(w, x, *args, **kwargs)), baseline, steps, argnums=shifted, **options)
    explain = _reading(model, lambda w, x, *args, **kwargs: inner(x, w, *args, **kwargs), caller)
    explain.__doc__ = f"Integrated Gradients of Keras model {model.name!r} ({steps} steps)."
    return explain


def layer_ig(
    model,
    layer_name: str,
    f: Callable[[Any], jax.Array] | None = None,
    baseline: Baseline = None,
    steps: int = 50,
    *,
    baseline_input: Any = None,
    call_index: int | None = None,
    **options: Any,
) -> Explainer:
    """Integrated Gradients at a named layer of a Keras model: :func:`jig.ig` over its output.

    With ``(bottom, top) = split(model, layer_name)`` and ``F = f ∘ top``, returns
    ``explain(x, *args, weights=None, **kwargs)`` computing, for one example ``x``,

        A = jig.ig(h -> F(weights, x, h), h_baseline, steps)(bottom(weights, x))

    with completeness at the layer: ``Σ A = F(top(x, h_x)) - F(top(x, h_b))``. The
    model's current weights are read at each call and traced (see :func:`ig`).

    Args:
      model: a built ``keras.Model``.
      layer_name: the layer's name, as ``model.get_layer`` takes it.
      f: maps the model's output on one example to the scalar to explain.
      baseline: the baseline for the layer's output ``h`` (no batch axis); default
        ``0.0``. Not together with ``baseline_input``.
      steps: quadrature nodes.
      baseline_input: instead, an input ``x'`` or a callable ``x -> x'``; the baseline
        is then ``bottom(weights, x')`` (e.g. ``jnp.zeros_like`` for token id 0).
      call_index: which call of a shared layer (see :func:`split`).
      **options: every option of :func:`jig.ig` (see :func:`jig.layers.layer_ig`).

    Returns:
      ``explain(x, *args, weights=None, **kwargs) -> LayerAttribution(attributions,
      token_scores, delta)``; ``token_scores`` sums the last axis (per token for an
      embedding, per pixel for a channels-last feature map).

    Example:
      >>> import jax, jax.numpy as jnp, keras, jig
      >>> model = keras.Sequential([keras.Input((5,), dtype="int32"),
      ...                           keras.layers.Embedding(10, 3, name="embed"),
      ...                           keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
      >>> explain = jig.keras.layer_ig(model, "embed", lambda y: y[1], steps=16,
      ...                              baseline_input=jnp.zeros_like, return_delta=True)
      >>> res = explain(jnp.array([4, 2, 9, 0, 0]))
      >>> res.attributions.shape, res.token_scores.shape, bool(abs(res.delta) < 1e-5)
      ((5, 3), (5,), True)
    """
    caller = "jig.keras.layer_ig"
    s = split(model, layer_name, call_index=call_index, caller=caller)
    if f is not None:
        _checks.callable_(caller, "f", f, "output -> scalar, e.g. lambda probs: probs[c]")
    inner = _layers.layer_ig(s.bottom, s.top, _scalar(f), baseline, steps, baseline_input=baseline_input,
                             caller=caller, name=f"layer {s.layer!r}", **options)
    explain = _reading(model, inner, caller)
    explain.__doc__ = f"Layer IG at {s.layer!r} of Keras model {model.name!r} ({steps} steps)."
    return explain
