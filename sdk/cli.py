"""The ``vgen`` command line: everything the GUI does, headless."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from sdk.errors import VGenError
from sdk.safe_text import printable as _p


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


def _open(path: str):
    from sdk.project import Project

    return Project.open(path)


# -- project, subjects, motions, prompts ----------------------------------------------------
def cmd_project_new(a: argparse.Namespace) -> int:
    from sdk.project import Project

    p = Project.create(a.path, template=a.template)
    print(f"Created project {_p(p.name)!r} at {_p(p.path)}")
    return 0


def cmd_project_info(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        info = p.info()
    if a.json:
        _print_json(info)
    else:
        for k, v in info.items():
            print(f"{k:>14}: {_p(v)}")
    return 0


def cmd_project_templates(a: argparse.Namespace) -> int:
    from sdk.project import list_templates

    for t in list_templates():
        print(f"{t['name']:<24} {t.get('title', '')} — {t.get('description', '')}")
    return 0


def cmd_subject_add(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        s = p.add_subject(a.name, [Path(i) for i in a.images], token=a.token,
                          masks=[Path(m) for m in a.mask] if a.mask else None)
    print(f"Added subject {_p(s.name)!r} (token {_p(s.token)}) with {len(s.images)} image(s)")
    return 0


def cmd_subject_list(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        subjects = p.subjects()
    if a.json:
        _print_json([{"id": s.id, "name": s.name, "token": s.token, "images": [str(i.asset.path) for i in s.images],
                      "masks": [str(i.mask.path) if i.mask else None for i in s.images]} for s in subjects])
    else:
        for s in subjects:
            masks = sum(1 for i in s.images if i.mask)
            print(f"{_p(s.name):<20} {_p(s.token):<16} {len(s.images)} image(s){f', {masks} mask(s)' if masks else ''}")
    return 0


def cmd_motion_add(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        m = p.add_motion(a.name, [Path(v) for v in a.videos])
    print(f"Added motion {_p(m.name)!r} with {len(m.videos)} video(s)")
    return 0


def cmd_motion_list(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        motions = p.motions()
    if a.json:
        _print_json([{"id": m.id, "name": m.name, "videos": [str(v.path) for v in m.videos]} for m in motions])
    else:
        for m in motions:
            frames = ", ".join(f"{v.num_frames} frames" for v in m.videos)
            print(f"{_p(m.name):<20} {len(m.videos)} video(s): {frames}")
    return 0


def cmd_prompt_add(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        pr = p.add_prompt(a.text, negative=a.negative or "")
    print(f"Added prompt #{pr.id}")
    return 0


def cmd_prompt_list(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        prompts = p.prompts()
    if a.json:
        _print_json([pr.__dict__ for pr in prompts])
    else:
        for pr in prompts:
            neg = f"   (negative: {_p(pr.negative)})" if pr.negative else ""
            print(f"#{pr.id:<4} {_p(pr.text)}{neg}")
    return 0


# -- queue ----------------------------------------------------------------------------------
def _queue(a: argparse.Namespace, spec_id: str, kind: str | None) -> int:
    from sdk.params import parse_param_assignments
    from sdk.plugins import load_plugins
    from sdk.queueing import queue_jobs

    params = parse_param_assignments(a.param or [])
    with _open(a.path) as p:
        prompts: list = list(getattr(a, "prompt", None) or [])
        if getattr(a, "all_prompts", False):
            prompts += [(pr.text, pr.negative) for pr in p.prompts()]
        batch = queue_jobs(p, load_plugins(), spec_id, kind=kind, prompts=prompts, seeds=a.seeds, params=params,
                           inputs=_inputs(a), weights=a.weights, options=_run_options(a))
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

    with _open(a.path) as p:
        service = RenderService(p, device=a.device, grace_period=a.grace, hang_timeout=a.hang_timeout)
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
            end = "\n" if self.tty else ""
            out = self.project.output(jid)
            print(f"{end}  done → {_p(out.video_path)}", file=sys.stderr, flush=True)
        elif isinstance(event, ev.JobFailed):
            print(f"\n  FAILED: {_p(event.message)}" + (f"\n  hint: {_p(event.hint)}" if event.hint else ""),
                  file=sys.stderr)
        elif isinstance(event, ev.QueuePaused):
            print(f"\n  queue paused: {_p(event.reason)}" + (f"\n  hint: {_p(event.hint)}" if event.hint else ""),
                  file=sys.stderr)
        elif isinstance(event, ev.JobCancelled):
            print("\n  cancelled", file=sys.stderr)


def cmd_queue_list(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        jobs = p.jobs()
    if a.json:
        _print_json([j.to_dict() for j in jobs])
        return 0
    print(f"{'JOB':<13} {'STATUS':<10} {'GENERATOR':<24} {'SEED':>6} {'STEP':>9}  PROMPT")
    for j in jobs:
        step = f"{j.progress_step}/{j.progress_total}" if j.progress_total else ""
        status = "INVALID" if j.problem else j.status.value
        print(f"{_p(j.id):<13} {status:<10} {_p(j.spec_id):<24} {_p(j.seed):>6} {step:>9}  {_p((j.prompt or '')[:50])}")
        if j.problem:
            print(f"{'':<13} ↳ the stored row is invalid: {_p(j.problem)}")
    return 0


def cmd_queue_cancel(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        j = p.request_cancel(a.job)
    print(f"Job {_p(j.id)}: {'cancel requested' if j.status.value == 'RUNNING' else j.status.value}")
    return 0


def cmd_queue_retry(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        j = p.retry(a.job)
    print(f"Job {_p(j.id)} queued again")
    return 0


def cmd_jobs_show(a: argparse.Namespace) -> int:
    with _open(a.path) as p:
        j = p.job(a.job)
        outs = p.outputs(j.id)
        logs = p.logs(j.id)
    d = j.to_dict()
    d["outputs"] = [str(o.video_path) for o in outs]
    d["logs"] = logs
    if a.json:
        _print_json(d)
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
    return 0


def cmd_outputs_export(a: argparse.Namespace) -> int:
    from sdk.outputs import export

    with _open(a.path) as p:
        out = p.output(p.job(a.job).id)
    dest = export(out.dir, Path(a.dest), a.format, overwrite=a.overwrite)
    print(f"Exported {a.format} to {dest}")
    return 0


# -- plugins and models -------------------------------------------------------------------------
def cmd_plugins_list(a: argparse.Namespace) -> int:
    from sdk.params import params_schema
    from sdk.plugins import load_plugins

    reg = load_plugins()
    if a.json:
        _print_json({
            "plugins": [i.to_dict() for i in reg.plugins.values()],
            "generators": {g.id: {"title": g.title, "method": g.method, "inputs": list(g.inputs),
                                  "default_weights": g.default_weights, "params": params_schema(g.params)}
                           for g in reg.generators.values()},
            "trainers": {t.id: {"title": t.title, "method": t.method, "inputs": list(t.inputs),
                                "params": params_schema(t.params)} for t in reg.trainers.values()},
        })
        return 0
    for info in reg.plugins.values():
        print(f"{info.name} {info.version} ({info.module})")
        for g in info.generators:
            print(f"    generator  {g:<28} {reg.generators[g].title}")
        for t in info.trainers:
            print(f"    trainer    {t:<28} {reg.trainers[t].title}")
        if info.error:
            print("    LOAD ERROR: " + info.error.strip().splitlines()[-1])
    return 0


def cmd_models_list(a: argparse.Namespace) -> int:
    from sdk import weights as w
    from sdk.plugins import load_plugins

    reg = load_plugins()
    installed = {e["id"]: e for e in w.list_installed()}
    if a.json:
        _print_json({"models_dir": str(w.models_dir()), "installed": list(installed.values()),
                     "known": [{"id": s.id, "title": s.title, "source": s.source, "repo_id": s.repo_id,
                                "licence": s.licence, "formats": list(s.formats)} for s in reg.weights.values()]})
        return 0
    print(f"Models directory: {w.models_dir()}")
    for s in reg.weights.values():
        e = installed.pop(s.id, None)
        state = f"installed ({e['source']}) at {e['path']}" if e else "not installed"
        print(f"{s.id:<30} {state}\n{'':<30} {s.source}:{s.repo_id}  licence: {s.licence}")
    for e in installed.values():
        print(f"{e['id']:<30} installed ({e['source']}) at {e['path']}")
    return 0


def cmd_models_make_tiny(a: argparse.Namespace) -> int:
    from sdk import weights as w
    from sdk.plugins import load_plugins

    spec = load_plugins().weights_spec(a.id)
    fmt = a.format or (spec.formats[0] if spec.formats else None)  # the spec's first format, as the library does
    path = w.make_tiny(spec, Path(a.dir), fmt, register=a.register)
    print(f"Wrote tiny {fmt} weights for {a.id} to {path} (random: they render noise, for tests and demos)")
    return 0


def cmd_models_import(a: argparse.Namespace) -> int:
    from sdk import weights as w

    entry = w.import_weights(a.id, Path(a.path), copy=a.copy)
    print(f"Registered {a.id} ({entry['format']}) at {entry['path']}")
    return 0


def cmd_models_fetch(a: argparse.Namespace) -> int:
    from sdk import weights as w
    from sdk.plugins import load_plugins

    spec = load_plugins().weights_spec(a.id)
    if spec.licence:
        print(f"Licence of {spec.id}: {spec.licence}", file=sys.stderr)
    entry = w.fetch(spec)
    print(f"Fetched {a.id} to {entry['path']}")
    return 0


def cmd_doctor(a: argparse.Namespace) -> int:
    """Devices (memory, dtypes, attention), ffmpeg, versions: what a worker would run on. Imports torch."""
    import platform
    import subprocess

    import sdk
    from sdk import weights as w
    from sdk.ml.probe import all_devices
    from sdk.ml.runtime import resolve_precision
    from sdk.outputs import _ffmpeg

    devices = all_devices()
    try:
        ffmpeg = _ffmpeg()
        first = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=10).stdout.splitlines()
        ffmpeg_text = f"{ffmpeg} ({first[0] if first else 'unknown version'})"
    except Exception as exc:  # report, never crash: this is the command people run when something is wrong
        ffmpeg_text = f"NOT FOUND ({exc})"
    import torch

    auto = devices[0]["device"]
    auto_dtype = str(resolve_precision("auto", torch.device(auto))).removeprefix("torch.")
    report = {"vgen_studio": sdk.__version__, "python": platform.python_version(), "devices": devices,
              "auto": {"device": auto, "precision": auto_dtype}, "ffmpeg": ffmpeg_text,
              "models_dir": str(w.models_dir())}
    if a.json:
        _print_json(report)
        return 0
    print(f"VGen Studio {sdk.__version__}, Python {report['python']}")
    print("Devices:")
    for d in devices:
        mem = f"{d['total_bytes'] / 2**30:.1f} GB total, {d['free_bytes'] / 2**30:.1f} GB free"
        print(f"  {d['device']:<8} {d['device_name']}\n  {'':<8} {mem}; precisions {', '.join(d['dtypes'])}; "
              f"attention {', '.join(d['attention'])}")
    print(f"auto means: device {auto}, precision {auto_dtype}")
    print(f"ffmpeg: {ffmpeg_text}")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in devices[0]["versions"].items()))
    print(f"Models directory: {report['models_dir']}")
    return 0


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgen", description="VGen Studio: projects, render queue, plugins, models.")
    sub = parser.add_subparsers(dest="group", required=True)

    def group(name: str, help: str) -> Any:
        g = sub.add_parser(name, help=help)
        return g.add_subparsers(dest="cmd", required=True)

    def cmd(parent: Any, name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        c = parent.add_parser(name, help=help)
        c.set_defaults(fn=fn)
        return c

    g = group("project", "create and inspect projects")
    c = cmd(g, "new", cmd_project_new, "create a project folder")
    c.add_argument("path"); c.add_argument("--template", default=None, help="a template name (see `vgen project templates`)")
    c = cmd(g, "info", cmd_project_info, "show a project's contents")
    c.add_argument("path"); c.add_argument("--json", action="store_true")
    cmd(g, "templates", cmd_project_templates, "list project templates")

    g = group("subject", "subjects: reference images of who/what should appear")
    c = cmd(g, "add", cmd_subject_add, "add a subject from images")
    c.add_argument("path"); c.add_argument("name"); c.add_argument("images", nargs="+")
    c.add_argument("--token", default=None, help="placeholder token used in prompts, default <name>")
    c.add_argument("--mask", nargs="+", default=None, help="one mask image per image")
    c = cmd(g, "list", cmd_subject_list, "list subjects")
    c.add_argument("path"); c.add_argument("--json", action="store_true")

    g = group("motion", "motions: reference videos of how it should move")
    c = cmd(g, "add", cmd_motion_add, "add a motion from videos")
    c.add_argument("path"); c.add_argument("name"); c.add_argument("videos", nargs="+")
    c = cmd(g, "list", cmd_motion_list, "list motions")
    c.add_argument("path"); c.add_argument("--json", action="store_true")

    g = group("prompt", "the project's prompts")
    c = cmd(g, "add", cmd_prompt_add, "add a prompt")
    c.add_argument("path"); c.add_argument("text"); c.add_argument("--negative", default="")
    c = cmd(g, "list", cmd_prompt_list, "list prompts")
    c.add_argument("path"); c.add_argument("--json", action="store_true")

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
                       "else fp32) | fp32 | bf16 | fp16; a list (fp32,bf16) is a grid axis")
        c.add_argument("--memory-mode", default=None, help="auto (the fastest that fits) | none | balanced | low | "
                       "minimum; a list is a grid axis")

    g = group("queue", "the render queue")
    c = cmd(g, "add", cmd_queue_add, "queue prompts × seeds × param values as one batch")
    c.add_argument("path"); c.add_argument("--generator", required=True)
    c.add_argument("--prompt", action="append", default=[]); c.add_argument("--image", default=None)
    c.add_argument("--all-prompts", action="store_true", help="also use every prompt of the project (with its negative)")
    job_args(c)
    c = cmd(g, "run", cmd_queue_run, "render until the queue is empty")
    c.add_argument("path"); c.add_argument("--json", action="store_true", help="one JSON event per line")
    c.add_argument("--grace", type=float, default=10.0, help="seconds a cancelled job gets before its worker is killed")
    c.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, mps, cuda, cuda:N, or a list (cuda:0,cuda:1: one "
                        "worker per device, one queue)")
    c.add_argument("--hang-timeout", type=float, default=120.0,
                   help="seconds without a heartbeat after which a job fails as hung and its worker is killed")
    c = cmd(g, "list", cmd_queue_list, "list jobs")
    c.add_argument("path"); c.add_argument("--json", action="store_true")
    c = cmd(g, "cancel", cmd_queue_cancel, "cancel a queued or running job")
    c.add_argument("path"); c.add_argument("job")
    c = cmd(g, "retry", cmd_queue_retry, "queue a failed or cancelled job again")
    c.add_argument("path"); c.add_argument("job")

    c = sub.add_parser("train", help="queue a training job")
    c.set_defaults(fn=cmd_train)
    c.add_argument("path"); c.add_argument("trainer"); job_args(c)
    c.add_argument("--prompt", action="append", default=[], help="caption, for trainers that take one")

    g = group("jobs", "inspect jobs")
    c = cmd(g, "show", cmd_jobs_show, "show a job: params, status, error, outputs")
    c.add_argument("path"); c.add_argument("job"); c.add_argument("--json", action="store_true")

    g = group("outputs", "rendered outputs")
    c = cmd(g, "export", cmd_outputs_export, "export a job's output")
    c.add_argument("path"); c.add_argument("job"); c.add_argument("dest")
    c.add_argument("--format", choices=["mp4", "gif", "webp", "png"], default="mp4")
    c.add_argument("--overwrite", action="store_true")

    g = group("plugins", "installed plugins")
    c = cmd(g, "list", cmd_plugins_list, "plugins, their generators and trainers, load errors")
    c.add_argument("--json", action="store_true")

    c = sub.add_parser("doctor", help="devices, precisions, attention backends, ffmpeg and versions")
    c.set_defaults(fn=cmd_doctor)
    c.add_argument("--json", action="store_true")

    g = group("models", "model weights (global, not per project)")
    c = cmd(g, "list", cmd_models_list, "known and installed weights")
    c.add_argument("--json", action="store_true")
    c = cmd(g, "make-tiny", cmd_models_make_tiny, "write tiny random weights in a real format (tests, demos)")
    c.add_argument("id"); c.add_argument("dir")
    c.add_argument("--format", default=None, help="one of the formats the weights offer (default: their first)")
    c.add_argument("--register", action="store_true", help="also register them under ID")
    c = cmd(g, "import", cmd_models_import, "register weights you already have (a known weights id, or user.NAME)")
    c.add_argument("id"); c.add_argument("path"); c.add_argument("--copy", action="store_true")
    c = cmd(g, "fetch", cmd_models_fetch, "download weights (check the licence)")
    c.add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except VGenError as exc:
        print(f"error: {_p(exc.user_message)}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {_p(exc.hint)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
