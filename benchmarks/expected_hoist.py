"""Expected gradients on the benchmark CNN with and without jig.hoist (16 images x 8 baselines x 16 steps).

Run: python benchmarks/expected_hoist.py
"""
import sys; sys.path.insert(0, __import__('os').path.dirname(__file__))
import jax, jax.numpy as jnp, numpy as np, _models, jig, _timing
b = _models.cnn()
p = jax.tree.map(jnp.asarray, b.params)
xs, ts = jnp.asarray(b.xs), jnp.asarray(b.targets)
stack = jnp.asarray(np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32))
fns = {}
for h in [True, False]:
    for chunk in [16, None]:
        e = jig.ig(lambda x, t, p: b.logits(x, p)[t], None, 16, path=jig.paths.expected(stack), chunk_size=chunk, hoist=h)
        fn = jax.jit(e)
        fns[f"hoist={h}/chunk={chunk}"] = (lambda fn=fn: [fn(xs[i], ts[i], p) for i in range(len(xs))])
A = np.asarray(fns["hoist=True/chunk=16"]()); B = np.asarray(fns["hoist=False/chunk=16"]())
print("agreement", _timing.agreement(A, B, "eg"))
for k, v in _timing.interleaved(fns, reps=5).items(): print(k, round(v["median_s"], 4))
