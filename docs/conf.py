"""Sphinx configuration of jig's documentation site (``make -C docs html``).

The API pages are generated from the ``__all__`` lists at build time (``_ext/jig_api.py``);
the tutorials under ``tutorials/`` are MyST notebooks that run the examples with their
reduced settings when the site is built (``-D nb_execution_mode=off`` skips that).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the jig of this checkout, also when it is not installed
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "jax")

import jig  # noqa: E402

project = "jig"
author = "the jig authors"
copyright = "2026, the jig authors"
release = version = jig.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
    "jig_api",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "_out", "**/_out", ".ipynb_checkpoints", "README.md", "_gallery_more.md"]
root_doc = "index"

# Every cross-reference must resolve (-n): jig's own names are all documented; names
# of other libraries are not linked (no intersphinx: the build runs offline).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|jnp|typing|collections|matplotlib|flax|nnx|nn|optax|chex|equinox|eqx|keras|builtins|types|abc|enum|functools|os|pathlib)(\..*)?"),
    (r"py:.*", r"(.*\.)?_\w+(\..*)?"),  # private helpers and type aliases (jig._types.PyTree, _Bound ...)
    (r"py:.*", r"(Array|ArrayLike|PyTree|Baseline|ArgNums|Targets|Explainer|Callable|Sequence|Mapping|Iterable|Iterator|Any|Optional|Union|NamedTuple|Figure|Axes|Mesh|PRNGKey|Module|T|F|dtype|DType|Shape)"),
    (r"py:class", r"(int|float|str|bool|tuple|list|dict|object|None|callable|optional|array|pytree|array-like|scalar|function|sequence|ndarray|default|module)"),
]

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = False  # a class's Attributes: section documents its fields (NamedTuples)

myst_enable_extensions = ["colon_fence", "deflist"]  # no math: MathJax would need the network
myst_heading_anchors = 3

nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

html_theme = "sphinx_book_theme"
html_title = f"jig {release}"
html_theme_options = {
    "repository_url": "",
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = []
html_last_updated_fmt = None
