"""GUI entry point: ``vgen-studio [PROJECT]`` / ``python main.py [PROJECT]``.

Kept import-light on purpose: the worker is started with the "spawn" method, which re-imports
the parent's ``__main__`` in the child.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from app import run  # noqa: PLC0415  (the GUI is imported only when asked for)

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
