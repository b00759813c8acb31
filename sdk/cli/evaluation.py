"""``vgen batch report``: a batch's outputs × metrics as Markdown, CSV or HTML (the evaluation board's table)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from sdk.cli._common import _p, cmd, group, open_project


def cmd_batch_report(a: argparse.Namespace) -> int:
    from sdk.evaluation import build_board
    from sdk.evaluation_report import write_report
    from sdk.plugins import load_plugins

    with open_project(a.path) as p:
        board = build_board(p, a.batch, registry=load_plugins())
    result = write_report(board, a.format, a.out, metric=a.metric, axis=a.axis)
    if a.out is None:
        sys.stdout.write(result)
    else:
        print(f"Wrote the {a.format} report of batch {board.batch_id} to {_p(str(result))}")
    return 0


def register(sub: Any) -> None:
    g = group(sub, "batch", "batches of jobs: their evaluation")
    c = cmd(g, "report", cmd_batch_report, "a batch's outputs × metrics, the best seed and the best step")
    c.add_argument("path")
    c.add_argument("batch", help="a batch id or prefix (`vgen queue list` shows them)")
    c.add_argument("--format", default="md", choices=("md", "csv", "html"))
    c.add_argument("--metric", default=None, help="the metric to rank by (default: the first with scores)")
    c.add_argument("--axis", default=None, help="the param the chart and 'best step' follow (default: an adapter "
                   "step such as identity_step when one varies, else the first numeric param that varies)")
    c.add_argument("--out", default=None, help="write to this file (default: print)")
