"""The documentation site: it builds with warnings as errors, every public name is on its
API pages, and every internal link resolves.

The suite builds the site once without running the tutorials (``nb_execution_mode=off``,
~20 s); ``.ci/run`` builds it in full and runs these tests again on that build with
``JIG_DOCS_HTML=docs/_build/html``.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import re
import subprocess
import sys
import tempfile
import types
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[docs]'); .ci/run installs it")
pytest.importorskip("myst_nb", reason="the docs extra is not installed (pip install -e '.[docs]'); .ci/run installs it")

sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("KERAS_BACKEND", "jax")  # as docs/conf.py sets it, so both see the same modules

import jig_api  # noqa: E402  (docs/_ext/jig_api.py: the API page generator)


def build_site() -> Path:
    """The built HTML site: ``$JIG_DOCS_HTML`` if set, else one fast build per test run.

    Test workers of one run (pytest-xdist) share the build: the first builds under a
    lock, the others wait for it and reuse it.
    """
    given = os.environ.get("JIG_DOCS_HTML")
    if given:
        path = Path(given).resolve()
        assert (path / "index.html").exists(), f"JIG_DOCS_HTML={given} has no index.html"
        return path
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    out = Path(tempfile.gettempdir()) / f"jig-docs-{run}"
    with open(Path(tempfile.gettempdir()) / "jig-docs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "done").exists():
            cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-q",
                   "-D", "nb_execution_mode=off", str(DOCS), str(out / "html")]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
            (out / "log").parent.mkdir(parents=True, exist_ok=True)
            (out / "log").write_text(res.stdout + res.stderr)
            (out / "done").write_text(str(res.returncode))
    rc = int((out / "done").read_text())
    assert rc == 0, f"the docs build failed (warnings are errors):\n{(out / 'log').read_text()[-6000:]}"
    return out / "html"


@pytest.fixture(scope="session")
def site() -> Path:
    return build_site()


def _public():
    """{module name: its __all__} for jig and every public module the site documents."""
    modules, _ = jig_api.public_modules()
    import jig

    return {m.__name__: list(m.__all__) for m in [jig, *modules]}


def test_site_builds_with_warnings_as_errors(site):
    assert (site / "index.html").exists() and (site / "api" / "index.html").exists()


def test_every_public_name_is_on_the_api_pages(site):
    missing = []
    for module, names in _public().items():
        page = (site / "api" / f"{module}.html").read_text(encoding="utf-8")
        for name in names:
            target = getattr(importlib.import_module(module), name)
            if isinstance(target, types.ModuleType):  # a submodule: linked to its own page
                ok = f'href="{target.__name__}.html' in page and (site / "api" / f"{target.__name__}.html").exists()
            else:
                ok = f'id="{module}.{name}"' in page
            if not ok:
                missing.append(f"{module}.{name}")
    assert not missing, f"public names without an entry on the API pages: {missing}"
    assert 'id="jig.ig"' in (site / "api" / "jig.html").read_text(encoding="utf-8")


def test_the_modules_the_issue_names_are_documented(site):
    for module in ["jig", "jig.paths", "jig.rules", "jig.baselines", "jig.flax", "jig.viz", "jig.adaptive", "jig.hoist"]:
        assert (site / "api" / f"{module}.html").exists(), module


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in ("a", "link") and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def test_internal_links_resolve(site):
    pages = {path: _parse(path) for path in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        if page.relative_to(site).parts[0] == "_static":
            continue  # the theme's own template fragments, not pages
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue  # external: not checked here (no network)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])


def test_every_page_of_the_docs_folder_is_in_the_navigation(site):
    for source in DOCS.rglob("*.md"):
        rel = source.relative_to(DOCS)
        if rel.parts[0].startswith("_") or rel.name.startswith("_"):
            continue
        assert (site / rel.with_suffix(".html")).exists(), f"{rel} was not built"
    index = (site / "index.html").read_text(encoding="utf-8")
    for page in ["getting_started", "tutorials/index", "gallery", "paths_baselines", "rules_adaptive",
                 "hoisting", "methods", "troubleshooting", "scale", "flax", "pictures", "api/index", "changelog"]:
        assert f'href="{page}.html"' in index, page
    for page in jig_api.OPTIONAL_PAGES:  # the pages other parts of the project add, once they exist
        if (DOCS / f"{page}.md").exists():
            assert f'href="{page}.html"' in index, page


def test_readme_keeps_the_quick_start_and_links_to_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in [
        'python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[demo]" && jig demo',
        'python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[test]" && python -m pytest -n 2',
    ]:
        assert command in readme
    assert "make -C docs html" in readme
    linked = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert "docs/getting_started.md" in linked and "docs/api/index.rst" in linked
    for link in linked:
        if not link.startswith("docs/api/"):  # the API pages are generated by the build
            assert (ROOT / link).exists(), link


def test_getting_started_shows_the_readme_quick_start(site):
    import html

    page = (site / "getting_started.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for command in ['pip install -q -e ".[demo]" && jig demo', 'pip install -q -e ".[test]" && python -m pytest -n 2']:
        assert command in text


def test_api_generator_documents_each_kind_of_name():
    module = types.ModuleType("jig_fake", "A fake module.")

    def fn(x):
        """Do it."""

    class Thing:
        """A thing."""

    module.fn, module.Thing, module.LIMIT, module.sub = fn, Thing, 3, types.ModuleType("jig_fake.sub")
    module.__all__ = ["fn", "Thing", "LIMIT", "sub"]
    page = jig_api.module_page(module)
    assert ".. autofunction:: jig_fake.fn" in page and ".. autoclass:: jig_fake.Thing" in page
    assert ".. py:data:: LIMIT" in page and "``3``" in page and ":mod:`jig_fake.sub`" in page


def test_docstring_fixes_for_plain_text_notation():
    table = ["====  ==", "rule  n", "====  ==", "``riemann_x`` 12", "====  =="]
    jig_api.widen_simple_tables(None, "module", "m", None, {}, table)
    assert table[0] == "=" * len("``riemann_x``") + "  " + "==" and table[3] == "``riemann_x``  12"
    lines = ["the error |delta| <= tol * |F(x)|, f(x, *args, **kwargs)", "``|a|`` stays", ">>> abs(-1)  # |x|"]
    jig_api.escape_plain_text(None, "function", "f", None, {}, lines)
    assert lines[0] == r"the error \|delta\| <= tol * \|F(x)\|, f(x, \*args, \*\*kwargs)"
    assert lines[1:] == ["``|a|`` stays", ">>> abs(-1)  # |x|"]
    args = ["Args:", "  x, y,", "    z: as in jig.ig.", "  *args, **kwargs: passed on."]
    jig_api.join_wrapped_names(None, "function", "f", None, {}, args)
    assert args[1] == "  x, y, z: as in jig.ig."
    jig_api.escape_plain_text(None, "function", "f", None, {}, args)
    assert args[2] == r"  \*args, \*\*kwargs: passed on."


def test_example_pages_run_quick_examples_and_show_slow_ones():
    page = jig_api._example_page("fast", "A title\non two lines.\n\nWhat it does.", "p.add_argument('--quick'); '--out'")
    assert page.startswith("---\nfile_format: mystnb") and "# A title on two lines.\n" in page
    assert '.main(["--quick", "--out", out])' in page and "literalinclude:: ../../examples/fast.py" not in page
    assert "{literalinclude} ../../examples/fast.py" in page
    slow = jig_api._example_page("generation", "Slow.\n\nMinutes.", "--quick --out")
    assert "code-cell" not in slow and "is not run when this site is built" in slow


def test_unresolved_names_that_exist_in_the_code_are_recognised():
    assert jig_api._exists("ig", "jig") and jig_api._exists("jig.paths.blur", None)
    assert not jig_api._exists("no_such_name", "jig") and not jig_api._exists("jig.paths.nope", None)
