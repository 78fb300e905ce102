"""Packaging: the version is single-sourced and py.typed is package data; and (in .ci/run)
the wheel and sdist build, the wheel carries py.typed and the version, and it installs in a
fresh virtual environment and runs.

The fresh-environment test installs jig's dependencies from the package index (a few
minutes), so the test suite skips it; ``.ci/run`` runs it with ``JIG_PACKAGING_FULL=1``.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import jig

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_read_from_jig_init():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "jig.__version__"}
    assert project["tool"]["setuptools"]["package-data"]["jig"] == ["py.typed"]
    assert (ROOT / "jig" / "py.typed").exists()
    parts = jig.__version__.split(".")
    assert len(parts) >= 3 and all(p.isdigit() for p in parts[:3])
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {jig.__version__}" in changelog or "## Unreleased" in changelog


def _wheel_metadata(wheel: Path) -> tuple[email.message.Message, list[str], str]:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        return email.message_from_string(z.read(info).decode()), names, z.read(entry).decode()


def _demo_args() -> list[str]:
    """``jig demo``'s quick form: ``--quick`` where the demo has it, else small settings."""
    help_text = subprocess.run([sys.executable, "-m", "jig", "demo", "--help"], capture_output=True, text=True,
                               cwd=ROOT, timeout=120).stdout
    if "--quick" in help_text:
        return ["--quick"]
    return ["--steps", "6", "--train-steps", "30", "--text-steps", "30", "--examples", "2", "--baselines", "2", "--quiet"]


@pytest.mark.skipif(os.environ.get("JIG_PACKAGING_FULL") != "1",
                    reason="installs jig's dependencies into a fresh venv (minutes); .ci/run runs it with JIG_PACKAGING_FULL=1")
def test_wheel_and_sdist_build_and_the_wheel_runs_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    res = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    (wheel,) = dist.glob("jig-*.whl")
    (sdist,) = dist.glob("jig-*.tar.gz")
    assert wheel.name.startswith(f"jig-{jig.__version__}-") and sdist.name == f"jig-{jig.__version__}.tar.gz"
    meta, names, entry_points = _wheel_metadata(wheel)
    assert meta["Version"] == jig.__version__
    assert "jig/py.typed" in names and "jig/__init__.py" in names and "jig/viz.py" in names
    assert not any(n.startswith(("tests/", "docs/", "examples/", "benchmarks/")) for n in names)
    assert "jig = jig.__main__:main" in entry_points
    with tarfile.open(sdist) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    assert {"pyproject.toml", "README.md", "jig/__init__.py", "jig/py.typed"} <= members

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip, python, cli = (venv / "bin" / n for n in ("pip", "python", "jig"))
    res = subprocess.run([str(pip), "install", "-q", f"{wheel}[demo]"], capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-4000:]

    work = tmp_path / "work"  # outside the checkout: the installed jig, not the source tree, is imported
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")} | {"MPLBACKEND": "Agg"}
    where = subprocess.run([str(python), "-c", "import jig, pathlib; p = pathlib.Path(jig.__file__).parent; "
                            "print(jig.__version__, p, (p / 'py.typed').exists())"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=300)
    version, location, typed = where.stdout.split()
    assert version == jig.__version__ and str(venv) in location and typed == "True", where.stdout + where.stderr
    assert subprocess.run([str(cli), "--version"], capture_output=True, text=True, cwd=work, env=env,
                          timeout=300).stdout.strip() == f"jig {jig.__version__}"
    demo = subprocess.run([str(cli), "demo", *_demo_args(), "--out", "out"], capture_output=True, text=True,
                          cwd=work, env=env, timeout=900)
    assert demo.returncode == 0, (demo.stdout + demo.stderr)[-4000:]
    assert (work / "out" / "digits.png").exists(), sorted(os.listdir(work / "out"))
