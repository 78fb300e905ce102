"""The ``jig`` command line: ``jig demo`` (also ``python -m jig demo``).

Example:
  >>> from jig.__main__ import main
  >>> main(["--version"])  # doctest: +ELLIPSIS
  jig 0.1.0
  0
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Commands:
      ``demo``: train small models on data shipped in packages, explain them with
      several paths and rules, print completeness deltas and timings, write pictures
      (``jig demo --help`` for its options).
    """
    import jig

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="jig",
        description="jig: Integrated Gradients as a JAX transform.",
        epilog="Run 'jig demo --help' for the demo's options.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("command", nargs="?", choices=["demo"], help="what to run")
    args, rest = parser.parse_known_args(argv[:1] if argv and argv[0] == "demo" else argv)
    if args.version:
        print(f"jig {jig.__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    from jig import _demo

    return _demo.main(argv[1:], prog="jig demo")


if __name__ == "__main__":
    sys.exit(main())
