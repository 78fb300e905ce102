"""The bad and unusual inputs of issue 12, and what each gets: prints the table in BUILD_NOTES.md."""
import os; os.environ["KERAS_BACKEND"]="jax"
import jax, jax.numpy as jnp, numpy as np, jig, keras
x = jnp.array([0.5, -1.0, 2.0, 0.3])
cases = {}
def run(name, fn):
    try:
        r = fn(); out = "returns " + (str(np.round(np.asarray(r), 3).tolist()) if not isinstance(r, tuple) else "ok")
    except Exception as e:
        out = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    print(f"| {name} | {out} |")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
g = lambda x, m: m(x[None])[0, 1]
A1 = jig.ig(g, 0.0, 16)(x, model)
model.layers[0].kernel.assign(np.ones((4, 3), "float32"))
run("Keras model mutated between calls (passed as argument)", lambda: ("new attributions" if not np.allclose(A1, jig.ig(g, 0.0, 16)(x, model)) else (_ for _ in ()).throw(AssertionError("stale"))) and jig.ig(g, 0.0, 16)(x, model))
run("NaN in the input", lambda: jig.ig(lambda x: jnp.sum(x**2), 0.0, 8)(x.at[0].set(jnp.nan)))
run("NaN baseline", lambda: jig.ig(lambda x: jnp.sum(x**2), jnp.full(4, jnp.nan), 8)(x))
run("overflow: inputs of 1e30", lambda: jig.ig(lambda x: jnp.sum(jnp.exp(x)), 0.0, 8)(x * 1e30))
run("non-differentiable model (round)", lambda: jig.ig(lambda x: jnp.sum(jnp.round(x)), 0.0, 8)(x))
run("check_finite=True on an infinite gradient", lambda: jig.ig(lambda x: jnp.sum(jnp.sqrt(x)), 0.0, 8, rule="riemann_left", check_finite=True)(jnp.abs(x)))
img = jnp.ones((3, 28, 28))
run("blur() on a CHW image", lambda: jig.ig(lambda v: jnp.sum(v**2), None, 8, path=jig.paths.blur())(img))
run("blur(axes=(1, 2)) on a CHW image", lambda: jig.ig(lambda v: jnp.sum(v**2), None, 8, path=jig.paths.blur(axes=(1, 2)))(img).shape)
import matplotlib; matplotlib.use("Agg")
run("viz.heatmap on a CHW map", lambda: jig.viz.heatmap(np.ones((3, 28, 28))))
run("jig.sharded(fn)(xs, w), w.shape[0] == len(xs)", lambda: jig.sharded(lambda x, w: x * w)(jnp.ones((4, 2)), jnp.ones(4)))
run("a Python int used as a slice bound", lambda: jig.ig(lambda x, n: jnp.sum(x[:n]), 0.0, 8)(x, 2))
run("... with static_argnums=1", lambda: jig.ig(lambda x, n: jnp.sum(x[:n]), 0.0, 8, static_argnums=1)(x, 2))
run("baseline given as a Python list", lambda: jig.ig(lambda x: jnp.sum(x), [0.0, 0.0, 0.0, 0.0], 8))
run("f returns a Python float, return_delta=True", lambda: jig.ig(lambda x: 2.0, 0.0, 8, return_delta=True)(x))
run("custom path with the wrong signature", lambda: jig.paths.custom(lambda a, x: a * x))
run("targets out of range", lambda: jig.ig(lambda x: jnp.tanh(x), 0.0, 8, targets=jnp.array([0, 4]))(x))
run("targets given as an int", lambda: jig.ig(lambda x: jnp.tanh(x), 0.0, 8, targets=2))
run("targets with a scalar f", lambda: jig.ig(lambda x: jnp.sum(x), 0.0, 8, targets=jnp.array([0]))(x))
run("return_delta and return_info together", lambda: jig.ig(lambda x: jnp.sum(x), 0.0, 8, return_delta=True, return_info=True))
run("chunk_size=0", lambda: jig.ig(lambda x: jnp.sum(x), 0.0, 8, chunk_size=0))
run("static_argnums naming the attributed argument", lambda: jig.ig(lambda x: jnp.sum(x), 0.0, 8, static_argnums=0))
run("jig.diagnose on a plain function", lambda: jig.diagnose(lambda x: x, x))
