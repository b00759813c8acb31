"""What runs on a farm node: :class:`NodeWorker`, the body of one Ray actor per device.

The actor does not run job code in its own process: it drives the same worker subprocess a workstation uses
(:class:`sdk.executor.LocalProcessExecutor`, ``python -m sdk.worker``). Why: the worker protocol, model cache,
heartbeats, cancel and crash handling stay one implementation; torch and the plugins stay out of Ray's actor
process (whose threads and memory Ray owns); a cancel that the job ignores can kill the worker without killing
the actor; and ``--threads`` gives each CPU actor its own thread budget. If the actor's process dies, the worker
sees its socket close and stops at its next step.

Nothing the service holds crosses over but plain data: a :class:`~sdk.payload.WorkerPayload`, input files the node
lacks, and events back. Staging is node-local (a temporary folder) unless the farm uses a shared path; a finished
job's files travel back as the return value of :meth:`poll`, which Ray carries through its object store.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from sdk import events as ev

#: seconds a poll keeps collecting after the first event, so one Ray round trip carries several events
BATCH_S = 0.05
#: a single staged file larger than this is refused (the object store carries the rest; a video of a job is far less)
MAX_FILE_BYTES = 2 * 2**30


def node_name() -> str:
    """``hostname (ip)`` of this node, as job messages name it."""
    host = socket.gethostname()
    try:
        import ray

        ip = ray.util.get_node_ip_address()
    except Exception:  # outside Ray (a unit test calling the class directly): the hostname alone
        return host
    return f"{host} ({ip})"


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (what a finished job staged)."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            if path.stat().st_size > MAX_FILE_BYTES:
                raise OSError(f"{path.name} is larger than {MAX_FILE_BYTES >> 30} GB; use a shared staging path")
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path → bytes) under ``root``; a path that would leave ``root`` is refused."""
    base = root.resolve()
    for rel, data in files.items():
        dest = (base / rel).resolve()
        if base not in dest.parents:
            raise ValueError(f"refusing to write {rel!r} outside {base}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


class NodeWorker:
    """One device on one node (the Ray actor's class; :mod:`sdk.farm.executor` wraps it with ``ray.remote``)."""

    def __init__(self, device: str = "cpu", threads: int | None = None, heartbeat: float | None = None,
                 shared_staging: bool = False, models_dir: str | None = None) -> None:
        from sdk.executor import LocalProcessExecutor

        if models_dir:  # a test's second "node" on one machine; a real node keeps its own $VGEN_MODELS_DIR
            os.environ["VGEN_MODELS_DIR"] = models_dir
        self.device = device
        self.shared_staging = shared_staging
        self.worker = LocalProcessExecutor(device, threads=threads, heartbeat=heartbeat)
        self.node = node_name()
        self.scratch = Path(tempfile.mkdtemp(prefix="vgen-farm-"))
        self._lock = threading.Lock()
        self._job: Any = None
        self._staging: Path | None = None
        #: events made here rather than by the worker (weights missing on this node)
        self._pending: list[tuple[str, Any]] = []

    def info(self) -> dict[str, Any]:
        """Where this actor runs: node, pid, device, models directory."""
        from sdk.weights import models_dir

        return {"node": self.node, "pid": os.getpid(), "device": self.device, "models_dir": str(models_dir()),
                "worker_pid": self.worker.pid}

    def start(self, payload: Any, files: dict[str, bytes]) -> None:
        """Run ``payload`` (a WorkerPayload). ``files``: input files by their path on the service's machine,
        written here when this node lacks them."""
        from sdk.errors import WeightsMissing

        with self._lock:
            self._pending.clear()
            self._job = payload
            changes: dict[str, Any] = {}
            if not self.shared_staging:
                staging = self.scratch / "staging" / payload.job_id
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                changes["staging_dir"] = str(staging)
                self._staging = staging
            else:
                self._staging = Path(payload.staging_dir)
            if files:
                changes["inputs"] = self._localise_inputs(payload.inputs, files, payload.job_id)
            try:
                changes.update(self._local_weights(payload))
            except WeightsMissing as exc:
                self._pending += [("event", ev.JobStarted(payload.job_id, kind=payload.kind, spec_id=payload.spec_id)),
                                  ("event", ev.JobFailed(payload.job_id, message=exc.user_message, hint=exc.hint,
                                                         reason="weights_missing"))]
                return
            self.worker.start_job(dataclasses.replace(payload, **changes))

    def _local_weights(self, payload: Any) -> dict[str, Any]:
        """This node's own copy of the job's weights (by id from its models directory; a plain path must exist)."""
        from sdk import weights as w
        from sdk.errors import WeightsMissing

        if payload.weights_id:
            try:
                path, _ = w.resolve(payload.weights_id, None)
            except WeightsMissing as exc:
                raise WeightsMissing(f"Node {self.node} has no weights {payload.weights_id!r} in its models "
                                     f"directory {w.models_dir()} ({exc.user_message}).",
                                     hint=f"Copy them to every node: `vgen models push {payload.weights_id} --farm "
                                          "ADDRESS`, or install them on that node.") from None
            return {"weights": str(path)}
        if payload.weights and not Path(payload.weights).exists():
            raise WeightsMissing(f"Node {self.node} has no file or folder {payload.weights}.",
                                 hint="Register the weights under an id (`vgen models import`) and push them to the "
                                      "farm (`vgen models push ID --farm ADDRESS`), or put them on a shared path.")
        return {}

    def _localise_inputs(self, inputs: Any, files: dict[str, bytes], job_id: str) -> Any:
        """``inputs`` with each path in ``files`` that this node lacks replaced by a local copy."""
        where = self.scratch / "inputs" / job_id
        mapping: dict[str, str] = {}
        for i, (path, data) in enumerate(files.items()):
            if Path(path).exists():
                continue  # same machine, or a shared path
            dest = where / str(i) / Path(path).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            mapping[path] = str(dest)

        def swap(value: Any) -> Any:
            if isinstance(value, str):
                return mapping.get(value, value)
            if isinstance(value, list):
                return [swap(v) for v in value]
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            return value

        return swap(inputs)

    def poll(self, timeout: float) -> dict[str, Any]:
        """Events of the running job for up to ``timeout`` s: ``{"events": [...], "silence": s, "died": code|None,
        "files": {rel: bytes}|None}`` — ``files`` is the staged output, sent once the job finished."""
        from sdk.executor import WorkerDied

        out: dict[str, Any] = {"events": [], "died": None, "files": None, "node": self.node}
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            out["events"] = [e for _, e in pending]
            return out
        import time

        wait, until = timeout, None
        while True:
            try:
                event = self.worker.next_event(wait)
            except WorkerDied as died:
                out["died"] = died.exit_code if died.exit_code is not None else -1
                break
            if event is None:
                break
            # one round trip carries what the worker says in the next BATCH_S (a step's progress, preview and logs)
            until = until or time.monotonic() + BATCH_S
            wait = max(0.0, until - time.monotonic())
            if isinstance(event, ev.ArtifactSaved) and not self.shared_staging and self._staging is not None:
                event.meta = {**event.meta, "_farm_file": Path(event.path).read_bytes(),
                              "_farm_rel": _relative(Path(event.path), self._staging)}
            if isinstance(event, ev.JobFinished) and not self.shared_staging and self._staging is not None:
                out["files"] = read_tree(self._staging)
                shutil.rmtree(self._staging, ignore_errors=True)
            out["events"].append(event)
            if isinstance(event, ev.TERMINAL):
                break
        out["silence"] = self.worker.silence()
        return out

    def cancel(self, job_id: str) -> None:
        """Ask the worker to stop ``job_id`` at its next step."""
        self.worker.cancel_job(job_id)

    def terminate(self, grace: float = 2.0) -> int | None:
        """Stop the worker process (a new one starts with the next job)."""
        return self.worker.terminate(grace)

    def shutdown(self) -> None:
        self.worker.shutdown()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- weights push (sdk.farm.push) -----------------------------------------------------
    def receive_file(self, weights_id: str, rel: str, chunks: list[Any], sha256: str) -> str:
        """Write one weights file from object-store chunks into this node's staging area and check its sha256."""
        import hashlib

        import ray

        from sdk.weights import _ID_RE, models_dir

        if not _ID_RE.match(weights_id):
            raise ValueError(f"{weights_id!r} is not a weights id")
        dest_root = models_dir() / ".incoming" / weights_id
        dest = (dest_root / rel).resolve()
        if dest_root.resolve() not in dest.parents:
            raise ValueError(f"refusing to write {rel!r} outside {dest_root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(dest, "wb") as fh:
            for ref in chunks:
                data = ray.get(ref)
                digest.update(data)
                fh.write(data)
        if digest.hexdigest() != sha256:
            dest.unlink()
            raise ValueError(f"{rel}: sha256 mismatch on {self.node} (got {digest.hexdigest()}, sent {sha256})")
        return str(dest)

    def install_weights(self, weights_id: str, licence: str) -> str:
        """Move a fully received weights folder into this node's models directory and register it."""
        from sdk import weights as w

        src = w.models_dir() / ".incoming" / weights_id
        entry = w.import_weights(weights_id, src, copy=True, licence=licence)
        shutil.rmtree(src, ignore_errors=True)
        return f"{self.node}: {entry['path']}"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
