"""The render queue: jobs, batches, outputs and job logs.

Mixed into :class:`sdk.Project`. Anyone may add, reorder, cancel or retry jobs; what writes running-job state
(claim, progress, finish, fail) is the render-lock holder's and lives in :mod:`sdk.store.running`.
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

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sdk.errors import InvalidRequest, UnsafeProject
from sdk.records import BatchRecord, JobRecord, JobStatus, NewJob, OutputRecord
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.catalog import by_prefix, new_id
from sdk.store.convert import job_problem, job_record, output_problem, output_record
from sdk.store.paths import check_id, real_dir, remove_entry
from sdk.store.queue_bulk import BulkQueueMixin
from sdk.store.running import _FINISHED, INVALID_ROW_HINT, RunningMixin

log = logging.getLogger(__name__)

_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _next_position(s: Session) -> int:
    return (s.scalar(select(func.max(m.Job.position))) or 0) + 1


class QueueMixin(BulkQueueMixin, RunningMixin):
    # ------------------------------------------------------------------ everybody
    def add_jobs(self, jobs: Sequence[NewJob]) -> BatchRecord:
        """Queue validated jobs as one batch, at the end of the queue, in one transaction.

        A ``depends_on`` entry ``"@N"`` names the N-th job of this same batch (its id does not exist yet); so does
        a value ``"@N"`` inside an input given as an object (``{"output": "@N"}``: that job's output).
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

        def ref(value: Any, i: int) -> Any:
            return dep(value, i) if isinstance(value, str) and value[:1] == "@" and value[1:].isdigit() else value

        def inputs(job: Any, i: int) -> dict[str, Any]:
            return {k: {kk: ref(vv, i) for kk, vv in v.items()} if isinstance(v, dict) else v
                    for k, v in job.inputs.items()}

        with self._writing() as s:
            batch = m.Batch(id=new_id(), created_at=now)
            s.add(batch)
            pos = _next_position(s)
            for i, job in enumerate(jobs):
                row = m.Job(id=ids[i], batch_id=batch.id, kind=job.kind, spec_id=job.spec_id,
                            spec_version=job.spec_version, params=dict(job.params), options=dict(job.options),
                            depends_on=[dep(d, i) for d in job.depends_on],
                            seed=int(job.seed),
                            prompt=job.prompt, inputs=inputs(job, i), weights=job.weights,
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

