"""What the service hands the worker for one job: a :class:`WorkerPayload`, built by :func:`build_payload`.

The service resolves everything the worker needs once, here: the stored row is checked again (it may have been
edited or crafted since it was queued), each declared input is resolved by its field (:mod:`sdk.inputs`) to files
the worker can read, adapters named in params are found, weights are located, and the recipe that will travel
with the output is written. The worker only materialises the plain data into the objects plugins receive.
Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.project import Project
    from sdk.records import JobRecord
    from sdk.specs import JobSpec


@dataclass
class WorkerPayload:
    """One job, ready to run. Plain data only (it crosses a process boundary, and later a cluster's)."""

    job_id: str
    kind: str                       # generate | train | extract | score
    spec_id: str
    spec_version: str
    params: dict[str, Any]          # validated at queue time; the worker builds the params model from them
    seed: int
    #: each declared input resolved to plain data (paths as text), by field name; "adapters" for adapter params
    inputs: dict[str, Any]
    weights: str | None
    weights_id: str | None
    staging_dir: str
    #: the recipe the output carries (meta.json and the MP4 comment)
    meta: dict[str, Any]
    precision: str = "auto"
    memory_mode: str = "auto"
    #: the device the service meant this job for (the worker's own device wins: it was started on it)
    device: str = "auto"
    preview_every: int = 1
    resume_from: str | None = None
    resume_step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_version(spec: "JobSpec", job: "JobRecord") -> None:
    """A job queued against another major version of its generator is refused: its params may mean something
    else now. (Same major version: the params were validated again, so they still fit.)"""
    queued, installed = str(job.spec_version or ""), str(spec.version or "")
    if queued and installed and queued.split(".")[0] != installed.split(".")[0]:
        raise InvalidRequest(f"Job {job.id} was queued for {spec.id} {queued}; {installed} is installed now.",
                             hint="Re-queue it (`vgen jobs requeue PROJECT JOB`) so its params are checked against "
                                  "this version.", field="spec_version")


def build_payload(project: "Project", spec: "JobSpec", job: "JobRecord", *, device: str = "auto",
                  preview_every: int = 1) -> WorkerPayload:
    """Resolve ``job`` for the worker. Raises InvalidRequest (a damaged row, params that no longer validate, an
    input that is gone — naming the field and the path), WeightsMissing; the job then fails, nothing else."""
    from sdk import weights as w
    from sdk.chain import source_meta
    from sdk.options import OPTION_KEYS, validate_options
    from sdk.outputs import build_meta
    from sdk.params import validate_params

    if job.problem:
        raise InvalidRequest(f"This job's row in project.db is invalid ({job.problem}).",
                             hint="The row was damaged or crafted; queue the job again.", field="job")
    check_version(spec, job)
    validate_params(spec.params, job.params, spec_id=spec.id)  # the stored recipe must still be valid
    inputs: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for fld in spec.fields:
        stored = job.inputs.get(fld.name)
        if stored is None:
            if fld.required:
                raise InvalidRequest(f"Job {job.id} lacks its required input {fld.name!r}.",
                                     hint="Queue it again with that input.", field=fld.name)
            continue
        inputs[fld.name], recorded[fld.name] = fld.resolve(project, stored, job=job)
    if spec.adapter_params:
        from sdk.adapters import resolve_adapter_params

        inputs["adapters"] = resolve_adapter_params(
            project, spec.adapter_params, job.params, subject_id=_int(job.inputs.get("subject")),
            motion_id=_int(job.inputs.get("motion")))
        recorded["adapters"] = {k: (v["id"] or v["path"]) if v else None for k, v in inputs["adapters"].items()}
        from sdk.adapters import describe_resolved

        project.add_log(job.id, "INFO", describe_resolved(inputs["adapters"], job.params))
    weights_path, weights_id = (None, None)
    if job.weights is not None or spec.default_weights is not None:
        weights_path, weights_id = w.resolve(job.weights, spec.default_weights)
    options = {**validate_options({k: v for k, v in job.options.items() if k in OPTION_KEYS}, kind=job.kind),
               **{k: v for k, v in job.options.items() if k not in OPTION_KEYS}}
    staging = project.clear_staging(job.id)  # empty: what an earlier attempt left is gone
    meta = build_meta(
        job_id=job.id, kind=job.kind, spec_id=job.spec_id, spec_version=job.spec_version, params=job.params,
        seed=job.seed, prompt=job.prompt, inputs=recorded,
        weights=(weights_id or str(weights_path)) if weights_path is not None else None,
        weights_hashes=w.hash_weights(weights_path) if weights_path is not None else {},
        timings={"queued_at": job.created_at}, options=options, source=source_meta(project, spec, job),
    )
    resume = _latest_checkpoint(project, job)
    return WorkerPayload(
        job_id=job.id, kind=job.kind, spec_id=job.spec_id, spec_version=job.spec_version, params=dict(job.params),
        seed=int(job.seed), inputs=inputs, weights=str(weights_path) if weights_path is not None else None,
        weights_id=weights_id, staging_dir=str(staging), meta=meta, precision=options["precision"],
        memory_mode=options["memory_mode"], device=device, preview_every=preview_every,
        resume_from=str(resume.path) if resume else None, resume_step=resume.step if resume else 0,
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def _latest_checkpoint(project: "Project", job: "JobRecord") -> Any:
    """The adapter a previous attempt of this training job saved last (None if none)."""
    if job.kind != "train":
        return None
    mine = [a for a in project.adapters() if a.job_id == job.id]
    return max(mine, key=lambda a: a.step) if mine else None
