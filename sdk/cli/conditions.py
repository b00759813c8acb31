"""``vgen conditions extract|list`` and ``vgen jobs score``: condition extractors and metrics, run as jobs.

Extract and score jobs join the queue like any other: ``vgen queue run`` renders them, ``vgen queue list`` shows
them, and ``vgen jobs show`` shows what they made (the condition) or what they said (the scores, on the scored job).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sdk.cli._common import _p, cmd, group, open_project, print_json


def cmd_conditions_extract(a: argparse.Namespace) -> int:
    from sdk.errors import InvalidRequest
    from sdk.params import parse_param_assignments
    from sdk.plugins import load_plugins
    from sdk.queueing import queue_jobs

    registry = load_plugins()
    spec = registry.extractor(a.extractor)
    given = [(flag, v) for flag, v in (("--motion", a.motion), ("--video", a.video), ("--output", a.output)) if v]
    if len(given) > 1:
        raise InvalidRequest(f"{' and '.join(f for f, _ in given)} both name a source.",
                             hint="Give one of --motion NAME, --video FILE or --output JOB.", field="source")
    source = _source_field(spec)
    inputs: dict[str, Any] = {}
    for item in a.input or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidRequest(f"--input {item!r} is not NAME=VALUE.", hint="Write e.g. --input video=clip.mp4.",
                                 field="input")
        inputs.setdefault(name.strip(), []).append(value.strip())
    if given:
        inputs.setdefault(source, []).append(given[0][1])
    with open_project(a.path) as p:
        batch = queue_jobs(p, registry, spec.id, params=parse_param_assignments(a.param or []),
                           inputs={k: v[0] if len(v) == 1 else v for k, v in inputs.items()}, seeds=None)
    for warning in batch.warnings:
        print(f"warning: {_p(warning)}", file=sys.stderr)
    ids = " ".join(batch.job_ids)
    print(f"Queued {len(batch.job_ids)} extract job(s) in batch {batch.id}: {ids}")
    print(f"Run them with `vgen queue run {_p(a.path)}`; a generator can take one already "
          f"(--input NAME={batch.job_ids[0]}): it waits for it.")
    return 0


def _source_field(spec: Any) -> str:
    """The input an extractor takes its source video through: ``video`` if it has one, else its first input."""
    from sdk.errors import InvalidRequest

    names = [f.name for f in spec.fields]
    if "video" in names:
        return "video"
    if not names:
        raise InvalidRequest(f"{spec.id} declares no input to extract from.", hint="This is a bug in its plugin.",
                             field="extractor")
    return names[0]


def cmd_conditions_list(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        conds = p.conditions(source=a.source, kind=a.kind)
    if a.json:
        print_json([{**c.__dict__, "path": str(c.path)} for c in conds])
        return 0
    if not conds:
        print("No conditions yet: extract some with `vgen conditions extract`.")
        return 0
    print(f"{'CONDITION':<13} {'KIND':<10} {'FRAMES':>6} {'SIZE':>9}  {'EXTRACTOR':<24} SOURCE")
    for c in conds:
        if c.problem:
            print(f"{_p(c.id):<13} INVALID    the stored row is invalid: {_p(c.problem)}")
            continue
        print(f"{c.id:<13} {_p(c.kind):<10} {c.num_frames:>6} {f'{c.width}x{c.height}':>9}  "
              f"{_p(c.extractor):<24} {_p(describe_source(c.source))}")
    return 0


def describe_source(source: dict[str, Any]) -> str:
    """``motion run (video 1a2b3c4d)``, ``output of 0123456789ab``, ``asset 1a2b3c4d``."""
    if "motion" in source:
        return f"motion {source['motion']} (video {str(source.get('video'))[:8]})"
    if "output" in source:
        return f"output of {source['output']}"
    if "asset" in source:
        return f"asset {str(source['asset'])[:8]}"
    return json.dumps(source, ensure_ascii=True)


def cmd_jobs_score(a: argparse.Namespace) -> int:
    from sdk.conditions import score_jobs
    from sdk.plugins import load_plugins

    with open_project(a.path) as p:
        batch = score_jobs(p, load_plugins(), a.metric, jobs=a.job, batch=a.batch)
    for warning in batch.warnings:  # e.g. a subject metric skipped on a render without a subject
        print(f"warning: {_p(warning)}", file=sys.stderr)
    print(f"Queued {len(batch.job_ids)} score job(s) in batch {batch.id}: {' '.join(batch.job_ids)}")
    print(f"Run them with `vgen queue run {_p(a.path)}`; `vgen jobs show` then shows the scores.")
    return 0


# -- what `vgen jobs show` and `vgen queue run` add ------------------------------------------------------------------
def job_extras(project: Any, job: Any) -> dict[str, Any]:
    """For ``jobs show``: the scores of the job's output, the condition an extract job made, the job a score job
    scored."""
    from sdk.errors import VGenError
    from sdk.store.conditions import scored_job_id

    out: dict[str, Any] = {"scores": [{"metric": s.metric, "metric_version": s.metric_version, "values": s.values,
                                       "score_job": s.details.get("score_job"), "problem": s.problem}
                                      for s in project.scores(job.id)]}
    if job.kind == "extract" and job.status.value == "SUCCEEDED":
        try:
            c = project.condition_of_job(job.id)
            out["condition"] = {"id": c.id, "kind": c.kind, "path": str(c.path), "source": c.source}
        except VGenError:
            out["condition"] = None
    if job.kind == "score":
        out["scores_job"] = scored_job_id(job.inputs, job.depends_on)
    used = []  # the conditions a generate job takes (stored as a condition id, or the extract job that makes one)
    for name, value in (job.inputs or {}).items():
        try:
            if isinstance(value, dict) and value.get("extract"):
                c = project.condition_of_job(str(value["extract"]))
            elif isinstance(value, str):
                c = project.condition(value)
                if c.id != value:
                    continue
            else:
                continue
        except VGenError:
            continue
        used.append({"input": name, "id": c.id, "kind": c.kind, "path": str(c.path), "source": c.source})
    if used:
        out["conditions_used"] = used
    return out


def print_job_extras(d: dict[str, Any]) -> None:
    for s in d.get("scores", []):
        if s["problem"]:
            print(f"{'score':>13}: {_p(s['metric'])} INVALID ({_p(s['problem'])})")
            continue
        values = list(s["values"].items())
        rest = ", ".join(f"{_p(k)} {v:.6g}" for k, v in values[1:])
        print(f"{'score':>13}: {_p(s['metric'])} {_p(values[0][0])} {values[0][1]:.6g}" + (f" ({rest})" if rest else ""))
    for c in d.get("conditions_used", []):
        print(f"{'input ' + _p(c['input']):>13}: condition {c['id']} {_p(c['kind'])} from "
              f"{_p(describe_source(c['source']))}")
    if d.get("condition"):
        c = d["condition"]
        print(f"{'condition':>13}: {c['id']} {_p(c['kind'])} from {_p(describe_source(c['source']))}")
    if d.get("scores_job"):
        print(f"{'scores':>13}: the output of job {_p(d['scores_job'])}")


def finished_line(project: Any, job_id: str, output_dir: str) -> str:
    """For ``queue run``: where a finished job's result went."""
    from sdk.errors import VGenError

    job = project.job(job_id)
    try:
        if job.kind == "score":
            from sdk.store.conditions import scored_job_id

            scored = scored_job_id(job.inputs, job.depends_on)
            score = project.scores(scored, metric=job.spec_id)[0]
            return f"{_p(job.spec_id)} of {scored}: " + ", ".join(f"{_p(k)} {v:.6g}" for k, v in score.values.items())
        line = str(project.output(job_id).video_path)
        if job.kind == "extract":
            line += f" (condition {project.condition_of_job(job_id).id})"
        return _p(line)
    except (VGenError, IndexError):
        return _p(output_dir or "(no output)")


def register(sub: Any) -> None:
    g = group(sub, "conditions", "condition videos (canny, depth …) extracted from motions, outputs or files")
    c = cmd(g, "extract", cmd_conditions_extract, "queue a condition extraction (a job; `vgen queue run` runs it)")
    c.add_argument("path")
    c.add_argument("--extractor", required=True, help="an extractor id (`vgen plugins list`), e.g. classic_cv.canny")
    c.add_argument("--motion", default=None, help="a project motion's name (its first video; NAME#N: its N-th)")
    c.add_argument("--video", default=None, help="a video file (imported into the project) or a video asset id")
    c.add_argument("--output", default=None, help="a job id: extract from its output (waits for it)")
    c.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="any input the extractor declares; repeat a name for a grid axis")
    c.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter (e.g. low_threshold=50); KEY=V1,V2 makes a grid axis")
    c = cmd(g, "list", cmd_conditions_list, "list the project's conditions")
    c.add_argument("path")
    c.add_argument("--source", default=None, help="only those from this motion name, job id or asset hash")
    c.add_argument("--kind", default=None, help="only this kind (canny, depth …)")
    c.add_argument("--json", action="store_true")


def register_score(jobs_group: Any) -> None:
    """``vgen jobs score``, added to the ``jobs`` group."""
    c = cmd(jobs_group, "score", cmd_jobs_score, "score outputs with a metric (queued as score jobs)")
    c.add_argument("path")
    c.add_argument("job", nargs="*", help="job ids (or prefixes) whose outputs to score")
    c.add_argument("--batch", default=None, help="score every generate job of this batch that did not fail")
    c.add_argument("--metric", action="append", required=True, help="a metric id (`vgen plugins list`); repeat "
                   "for several")
