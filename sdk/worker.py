"""The worker process: imports torch and the plugins, keeps a model cache, runs one job at a time.

It is started as ``python -m sdk.worker --fd N`` by :class:`sdk.executor.LocalProcessExecutor`
and talks to its parent over one duplex socket (a multiprocessing ``Connection``):

- parent → worker: ``("start", payload)``, ``("cancel", job_id)``, ``("shutdown",)``
- worker → parent: ``("ready", info)`` once, then :mod:`sdk.events` objects.

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
from sdk.errors import JobCancelled, OutOfMemory, VGenError


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


def worker_main(conn: Any, device: str = "cpu", threads: int | None = None) -> None:
    """Entry point of the spawned worker process."""
    chan = _Channel(conn)
    t0 = time.monotonic()
    import torch  # noqa: PLC0415 - the worker is the only process that imports torch

    from sdk.context import ModelCache
    from sdk.plugins import load_plugins

    if threads:
        torch.set_num_threads(threads)
    registry = load_plugins()
    cache = ModelCache(budget_bytes=int(os.environ.get("VGEN_MODEL_CACHE_BYTES", 16 * 2**30)))
    instances: dict[str, Any] = {}
    chan.send(("ready", {"pid": os.getpid(), "startup_s": time.monotonic() - t0, "torch": torch.__version__}))
    while True:
        payload = chan.jobs.get()
        if payload is None or chan.parent_gone:
            break
        _run_job(payload, chan, registry, cache, instances, device)


def _run_job(payload: dict, chan: _Channel, registry: Any, cache: Any, instances: dict, device: str) -> None:
    from sdk.context import JobContext, JobRequest, MotionInput, SubjectInput
    from sdk.specs import load_entry

    job_id = payload["job_id"]
    staging = Path(payload["staging_dir"])
    started = time.monotonic()
    try:
        chan.send(ev.JobStarted(job_id, kind=payload["kind"], spec_id=payload["spec_id"]))
        spec = registry.spec(payload["spec_id"])
        params = spec.params.model_validate(payload["params"])
        inputs = dict(payload.get("inputs") or {})
        if "subject" in inputs:
            s = inputs["subject"]
            inputs["subject"] = SubjectInput(s["name"], s["token"], [Path(p) for p in s["images"]],
                                             [Path(m) if m else None for m in s.get("masks", [])])
        if "motion" in inputs:
            m = inputs["motion"]
            inputs["motion"] = MotionInput(m["name"], [Path(p) for p in m["videos"]])
        if "image" in inputs:
            inputs["image"] = Path(inputs["image"])
        request = JobRequest(
            job_id=job_id, kind=payload["kind"], spec_id=spec.id, params=params, seed=int(payload["seed"]),
            inputs=inputs, weights=Path(payload["weights"]) if payload.get("weights") else None,
            weights_id=payload.get("weights_id"),
        )
        ctx = JobContext(job_id, chan.send, staging_dir=staging, models=cache, device=device,
                         cancel_flag=lambda: job_id in chan.cancelled or chan.parent_gone,
                         preview_every=int(payload.get("preview_every", 1)),
                         resume_from=payload.get("resume_from"), resume_step=int(payload.get("resume_step") or 0))
        if spec.id not in instances:
            instances[spec.id] = load_entry(spec.entry)()
        runner = instances[spec.id]
        if payload["kind"] == "train":
            runner.train(ctx, request)
            video = None
        else:
            video = runner.generate(ctx, request)
        ctx.check_cancelled()
        meta = dict(payload.get("meta") or {})
        meta.setdefault("timings", {})["run_s"] = round(time.monotonic() - started, 4)
        if video is not None:
            from sdk.outputs import write_output

            meta["num_frames"], meta["fps"] = video.num_frames, video.fps
            meta["width"], meta["height"] = video.size
            write_output(staging, video, meta)
        else:
            import json

            staging.mkdir(parents=True, exist_ok=True)
            (staging / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        chan.send(ev.JobFinished(job_id, output_dir=str(staging)))
    except JobCancelled:
        chan.send(ev.JobCancelled(job_id))
    except VGenError as exc:
        chan.send(ev.JobFailed(job_id, message=exc.user_message, hint=exc.hint, traceback=traceback.format_exc()))
    except Exception as exc:  # process boundary: every failure is reported, the worker lives on
        message, hint = _describe(exc)
        chan.send(ev.JobFailed(job_id, message=message, hint=hint, traceback=traceback.format_exc()))
    finally:
        chan.cancelled.discard(job_id)


def _describe(exc: BaseException) -> tuple[str, str]:
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError":
        oom = OutOfMemory(
            "The device ran out of memory.",
            hint="Lower height/width/num_frames, set decode_chunk_size=1, or use a lower-memory mode (fp16/bf16, CPU offload).",
        )
        return oom.user_message, oom.hint
    return text, "See the job log (`vgen jobs show PROJECT JOB`) for the traceback."


def main(argv: list[str] | None = None) -> None:
    import argparse
    from multiprocessing.connection import Connection

    ap = argparse.ArgumentParser(prog="python -m sdk.worker")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    worker_main(Connection(a.fd), a.device, a.threads)


if __name__ == "__main__":
    main()
