"""Chaining: a generator that works on an earlier job's output (an upscaler, a refiner) queued after that job.

A generator offers itself as an action on outputs with ``GeneratorSpec.output_action`` (``"Upscale"``); the
source goes into its first input that takes outputs (:func:`source_field`). Three ways queue such a follow-up,
all through :func:`sdk.queueing.plan_jobs`, so it is validated like any request:

- ``queue add ... --then ID`` (``plan_jobs(..., then=ID)``): every job of the batch gets a follow-up that takes
  its output (it waits for it: ``depends_on``); see :func:`add_follow_ups`;
- ``vgen jobs upscale PROJECT JOB`` / ``vgen jobs follow`` and the gallery's action: one follow-up of a job that
  exists (:func:`plan_follow_up`);
- ``queue add --generator ID --input video=JOB``, the plain form.

A follow-up that takes text and is given no prompt takes its source's prompt. Its output's ``meta.json`` names
its source (``"source"``: job id, output id and path, the generator's ``spec_id``; :func:`source_meta`), and ``jobs show`` and the
gallery show the pair (:func:`source_of`, :func:`derived_jobs`).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Sequence

from sdk.errors import InvalidRequest
from sdk.inputs.base import accepts_outputs

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.queueing import QueuePlan
    from sdk.records import BatchRecord, JobRecord
    from sdk.specs import GeneratorSpec, JobSpec

#: the action ``vgen jobs upscale`` and the gallery's "Upscale" queue
UPSCALE = "Upscale"


def source_field(spec: "JobSpec") -> Any:
    """The spec's first input field that takes an earlier job's output (where a follow-up's source goes), or None."""
    return next((f for f in spec.fields if accepts_outputs(f)), None)


def action_generators(registry: "PluginRegistry", action: str | None = None) -> list["GeneratorSpec"]:
    """Generators that offer an action on outputs (only ``action``'s, compared without case, when given), in the
    order they were registered (plugins by name)."""
    return [g for g in registry.generators.values() if g.output_action
            and (action is None or g.output_action.strip().lower() == action.strip().lower())]


def output_actions(registry: "PluginRegistry") -> dict[str, list[str]]:
    """Each action label offered on outputs → the ids of the generators that offer it, in registration order."""
    out: dict[str, list[str]] = {}
    for g in action_generators(registry):
        out.setdefault(g.output_action.strip(), []).append(g.id)
    return out


def follow_up_spec(registry: "PluginRegistry", generator_id: str, *, flag: str = "--then") -> "GeneratorSpec":
    """The generator ``generator_id`` checked as a follow-up: installed, with an ``output_action`` and an input
    that takes outputs. Raises InvalidRequest naming ``flag`` and the fix."""
    field = flag.lstrip("-").replace("-", "_")
    offered = ", ".join(g.id for g in action_generators(registry)) or "none installed"
    spec = registry.generators.get(generator_id)
    if spec is None:
        raise InvalidRequest(f"{flag} {generator_id}: there is no such generator.",
                             hint=f"Generators that work on outputs: {offered}. Install or enable the plugin that "
                                  "provides it (`vgen plugins list`).", field=field)
    if not spec.output_action or source_field(spec) is None:
        raise InvalidRequest(f"{flag} {generator_id}: {generator_id} does not work on another job's output (its spec "
                             "declares no output_action).",
                             hint=f"Give a generator that does: {offered}; or queue {generator_id} on its own.",
                             field=field)
    return spec


def action_spec(registry: "PluginRegistry", action: str = UPSCALE, generator_id: str | None = None) -> "GeneratorSpec":
    """The generator to run for ``action`` on an output: ``generator_id`` (checked) or the one installed generator
    that offers it. Raises InvalidRequest naming the fix when none does, or when several do and none was named
    (the message lists them: ``--generator`` picks one)."""
    if generator_id:
        return follow_up_spec(registry, generator_id, flag="--generator")
    found = action_generators(registry, action)
    if not found:
        offered = ", ".join(f"{label} ({', '.join(ids)})" for label, ids in output_actions(registry).items())
        raise InvalidRequest(f"No installed generator offers {action!r} on outputs.",
                             hint="Install or enable a plugin that does (e.g. SR600 for Upscale; `vgen plugins list` "
                                  "shows what is installed and what failed to load)"
                                  + (f"; installed actions: {offered}." if offered else "."), field="generator")
    if len(found) > 1:
        raise InvalidRequest(f"Several installed generators offer {action!r} on outputs: "
                             f"{', '.join(g.id for g in found)}.",
                             hint=f"Pick one with --generator (e.g. --generator {found[0].id}).", field="generator")
    return found[0]


def add_follow_ups(project: "Project", registry: "PluginRegistry", plan: "QueuePlan", then: str,
                   params: dict[str, Any] | None = None, weights: str | None = None) -> "QueuePlan":
    """``plan`` (the jobs of one batch) with, appended, a follow-up of ``then`` per job that takes that job's output.

    Each follow-up waits for its source (``depends_on`` ``"@N"``, its index in the batch), has its source's seed,
    and its source's prompt when ``then`` takes text and ``params`` give none. ``params`` are ``then``'s (a list is
    a grid axis: one follow-up per value). Follow-ups come after all sources, so a grid renders first (one model
    loaded at a time) and each source's follow-up runs once the source is done. Raises InvalidRequest naming
    ``--then`` for a generator that does not work on outputs or for sources that are not generate jobs."""
    from sdk.queueing import PlannedInput, QueuePlan, plan_jobs

    spec = follow_up_spec(registry, then)
    src = source_field(spec)
    sources = [j for j in plan if j.kind == "generate"]
    if len(sources) != len(plan):
        raise InvalidRequest(f"--then {then}: only generate jobs make an output to follow up on, and this batch has "
                             f"{len(plan) - len(sources)} job(s) of another kind.",
                             hint="Queue the follow-up once those jobs are done (`vgen jobs follow`).", field="then")
    params = dict(params or {})
    own_prompt = "prompt" in params
    # one plan per distinct prompt (the follow-ups' only per-source value besides the input and the seed)
    groups: dict[str | None, list[int]] = {}
    for i, job in enumerate(plan):
        groups.setdefault(job.prompt if spec.takes_text and not own_prompt else None, []).append(i)
    out = QueuePlan(list(plan), plan.warnings, plan.new_assets)
    follow: list[tuple[int, Any]] = []
    for prompt, indices in groups.items():
        try:
            step = plan_jobs(project, registry, spec.id, prompts=[prompt] if prompt else [], params=params,
                             weights=weights, inputs={src.name: [PlannedInput({"output": f"@{i}"}) for i in indices]})
        except InvalidRequest as exc:
            raise InvalidRequest(f"--then {then}: {exc.user_message}",
                                 hint=(exc.hint or "").replace("--prompt", "--then-param prompt=").replace(
                                     "--param", "--then-param"), field=exc.field or "then") from None
        for job in step:
            i = int(str(job.inputs[src.name]["output"])[1:])
            follow.append((i, dataclasses.replace(job, seed=plan[i].seed)))
        out.extend_plan(QueuePlan([], step.warnings, step.new_assets))
    out.extend(job for _, job in sorted(follow, key=lambda t: t[0]))
    return out


def plan_follow_up(project: "Project", registry: "PluginRegistry", job: str, *, action: str = UPSCALE,
                   generator: str | None = None, params: dict[str, Any] | None = None,
                   seeds: Any = None, weights: str | None = None, options: dict[str, Any] | None = None) -> "QueuePlan":
    """The follow-up of ``job`` (an id or prefix): ``generator`` (or the first that offers ``action``) on its output,
    with that job's prompt (when the generator takes text and ``params`` give none) and seed (unless ``seeds``).
    Raises InvalidRequest when no generator offers the action, or when the job failed, was cancelled, is gone or
    its output was deleted."""
    from sdk.queueing import plan_jobs

    spec = action_spec(registry, action, generator)
    source = project.job(job)
    return plan_jobs(project, registry, spec.id, params=params or {}, weights=weights, options=options,
                     seeds=source.seed if seeds is None else seeds, inputs={source_field(spec).name: source.id})


def queue_follow_up(project: "Project", registry: "PluginRegistry", job: str, **kwargs: Any) -> "BatchRecord":
    """:func:`plan_follow_up`, queued as one batch. Returns the BatchRecord (with the plan's warnings)."""
    plan = plan_follow_up(project, registry, job, **kwargs)
    batch = project.add_jobs(plan)
    return dataclasses.replace(batch, warnings=tuple(plan.warnings))


def source_prompts(project: "Project", spec: "JobSpec", given: dict[str, Any]) -> list[str | None] | None:
    """For a spec that takes text and was given no prompt: the prompts of the jobs whose outputs its source input
    names, one per value given (None where a value is no job or a job without a prompt); None when the spec has no
    source input or none was given."""
    src = source_field(spec)
    if src is None or given.get(src.name) in (None, "", [], ()):
        return None
    value = given[src.name]
    out: list[str | None] = []
    for v in value if isinstance(value, (list, tuple)) else [value]:
        prompt = None
        if isinstance(v, str) and v.strip():
            try:
                prompt = project.job(v.strip()).prompt
            except InvalidRequest:
                prompt = None  # a file or an asset: no prompt to take; the field names any problem
        out.append(prompt)
    return out


# -- provenance ---------------------------------------------------------------------------------------------------
def source_of(job: "JobRecord", spec: "JobSpec | None" = None) -> str | None:
    """The id of the job whose output ``job`` (a generate job) takes as its source, or None. With ``spec`` the source
    is the value of its first outputs-taking input; without, the first input naming an output."""
    if job.kind != "generate":
        return None
    inputs = job.inputs or {}
    if spec is not None:
        src = source_field(spec)
        value = inputs.get(src.name) if src is not None else None
        return src.depends_on(value) if src is not None and value is not None else None
    for value in inputs.values():
        if isinstance(value, dict) and isinstance(value.get("output"), str):
            return value["output"]
    return None


def derived_jobs(jobs: Sequence["JobRecord"], job_id: str) -> list["JobRecord"]:
    """The generate jobs among ``jobs`` whose source is ``job_id``'s output (its upscales, refinements …)."""
    return [j for j in jobs if source_of(j) == job_id]


def source_meta(project: "Project", spec: "JobSpec", job: "JobRecord") -> dict[str, Any] | None:
    """What a follow-up's ``meta.json`` records of its source: ``{"job_id", "output_id", "output"`` (the video's path
    inside the project), ``"spec_id"`` (the generator that made it), ``"prompt"``, ``"input"`` (the input it went
    into)``}``; None when the job has no source."""
    src = source_field(spec)
    source_id = source_of(job, spec)
    if src is None or source_id is None:
        return None
    out: dict[str, Any] = {"job_id": source_id, "input": src.name}
    try:
        record = project.job(source_id)
        out.update(spec_id=record.spec_id, prompt=record.prompt, seed=record.seed)
        output = project.output(source_id)
        out.update(output_id=output.id, output=output.video_path.relative_to(project.path).as_posix())
    except (InvalidRequest, ValueError):
        pass  # resolving the input already failed the job if the output is gone; record what is known
    return out
