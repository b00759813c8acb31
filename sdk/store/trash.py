"""Starring outputs, and deleting them with an undo. Mixed into :class:`sdk.Project`.

A delete has two stages so that it can be undone. :meth:`TrashMixin.delete_outputs` flags the rows
(``outputs.deleted_at``) and moves each ``outputs/<job>/`` folder to ``.trash/<job>/``; listings and lookups leave
flagged outputs out from then on. :meth:`~TrashMixin.restore_outputs` undoes it. :meth:`~TrashMixin.purge_trash`
makes it final (rows and files gone): the GUI calls it when its undo expires or the project is closed, and purges
what an earlier session left behind (older than the undo window) when it opens the project.

Containment as everywhere (:mod:`sdk.store.paths`): job ids are checked before a path is built from them, ``.trash``
and ``outputs`` must be real folders, and nothing is removed through a symlink. The rows are flagged before any file
moves, so a crash in between leaves the files where they were, and a purge removes them from either place.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from sqlalchemy import String, delete, func, select
from sqlalchemy.orm import Session

from sdk.errors import InvalidRequest
from sdk.records import JobStatus
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.access import StoreAccess
from sdk.store.paths import clear_folder, is_id, real_dir, remove_entry

log = logging.getLogger(__name__)
#: the project's trash folder: outputs deleted but still undoable
TRASH = ".trash"
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _job_ids(job_ids: Iterable[str] | str) -> list[str]:
    ids = [job_ids] if isinstance(job_ids, str) else list(dict.fromkeys(job_ids))
    for jid in ids:
        if not is_id(jid):
            raise InvalidRequest(f"{printable(str(jid))!r} is not a job id.",
                                 hint="Give the full 12-character id of a job whose output to change.", field="job")
    return ids


class TrashMixin(StoreAccess):
    def star_outputs(self, job_ids: Iterable[str] | str, starred: bool = True) -> int:
        """Star (or, with ``starred=False``, unstar) the outputs of these jobs; returns how many changed.

        Raises InvalidRequest(field="job") naming a job that has no output (or whose output was deleted)."""
        ids = _job_ids(job_ids)
        with self._writing() as s:
            rows = self._live_outputs(s, ids)
            changed = sum(1 for r in rows if bool(r.starred) != bool(starred))
            for r in rows:
                r.starred = bool(starred)
            return changed

    def delete_outputs(self, job_ids: Iterable[str] | str) -> list[str]:
        """Delete the outputs of these jobs, undoably: they leave every listing at once and their folders move to
        ``.trash/``; :meth:`restore_outputs` brings them back until :meth:`purge_trash` removes them. The jobs stay
        in the queue's history. Returns the job ids.

        Raises InvalidRequest(field="job") naming a job without an output, and refuses (naming them) outputs that
        queued or running jobs still take as an input. Nothing changes then.
        """
        ids = _job_ids(job_ids)
        with self._writing_files():  # a linked .trash or outputs is refused before anything changes
            outputs, trash = real_dir(self.path, "outputs"), real_dir(self.path, TRASH)
        with self._writing() as s:
            rows = self._live_outputs(s, ids)
            users = self._jobs_taking(s, ids)
            if users:
                listed = ", ".join(f"{j} (takes the output of {src})" for j, src in users[:5])
                more = f" and {len(users) - 5} more" if len(users) > 5 else ""
                raise InvalidRequest(f"Cannot delete: queued jobs take these outputs as inputs: {listed}{more}.",
                                     hint="Cancel those jobs first, or let them render.", field="job")
            now = time.time()
            for r in rows:
                r.deleted_at = now
        moved: list[str] = []
        try:
            with self._writing_files():
                for jid in ids:
                    if not os.path.lexists(outputs / jid):
                        continue  # its folder was removed by hand: only the row is flagged
                    remove_entry(trash, jid)  # a leftover of an earlier delete of the same job
                    os.replace(outputs / jid, trash / jid)
                    moved.append(jid)
        except BaseException:
            for jid in moved:
                os.replace(trash / jid, outputs / jid)
            with self._writing() as s:
                for r in self._trashed(s, ids):
                    r.deleted_at = None
            raise
        return ids

    def restore_outputs(self, job_ids: Iterable[str] | str) -> list[str]:
        """Undo :meth:`delete_outputs`: the outputs come back (folders and rows, starred as they were). Returns the
        job ids. Raises InvalidRequest(field="job") for an output that is not in the trash (never deleted, or
        purged since: its undo expired)."""
        ids = _job_ids(job_ids)
        with self._writing() as s:
            rows = {r.job_id: r for r in self._trashed(s, ids)}
            gone = [jid for jid in ids if jid not in rows]
            if gone:
                raise InvalidRequest(f"The output of job {gone[0]} is not in the trash (it was not deleted, or its "
                                     "undo expired).", hint="Render the job again to get it back.", field="job")
            # rows first: a crash before the files move back leaves them listed and the files kept in .trash/
            for r in rows.values():
                r.deleted_at = None
        with self._writing_files():
            self._move_back(ids)
        return ids

    def purge_trash(self, job_ids: Iterable[str] | str | None = None, *, older_than: float | None = None) -> int:
        """Delete for good the outputs in the trash: those of ``job_ids`` (default: all), only those deleted more
        than ``older_than`` seconds ago when given. Their rows and folders go (from ``.trash/``, or from
        ``outputs/`` after a crash midway through a delete); their jobs stay. Returns how many outputs went.

        Purging everything also tidies ``.trash/``: a folder whose output is listed goes back to ``outputs/``
        (an undo cut short by a crash), one that belongs to no output is removed.
        """
        ids = None if job_ids is None else _job_ids(job_ids)
        with self._writing() as s:
            q = select(m.Output.job_id).where(m.Output.deleted_at.is_not(None))
            if ids is not None:
                q = q.where(m.Output.job_id.in_(ids))
            if older_than is not None:
                q = q.where(m.Output.deleted_at <= time.time() - float(older_than))
            gone = [jid for jid in s.scalars(q) if is_id(jid)]
            if gone:
                s.execute(delete(m.Output).where(m.Output.job_id.in_(gone)))
            live = set(s.scalars(select(m.Output.job_id).where(m.Output.deleted_at.is_(None))))
            flagged = set(s.scalars(select(m.Output.job_id).where(m.Output.deleted_at.is_not(None))))
        with self._writing_files():
            outputs, trash = real_dir(self.path, "outputs"), real_dir(self.path, TRASH)
            for jid in gone:
                remove_entry(trash, jid)
                remove_entry(outputs, jid)
            if job_ids is None and older_than is None:
                self._move_back([n for n in os.listdir(trash) if n in live])
                clear_folder(trash, keep=lambda name: name in flagged)
        return len(gone)

    # -- helpers -------------------------------------------------------------------------------------------------
    @staticmethod
    def _live_outputs(s: Session, ids: list[str]) -> list[m.Output]:
        rows = {r.job_id: r for r in s.scalars(select(m.Output).where(m.Output.job_id.in_(ids),
                                                                         m.Output.deleted_at.is_(None)))}
        for jid in ids:
            if jid not in rows:
                raise InvalidRequest(f"Job {jid} has no output (it did not succeed, or its output was deleted).",
                                     hint="Choose an output from the gallery or `vgen queue list`.", field="job")
            if rows[jid].dir != f"outputs/{jid}":
                raise InvalidRequest(f"The output row of job {jid} is invalid (its folder is {rows[jid].dir!r}); "
                                     "nothing was changed.", hint="Render the job again.", field="job")
        return [rows[jid] for jid in ids]

    @staticmethod
    def _trashed(s: Session, ids: list[str]) -> list[m.Output]:
        return list(s.scalars(select(m.Output).where(m.Output.job_id.in_(ids), m.Output.deleted_at.is_not(None))))

    @staticmethod
    def _jobs_taking(s: Session, ids: list[str]) -> list[tuple[str, str]]:
        """(queued or running job, the output among ``ids`` it takes) pairs."""
        found = []
        for jid in ids:
            takers = s.scalars(select(m.Job.id).where(
                m.Job.status.in_(_OPEN), func.instr(func.cast(m.Job.depends_on, String), f'"{jid}"') > 0))
            found += [(t, jid) for t in takers]
        return found

    def _move_back(self, ids: Iterable[str]) -> None:
        """``.trash/<job>`` → ``outputs/<job>`` for each job whose folder is in the trash and not in outputs."""
        outputs, trash = real_dir(self.path, "outputs"), real_dir(self.path, TRASH)
        for jid in ids:
            if is_id(jid) and os.path.lexists(trash / jid) and not os.path.lexists(outputs / jid):
                os.replace(trash / jid, outputs / jid)
