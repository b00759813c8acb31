"""An open project in the GUI: the sdk Project, its RenderService and the bridge between them.

Every sdk call that touches the database or files runs on the session's serial
:class:`~app.tasks.TaskRunner`; results come back as signals (facts), errors as
``error_raised`` — never as an exception in the event loop.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.bridge import ServiceBridge
from app.tasks import TaskRunner
from app.undo import UndoStack, plural

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.service import RenderService

log = logging.getLogger("vgen.app.session")

#: render states shown by the queue panel
STOPPED, PAUSED, RUNNING, LOCKED = "stopped", "paused", "running", "locked"


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(message, details) for a dialog: a VGenError's words, else the exception's repr and traceback."""
    import traceback

    message = getattr(exc, "user_message", None)
    if message:
        return message, getattr(exc, "hint", "") or ""
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


class ProjectSession(QObject):
    """Owns one open project. Create it with an opened ``Project`` and a plugin registry."""

    jobs_changed = Signal()
    #: "subjects" | "motions" | "prompts" | "adapters"
    catalog_changed = Signal(str)
    outputs_changed = Signal()
    #: STOPPED | PAUSED | RUNNING | LOCKED
    render_state_changed = Signal(str)
    #: a batch was queued (its BatchRecord)
    jobs_queued = Signal(object)
    #: title, message, details (hint or traceback)
    error_raised = Signal(str, str, str)
    #: the jobs hidden while their removal can be undone (a frozenset of ids)
    hidden_changed = Signal(object)

    def __init__(self, project: "Project", registry: "PluginRegistry", parent: QObject | None = None,
                 grace_period: float = 10.0, poll_ms: int = 2000) -> None:
        super().__init__(parent)
        self.project = project
        self.registry = registry
        self.grace_period = grace_period
        self.tasks = TaskRunner(self)
        self.bridge = ServiceBridge(self)
        self.service: RenderService | None = None
        self.state = STOPPED
        self.lock_message = ""
        #: who renders this project when it is LOCKED: the lock file's holder info (pid, host, started_at, holder)
        self.lock_holder: dict[str, Any] = {}
        #: timed undo of queue changes (cancel all, clear queued, clear finished, delete)
        self.undo = UndoStack(self)
        self.hidden: frozenset[str] = frozenset()
        #: running jobs whose cancel was undone after the worker was told: put back in the queue once they stop
        self._restore_when_cancelled: set[str] = set()
        self._closed = False
        self._want_running = False
        #: the device setting changed while a job rendered: restart the service when the queue starts next
        self._restart_pending = False
        self.bridge.job_started.connect(self._on_bridge_job_event)
        self.bridge.job_failed.connect(self._on_bridge_job_failed)
        self.bridge.job_cancelled.connect(self._on_bridge_job_cancelled)
        self.bridge.job_finished.connect(self._on_bridge_job_finished)
        self.bridge.queue_paused.connect(self._on_bridge_queue_paused)
        # jobs added by another process (a script, the CLI) and a renderer that stopped
        self._poll = QTimer(self)
        self._poll.setInterval(poll_ms)
        self._poll.timeout.connect(self._on_poll_timeout)
        self._poll.start()

    @property
    def path(self) -> Path:
        return self.project.path

    @property
    def name(self) -> str:
        return self.project.name

    # -- background calls ---------------------------------------------------------------
    def call(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
             title: str = "Something went wrong", changed: Callable[[], None] | None = None) -> None:
        """Run ``fn`` off the GUI thread; then ``on_done(result)`` and ``changed()``; errors are reported."""
        def done(result: Any) -> None:
            if on_done is not None:
                on_done(result)
            if changed is not None:
                changed()

        def failed(exc: BaseException) -> None:
            message, details = describe_error(exc)
            self.error_raised.emit(title, message, details)

        if not self._closed:
            self.tasks.submit(fn, done, failed)

    # -- the render service -------------------------------------------------------------
    def start_service(self) -> None:
        """Take the render lock and start the service paused (Start queue lets it run)."""
        if self.service is not None and self.service.running:
            return

        from sdk.errors import ProjectLocked

        def work() -> "RenderService":
            from sdk.service import RenderService

            from app.settings import render_setting

            executors = None
            if render_setting("farm"):  # a render farm (Ray) instead of this machine's devices
                from sdk.farm import farm_executors

                executors = farm_executors(render_setting("farm"))
            svc = RenderService(self.project, registry=self.registry, grace_period=self.grace_period,
                                holder="VGen Studio", device=render_setting("device"), executors=executors)
            svc.subscribe(self.bridge.on_event)
            svc.pause()
            try:
                svc.start()  # raises ProjectLocked when another process renders this project
            except ProjectLocked:
                from sdk.store.lock import read_holder

                self.lock_holder = read_holder(self.project.path / ".lock")
                raise
            return svc

        def done(svc: "RenderService") -> None:
            if self._closed:
                svc.stop()
                return
            self.service = svc
            self.lock_message = ""
            if self._want_running:
                svc.resume()
            self._set_state(RUNNING if self._want_running else PAUSED)
            self.jobs_changed.emit()  # jobs left RUNNING by a dead renderer went back to the queue

        def failed(exc: BaseException) -> None:
            message, details = describe_error(exc)
            if isinstance(exc, ProjectLocked):
                self.lock_message = message
                self._set_state(LOCKED)
                self.error_raised.emit("Project is rendered elsewhere",
                                       message + " You can still edit the project and queue jobs; "
                                       "that process renders them.", details)
            else:
                self._set_state(STOPPED)
                self.error_raised.emit("Cannot start rendering", message, details)

        self.tasks.submit(work, done, failed)

    def restart_service(self) -> bool:
        """Start the render service again so that a changed device setting applies, keeping the queue paused or
        running. While a job renders nothing stops: the restart waits for the next Start queue (returns False)."""
        svc = self.service
        if self._closed or self.state == LOCKED:
            return True
        if svc is None or not svc.running:
            self.service = None
            self.start_service()
            return True
        if svc.running_jobs:
            self._restart_pending = True
            return False
        self._restart_pending = False
        self.service = None
        self.tasks.submit(svc.stop, lambda _: self.start_service(),
                          lambda exc: self.error_raised.emit("Cannot restart rendering", *describe_error(exc)))
        return True

    def start_queue(self) -> None:
        self._want_running = True
        if self._restart_pending and self.service is not None and not self.service.running_jobs:
            self.restart_service()
            return
        if self.service is None or not self.service.running:
            self.start_service()
            return
        self.service.resume()
        self._set_state(RUNNING)

    def pause_queue(self) -> None:
        self._want_running = False
        if self.service is not None:
            self.service.pause()
            self._set_state(PAUSED)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.render_state_changed.emit(state)

    # -- queue ------------------------------------------------------------------------------
    def queue(self, spec_id: str, start: bool = False, **request: Any) -> None:
        """Validate and queue a batch (``sdk.queueing.plan_jobs`` arguments, e.g. ``kind="train"``); optionally start
        the queue. A refused request (InvalidRequest, WeightsMissing) comes back as ``error_raised``."""
        if request.get("kind") != "train" and "options" not in request:
            from app.settings import render_setting

            request["options"] = {k: render_setting(k) for k in ("precision", "memory_mode")}

        def work() -> Any:
            from sdk.queueing import queue_jobs

            return queue_jobs(self.project, self.registry, spec_id, **request)

        def done(batch: Any) -> None:
            self.jobs_queued.emit(batch)
            if start:
                self.start_queue()

        self.call(work, done, "Cannot queue these jobs", self.jobs_changed.emit)

    def requeue(self, source: Any, start: bool = False, **overrides: Any) -> None:
        """Queue a job again (``sdk.requeue``): ``source`` is a job id, an output folder, its meta.json or a rendered
        MP4 (a file dropped on the window), with optional ``overrides`` (params, seeds, options …)."""
        def work() -> Any:
            return self.project.requeue(source, registry=self.registry, **overrides)

        def done(batch: Any) -> None:
            self.jobs_queued.emit(batch)
            if start:
                self.start_queue()

        self.call(work, done, "Cannot re-queue this", self.jobs_changed.emit)

    def export(self, output_dir: Path, dest: Path, fmt: str, on_done: Callable[[Any], None] | None = None) -> None:
        def work() -> Path:
            from sdk.outputs import export

            return export(output_dir, dest, fmt, overwrite=True)

        self.call(work, on_done, "Cannot export")

    def cancel(self, job_id: str) -> None:
        svc = self.service
        self.call(lambda: svc.cancel(job_id) if svc is not None else self.project.request_cancel(job_id),
                  title="Cannot cancel", changed=self.jobs_changed.emit)

    def retry(self, job_id: str) -> None:
        self.call(lambda: self.project.retry(job_id), title="Cannot retry", changed=self.jobs_changed.emit)

    def move(self, job_id: str, delta: int) -> None:
        self.call(lambda: self.project.move(job_id, delta), title="Cannot move", changed=self.jobs_changed.emit)

    # -- several jobs at once, undoable for a few seconds (UndoStack) ---------------------------------------
    def cancel_jobs(self, job_ids: list[str] | None = None) -> None:
        """Cancel these jobs (None: every queued and running job: Cancel all); undoable."""
        def done(changed: list[str]) -> None:
            if not changed:
                return
            what = f"all {plural(len(changed), 'job')}" if job_ids is None else plural(len(changed), "job")
            self.undo.push(f"Cancelled {what}.", "Cancel all" if job_ids is None else "Cancel",
                           lambda: self._restore(changed))

        self.call(lambda: self.project.cancel_jobs(job_ids), done, "Cannot cancel", self.jobs_changed.emit)

    def clear_queued(self) -> None:
        """Take every queued job out of the queue; undoable, deleted for good when the undo expires."""
        def done(cleared: list[str]) -> None:
            if cleared:
                self._hide_undoable(cleared, [], f"Removed {plural(len(cleared), 'queued job')} from the queue.",
                                    "Clear queued")

        self.call(lambda: self.project.clear_queued(), done, "Cannot clear the queue", self.jobs_changed.emit)

    def clear_finished(self) -> None:
        """Remove failed and cancelled jobs from the list (outputs stay); undoable."""
        def done(ids: list[str]) -> None:
            if ids:
                self._hide_undoable([], ids, f"Cleared {plural(len(ids), 'finished job')}.", "Clear finished")

        self.call(self.project.finished_job_ids, done, "Cannot clear")

    def delete_jobs(self, job_ids: list[str]) -> None:
        """Delete these jobs: queued ones leave the queue, failed and cancelled ones the list; running and done
        ones are kept (a done job's output is deleted in the Gallery). Undoable."""
        def work() -> tuple[list[str], list[str], int]:
            cleared = self.project.clear_queued(job_ids)
            finished = [j for j in self.project.finished_job_ids() if j in set(job_ids) and j not in cleared]
            return cleared, finished, len(set(job_ids) - set(cleared) - set(finished))

        def done(result: tuple[list[str], list[str], int]) -> None:
            cleared, finished, kept = result
            note = (f" {plural(kept, 'running or done job')} kept: cancel a running job first; a done job's "
                    "output is deleted in the Gallery." if kept else "")
            if cleared or finished:
                self._hide_undoable(cleared, finished, f"Deleted {plural(len(cleared) + len(finished), 'job')}."
                                    + note, "Delete")
            elif kept:
                self.error_raised.emit("Nothing deleted", note.strip(), "")

        self.call(work, done, "Cannot delete", self.jobs_changed.emit)

    def retry_jobs(self, job_ids: list[str]) -> None:
        """Queue these failed or cancelled jobs again, in their order, at the end of the queue (others are skipped)."""
        def work() -> None:
            for job in [j for j in self.project.jobs(("FAILED", "CANCELLED")) if j.id in set(job_ids)]:
                self.project.retry(job.id)

        self.call(work, title="Cannot retry", changed=self.jobs_changed.emit)

    def _hide_undoable(self, cleared: list[str], finished: list[str], message: str, name: str) -> None:
        ids = cleared + finished
        self._set_hidden(self.hidden | set(ids))

        def undo() -> None:
            if cleared:
                self._restore(cleared, then=lambda: self._set_hidden(self.hidden - set(ids)))
            else:
                self._set_hidden(self.hidden - set(ids))

        def commit() -> None:
            # the deleted stay hidden (they are gone: showing them until the reload would flash them back); the
            # ones that were not deleted (retried elsewhere meanwhile) show again
            self.call(lambda: self.project.delete_jobs(ids),
                      lambda deleted: self._set_hidden(self.hidden - (set(ids) - set(deleted))),
                      "Cannot delete the jobs", self.jobs_changed.emit)

        self.undo.push(message, name, undo, commit)

    def _restore(self, ids: list[str], then: Callable[[], None] | None = None) -> None:
        def work() -> list[str]:
            running = [j.id for j in self.project.jobs("RUNNING") if j.id in set(ids)]
            self.project.restore_queued(ids)
            return running

        def done(running: list[str]) -> None:
            # a running job whose worker was already told to stop ends CANCELLED: it goes back once it has
            self._restore_when_cancelled |= set(running)
            if then is not None:
                then()

        self.call(work, done, "Cannot undo", self.jobs_changed.emit)

    def _set_hidden(self, ids: "set[str] | frozenset[str]") -> None:
        if frozenset(ids) != self.hidden:
            self.hidden = frozenset(ids)
            self.hidden_changed.emit(self.hidden)
            self.jobs_changed.emit()  # counts (status bar, title) are made on the next reload

    # -- catalog ----------------------------------------------------------------------------
    def add_subject(self, name: str, images: list[Path], token: str | None = None,
                    masks: list[Path | None] | None = None, on_done: Callable[[Any], None] | None = None,
                    on_failed: Callable[[BaseException], None] | None = None) -> None:
        """Add a subject in the background; ``on_done(record)`` after, or ``on_failed(exc)`` instead of an error
        box (the New subject dialog shows the error itself and keeps the form)."""
        self._catalog_call(lambda: self.project.add_subject(name, images, token=token or None, masks=masks),
                           "subjects", "Cannot add the subject", on_done, on_failed)

    def jobs_using(self, kind: str, ident: int, on_done: Callable[[Any], None]) -> None:
        """``on_done(list of JobRecord)``: the queued and running jobs that need this subject or motion."""
        self.call(lambda: self.project.jobs_using(**{kind: ident}), on_done, f"Cannot check the {kind}")

    def remove_target(self, kind: str, ident: int, cascade: bool = False,
                      on_done: Callable[[Any], None] | None = None) -> None:
        """Remove a subject or motion (``kind``); with ``cascade`` the queued jobs that need it are cancelled.
        ``on_done(cancelled job ids)``. A refusal (a job started meanwhile) comes back as ``error_raised``."""
        remove = self.project.remove_subject if kind == "subject" else self.project.remove_motion

        def done(cancelled: Any) -> None:
            self.catalog_changed.emit("adapters")  # its adapters went with it
            if cancelled:
                self.jobs_changed.emit()
            if on_done is not None:
                on_done(cancelled)

        self._catalog_call(lambda: remove(ident, cascade=cascade), kind + "s", f"Cannot remove the {kind}", done)

    def _catalog_call(self, fn: Callable[[], Any], what: str, title: str, on_done: Callable[[Any], None] | None = None,
                      on_failed: Callable[[BaseException], None] | None = None) -> None:
        def done(result: Any) -> None:
            self.catalog_changed.emit(what)
            if on_done is not None:
                on_done(result)

        def failed(exc: BaseException) -> None:
            if on_failed is not None:
                on_failed(exc)
            else:
                self.error_raised.emit(title, *describe_error(exc))

        if not self._closed:
            self.tasks.submit(fn, done, failed)

    def add_motion(self, name: str, videos: list[Path]) -> None:
        self.call(lambda: self.project.add_motion(name, videos), title="Cannot add the motion",
                  changed=lambda: self.catalog_changed.emit("motions"))

    def add_prompt(self, text: str, negative: str = "") -> None:
        self.call(lambda: self.project.add_prompt(text, negative), title="Cannot add the prompt",
                  changed=lambda: self.catalog_changed.emit("prompts"))

    def update_prompt(self, prompt_id: int, text: str | None = None, negative: str | None = None) -> None:
        self.call(lambda: self.project.update_prompt(prompt_id, text, negative), title="Cannot change the prompt",
                  changed=lambda: self.catalog_changed.emit("prompts"))

    def remove_prompt(self, prompt_id: int) -> None:
        self.call(lambda: self.project.remove_prompt(prompt_id), title="Cannot remove the prompt",
                  changed=lambda: self.catalog_changed.emit("prompts"))

    # -- events -------------------------------------------------------------------------------
    @Slot(str)
    def _on_bridge_job_event(self, job_id: str, *_: Any) -> None:
        self.jobs_changed.emit()

    @Slot(str, str, str, str)
    def _on_bridge_job_failed(self, job_id: str, *_: Any) -> None:
        self._restore_when_cancelled.discard(job_id)
        self.jobs_changed.emit()

    @Slot(str)
    def _on_bridge_job_cancelled(self, job_id: str) -> None:
        if job_id in self._restore_when_cancelled:
            self._restore_when_cancelled.discard(job_id)
            self._restore([job_id])
        self.jobs_changed.emit()

    @Slot(str)
    def _on_bridge_job_finished(self, job_id: str) -> None:
        self._restore_when_cancelled.discard(job_id)
        self.jobs_changed.emit()
        self.outputs_changed.emit()

    @Slot(str, str)
    def _on_bridge_queue_paused(self, reason: str, hint: str) -> None:
        self._want_running = False
        self._set_state(PAUSED)
        self.jobs_changed.emit()
        self.error_raised.emit("Queue paused", reason, hint)

    @Slot()
    def _on_poll_timeout(self) -> None:
        if self.service is not None and not self.service.running and self.state in (RUNNING, PAUSED):
            self.service = None
            self._set_state(STOPPED)
            self.error_raised.emit("Rendering stopped", "The render service stopped unexpectedly.",
                                   "See the log for details. Start the queue to try again.")
        if not self.tasks.busy:
            self.jobs_changed.emit()

    # -- closing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop rendering (a running job goes back to the queue) and close the project."""
        if self._closed:
            return
        self.undo.commit_all()  # what was cleared goes for good (a crash instead leaves it cancelled, never lost)
        self._closed = True
        self._poll.stop()
        self.tasks.wait()
        if self.service is not None:
            self.service.stop()
            self.service = None
        self.project.close()
