"""The jobs a project template suggests (``"jobs"`` in its ``template.json``, kept as the project fact
``suggested_jobs``), turned into queue requests.

An entry names a ``"generator"`` (or a ``"trainer"``) and may give ``"prompts"`` (texts), ``"all_prompts"`` (every
prompt of the project), ``"seeds"``, ``"params"`` (a list value is a grid axis), ``"inputs"`` and the shorthands
``"image"`` (a file of the built-in template's folder), ``"subject"`` and ``"motion"``, ``"weights"``, and
``"then"`` with ``"then_params"`` (and ``"then_weights"``): a follow-up generator on each job's output (``queue add --then``;
:mod:`sdk.chain`), e.g. ``{"generator": "higen.t2v", "all_prompts": true, "then": "sr600.upscale"}``.
Entries of another shape (a condition extraction) are listed but not queued here.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.records import BatchRecord

_KEYS = {"generator", "trainer", "prompts", "all_prompts", "seeds", "params", "inputs", "image", "subject", "motion",
         "weights", "then", "then_params", "then_weights", "options"}


def suggested_jobs(project: "Project") -> list[dict[str, Any]]:
    """The jobs the project's template suggests (``[]`` when none)."""
    jobs = project.meta("suggested_jobs", []) or []
    return [j for j in jobs if isinstance(j, dict)]


def suggested_request(project: "Project", entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A suggested job → ``(spec id, plan_jobs keyword arguments)``. Raises InvalidRequest(field="template") for an
    entry that is not a generator or trainer job, or that holds keys this version does not know."""
    spec_id = entry.get("generator") or entry.get("trainer")
    unknown = sorted(set(entry) - _KEYS)
    if not isinstance(spec_id, str) or unknown:
        what = f"its keys {', '.join(unknown)} are not known" if unknown else "it names no generator or trainer"
        raise InvalidRequest(f"The template's suggested job {_short(entry)} cannot be queued here: {what}.",
                             hint="Queue it by hand (`vgen queue add`, `vgen train`, `vgen conditions extract`).",
                             field="template")
    prompts: list[Any] = [str(p) for p in entry.get("prompts", [])]
    if entry.get("all_prompts"):
        prompts += [(p.text, p.negative) for p in project.prompts()]
    inputs = dict(entry.get("inputs") or {})
    if entry.get("image"):
        inputs["image"] = str(_template_file(project, str(entry["image"])))
    for name in ("subject", "motion"):
        if entry.get(name) is not None:
            inputs[name] = entry[name]
    request: dict[str, Any] = {"prompts": prompts, "seeds": entry.get("seeds"),
                               "params": dict(entry.get("params") or {}), "inputs": inputs,
                               "weights": entry.get("weights"), "options": entry.get("options")}
    if "trainer" in entry:
        request["kind"] = "train"
    if entry.get("then"):
        request.update(then=str(entry["then"]), then_params=dict(entry.get("then_params") or {}),
                       then_weights=entry.get("then_weights"))
    return spec_id, request


def queue_suggested(project: "Project", registry: "PluginRegistry", index: int | None = None) -> list["BatchRecord"]:
    """Queue the suggested jobs (only the ``index``-th, from 0, when given), one batch each. Raises InvalidRequest
    for an index out of range or an entry that cannot be queued (every entry is read before any is queued)."""
    from sdk.queueing import queue_jobs

    jobs = suggested_jobs(project)
    if index is not None and not 0 <= index < len(jobs):
        raise InvalidRequest(f"The template suggests {len(jobs)} job(s); there is no #{index}.",
                             hint="List them with `vgen queue suggested PROJECT --list`.", field="index")
    requests = [suggested_request(project, e) for e in (jobs if index is None else [jobs[index]])]
    return [queue_jobs(project, registry, spec_id, **request) for spec_id, request in requests]


def _template_file(project: "Project", name: str) -> Path:
    """``name`` inside the built-in template the project was made from; InvalidRequest when it leads out of it (a
    project is untrusted input: its suggestions must not reach other files)."""
    from sdk.project import templates_dir

    info = project.meta("template", {}) or {}
    folder = (templates_dir() / str(info.get("name", "") if isinstance(info, dict) else "")).resolve()
    path = (folder / name).resolve()
    if folder == templates_dir().resolve() or not path.is_relative_to(folder):
        raise InvalidRequest(f"The template's suggested image {name!r} is not a file of a built-in template.",
                             hint="Queue the job by hand with --image FILE.", field="template")
    return path


def _short(entry: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in list(entry.items())[:3])
    return "{" + (text if len(text) <= 80 else text[:79] + "…") + "}"
