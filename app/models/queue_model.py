"""The render queue as a table: one row per job, in queue order, refreshed in place."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Mapping

from PySide6.QtCore import QMimeData, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush

from app import look
from app.models.base import Index, RecordTableModel

#: 0-100 for the progress column
ProgressRole = Qt.ItemDataRole.UserRole + 10
#: the job's status value ("QUEUED", …)
StatusRole = Qt.ItemDataRole.UserRole + 11
#: ids of the jobs a queued job still waits for (it takes their outputs); [] when it waits for none
WaitingRole = Qt.ItemDataRole.UserRole + 12

JOB_IDS_MIME = "application/x-vgen-job-ids"
STATUS_TEXT = {"QUEUED": "Queued", "RUNNING": "Running", "SUCCEEDED": "Done", "FAILED": "Failed",
               "CANCELLED": "Cancelled"}
#: the status filter tabs: key -> (label, statuses shown); "Failed" holds what a Retry applies to
STATUS_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "all": ("All", ()), "queued": ("Queued", ("QUEUED",)), "running": ("Running", ("RUNNING",)),
    "failed": ("Failed", ("FAILED", "CANCELLED")), "done": ("Done", ("SUCCEEDED",))}
OPEN_STATUSES = ("QUEUED", "RUNNING")
#: the tone (:mod:`app.look`) of each status' text: one colour per theme
STATUS_TONE = {"RUNNING": "running", "SUCCEEDED": "done", "FAILED": "failed", "CANCELLED": "cancelled",
               "WAITING": "waiting"}


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def status_value(job: Any) -> str:
    return getattr(job.status, "value", str(job.status))


class JobTableModel(RecordTableModel):
    """Jobs (``sdk.records.JobRecord``) with live progress from the worker's events."""

    columns = ("Status", "Method", "Prompt", "Seed", "Progress", "ETA", "Elapsed")
    STATUS, METHOD, PROMPT, SEED, PROGRESS, ETA, ELAPSED = range(7)

    #: a queued job was dragged to a new place: job id, places to move (negative: earlier)
    move_requested = Signal(str, int)

    def __init__(self, parent: Any = None, method_of: Callable[[str], str] | None = None) -> None:
        super().__init__(parent)
        self._method_of = method_of or (lambda spec_id: spec_id.split(".")[0])
        #: job id -> (step, total, eta_s, monotonic time it was reported)
        self._live: dict[str, tuple[int, int, float | None, float]] = {}
        #: job id -> status value, to tell which jobs a queued job still waits for (no SQL)
        self._status: dict[str, str] = {}
        #: every record last given (hidden ones included) and the ids hidden while an undo may bring them back
        self._all: list[Any] = []
        self._hidden: frozenset[str] = frozenset()
        #: ("subject" | "motion", id) -> name, for the rows of jobs that take them
        self._names: Mapping[tuple[str, Any], str] = {}
        self._spec_of: Callable[[str], Any] = lambda spec_id: None
        #: training job id -> (step, steps) of a composite training (step 1 of 2 …)
        self._steps: dict[str, tuple[int, int]] = {}

    def set_method_lookup(self, method_of: Callable[[str], str]) -> None:
        self._method_of = method_of
        if self._rows:
            self.dataChanged.emit(self.index(0, self.METHOD), self.index(len(self._rows) - 1, self.METHOD))

    # -- live updates (no SQL) ------------------------------------------------------------
    def update_progress(self, job_id: str, step: int, total: int, eta_s: float | None) -> None:
        self._live[job_id] = (step, total, eta_s, time.monotonic())
        row = self.row_of(job_id)
        if row is not None:
            self.refresh_row(row, self.PROGRESS, self.ETA)

    def tick(self) -> None:
        """Repaint the elapsed time of running jobs (called once a second)."""
        for row, job in enumerate(self._rows):
            if status_value(job) == "RUNNING":
                self.refresh_row(row, self.ETA, self.ELAPSED)

    def set_registry(self, registry: Any) -> None:
        """The plugin registry: rows of jobs that have no prompt say what they work on through their spec's input
        fields (and an extraction's or score's title)."""
        tables = [getattr(registry, t, {}) for t in ("generators", "trainers", "conditions", "metrics")]
        self._spec_of = lambda spec_id: next((t[spec_id] for t in tables if spec_id in t), None)
        self._refresh_column(self.PROMPT)

    def set_input_names(self, names: Mapping[tuple[str, Any], str]) -> None:
        """Subject and motion names by ``(kind, id)``: training rows show "Rex · step 1/2 · 1000 steps"."""
        self._names = dict(names)
        self._refresh_column(self.PROMPT)

    def set_hidden(self, ids: Iterable[str]) -> None:
        """Hide these jobs while they are finished (a clear that can still be undone); a hidden job that is queued
        or running again (retried elsewhere) shows."""
        self._hidden = frozenset(ids)
        self.set_records(self._all)

    def _refresh_column(self, column: int) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, column), self.index(len(self._rows) - 1, column))

    def is_hidden(self, job: Any) -> bool:
        return job.id in self._hidden and status_value(job) not in OPEN_STATUSES

    def set_records(self, new: Any) -> None:
        self._all = list(new)
        new = [j for j in self._all if not self.is_hidden(j)]
        before = {j.id: self.waiting_for(j) for j in self._rows if j.depends_on}
        self._steps = training_steps(self._all)  # step 2/2 stays step 2/2 while step 1 is hidden
        super().set_records(new)
        self._status = {j.id: status_value(j) for j in self._rows}
        running = {k for k, v in self._status.items() if v == "RUNNING"}
        self._live = {k: v for k, v in self._live.items() if k in running}
        for row, j in enumerate(self._rows):  # a job stops waiting when another row (its source) changed
            if j.depends_on and self.waiting_for(j) != before.get(j.id, []):
                self.refresh_row(row)

    def waiting_for(self, job: Any) -> list[str]:
        """The jobs a QUEUED ``job`` still waits for: those of its ``depends_on`` that are queued or running (the
        rule of ``Project.waiting_for``, read from the rows this model holds, which are all the project's jobs)."""
        if not job.depends_on or status_value(job) != "QUEUED":
            return []
        return [d for d in job.depends_on if self._status.get(d) in ("QUEUED", "RUNNING")]

    def status_counts(self) -> dict[str, int]:
        """How many (shown) jobs each status filter tab holds."""
        counts = {key: 0 for key in STATUS_FILTERS}
        for job in self._rows:
            status = status_value(job)
            counts["all"] += 1
            for key, (_, statuses) in STATUS_FILTERS.items():
                if status in statuses:
                    counts[key] += 1
        return counts

    def describe(self, job: Any) -> str:
        """What a job makes or works on, in a few words: a generation's prompt; a training's subject or motion, its
        step of a composite training and its step count ("Rex · step 1/2 · 1000 steps"); an extraction's or a
        score's title and inputs ("Canny edges · Jumping jacks video")."""
        if job.kind == "generate":
            return job.prompt or "—"
        spec = self._spec_of(job.spec_id)
        parts = [] if job.kind == "train" or spec is None else [str(spec.title)]
        parts += [self._input_text(spec, name, value) for name, value in (job.inputs or {}).items()
                  if value not in (None, "", [], ())]
        step, steps = self._steps.get(job.id, (1, 1))
        if steps > 1:
            parts.append(f"step {step}/{steps}")
        train_steps = (job.params or {}).get("max_train_steps") if job.kind == "train" else None
        if train_steps:
            parts.append(f"{train_steps} steps")
        if job.prompt:
            parts.append(f"“{job.prompt}”")
        return " · ".join(p for p in parts if p) or job.spec_id

    def _input_text(self, spec: Any, name: str, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(self._input_text(spec, name, v) for v in value)
        field = None
        if spec is not None:
            field = next((f for f in spec.fields if f.name == name), None)
        kind = getattr(field, "kind", name)
        if isinstance(value, (int, str)):
            named = self._names.get((kind, value)) or self._names.get((kind, _as_int(value)))
            if named:
                return named
        elif isinstance(value, dict) and "motion" in value:  # a motion's video
            motion = self._names.get(("motion", _as_int(value["motion"])))
            if motion:
                return f"{motion} video"
        if field is not None:
            return field.describe(value)
        return f"{name} {str(value)[:12]}"

    def progress_of(self, job: Any) -> tuple[int, int]:
        live = self._live.get(job.id)
        if live is not None and status_value(job) == "RUNNING":
            return live[0], live[1]
        return job.progress_step, job.progress_total

    # -- cells ----------------------------------------------------------------------------
    def cell(self, job: Any, row: int, column: int, role: int) -> Any:
        status = status_value(job)
        if role == StatusRole:
            return status
        if role == WaitingRole:
            return self.waiting_for(job)
        if role == ProgressRole:
            step, total = self.progress_of(job)
            if status == "SUCCEEDED":
                return 100
            return int(100 * step / total) if total else 0
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, status, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if status == "FAILED":
                return f"{job.error_message or 'Failed'}\n{job.error_hint or ''}".strip()
            waiting = self.waiting_for(job)
            if column == self.PROMPT:
                return job.prompt or self.describe(job)
            if waiting:
                return (f"Job {job.id} waits for job {', '.join(waiting)}: it takes "
                        f"{'their outputs' if len(waiting) > 1 else 'its output'} and starts once "
                        f"{'they are' if len(waiting) > 1 else 'it is'} rendered.")
            return f"Job {job.id} ({job.spec_id})"
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            key = "WAITING" if self.waiting_for(job) else status
            return QBrush(look.tone_color(STATUS_TONE[key])) if key in STATUS_TONE else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.SEED, self.ETA, self.ELAPSED):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, job: Any, status: str, column: int) -> Any:
        if column == self.STATUS:
            if status == "RUNNING" and job.cancel_requested:
                return "Cancelling…"
            if self.waiting_for(job):
                return "Waiting"
            return STATUS_TEXT.get(status, status)
        if column == self.METHOD:
            return self._method_of(job.spec_id)
        if column == self.PROMPT:
            return self.describe(job)
        if column == self.SEED:
            return str(job.seed)
        if column == self.PROGRESS:
            step, total = self.progress_of(job)
            return f"{step}/{total}" if total else ""
        if column == self.ETA:
            live = self._live.get(job.id)
            if status != "RUNNING" or live is None or live[2] is None:
                return ""
            return format_seconds(live[2] - (time.monotonic() - live[3]))
        if column == self.ELAPSED:
            if job.started_at is None:
                return ""
            end = job.finished_at if job.finished_at is not None else (time.time() if status == "RUNNING" else None)
            return format_seconds(end - job.started_at) if end is not None else ""
        return None

    # -- drag to reorder ------------------------------------------------------------------
    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDropEnabled
        if status_value(self._rows[index.row()]) == "QUEUED":
            flags |= Qt.ItemFlag.ItemIsDragEnabled
        return flags

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [JOB_IDS_MIME]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        data = QMimeData()
        ids = list(dict.fromkeys(self._rows[i.row()].id for i in indexes if i.isValid()))
        data.setData(JOB_IDS_MIME, "\n".join(ids).encode())
        return data

    def canDropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        return data.hasFormat(JOB_IDS_MIME)

    def dropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        if not data.hasFormat(JOB_IDS_MIME):
            return False
        ids = bytes(data.data(JOB_IDS_MIME).data()).decode().split()
        target = parent.row() if parent.isValid() else (row if row >= 0 else len(self._rows))
        if len(ids) == 1:
            delta = self.queued_delta(ids[0], target)
            if delta:
                self.move_requested.emit(ids[0], delta)
        return False  # the rows move when the queue is re-read, never by the view

    def queued_delta(self, job_id: str, target_row: int) -> int:
        """How many places among queued jobs moving ``job_id`` before row ``target_row`` is."""
        queued = [j.id for j in self._rows if status_value(j) == "QUEUED"]
        if job_id not in queued:
            return 0
        before = sum(1 for j in self._rows[:target_row] if status_value(j) == "QUEUED" and j.id != job_id)
        return before - queued.index(job_id)


class JobFilterProxy(QSortFilterProxyModel):
    """Filters jobs as you type (prompt, method, status, seed, id); keeps queue order."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._statuses: tuple[str, ...] = ()
        self.status_filter = "all"

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        job = model.record(source_row)
        if self._statuses and status_value(job) not in self._statuses:
            return False
        text = self._text
        if not text:
            return True
        hay = " ".join([job.id, job.spec_id, job.prompt or "", str(job.seed), status_value(job),
                        str(model.index(source_row, JobTableModel.PROMPT).data() or ""),
                        str(model.index(source_row, JobTableModel.STATUS).data() or ""),
                        str(model.index(source_row, JobTableModel.METHOD).data() or "")]).lower()
        return all(word in hay for word in text.lower().split())

    def set_filter_text(self, text: str) -> None:
        self._text = text.strip()
        self.invalidateFilter()

    def set_status_filter(self, key: str) -> None:
        """Show only the jobs of one tab of :data:`STATUS_FILTERS` ("all", "queued", "running", "failed", "done")."""
        self.status_filter = key
        self._statuses = STATUS_FILTERS[key][1]
        self.invalidateFilter()


def _as_int(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def training_steps(jobs: list[Any]) -> dict[str, tuple[int, int]]:
    """Job id -> (step, steps) for the training jobs of a composite training: the jobs of one batch with the same
    seed and inputs, ordered by how many of them each waits for (step 2 depends on step 1), then by queue place."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for job in jobs:
        if job.kind == "train":
            key = (job.batch_id, job.seed, json.dumps(job.inputs, sort_keys=True, default=str))
            groups.setdefault(key, []).append(job)
    out: dict[str, tuple[int, int]] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        ids = {j.id for j in group}
        by_id = {j.id: j for j in group}
        depth: dict[str, int] = {}

        def depth_of(job_id: str, seen: frozenset[str] = frozenset()) -> int:
            if job_id not in depth:
                deps = [d for d in by_id[job_id].depends_on if d in ids and d not in seen]
                depth[job_id] = 1 + max((depth_of(d, seen | {job_id}) for d in deps), default=0)
            return depth[job_id]

        ordered = sorted(group, key=lambda j: (depth_of(j.id), j.position))
        for i, job in enumerate(ordered, 1):
            out[job.id] = (i, len(ordered))
    return out
