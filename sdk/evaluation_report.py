"""``vgen batch report``: an evaluation :class:`~sdk.evaluation.Board` as Markdown, CSV or one self-contained HTML
page (thumbnails and the score-vs-step chart embedded as PNG data URIs), plus the chart PNG the GUI shows.

The chart is drawn by matplotlib on its Agg backend through a bare ``Figure`` (no pyplot, so no GUI backend and
no global state); matplotlib is imported only when a chart is drawn.
"""
from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.evaluation import Board, BoardRow, StepCurve
from sdk.safe_text import printable

FORMATS = ("md", "csv", "html")
THUMB_PX = 128


def fmt_score(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def varying_params(board: Board) -> list[str]:
    """Params whose values differ across the rows (the grid's axes), in the order the jobs give them."""
    names: dict[str, set[str]] = {}
    for row in board.rows:
        for k, v in row.params.items():
            names.setdefault(k, set()).add(repr(v))
    return [k for k, vs in names.items() if len(vs) > 1]


def table(board: Board, metric: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows (as text) of the board, sorted best first by ``metric`` (default: the first one); unscored
    rows last. The ``best`` column marks rows best for their prompt (P) or subject (S)."""
    metric = metric or board.default_metric()
    params = varying_params(board)
    header = ["job", "prompt", "subject", "seed", *params,
              *[f"{m.id} ({'↑' if m.higher_is_better else '↓'})" for m in board.metrics], "best"]
    rows = list(board.rows)
    if metric is not None:
        hib = board.metric(metric).higher_is_better
        rows.sort(key=lambda r: (r.score(metric) is None, -(r.score(metric) or 0.0) if hib else (r.score(metric) or 0.0)))
    best_p = {r.job_id for rs in (board.best_per("prompt", metric).values() if metric else []) for r in rs}
    best_s = {r.job_id for rs in (board.best_per("subject", metric).values() if metric else []) for r in rs}
    out = []
    for r in rows:
        marks = ("P" if r.job_id in best_p else "") + ("S" if r.job_id in best_s else "")
        out.append([r.job_id[:8], printable(r.prompt), printable(r.subject or ""), str(r.seed),
                    *[printable(str(r.params.get(p, ""))) for p in params],
                    *[("INVALID" if m.id in r.problems else fmt_score(r.score(m.id))) for m in board.metrics], marks])
    return header, out


def summary(board: Board, metric: str | None = None, axis: str | None = None) -> list[str]:
    """Lines naming the best seed, the best output per prompt/subject and the peak step, by ``metric``."""
    metric = metric or board.default_metric()
    if metric is None:
        return ["No output of this batch is scored yet: vgen jobs score PROJECT --batch BATCH --metric M."]
    col = board.metric(metric)
    lines = [f"Metric: {metric} ({'higher' if col.higher_is_better else 'lower'} is better)"
             + ("" if col.known else " — not installed here; assumed higher is better")]
    seed = board.best_seed(metric)
    if seed is not None:
        mean, n = board.seed_means(metric)[seed]
        lines.append(f"Best seed: {seed} (mean {mean:.6g} over {n} output{'s' * (n != 1)})")
    for key in ("prompt", "subject"):
        for name, rows in board.best_per(key, metric).items():
            ids = ", ".join(r.job_id[:8] for r in rows)
            label = repr(printable(name)) if name else "(none)"
            lines.append(f"Best for {key} {label}: {ids} ({fmt_score(rows[0].score(metric))})"
                         + (" (tie)" if len(rows) > 1 else ""))
    curve = _curve(board, metric, axis)
    if curve is not None and curve.peak is not None:
        label = "Best step" if curve.axis.endswith("_step") else f"Best {curve.axis}"
        lines.append(f"{label}: {curve.axis}={_num(curve.peak.step)} (mean {curve.peak.mean:.6g} over "
                     f"{curve.peak.count})")
    return lines


def _curve(board: Board, metric: str, axis: str | None) -> StepCurve | None:
    if axis is None and board.step_axis() is None:
        return None
    return board.step_curve(metric, axis)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def chart_png(curve: StepCurve, title: str | None = None, size: tuple[float, float] = (5.0, 3.0)) -> bytes:
    """The score-vs-step chart as PNG bytes: each output's score (dots), the mean (line) and the peak (marked)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = [p.step for p in curve.points]
    for p in curve.points:  # each output's score in grey, the mean per step in blue, the peak ringed in red
        ax.scatter([p.step] * len(p.values), p.values, s=12, color="0.6", zorder=2)
    ax.plot(xs, [p.mean for p in curve.points], marker="o", color="tab:blue", zorder=3)
    peak = ""
    if curve.peak is not None:
        ax.scatter([curve.peak.step], [curve.peak.mean], s=140, facecolors="none", edgecolors="tab:red",
                   linewidths=2, zorder=4)
        ax.axvline(curve.peak.step, color="tab:red", alpha=0.3, zorder=1)
        peak = f" · peak at {_num(curve.peak.step)}"
    ax.set_xlabel(curve.axis)
    ax.set_ylabel(curve.metric)
    ax.set_title(title or f"{curve.metric} vs {curve.axis}{peak}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def middle_frame(output_dir: str | Path) -> np.ndarray:
    """The middle frame of an output (uint8 ``[H, W, 3]``): from ``frames/`` when there, else the video."""
    d = Path(output_dir)
    pngs = sorted((d / "frames").glob("[0-9]*.png")) if (d / "frames").is_dir() else []
    if pngs:
        with Image.open(pngs[len(pngs) // 2]) as im:
            return np.asarray(im.convert("RGB"))
    from sdk.outputs import read_frames

    frames = read_frames(d)
    return frames[len(frames) // 2]


def thumbnail_png(output_dir: str | Path, px: int = THUMB_PX) -> bytes:
    im = Image.fromarray(middle_frame(output_dir))
    im.thumbnail((px, px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(board: Board, fmt: str, metric: str | None = None, axis: str | None = None) -> str:
    """The board as ``md``, ``csv`` or ``html`` text."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"--format {printable(fmt)!r} is not a report format.",
                             hint=f"Use one of {', '.join(FORMATS)}.", field="format")
    if metric is not None:
        board.metric(metric)  # refuse a metric without scores here, naming those with scores
    header, rows = table(board, metric)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    lines = summary(board, metric, axis)
    if fmt == "md":
        esc = lambda s: s.replace("|", "\\|")  # noqa: E731 - a cell escape
        out = [f"# Evaluation of batch {board.batch_id or '(jobs)'}", "", *[f"- {x}" for x in lines], "",
               "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        return "\n".join(out) + "\n"
    return _html(board, header, rows, lines, metric or board.default_metric(), axis)


def _html(board: Board, header: list[str], rows: list[list[str]], lines: list[str], metric: str | None,
          axis: str | None) -> str:
    e = html.escape
    by_id = {r.job_id[:8]: r for r in board.rows}
    chart = ""
    if metric is not None:
        curve = _curve(board, metric, axis)
        if curve is not None and curve.points:
            chart = f'<img class="chart" alt="{e(metric)} vs {e(curve.axis)}" src="{_data_uri(chart_png(curve))}">'
    body = []
    for cells in rows:
        row: BoardRow = by_id[cells[0]]
        thumb = ""
        if row.output_dir:
            try:
                thumb = f'<img alt="{e(row.job_id[:8])}" src="{_data_uri(thumbnail_png(row.output_dir))}">'
            except (OSError, InvalidRequest, ValueError, IndexError) as exc:
                thumb = f"(no frame: {e(printable(str(exc))[:80])})"
        cls = ' class="best"' if cells[-1] else ""
        body.append(f"<tr{cls}><td>{thumb}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    title = f"Evaluation of batch {e(board.batch_id or '(jobs)')}"
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px}"
            "tr.best{background:#e6f4e6}</style></head><body>\n"
            f"<h1>{title}</h1>\n<ul>" + "".join(f"<li>{e(x)}</li>" for x in lines) + "</ul>\n" + chart +
            "\n<table><thead><tr><th>thumbnail</th>" + "".join(f"<th>{e(h)}</th>" for h in header) +
            "</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></body></html>\n")


def write_report(board: Board, fmt: str, out: str | Path | None, metric: str | None = None,
                 axis: str | None = None) -> Any:
    """Render and write to ``out`` (returns its path), or return the text when ``out`` is None."""
    text = render(board, fmt, metric, axis)
    if out is None:
        return text
    from sdk.diskspace import disk_full, is_disk_full

    path = Path(out).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(path.parent) from exc
        raise InvalidRequest(f"Cannot write the report to {path}: {exc.strerror or exc}.",
                             hint="Pick a folder you can write to.", field="out") from exc
    return path
