"""Turn what a user asks for (prompts × seeds × parameter values) into validated jobs.

Everything is validated before anything is queued: one bad combination refuses the whole batch.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from sdk.errors import InvalidRequest
from sdk.params import parse_seeds, validate_params
from sdk.records import BatchRecord, NewJob

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project

MAX_JOBS_PER_BATCH = 10_000


def plan_jobs(
    project: "Project",
    registry: "PluginRegistry",
    spec_id: str,
    *,
    kind: str | None = None,
    prompts: Sequence[str | tuple[str, str]] = (),
    seeds: str | int | list[int] | None = None,
    params: dict[str, list[Any]] | None = None,
    image: str | Path | None = None,
    subject: str | int | Sequence[str | int] | None = None,
    motion: str | int | Sequence[str | int] | None = None,
    weights: str | None = None,
) -> list[NewJob]:
    """Validate a request and expand it into jobs: every prompt × seed × listed param value is one job.

    ``subject`` / ``motion`` may be lists: each is then one more grid axis. A trainer with ``expands_to`` becomes
    consecutive jobs of those trainers (each gets the params its own model knows)."""
    spec = registry.trainer(spec_id) if kind == "train" else registry.spec(spec_id)
    kind = spec.kind
    params = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in (params or {}).items()}
    args = dict(prompts=prompts, seeds=seeds, image=image, weights=weights)
    if getattr(spec, "expands_to", ()):
        return _expand(project, registry, spec, params, subject=subject, motion=motion, **args)
    if isinstance(subject, (list, tuple)) or isinstance(motion, (list, tuple)):
        jobs = []
        for s in (subject if isinstance(subject, (list, tuple)) else [subject]):
            for m in (motion if isinstance(motion, (list, tuple)) else [motion]):
                jobs += plan_jobs(project, registry, spec_id, kind=kind, params=params, subject=s, motion=m, **args)
        return jobs
    declared = set(spec.inputs)
    required = set(spec.required_inputs if spec.required_inputs is not None else declared)

    # a prompt may come with its own negative prompt: (text, negative)
    negatives = {p[0]: p[1] for p in prompts if isinstance(p, tuple) and p[1]}
    prompts = [p[0] if isinstance(p, tuple) else p for p in prompts if p is not None]
    if "prompt" in params:
        prompts = prompts + [str(p) for p in params.pop("prompt")]
    if "text" in declared and ("text" in required or prompts):
        if not prompts or not any(p.strip() for p in prompts):
            raise InvalidRequest(
                f"{spec_id} needs a prompt.", hint="Give one or more with --prompt TEXT.", field="prompt"
            )
        for p in prompts:
            if not p.strip():
                raise InvalidRequest("A prompt is empty.", hint="Remove the empty --prompt or write some text.", field="prompt")
    elif prompts:
        raise InvalidRequest(f"{spec_id} takes no prompt.", hint="Remove --prompt.", field="prompt")

    inputs: dict[str, Any] = {}
    for name, value in (("image", image), ("subject", subject), ("motion", motion)):
        if value is None:
            continue
        if name not in declared:
            raise InvalidRequest(
                f"{spec_id} takes no {name}.",
                hint=f"It takes: {', '.join(sorted(declared)) or 'nothing but parameters'}.", field=name,
            )
    given = {"image": image, "subject": subject, "motion": motion}
    for name in ("image", "subject", "motion"):
        if name in required and given[name] is None:
            raise InvalidRequest(f"{spec_id} needs a {name}.", hint=f"Give it with --{name}.", field=name)

    seed_list = parse_seeds(seeds)
    keys = sorted(params)
    combos = list(itertools.product(*(params[k] for k in keys))) or [()]
    total = max(1, len(prompts)) * len(seed_list) * len(combos)
    if total > MAX_JOBS_PER_BATCH:
        raise InvalidRequest(
            f"This grid makes {total} jobs.", hint=f"At most {MAX_JOBS_PER_BATCH} per batch: use fewer seeds or values.",
            field="seeds",
        )

    validated: list[tuple[str | None, dict[str, Any]]] = []
    for prompt in prompts or [None]:
        for combo in combos:
            values = dict(zip(keys, combo))
            if prompt is not None:
                values["prompt"] = prompt
                # a prompt's own negative applies where the generator has one (VideoLCM has none)
                if prompt in negatives and "negative_prompt" not in values and "negative_prompt" in spec.params.model_fields:
                    values["negative_prompt"] = negatives[prompt]
            model = validate_params(spec.params, values, spec_id=spec_id)
            validated.append((prompt, model.model_dump(mode="json")))

    # Inputs are resolved after the parameters are known good; an imported image is harmless
    # (content-addressed) even if a later check refuses the batch.
    if subject is not None:
        inputs["subject"] = project.subject(subject).id
    if motion is not None:
        inputs["motion"] = project.motion(motion).id
    if image is not None:
        inputs["image"] = project.import_asset(Path(image), "image").hash

    weights_value = _check_weights(weights, spec.default_weights)
    if getattr(spec, "adapter_params", ()):
        from sdk.adapters import check_adapter_params

        for _, p in validated:
            check_adapter_params(project, spec.adapter_params, p)

    return [
        NewJob(kind=kind, spec_id=spec.id, spec_version=spec.version, params=p, seed=seed, prompt=prompt,
               inputs=dict(inputs), weights=weights_value)
        for prompt, p in validated
        for seed in seed_list
    ]


def _expand(project: "Project", registry: "PluginRegistry", spec: Any, params: dict[str, list[Any]],
            **kwargs: Any) -> list[NewJob]:
    """A composite trainer: the jobs of each trainer in ``spec.expands_to``, in that order (the queue runs them one
    after the other; a later one finds what an earlier one saved at run time, e.g. through "latest" adapters)."""
    subs = [registry.trainer(t) for t in spec.expands_to]
    known = {k for s in subs for k in s.params.model_fields}
    for key in params:
        if key not in known:
            raise InvalidRequest(f"Unknown parameter {key!r} for {spec.id}.",
                                 hint=f"Known parameters: {', '.join(sorted(known))}.", field=key)
    jobs: list[NewJob] = []
    for sub in subs:
        mine = {k: v for k, v in params.items() if k in sub.params.model_fields}
        jobs += plan_jobs(project, registry, sub.id, kind="train", params=mine, **kwargs)
    return jobs


def _check_weights(weights: str | None, default_id: str | None) -> str | None:
    """Weights must be resolvable now, so a batch never fails later for a typo."""
    from sdk import weights as w

    path, wid = w.resolve(weights, default_id)
    return wid if wid is not None and (weights is None or weights == wid) else str(Path(path).resolve())


def queue_jobs(project: "Project", registry: "PluginRegistry", spec_id: str, **kwargs: Any) -> BatchRecord:
    """:func:`plan_jobs` then add them to the queue as one batch (one transaction)."""
    return project.add_jobs(plan_jobs(project, registry, spec_id, **kwargs))
