"""Turn what a user asks for (prompts × seeds × parameter values) into validated jobs.

Everything is validated before anything is queued: one bad combination refuses the whole batch, and a refused
batch leaves no trace (an image is imported only once everything else passed, and removed again if the batch
cannot be added). What is worth knowing but not wrong — a prompt longer than the text encoder reads, a step count
that differs from VGen's — comes back as warnings (:attr:`QueuePlan.warnings`, ``BatchRecord.warnings``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from sdk.errors import InvalidRequest
from sdk.licences import check_licence
from sdk.options import OPTION_KEYS, validate_options
from sdk.params import parse_seeds, validate_params
from sdk.records import BatchRecord, NewJob

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project

MAX_JOBS_PER_BATCH = 10_000
#: params whose text the CLIP text encoder reads (77 tokens); ``positive_suffix`` is appended to the prompt first
TEXT_PARAMS = (("prompt", "The prompt"), ("negative_prompt", "The negative prompt"))


class QueuePlan(list):  # type: ignore[type-arg]
    """The jobs of a request (a ``list[NewJob]``), plus ``warnings`` to show the user (one line each) and
    ``new_assets``, the hashes of assets imported for it (removed again if the batch is not added)."""

    def __init__(self, jobs: Sequence[NewJob] = (), warnings: Sequence[str] = (), new_assets: Sequence[str] = ()):
        super().__init__(jobs)
        self.warnings: list[str] = list(warnings)
        self.new_assets: list[str] = list(new_assets)

    def extend_plan(self, other: "QueuePlan | Sequence[NewJob]") -> None:
        self.extend(other)
        for w in getattr(other, "warnings", ()):
            if w not in self.warnings:
                self.warnings.append(w)
        self.new_assets += [h for h in getattr(other, "new_assets", ()) if h not in self.new_assets]


@dataclasses.dataclass(frozen=True)
class PlannedInput:
    """An input value already in its stored form (e.g. ``{"output": "@3"}``: the output of the 3rd job of the same
    batch, which does not exist yet): :func:`plan_jobs` stores it as it is instead of parsing it."""

    stored: Any


def plan_jobs(
    project: "Project",
    registry: "PluginRegistry",
    spec_id: str,
    *,
    then: str | None = None,
    then_params: dict[str, Any] | None = None,
    then_weights: str | None = None,
    **request: Any,
) -> QueuePlan:
    """Validate a request and expand it into jobs: every prompt × seed × listed param value × listed input value
    is one job (see :func:`_plan` for the arguments).

    A spec that takes text and is given no prompt, whose source input (its first input taking outputs) names
    earlier jobs, takes each such job's prompt. ``then`` (a generator with an ``output_action``, e.g.
    ``"sr600.upscale"``) adds a follow-up per job that takes that job's output and waits for it
    (:func:`sdk.chain.add_follow_ups`; ``then_params`` are its params, a list a grid axis; ``then_weights`` its
    weights, default: its default weights).
    Returns a :class:`QueuePlan` (a list of NewJob with ``warnings``). Raises InvalidRequest, WeightsMissing or
    IncompatibleCheckpoint naming the first problem; nothing is written then.
    """
    from sdk.chain import add_follow_ups, follow_up_spec, source_prompts

    if then:
        follow_up_spec(registry, then)  # refuse a wrong --then before any work
    spec = registry.trainer(spec_id) if request.get("kind") == "train" else registry.spec(spec_id)
    given = dict(request.get("inputs") or {})
    found = None
    if spec.takes_text and not request.get("prompts") and "prompt" not in (request.get("params") or {}):
        found = source_prompts(project, spec, given)
    if found and len(set(found)) > 1:  # sources with different prompts: one plan each, with its own prompt
        from sdk.chain import source_field

        name = source_field(spec).name
        values = given[name] if isinstance(given[name], (list, tuple)) else [given[name]]
        plan = QueuePlan()
        try:
            for value, prompt in zip(values, found):
                plan.extend_plan(_plan(project, registry, spec_id, **{**request, "inputs": {**given, name: value},
                                                                       "prompts": [prompt] if prompt else []}))
        except BaseException:
            _discard(project, plan.new_assets)
            raise
    else:
        if found and found[0]:
            request = {**request, "prompts": [found[0]]}
        plan = _plan(project, registry, spec_id, **request)
    if then:
        try:
            plan = add_follow_ups(project, registry, plan, then, then_params, then_weights)
        except BaseException:
            _discard(project, plan.new_assets)
            raise
    return plan


def _plan(
    project: "Project",
    registry: "PluginRegistry",
    spec_id: str,
    *,
    kind: str | None = None,
    prompts: Sequence[str | tuple[str, str]] = (),
    seeds: str | int | list[int] | None = None,
    params: dict[str, list[Any]] | None = None,
    inputs: dict[str, Any] | None = None,
    image: str | Path | None = None,
    subject: str | int | Sequence[str | int] | None = None,
    motion: str | int | Sequence[str | int] | None = None,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
) -> QueuePlan:
    """One request's jobs: every prompt × seed × listed param value × listed input value is one job.

    ``inputs`` maps the spec's declared input fields (:mod:`sdk.inputs`) to what the user gives (a file, a name, an
    id); a list is a grid axis. ``image``, ``subject`` and ``motion`` are shorthands for those inputs. ``options``
    are run options (:mod:`sdk.options`: ``precision``, ``memory_mode``), a value or a list each; they may also come
    among ``params`` (``--param precision=fp32,bf16``). A trainer with ``expands_to`` becomes consecutive jobs of
    those trainers (each gets the params its own model knows; ``"<step trainer id>.<name>"`` gives one step its own
    value). The weights are inspected without running code
    (:mod:`sdk.weights_check`). Returns a :class:`QueuePlan` (a list of NewJob with ``warnings``). Raises
    InvalidRequest, WeightsMissing or IncompatibleCheckpoint naming the first problem; nothing is written then.
    """
    spec = registry.trainer(spec_id) if kind == "train" else registry.spec(spec_id)
    kind = spec.kind
    params = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in (params or {}).items()}
    for key, value in (options or {}).items():
        params.setdefault(key, []).extend(value if isinstance(value, (list, tuple)) else [value])
    given = dict(inputs or {})
    for name, value in (("image", image), ("subject", subject), ("motion", motion)):
        if value is not None:
            given[name] = value
    if getattr(spec, "expands_to", ()):
        return _expand(project, registry, spec, params, prompts=prompts, seeds=seeds, inputs=given, weights=weights)

    # 1. the inputs: each given value checked by its field; a list is a grid axis
    fields = {f.name: f for f in spec.fields}
    for name in given:
        if name not in fields:
            spec.field(name)  # InvalidRequest naming the inputs it takes
    for f in fields.values():
        if f.required and given.get(f.name) in (None, "", [], ()):
            article = "an" if f.name[0] in "aeiou" else "a"
            raise InvalidRequest(f"{spec_id} needs {article} {f.name}.",
                                 hint=f"Give it with --input {f.name}={f.value_help}" + (
                                     f" (or --{f.name})" if f.name in ("image", "subject", "motion") else "") + ".",
                                 field=f.name)
    deferred: list[Any] = []
    input_axes: list[tuple[str, list[Any]]] = []
    for name, value in given.items():
        if value in (None, ""):
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        input_axes.append((name, [v.stored if isinstance(v, PlannedInput) else fields[name].parse(project, v,
                                  deferred=deferred) for v in values]))

    # 2. prompts (a prompt may come with its own negative prompt: (text, negative))
    negatives = {p[0]: p[1] for p in prompts if isinstance(p, tuple) and p[1]}
    prompts = [p[0] if isinstance(p, tuple) else p for p in prompts if p is not None]
    if "prompt" in params:
        prompts = prompts + [str(p) for p in params.pop("prompt")]
    if spec.takes_text:
        prompt_required = "prompt" in spec.params.model_fields and spec.params.model_fields["prompt"].is_required()
        if prompt_required and (not prompts or not any(p.strip() for p in prompts)):
            raise InvalidRequest(f"{spec_id} needs a prompt.", hint="Give one or more with --prompt TEXT.",
                                 field="prompt")
        for p in prompts:
            if not p.strip():
                raise InvalidRequest("A prompt is empty.", hint="Remove the empty --prompt or write some text.",
                                     field="prompt")
    elif prompts:
        raise InvalidRequest(f"{spec_id} takes no prompt.", hint="Remove --prompt.", field="prompt")

    # 3. the grid: prompts × param values × input values × seeds
    seed_list = parse_seeds(seeds)
    keys = sorted(params)
    combos = list(itertools.product(*(params[k] for k in keys))) or [()]
    input_combos = list(itertools.product(*(vals for _, vals in input_axes))) or [()]
    total = max(1, len(prompts)) * len(seed_list) * len(combos) * len(input_combos)
    if total > MAX_JOBS_PER_BATCH:
        raise InvalidRequest(
            f"This grid makes {total} jobs.", hint=f"At most {MAX_JOBS_PER_BATCH} per batch: use fewer seeds or values.",
            field="seeds",
        )
    validated: list[tuple[str | None, dict[str, Any], dict[str, str]]] = []
    warnings: list[str] = []
    # the input names each combination gives, for a params model that checks itself against them (``check_inputs``)
    given_names = [frozenset(n for (n, _), v in zip(input_axes, combo) if v not in (None, "")) for combo in input_combos]
    for prompt in prompts or [None]:
        for combo in combos:
            values = dict(zip(keys, combo))
            run_options = validate_options({k: values.pop(k) for k in OPTION_KEYS if k in values}, kind=kind)
            if prompt is not None:
                values["prompt"] = prompt
                # a prompt's own negative applies where the generator has one (VideoLCM has none)
                if prompt in negatives and "negative_prompt" not in values and "negative_prompt" in spec.params.model_fields:
                    values["negative_prompt"] = negatives[prompt]
            model = validate_params(spec.params, values, spec_id=spec_id)
            check_inputs = getattr(model, "check_inputs", None)
            if callable(check_inputs):
                for names in dict.fromkeys(given_names):
                    check_inputs(names, project)
            validated.append((prompt, model.model_dump(mode="json"), run_options))
            for w in _text_warnings(model) + list(getattr(model, "queue_warnings", lambda: [])()):
                if w not in warnings:
                    warnings.append(w)

    # 4. weights and adapters; files are imported last, so a refused batch leaves no asset behind
    # the licence first: a project that admits commercial-use weights only says so before "not installed"
    for w in check_licence(project, registry, weights or spec.default_weights):
        if w not in warnings:
            warnings.append(w)
    weights_value = _check_weights(weights, spec, registry)
    for_weights = getattr(spec.params, "for_weights", None)
    if callable(for_weights):  # per-model defaults (a size, an fps) the params leave to the weights
        validated = [(pr, for_weights(p, weights_value), o) for pr, p, o in validated]
    if getattr(spec, "adapter_params", ()):
        from sdk.adapters import check_adapter_params, latest_warnings

        cache: dict[str, Any] = {}
        for _, p, _ in validated:
            check_adapter_params(project, spec.adapter_params, p)
            if kind != "generate":
                continue  # a composite trainer's later step finds what its earlier step saves
            for combo in input_combos:
                for w in latest_warnings(project, spec.adapter_params, p, dict(zip([n for n, _ in input_axes], combo)),
                                         cache):
                    if w not in warnings:
                        warnings.append(w)
    new_assets: list[str] = []
    imported: dict[int, str] = {}
    try:
        for thunk in deferred:
            sha, is_new = thunk()
            imported[id(thunk)] = sha
            if is_new:
                new_assets.append(sha)
    except BaseException:
        _discard(project, new_assets)
        raise
    resolved_axes = [[imported.get(id(v), v) for v in combo] for combo in input_combos]
    names = [name for name, _ in input_axes]

    jobs = []
    for prompt, p, o in validated:
        for combo in resolved_axes:
            stored = dict(zip(names, combo))
            deps = sorted({d for name, v in stored.items() if (d := fields[name].depends_on(v))})
            for seed in seed_list:
                jobs.append(NewJob(kind=kind, spec_id=spec.id, spec_version=spec.version, params=p, seed=seed,
                                   prompt=prompt, inputs=dict(stored), weights=weights_value, options=dict(o),
                                   depends_on=tuple(deps)))
    return QueuePlan(jobs, warnings, new_assets)


def _text_warnings(model: Any) -> list[str]:
    """Where the text encoder cuts a prompt or negative prompt (77 CLIP tokens); none for a params class whose
    encoder is not CLIP's (``TEXT_ENCODER = "t5"``: CogVideoX reads 226 T5 tokens)."""
    from sdk.tokens import truncation_warning

    if getattr(type(model), "TEXT_ENCODER", "clip") != "clip":
        return []
    out = []
    for name, what in TEXT_PARAMS:
        text = getattr(model, name, None)
        if not isinstance(text, str) or not text.strip():
            continue
        suffix = getattr(model, "positive_suffix", "") if name == "prompt" else ""
        shown = text if len(text) <= 40 else text[:40] + "…"
        w = truncation_warning(text + (suffix or ""), f'{what} "{shown}"' + (" with its positive_suffix" if suffix else ""))
        if w:
            out.append(w)
    return out


def import_asset_once(project: "Project", path: Path, kind: str) -> tuple[str, bool]:
    """Import ``path`` as an asset of ``kind``: (its hash, whether this import added it to the project)."""
    from sdk.store.assets import MAX_FILE_BYTES

    existed = False
    try:
        if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
            with open(path, "rb") as f:
                sha = hashlib.file_digest(f, "sha256").hexdigest()
            existed = _has_asset(project, sha)
    except OSError:
        pass  # import_asset names the problem
    record = project.import_asset(path, kind)
    return record.hash, not existed


def _has_asset(project: "Project", sha: str) -> bool:
    try:
        project.asset(sha)
    except InvalidRequest:
        return False
    return True


def _discard(project: "Project", hashes: Sequence[str]) -> None:
    """Remove assets this request imported (only those nothing else uses)."""
    for h in hashes:
        try:
            project.discard_asset(h)
        except Exception:  # noqa: BLE001 - cleanup after a failure: the original error is what the user must see
            import logging

            logging.getLogger(__name__).exception("Could not remove asset %s imported for a refused batch", h)


def _expand(project: "Project", registry: "PluginRegistry", spec: Any, params: dict[str, list[Any]],
            **kwargs: Any) -> list[NewJob]:
    """A composite trainer: the jobs of each trainer in ``spec.expands_to``, in that order; a later step's job
    depends on the earlier step's jobs with the same seed and inputs (it finds what they saved when it starts, e.g.
    through "latest" adapters), so cancelling or failing step 1 cancels or fails step 2 instead of running it."""
    subs = [registry.trainer(t) for t in spec.expands_to]
    known = {k for s in subs for k in s.params.model_fields} | set(OPTION_KEYS)
    for key in params:
        step, _, name = key.rpartition(".")
        if key not in known and not (step in spec.expands_to and name in registry.trainer(step).params.model_fields):
            raise InvalidRequest(f"Unknown parameter {key!r} for {spec.id}.",
                                 hint=f"Known parameters: {', '.join(sorted(known))}; a step's own value is "
                                      f"STEP_ID.NAME (e.g. {spec.expands_to[0]}.max_train_steps).", field=key)
    plan = QueuePlan()
    inputs = kwargs.pop("inputs", {})
    try:
        previous: list[tuple[int, NewJob]] = []
        for sub in subs:
            mine = {k: v for k, v in params.items() if k in sub.params.model_fields or k in OPTION_KEYS}
            # "<step id>.<name>" gives one step its own value (steps, learning rate), over a shared one
            mine.update({k.rpartition(".")[2]: v for k, v in params.items() if k.rpartition(".")[0] == sub.id})
            names = {f.name for f in sub.fields}
            step = plan_jobs(project, registry, sub.id, kind="train", params=mine,
                             inputs={k: v for k, v in inputs.items() if k in names}, **kwargs)
            start = len(plan)
            linked = []
            for job in step:
                before = [f"@{i}" for i, p in previous if p.seed == job.seed and p.inputs == job.inputs]
                linked.append(dataclasses.replace(job, depends_on=tuple(job.depends_on) + tuple(before)))
            plan.extend_plan(QueuePlan(linked, step.warnings, step.new_assets))
            previous = list(enumerate(plan[start:], start))
    except BaseException:
        _discard(project, plan.new_assets)
        raise
    return plan


def _check_weights(weights: str | None, spec: Any, registry: "PluginRegistry") -> str | None:
    """Weights must be resolvable now, so a batch never fails later for a typo, and must fit the generator: they
    are inspected without running code (:func:`sdk.weights_check.check_weights`)."""
    from sdk import weights as w
    from sdk.weights_check import check_weights, weights_layouts

    if weights in (None, "") and spec.default_weights is None:
        return None  # a generator that declares no weights runs without any
    path, wid = w.resolve(weights, spec.default_weights)
    check_weights(path, weights_layouts(registry, spec), what=spec.id)
    return wid if wid is not None and (weights is None or weights == wid) else str(Path(path).resolve())


def queue_jobs(project: "Project", registry: "PluginRegistry", spec_id: str, **kwargs: Any) -> BatchRecord:
    """:func:`plan_jobs` then add them to the queue as one batch (one transaction).

    Returns the BatchRecord with the plan's ``warnings``. If the batch cannot be added, images imported for it are
    removed again."""
    plan = plan_jobs(project, registry, spec_id, **kwargs)
    try:
        batch = project.add_jobs(plan)
    except BaseException:
        _discard(project, plan.new_assets)
        raise
    return dataclasses.replace(batch, warnings=tuple(plan.warnings))
