"""Generate the API reference pages from the ``__all__`` lists, at build time.

Every public module of jig (a submodule whose name does not start with ``_`` and
which defines ``__all__``) gets one page, ``api/<module>.rst``, with one autodoc
entry per name in its ``__all__``; ``jig`` itself gets ``api/jig.rst``. A module
added to the package, or a name added to an ``__all__``, appears in the reference
without editing the docs. A module whose optional dependency is missing (say
``jig.keras`` without keras) is listed on the index page as not importable here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import types

from sphinx.pycode import ModuleAnalyzer

import jig

# Always documented in this order when importable; any other public submodule follows.
FIRST = ["jig.paths", "jig.rules", "jig.baselines", "jig.adaptive", "jig.hoist", "jig.sharding",
         "jig.flax", "jig.equinox", "jig.keras", "jig.layers", "jig.discretized", "jig.metrics", "jig.viz"]


def public_modules() -> tuple[list[types.ModuleType], dict[str, str]]:
    """(importable public submodules, {module name: why not importable})."""
    names = list(FIRST)
    for info in pkgutil.iter_modules(jig.__path__):
        if not info.name.startswith("_") and f"jig.{info.name}" not in names:
            names.append(f"jig.{info.name}")
    modules, missing = [], {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # not (yet) part of the package: nothing to document
                continue
            missing[name] = f"needs {e.name}"
            continue
        if hasattr(module, "__all__"):
            modules.append(module)
    return modules, missing


def _attr_docs(module: types.ModuleType) -> dict[str, list[str]]:
    """The ``#:`` comments (or docstrings) of a module's attributes, by name."""
    try:
        docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    except Exception:  # no source (a compiled or generated module)
        return {}
    return {name: list(lines) for (_, name), lines in docs.items()}


def _own_doc(obj) -> str:
    """The object's docstring, or "" where it only has its type's (an instance)."""
    doc = getattr(obj, "__doc__", None)
    if not doc or (not inspect.isclass(obj) and not inspect.isroutine(obj) and doc == getattr(type(obj), "__doc__", None)):
        return ""
    return inspect.cleandoc(doc)


def _is_function(obj) -> bool:
    return inspect.isroutine(obj) or (callable(obj) and bool(_own_doc(obj)) and not inspect.isclass(obj))


def _summary(obj, attr_doc: list[str] | None) -> str:
    """The first paragraph of the object's documentation, on one line."""
    text = "\n".join(attr_doc) if attr_doc else _own_doc(obj)
    if not text and isinstance(obj, (str, int, float, tuple)) and len(repr(obj)) <= 60:
        return f"``{obj!r}``"
    if not text and not inspect.isclass(obj) and not inspect.isroutine(obj):
        return f"An instance of {_type_ref(obj)}."
    return " ".join(text.strip().split("\n\n")[0].split())


def _type_ref(obj) -> str:
    kind = type(obj)
    return f"``{kind.__qualname__}``" if kind.__module__ == "builtins" else f":class:`~{kind.__module__}.{kind.__qualname__}`"


def _documented_elsewhere(module: types.ModuleType, obj) -> bool:
    """Whether ``obj`` is defined in another public module that lists it in its ``__all__``."""
    home = getattr(obj, "__module__", None) or ""
    if home == module.__name__ or not home.startswith("jig.") or any(p.startswith("_") for p in home.split(".")):
        return False
    try:
        return obj.__qualname__ in getattr(importlib.import_module(home), "__all__", ())
    except Exception:
        return False


def _entry(module: types.ModuleType, name: str, attr_doc: list[str] | None) -> str:
    full = f"{module.__name__}.{name}"
    obj = getattr(module, name)
    if inspect.isclass(obj) and _documented_elsewhere(module, obj):
        # a re-export of a class documented on its own module's page: link there (documenting
        # it twice would register its canonical name twice)
        home = f"{obj.__module__}.{obj.__qualname__}"
        return f".. py:class:: {name}\n\n   The same class as :class:`{home}` (documented there).\n"
    if inspect.isclass(obj):
        fields = getattr(obj, "_fields", ())  # a NamedTuple: its fields come from its Attributes: section
        skip = f"\n   :exclude-members: {', '.join(fields)}" if fields else ""
        return f".. autoclass:: {full}\n   :members:{skip}\n"
    if _is_function(obj):
        return f".. autofunction:: {full}\n"
    # data: a constant, a table, an instance (say what it is; its type's docstring is not its own)
    ref = _type_ref(obj)
    value = repr(obj)
    lines = [f".. py:data:: {name}", ""]  # under ``currentmodule``: the short name
    if len(value) <= 70 and "<" not in value and "`" not in value:
        lines.append(f"   ``{value}`` ({ref})")
    else:
        lines.append(f"   An instance of {ref}.")
    lines.append("")
    lines += [f"   {line}" for line in (attr_doc or [])]
    return "\n".join(lines) + "\n"


def _table(module: types.ModuleType, names: list[str], attr_docs: dict) -> list[str]:
    lines = [".. list-table::", "   :widths: 30 70", ""]
    for n in names:
        lines += [f"   * - :py:obj:`~{module.__name__}.{n}`", f"     - {_summary(getattr(module, n), attr_docs.get(n))}"]
    return lines + [""]


def module_page(module: types.ModuleType) -> str:
    name = module.__name__
    public = list(module.__all__)
    parent, _, last = name.rpartition(".")
    shadowed = parent and getattr(importlib.import_module(parent), last, module) is not module
    # a module shadowed by a same-named function of its package (jig.idgi the function, jig.idgi
    # the module) is not indexed as a module: the function owns the name ``jig.idgi``
    lines = [name, "=" * len(name), "", f".. automodule:: {name}", "   :no-members:"]
    lines += ["   :no-index:"] if shadowed else []
    lines += ["", f".. currentmodule:: {name}", ""]
    rows = [n for n in public if not isinstance(getattr(module, n), types.ModuleType)]
    subs = [n for n in public if isinstance(getattr(module, n), types.ModuleType)]
    attr_docs = _attr_docs(module)
    if rows:
        lines += [".. rubric:: Names", ""] + _table(module, rows, attr_docs)
    if subs:
        lines += [".. rubric:: Submodules", ""]
        lines += [f"- :mod:`{getattr(module, n).__name__}`" for n in subs] + [""]
    for n in rows:
        lines += [_entry(module, n, attr_docs.get(n))]
    return "\n".join(lines)


def index_page(modules: list[types.ModuleType], missing: dict[str, str]) -> str:
    lines = ["API reference", "=============", "",
             "Generated at build time from ``jig.__all__`` and each public module's ``__all__``:",
             "every public name of jig is on one of these pages.", "",
             ".. toctree::", "   :maxdepth: 1", "", "   jig"]
    lines += [f"   {m.__name__}" for m in modules] + [""]
    if missing:
        lines += ["Not importable where these pages were built (their optional dependency is missing; "
                  "``pip install -e '.[docs]'`` installs them):", ""]
        lines += [f"- ``{n}``: {why}" for n, why in missing.items()] + [""]
    return "\n".join(lines)


def _write(path: str, text: str) -> None:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return  # unchanged: keep the mtime so Sphinx does not re-read it
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def generate(app) -> None:
    out = os.path.join(app.srcdir, "api")
    os.makedirs(out, exist_ok=True)
    modules, missing = public_modules()
    pages = {"index": index_page(modules, missing), "jig": module_page(jig)}
    pages.update({m.__name__: module_page(m) for m in modules})
    for stale in set(os.listdir(out)) - {f"{p}.rst" for p in pages}:
        os.remove(os.path.join(out, stale))
    for page, text in pages.items():
        _write(os.path.join(out, f"{page}.rst"), text)


def gallery_more(app) -> None:
    """``_gallery_more.md``: the pictures in ``gallery/`` that ``gallery.md`` does not show yet."""
    src = app.srcdir
    with open(os.path.join(src, "gallery.md"), encoding="utf-8") as f:
        shown = f.read()
    folder = os.path.join(src, "gallery")
    extra = sorted(n for n in os.listdir(folder) if n.endswith((".png", ".svg", ".jpg")) and f"gallery/{n}" not in shown)
    text = "".join(f"![{n}](gallery/{n})\n\n" for n in extra)
    _write(os.path.join(src, "_gallery_more.md"), ("## More pictures\n\n" + text) if extra else "")


_BORDER = re.compile(r"^(\s*)=+(\s+=+)+\s*$")


def _cells(line: str, starts: list[int]) -> list[str]:
    """A simple-table row cut at its columns' starts; a cell that runs past the next
    column's start ends at the first space after it instead."""
    cuts = [0]
    for b in starts[1:]:
        b = max(b, cuts[-1])
        while 0 < b < len(line) and line[b - 1] != " ":
            b += 1
        cuts.append(b)
    return [line[a:b].strip() for a, b in zip(cuts, cuts[1:] + [len(line)])]


def widen_simple_tables(app, what, name, obj, options, lines: list[str]) -> None:
    """Re-draw a docstring's simple tables with columns as wide as their cells.

    Docstrings are read as plain text too, where a cell that overruns its ``====``
    border by a character looks fine; docutils rejects it. Cells are separated by
    two or more spaces.
    """
    i = 0
    while i < len(lines):
        m = _BORDER.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip():
            j += 1
        block = lines[i:j]
        indent = m.group(1)
        starts = [k.start() for k in re.finditer(r"=+", block[0])]
        rows = [None if _BORDER.match(line) else _cells(line, starts) for line in block]
        widths = [max([len(r[c]) for r in rows if r] + [1]) for c in range(len(starts))]
        border = indent + "  ".join("=" * w for w in widths)
        lines[i:j] = [border if r is None else (indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip()
                      for r in rows]
        i = j


_STARS = re.compile(r"(?<=[\s(,\[])(\*{1,2})(?=[A-Za-z_]\w*[,):\s\]]|[A-Za-z_]\w*$)")
_BARS = re.compile(r"(?<![\\\w`|])\|(?=\S)([^|`]*?\S)\|(?![\w|])")


def _plain(text: str) -> str:
    text = _BARS.sub(r"\\|\1\\|", text)
    return _STARS.sub(lambda m: "\\*" * len(m.group(1)), text)


def escape_plain_text(app, what, name, obj, options, lines: list[str]) -> None:
    """Keep plain-text notation in docstrings from being read as reST markup.

    ``|x|`` (an absolute value) is not a substitution, and ``*args``/``**kwargs`` do not
    start emphasis. Doctest blocks, literal blocks (after ``::``) and inline literals
    are left alone.

    """
    literal_indent = None
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            in_doctest = False
            continue
        if literal_indent is not None:
            if indent > literal_indent:
                continue
            literal_indent = None
        if stripped.startswith(">>>") or in_doctest:
            in_doctest = True
            continue
        parts = re.split(r"(``.*?``)", line)
        lines[i] = "".join(p if p.startswith("``") else _plain(p) for p in parts)
        if stripped.endswith("::"):
            literal_indent = indent


# Pages that other parts of the project add; the navigation lists each one once it exists.
OPTIONAL_PAGES = ["metrics", "equinox_keras", "text", "ARCHITECTURE", "methods_family", "smooth_conductance"]


def drop_missing_pages(app, docname: str, source: list[str]) -> None:
    """Remove the toctree entries of ``index`` whose optional page is not there (yet)."""
    if docname != "index":
        return
    for page in OPTIONAL_PAGES:
        if not os.path.exists(os.path.join(app.srcdir, page + ".md")):
            source[0] = re.sub(rf"^{page}\n", "", source[0], flags=re.M)


NOT_TUTORIALS = {"make_gallery"}  # a maintenance script, not an example
# examples that take minutes even in their reduced form: their pages show the script only
NOT_RUN = {"transformer_sentiment", "generation"}
FRONT = "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n  language: python\n---\n\n"
LOAD = '''import importlib.util, os, sys
from IPython.display import HTML, Image, display

def load_example(name):
    """examples/<name>.py of the repository, imported as a module."""
    spec = importlib.util.spec_from_file_location(name, f"../../examples/{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
'''
SHOW = '''for name in sorted(os.listdir(out)):  # what the script wrote
    path = os.path.join(out, name)
    if name.endswith(".png"):
        display(Image(path))
    elif name.endswith(".html"):
        display(HTML(open(path, encoding="utf-8").read()))
'''


def _example_page(name: str, doc: str, source: str) -> str:
    title, _, rest = doc.partition("\n\n")
    head = f"# {' '.join(title.split()) or name}\n\n```text\n{rest.strip()}\n```\n\n"
    tail = f"## The script\n\n```{{literalinclude}} ../../examples/{name}.py\n:language: python\n```\n"
    runnable = "--quick" in source and "--out" in source and name not in NOT_RUN
    if not runnable:
        return (head + f"`examples/{name}.py` is not run when this site is built (it takes minutes even in its\n"
                f"reduced form); run it from a clone of the repository: `python examples/{name}.py --help`.\n\n" + tail)
    return (FRONT + head + f"This page is `examples/{name}.py`, run in its reduced form (`--quick`) when the site\n"
            f"was built, with what it printed and wrote.\n\n"
            f"```{{code-cell}} ipython3\n{LOAD}\nout = \"_out/{name}\"\nstatus = load_example(\"{name}\").main([\"--quick\", \"--out\", out])\n```\n\n"
            f"```{{code-cell}} ipython3\n{SHOW}```\n\n" + tail)


def example_pages(app) -> None:
    """``tutorials/more_<name>.md`` for each example script that has no tutorial page of its own.

    The page runs the script in its reduced form (``--quick --out``) and shows what it
    printed and wrote, except for the slow ones (``NOT_RUN``), whose page shows the script.
    """
    here = os.path.join(app.srcdir, "tutorials")
    examples = os.path.join(os.path.dirname(app.srcdir), "examples")
    names = sorted(n[:-3] for n in os.listdir(examples) if n.endswith(".py") and not n.startswith("_"))
    wanted = {}
    for name in names:
        if name in NOT_TUTORIALS or os.path.exists(os.path.join(here, f"{name}.md")):
            continue
        with open(os.path.join(examples, f"{name}.py"), encoding="utf-8") as f:
            source = f.read()
        wanted[f"more_{name}.md"] = _example_page(name, ast.get_docstring(ast.parse(source)) or "", source)
    for stale in {n for n in os.listdir(here) if n.startswith("more_") and n.endswith(".md")} - set(wanted):
        os.remove(os.path.join(here, stale))
    for page, text in wanted.items():
        _write(os.path.join(here, page), text)


def list_more_examples(app, docname: str, source: list[str]) -> None:
    """Put the generated example pages into the tutorials' toctree (the line ``more_examples``)."""
    if docname != "tutorials/index":
        return
    here = os.path.join(app.srcdir, "tutorials")
    pages = sorted(n[:-3] for n in os.listdir(here) if n.startswith("more_") and n.endswith(".md"))
    source[0] = re.sub(r"^more_examples\n", "".join(p + "\n" for p in pages), source[0], flags=re.M)


def _exists(target: str, module: str | None) -> bool:
    """Whether ``target`` names a Python object, absolutely or inside ``module``."""
    for dotted in ([f"{module}.{target}"] if module else []) + [target]:
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except Exception:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
                return True
            except AttributeError:
                break
    return False


def resolve_elsewhere(app, env, node, contnode):
    """A Python cross-reference that did not resolve where it was written.

    A docstring documented where it is re-exported (``jig.interactions`` on the ``jig``
    page) refers to names of its own module (``gauss_log``): look the name up among all
    documented objects, as ``.name`` would. A name that exists in the code but is not
    documented (not in an ``__all__``) is shown as code without a link. Anything else
    stays a broken reference (a warning, so an error with ``-W``).
    """
    if node.get("refdomain") != "py" or node.get("refspecific"):
        return None
    domain = env.get_domain("py")
    fuzzy = node.deepcopy()
    fuzzy["refspecific"] = True
    found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], fuzzy, contnode)
    if found is not None:
        return found
    if _exists(node["reftarget"], node.get("py:module")):
        return contnode
    return None


_NAME_LIST = re.compile(r"^\s+\*{0,2}\w+(,\s*\*{0,2}\w+)*,\s*$")


def join_wrapped_names(app, what, name, obj, options, lines: list[str]) -> None:
    """Join an ``Args:`` entry whose list of names wraps onto the next line.

    ``a, b, c,\n  d, e: as in jig.ig`` is one entry for five arguments; napoleon (which
    runs after this) reads an entry per line. Runs before napoleon.
    """
    i = 0
    while i < len(lines) - 1:
        if _NAME_LIST.match(lines[i]):
            lines[i:i + 2] = [lines[i].rstrip() + " " + lines[i + 1].strip()]
        else:
            i += 1


def setup(app):
    app.connect("autodoc-process-docstring", join_wrapped_names, priority=100)
    app.connect("missing-reference", resolve_elsewhere)
    app.connect("builder-inited", example_pages)
    app.connect("source-read", list_more_examples)
    app.connect("source-read", drop_missing_pages)
    app.connect("autodoc-process-docstring", widen_simple_tables)
    app.connect("autodoc-process-docstring", escape_plain_text)
    app.connect("builder-inited", generate)
    app.connect("builder-inited", gallery_more)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
