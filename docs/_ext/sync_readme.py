"""Re-copy the README's sections into the docs' topic pages: ``python docs/_ext/sync_readme.py``.

The README and the site say the same things about paths, scale, Flax, pictures, rules,
adaptive steps, hoisting and benchmarks; this script copies those sections into
``docs/<topic>.md`` (headings one level up, README anchors mapped to pages, python
blocks turned into cells that run when the site is built, except ``<!-- skip-test -->``
ones). Run it after editing those README sections and review the diff. Pages written
by hand (index, getting started, method family, tutorials, gallery) are not touched.
"""
import os
import re

os.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FRONT = "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n  language: python\n---\n\n"
NOTE = "The code on this page ran when the site was built.\n\n"
text = open("README.md").read().splitlines()
secs, cur, fence = {}, None, False
for line in text:
    if line.startswith("```"):
        fence = not fence
    if not fence and line.startswith("## "):
        cur = line[3:].strip(); secs[cur] = []; continue
    if cur: secs[cur].append(line)
ANCHORS = {"(#benchmarks)": "(benchmarks.md)", "(#adaptive-steps)": "(rules_adaptive.md#adaptive-steps)",
           "(#jigig)": "(hoisting.md)", "(#paths-and-baselines)": "(paths_baselines.md)",
           "(#scale-many-devices-and-hosts)": "(scale.md)", "(#flax-layers-and-text)": "(flax.md)",
           "(#pictures)": "(pictures.md)", "(#gallery)": "(gallery.md)", "(#jig-demo)": "(getting_started.md#jig-demo)"}
def fix(s):
    for a, b in ANCHORS.items():
        s = s.replace(a, b)
    s = s.replace("](docs/gallery/", "](gallery/")
    s = re.sub(r"\[([^\]]+)\]\((BUILD_NOTES\.md|benchmarks/results\.md)[^)]*\)", r"`\2`", s)
    s = re.sub(r"\n### ", "\n## ", s)
    # a pipe inside a code span of a table row would end the cell: escape it
    s = "\n".join(re.sub(r"`[^`]*`", lambda m: m.group(0).replace("|", "\\|"), l) if l.startswith("|") else l
                   for l in s.split("\n"))
    # python blocks run (code cells), except those the README marks <!-- skip-test -->
    s = re.sub(r"<!-- skip-test -->\n```python\n", "```python\n", s)
    return s
def cells(s, skip=()):
    def rep(m):
        body = m.group(1)
        return m.group(0) if any(k in body for k in skip) else "```{code-cell} ipython3\n" + body + "```"
    return re.sub(r"```python\n(.*?)```", rep, s, flags=re.S)
get = lambda t: fix("\n".join(secs[t]).strip())
def page(name, title, body, intro="", skip=(), run=True):
    body = cells(body, skip) if run else body
    open(f"docs/{name}.md", "w").write((FRONT if run else "") + f"# {title}\n\n" + intro + (NOTE if run else "") + body + "\n")

page("paths_baselines", "Paths and baselines", get("Paths and baselines"))
scale = get("Scale: many devices and hosts")
scale = scale.replace('batch_size=256, out="attributions.npy")', 'batch_size=256, out=out)')
scale = scale.replace("```python\nA = jig.explain_dataset(", "```python\nimport os, tempfile\nout = os.path.join(tempfile.mkdtemp(), \"attributions.npy\")\nA = jig.explain_dataset(")
page("scale", "Scale: many devices and hosts", scale, skip=("COORDINATOR",))
page("flax", "Flax layers and text", get("Flax layers and text"))
pics = get("Pictures").split("## Gallery")[0].strip()
pics = pics.replace('.savefig("bar.png")', '.savefig("_out/bar.png")').replace('.savefig("text.png")', '.savefig("_out/text.png")')
pics = pics.replace("```python\nimport jax.numpy as jnp, jig\nfrom jig import viz\n", "```python\nimport os, jax.numpy as jnp, jig\nfrom jig import viz\nos.makedirs(\"_out\", exist_ok=True)\n")
pics = re.sub(r'(viz\.bars\([^\n]*\)\n)```', r'''\1fig.savefig("_out/grid.png")
```

What they drew:

```python
from IPython.display import HTML, Image, display
display(Image("_out/bar.png"), Image("_out/grid.png"), Image("_out/text.png"))
HTML(html)
```''', pics, count=1)
page("pictures", "Pictures", pics)
ig = get("`jig.ig`")
rules = ig[ig.index("**Quadrature rules**"):ig.index("**Errors**")].strip()
errors = ig[ig.index("**Errors**"):ig.index("**The first layer")].strip()
hoist = ig[ig.index("**The first layer"):ig.index("**Composes with**")].strip()
composes = ig[ig.index("**Composes with**"):].strip()
adaptive = get("Adaptive steps").replace("""With `return_delta=True` the second output is a
`jig.AdaptiveInfo(delta, points, converged)`;""", """With `return_info=True` the second output is a
{class}`jig.AdaptiveInfo` `(delta, points, converged)` (`return_delta=True` returns
the completeness error alone);""")
page("hoisting", "Hoisting the first layer", hoist + """

```{note}
`jig.hoist` is public so that you can see what jig does: {func}`jig.hoist.split` returns the
split of `f` it would use. `jig.ig(..., hoist=False)` evaluates `f` whole at every path
point, for comparison or when you suspect the split.
```
""")
page("rules_adaptive", "Rules and adaptive steps", f"""## Fixed rules

{rules}

| name | nodes on [0, 1] | exact for polynomials of degree |
|---|---|---|
| `riemann_left` | `k/m`, k = 0..m−1 | 0 |
| `riemann_right` | `k/m`, k = 1..m | 0 |
| `riemann_middle` | `(k + 1/2)/m` | 1 |
| `riemann_trapezoid` | `k/(m−1)`, end weights halved | 1 |
| `gauss_legendre` (default) | Legendre nodes mapped to [0, 1] | 2m − 1 |

```python
import jax.numpy as jnp, jig
alphas, weights = jig.rules.nodes(jig.rules.get("gauss_legendre"), 4)
print(alphas, weights.sum())          # 4 nodes in (0, 1); weights sum to 1
f = lambda x: jnp.sum(jnp.exp(x))
A, delta = jig.ig(f, 0.0, 4, return_delta=True)(jnp.ones(3))
print(delta)                          # ~1e-7 with 4 nodes
A, delta = jig.ig(f, 0.0, 4, rule="riemann_middle", return_delta=True)(jnp.ones(3))
print(delta)                          # ~1e-2 with the midpoint rule
```

## Adaptive steps

{adaptive}

## Errors

{errors}

{composes}""", intro="""A quadrature rule turns the path integral into a weighted sum over nodes `α_k` with
weights `w_k`: `A ≈ Σ_k w_k ∇F(γ(α_k)) ⊙ γ'(α_k)`. Pass a rule's name or a
{class}`jig.rules.Rule` as `jig.ig(..., rule=...)`; {func}`jig.rules.nodes` (with
{func}`jig.rules.get`) shows the nodes and weights of any of them.

""")
# the method family: README's targets paragraph and example go where {{targets}} (or the
# previous copy, between the markers) stands
targets = ig[ig.index("**Every output in one pass**"):ig.index("**Models belong in the arguments.**")].strip()
block = "<!-- from the README -->\n" + cells(targets) + "\n<!-- end of the README part -->"
methods = open("docs/methods.md").read()
methods = re.sub(r"<!-- from the README -->.*?<!-- end of the README part -->|\{\{targets\}\}", lambda m: block, methods, flags=re.S)
open("docs/methods.md", "w").write(methods)
# troubleshooting: README's "Models belong in the arguments" and "When attributions look wrong"
models = ig[ig.index("**Models belong in the arguments.**"):ig.index("## When attributions look wrong")].strip()
wrong = ig[ig.index("## When attributions look wrong") + len("## When attributions look wrong"):ig.index("**Quadrature rules**")].strip()
page("troubleshooting", "When attributions look wrong", wrong + "\n\n## Models belong in the arguments\n\n"
     + models.replace("**Models belong in the arguments.** ", ""))

bench = get("Benchmarks")
page("benchmarks", "Benchmarks", bench, run=False)
print("ok")
