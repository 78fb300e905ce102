"""The README's Python examples run as written (blocks after `<!-- skip-test -->` are
shown, not run: e.g. the multi-host launcher)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- skip-test -->\s*)?```python\n(.*?)```", re.S)


def readme_blocks():
    return [(skip is not None and skip != "", code) for skip, code in BLOCK.findall(README.read_text())]


def test_readme_has_examples():
    assert sum(not skip for skip, _ in readme_blocks()) >= 1


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pictures an example writes land in a scratch folder
    namespace = {"__name__": "readme"}
    for i, (skip, code) in enumerate(readme_blocks()):
        if skip:
            continue
        exec(compile(code, f"README.md[block {i}]", "exec"), namespace)  # noqa: S102


def test_quick_start_commands_are_the_ci_commands():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_cmd = [line for line in ci.splitlines() if line.startswith("python3 -m venv")][0]
    assert test_cmd in text, "README's test command must be exactly what .ci/run runs"
    assert "jig demo" in text
