"""The render queue: jobs, batches, outputs and job logs.

Mixed into :class:`sdk.Project`. Anyone may add, reorder, cancel or retry jobs; the methods
marked "RenderService only" write running-job state and are called by the render-lock holder.
Every write is one ``BEGIN IMMEDIATE`` transaction, so "append at the end" and "claim the next
job" are atomic across processes.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from sdk.errors import InvalidRequest
from sdk.records import BatchRecord, JobRecord, JobStatus, NewJob, OutputRecord
from sdk.store import models as m
from sdk.store.assets import IMPORT_PREFIX
from sdk.store.catalog import by_prefix, new_id
from sdk.store.convert import job_record, output_record

_FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _next_position(s: Session) -> int:
    return (s.scalar(select(func.max(m.Job.position))) or 0) + 1


class QueueMixin:
    path: Path
    _engine: Engine
    _wengine: Engine

    # ------------------------------------------------------------------ everybody
    def add_jobs(self, jobs: Sequence[NewJob]) -> BatchRecord:
        """Queue validated jobs as one batch, at the end of the queue, in one transaction.

        Raises InvalidRequest(field="jobs") for an empty list or an unknown job kind.
        """
        jobs = list(jobs)
        if not jobs:
            raise InvalidRequest("No jobs to queue.", hint="Give at least one job.", field="jobs")
        for job in jobs:
            if job.kind not in ("generate", "train"):
                raise InvalidRequest(f"Unknown job kind {job.kind!r}.", hint="Use 'generate' or 'train'.",
                                     field="kind")
        now = time.time()
        with Session(self._wengine) as s, s.begin():
            batch = m.Batch(id=new_id(), created_at=now)
            s.add(batch)
            pos = _next_position(s)
            ids = []
            for i, job in enumerate(jobs):
                row = m.Job(id=new_id(), batch_id=batch.id, kind=job.kind, spec_id=job.spec_id,
                            spec_version=job.spec_version, params=dict(job.params), seed=int(job.seed),
                            prompt=job.prompt, inputs=dict(job.inputs), weights=job.weights,
                            status=JobStatus.QUEUED.value, position=pos + i, attempts=0, created_at=now,
                            progress_step=0, progress_total=0, cancel_requested=False)
                s.add(row)
                ids.append(row.id)
            return BatchRecord(id=batch.id, created_at=now, job_ids=tuple(ids))

    def jobs(self, status: JobStatus | str | Sequence[JobStatus | str] | None = None,
             batch_id: str | None = None) -> list[JobRecord]:
        """Jobs in queue order, optionally only those with the given status(es) and/or batch."""
        q = select(m.Job).order_by(m.Job.position)
        if status is not None:
            wanted = [status] if isinstance(status, (str, JobStatus)) else list(status)
            q = q.where(m.Job.status.in_([JobStatus(x).value for x in wanted]))
        if batch_id is not None:
            q = q.where(m.Job.batch_id == batch_id)
        with Session(self._engine) as s, s.begin():
            return [job_record(j) for j in s.scalars(q)]

    def job(self, id_or_prefix: str) -> JobRecord:
        """A job by id or id prefix; InvalidRequest(field="job") if unknown or ambiguous."""
        with Session(self._engine) as s, s.begin():
            return job_record(self._job_row(s, id_or_prefix))

    def _job_row(self, s: Session, id_or_prefix: str) -> m.Job:
        return by_prefix(s, m.Job, m.Job.id, id_or_prefix, "job")

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: a QUEUED one becomes CANCELLED now; a RUNNING one gets ``cancel_requested``
        (the RenderService stops it). Raises InvalidRequest(field="job") for a finished job."""
        with Session(self._wengine) as s, s.begin():
            row = self._job_row(s, job_id)
            if row.status == JobStatus.QUEUED.value:
                row.status = JobStatus.CANCELLED.value
                row.finished_at = time.time()
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
        with Session(self._wengine) as s, s.begin():
            row = self._job_row(s, job_id)
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
        with Session(self._wengine) as s, s.begin():
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
        """Delete FAILED and CANCELLED jobs (with their logs); return how many.

        SUCCEEDED jobs stay: each owns an output (its video and full spec), which is the work.
        Adapters trained by a deleted job are kept (their job link becomes empty).
        """
        with Session(self._wengine) as s, s.begin():
            has_output = select(m.Output.job_id)
            result = s.execute(delete(m.Job).where(
                m.Job.status.in_(_FINISHED), m.Job.id.not_in(has_output)))
            s.execute(delete(m.Batch).where(m.Batch.id.not_in(select(m.Job.batch_id))))
            return int(result.rowcount or 0)

    def add_log(self, job_id: str, level: str, message: str) -> None:
        """Append a line to a job's log."""
        with Session(self._wengine) as s, s.begin():
            s.add(m.JobLog(job_id=job_id, ts=time.time(), level=str(level).upper(), message=str(message)))

    def logs(self, job_id: str) -> list[dict[str, Any]]:
        """A job's log lines in order: ``{"ts", "level", "message"}``."""
        with Session(self._engine) as s, s.begin():
            rows = s.scalars(select(m.JobLog).where(m.JobLog.job_id == job_id).order_by(m.JobLog.ts, m.JobLog.id))
            return [{"ts": r.ts, "level": r.level, "message": r.message} for r in rows]

    def outputs(self, job_id: str | None = None) -> list[OutputRecord]:
        """Outputs, newest last; optionally only the given job's."""
        q = select(m.Output).order_by(m.Output.id)
        if job_id is not None:
            q = q.where(m.Output.job_id == job_id)
        with Session(self._engine) as s, s.begin():
            return [output_record(self.path, o) for o in s.scalars(q)]

    def output(self, job_id: str) -> OutputRecord:
        """The output of a job (id or prefix); InvalidRequest(field="job") if it has none."""
        with Session(self._engine) as s, s.begin():
            row = self._job_row(s, job_id)
            out = s.scalar(select(m.Output).where(m.Output.job_id == row.id))
            if out is None:
                raise InvalidRequest(f"Job {row.id} has no output ({row.status}).",
                                     hint="Outputs exist for succeeded jobs only.", field="job")
            return output_record(self.path, out)

    def staging_dir(self, job_id: str) -> Path:
        """``<project>/.staging/<job_id>``, created if missing: the only place a worker writes."""
        d = self.path / ".staging" / job_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def discard_staging(self, job_id: str) -> None:
        """Remove ``.staging/<job_id>`` and what it holds (a link is removed, never followed)."""
        shutil.rmtree(self.path / ".staging" / job_id, ignore_errors=True)

    # ------------------------------------------------------------------ RenderService only
    def claim_next_job(self) -> JobRecord | None:
        """Atomically take the first QUEUED job: RUNNING, attempts + 1, started now. None if none queued."""
        with Session(self._wengine) as s, s.begin():
            row = s.scalar(select(m.Job).where(m.Job.status == JobStatus.QUEUED.value)
                           .order_by(m.Job.position).limit(1))
            if row is None:
                return None
            row.status = JobStatus.RUNNING.value
            row.attempts += 1
            row.started_at = time.time()
            row.finished_at = None
            row.cancel_requested = False
            row.progress_step = row.progress_total = 0
            return job_record(row)

    def set_progress(self, job_id: str, step: int, total: int) -> None:
        """Record a running job's progress (ignored once the job left RUNNING)."""
        with Session(self._wengine) as s, s.begin():
            s.execute(update(m.Job).where(m.Job.id == job_id, m.Job.status == JobStatus.RUNNING.value)
                      .values(progress_step=int(step), progress_total=int(total)))

    def _running_row(self, s: Session, job_id: str) -> m.Job:
        row = s.get(m.Job, job_id)
        if row is None:
            raise InvalidRequest(f"No job {job_id} in this project.", hint="", field="job")
        return row

    def finish_job(self, job_id: str, staging_dir: Path, artifacts: list[dict[str, Any]] | None = None
                   ) -> OutputRecord:
        """Publish a finished job: rename ``staging_dir`` to ``outputs/<job_id>`` and, in the same
        transaction, record the output, register ``artifacts`` as adapters and mark the job SUCCEEDED.

        Args: staging_dir: holds video.mp4, meta.json and optionally thumb.png and frames/;
        artifacts: ``[{"name", "path" (inside staging_dir), "kind", "step", "meta"}]``, optionally
        ``"subject_id"``/``"motion_id"`` (default: the job's ``inputs["subject"]``/``["motion"]``).
        Raises InvalidRequest if the job is not RUNNING or the staging folder is missing. If anything
        fails, the files are moved back to staging and the database is unchanged.
        """
        staging_dir = Path(staging_dir)
        out_rel = f"outputs/{job_id}"
        out_dir = self.path / out_rel
        placed: list[tuple[Path, Path | None]] = []
        moved = False
        try:
            with self._undo_adapters(placed), Session(self._wengine) as s, s.begin():  # type: ignore[attr-defined]
                row = self._running_row(s, job_id)
                if row.status != JobStatus.RUNNING.value:
                    raise InvalidRequest(f"Job {job_id} is {row.status}, not RUNNING; it cannot be finished.",
                                         field="job")
                if not staging_dir.is_dir():
                    raise InvalidRequest(f"Job {job_id} has no staging folder {staging_dir}.", field="job")
                if out_dir.exists():  # left by a crash between rename and commit: it was never recorded
                    shutil.rmtree(out_dir)
                out_dir.parent.mkdir(parents=True, exist_ok=True)
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
                row.status = JobStatus.SUCCEEDED.value
                row.finished_at = now
                row.progress_step = max(row.progress_step, row.progress_total)
                s.flush()
                record = output_record(self.path, out)
        except BaseException:
            # adapters were moved back into out_dir by _undo_adapters; now the folder goes back to staging
            if moved and out_dir.exists() and not staging_dir.exists():
                os.replace(out_dir, staging_dir)
            raise
        return record

    def _end_job(self, job_id: str, status: JobStatus, **fields: Any) -> None:
        with Session(self._wengine) as s, s.begin():
            row = self._running_row(s, job_id)
            if row.status in _FINISHED:
                raise InvalidRequest(f"Job {job_id} has already finished ({row.status}).", field="job")
            row.status = status.value
            row.finished_at = time.time()
            for k, v in fields.items():
                setattr(row, k, v)
        shutil.rmtree(self.path / ".staging" / job_id, ignore_errors=True)

    def fail_job(self, job_id: str, message: str, hint: str = "", traceback: str = "",
                 exit_code: int | None = None) -> None:
        """Mark a job FAILED with the user message, hint, traceback and worker exit code; drop its staging."""
        self._end_job(job_id, JobStatus.FAILED, error_message=message, error_hint=hint or None,
                      error_traceback=traceback or None, exit_code=exit_code)

    def mark_cancelled(self, job_id: str) -> None:
        """Mark a job CANCELLED (the service stopped it); drop its staging."""
        self._end_job(job_id, JobStatus.CANCELLED)

    def requeue_running(self) -> int:
        """Start-up recovery (render-lock holder only): jobs left RUNNING by a dead service go back to
        QUEUED at their old place (the attempt stays counted) — or to CANCELLED if a cancel had been
        requested — and ``.staging/`` is emptied. Returns how many jobs were requeued."""
        with Session(self._wengine) as s, s.begin():
            s.execute(update(m.Job).where(m.Job.status == JobStatus.RUNNING.value,
                                            m.Job.cancel_requested.is_(True))
                      .values(status=JobStatus.CANCELLED.value, finished_at=time.time()))
            result = s.execute(update(m.Job).where(m.Job.status == JobStatus.RUNNING.value)
                               .values(status=JobStatus.QUEUED.value, started_at=None,
                                       progress_step=0, progress_total=0))
            count = int(result.rowcount or 0)
        staging = self.path / ".staging"
        if staging.is_dir():
            for entry in staging.iterdir():
                if entry.name.startswith(IMPORT_PREFIX):  # imports in flight belong to other processes
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
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
