"""The queue's running side, for the render-lock holder only (the RenderService): claim the next job, record
progress, publish a finished job's output, end a job (failed, cancelled, re-queued), and start-up recovery.

Mixed into :class:`sdk.Project` through :class:`sdk.store.queue.QueueMixin`. Every write is one ``BEGIN
IMMEDIATE`` transaction, so claiming is atomic across processes and no job is handed out twice.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import literal_column, select, update
from sqlalchemy.orm import Session

from sdk.errors import DiskFull, InvalidRequest, UnsafeProject
from sdk.records import JobRecord, JobStatus, OutputRecord
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.access import StoreAccess
from sdk.store.assets import IMPORT_PREFIX
from sdk.store.convert import job_problem, job_record, output_problem, output_record
from sdk.store.paths import check_id, clear_folder, is_id, real_dir, remove_entry

log = logging.getLogger(__name__)
_ROWID = literal_column("jobs.rowid")
INVALID_ROW_HINT = ("The row was damaged or crafted by hand, so it was never run and no path was built from it. "
                    "Remove it with `vgen queue clear`, and queue the job again if you need it.")
#: how many runnable queued jobs the model-affinity preference looks at before taking the first
AFFINITY_WINDOW = 64
_FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


class RunningMixin(StoreAccess):
    def claim_next_job(self, accept: Callable[[JobRecord], bool] | None = None,
                       prefer: str | None = None) -> JobRecord | None:
        """Atomically take the first valid QUEUED job whose inputs are ready: RUNNING, attempts + 1, started now.
        None if no queued job can run now.

        A QUEUED row that fails validation (see :attr:`~sdk.records.JobRecord.problem`) is never handed
        out: in the same transaction it is marked FAILED (by its rowid; no path is built from it) with
        the reason, and the next queued job is taken. A job that takes another job's output
        (``depends_on``) waits while that job is queued or running; it fails when that job failed (or is
        gone) and is cancelled when that job was cancelled.

        Scheduling hooks (a render farm): ``accept(job)`` False leaves that job QUEUED for another executor;
        ``prefer`` (weights, as stored with jobs) takes the first runnable job with those weights ahead of the
        others among the next :data:`AFFINITY_WINDOW` queued jobs, so a warm model cache pays.
        """
        fallback: m.Job | None = None
        scanned = 0
        with self._writing() as s:
            for rowid, row in self._queued_rows(s):
                problem = job_problem(row)
                if problem is not None:
                    log.warning("job row %s is invalid and was failed: %s", rowid, problem)
                    self._end_row(s, rowid, JobStatus.FAILED,
                                  f"This job's row in project.db is invalid ({problem}); it was not run.",
                                  INVALID_ROW_HINT)
                    continue
                waiting, ended = self._dependencies(s, row.depends_on)
                if ended is not None:
                    dep, status = ended
                    verb = {"CANCELLED": "was cancelled", None: "is no longer in the project"}.get(status, "failed")
                    self._end_row(s, rowid, JobStatus.CANCELLED if status == "CANCELLED" else JobStatus.FAILED,
                                  f"Job {dep}, which this job needs (it takes what that job makes), {verb}.",
                                  f"Retry job {dep}, then queue this one again.")
                    continue
                if waiting:
                    continue
                if accept is not None and not accept(job_record(row)):
                    continue
                if prefer is not None and row.weights != prefer:
                    if fallback is None:
                        fallback = row
                    scanned += 1
                    if scanned < AFFINITY_WINDOW:
                        continue
                    row = fallback
                return self._claim(row)
            return self._claim(fallback) if fallback is not None else None

    @staticmethod
    def _claim(row: m.Job) -> JobRecord:
        row.status = JobStatus.RUNNING.value
        row.attempts += 1
        row.started_at = time.time()
        row.finished_at = None
        row.cancel_requested = False
        row.progress_step = row.progress_total = 0
        row.error_message = row.error_hint = None  # a scheduler's "waiting because" note (note_waiting)
        return job_record(row)

    def note_waiting(self, job_id: str, reason: str, hint: str = "") -> None:
        """RenderService only: say why a QUEUED job is not run (no executor can take it); `vgen queue list` shows
        it. The job stays QUEUED; the note is cleared when the job is claimed or retried."""
        with self._writing() as s:
            s.execute(update(m.Job).where(m.Job.id == job_id, m.Job.status == JobStatus.QUEUED.value)
                      .values(error_message=str(reason), error_hint=hint or None)
                      .execution_options(synchronize_session=False))

    @staticmethod
    def _queued_rows(s: Session, page: int = 64) -> Any:
        """QUEUED rows in queue order, a page at a time (rows ended while iterating don't shift the pages)."""
        after: tuple[int, int] | None = None
        while True:
            query = select(_ROWID, m.Job).where(m.Job.status == JobStatus.QUEUED.value)
            if after is not None:
                query = query.where((m.Job.position > after[0]) | ((m.Job.position == after[0]) & (_ROWID > after[1])))
            rows = s.execute(query.order_by(m.Job.position, _ROWID).limit(page)).all()
            if not rows:
                return
            for rowid, row in rows:
                after = (row.position, rowid)
                yield rowid, row

    @staticmethod
    def _dependencies(s: Session, deps: Sequence[str]) -> tuple[bool, tuple[str, str | None] | None]:
        """(still waiting?, (job, status) of a dependency that ended without an output, or None)."""
        waiting = False
        for dep in deps or ():
            status = s.scalar(select(m.Job.status).where(m.Job.id == dep))
            if status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value):
                waiting = True
            elif status != JobStatus.SUCCEEDED.value:
                return waiting, (dep, status)
        return waiting, None

    @staticmethod
    def _end_row(s: Session, rowid: int, status: JobStatus, message: str, hint: str) -> None:
        s.execute(update(m.Job).where(_ROWID == rowid).values(
            status=status.value, finished_at=time.time(), error_message=message, error_hint=hint,
            error_traceback=None).execution_options(synchronize_session=False))

    def waiting_for(self, job: JobRecord) -> list[str]:
        """The ids of the jobs a QUEUED ``job`` still waits for (their outputs are its inputs)."""
        if not job.depends_on or job.status is not JobStatus.QUEUED:
            return []
        with self._reading() as s:
            rows = s.execute(select(m.Job.id, m.Job.status).where(m.Job.id.in_(list(job.depends_on)))).all()
        return [jid for jid, status in rows if status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value)]

    def set_progress(self, job_id: str, step: int, total: int) -> None:
        """Record a running job's progress (ignored once the job left RUNNING)."""
        with self._writing() as s:
            s.execute(update(m.Job).where(m.Job.id == job_id, m.Job.status == JobStatus.RUNNING.value)
                      .values(progress_step=int(step), progress_total=int(total)))

    def _running_row(self, s: Session, job_id: str) -> m.Job:
        row = s.get(m.Job, job_id)
        if row is None:
            raise InvalidRequest(f"No job {job_id} in this project.", hint="", field="job")
        return row

    def finish_job(self, job_id: str, staging_dir: Path, artifacts: list[dict[str, Any]] | None = None,
                   record: Any = None) -> OutputRecord:
        """Publish a finished job: rename ``staging_dir`` to ``outputs/<job_id>`` and, in the same
        transaction, record the output, register ``artifacts`` as adapters and mark the job SUCCEEDED.

        Args: staging_dir: holds video.mp4, meta.json and optionally thumb.png and frames/;
        artifacts: ``[{"name", "path" (inside staging_dir), "kind", "step", "meta"}]``, optionally
        ``"subject_id"``/``"motion_id"`` (default: the job's ``inputs["subject"]``/``["motion"]``).
        ``record(session, job_row, out_dir)``: more rows to write in the same transaction (a condition).
        Raises InvalidRequest if the job is not RUNNING or the staging folder is missing. If anything
        fails, the files are moved back to staging and the database is unchanged.
        """
        job_id = check_id(job_id, "job")
        staging_dir = Path(staging_dir)
        own = real_dir(self.path, ".staging", create=False) / job_id
        if staging_dir.is_symlink() or os.path.realpath(staging_dir) != os.path.realpath(own):
            raise UnsafeProject(f"Job {job_id}: {staging_dir} is not its staging folder {own}; nothing was published.",
                                hint="Outputs are published only from the job's own folder in .staging/.")
        out_rel = f"outputs/{job_id}"
        out_dir = self.path / out_rel
        placed: list[tuple[Path, Path | None]] = []
        moved = False
        try:
            with self._undo_adapters(placed), self._writing() as s:
                row = self._running_row(s, job_id)
                if row.status != JobStatus.RUNNING.value:
                    raise InvalidRequest(f"Job {job_id} is {row.status}, not RUNNING; it cannot be finished.",
                                         field="job")
                if not staging_dir.is_dir():
                    raise InvalidRequest(f"Job {job_id} has no staging folder {staging_dir}.", field="job")
                outputs = real_dir(self.path, "outputs")
                # an entry left by a crash between rename and commit was never recorded; a link is removed itself
                remove_entry(outputs, job_id)
                os.replace(staging_dir, out_dir)
                moved = True
                for art in artifacts or []:
                    rel = _inside(Path(art["path"]), staging_dir)
                    self._insert_adapter(  # type: ignore[attr-defined]
                        s, placed, str(art.get("name") or rel.name), str(art.get("kind", "")),
                        out_dir / rel, move=True, job_id=job_id, step=int(art.get("step", 0)),
                        subject_id=art.get("subject_id", _ref_id(s, m.Subject, row.inputs.get("subject"))),
                        motion_id=art.get("motion_id", _ref_id(s, m.Motion, row.inputs.get("motion"))),
                        meta=art.get("meta"))
                now = time.time()
                out = m.Output(
                    job_id=job_id, dir=out_rel, video=f"{out_rel}/video.mp4", meta=f"{out_rel}/meta.json",
                    thumb=f"{out_rel}/thumb.png" if (out_dir / "thumb.png").is_file() else None,
                    frames=f"{out_rel}/frames" if (out_dir / "frames").is_dir() else None,
                    created_at=now)
                s.add(out)
                if record is not None:
                    record(s, row, out_dir)
                row.status = JobStatus.SUCCEEDED.value
                row.finished_at = now
                row.progress_step = max(row.progress_step, row.progress_total)
                s.flush()
                record = output_record(self.path, out, self.real_path)
                if record is None:
                    raise UnsafeProject(f"Job {job_id}: {output_problem(self.path, out, self.real_path)}.",
                                        hint="Remove links from the project folder.")
        except BaseException:
            # adapters were moved back into out_dir by _undo_adapters; now the folder goes back to staging
            if moved and os.path.isdir(out_dir) and not os.path.lexists(staging_dir):
                os.replace(out_dir, staging_dir)
            raise
        return record

    def _end_job(self, job_id: str, status: JobStatus, **fields: Any) -> None:
        """Record a job's end. Its staging folder goes too — only when ``job_id`` is a job id (a crafted id
        never becomes a path); on a full disk it goes first, which frees the room the update needs."""
        def update_row() -> None:
            with self._writing() as s:
                row = self._running_row(s, job_id)
                if row.status in _FINISHED:
                    raise InvalidRequest(f"Job {printable(job_id)} has already finished ({row.status}).",
                                         field="job")
                row.status = status.value
                row.finished_at = time.time()
                for k, v in fields.items():
                    setattr(row, k, v)

        try:
            update_row()
        except DiskFull:
            self._drop_staging(job_id)
            update_row()  # once more with the partial files gone; DiskFull again if the disk is still full
        self._drop_staging(job_id)

    def _drop_staging(self, job_id: str) -> None:
        if is_id(job_id):
            with self._writing_files():
                remove_entry(real_dir(self.path, ".staging", create=False), job_id)

    def fail_job(self, job_id: str, message: str, hint: str = "", traceback: str = "",
                 exit_code: int | None = None) -> None:
        """Mark a job FAILED with the user message, hint, traceback and worker exit code; drop its staging.

        Works for a row whose id is malformed too (it is found by its exact id; no path is built from it).
        """
        self._end_job(job_id, JobStatus.FAILED, error_message=message, error_hint=hint or None,
                      error_traceback=traceback or None, exit_code=exit_code)

    def mark_cancelled(self, job_id: str) -> None:
        """Mark a job CANCELLED (the service stopped it); drop its staging."""
        self._end_job(job_id, JobStatus.CANCELLED)

    def requeue_job(self, job_id: str, options: dict[str, Any], message: str) -> None:
        """RenderService only: put a RUNNING job back in the queue at its place, with new run ``options`` (an
        out-of-memory retry in a lighter mode), its staging dropped and ``message`` in its log."""
        with self._writing() as s:
            row = self._running_row(s, job_id)
            if row.status != JobStatus.RUNNING.value:
                raise InvalidRequest(f"Job {printable(job_id)} is {row.status}, not RUNNING.", field="job")
            row.status = JobStatus.QUEUED.value
            row.options = dict(options)
            row.started_at = None
            row.progress_step = row.progress_total = 0
            s.add(m.JobLog(job_id=row.id, ts=time.time(), level="WARNING", message=str(message)))
        self._drop_staging(job_id)

    def requeue_running(self) -> int:
        """Start-up recovery (render-lock holder only): jobs left RUNNING by a dead service go back to
        QUEUED at their old place (the attempt stays counted) — or to CANCELLED if a cancel had been
        requested — and ``.staging/`` is emptied (never following a symlink; UnsafeProject if ``.staging``
        itself is one). An invalid row put back in the queue is failed by :meth:`claim_next_job`.
        Returns how many jobs were requeued."""
        with self._writing_files():
            staging = real_dir(self.path, ".staging")  # refuse a linked .staging before changing anything
        with self._writing() as s:
            s.execute(update(m.Job).where(m.Job.status == JobStatus.RUNNING.value,
                                            m.Job.cancel_requested.is_(True))
                      .values(status=JobStatus.CANCELLED.value, finished_at=time.time()))
            result = s.execute(update(m.Job).where(m.Job.status == JobStatus.RUNNING.value)
                               .values(status=JobStatus.QUEUED.value, started_at=None,
                                       progress_step=0, progress_total=0))
            count = int(result.rowcount or 0)
        with self._writing_files():
            # imports in flight (".import-*") belong to other processes
            clear_folder(staging, keep=lambda name: name.startswith(IMPORT_PREFIX))
        return count


def _inside(path: Path, staging_dir: Path) -> Path:
    """An artifact path relative to the staging folder (it may be given absolute or relative)."""
    if not path.is_absolute():
        return path
    for base in (staging_dir, staging_dir.resolve()):
        for p in (path, path.resolve()):
            if p.is_relative_to(base):
                return p.relative_to(base)
    raise InvalidRequest(f"Artifact {path} is outside the job's staging folder {staging_dir}.",
                         hint="Trainers save artifacts with ctx.save_artifact().", field="artifacts")


def _ref_id(s: Session, model: Any, ref: Any) -> int | None:
    """A job input's subject/motion reference (id or name) as an id; None if absent or unknown."""
    if ref is None:
        return None
    if isinstance(ref, int) or str(ref).isdigit():
        return int(ref) if s.get(model, int(ref)) is not None else None
    return s.scalar(select(model.id).where(model.name == str(ref)))
