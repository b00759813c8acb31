"""Params that name project Adapters (``GeneratorSpec.adapter_params`` / ``TrainerSpec.adapter_params``).

A value is an adapter id (or id prefix), ``"latest"`` (the newest Adapter of the param's kind trained on the job's
subject or motion), ``"none"`` / ``""`` (no adapter), or the path of a file (e.g. a released checkpoint). A
``<name>_step`` param next to ``<name>_adapter`` picks another checkpoint of the same training job, so adapter
steps are an ordinary grid axis (``--param identity_step=200,400``). Ids are checked when jobs are queued
(:func:`check_adapter_params`); ``latest`` is resolved when the job starts (:func:`resolve_adapter_params`), so a
job queued after its training job in the same batch uses what that job saved.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.project import Project
    from sdk.records import AdapterRecord

LATEST = "latest"
NONE_VALUES = ("", "none")


def step_param(param: str) -> str:
    """``identity_adapter`` → ``identity_step``; ``embedding`` → ``embedding_step``."""
    return param.removesuffix("_adapter") + "_step"


def _is_file(value: str) -> bool:
    return ("/" in value or "\\" in value or "." in value) and Path(value).expanduser().is_file()


def check_adapter_params(project: "Project", adapter_params: Sequence[tuple[str, str]], params: Mapping[str, Any]) -> None:
    """Refuse unknown ids, ids of another kind, and steps their training job never saved (at queue time)."""
    for param, kind in adapter_params:
        value = str(params.get(param, LATEST) or "")
        if value.lower() in NONE_VALUES or value == LATEST or _is_file(value):
            continue
        try:
            rec = project.adapter(value)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{param}={value!r}: {exc.user_message}",
                                 hint=f"Give an Adapter id (see the Adapters tab), '{LATEST}', 'none' or a file path.",
                                 field=param) from None
        if rec.kind != kind:
            raise InvalidRequest(f"{param}={value!r} is a {rec.kind} Adapter, not {kind}.",
                                 hint=f"Pick an Adapter of kind {kind}.", field=param)
        _pick_step(project, rec, int(params.get(step_param(param), 0) or 0), param)


def resolve_adapter_params(project: "Project", adapter_params: Sequence[tuple[str, str]], params: Mapping[str, Any],
                           *, subject_id: int | None = None, motion_id: int | None = None) -> dict[str, Any]:
    """``{param: {"id", "path", "step", "kind", "meta"} | None}`` for a job about to run."""
    out: dict[str, Any] = {}
    for param, kind in adapter_params:
        value = str(params.get(param, LATEST) or "")
        step = int(params.get(step_param(param), 0) or 0)
        if value.lower() in NONE_VALUES:
            out[param] = None
        elif value == LATEST:
            if subject_id is None and motion_id is None:
                out[param] = None
                continue
            mine = [a for a in project.adapters() if a.kind == kind and (
                (subject_id is not None and a.subject_id == subject_id) or (motion_id is not None and a.motion_id == motion_id))]
            if not mine:
                out[param] = None
                continue
            out[param] = _record(_pick_step(project, mine[-1], step, param))  # adapters() is oldest first
        elif _is_file(value):
            p = Path(value).expanduser().resolve()
            out[param] = {"id": None, "path": str(p), "step": step, "kind": kind, "meta": {}}
        else:
            out[param] = _record(_pick_step(project, project.adapter(value), step, param))
    return out


def latest_warnings(project: "Project", adapter_params: Sequence[tuple[str, str]], params: Mapping[str, Any],
                    inputs: Mapping[str, Any], cache: dict[str, Any] | None = None) -> list[str]:
    """Queue-time notices for a job whose ``"latest"`` adapter params will find nothing: a subject or motion it is
    given has no Adapter of those kinds yet and no training job is queued or running on it, so the job runs as if
    that subject/motion had no adapters (e.g. identity only, with an untrained motion). ``cache`` (one dict per
    request) saves the queries across a grid's jobs."""
    latest = [(p, k) for p, k in adapter_params if str(params.get(p, LATEST) or "") == LATEST]
    if not latest:
        return []
    cache = cache if cache is not None else {}
    if "adapters" not in cache:
        cache["adapters"] = project.adapters()
        cache["training"] = [j for j in project.jobs(status=("QUEUED", "RUNNING")) if j.kind == "train"]
    kinds = {k for _, k in latest}
    out = []
    for key in ("subject", "motion"):
        ident = _plain_int(inputs.get(key))
        if ident is None:
            continue
        if any(a.kind in kinds and getattr(a, f"{key}_id") == ident for a in cache["adapters"]):
            continue
        if any(_plain_int(j.inputs.get(key)) == ident for j in cache["training"]):
            continue  # its training runs first; "latest" finds what it saves
        try:
            name = repr(getattr(project, key)(ident).name)
        except InvalidRequest:
            name = f"#{ident}"
        named = ", ".join(f"{p}='{LATEST}'" for p, _ in latest)
        out.append(f"The {key} {name} has no trained adapter yet and no training of it is queued ({named} find "
                   f"none): the video is made without it. Queue its training first, or set those params to 'none'.")
    return out


def describe_resolved(resolved: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """One log line: which adapter each adapter param resolved to when the job started."""
    parts = []
    for param, found in resolved.items():
        asked = str(params.get(param, LATEST) or "none")
        if found is None:
            parts.append(f"{param}: none" + (" (no adapter of this kind was trained for the job's subject/motion)"
                                             if asked == LATEST else ""))
        else:
            what = f"Adapter {found['id']}" if found.get("id") else f"file {found['path']}"
            parts.append(f"{param}: {what} ({found.get('kind')}, step {found.get('step')}"
                         + (", the latest" if asked == LATEST else "") + ")")
    return "Adapters used: " + "; ".join(parts) + "."


def _plain_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    return None


def _pick_step(project: "Project", rec: "AdapterRecord", step: int, param: str) -> "AdapterRecord":
    if step <= 0 or step == rec.step:
        return rec
    same = [a for a in project.adapters() if a.kind == rec.kind and a.job_id == rec.job_id and rec.job_id]
    for a in same:
        if a.step == step:
            return a
    steps = ", ".join(str(a.step) for a in sorted(same, key=lambda a: a.step)) or str(rec.step)
    raise InvalidRequest(f"{step_param(param)}={step}: the training of Adapter {rec.id[:8]} saved no checkpoint at "
                         f"step {step}.", hint=f"Its steps: {steps}.", field=step_param(param))


def _record(rec: "AdapterRecord") -> dict[str, Any]:
    return {"id": rec.id, "path": str(rec.path), "step": rec.step, "kind": rec.kind, "meta": dict(rec.meta)}
