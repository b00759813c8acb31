"""RayExecutor: the :class:`sdk.executor.Executor` seam on a Ray actor (one actor per device).

The RenderService runs one slot thread per executor, as for local devices, and stays the only writer of job
state: this class only moves a payload to its actor, events back, and (unless staging is shared) a finished job's
files from the object store into the job's staging folder on the service's machine, before the service publishes
them exactly as it publishes a local worker's.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sdk import events as ev
from sdk.executor import WorkerDied


log = logging.getLogger("vgen.farm")
#: seconds a job waits for Ray to restart its actor before it fails
RESTART_WAIT_S = 60.0


class NodeLost(WorkerDied):
    """The actor (its process or its node) died mid-job; the message names the node."""

    def __init__(self, node: str, cause: str, exit_code: int | None = None) -> None:
        super().__init__(exit_code)
        self.node = node
        self.args = (f"The farm worker on node {node} was lost mid-job ({cause}). Ray restarts it if it can; "
                     "the other jobs go on.",)

    def __str__(self) -> str:
        return str(self.args[0])


def _input_files(inputs: Any) -> dict[str, bytes]:
    """The files an input refers to (plain strings that are existing files here), to copy to a node lacking them."""
    found: dict[str, bytes] = {}

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value.startswith("/") and len(value) < 4096:
                p = Path(value)
                if p.is_file():
                    found[value] = p.read_bytes()
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(inputs)
    return found


class RayExecutor:
    """Runs jobs on one Ray actor (:class:`sdk.farm.node.NodeWorker`); see :func:`sdk.farm.farm_executors`.

    ``resources``: what this actor holds (``{"GPU": 1}`` or ``{"CPU": 1}``) — :meth:`accepts` checks a job's
    device requirement against it. ``affinity`` is the weights of the last job it ran (the service prefers a queued
    job with the same weights, so the node's model cache pays)."""

    def __init__(self, actor: Any, *, device: str, node: str = "", shared_staging: bool = False,
                 call_timeout: float = 60.0) -> None:
        self.actor = actor
        self.device = device
        self.node = node
        self.shared_staging = shared_staging
        self.call_timeout = call_timeout
        self.affinity: str | None = None
        self._job: Any = None
        self._events: list[ev.Event] = []
        self._last_heard = 0.0
        self._inner_silence = 0.0
        self._died: int | None = None
        #: the actor was lost: :meth:`ready` checks that Ray brought it back before it takes a job
        self._suspect = False

    # -- scheduling -------------------------------------------------------------------------
    def accepts(self, job: Any) -> str | None:
        """None if this actor can run ``job``; else why not (its device requirement)."""
        from sdk.farm.scheduling import device_requirement, requirement_reason

        need = device_requirement(job)
        if need == "cuda" and not self.device.startswith("cuda"):
            return f"it needs a CUDA GPU ({requirement_reason(job)}) and this actor has {self.device}"
        return None

    def ready(self) -> bool:
        """False once the actor is gone for good (Ray gave up restarting it): the service then stops this slot and
        leaves the queue to the others. After a loss it waits for Ray's restart (up to RESTART_WAIT_S)."""
        if not self._suspect:
            return True
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        deadline = time.monotonic() + RESTART_WAIT_S
        while time.monotonic() < deadline:
            try:
                self.node = ray.get(self.actor.info.remote(), timeout=RESTART_WAIT_S)["node"]
                self._suspect = False
                return True
            except (ActorUnavailableError, GetTimeoutError):
                time.sleep(0.5)
            except RayActorError:
                break
        log.warning("the farm worker on node %s is gone for good; the other workers take the queue", self.node)
        return False

    # -- Executor protocol ------------------------------------------------------------------
    def start_job(self, payload: Any) -> None:
        self._job = payload
        self._events = []
        self._died = None
        files = {} if self.shared_staging else _input_files(payload.inputs)
        from ray.exceptions import ActorUnavailableError

        deadline = time.monotonic() + RESTART_WAIT_S
        while True:  # an actor Ray is restarting (it died with the last job) takes the next one once it is back
            try:
                self._call(self.actor.start.remote(payload, files), unavailable_raises=True)
                break
            except ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise NodeLost(self.node or "?", f"not back after {RESTART_WAIT_S:g} s") from None
                time.sleep(0.5)
        self._last_heard = time.monotonic()
        self._inner_silence = 0.0

    def _call(self, ref: Any, timeout: float | None = None, unavailable_raises: bool = False) -> Any:
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        try:
            try:
                return ray.get(ref, timeout=self.call_timeout if timeout is None else timeout)
            except (RayActorError, GetTimeoutError):
                self._suspect = True
                raise
        except ActorUnavailableError:
            if unavailable_raises:
                raise
            raise NodeLost(self.node or "?", "actor unavailable") from None
        except RayActorError as exc:
            raise NodeLost(self.node or "?", type(exc).__name__) from None
        except GetTimeoutError:
            raise NodeLost(self.node or "?", f"no answer in {self.call_timeout:g} s") from None

    def cancel_job(self, job_id: str) -> None:
        try:
            self.actor.cancel.remote(job_id)  # the actor is threaded: this runs while a poll waits
        except Exception:  # an actor that is gone: the next poll reports it
            pass

    def next_event(self, timeout: float) -> ev.Event | None:
        """The next event of the running job, None on timeout; raises :class:`NodeLost` if the actor died."""
        if self._events or self._died is not None:
            return self._next_or_died()
        if self._job is None:
            return None
        reply = self._call(self.actor.poll.remote(timeout), timeout=timeout + self.call_timeout)
        self._last_heard = time.monotonic()
        self._inner_silence = float(reply.get("silence", 0.0))
        self.node = reply.get("node") or self.node
        events = list(reply["events"])
        for event in events:
            if isinstance(event, ev.ArtifactSaved) and "_farm_file" in event.meta:
                dest = Path(self._job.staging_dir) / event.meta.pop("_farm_rel")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(event.meta.pop("_farm_file"))
                event.path = str(dest)
            if isinstance(event, ev.JobFinished):
                if reply.get("files") is not None:
                    from sdk.farm.node import write_tree

                    write_tree(Path(self._job.staging_dir), reply["files"])
                event.output_dir = self._job.staging_dir
        self._events = events
        if reply.get("died") is not None and not any(isinstance(e, ev.TERMINAL) for e in events):
            self._died = int(reply["died"])  # the events it sent before dying come first
        return self._next_or_died()

    def _next_or_died(self) -> ev.Event | None:
        if self._events:
            return self._events.pop(0)
        if self._died is not None:
            from sdk.executor import describe_exit

            code, self._died = self._died, None
            self._suspect = True
            raise NodeLost(self.node, describe_exit(code), code)
        return None

    def silence(self) -> float:
        """Seconds the worker has been silent: what the actor last reported, plus the time since that report."""
        if self._job is None:
            return 0.0
        return self._inner_silence + (time.monotonic() - self._last_heard)

    def terminate(self, grace: float = 2.0) -> int | None:
        try:
            return self._call(self.actor.terminate.remote(grace), timeout=grace + self.call_timeout)
        except NodeLost:
            return None
        finally:
            self._job = None

    def shutdown(self) -> None:
        import ray

        try:
            self._call(self.actor.shutdown.remote(), timeout=10)
        except NodeLost:
            pass
        ray.kill(self.actor, no_restart=True)
