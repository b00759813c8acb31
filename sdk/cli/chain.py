"""``vgen jobs upscale|follow`` and ``queue add --then``: a generator that works on an earlier job's output, queued
after it (:mod:`sdk.chain`); ``jobs show`` lines for a job's source and what was made from it; ``queue suggested``:
the jobs a project's template suggests (:mod:`sdk.suggested`), follow-ups (``"then"``) included."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from sdk.cli._common import _p, cmd, open_project


def _follow(a: argparse.Namespace, action: str) -> int:
    from sdk.chain import queue_follow_up
    from sdk.params import parse_param_assignments
    from sdk.plugins import load_plugins

    with open_project(a.path) as p:
        batch = queue_follow_up(p, load_plugins(), a.job, action=action, generator=a.generator,
                                params=parse_param_assignments(a.param or []), seeds=a.seeds, weights=a.weights)
        job = p.job(batch.job_ids[0])
        source = p.job(a.job)
    for warning in batch.warnings:
        print(f"warning: {_p(warning)}", file=sys.stderr)
    print(f"Queued {len(batch.job_ids)} job(s) in batch {batch.id}: {' '.join(batch.job_ids)} "
          f"({_p(job.spec_id)} on the output of {source.id}"
          + (", which it waits for" if source.status.value in ("QUEUED", "RUNNING") else "") + ")")
    return 0


def cmd_jobs_upscale(a: argparse.Namespace) -> int:
    from sdk.chain import UPSCALE

    return _follow(a, UPSCALE)


def cmd_jobs_follow(a: argparse.Namespace) -> int:
    return _follow(a, "")


def chain_extras(project: Any, job: Any) -> dict[str, Any]:
    """For ``jobs show``: ``source`` (the job whose output this job took: id, generator, status; None) and
    ``derived`` (the jobs that took this job's output: id, generator, status, output video or None)."""
    from sdk.chain import derived_jobs, source_of
    from sdk.errors import VGenError

    out: dict[str, Any] = {"source": None, "derived": []}
    source_id = source_of(job)
    if source_id:
        try:
            s = project.job(source_id)
            out["source"] = {"job_id": s.id, "spec_id": s.spec_id, "status": s.status.value}
        except VGenError:
            out["source"] = {"job_id": source_id, "spec_id": None, "status": "gone"}
    for d in derived_jobs(project.jobs(), job.id):
        try:
            video: str | None = str(project.output(d.id).video_path) if d.status.value == "SUCCEEDED" else None
        except VGenError:
            video = None
        out["derived"].append({"job_id": d.id, "spec_id": d.spec_id, "status": d.status.value, "output": video})
    return out


def print_chain(d: dict[str, Any]) -> None:
    if d.get("source"):
        s = d["source"]
        print(f"{'source':>13}: {_p(s['job_id'])} ({_p(s['spec_id'] or '?')}, {_p(s['status'])})")
    for x in d.get("derived", []):
        where = f" → {_p(x['output'])}" if x["output"] else ""
        print(f"{'derived':>13}: {_p(x['job_id'])} ({_p(x['spec_id'])}, {_p(x['status'])}){where}")


def register_then(c: argparse.ArgumentParser) -> None:
    """``--then`` / ``--then-param`` of ``queue add``."""
    c.add_argument("--then", default=None, metavar="GENERATOR",
                   help="after each job of the batch, queue this generator on its output (one that works on outputs, "
                        "e.g. sr600.upscale); it waits for its source and takes its prompt and seed")
    c.add_argument("--then-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the --then generator (or precision / memory_mode); KEY=V1,V2 makes a grid axis")
    c.add_argument("--then-weights", default=None, metavar="WEIGHTS",
                   help="weights of the --then generator: an installed weights id or a folder/file (default: its "
                        "default weights)")


def register_follow(g: Any) -> None:
    """``jobs upscale`` and ``jobs follow`` under the ``jobs`` group ``g``."""
    def args(c: argparse.ArgumentParser) -> None:
        c.add_argument("path"); c.add_argument("job", help="the job whose output to work on")
        c.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter of the generator (or precision / memory_mode); KEY=V1,V2 makes a grid axis")
        c.add_argument("--seeds", default=None, help="e.g. 1,2 (default: the source job's seed)")
        c.add_argument("--weights", default=None, help="installed weights id or a weights folder/file")

    c = cmd(g, "upscale", cmd_jobs_upscale, "upscale a job's output: queue the generator that offers Upscale on it "
            "(waits for the job if it is still queued or running)")
    args(c)
    c.add_argument("--generator", default=None, help="which generator to use (needed when several installed generators "
                   "offer Upscale)")
    c = cmd(g, "follow", cmd_jobs_follow, "queue a generator that works on outputs (an upscaler, a refiner) on a "
            "job's output")
    args(c)
    c.add_argument("--generator", required=True, help="a generator that works on outputs (`vgen plugins list`)")


def cmd_queue_suggested(a: argparse.Namespace) -> int:
    import json

    from sdk.plugins import load_plugins
    from sdk.suggested import queue_suggested, suggested_jobs

    with open_project(a.path) as p:
        if a.list:
            for i, entry in enumerate(suggested_jobs(p)):
                print(f"{i}: {_p(json.dumps(entry, ensure_ascii=True))}")
            return 0
        batches = queue_suggested(p, load_plugins(), a.index)
    for batch in batches:
        for warning in batch.warnings:
            print(f"warning: {_p(warning)}", file=sys.stderr)
        print(f"Queued {len(batch.job_ids)} job(s) in batch {batch.id}: {' '.join(batch.job_ids)}")
    return 0


def register_suggested(g: Any) -> None:
    """``queue suggested`` under the ``queue`` group ``g``."""
    c = cmd(g, "suggested", cmd_queue_suggested, "queue the jobs the project's template suggests (with their "
            "follow-ups), or --list them")
    c.add_argument("path")
    c.add_argument("--list", action="store_true", help="only list them, numbered from 0")
    c.add_argument("--index", type=int, default=None, help="queue only this one (from --list)")
