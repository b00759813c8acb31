"""Inputs that name things the project keeps: subjects, motions, adapters and conditions."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.project import Project

from sdk.inputs.base import JOB_ID_RE as _JOB_ID_RE
from sdk.inputs.base import InputField, _missing
from sdk.inputs.values import AdapterInput, ConditionInput, MotionInput, SubjectInput


class _NamedField(InputField):
    what: ClassVar[str] = "subject"

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        getter = getattr(project, self.what)
        record = getter(value)  # InvalidRequest(field=subject/motion) naming the known ones
        if record.problem:
            raise _missing(self, f"the {self.what} {record.name!r} cannot be used ({record.problem})",
                           f"Add the {self.what} again from its files.")
        return record.id

    def _record(self, project: "Project", stored: Any) -> Any:
        try:
            return getattr(project, self.what)(stored)
        except InvalidRequest:
            raise _missing(self, f"the {self.what} {stored!r} is no longer in this project",
                           f"Add the {self.what} again, then queue the job again.") from None

    def describe(self, stored: Any) -> str:
        return f"{self.what} #{stored}"

    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        return recorded.get("name") if isinstance(recorded, dict) else recorded


@dataclass(frozen=True)
class SubjectRef(_NamedField):
    """A project subject (by name or id). The worker gets a :class:`SubjectInput`."""

    kind: ClassVar[str] = "subject"
    value_help: ClassVar[str] = "SUBJECT"
    what: ClassVar[str] = "subject"

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        s = self._record(project, stored)
        for i in s.images:
            for a in (i.asset, i.mask):
                if a is not None and not a.path.is_file():
                    raise _missing(self, f"subject {s.name!r} lost its file {a.path}", "Add the subject again.")
        data = {"name": s.name, "token": s.token, "images": [str(i.asset.path) for i in s.images],
                "masks": [str(i.mask.path) if i.mask else None for i in s.images]}
        return data, {"name": s.name, "images": [i.asset.hash for i in s.images]}

    def materialize(self, data: Any) -> Any:
        return SubjectInput(data["name"], data["token"], [Path(p) for p in data["images"]],
                            [Path(m) if m else None for m in data.get("masks", [])])


@dataclass(frozen=True)
class MotionRef(_NamedField):
    """A project motion (by name or id). The worker gets a :class:`MotionInput`."""

    kind: ClassVar[str] = "motion"
    value_help: ClassVar[str] = "MOTION"
    what: ClassVar[str] = "motion"

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        m = self._record(project, stored)
        for v in m.videos:
            if not v.path.is_file():
                raise _missing(self, f"motion {m.name!r} lost its file {v.path}", "Add the motion again.")
        return {"name": m.name, "videos": [str(v.path) for v in m.videos]}, {"name": m.name,
                                                                               "videos": [v.hash for v in m.videos]}

    def materialize(self, data: Any) -> Any:
        return MotionInput(data["name"], [Path(p) for p in data["videos"]])


@dataclass(frozen=True)
class AdapterRef(InputField):
    """A trained Adapter of ``adapter_kind``: an id (or prefix), ``latest`` (the newest of that kind for the job's
    subject/motion, chosen when the job starts), ``none``, or a checkpoint file. The worker gets an
    :class:`AdapterInput` (None for ``none`` or no Adapter yet)."""

    adapter_kind: str = ""
    kind: ClassVar[str] = "adapter"
    value_help: ClassVar[str] = "ADAPTER"

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        from sdk.adapters import check_adapter_params

        text = str(value).strip()
        check_adapter_params(project, ((self.name, self.adapter_kind),), {self.name: text})
        return text

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        from sdk.adapters import resolve_adapter_params

        inputs = getattr(job, "inputs", {}) or {}
        found = resolve_adapter_params(project, ((self.name, self.adapter_kind),), {self.name: stored},
                                       subject_id=_plain_id(inputs.get("subject")),
                                       motion_id=_plain_id(inputs.get("motion")))[self.name]
        return found, (found["id"] or found["path"]) if found else None

    def materialize(self, data: Any) -> Any:
        if not data:
            return None
        return AdapterInput(data.get("id"), Path(data["path"]), int(data.get("step") or 0), data.get("kind", ""),
                            dict(data.get("meta") or {}))


def _plain_id(value: Any) -> int | None:
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


@dataclass(frozen=True)
class ConditionRef(InputField):
    """A condition video made by a condition extractor (an asset linked to its source); ``condition`` names the
    kind it must be (``depth``, ``canny`` …; empty: any). The value is a condition's id (or prefix), or the id of an
    extract job still to run: the job then waits for it and takes the condition it makes. The worker gets a
    :class:`ConditionInput`."""

    condition: str = ""
    kind: ClassVar[str] = "condition"
    value_help: ClassVar[str] = "CONDITION_ID"

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        text = str(value).strip()
        try:
            cond = project.condition(text)
        except InvalidRequest as exc:
            job = _extract_job(self, project, text)
            if job is None:
                raise _missing(self, exc.user_message.rstrip("."), "Give a condition id (`vgen conditions list`) or the "
                               "id of an extract job (`vgen conditions extract`).") from None
            self._check_kind(_extractor_kind(job.spec_id), f"extract job {job.id}")
            return {"extract": job.id}
        self._check_kind(cond.kind, f"condition {cond.id}")
        return cond.id

    def _check_kind(self, kind: str | None, what: str) -> None:
        if self.condition and kind is not None and kind != self.condition:
            raise _missing(self, f"{what} is {kind or 'of unknown kind'}, not {self.condition}",
                           f"Extract a {self.condition} condition first (`vgen conditions extract`).")

    def depends_on(self, stored: Any) -> str | None:
        return str(stored["extract"]) if isinstance(stored, dict) and stored.get("extract") else None

    def describe(self, stored: Any) -> str:
        if isinstance(stored, dict):
            return f"condition from job {str(stored.get('extract'))[:8]}"
        return f"condition {str(stored)[:8]}"

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        try:
            if isinstance(stored, dict):
                cond = project.condition_of_job(str(stored.get("extract")))
            else:
                cond = project.condition(str(stored))
        except InvalidRequest:
            raise _missing(self, f"condition {stored!r} is no longer in this project", "Extract it again.") from None
        self._check_kind(cond.kind, f"condition {cond.id}")
        if not cond.path.is_file():
            raise _missing(self, f"its file {cond.path} is missing", "Extract the condition again.")
        frames_dir = None
        if cond.job_id:
            try:
                frames_dir = project.output(cond.job_id).frames_dir
            except InvalidRequest:  # the extract job's output is gone: the asset alone serves
                frames_dir = None
        data = {"id": cond.id, "kind": cond.kind, "path": str(cond.path), "extractor": cond.extractor,
                "source": dict(cond.source), "num_frames": cond.num_frames, "meta": cond.meta, "width": cond.width,
                "height": cond.height, "fps": cond.fps,
                "frames_dir": str(frames_dir) if frames_dir is not None and frames_dir.is_dir() else None}
        return data, {"condition": cond.id, "kind": cond.kind, "sha256": cond.asset_hash, "source": dict(cond.source)}

    def materialize(self, data: Any) -> Any:
        return ConditionInput(kind=data["kind"], path=Path(data["path"]), extractor=data.get("extractor", ""),
                              source=dict(data.get("source") or {}), num_frames=int(data.get("num_frames") or 0),
                              meta=dict(data.get("meta") or {}), id=data.get("id", ""),
                              width=int(data.get("width") or 0), height=int(data.get("height") or 0),
                              fps=data.get("fps"),
                              frames_dir=Path(data["frames_dir"]) if data.get("frames_dir") else None)

    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        return recorded.get("condition") if isinstance(recorded, dict) else recorded


def _extract_job(fld: InputField, project: "Project", text: str) -> Any:
    """The extract job ``text`` names (not failed or cancelled), None if it names none. An extract job that failed
    is refused (InvalidRequest), as outputs of failed jobs are."""
    from sdk.records import JobStatus

    if not _JOB_ID_RE.match(text.lower()):
        return None
    try:
        job = project.job(text)
    except InvalidRequest:
        return None
    if job.kind != "extract":
        return None
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise _missing(fld, f"extract job {job.id} {job.status.value.lower()}, so it made no condition",
                       f"Retry it first (`vgen queue retry PROJECT {job.id}`).")
    return job


def _extractor_kind(spec_id: str) -> str | None:
    """The condition kind an extractor makes (None when it is not installed: checked again when the job runs)."""
    from sdk.plugins import load_plugins

    spec = load_plugins().conditions.get(spec_id)
    return (spec.condition or spec_id.rpartition(".")[2]) if spec is not None else None


#: the legacy spelling of inputs (``inputs=("text", "image")``): each name with the field it means
