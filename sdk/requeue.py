"""Queue a job again: exactly as it was, or with some values changed (DESIGN §6: outputs can be re-queued exactly).

One implementation serves :meth:`sdk.Project.requeue`, ``vgen jobs requeue`` and the GUI's re-queue (the gallery's
action and an output dropped on the window). The source is read in this order:

1. the job's row, when the job is in this project (a job id, a :class:`~sdk.records.JobRecord`, or an output whose
   ``meta.json`` names a job of this project): its stored params, prompt, seed, inputs, weights and run options;
2. otherwise an output's recipe: ``meta.json`` (an output folder, the file itself, or the dict) or the JSON in an
   MP4's ``comment`` tag (a video dropped from elsewhere).

Typed inputs come back through each field's :meth:`~sdk.inputs.InputField.from_recipe`, and the request goes
through :func:`sdk.queueing.plan_jobs` like any other, so overrides are validated the same way and an input whose
source is gone is refused naming it.

The prompt is carried once: a recipe has it both in ``params["prompt"]`` and in ``prompt``; it is taken from the
row's (or recipe's) ``prompt`` and removed from the params, so the new job has exactly one prompt and keeps its
negative prompt (which stays among the params).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk.errors import InvalidRequest
from sdk.options import OPTION_KEYS

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.records import BatchRecord

#: what an override may be called besides a parameter of the spec
REQUEST_KEYS = ("seeds", "options", "inputs", "weights")


@dataclass
class Recipe:
    """What a job was asked to do, as :func:`sdk.queueing.plan_jobs` takes it again."""

    spec_id: str
    kind: str | None
    params: dict[str, Any]
    prompt: str | None
    seed: int
    inputs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: where it came from, for messages: "job 3fa2…" or a file path
    source: str = ""


def load_recipe(project: "Project", source: Any, registry: "PluginRegistry | None" = None) -> Recipe:
    """The recipe of ``source``: a job id (or prefix), a JobRecord, an OutputRecord, an output folder, its
    ``meta.json``, a rendered MP4, or a recipe dict.

    The job's row wins when the job is in this project. Typed inputs are turned back into values the fields' ``parse``
    takes (``from_recipe``). Raises InvalidRequest when ``source`` is neither a job of this project nor a VGen Studio
    recipe, or when the job's row is invalid.
    """
    from sdk.records import JobRecord, OutputRecord

    if registry is None:
        from sdk.plugins import load_plugins

        registry = load_plugins()
    meta: dict[str, Any] | None = None
    label = ""
    if isinstance(source, JobRecord):
        job = project.job(source.id)
    elif isinstance(source, OutputRecord):
        job = _job_or_none(project, source.job_id)
        if job is None:
            meta, label = _read_meta(source.dir), str(source.dir)
    elif isinstance(source, dict):
        meta, label = _checked(source, "this recipe"), "a recipe"
        job = _job_or_none(project, meta.get("job_id"), meta.get("spec_id"))
    else:
        path = Path(os.fspath(source)).expanduser()
        if path.exists():
            meta, label = _read_meta(path), str(path)
            job = _job_or_none(project, meta.get("job_id"), meta.get("spec_id"))
        else:
            job = _job_or_none(project, str(source).strip())
            if job is None:
                raise InvalidRequest(f"{str(source)!r} is neither a job of this project nor an output file.",
                                     hint="Give a job id (`vgen queue list`), an output folder, its meta.json or "
                                          "its video.mp4.", field="job")
    if job is not None:
        return _from_job(project, registry, job)
    assert meta is not None
    return _from_meta(project, registry, meta, label)


def requeue_request(recipe: Recipe, **overrides: Any) -> dict[str, Any]:
    """``plan_jobs`` keyword arguments for ``recipe`` with ``overrides`` applied.

    Overrides: any parameter of the spec (a list is a grid axis, as everywhere: ``guidance_scale=[7, 9]``; a
    list-valued parameter is given as ``[[...]]``), ``prompt``, ``seeds`` (``"1-4"``, an int or a list), ``options``
    (``precision``, ``memory_mode``; they may also come as parameters), ``inputs`` (``{name: value}``, merged over
    the recipe's) and ``weights``. They are validated when the request is planned, like any request.
    """
    params = {k: [v] for k, v in recipe.params.items()}
    options = {k: v for k, v in recipe.options.items() if k in OPTION_KEYS}
    inputs = dict(recipe.inputs)
    prompts: list[Any] = [recipe.prompt] if recipe.prompt else []
    seeds: Any = [recipe.seed]
    weights = recipe.weights
    for key, value in overrides.items():
        if key == "seeds":
            seeds = value
        elif key == "options":
            options.update({k: v for k, v in (value or {}).items()})
        elif key == "inputs":
            inputs.update(value or {})
        elif key == "weights":
            weights = value
        elif key == "prompt":
            prompts = list(value) if isinstance(value, (list, tuple)) else [value]
        elif key in OPTION_KEYS:
            options[key] = value
        else:
            params[key] = list(value) if isinstance(value, (list, tuple)) else [value]
    return {"kind": recipe.kind, "prompts": prompts, "seeds": seeds, "params": params,
            "inputs": {k: v for k, v in inputs.items() if v not in (None, "")}, "weights": weights,
            "options": options}


def requeue(project: "Project", source: Any, *, registry: "PluginRegistry | None" = None,
            **overrides: Any) -> "BatchRecord":
    """Queue ``source`` (see :func:`load_recipe`) again as one batch, with ``overrides`` (see
    :func:`requeue_request`). Without overrides the new job has exactly the original params, prompt, seed, inputs,
    weights and run options. Returns the BatchRecord (with warnings). Raises InvalidRequest (an unknown parameter, a
    bad value, an input that is gone, the output of a job that failed), WeightsMissing."""
    from sdk.queueing import queue_jobs

    if registry is None:
        from sdk.plugins import load_plugins

        registry = load_plugins()
    recipe = load_recipe(project, source, registry)
    return queue_jobs(project, registry, recipe.spec_id, **requeue_request(recipe, **overrides))


# -- reading ------------------------------------------------------------------------------------------------------
def _job_or_none(project: "Project", job_id: Any, spec_id: Any = None) -> Any:
    """The job ``job_id`` of this project (of ``spec_id`` when given), or None."""
    import re

    text = str(job_id or "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{4,12}", text):
        return None
    try:
        job = project.job(text)
    except InvalidRequest:
        return None
    return job if spec_id is None or job.spec_id == spec_id else None


def _read_meta(path: Path) -> dict[str, Any]:
    """An output folder's ``meta.json``, a ``.json`` recipe file, or an MP4's comment tag."""
    from sdk.outputs import read_meta_from_mp4

    if path.is_dir():
        path = path / "meta.json"
        if not path.is_file():
            raise InvalidRequest(f"{path.parent} holds no meta.json.", hint="Give an output folder of VGen Studio.",
                                 field="path")
    if path.suffix.lower() == ".json":
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"Cannot read the recipe {path}: {exc}.", hint="Give an output's meta.json.",
                                 field="path") from None
        return _checked(meta, str(path))
    return _checked(read_meta_from_mp4(path), str(path))


def _checked(meta: Any, what: str) -> dict[str, Any]:
    from sdk.outputs import META_SCHEMA

    schema = str(meta.get("schema", "")) if isinstance(meta, dict) else ""
    if not isinstance(meta, dict) or not meta.get("spec_id") or schema.split("/")[0] != META_SCHEMA.split("/")[0]:
        raise InvalidRequest(f"{what} is not a VGen Studio recipe.",
                             hint="Only outputs rendered by VGen Studio can be queued again from a file.", field="path")
    if not isinstance(meta.get("params") or {}, dict) or not isinstance(meta.get("inputs") or {}, dict):
        raise InvalidRequest(f"The recipe in {what} is damaged: its params or inputs are not objects.",
                             hint="Queue the job again by hand.", field="path")
    return meta


def _from_job(project: "Project", registry: "PluginRegistry", job: Any) -> Recipe:
    if job.problem:
        raise InvalidRequest(f"Job {job.id} cannot be queued again: its row in project.db is invalid ({job.problem}).",
                             hint="Queue a new job instead.", field="job")
    spec = _spec(registry, job.spec_id, job.kind)
    params = dict(job.params)
    stored_prompt = params.pop("prompt", None)
    # a job row stores what each field's parse returned; from_recipe turns that back into what parse takes
    inputs = {f.name: f.from_recipe(project, job.inputs[f.name]) for f in spec.fields if f.name in job.inputs}
    return Recipe(spec_id=job.spec_id, kind=job.kind, params=params,
                  prompt=job.prompt if job.prompt is not None else stored_prompt, seed=int(job.seed), inputs=inputs,
                  weights=job.weights, options=dict(job.options), source=f"job {job.id}")


def _from_meta(project: "Project", registry: "PluginRegistry", meta: dict[str, Any], label: str) -> Recipe:
    kind = meta.get("kind") or None
    spec = _spec(registry, str(meta["spec_id"]), kind)
    params = dict(meta.get("params") or {})
    stored_prompt = params.pop("prompt", None)
    recorded = meta.get("inputs") or {}
    inputs: dict[str, Any] = {}
    for f in spec.fields:
        if recorded.get(f.name) is None:
            continue
        value = f.from_recipe(project, recorded[f.name])
        problem = "" if value not in (None, "") else "it is not recorded in a form this project can find"
        if not problem:
            try:  # a file from another project names assets, subjects … that may not be here: say which input
                f.parse(project, value, deferred=[])
            except InvalidRequest as exc:
                problem = exc.user_message.rstrip(".")
        if problem:
            raise InvalidRequest(f"The {f.name} this output was made from is not in this project ({problem}).",
                                 hint=f"Queue it with that input given again (--input {f.name}={f.value_help}), or "
                                      "re-queue it in the project that made it.", field=f.name)
        inputs[f.name] = value
    try:
        seed = int(meta.get("seed") or 0)
    except (TypeError, ValueError):
        raise InvalidRequest(f"The recipe in {label} has seed {meta.get('seed')!r}, not a number.",
                             hint="Give --seeds.", field="seeds") from None
    prompt = meta.get("prompt")
    return Recipe(spec_id=str(meta["spec_id"]), kind=kind, params=params,
                  prompt=str(prompt) if prompt is not None else stored_prompt, seed=seed, inputs=inputs,
                  weights=str(meta["weights"]) if meta.get("weights") else None,
                  options=dict(meta.get("options") or {}), source=label)


def _spec(registry: "PluginRegistry", spec_id: str, kind: str | None) -> Any:
    return registry.trainer(spec_id) if kind == "train" else registry.spec(spec_id)
