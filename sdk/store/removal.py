"""Removing a subject or a motion, and what still needs one (mixed into :class:`sdk.Project` via the catalog).

A subject or motion goes with its images/videos (their assets too, where nothing else uses them) and the adapters
trained on it. Jobs that have not run yet and need it — they take it as an input, or name one of its adapters — would
fail later for a reason the user cannot see any more, so removing is refused naming them, or, with ``cascade``,
cancels them first (and what waits for them). A job that is running on it always refuses: cancel it and let it
stop first.
"""
from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sdk.errors import InvalidRequest
from sdk.records import JobRecord, JobStatus
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.access import StoreAccess
from sdk.store.convert import job_record
from sdk.store.paths import is_id, real_dir, remove_entry

_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
#: an adapter id or a prefix long enough not to be a word (a param value naming an adapter)
_ADAPTER_REF = re.compile(r"[0-9a-f]{6,12}")


def _names_target(value: Any, key: str, ident: int) -> bool:
    """An input value that is the target (``3``, ``"3"``) or points into it (``{"motion": 3, "video": …}``)."""
    if isinstance(value, dict):
        return _names_target(value.get(key), key, ident)
    if isinstance(value, (list, tuple)):
        return any(_names_target(v, key, ident) for v in value)
    return isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).strip() == str(ident)


def _names_adapter(params: dict[str, Any], adapter_ids: list[str]) -> bool:
    for v in params.values():
        text = str(v).strip().lower() if isinstance(v, str) else ""
        if _ADAPTER_REF.fullmatch(text) and any(a.startswith(text) for a in adapter_ids):
            return True
    return False


class RemovalMixin(StoreAccess):
    def jobs_using(self, *, subject: str | int | None = None, motion: str | int | None = None) -> list[JobRecord]:
        """The QUEUED and RUNNING jobs that need this subject or motion (by name or id): they take it as an input
        (``inputs["subject"]`` / ``inputs["motion"]``, or a motion's video) or name one of its adapters by id."""
        with self._reading() as s:
            key, row = self._removal_target(s, subject, motion)
            return [job_record(j) for j in self._users(s, key, row)]

    def remove_subject(self, name: str | int, cascade: bool = False) -> list[str]:
        """Delete a subject: its images (their files too where nothing else uses them) and its adapters.

        Args: name: the subject's name or id; cascade: cancel the queued jobs that need it (and the jobs waiting for
        them) instead of refusing. Returns the ids of the jobs cancelled.
        Raises InvalidRequest(field="subject") if it is unknown, if a job that needs it is running, or (without
        ``cascade``) naming the queued jobs that need it; nothing changes then.
        """
        return self._remove_target(subject=name, cascade=cascade)

    def remove_motion(self, name: str | int, cascade: bool = False) -> list[str]:
        """Delete a motion, its videos (files too where unused elsewhere) and its adapters; as :meth:`remove_subject`.
        Raises InvalidRequest(field="motion")."""
        return self._remove_target(motion=name, cascade=cascade)

    # -- internals ---------------------------------------------------------------------------------------------
    def _removal_target(self, s: Session, subject: Any, motion: Any) -> tuple[str, Any]:
        if (subject is None) == (motion is None):
            raise InvalidRequest("Name a subject or a motion.", hint="Give exactly one of subject= or motion=.",
                                 field="subject")
        if subject is not None:
            return "subject", self._find_named(s, m.Subject, subject, "subject")  # type: ignore[attr-defined]
        return "motion", self._find_named(s, m.Motion, motion, "motion")  # type: ignore[attr-defined]

    @staticmethod
    def _adapter_rows(s: Session, key: str, row: Any) -> list[m.Adapter]:
        column = m.Adapter.subject_id if key == "subject" else m.Adapter.motion_id
        return list(s.scalars(select(m.Adapter).where(column == row.id)))

    def _users(self, s: Session, key: str, row: Any) -> list[m.Job]:
        adapter_ids = [a.id for a in self._adapter_rows(s, key, row)]
        out = []
        for j in s.scalars(select(m.Job).where(m.Job.status.in_(_OPEN)).order_by(m.Job.position)):
            inputs = j.inputs if isinstance(j.inputs, dict) else {}
            params = j.params if isinstance(j.params, dict) else {}
            if any(_names_target(v, key, row.id) for v in inputs.values()) or _names_adapter(params, adapter_ids):
                out.append(j)
        return out

    def _remove_target(self, *, subject: Any = None, motion: Any = None, cascade: bool) -> list[str]:
        cancelled: list[str] = []
        with self._writing() as s:
            key, row = self._removal_target(s, subject, motion)
            name = printable(row.name)
            users = self._users(s, key, row)
            running = [j for j in users if j.status == JobStatus.RUNNING.value]
            listed = ", ".join(f"{j.id} ({printable(j.spec_id)})" for j in users[:5]) + (
                f" and {len(users) - 5} more" if len(users) > 5 else "")
            if running:
                raise InvalidRequest(
                    f"The {key} {name!r} is used by a running job: {', '.join(j.id for j in running)}.",
                    hint="Cancel that job and wait until it has stopped, then remove it.", field=key)
            if users and not cascade:
                raise InvalidRequest(
                    f"The {key} {name!r} is used by {len(users)} queued job(s): {listed}.",
                    hint="Cancel those jobs first, or remove it with cascade=True (the app asks) to cancel them too.",
                    field=key)
            for j in users:
                j.status = JobStatus.CANCELLED.value
                j.finished_at = time.time()
                j.error_message = f"The {key} {row.name!r} it needs was removed."
                j.error_hint = f"Add the {key} again, then queue the job again."
                cancelled.append(j.id)
                self._cancel_dependents(s, j.id)  # type: ignore[attr-defined]
            adapters = [a.id for a in self._adapter_rows(s, key, row)]
            for a in self._adapter_rows(s, key, row):
                s.delete(a)
            items = row.images if key == "subject" else row.videos
            hashes = {h for i in items for h in (i.asset_hash, getattr(i, "mask_hash", None)) if h}
            s.delete(row)
        with self._writing_files():
            folder = real_dir(self.path, "adapters")
            for a in adapters:
                if is_id(a):  # a crafted id never builds a path
                    remove_entry(folder, a)
        for h in sorted(hashes):
            self.discard_asset(h)  # type: ignore[attr-defined]  # only when nothing else uses it
        return cancelled
