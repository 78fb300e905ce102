"""jig: Integrated Gradients as a JAX transform.

    >>> import jax.numpy as jnp, jig
    >>> jig.ig(lambda x: jnp.sum(x ** 2), baseline=0.0, steps=16)(jnp.array([1.0, -2.0])).tolist()
    [1.0, 4.0]
"""

from jig import (
    adaptive,
    baselines,
    conductance,
    diagnostics,
    discretized,
    engine,
    flax,
    guided,
    hoist,
    integrand,
    layers,
    metrics,
    paths,
    rewrite,
    rules,
)
from jig._frontend import Explainer, ZeroAttributionWarning
from jig._ig import ig
from jig.adaptive import AdaptiveInfo
from jig.diagnostics import Diagnosis, diagnose
from jig.idgi import idgi
from jig.interactions import interactions
from jig.sharding import explain_dataset, sharded
from jig.smooth import smooth

__version__ = "0.1.0"


_LAZY = ("viz", "equinox", "keras")  # optional extras: jig[viz], jig[equinox], jig[keras]


def __getattr__(name):
    # jig.viz needs matplotlib, jig.equinox equinox, jig.keras keras: import them on first use only.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"jig.{name}")
    raise AttributeError(f"module 'jig' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


# jig.viz, jig.equinox and jig.keras are public too, but left out of __all__ so that
# `from jig import *` works without their optional dependencies.
__all__ = [
    # transforms and wrappers
    "ig", "idgi", "interactions", "smooth", "sharded", "explain_dataset", "diagnose",
    # types
    "Explainer", "AdaptiveInfo", "Diagnosis", "ZeroAttributionWarning",
    # modules
    "adaptive", "baselines", "conductance", "diagnostics", "discretized", "engine", "flax", "guided",
    "hoist", "integrand", "layers", "metrics", "paths", "rewrite", "rules",
    "__version__",
]
