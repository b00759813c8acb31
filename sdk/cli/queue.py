"""``vgen queue|train|jobs|outputs``: queueing, rendering and what came out."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sdk.cli._common import _p, cmd, group, open_project, print_json


def _queue(a: argparse.Namespace, spec_id: str, kind: str | None) -> int:
    from sdk.params import parse_param_assignments
    from sdk.plugins import load_plugins
    from sdk.queueing import queue_jobs

    params = parse_param_assignments(a.param or [])
    with open_project(a.path) as p:
        prompts: list = list(getattr(a, "prompt", None) or [])
        if getattr(a, "all_prompts", False):
            prompts += [(pr.text, pr.negative) for pr in p.prompts()]
        then = {"then": a.then, "then_params": parse_param_assignments(a.then_param or []),
                "then_weights": a.then_weights} if getattr(a, "then", None) else {}
        batch = queue_jobs(p, load_plugins(), spec_id, kind=kind, prompts=prompts, seeds=a.seeds, params=params,
                           inputs=_inputs(a), weights=a.weights, options=_run_options(a), **then)
    from sdk.safe_text import printable

    for warning in batch.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    print(f"Queued {len(batch.job_ids)} job(s) in batch {batch.id}: {' '.join(batch.job_ids)}")
    return 0


def _inputs(a: argparse.Namespace) -> dict[str, Any]:
    """``--input NAME=VALUE`` (repeat a name for a grid axis) and the shorthands ``--image``, ``--subject``,
    ``--motion``, as the spec's typed input fields take them."""
    from sdk.errors import InvalidRequest

    out: dict[str, list[str]] = {}
    for item in getattr(a, "input", None) or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidRequest(f"--input {item!r} is not NAME=VALUE.",
                                 hint="Write e.g. --input image=cat.png or --input video=JOB_ID.", field="input")
        out.setdefault(name.strip(), []).append(value.strip())
    for name in ("image", "subject", "motion"):
        for value in ([getattr(a, name)] if isinstance(getattr(a, name, None), str) else getattr(a, name, None) or []):
            out.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def _run_options(a: argparse.Namespace) -> dict[str, list[str]]:
    """``--precision`` / ``--memory-mode`` (comma lists are grid axes), as :mod:`sdk.options` names them."""
    out = {}
    for key, value in (("precision", a.precision), ("memory_mode", a.memory_mode)):
        if value:
            out[key] = [v.strip() for v in str(value).split(",") if v.strip()]
    return out


def cmd_queue_add(a: argparse.Namespace) -> int:
    return _queue(a, a.generator, None)


def cmd_train(a: argparse.Namespace) -> int:
    return _queue(a, a.trainer, "train")


def cmd_queue_run(a: argparse.Namespace) -> int:
    from sdk import events as ev
    from sdk.service import RenderService

    with open_project(a.path) as p:
        executors = None
        if a.farm:
            from sdk.farm import farm_executors  # Ray only when asked for; fails within 10 s, jobs stay queued

            executors = farm_executors(a.farm)
        service = RenderService(p, device=a.device, grace_period=a.grace, hang_timeout=a.hang_timeout,
                                executors=executors)
        bar = _ProgressPrinter(p) if not a.json else None

        def on_event(event: ev.Event) -> None:
            if a.json:
                print(json.dumps(event.to_dict(), default=str), flush=True)
            else:
                bar.on_event(event)

        service.subscribe(on_event)
        stats = service.run(until_empty=True)
        if not a.json:
            print(f"Done: {stats['succeeded']} succeeded, {stats['failed']} failed, {stats['cancelled']} cancelled.")
            if stats.get("paused"):
                print(f"Queue paused: {_p(stats['paused'])}", file=sys.stderr)
            for jid, why in (stats.get("unschedulable") or {}).items():
                print(f"Job {_p(jid)} stays queued: {_p(why)}", file=sys.stderr)
            outs = p.outputs()
            if outs:
                print(f"Outputs are in {_p(p.path / 'outputs')}")
    return 0 if stats["failed"] == 0 and not stats.get("paused") else 1


class _ProgressPrinter:
    """One progress bar per job on a terminal; one line per finished job otherwise."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self.tty = sys.stderr.isatty()

    def on_event(self, event: Any) -> None:
        from sdk import events as ev

        jid = event.job_id
        if isinstance(event, ev.JobStarted):
            job = self.project.job(jid)
            label = _p((job.prompt or job.spec_id)[:40])
            print(f"[{jid}] {_p(job.spec_id)} seed {job.seed}: {label}", file=sys.stderr, flush=True)
        elif isinstance(event, ev.ProgressUpdated) and self.tty:
            n = 30
            done = int(n * event.step / max(1, event.total))
            eta = f" ETA {event.eta_s:.0f}s" if event.eta_s is not None else ""
            loss = "".join(f" {k} {v:.4g}" for k, v in event.metrics.items())
            print(f"\r  {'█' * done}{'░' * (n - done)} {event.step}/{event.total}{eta}{loss}   ", end="",
                  file=sys.stderr, flush=True)
        elif isinstance(event, ev.JobFinished):
            from sdk.cli.conditions import finished_line  # an output, a condition, or scores

            end = "\n" if self.tty else ""
            print(f"{end}  done → {finished_line(self.project, jid, event.output_dir)}", file=sys.stderr, flush=True)
        elif isinstance(event, ev.JobFailed):
            print(f"\n  FAILED: {_p(event.message)}" + (f"\n  hint: {_p(event.hint)}" if event.hint else ""),
                  file=sys.stderr)
        elif isinstance(event, ev.QueuePaused):
            print(f"\n  queue paused: {_p(event.reason)}" + (f"\n  hint: {_p(event.hint)}" if event.hint else ""),
                  file=sys.stderr)
        elif isinstance(event, ev.JobCancelled):
            print("\n  cancelled", file=sys.stderr)


def cmd_queue_list(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        jobs = p.jobs()
        waiting = {j.id: p.waiting_for(j) for j in jobs if j.depends_on and not j.problem}
    if a.json:
        print_json([{**j.to_dict(), "waiting_for": waiting.get(j.id, [])} for j in jobs])
        return 0
    print(f"{'JOB':<13} {'STATUS':<10} {'GENERATOR':<24} {'SEED':>6} {'STEP':>9}  PROMPT")
    for j in jobs:
        step = f"{j.progress_step}/{j.progress_total}" if j.progress_total else ""
        status = "INVALID" if j.problem else j.status.value
        print(f"{_p(j.id):<13} {status:<10} {_p(j.spec_id):<24} {_p(j.seed):>6} {step:>9}  {_p((j.prompt or '')[:50])}")
        if j.problem:
            print(f"{'':<13} ↳ the stored row is invalid: {_p(j.problem)}")
        if waiting.get(j.id):
            print(f"{'':<13} ↳ waiting for {', '.join(waiting[j.id])} (it takes what they make)")
        if j.status.value == "QUEUED" and j.error_message:  # a scheduler's note: why no worker took it
            print(f"{'':<13} ↳ waiting: {_p(j.error_message)}")
    return 0


def cmd_queue_cancel(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        j = p.request_cancel(a.job)
    print(f"Job {_p(j.id)}: {'cancel requested' if j.status.value == 'RUNNING' else j.status.value}")
    return 0


def cmd_queue_retry(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        j = p.retry(a.job)
    print(f"Job {_p(j.id)} queued again")
    return 0


def cmd_queue_clear(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        n = p.clear_finished()
    print(f"Removed {n} failed or cancelled job(s); finished jobs with an output stay.")
    return 0


def cmd_jobs_show(a: argparse.Namespace) -> int:
    from sdk.cli.chain import chain_extras, print_chain
    from sdk.cli.conditions import job_extras, print_job_extras

    with open_project(a.path) as p:
        j = p.job(a.job)
        outs = p.outputs(j.id)
        logs = p.logs(j.id)
        extras = job_extras(p, j)
        extras.update(chain_extras(p, j))
    d = j.to_dict()
    d["outputs"] = [str(o.video_path) for o in outs]
    d["logs"] = logs
    d.update(extras)
    if a.json:
        print_json(d)
        return 0
    for k in ("id", "batch_id", "status", "kind", "spec_id", "seed", "prompt", "weights", "attempts"):
        print(f"{k:>13}: {_p(d[k])}")
    print(f"{'params':>13}: {json.dumps(j.params, ensure_ascii=True)}")
    if j.error_message:
        print(f"{'error':>13}: {_p(j.error_message)}")
        if j.error_hint:
            print(f"{'hint':>13}: {_p(j.error_hint)}")
        if j.error_traceback:
            print(_p(j.error_traceback, keep_newlines=True))
    for o in d["outputs"]:
        print(f"{'output':>13}: {_p(o)}")
    print_job_extras(d)
    print_chain(d)
    return 0


def cmd_jobs_requeue(a: argparse.Namespace) -> int:
    """Queue a job again: from its row, or from an output's meta.json / MP4 (sdk.requeue); --param, --seeds,
    --input and --weights change what they name."""
    from sdk.params import parse_param_assignments

    overrides: dict[str, Any] = parse_param_assignments(a.param or [])
    if a.seeds is not None:
        overrides["seeds"] = a.seeds
    if a.input:
        overrides["inputs"] = _inputs(a)
    if a.weights is not None:
        overrides["weights"] = a.weights
    with open_project(a.path) as p:
        batch = p.requeue(a.job, **overrides)
    for warning in batch.warnings:
        print(f"warning: {_p(warning)}", file=sys.stderr)
    print(f"Queued {len(batch.job_ids)} job(s) in batch {batch.id}: {' '.join(batch.job_ids)}")
    return 0


def cmd_outputs_export(a: argparse.Namespace) -> int:
    from sdk.outputs import export

    with open_project(a.path) as p:
        out = p.output(p.job(a.job).id)
    dest = export(out.dir, Path(a.dest), a.format, overwrite=a.overwrite)
    print(f"Exported {a.format} to {dest}")
    return 0


def register(sub: Any) -> None:
    def job_args(c: argparse.ArgumentParser) -> None:
        c.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                       help="an input the generator declares (a file, a subject/motion name, a job id whose output "
                            "to use …); repeat a name for a grid axis")
        c.add_argument("--subject", action="append", default=None, help="repeat for a grid axis")
        c.add_argument("--motion", action="append", default=None, help="repeat for a grid axis")
        c.add_argument("--seeds", default=None, help="e.g. 1,2,5-8 (default 0)")
        c.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter; KEY=V1,V2 makes a grid axis")
        c.add_argument("--weights", default=None, help="installed weights id or a weights folder/file")
        c.add_argument("--precision", default=None, help="auto (fp16 on CUDA, bf16 on CPUs that run it natively, "
                       "else fp32) | fp32 | bf16 | fp16 | int8 (denoiser weights quantized, computes in bf16; needs torchao) "
                       "| fp8 (CUDA, compute capability ≥ 8.9); a list (bf16,int8) is a grid axis")
        c.add_argument("--memory-mode", default=None, help="auto (the fastest that fits) | none | balanced | low | "
                       "minimum; a list is a grid axis")

    g = group(sub, "queue", "the render queue")
    c = cmd(g, "add", cmd_queue_add, "queue prompts × seeds × param values as one batch")
    c.add_argument("path"); c.add_argument("--generator", required=True)
    c.add_argument("--prompt", action="append", default=[]); c.add_argument("--image", default=None)
    c.add_argument("--all-prompts", action="store_true", help="also use every prompt of the project (with its negative)")
    job_args(c)
    from sdk.cli.chain import register_suggested, register_then

    register_then(c)
    register_suggested(g)
    c = cmd(g, "run", cmd_queue_run, "render until the queue is empty")
    c.add_argument("path"); c.add_argument("--json", action="store_true", help="one JSON event per line")
    c.add_argument("--grace", type=float, default=10.0, help="seconds a cancelled job gets before its worker is killed")
    c.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, mps, cuda, cuda:N, or a list (cuda:0,cuda:1: one "
                        "worker per device, one queue)")
    c.add_argument("--hang-timeout", type=float, default=120.0,
                   help="seconds without a heartbeat after which a job fails as hung and its worker is killed")
    c.add_argument("--farm", default=None, metavar="ADDRESS",
                   help="run on a Ray render farm: ray://HOST:PORT, HOST:PORT, auto, or local:N (a local Ray with N "
                        "CPU workers); needs the farm extra. See docs/farm.md")
    c = cmd(g, "list", cmd_queue_list, "list jobs")
    c.add_argument("path"); c.add_argument("--json", action="store_true")
    c = cmd(g, "cancel", cmd_queue_cancel, "cancel a queued or running job")
    c.add_argument("path"); c.add_argument("job")
    c = cmd(g, "retry", cmd_queue_retry, "queue a failed or cancelled job again")
    c.add_argument("path"); c.add_argument("job")
    c = cmd(g, "clear", cmd_queue_clear, "remove failed and cancelled jobs (and invalid rows) from the queue")
    c.add_argument("path")

    c = sub.add_parser("train", help="queue a training job")
    c.set_defaults(fn=cmd_train)
    c.add_argument("path"); c.add_argument("trainer"); job_args(c)
    c.add_argument("--prompt", action="append", default=[], help="caption, for trainers that take one")

    g = group(sub, "jobs", "inspect jobs")
    c = cmd(g, "show", cmd_jobs_show, "show a job: params, status, error, outputs, scores")
    c.add_argument("path"); c.add_argument("job"); c.add_argument("--json", action="store_true")
    from sdk.cli.chain import register_follow
    from sdk.cli.conditions import register_score

    register_score(g)
    register_follow(g)

    c = cmd(g, "requeue", cmd_jobs_requeue, "queue a job again (its params, prompt, seed, inputs), or an output file's "
            "recipe; --param/--seeds/--input/--weights change what they name")
    c.add_argument("path"); c.add_argument("job", help="a job id, or an output folder, its meta.json or its video.mp4")
    c.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a new value for a parameter (or precision / memory_mode); KEY=V1,V2 makes a grid axis")
    c.add_argument("--seeds", default=None, help="other seeds, e.g. 1,2,5-8 (default: the job's seed)")
    c.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="another value for an input")
    c.add_argument("--weights", default=None, help="other weights: an installed id or a folder/file")

    g = group(sub, "outputs", "rendered outputs")
    c = cmd(g, "export", cmd_outputs_export, "export a job's output")
    c.add_argument("path"); c.add_argument("job"); c.add_argument("dest")
    c.add_argument("--format", choices=["mp4", "gif", "webp", "png"], default="mp4")
    c.add_argument("--overwrite", action="store_true")
