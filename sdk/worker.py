"""The worker process: imports torch and the plugins, keeps a model cache, runs one job at a time.

It is started as ``python -m sdk.worker --fd N`` by :class:`sdk.executor.LocalProcessExecutor`
and talks to its parent over one duplex socket (a multiprocessing ``Connection``):

- parent → worker: ``("start", payload)``, ``("cancel", job_id)``, ``("shutdown",)``
- worker → parent: ``("ready", info)`` once, ``("heartbeat", monotonic seconds)`` every ``--heartbeat`` seconds
  (from a thread, so a long step or a long load still beats), and :mod:`sdk.events` objects.

Nothing torch-typed crosses the pipe: the parent (the service) never imports torch.

Any exception becomes ``JobFailed(user_message, traceback)``; the worker itself keeps running.
"""
from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from sdk import events as ev
from sdk.errors import CancelRequested, OutOfMemory, VGenError

#: seconds between heartbeats (DESIGN §2: at least every 10 s)
HEARTBEAT_S = 5.0


class _Channel:
    """Thread-safe sender plus a reader thread that sets the cancel flag as soon as asked."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.jobs: "queue.Queue[dict | None]" = queue.Queue()
        self.cancelled: set[str] = set()
        #: set when the parent died: the running job stops at its next step and the worker exits
        self.parent_gone = False
        self.reader = threading.Thread(target=self._read, name="vgen-worker-reader", daemon=True)
        self.reader.start()

    def send(self, obj: Any) -> None:
        with self.lock:
            try:
                self.conn.send(obj)
            except (OSError, EOFError):
                self.parent_gone = True

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self.parent_gone = True  # parent went away: stop the job, shut down
                self.jobs.put(None)
                return
            if msg[0] == "start":
                self.jobs.put(msg[1])
            elif msg[0] == "cancel":
                self.cancelled.add(msg[1])
            elif msg[0] == "shutdown":
                self.jobs.put(None)
                return

    def beat_forever(self, interval: float) -> None:
        """Start the heartbeat thread: one ``("heartbeat", t)`` every ``interval`` seconds until the parent goes."""
        def beat() -> None:
            while not self.parent_gone:
                self.send(("heartbeat", time.monotonic()))
                time.sleep(interval)

        threading.Thread(target=beat, name="vgen-worker-heartbeat", daemon=True).start()


def worker_main(conn: Any, device: str = "auto", threads: int | None = None, heartbeat: float = HEARTBEAT_S) -> None:
    """Entry point of the spawned worker process."""
    chan = _Channel(conn)
    chan.beat_forever(heartbeat)  # before importing torch: a slow start-up is not a hang
    t0 = time.monotonic()
    import torch  # noqa: PLC0415 - the worker is the only process that imports torch

    from sdk.context import ModelCache
    from sdk.plugins import load_plugins

    from sdk.ml.device import resolve_device
    from sdk.ml.probe import describe

    if threads:
        torch.set_num_threads(threads)
    try:
        device = str(resolve_device(device))  # "auto" → cuda, mps or cpu, once for the worker's life
        info = describe(device)
    except Exception as exc:  # a device torch cannot use: every job fails with the reason, the service goes on
        device_error = f"The worker cannot use device {device!r}: {exc}"
        info = {"device": device, "error": device_error}
    else:
        device_error = ""
    registry = load_plugins()
    cache = ModelCache(budget_bytes=int(os.environ.get("VGEN_MODEL_CACHE_BYTES", 16 * 2**30)))
    instances: dict[str, Any] = {}
    # plain data only: torch.__version__ is a TorchVersion, whose unpickling would import torch in the service
    chan.send(("ready", {"pid": os.getpid(), "startup_s": time.monotonic() - t0, **info}))
    while True:
        payload = chan.jobs.get()
        if payload is None or chan.parent_gone:
            break
        if device_error:
            chan.send(ev.JobStarted(payload.job_id, kind=payload.kind, spec_id=payload.spec_id))
            chan.send(ev.JobFailed(payload.job_id, message=device_error, hint="Run `vgen doctor` to see the "
                                   "devices torch can use, and pick one with --device."))
            continue
        _run_job(payload, chan, registry, cache, instances, device, info)


#: what each job kind calls on the spec's entry object
_RUNNERS = {"generate": "generate", "train": "train", "extract": "extract", "score": "score"}


def _run_job(payload: Any, chan: _Channel, registry: Any, cache: Any, instances: dict, device: str,
             info: dict[str, Any]) -> None:
    from sdk.context import JobContext, JobRequest
    from sdk.params import validate_params
    from sdk.specs import load_entry

    job_id = payload.job_id
    staging = Path(payload.staging_dir)
    started = time.monotonic()
    runtime: dict[str, Any] = {}
    try:
        chan.send(ev.JobStarted(job_id, kind=payload.kind, spec_id=payload.spec_id))
        spec = registry.spec(payload.spec_id)
        params = validate_params(spec.params, payload.params, spec_id=spec.id)
        inputs = {f.name: f.materialize(payload.inputs[f.name]) for f in spec.fields if f.name in payload.inputs}
        if "adapters" in payload.inputs:
            inputs["adapters"] = payload.inputs["adapters"]
        request = JobRequest(job_id=job_id, kind=payload.kind, spec_id=spec.id, params=params, seed=int(payload.seed),
                             inputs=inputs, weights=Path(payload.weights) if payload.weights else None,
                             weights_id=payload.weights_id)
        from sdk.ml.runtime import plan_runtime

        try:
            plan = plan_runtime(payload, params, request.weights, device, cache)
        except OutOfMemory:
            runtime.update(memory_mode="minimum", preflight_refused=True)  # no lighter mode is left to try
            raise
        ctx = JobContext(job_id, chan.send, staging_dir=staging, models=cache, device=device, dtype=plan.dtype,
                         memory_mode=plan.memory_mode, quantization=plan.quantization, kind=payload.kind,
                         cancel_flag=lambda: job_id in chan.cancelled or chan.parent_gone,
                         preview_every=payload.preview_every, resume_from=payload.resume_from,
                         resume_step=payload.resume_step)
        ctx.runtime = runtime
        runtime.update(plan.record(info))
        for line in plan.log:
            ctx.log.info(line)
        if spec.id not in instances:
            instances[spec.id] = load_entry(spec.entry)()
        runner = getattr(instances[spec.id], _RUNNERS[payload.kind], None)
        if runner is None:
            raise VGenError(f"The plugin behind {spec.id} ({spec.entry}) has no {_RUNNERS[payload.kind]}() method.",
                            hint="This is a bug in that plugin: a spec of this kind must implement it.")
        try:
            result = runner(ctx, request)
        finally:
            ctx.finish()
        ctx.check_cancelled()
        meta = dict(payload.meta)
        meta.setdefault("timings", {})["run_s"] = round(time.monotonic() - started, 4)
        meta["runtime"] = dict(ctx.runtime)
        _write_result(spec, payload.kind, params, result, staging, meta)
        chan.send(ev.JobFinished(job_id, output_dir=str(staging)))
    except CancelRequested:
        chan.send(ev.JobCancelled(job_id))
    except Exception as exc:  # process boundary: every failure is reported, the worker lives on
        message, hint, reason = _describe(exc, staging)
        chan.send(ev.JobFailed(job_id, message=message, hint=hint, traceback=traceback.format_exc(), reason=reason,
                               details={k: v for k, v in runtime.items() if k in ("memory_mode", "preflight", "dtype",
                                                                               "device", "preflight_refused")}))
    finally:
        chan.cancelled.discard(job_id)


def _write_result(spec: Any, kind: str, params: Any, result: Any, staging: Path, meta: dict[str, Any]) -> None:
    """Check what the plugin returned and write it into the staging folder (the service publishes it)."""
    import json

    from sdk.outputs import check_video, write_output

    staging.mkdir(parents=True, exist_ok=True)
    if kind in ("generate", "extract"):
        video = check_video(spec, params, result)
        meta["num_frames"], meta["fps"] = video.num_frames, video.fps
        meta["width"], meta["height"] = video.size
        write_output(staging, video, meta)
        return
    if kind == "score":
        meta["scores"] = check_scores(spec, result)
    (staging / "meta.json").write_text(json.dumps(meta, indent=2, default=str))


def check_scores(spec: Any, result: Any) -> dict[str, float]:
    """A metric's result: a non-empty dict of names to finite numbers (VGenError naming the plugin otherwise)."""
    import math

    if not isinstance(result, dict) or not result or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v) for k, v in result.items()):
        raise VGenError(f"The metric {spec.id} ({spec.entry}) returned {type(result).__name__} {str(result)[:80]}, "
                        "not a dict of names to finite numbers.", hint="This is a bug in that plugin.")
    return {k: float(v) for k, v in result.items()}


def _describe(exc: BaseException, staging: Path) -> tuple[str, str, str]:
    """(message, hint, reason) of a failed job; ``reason`` names a known resource fault ("" otherwise)."""
    from sdk.diskspace import disk_full, is_disk_full

    if is_disk_full(exc):
        full = disk_full(staging.parent.parent if staging.parent.name == ".staging" else staging)  # the project
        return full.user_message, full.hint, "disk_full"
    if isinstance(exc, OutOfMemory):
        return exc.user_message, exc.hint, "out_of_memory"
    text = str(exc).lower()
    if ("out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text
            or type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError)):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        first = first.split("DefaultCPUAllocator: ", 1)[-1][:240]  # keep what was asked for, drop the C++ prefix
        oom = OutOfMemory(
            f"The device ran out of memory ({first}).",
            hint="Lower height/width/num_frames, set decode_chunk_size=1, or use a lighter memory_mode "
                 "(balanced, low, minimum) or precision bf16/fp16.",
        )
        return oom.user_message, oom.hint, "out_of_memory"
    if isinstance(exc, VGenError):
        return exc.user_message, exc.hint, ""
    return f"{type(exc).__name__}: {exc}", "See the job log (`vgen jobs show PROJECT JOB`) for the traceback.", ""


def main(argv: list[str] | None = None) -> None:
    import argparse
    from multiprocessing.connection import Connection

    ap = argparse.ArgumentParser(prog="python -m sdk.worker")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--heartbeat", type=float, default=HEARTBEAT_S, help="seconds between heartbeats")
    a = ap.parse_args(argv)
    worker_main(Connection(a.fd), a.device, a.threads, a.heartbeat)


if __name__ == "__main__":
    main()
