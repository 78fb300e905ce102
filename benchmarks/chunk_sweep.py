"""chunk_size under jax.vmap on the benchmark CNN (16 images x 64 steps): median seconds.

Run: python benchmarks/chunk_sweep.py
"""
import time, jax, jax.numpy as jnp, numpy as np, jig, sys
sys.path.insert(0, __import__('os').path.dirname(__file__))
import _models
b = _models.cnn()
xs, ts, p = jnp.asarray(b.xs), jnp.asarray(b.targets), jax.tree.map(jnp.asarray, b.params)
def F(x, t, p): return b.logits(x, p)[t]
def run(fn):
    jax.block_until_ready(fn()); ts_=[]
    for _ in range(5):
        t0=time.perf_counter(); jax.block_until_ready(fn()); ts_.append(time.perf_counter()-t0)
    return np.median(ts_)
for chunk in [None, 64, 32, 16, 8]:
    e = jig.ig(F, 0.0, 64, chunk_size=chunk)
    v = jax.jit(jax.vmap(e, in_axes=(0,0,None)))
    print("vmap chunk", chunk, run(lambda: v(xs, ts, p)))
e = jig.ig(F, 0.0, 64, chunk_size=16)
print("loop chunk16", run(lambda: [e(xs[i], ts[i], p) for i in range(16)]))
