"""Whole-queue operations: cancel all, clear queued, delete finished jobs, and their undo.

Base of :class:`~sdk.store.queue.QueueMixin`. Nothing queued is ever deleted in one step: clearing queued jobs marks
them CANCELLED (with a message that says so) and :meth:`restore_queued` puts them back at their old places. A caller
that wants an undo window (the GUI) hides the ids it got, and deletes them with :meth:`delete_jobs` only when the
window has passed; a crash in between leaves cancelled rows that can be retried, never a lost job.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import String, delete, func, select
from sqlalchemy.orm import Session

from sdk.records import JobStatus
from sdk.store import models as m
from sdk.store.access import StoreAccess

_FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
#: what a job removed by "clear queued" says about itself (seen only if the removal never completed: a crash)
CLEARED_MESSAGE = "Removed from the queue (Clear queued)."
CLEARED_HINT = "Retry it to queue it again."


class BulkQueueMixin(StoreAccess):
    @staticmethod
    def _cancel_dependents(s: Session, job_id: str) -> list[str]:
        """Cancel, transitively, the QUEUED jobs that wait for ``job_id``; return their ids."""
        todo, cancelled = [job_id], []
        while todo:
            source = todo.pop()
            waiting = s.scalars(select(m.Job).where(m.Job.status == JobStatus.QUEUED.value,
                                                    func.instr(func.cast(m.Job.depends_on, String), f'"{source}"') > 0))
            for dep in waiting:
                dep.status = JobStatus.CANCELLED.value
                dep.finished_at = time.time()
                dep.error_message = f"Job {source}, which this job needs, was cancelled."
                dep.error_hint = f"Retry job {source}, then queue this one again."
                todo.append(dep.id)
                cancelled.append(dep.id)
        return cancelled

    def _cancel_queued(self, s: Session, job_ids: Sequence[str] | None, message: str | None,
                       hint: str | None) -> list[str]:
        query = select(m.Job).where(m.Job.status == JobStatus.QUEUED.value).order_by(m.Job.position)
        if job_ids is not None:
            query = query.where(m.Job.id.in_(list(job_ids)))
        now = time.time()
        done: list[str] = []
        for row in list(s.scalars(query)):
            if row.status != JobStatus.QUEUED.value:  # cancelled above as a dependent of an earlier one
                continue
            row.status = JobStatus.CANCELLED.value
            row.finished_at = now
            row.error_message, row.error_hint = message, hint
            done.append(row.id)
            done += self._cancel_dependents(s, row.id)
        return list(dict.fromkeys(done))

    def clear_queued(self, job_ids: Sequence[str] | None = None) -> list[str]:
        """Take QUEUED jobs (all of them, or those of ``job_ids``) out of the queue: they become CANCELLED, marked
        as removed, and so do the queued jobs that wait for them. Running and finished jobs are left alone.

        Returns the ids changed (undo with :meth:`restore_queued`; delete for good with :meth:`delete_jobs`).
        """
        with self._writing() as s:
            return self._cancel_queued(s, job_ids, CLEARED_MESSAGE, CLEARED_HINT)

    def cancel_jobs(self, job_ids: Sequence[str] | None = None) -> list[str]:
        """Cancel open jobs in one transaction: QUEUED ones (and the jobs waiting for them) become CANCELLED; RUNNING
        ones get ``cancel_requested`` (the RenderService stops them). ``job_ids`` None means every open job
        ("cancel all"); finished ids in it are ignored. Returns the ids changed (undo with :meth:`restore_queued`)."""
        with self._writing() as s:
            done = self._cancel_queued(s, job_ids, None, None)
            query = select(m.Job).where(m.Job.status == JobStatus.RUNNING.value, m.Job.cancel_requested.is_(False))
            if job_ids is not None:
                query = query.where(m.Job.id.in_(list(job_ids)))
            for row in s.scalars(query):
                row.cancel_requested = True
                done.append(row.id)
            return done

    def restore_queued(self, job_ids: Sequence[str]) -> list[str]:
        """Undo :meth:`clear_queued` / :meth:`cancel_jobs`: each of ``job_ids`` that is CANCELLED goes back to QUEUED
        at its old place (its position never changed), its error cleared; one still RUNNING has its cancel request
        withdrawn (if the worker was already told, it ends CANCELLED and can be restored then). Jobs in other
        states (retried, finished, deleted meanwhile) are left alone. Returns the ids restored."""
        restored: list[str] = []
        with self._writing() as s:
            for row in s.scalars(select(m.Job).where(m.Job.id.in_(list(job_ids)))):
                if row.status == JobStatus.CANCELLED.value:
                    row.status = JobStatus.QUEUED.value
                    row.finished_at = row.started_at = None
                    row.progress_step = row.progress_total = 0
                    row.error_message = row.error_hint = row.error_traceback = None
                elif row.status == JobStatus.RUNNING.value and row.cancel_requested:
                    row.cancel_requested = False
                else:
                    continue
                row.cancel_requested = False
                restored.append(row.id)
        return restored

    def finished_job_ids(self) -> list[str]:
        """The jobs :meth:`clear_finished` would delete (FAILED or CANCELLED without an output, and rows of an
        unknown status), in queue order."""
        with self._reading() as s:
            return list(s.scalars(select(m.Job.id).where(
                m.Job.status.in_(_FINISHED[1:]) | m.Job.status.not_in(m.JOB_STATUSES),
                m.Job.id.not_in(select(m.Output.job_id))).order_by(m.Job.position)))

    def delete_jobs(self, job_ids: Sequence[str]) -> list[str]:
        """Delete jobs (with their logs) that are FAILED or CANCELLED (or of an unknown status) and own no output;
        queued, running and succeeded ones, and unknown ids, are skipped. Returns the ids deleted."""
        with self._writing() as s:
            ids = list(s.scalars(select(m.Job.id).where(
                m.Job.id.in_(list(job_ids)),
                m.Job.status.in_(_FINISHED[1:]) | m.Job.status.not_in(m.JOB_STATUSES),
                m.Job.id.not_in(select(m.Output.job_id)))))
            if ids:
                s.execute(delete(m.Job).where(m.Job.id.in_(ids)))
                s.execute(delete(m.Batch).where(m.Batch.id.not_in(select(m.Job.batch_id))))
            return ids
