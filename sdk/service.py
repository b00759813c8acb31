"""RenderService: the scheduler and the only writer of running-job state (DESIGN §2).

It takes the render lock of a project, recovers jobs a dead service left RUNNING, then feeds
queued jobs one at a time to an executor (a spawned worker process by default), turns the
worker's events into database updates, and hands every event to its subscribers. A worker that
dies, hangs (no heartbeat), ignores a cancel or runs out of memory fails (or cancels) its job,
never the service. A full disk fails the job and pauses the queue with the reason; a stored job
that fails validation is FAILED with the reason and the queue moves on.

The service never imports torch: only the worker does.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

from sdk import events as ev
from sdk.diskspace import MIN_FREE_BYTES, check_free, disk_full, is_disk_full
from sdk.errors import DiskFull, VGenError
from sdk.executor import LocalProcessExecutor, WorkerDied, describe_exit

if TYPE_CHECKING:
    from sdk.executor import Executor
    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.records import JobRecord

log = logging.getLogger("vgen.service")


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
Subscriber = Callable[[ev.Event], None]


class RenderService:
    """Runs a project's queue.

    Parameters: ``project`` (an open :class:`sdk.Project`), ``registry`` (defaults to the installed
    plugins), ``device`` (``auto``, ``cpu``, ``mps``, ``cuda``, ``cuda:N`` or a comma-separated list: one
    worker per device, all pulling from the one queue; checked against this machine before anything
    starts), ``executor``/``executors`` (instead of ``device``: the executor(s) to run jobs on),
    ``grace_period`` seconds a cancelled job gets before its worker is terminated, then killed;
    ``hang_timeout`` seconds of worker silence (no heartbeat, no event) after which the job fails as hung
    and the worker is killed; ``heartbeat`` seconds between the worker's heartbeats (default 5);
    ``min_free_bytes`` free space a job needs on the project's disk to start.

    Raises :class:`InvalidRequest` (field ``device``) for a device this machine lacks, naming those it has.
    """

    def __init__(
        self,
        project: "Project",
        *,
        registry: "PluginRegistry | None" = None,
        executor: "Executor | None" = None,
        executors: "list[Executor] | None" = None,
        device: str = "auto",
        grace_period: float = 10.0,
        hang_timeout: float = 120.0,
        heartbeat: float | None = None,
        poll_interval: float = 0.2,
        progress_write_interval: float = 0.5,
        holder: str = "",
        min_free_bytes: int | None = None,
    ) -> None:
        from sdk.devices import parse_devices
        from sdk.plugins import load_plugins

        self.project = project
        self.registry = registry or load_plugins()
        if executors:
            self.executors: list[Executor] = list(executors)
        elif executor is not None:
            self.executors = [executor]
        else:
            self.executors = [LocalProcessExecutor(d, heartbeat=heartbeat) for d in parse_devices(device)]
        self.grace_period = grace_period
        self.hang_timeout = hang_timeout
        #: no job starts with less free space than this on the project's disk
        self.min_free_bytes = MIN_FREE_BYTES if min_free_bytes is None else int(min_free_bytes)
        self.poll_interval = poll_interval
        self.progress_write_interval = progress_write_interval
        self.holder = holder or f"RenderService on {socket.gethostname()}"
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_handle: Any = None
        #: job id → the executor running it (one per device)
        self._running: dict[str, Executor] = {}
        self._stats_lock = threading.Lock()
        self.stats = {"succeeded": 0, "failed": 0, "cancelled": 0}
        #: job id → why no executor can run it (it stays QUEUED; a farm without the device it needs)
        self.unschedulable: dict[str, str] = {}
        #: why the service paused itself (a full disk), or "" — the user's own pause() leaves it empty
        self.pause_reason = ""

    @property
    def executor(self) -> "Executor":
        """The first device's executor (the only one unless several devices were given)."""
        return self.executors[0]

    @property
    def current_job(self) -> str | None:
        """A running job's id (the first device's when several run), or None."""
        running = list(self._running)
        return running[0] if running else None

    @property
    def running_jobs(self) -> list[str]:
        """Ids of the jobs running now, one per busy device."""
        return list(self._running)

    # -- subscribers --------------------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(event)`` for every event (from a service thread: one per device). Returns an unsubscribe."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def _publish(self, event: ev.Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:  # a broken view must not stop the queue
                log.exception("event subscriber failed")

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    # -- running ------------------------------------------------------------------------
    def run(self, *, until_empty: bool = True) -> dict[str, Any]:
        """Render queued jobs; return counts (and ``"paused"``: the reason, when a full disk paused the queue).

        With ``until_empty`` it returns once the queue is empty (or paused by a fault); otherwise it keeps
        watching for new jobs until :meth:`stop`. Several devices run one job each at a time."""
        self._acquire()
        try:
            others = [threading.Thread(target=self._slot, args=(ex, until_empty), name=f"vgen-render-{i + 1}",
                                       daemon=True) for i, ex in enumerate(self.executors[1:])]
            for t in others:
                t.start()
            self._slot(self.executors[0], until_empty)
            for t in others:
                t.join()
        finally:
            for ex in self.executors:
                ex.shutdown()
            self._release()
        stats: dict[str, Any] = dict(self.stats)
        if self.unschedulable:
            stats["unschedulable"] = dict(self.unschedulable)
        if self.pause_reason:
            stats["paused"] = self.pause_reason
        return stats

    def _slot(self, executor: "Executor", until_empty: bool) -> None:
        """One device's loop: claim the next queued job (atomically: no job runs twice), run it, repeat."""
        while not self._stop.is_set():
            if self._paused.is_set():
                if until_empty and self.pause_reason:
                    return  # a script or the CLI gets the reason back instead of waiting forever
                self._stop.wait(self.poll_interval)
                continue
            ready = getattr(executor, "ready", None)
            if callable(ready) and not ready():
                return  # a farm worker gone for good (it says why): the other slots take the queue
            try:
                check_free(self.project.path, self.min_free_bytes)
                job = self._claim(executor)
            except Exception as exc:  # a resource fault between jobs: pause, never crash
                if not self._pause_for(exc, None, executor):
                    raise
                continue
            if job is None:
                if until_empty:
                    return
                self._stop.wait(self.poll_interval)
                continue
            self._run_one(job, executor)

    def _claim(self, executor: "Executor") -> "JobRecord | None":
        """The next job for ``executor``. Scheduling hooks an executor may have (a farm's actors do): ``accepts(job)``
        → None or why it cannot run that job (a job no executor accepts stays QUEUED, with the reason noted for
        `vgen queue list`); ``affinity``: the weights of its last job, preferred so its model cache pays."""
        accepts = getattr(executor, "accepts", None)
        if not callable(accepts):
            return self.project.claim_next_job()
        refused: list["JobRecord"] = []

        def accept(job: "JobRecord") -> bool:
            if accepts(job) is None:
                return True
            refused.append(job)
            return False

        job = self.project.claim_next_job(accept=accept, prefer=getattr(executor, "affinity", None))
        for other in refused:  # outside the claim's transaction
            reasons = [r for r in (getattr(ex, "accepts", lambda j: None)(other) for ex in self.executors)]
            if all(reasons) and other.id not in self.unschedulable:
                self.unschedulable[other.id] = f"no farm worker can run this job: {reasons[0]}"
                self.project.note_waiting(other.id, self.unschedulable[other.id],
                                          "Add a worker with that device to the farm, or requeue the job with "
                                          "options this farm's devices support.")
                log.warning("job %s stays queued: %s", other.id, self.unschedulable[other.id])
        if job is not None and hasattr(executor, "affinity"):
            executor.affinity = job.weights
        return job

    def start(self) -> None:
        """Run the queue in a background thread until :meth:`stop` (for the GUI)."""
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._acquire()  # raise ProjectLocked here, in the caller's thread
        self._thread = threading.Thread(target=self.run, kwargs={"until_empty": False}, name="vgen-render", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after terminating the running job(s) (they go back to QUEUED: nothing is lost)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def pause(self) -> None:
        """Finish the running job, then take no new ones."""
        self._paused.set()

    def resume(self) -> None:
        self.pause_reason = ""
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self, job_id: str) -> None:
        """Cancel a queued job at once, or ask the running one to stop (grace period, then kill)."""
        job = self.project.request_cancel(job_id)
        executor = self._running.get(job.id)
        if executor is not None:
            executor.cancel_job(job.id)

    def _acquire(self) -> None:
        if self._lock_handle is None:
            # a full disk is refused up front, with the same message as mid-run
            check_free(self.project.path, self.min_free_bytes)
            self._lock_handle = self.project.acquire_render_lock(self.holder)
            try:
                recovered = self.project.requeue_running()
            except BaseException:
                self._release()
                raise
            if recovered:
                log.info("re-queued %d job(s) left RUNNING by a stopped service", recovered)

    def _release(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.release()
            self._lock_handle = None

    # -- one job ------------------------------------------------------------------------
    def _run_one(self, job: "JobRecord", executor: "Executor") -> None:
        self._running[job.id] = executor
        try:
            try:
                from sdk.payload import build_payload

                payload = build_payload(self.project, self.registry.spec(job.spec_id), job,
                                        device=getattr(executor, "device", "auto"))
            except Exception as exc:  # a stored recipe that no longer validates: that job fails, the queue goes on
                if is_disk_full(exc):
                    raise
                if isinstance(exc, VGenError):
                    self._fail(job.id, exc.user_message, exc.hint, "")
                else:
                    self._fail(job.id, f"This job's stored request is invalid ({type(exc).__name__}: {exc}).",
                               "Queue it again from the GUI or `vgen queue add`; the stored row may be damaged.",
                               traceback.format_exc())
                return
            executor.start_job(payload)
            self._pump(job, executor)
        except Exception as exc:  # boundary: a fault while running one job never stops the service
            if self._pause_for(exc, job.id, executor):
                return
            log.exception("job %s: unexpected error in the service", job.id)
            executor.terminate()
            self._try_fail(job.id, f"The render service failed on this job ({type(exc).__name__}: {exc}).",
                           "See the job log for the traceback; the queue goes on.", traceback.format_exc())
        finally:
            self._running.pop(job.id, None)

    def _pause_for(self, exc: BaseException, job_id: str | None, executor: "Executor") -> bool:
        """A full disk: stop the worker, drop the job's staging, fail the job (if the database can still take
        it), pause the queue and say why. Returns False for any other error (the caller handles it)."""
        if not (isinstance(exc, DiskFull) or is_disk_full(exc)):
            return False
        full = exc if isinstance(exc, DiskFull) else disk_full(self.project.path)
        if job_id is not None:
            executor.terminate()
            self._discard_staging(job_id)  # frees what the job wrote before anything else is tried
            if not self._try_fail(job_id, full.user_message, full.hint, "", reason="disk_full"):
                log.warning("job %s stays RUNNING until the disk has room; the next start re-queues it", job_id)
        self.pause_reason = full.user_message
        self._paused.set()
        log.warning("queue paused: %s", full.user_message)
        self._publish(ev.QueuePaused(job_id or "", reason=full.user_message, hint=full.hint))
        return True

    def _discard_staging(self, job_id: str) -> None:
        try:
            self.project.discard_staging(job_id)
        except Exception:  # best effort: the next start clears .staging/ anyway
            log.exception("could not clear the staging folder of job %s", job_id)

    def _try_fail(self, job_id: str, message: str, hint: str, tb: str, reason: str = "") -> bool:
        """Fail a job, reporting (not raising) if the database refuses the write. True if recorded."""
        try:
            self._fail(job_id, message, hint, tb, reason=reason)
            return True
        except Exception:
            log.exception("could not record the failure of job %s", job_id)
            return False

    def _pump(self, job: "JobRecord", executor: "Executor") -> None:
        job_id = job.id
        cancel_sent_at: float | None = None
        last_write = 0.0
        last_check = time.monotonic()
        while True:
            if self._stop.is_set():
                # The service is stopping: the job goes back to the queue, nothing is lost.
                executor.terminate()
                self.project.requeue_running()
                return
            try:
                event = executor.next_event(self.poll_interval)
            except WorkerDied as died:
                if cancel_sent_at is not None:
                    self._cancelled(job_id)
                else:
                    self._fail(job_id, str(died), "The next job starts a fresh worker. If this repeats, "
                               "lower the memory use (smaller size or fewer frames).", "", died.exit_code,
                               reason="crashed")
                return
            now = time.monotonic()
            if cancel_sent_at is None and (event is None or now - last_check > self.poll_interval):
                last_check = now
                if self.project.job(job_id).cancel_requested:
                    executor.cancel_job(job_id)
                    cancel_sent_at = now
            if cancel_sent_at is not None and now - cancel_sent_at > self.grace_period:
                code = executor.terminate()
                log.warning("job %s ignored cancel for %.1fs; worker stopped (%s)", job_id, self.grace_period,
                            describe_exit(code))
                self.project.add_log(job_id, "WARNING", f"ignored cancel; killed after {self.grace_period:g} s")
                self._cancelled(job_id)
                return
            silent = executor.silence()
            if cancel_sent_at is None and silent > self.hang_timeout:
                executor.terminate(grace=0.0)  # a stopped (SIGSTOP) or wedged process only dies by SIGKILL
                self._fail(job_id, f"worker hung (no heartbeat for {silent:.0f} s)",
                           f"The worker was killed and the queue goes on. If this repeats, raise the limit "
                           f"(now {self.hang_timeout:g} s: `vgen queue run --hang-timeout`) or look for a stuck "
                           "device driver.", "", reason="hung")
                return
            if event is None:
                continue
            if isinstance(event, ev.ProgressUpdated):
                if now - last_write > self.progress_write_interval or event.step == event.total:
                    self.project.set_progress(job_id, event.step, event.total)
                    last_write = now
            elif isinstance(event, ev.LogRecord):
                self.project.add_log(job_id, event.level, event.message)
            elif isinstance(event, ev.ArtifactSaved):
                # A checkpoint becomes an Adapter at once, so it survives a crash or cancel of its job.
                adapter = self.project.add_adapter(
                    event.name, event.meta.get("kind", job.spec_id), event.path, job_id=job_id, step=event.step,
                    subject_id=job.inputs.get("subject"), motion_id=job.inputs.get("motion"), meta=event.meta,
                    move=True)
                event.path = str(adapter.path)
            elif isinstance(event, ev.JobFinished):
                from sdk.conditions import publish_result  # per kind: an output, a condition, scores; auto metrics

                output = publish_result(self.project, self.registry, job, self.project.staging_dir(job_id))
                event.output_dir = str(output.dir) if output is not None else ""
                self._count("succeeded")
            elif isinstance(event, ev.JobFailed):
                if event.reason == "disk_full":  # fails the job and pauses the queue (publishes both)
                    self._pause_for(DiskFull(event.message, event.hint), job_id, executor)
                    return
                if event.reason == "out_of_memory" and self._retry_lighter(job, executor, event):
                    return
                self._fail(job_id, event.message, event.hint, event.traceback, publish=False, reason=event.reason)
            elif isinstance(event, ev.JobCancelled):
                self._cancelled(job_id, publish=False)
            self._publish(event)
            if isinstance(event, ev.TERMINAL):
                return

    def _retry_lighter(self, job: "JobRecord", executor: "Executor", event: ev.JobFailed) -> bool:
        """Out of memory: put the job back once, one memory mode lighter, for a fresh worker (True); or, after a
        retry or in the lightest mode, turn the event into a failure that gives the figures (False)."""
        from sdk.options import MEMORY_MODES

        used = str(event.details.get("memory_mode") or job.options.get("memory_mode") or "none")
        used = "none" if used == "auto" else used
        earlier = job.options.get("oom_retry")
        lighter = MEMORY_MODES[MEMORY_MODES.index(used) + 1] if used in MEMORY_MODES[1:-1] else None
        est = event.details.get("preflight") or {}
        figures = (f" The preflight estimated {_gb(est['total_bytes'])} needed and {_gb(est['available_bytes'])} "
                   f"available on {event.details.get('device', 'the device')}." if est.get("total_bytes") else "")
        if earlier or lighter is None:
            if event.details.get("preflight_refused"):
                return False  # the preflight's own message has the figures
            tried = f"memory_mode={earlier['from']} and then memory_mode={used}" if earlier else f"memory_mode={used}"
            event.message = f"Out of memory {'twice' if earlier else 'in the lightest mode'}: {tried}.{figures}"
            event.hint = ("Lower num_frames, height or width, use precision bf16/fp16 rather than fp32, or free "
                          "memory used by other programs.")
            return False
        executor.terminate()  # the retry starts in a fresh worker: nothing of the failed attempt stays resident
        message = (f"out of memory in memory_mode={used} ({event.message}); retrying once in memory_mode={lighter} "
                   f"in a fresh worker.{figures}")
        options = {**job.options, "memory_mode": lighter,
                   "oom_retry": {"from": used, "to": lighter, "error": event.message, "preflight": est}}
        self.project.requeue_job(job.id, options, message)
        log.warning("job %s: %s", job.id, message)
        self._publish(ev.JobRequeued(job.id, reason="out_of_memory", message=message))
        return True

    def _fail(self, job_id: str, message: str, hint: str, tb: str, exit_code: int | None = None,
              publish: bool = True, reason: str = "") -> None:
        self.project.fail_job(job_id, message, hint=hint, traceback=tb, exit_code=exit_code)
        self._count("failed")
        if publish:
            self._publish(ev.JobFailed(job_id, message=message, hint=hint, traceback=tb, exit_code=exit_code,
                                       reason=reason))

    def _cancelled(self, job_id: str, publish: bool = True) -> None:
        self.project.mark_cancelled(job_id)
        self._count("cancelled")
        if publish:
            self._publish(ev.JobCancelled(job_id))
