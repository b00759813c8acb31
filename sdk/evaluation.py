"""The evaluation board's data: a batch's (or any jobs') outputs × metrics, the best output per prompt and per
subject, the best seed, and score vs an adapter step (or any numeric param) with where it peaks.

Torch-free and Qt-free: ``vgen batch report`` (:mod:`sdk.evaluation_report`) and the GUI's board read the same
:class:`Board`. Every metric carries its direction (``MetricSpec.higher_is_better``: ``classic_cv.flow_warp`` is
an error, lower is better); "best" always follows it. A row without a score of a metric (not scored yet, skipped,
an invalid row) is left out of that metric's bests and means, never counted as zero; equal best scores are all best.

DreamVideo-style grids vary ``identity_step`` / ``motion_step`` (``<name>_step`` next to ``<name>_adapter``, see
:mod:`sdk.adapters`); a step of 0 means "the adapter's own step", which the board reads from the Adapter the job
actually used (its output's ``meta.json`` ``inputs.adapters``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.records import JobRecord, OutputRecord

#: params that are never a chart axis (they do not describe what was varied on purpose)
_NOT_AXES = frozenset({"seed"})


@dataclass(frozen=True)
class MetricColumn:
    """One metric of the board: its id, title and direction."""

    id: str
    title: str
    higher_is_better: bool = True
    #: False when the metric is not installed here: its direction is then assumed (higher is better)
    known: bool = True


@dataclass(frozen=True)
class BoardRow:
    """One output of the board: who made it (prompt, subject, seed, params), and its headline scores."""

    job_id: str
    spec_id: str
    prompt: str
    subject: str | None
    seed: int
    params: dict[str, Any]
    #: axis name → the numeric value it had for this job (``identity_step`` resolved to the Adapter's step)
    axes: dict[str, float]
    #: metric id → headline score (None: not scored, or the row is invalid; see ``problems``)
    scores: dict[str, float | None]
    problems: dict[str, str] = field(default_factory=dict)
    output_dir: str | None = None

    def score(self, metric: str) -> float | None:
        value = self.scores.get(metric)
        return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class CurvePoint:
    step: float
    mean: float
    count: int
    #: every score at this step (the seeds and other axes), for spread
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class StepCurve:
    """A metric's mean score at each value of one axis (averaged over seeds and the other axes) and its peak (the
    best mean, following the metric's direction; the smallest step on a tie)."""

    metric: str
    axis: str
    points: tuple[CurvePoint, ...]
    peak: CurvePoint | None


@dataclass(frozen=True)
class Board:
    """Outputs × metrics. Build it with :func:`build_board` (from a project) or directly from rows."""

    rows: tuple[BoardRow, ...]
    metrics: tuple[MetricColumn, ...]
    batch_id: str | None = None

    def metric(self, metric_id: str) -> MetricColumn:
        for m in self.metrics:
            if m.id == metric_id:
                return m
        known = ", ".join(m.id for m in self.metrics) or "none: nothing here is scored yet"
        raise InvalidRequest(f"No scores of metric {metric_id!r} in this board.",
                             hint=f"Metrics with scores: {known}. Score the batch first: vgen jobs score PROJECT "
                                  f"--batch BATCH --metric {metric_id}.", field="metric")

    def default_metric(self) -> str | None:
        """The first metric (the board sorts and charts by it unless told otherwise)."""
        return self.metrics[0].id if self.metrics else None

    def _better(self, metric: str) -> Any:
        hib = self.metric(metric).higher_is_better
        return (lambda a, b: a > b) if hib else (lambda a, b: a < b)

    def best_rows(self, metric: str, rows: Iterable[BoardRow] | None = None) -> list[BoardRow]:
        """The rows with the best score of ``metric`` (all of them on a tie); [] when none is scored."""
        better = self._better(metric)
        best: list[BoardRow] = []
        for row in self.rows if rows is None else rows:
            v = row.score(metric)
            if v is None:
                continue
            if not best or better(v, best[0].score(metric)):
                best = [row]
            elif v == best[0].score(metric):
                best.append(row)
        return best

    def best_per(self, key: str, metric: str) -> dict[str, list[BoardRow]]:
        """``key`` ``"prompt"`` or ``"subject"`` → {group: its best rows}; groups without a score are left out and
        rows without a subject are not grouped by subject."""
        if key not in ("prompt", "subject"):
            raise InvalidRequest(f"Cannot group the board by {key!r}.", hint="Use 'prompt' or 'subject'.",
                                 field="key")
        groups: dict[str, list[BoardRow]] = {}
        for row in self.rows:
            name = getattr(row, key)
            if name is not None:
                groups.setdefault(name, []).append(row)
        out = {}
        for name, rows in groups.items():
            best = self.best_rows(metric, rows)
            if best:
                out[name] = best
        return out

    def best_job_ids(self, metric: str) -> set[str]:
        """The rows best for their prompt or for their subject (what the board highlights)."""
        ids: set[str] = set()
        for key in ("prompt", "subject"):
            for rows in self.best_per(key, metric).values():
                ids.update(r.job_id for r in rows)
        return ids

    def seed_means(self, metric: str) -> dict[int, tuple[float, int]]:
        """seed → (mean score over its scored rows, how many)."""
        acc: dict[int, list[float]] = {}
        for row in self.rows:
            v = row.score(metric)
            if v is not None:
                acc.setdefault(row.seed, []).append(v)
        return {s: (sum(vs) / len(vs), len(vs)) for s, vs in acc.items()}

    def best_seed(self, metric: str) -> int | None:
        """The seed with the best mean score over the rest of the grid (the smallest seed on a tie); None when
        nothing is scored."""
        means = self.seed_means(metric)
        if not means:
            return None
        better = self._better(metric)
        best = None
        for seed in sorted(means):
            if best is None or better(means[seed][0], means[best][0]):
                best = seed
        return best

    def axes(self) -> list[str]:
        """Numeric params that vary across the rows: adapter steps (``*_step``) first, then the others by name."""
        values: dict[str, set[float]] = {}
        for row in self.rows:
            for name, v in row.axes.items():
                values.setdefault(name, set()).add(v)
        varying = [n for n, vs in values.items() if len(vs) > 1]
        return sorted(varying, key=lambda n: (not n.endswith("_step"), n))

    def step_axis(self) -> str | None:
        """The axis the chart shows by default: the first varying adapter step, else the first varying param."""
        axes = self.axes()
        return axes[0] if axes else None

    def step_curve(self, metric: str, axis: str | None = None) -> StepCurve:
        """Mean score of ``metric`` at each value of ``axis`` (default: :meth:`step_axis`), and its peak."""
        axis = axis or self.step_axis()
        if axis is None:
            raise InvalidRequest("Nothing varies across these outputs, so there is no step to chart.",
                                 hint="Queue a grid over a step, e.g. --param identity_step=200,400,600.",
                                 field="axis")
        acc: dict[float, list[float]] = {}
        for row in self.rows:
            v = row.score(metric)
            if axis in row.axes and v is not None:
                acc.setdefault(row.axes[axis], []).append(v)
        points = tuple(CurvePoint(step, sum(vs) / len(vs), len(vs), tuple(vs)) for step, vs in sorted(acc.items()))
        better = self._better(metric)
        peak = None
        for p in points:
            if peak is None or better(p.mean, peak.mean):
                peak = p
        return StepCurve(metric=metric, axis=axis, points=points, peak=peak)


def metric_directions(registry: "PluginRegistry | None") -> dict[str, tuple[str, bool]]:
    """metric id → (title, higher_is_better) of the installed metrics."""
    if registry is None:
        return {}
    return {mid: (spec.title, bool(spec.higher_is_better)) for mid, spec in registry.metrics.items()}


def build_board(project: "Project", batch_id: str | None = None, *, jobs: Sequence["JobRecord"] | None = None,
                registry: "PluginRegistry | None" = None, metrics: Sequence[str] | None = None) -> Board:
    """The board of a batch (id or id prefix) or of the given jobs: their succeeded generate jobs with an output,
    one column per metric that scored any of them, by id (or ``metrics``, in that order). Raises InvalidRequest(field=
    "batch") for a batch unknown here or without outputs."""
    if jobs is None:
        if batch_id is None:
            raise InvalidRequest("Name a batch or give jobs.", hint="vgen queue list shows the batches.",
                                 field="batch")
        batch_id = resolve_batch(project, batch_id)
        jobs = project.jobs(batch_id=batch_id)
    outputs = {o.job_id: o for o in project.outputs()}
    chosen = [j for j in jobs if j.kind == "generate" and j.id in outputs]
    if not chosen:
        raise InvalidRequest(f"Batch {batch_id or '(the given jobs)'} has no finished outputs to evaluate.",
                             hint="Run the queue first (vgen queue run PROJECT), then score the outputs.",
                             field="batch")
    subjects = {s.id: s.name for s in project.subjects()}
    adapter_steps = {a.id: a.step for a in project.adapters()}
    directions = metric_directions(registry)
    by_job: dict[str, list[Any]] = {}
    wanted = {j.id for j in chosen}
    for sc in project.scores():  # one query (the GUI re-reads the board on every poll)
        if sc.job_id in wanted:
            by_job.setdefault(sc.job_id, []).append(sc)
    rows = []
    seen_metrics: dict[str, None] = {}
    for job in chosen:
        scores: dict[str, float | None] = {}
        problems: dict[str, str] = {}
        for sc in by_job.get(job.id, []):
            seen_metrics.setdefault(sc.metric)
            scores[sc.metric] = sc.score
            if sc.problem:
                problems[sc.metric] = sc.problem
        out = outputs[job.id]
        rows.append(BoardRow(
            job_id=job.id, spec_id=job.spec_id, prompt=job.prompt or "", subject=_subject(job.inputs, subjects),
            seed=job.seed, params=dict(job.params), axes=_axes(job.params, out, adapter_steps),
            scores=scores, problems=problems, output_dir=str(out.dir)))
    ids = list(metrics) if metrics else sorted(seen_metrics)  # by id: the same columns however scores arrived
    columns = tuple(MetricColumn(mid, directions.get(mid, (mid, True))[0], directions.get(mid, (mid, True))[1],
                                 known=mid in directions or registry is None) for mid in ids)
    return Board(rows=tuple(rows), metrics=columns, batch_id=batch_id)


def resolve_batch(project: "Project", batch_id: str) -> str:
    """A batch id from an id or an unambiguous prefix of one; InvalidRequest(field="batch") otherwise."""
    ids = list(dict.fromkeys(j.batch_id for j in project.jobs()))
    found = [b for b in ids if b.startswith(batch_id.strip())] if batch_id.strip() else []
    if len(found) == 1:
        return found[0]
    from sdk.safe_text import printable

    what = "matches several batches" if found else "is no batch of this project"
    raise InvalidRequest(f"batch {printable(batch_id)!r} {what}.",
                         hint="vgen queue list shows each job's batch; give more of its id.", field="batch")


def _subject(inputs: Mapping[str, Any], names: Mapping[int, str]) -> str | None:
    value = inputs.get("subject")
    if isinstance(value, bool) or value is None:
        return None
    try:
        ident = int(value)
    except (TypeError, ValueError):
        return str(value)
    return names.get(ident, f"#{ident}")


def _axes(params: Mapping[str, Any], out: "OutputRecord", adapter_steps: Mapping[str, int]) -> dict[str, float]:
    """The job's numeric params; a ``<name>_step`` of 0 becomes the step of the Adapter the job used."""
    axes = {k: float(v) for k, v in params.items()
            if k not in _NOT_AXES and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    zero_steps = [k for k, v in axes.items() if k.endswith("_step") and v == 0]
    if zero_steps:
        used = _used_adapters(out)
        for k in zero_steps:
            base = k.removesuffix("_step")
            ident = used.get(f"{base}_adapter", used.get(base))
            if isinstance(ident, str) and ident in adapter_steps:
                axes[k] = float(adapter_steps[ident])
    return axes


def _used_adapters(out: "OutputRecord") -> dict[str, Any]:
    try:
        meta = json.loads(out.meta_path.read_text(encoding="utf-8"))
        used = meta["inputs"]["adapters"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return used if isinstance(used, dict) else {}
