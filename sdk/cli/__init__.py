"""The ``vgen`` command line: everything the GUI does, headless. One module per command group."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from sdk.cli import conditions, evaluation, models, project, queue
from sdk.cli._common import _p
from sdk.errors import VGenError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgen", description="VGen Studio: projects, render queue, plugins, models.")
    sub = parser.add_subparsers(dest="group", required=True)
    for module in (project, queue, conditions, evaluation, models):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except VGenError as exc:
        print(f"error: {_p(exc.user_message)}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {_p(exc.hint)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
