"""What every jig front-end shares: argument checks, the attributed input, targets,
the baseline, the working dtype, non-finite checks, and one compiled call.

A method (``jig.ig``, ``jig.idgi``, ``jig.interactions``...) is a thin front-end: it
checks its own options, then hands :func:`explainer` a ``method(problem, params)``
that builds an integrand and runs an engine on the :class:`Problem` prepared here.

Example:
  >>> import jax.numpy as jnp
  >>> from jig import _frontend
  >>> _frontend.check_targets("jig.ig", "all")
  'all'
  >>> _frontend.check_targets("jig.ig", [0, 2]).tolist()
  [0, 2]
"""

from __future__ import annotations

import functools
import math
import warnings
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jig import _checks, _static
from jig._types import PyTree

__all__ = [
    "ZeroAttributionWarning",
    "call_arguments",
    "Explainer",
    "Method",
    "Options",
    "Problem",
    "Result",
    "check_argnums",
    "check_targets",
    "check_static_argnums",
    "check_baseline",
    "prepare_baseline",
    "explainer",
    "working_dtype",
]

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


# --------------------------------------------------------------------------- checks


def check_argnums(caller: str, argnums) -> int | tuple[int, ...]:
    """``argnums`` as an int or a tuple of distinct ints >= 0."""

    def ok(a):
        return isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 0

    if ok(argnums):
        return int(argnums)
    if isinstance(argnums, (tuple, list)) and argnums and all(ok(a) for a in argnums):
        if len(set(argnums)) != len(argnums):
            raise _checks.fail(caller, "argnums", "distinct argument positions", tuple(argnums))
        return tuple(int(a) for a in argnums)
    raise _checks.type_fail(
        caller, "argnums", "a non-negative int or a non-empty tuple of them (the positional "
        "argument(s) of f to attribute)", argnums,
    )


def check_static_argnums(caller: str, static_argnums, static_argnames, argnums) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Normalise ``static_argnums``/``static_argnames`` (as in ``jax.jit``)."""
    if static_argnums is None:
        nums: tuple[int, ...] = ()
    elif isinstance(static_argnums, (int, np.integer)) and not isinstance(static_argnums, bool):
        nums = (int(static_argnums),)
    elif isinstance(static_argnums, (tuple, list)) and all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in static_argnums
    ):
        nums = tuple(int(a) for a in static_argnums)
    else:
        raise _checks.type_fail(caller, "static_argnums", "an int or a tuple of ints", static_argnums)
    if any(a < 0 for a in nums):
        raise _checks.fail(caller, "static_argnums", "non-negative positions", nums)
    attributed = set(argnums) if isinstance(argnums, tuple) else {argnums}
    if attributed & set(nums):
        raise _checks.fail(
            caller, "static_argnums", "positions other than the attributed argnums", nums,
            "an attributed argument is traced by definition",
        )
    if static_argnames is None:
        names: tuple[str, ...] = ()
    elif isinstance(static_argnames, str):
        names = (static_argnames,)
    elif isinstance(static_argnames, (tuple, list)) and all(isinstance(a, str) for a in static_argnames):
        names = tuple(static_argnames)
    else:
        raise _checks.type_fail(caller, "static_argnames", "a str or a tuple of str", static_argnames)
    return nums, names


def check_targets(caller: str, targets):
    """``None``, ``"all"``, or a 1-D integer array of output indices."""
    if targets is None:
        return None
    if isinstance(targets, str):
        if targets != "all":
            raise _checks.fail(caller, "targets", "None, 'all' or an int array of output indices", targets)
        return targets
    if isinstance(targets, (bool, np.bool_)):
        raise _checks.type_fail(caller, "targets", "None, 'all' or an int array of output indices", targets)
    if isinstance(targets, (int, np.integer)):
        raise _checks.type_fail(
            caller, "targets", "None, 'all' or a 1-D int array of output indices", targets,
            f"for one output use targets=[{int(targets)}], or select it in f (lambda x: model(x)[{int(targets)}])",
        )
    if isinstance(targets, (list, tuple)):
        if not targets or not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in targets):
            raise _checks.type_fail(caller, "targets", "a non-empty list of ints (output indices)", targets)
        targets = np.asarray(targets, np.int32)
    if not isinstance(targets, (jax.Array, np.ndarray)) or not hasattr(targets, "dtype"):
        raise _checks.type_fail(caller, "targets", "None, 'all' or an int array of output indices", targets)
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        raise _checks.type_fail(
            caller, "targets", "an integer array of output indices", targets,
            "class indices are ints, e.g. jnp.array([0, 3])",
        )
    if targets.ndim != 1 or targets.shape[0] < 1:
        raise _checks.fail(
            caller, "targets", "a 1-D array of K >= 1 output indices, shape (K,)", targets,
            "under jax.vmap each example's targets are a row of a (batch, K) array",
        )
    if not isinstance(targets, jax.core.Tracer) and np.any(np.asarray(targets) < 0):
        raise _checks.fail(caller, "targets", "non-negative output indices", np.asarray(targets).tolist(), raw=False)
    return targets


def check_baseline(caller: str, baseline, needs_baseline: bool, path_name: str):
    """``(baseline_fn, baseline_array_or_None)`` from the user's ``baseline``."""
    if baseline is None:
        if needs_baseline:
            raise ValueError(
                f"{caller}: baseline=None needs a path that defines its own start (e.g. "
                f"jig.paths.blur); the {path_name!r} path needs a baseline"
            )
        return None, None
    if callable(baseline) and not isinstance(baseline, jax.Array):
        return _static.Static(baseline), None
    if isinstance(baseline, list) and baseline and all(isinstance(b, numbers.Real) for b in baseline):
        raise _checks.type_fail(
            caller, "baseline", "a scalar, an array or pytree of arrays, a callable x -> baseline, or None",
            f"a Python list of numbers {baseline!r:.60}", "wrap it in jnp.asarray(...) to make it an array",
            raw=True,
        )
    for leaf in jax.tree.leaves(baseline):
        if not _static.is_dynamic(leaf):
            raise _checks.type_fail(
                caller, "baseline", "a scalar, an array or pytree of arrays, a callable x -> baseline, or None",
                f"a leaf {leaf!r:.60} of type {type(leaf).__name__}", raw=True,
            )
    return None, baseline


def working_dtype(dtype):
    """The dtype path sums run in: float32 for half-precision inputs, else ``dtype``."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in _HALF else dtype


def prepare_baseline(caller: str, baseline, x):
    """Broadcast ``baseline`` to ``x``'s structure and shapes, in the working dtype."""
    x_leaves, x_tree = jax.tree.flatten(x)
    if isinstance(baseline, (numbers.Number, np.ndarray, np.generic, jax.Array)):
        b_leaves = [baseline] * len(x_leaves)
    else:
        b_leaves, b_tree = jax.tree.flatten(baseline)
        if b_tree != x_tree:
            raise ValueError(
                f"{caller}: baseline must be a scalar, or an array or pytree that broadcasts to "
                f"the attributed input; the input has structure {x_tree} but the "
                f"baseline has structure {b_tree}"
            )
    out = []
    for i, (b, xl) in enumerate(zip(b_leaves, x_leaves)):
        b_dtype = jnp.result_type(b)
        if not (jnp.issubdtype(b_dtype, jnp.floating) or jnp.issubdtype(b_dtype, jnp.integer)):
            raise TypeError(f"{caller}: baseline leaf {i} has dtype {b_dtype}; expected a real number")
        b = jnp.asarray(b)
        try:
            shape = jnp.broadcast_shapes(b.shape, xl.shape)
        except ValueError:
            shape = None
        if shape != tuple(xl.shape):
            raise ValueError(
                f"{caller}: baseline leaf {i} has shape {tuple(b.shape)}, which does not broadcast "
                f"to the attributed input's shape {tuple(xl.shape)}"
            )
        out.append(jnp.broadcast_to(b.astype(working_dtype(xl.dtype)), xl.shape))
    return jax.tree.unflatten(x_tree, out)


def _check_input(caller: str, x, argnums) -> None:
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        dtype = jnp.result_type(leaf)
        where = f"argument {argnums}" + jax.tree_util.keystr(keypath)
        if jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_):
            raise TypeError(
                f"{caller}: {where} has dtype {dtype}; IG integrates gradients along a "
                "continuous path, so the attributed input must be floating point. For "
                "token ids or other discrete inputs, attribute to the embedding layer "
                "instead (jig.flax), or pass argnums to pick a float argument."
            )
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{caller}: {where} has dtype {dtype}; expected a real floating dtype")
    if not jax.tree.leaves(x):
        raise ValueError(f"{caller}: argument {argnums} has no array leaves to attribute")


# --------------------------------------------------------------------------- the problem


class Options(NamedTuple):
    """What every front-end's static configuration holds (hashable)."""

    caller: str
    f: _static.Static
    baseline_fn: _static.Static | None
    argnums: int | tuple[int, ...]
    targets: str | None  # None, "all" or "array" (the array itself is traced)
    return_delta: bool
    return_info: bool
    check_finite: bool | None


class Problem(NamedTuple):
    """One explanation's inputs, prepared inside the compiled function.

    Attributes:
      F: ``z -> output`` of shape ``out_shape``: the function of the attributed
        input, the other arguments fixed, targets selected and flattened.
      x: the attributed input in the working dtype (float32 for half precision).
      baseline: prepared like ``x`` (or ``None`` for a path with its own start).
      out_shape: ``()`` for a scalar output, ``(K,)`` for ``K`` targets.
      restore: reshapes a leading ``K`` axis back to the output's shape ``S``
        (``targets="all"``); the identity otherwise.
      to_input: casts a pytree like ``x`` to the input's own dtypes.
      work: the working dtype.
      forward: ``True`` when forward mode is cheaper (an input smaller than ``K``).
    """

    F: Callable[[PyTree], jax.Array]
    x: PyTree
    baseline: PyTree | None
    out_shape: tuple
    restore: Callable[[Any, int], Any]
    to_input: Callable[[PyTree], PyTree]
    work: Any
    forward: bool


class Result(NamedTuple):
    """What a method returns to the shared wrapper: the attributions in the working
    dtype, ``F(x)`` and ``F(start)`` (shape ``out_shape``; ``None`` to compute them
    here), the number of points used and whether they converged (``None``: a fixed
    rule, converged when finite)."""

    total: PyTree
    f_x: jax.Array | None = None
    f_start: jax.Array | None = None
    points: Any = None
    converged: Any = None
    delta: Any = None


def select_outputs(caller, out, targets_kind, targets):
    """``(select, out_shape, restore)`` for the output ``out`` (a ShapeDtypeStruct)."""
    shape = getattr(out, "shape", None)
    if shape is None or not hasattr(out, "dtype"):
        raise TypeError(f"{caller}: f must return a JAX array or a Python float, got {type(out).__name__}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        what = "scalar" if targets_kind is None else "values"
        raise TypeError(f"{caller}: f must return a real floating {what}, got dtype {out.dtype}")
    if targets_kind is None:
        if shape != ():
            raise ValueError(
                f"{caller}: f must return a scalar, but it returned shape {tuple(shape)}. To explain "
                "one output of a multi-output model, select it in a closure, e.g. "
                "jig.ig(lambda x: model(x)[class_index], ...) (under jax.vmap the index may "
                "differ per example), or pass targets='all' or targets=jnp.array([...]) for "
                "several outputs in one pass."
            )
        return (lambda y: y), (), (lambda a, lead=0: a)
    if targets_kind == "all":
        k = math.prod(shape)

        def restore(a, lead=0):
            return jax.tree.map(lambda t: t.reshape(t.shape[:lead] + tuple(shape) + t.shape[lead + 1 :]), a)

        return (lambda y: y.reshape(k)), (k,), restore
    if len(shape) != 1:
        raise ValueError(
            f"{caller}: with targets=<int array>, f must return a vector (one value per output "
            f"index), but it returned shape {tuple(shape)}; use targets='all' for outputs of any "
            "shape, or reshape the output in f"
        )
    n_out, k = shape[0], targets.shape[0]

    def select(y):
        # out-of-range traced indices give NaN outputs (so delta is NaN), never a clamped row
        return y.at[targets].get(mode="fill", fill_value=jnp.nan)

    return select, (k,), (lambda a, lead=0: a)


def prepare(options: Options, args, kwargs, scopes, baseline_in, targets_in, path) -> tuple[Problem, Any]:
    caller, argnums = options.caller, options.argnums
    multi = isinstance(argnums, tuple)
    x = tuple(args[i] for i in argnums) if multi else args[argnums]
    _check_input(caller, x, argnums)
    f = options.f.value

    def F_full(z):
        new = list(args)
        for i, zi in zip(argnums, z) if multi else [(argnums, z)]:
            new[i] = zi
        with _static.entered(scopes):
            return jnp.asarray(f(*new, **kwargs))

    out = jax.eval_shape(F_full, x)
    select, out_shape, restore = select_outputs(caller, out, options.targets, targets_in)
    x_dtypes = jax.tree.map(lambda a: jnp.result_type(a), x)
    xw = jax.tree.map(lambda a: jnp.asarray(a).astype(working_dtype(jnp.result_type(a))), x)

    def to_input(z):
        return jax.tree.map(lambda zl, d: zl.astype(d), z, x_dtypes)

    work = jnp.result_type(*jax.tree.leaves(xw))

    def F(z):
        return select(F_full(to_input(z))).astype(work)

    if options.baseline_fn is not None:
        b = prepare_baseline(caller, options.baseline_fn.value(x), x)
    elif baseline_in is None:
        b = None
    else:
        b = prepare_baseline(caller, baseline_in, x)
    n_in = sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree.leaves(xw))
    forward = bool(out_shape) and n_in < out_shape[0]
    same_dtypes = jax.tree.all(jax.tree.map(lambda d, a: d == a.dtype, x_dtypes, xw))
    return Problem(F, xw, b, out_shape, restore, to_input, work, forward), same_dtypes


def finite(tree):
    """``True`` when every leaf of ``tree`` is finite (a traced bool)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.bool_(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


_WHAT = ("the attributed input", "the baseline", "F(x) (the explained output at the input)",
         "F(start) (the explained output at the path's start)", "the gradients along the path")


def _nonfinite_message(caller: str, flags) -> str:
    flags = np.asarray(flags).reshape(-1, len(_WHAT) + 1)[:, : len(_WHAT)].all(axis=0)
    bad = [w for w, ok in zip(_WHAT, flags) if not ok]
    first = bad[0] if bad else "the attributions"
    fixes = {
        _WHAT[0]: "clean the input (NaN/inf values) before explaining it",
        _WHAT[1]: "check the baseline for NaN/inf",
        _WHAT[2]: "the model overflows or divides by zero at the input (rescale the input, or use float64)",
        _WHAT[3]: "the model overflows or divides by zero at the baseline (log(0)? choose another baseline)",
        _WHAT[4]: "the model's gradient is not finite somewhere between the baseline and the input "
                  "(log/sqrt/division near 0 on the path); jig.diagnose shows where",
    }
    return (
        f"{caller}: the attributions are not finite: {', '.join(bad) or 'the attributions'} "
        f"contain NaN or inf; {fixes.get(first, '')}. (check_finite=False skips this check.)"
    )


class ZeroAttributionWarning(UserWarning):
    """Every attribution is exactly zero although ``F(x) != F(start)``: the gradient is
    zero along the whole path (a flat or non-differentiable ``f``: ``round``, ``argmax``)."""


def _raise_nonfinite(caller, flags):
    flags = np.asarray(flags).reshape(-1, len(_WHAT) + 1)
    if not np.all(flags[:, : len(_WHAT)]):
        raise FloatingPointError(_nonfinite_message(caller, flags))
    if not np.all(flags[:, len(_WHAT)]):
        warnings.warn(
            f"{caller}: every attribution is exactly zero although F(x) != F(start): the gradient "
            "is zero along the whole path, so f is flat or not differentiable there (round, argmax, "
            "a thresholded decision). Explain a differentiable score (a logit); jig.diagnose shows "
            "the path's profile. (check_finite=False silences this.)",
            ZeroAttributionWarning,
            stacklevel=3,
        )


class Call(NamedTuple):
    """The static half of one call (hashable): options, method config, argument layout."""

    options: Options
    method: Any
    treedef: Any
    static: tuple
    static_args: tuple


def call_arguments(call: Call, dyn, scopes: list) -> tuple[list, dict]:
    """The call's ``(args, kwargs)`` rebuilt from its traced leaves and static parts
    (Keras variable mappings are appended to ``scopes``)."""
    args, kwargs = _static.merge(dyn, call.treedef, call.static, scopes)
    pos_static, kw_static = call.static_args
    args = list(args)
    for i, s in pos_static:
        args.insert(i, s.value)
    return args, dict(kwargs, **{k: s.value for k, s in kw_static})


@functools.partial(jax.jit, static_argnames=("call",))
def _compiled(dyn, baseline_in, targets_in, params, *, call: Call):
    options, method = call.options, call.method
    scopes: list = []
    args, kwargs = call_arguments(call, dyn, scopes)
    problem, plain_dtypes = prepare(options, args, kwargs, scopes, baseline_in, targets_in, method.path)
    res = method.run(method.config, method.path, problem, params, plain_dtypes)
    total = res.total
    want_ends = options.return_delta or options.return_info or options.check_finite is not False

    def ends():
        f_x = problem.F(problem.x) if res.f_x is None else res.f_x
        if res.f_start is not None:
            return f_x, res.f_start
        starts = method.path.starts(params, problem.x, problem.baseline)
        return f_x, jnp.mean(jax.vmap(problem.F)(starts), axis=0)

    out_axes = len(problem.out_shape)

    def outputs(a):  # Σ A per output: sum every axis after the leading out_shape ones
        return sum(jnp.sum(t, axis=tuple(range(out_axes, t.ndim))) for t in jax.tree.leaves(a))

    delta = None
    if want_ends:
        f_x, f_start = ends()
        delta = outputs(total) - (f_x - f_start) if res.delta is None else res.delta
    attributions = problem.restore(problem.to_input(total))
    flags = None
    if options.check_finite is not False:
        ok = finite(total)
        all_zero = jnp.all(jnp.stack([jnp.all(t == 0) for t in jax.tree.leaves(total)]))
        gap = jnp.abs(f_x - f_start)
        moved = jnp.any(gap > 1e-6 * (1.0 + jnp.abs(f_x)))
        flags = jnp.stack([
            finite(problem.x),
            finite(problem.baseline) if problem.baseline is not None else jnp.bool_(True),
            finite(f_x), finite(f_start), ok,
            ~(all_zero & moved),  # all attributions zero although F changed: a flat/non-differentiable f
        ])
    if options.return_info:
        from jig.adaptive import AdaptiveInfo  # noqa: PLC0415 - the info type lives with the adaptive engine

        points = jnp.asarray(res.points, jnp.int32)
        converged = jnp.all(jnp.isfinite(delta)) if res.converged is None else res.converged
        extra = AdaptiveInfo(problem.restore(delta), points, converged)
    elif options.return_delta:
        extra = problem.restore(delta)
    else:
        extra = None
    return attributions, extra, flags


class Method(NamedTuple):
    """A method's static half: its path (the curve; its ``params`` travel as traced
    arguments), its configuration (hashable) and
    ``run(config, path, problem, params, plain_dtypes) -> Result``
    (``plain_dtypes``: the input is not half precision)."""

    path: Any
    run: Callable[..., Result]
    config: Any

    def __hash__(self):
        return hash((self.path._replace(params=None), self.run, self.config))

    def __eq__(self, other):
        return (
            isinstance(other, Method) and self.path._replace(params=None) == other.path._replace(params=None)
            and self.run == other.run and self.config == other.config
        )


def _has_tracer(tree) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


class Explainer:
    """The function a jig transform returns (``jig.ig(f, ...)``): call it like ``f``.

    A small wrapper object rather than a closure, so that tools can read what it
    explains (:func:`jig.diagnose` re-runs its path with diagnostics): ``options``
    (the shared front-end options), ``method`` (path, configuration, run), the
    ``baseline`` and ``targets`` given at construction. Calling it splits the
    arguments into traced and static parts, runs the one compiled function, and
    (on eager calls) checks that the result is finite.
    """

    def __init__(self, options: Options, method: Method, baseline, targets, static_argnums=(), static_argnames=(),
                 doc: str | None = None, wraps: Callable | None = None, post: Callable | None = None):
        self.options, self.method, self.baseline = options, method, baseline
        self.post = post
        self.targets = targets
        self.static_argnums, self.static_argnames = tuple(static_argnums), tuple(static_argnames)
        self._targets_arg = None if targets is None or isinstance(targets, str) else targets
        self._concrete_targets = (
            None if self._targets_arg is None or _has_tracer(self._targets_arg) else np.asarray(self._targets_arg)
        )
        self._sizes: dict = {}
        if wraps is not None:
            functools.update_wrapper(self, wraps, updated=())
        if doc is not None:
            self.__doc__ = doc

    def split_call(self, args, kwargs) -> Call:
        """The static half of a call, and its traced leaves: ``(call, dyn)``."""
        options = self.options
        argnums, caller = options.argnums, options.caller
        needed = max(argnums) if isinstance(argnums, tuple) else argnums
        if needed >= len(args):
            raise TypeError(
                f"{caller}: argnums={argnums} names positional argument {needed}, but the "
                f"explainer was called with {len(args)} positional argument(s)"
            )
        pos_static, kw_static = [], []
        if self.static_argnums or self.static_argnames:
            args_l = list(args)
            for i in sorted(self.static_argnums, reverse=True):
                if i < len(args_l):
                    pos_static.append((i, _hashable(caller, f"static argument {i}", args_l.pop(i))))
            for k in self.static_argnames:
                if k in kwargs:
                    kw_static.append((k, _hashable(caller, f"static argument {k!r}", kwargs[k])))
            kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
            args = tuple(args_l)
            pos_static.sort()
        dyn, treedef, static = _static.partition((args, kwargs))
        call = Call(options, self.method, treedef, static, (tuple(pos_static), tuple(kw_static)))
        if self._concrete_targets is not None:
            _check_target_range(caller, call, dyn, self._concrete_targets, self._sizes)
        return call, dyn

    def __call__(self, *args, **kwargs):
        options = self.options
        call, dyn = self.split_call(args, kwargs)
        try:
            attributions, extra, flags = _compiled(dyn, self.baseline, self._targets_arg, self.method.path.params,
                                                   call=call)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
                jax.errors.TracerBoolConversionError, IndexError) as e:
            ints = [i for i, a in enumerate(args) if isinstance(a, int) and not isinstance(a, bool)]
            if ints:
                raise TypeError(
                    f"{options.caller}: f used a traced value where Python needs a concrete one (a "
                    f"shape, a slice bound, an if). Positional argument(s) {ints} are Python ints, "
                    f"which jig traces like arrays; if f uses them as shapes or bounds, mark them "
                    f"static: static_argnums={tuple(ints) if len(ints) > 1 else ints[0]}"
                ) from e
            raise
        if flags is not None and options.check_finite is not False:
            if not _has_tracer(flags):
                _raise_nonfinite(options.caller, flags)  # an eager call: a catchable FloatingPointError
            elif options.check_finite:  # under the caller's jit/vmap: a callback staged into their program
                jax.debug.callback(functools.partial(_raise_nonfinite, options.caller), flags)
        if self.post is not None:  # a method whose result is not shaped like x (jig.interactions)
            attributions = self.post(attributions)
        if options.return_delta or options.return_info:
            return attributions, extra
        return attributions

    def __repr__(self):
        return f"<jig explainer: {self.__doc__ or self.options.caller}>"


def explainer(options: Options, method: Method, baseline, targets, *, static_argnums=(), static_argnames=(),
              doc: str | None = None, wraps: Callable | None = None, post: Callable | None = None) -> Explainer:
    """The :class:`Explainer` a front-end returns. ``targets`` is the checked targets
    value (an array is traced); ``baseline`` the array/pytree baseline (``None`` when
    ``options.baseline_fn`` is set or the path needs none); ``post`` reshapes results
    that are not shaped like the input (the method's ``run`` returns leaves shaped
    like ``x``'s with extra trailing axes, ``post`` arranges them)."""
    return Explainer(options, method, baseline, targets, static_argnums, static_argnames, doc, wraps, post)


def _hashable(caller, what, value):
    s = _static.Static(value)
    try:
        hash(value)
    except TypeError:
        raise _checks.type_fail(caller, what, "hashable (static arguments are part of the compiled "
                                "function's cache key)", value) from None
    return s


def _check_target_range(caller, call, dyn, concrete, sizes):
    key = (call.treedef, call.static, call.static_args, tuple((jnp.shape(a), jnp.result_type(a)) for a in dyn))
    if key not in sizes:
        def probe(dyn):
            scopes: list = []
            args, kwargs = call_arguments(call, dyn, scopes)
            with _static.entered(scopes):
                return jnp.asarray(call.options.f.value(*args, **kwargs))

        sizes[key] = jax.eval_shape(probe, dyn).shape
    shape = sizes[key]
    if len(shape) == 1 and concrete.size and (concrete.max() >= shape[0] or concrete.min() < 0):
        raise _checks.fail(
            caller, "targets", f"indices in [0, {shape[0]}) (f returns {shape[0]} outputs)",
            str(concrete.tolist()), raw=True,
        )
