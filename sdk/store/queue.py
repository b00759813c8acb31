"""The render queue: jobs, batches, outputs and job logs.

Mixed into :class:`sdk.Project`. Anyone may add, reorder, cancel or retry jobs; the methods
marked "RenderService only" write running-job state and are called by the render-lock holder.
Every write is one ``BEGIN IMMEDIATE`` transaction, so "append at the end" and "claim the next
job" are atomic across processes. Whole-queue operations (cancel all, clear queued, their undo) live in
:mod:`sdk.store.queue_bulk`.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, literal_column, select, update
from sqlalchemy.orm import Session

from sdk.errors import DiskFull, InvalidRequest, UnsafeProject
from sdk.records import BatchRecord, JobRecord, JobStatus, NewJob, OutputRecord
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.assets import IMPORT_PREFIX
from sdk.store.catalog import by_prefix, new_id
from sdk.store.convert import job_problem, job_record, output_problem, output_record
from sdk.store.paths import check_id, clear_folder, is_id, real_dir, remove_entry
from sdk.store.queue_bulk import BulkQueueMixin

log = logging.getLogger(__name__)
_ROWID = literal_column("jobs.rowid")
INVALID_ROW_HINT = ("The row was damaged or crafted by hand, so it was never run and no path was built from it. "
                    "Remove it with `vgen queue clear`, and queue the job again if you need it.")

_FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _next_position(s: Session) -> int:
    return (s.scalar(select(func.max(m.Job.position))) or 0) + 1


class QueueMixin(BulkQueueMixin):
    # ------------------------------------------------------------------ everybody
    def add_jobs(self, jobs: Sequence[NewJob]) -> BatchRecord:
        """Queue validated jobs as one batch, at the end of the queue, in one transaction.

        A ``depends_on`` entry ``"@N"`` names the N-th job of this same batch (its id does not exist yet).
        Raises InvalidRequest(field="jobs") for an empty list, an unknown job kind or a bad ``@N``.
        """
        jobs = list(jobs)
        if not jobs:
            raise InvalidRequest("No jobs to queue.", hint="Give at least one job.", field="jobs")
        for job in jobs:
            if job.kind not in m.JOB_KINDS:
                raise InvalidRequest(f"Unknown job kind {job.kind!r}.", hint="Use one of " + ", ".join(m.JOB_KINDS)
                                     + ".", field="kind")
        now = time.time()
        ids = [new_id() for _ in jobs]

        def dep(ref: str, i: int) -> str:
            if not ref.startswith("@"):
                return ref
            n = int(ref[1:]) if ref[1:].isdigit() else -1
            if not 0 <= n < i:
                raise InvalidRequest(f"Job {i} of the batch depends on {ref!r}, which is not an earlier job of it.",
                                     field="jobs")
            return ids[n]

        with self._writing() as s:
            batch = m.Batch(id=new_id(), created_at=now)
            s.add(batch)
            pos = _next_position(s)
            for i, job in enumerate(jobs):
                row = m.Job(id=ids[i], batch_id=batch.id, kind=job.kind, spec_id=job.spec_id,
                            spec_version=job.spec_version, params=dict(job.params), options=dict(job.options),
                            depends_on=[dep(d, i) for d in job.depends_on],
                            seed=int(job.seed),
                            prompt=job.prompt, inputs=dict(job.inputs), weights=job.weights,
                            status=JobStatus.QUEUED.value, position=pos + i, attempts=0, created_at=now,
                            progress_step=0, progress_total=0, cancel_requested=False)
                s.add(row)
            return BatchRecord(id=batch.id, created_at=now, job_ids=tuple(ids))

    def jobs(self, status: JobStatus | str | Sequence[JobStatus | str] | None = None,
             batch_id: str | None = None) -> list[JobRecord]:
        """Jobs in queue order, optionally only those with the given status(es) and/or batch.

        A row that fails validation is listed with ``problem`` set (see :class:`~sdk.records.JobRecord`).
        """
        q = select(m.Job).order_by(m.Job.position)
        if status is not None:
            wanted = [status] if isinstance(status, (str, JobStatus)) else list(status)
            q = q.where(m.Job.status.in_([JobStatus(x).value for x in wanted]))
        if batch_id is not None:
            q = q.where(m.Job.batch_id == batch_id)
        with self._reading() as s:
            return [job_record(j) for j in s.scalars(q)]

    def job(self, id_or_prefix: str) -> JobRecord:
        """A job by id or id prefix; InvalidRequest(field="job") if unknown or ambiguous."""
        with self._reading() as s:
            return job_record(self._job_row(s, id_or_prefix))

    def _job_row(self, s: Session, id_or_prefix: str) -> m.Job:
        return by_prefix(s, m.Job, m.Job.id, id_or_prefix, "job")

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: a QUEUED one becomes CANCELLED now, and so do the queued jobs that wait for it
        (``depends_on``); a RUNNING one gets ``cancel_requested`` (the RenderService stops it; its dependents
        are cancelled when the queue reaches them). Raises InvalidRequest(field="job") for a finished job."""
        with self._writing() as s:
            row = self._job_row(s, job_id)
            if row.status == JobStatus.QUEUED.value:
                row.status = JobStatus.CANCELLED.value
                row.finished_at = time.time()
                self._cancel_dependents(s, row.id)
            elif row.status == JobStatus.RUNNING.value:
                row.cancel_requested = True
            else:
                raise InvalidRequest(f"Job {row.id} has already finished ({row.status}).",
                                     hint="Only queued or running jobs can be cancelled.", field="job")
            return job_record(row)

    def retry(self, job_id: str) -> JobRecord:
        """Queue a FAILED or CANCELLED job again at the end of the queue, its error cleared.

        Raises InvalidRequest(field="job") for jobs in any other state.
        """
        with self._writing() as s:
            row = self._job_row(s, job_id)
            problem = job_problem(row)
            if problem is not None:
                raise InvalidRequest(f"Job {printable(row.id)} cannot be retried: its row is invalid ({problem}).",
                                     hint=INVALID_ROW_HINT, field="job")
            if row.status not in (JobStatus.FAILED.value, JobStatus.CANCELLED.value):
                raise InvalidRequest(f"Job {row.id} is {row.status}; only failed or cancelled jobs can be "
                                     "retried.", hint="Queue a copy of it instead.", field="job")
            row.position = _next_position(s)
            row.status = JobStatus.QUEUED.value
            row.cancel_requested = False
            row.started_at = row.finished_at = None
            row.progress_step = row.progress_total = 0
            row.error_message = row.error_hint = row.error_traceback = None
            row.exit_code = None
            return job_record(row)

    def move(self, job_id: str, delta: int) -> None:
        """Move a QUEUED job ``delta`` places among the queued jobs (negative: earlier); clamped at the ends.

        Raises InvalidRequest(field="job") if the job is not queued.
        """
        with self._writing() as s:
            row = self._job_row(s, job_id)
            if row.status != JobStatus.QUEUED.value:
                raise InvalidRequest(f"Job {row.id} is {row.status}; only queued jobs can be moved.",
                                     hint="Retry it to queue it again.", field="job")
            queued = list(s.scalars(select(m.Job).where(m.Job.status == JobStatus.QUEUED.value)
                                    .order_by(m.Job.position)))
            positions = [j.position for j in queued]
            i = queued.index(row)
            j = max(0, min(len(queued) - 1, i + int(delta)))
            queued.insert(j, queued.pop(i))
            # hand the same set of positions out in the new order: jobs not queued keep theirs
            for job, pos in zip(queued, positions):
                job.position = pos

    def clear_finished(self) -> int:
        """Delete FAILED and CANCELLED jobs (with their logs), and rows with an unknown status; return how many.

        SUCCEEDED jobs stay: each owns an output (its video and full spec), which is the work.
        Adapters trained by a deleted job are kept (their job link becomes empty).
        """
        with self._writing() as s:
            has_output = select(m.Output.job_id)
            # rows whose status is no known status can never run: they go too (they are listed as invalid)
            result = s.execute(delete(m.Job).where(
                m.Job.status.in_(_FINISHED) | m.Job.status.not_in(m.JOB_STATUSES), m.Job.id.not_in(has_output)))
            s.execute(delete(m.Batch).where(m.Batch.id.not_in(select(m.Job.batch_id))))
            return int(result.rowcount or 0)

    def add_log(self, job_id: str, level: str, message: str) -> None:
        """Append a line to a job's log."""
        with self._writing() as s:
            s.add(m.JobLog(job_id=job_id, ts=time.time(), level=str(level).upper(), message=str(message)))

    def logs(self, job_id: str) -> list[dict[str, Any]]:
        """A job's log lines in order: ``{"ts", "level", "message"}``."""
        with self._reading() as s:
            rows = s.scalars(select(m.JobLog).where(m.JobLog.job_id == job_id).order_by(m.JobLog.ts, m.JobLog.id))
            return [{"ts": r.ts, "level": r.level, "message": r.message} for r in rows]

    def outputs(self, job_id: str | None = None) -> list[OutputRecord]:
        """Outputs, newest last; optionally only the given job's. Deleted outputs (in the trash, see
        :meth:`delete_outputs`) are left out. Rows whose paths are invalid or lead out of the project are skipped
        (and logged); :meth:`output` names them."""
        q = select(m.Output).where(m.Output.deleted_at.is_(None)).order_by(m.Output.id)
        if job_id is not None:
            q = q.where(m.Output.job_id == job_id)
        with self._reading() as s:
            found = [(o.id, output_record(self.path, o, self.real_path)) for o in s.scalars(q)]
        for row_id, record in found:
            if record is None:
                log.warning("output row %s in %s is invalid; it is not listed", row_id, self.db_path)
        return [r for _, r in found if r is not None]

    def output(self, job_id: str) -> OutputRecord:
        """The output of a job (id or prefix); InvalidRequest(field="job") if it has none, UnsafeProject if
        its row is invalid (a path leading out of the project, a malformed id)."""
        with self._reading() as s:
            row = self._job_row(s, job_id)
            out = s.scalar(select(m.Output).where(m.Output.job_id == row.id))
            if out is None:
                raise InvalidRequest(f"Job {row.id} has no output ({row.status}).",
                                     hint="Outputs exist for succeeded jobs only.", field="job")
            if out.deleted_at is not None:
                raise InvalidRequest(f"The output of job {row.id} was deleted.",
                                     hint="Undo the delete in the gallery while it is offered, or render the job "
                                          "again.", field="job")
            record = output_record(self.path, out, self.real_path)
            if record is None:
                raise UnsafeProject(f"The output of job {printable(row.id)} cannot be used: its row is invalid "
                                    f"({output_problem(self.path, out, self.real_path)}).", hint=INVALID_ROW_HINT)
            return record

    def staging_dir(self, job_id: str) -> Path:
        """``<project>/.staging/<job_id>``, created if missing: the only place a worker writes.

        Raises UnsafeProject for a ``job_id`` that is not a job id (no path is built from it) or when
        ``.staging`` is a symlink; an entry at that name that is not a real folder (a symlink, a file) is
        removed itself (never what it points to) and replaced by an empty folder.
        """
        job_id = check_id(job_id, "job")
        with self._writing_files():
            staging = real_dir(self.path, ".staging")
            d = staging / job_id
            if os.path.lexists(d) and (d.is_symlink() or not d.is_dir()):
                remove_entry(staging, job_id)
            d.mkdir(exist_ok=True)
        return d

    def discard_staging(self, job_id: str) -> None:
        """Remove ``.staging/<job_id>`` and what it holds (links removed, never followed); nothing if absent."""
        job_id = check_id(job_id, "job")
        with self._writing_files():
            remove_entry(real_dir(self.path, ".staging"), job_id)

    def clear_staging(self, job_id: str) -> Path:
        """An empty ``<project>/.staging/<job_id>`` (whatever was there removed without following links)."""
        self.discard_staging(job_id)
        return self.staging_dir(job_id)

    # ------------------------------------------------------------------ RenderService only
    def claim_next_job(self) -> JobRecord | None:
        """Atomically take the first valid QUEUED job whose inputs are ready: RUNNING, attempts + 1, started now.
        None if no queued job can run now.

        A QUEUED row that fails validation (see :attr:`~sdk.records.JobRecord.problem`) is never handed
        out: in the same transaction it is marked FAILED (by its rowid; no path is built from it) with
        the reason, and the next queued job is taken. A job that takes another job's output
        (``depends_on``) waits while that job is queued or running; it fails when that job failed (or is
        gone) and is cancelled when that job was cancelled.
        """
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
                row.status = JobStatus.RUNNING.value
                row.attempts += 1
                row.started_at = time.time()
                row.finished_at = None
                row.cancel_requested = False
                row.progress_step = row.progress_total = 0
                return job_record(row)
            return None

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
