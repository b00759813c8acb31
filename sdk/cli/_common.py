"""What every command group shares: opening a project, printing JSON and untrusted text, the parser helpers."""
from __future__ import annotations

import argparse
import json
from typing import Any

from sdk.safe_text import printable as _p

__all__ = ["_p", "cmd", "group", "open_project", "print_json"]


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


def open_project(path: str) -> Any:
    from sdk.project import Project

    return Project.open(path)


def group(sub: Any, name: str, help: str) -> Any:
    """A command group (``vgen NAME ...``) under the top-level subparsers ``sub``."""
    g = sub.add_parser(name, help=help)
    return g.add_subparsers(dest="cmd", required=True)


def cmd(parent: Any, name: str, fn: Any, help: str) -> argparse.ArgumentParser:
    """A command of a group, running ``fn(args)``."""
    c = parent.add_parser(name, help=help)
    c.set_defaults(fn=fn)
    return c
