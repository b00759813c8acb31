"""Typed inputs: what a generator or trainer takes besides its params (DESIGN §4).

A spec declares its inputs as fields, e.g. ``inputs=(ImageRef("image", required=True), VideoRef("video"))``.
Each field class knows its whole path, so queueing, the service, the worker, the CLI and the GUI loop over the
declared fields and never ask "is this an image?":

=============== ============================== ================================== ===================================
field           what the user gives (queue)    stored in the job row              what the worker gets
=============== ============================== ================================== ===================================
``ImageRef``    an image file, or an asset id  the asset's sha256                 ``Path`` of the image
``VideoRef``    a video file, an asset id, or  the asset's sha256, or              :class:`VideoInput`
                (``accept_outputs``) a job id  ``{"output": job id}``
``OutputRef``   a job id (its output)          ``{"output": job id}``              :class:`VideoInput`
``SubjectRef``  a subject's name or id         the subject's id                   :class:`SubjectInput`
``MotionRef``   a motion's name or id          the motion's id                    :class:`MotionInput`
``AdapterRef``  an Adapter id, ``latest``,     the text given                     :class:`AdapterInput` or None
                ``none`` or a file
``ConditionRef`` a condition asset's id        the condition's asset sha256       :class:`ConditionInput`
=============== ============================== ================================== ===================================

A job whose input is another job's output waits for it (:meth:`InputField.depends_on`): ``queue list`` shows what it
waits for, and it runs once that job succeeded (it fails, or is cancelled, with it otherwise).

Nothing here imports torch; the ``*Input`` classes are what plugins receive in ``JobRequest.inputs``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.project import Project

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_JOB_ID_RE = re.compile(r"^[0-9a-f]{4,12}$")


# -- what plugins receive ---------------------------------------------------------------------------------------
@dataclass
class SubjectInput:
    """A subject as a generator/trainer receives it: its token and image files (masks optional)."""

    name: str
    token: str
    images: list[Path]
    masks: list[Path | None] = field(default_factory=list)


@dataclass
class MotionInput:
    name: str
    videos: list[Path]


@dataclass
class VideoInput:
    """A video to work from: an imported file or an earlier job's output (then ``frames_dir`` holds its lossless
    frames and ``meta`` its recipe)."""

    path: Path
    num_frames: int = 0
    width: int = 0
    height: int = 0
    fps: float | None = None
    frames_dir: Path | None = None
    job_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdapterInput:
    id: str | None
    path: Path
    step: int = 0
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConditionInput:
    """A condition video (depth, sketch, canny …) extracted from a source video, as a project asset.

    ``path`` is the asset (H.264, as every output); ``frames_dir`` the extract job's lossless frames while its
    output exists (prefer them: edges and masks survive exactly). ``source`` says what it was extracted from
    (``{"motion": name, "video": sha256}``, ``{"output": job id}`` or ``{"asset": sha256}``); ``meta`` holds the
    extractor's version and params."""

    kind: str
    path: Path
    extractor: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    num_frames: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    width: int = 0
    height: int = 0
    fps: float | None = None
    frames_dir: Path | None = None


# -- fields -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputField:
    """One declared input. ``name`` is how the CLI (``--input NAME=VALUE``), the GUI and ``JobRequest.inputs``
    name it; ``required`` inputs must be given; ``description`` is shown as help."""

    name: str
    required: bool = False
    description: str = ""
    kind: ClassVar[str] = "input"
    #: what the CLI's help says a value looks like
    value_help: ClassVar[str] = "VALUE"

    def check(self) -> None:
        """Raise ValueError when the declaration itself is wrong (the plugin fails to load with the reason)."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"input name {self.name!r} must be a lowercase identifier (a-z, 0-9, _)")

    # queue time (any process) --------------------------------------------------------------------------------
    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        """What the user gave → the JSON stored in the job row. Raises InvalidRequest naming the field.
        Files to import are checked here but not imported: a callable returning ``(sha256, newly added)`` is
        appended to ``deferred`` and returned in place of the value; the caller runs it once the whole batch
        passed and stores the hash (so a batch refused later leaves no asset behind)."""
        raise NotImplementedError

    def depends_on(self, stored: Any) -> str | None:
        """The id of the job whose output this value is (the job then waits for it), or None."""
        return None

    def describe(self, stored: Any) -> str:
        """A short human text for lists (``queue list``, the GUI)."""
        return str(stored)

    # run time (the service) ------------------------------------------------------------------------------------
    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        """The stored value → (what the worker gets, as JSON; what the recipe records). Raises InvalidRequest
        naming the field and the path when the input is gone (the job fails, nothing else)."""
        raise NotImplementedError

    # the worker ------------------------------------------------------------------------------------------------
    def materialize(self, data: Any) -> Any:
        """The worker's JSON → the object the plugin gets."""
        return data

    # re-queue ----------------------------------------------------------------------------------------------------
    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        """A recipe's record of this input → a value :meth:`parse` takes again (None if it cannot be found)."""
        return recorded


def _missing(fld: InputField, what: str, hint: str) -> InvalidRequest:
    return InvalidRequest(f"Input {fld.name!r}: {what}.", hint=hint, field=fld.name)


class _AssetField(InputField):
    asset_kind: ClassVar[str] = "image"

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        text = str(value).strip()
        if re.fullmatch(r"[0-9a-f]{8,64}", text) and not Path(text).exists():
            asset = project.asset(text)  # InvalidRequest(field="asset") if unknown
            if asset.kind != self.asset_kind:
                raise _missing(self, f"asset {text[:12]} is a {asset.kind}, not a {self.asset_kind}",
                               f"Give a {self.asset_kind} file or the id of a {self.asset_kind} asset.")
            return asset.hash
        path = Path(text).expanduser()
        if not path.is_file():
            raise _missing(self, f"no {self.asset_kind} file at {text}", "Check the path.")
        from sdk.store.assets import stage_asset  # validates now (decode, size), imports later

        staged = stage_asset(path, self.asset_kind, project.path / ".staging")
        staged.discard()
        from sdk.queueing import import_asset_once

        deferred.append(lambda: import_asset_once(project, path, self.asset_kind))
        return deferred[-1]

    def describe(self, stored: Any) -> str:
        return f"{self.asset_kind} {str(stored)[:8]}"

    def _asset(self, project: "Project", sha: str) -> Any:
        try:
            asset = project.asset(sha)
        except InvalidRequest:
            raise _missing(self, f"the {self.asset_kind} {str(sha)[:12]} is no longer in this project",
                           "Queue the job again with the file.") from None
        if not asset.path.is_file():
            raise _missing(self, f"its file {asset.path} is missing", "Import the file again, then retry the job.")
        return asset

    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        sha = recorded.get("sha256") if isinstance(recorded, dict) else recorded
        return str(sha) if sha else None


@dataclass(frozen=True)
class ImageRef(_AssetField):
    """An image: a file (imported into the project) or an image asset's id. The worker gets its ``Path``."""

    kind: ClassVar[str] = "image"
    value_help: ClassVar[str] = "IMAGE_FILE"
    asset_kind: ClassVar[str] = "image"

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        asset = self._asset(project, str(stored))
        return str(asset.path), asset.hash

    def materialize(self, data: Any) -> Any:
        return Path(data)


@dataclass(frozen=True)
class VideoRef(_AssetField):
    """A video: a file (imported into the project) or a video asset's id; with ``accept_outputs`` also an earlier
    job's output (by job id), which the job then waits for; with ``accept_motions`` also a project motion's video
    (by motion name: its first video; ``NAME#N``: its N-th). The worker gets a :class:`VideoInput`."""

    accept_outputs: bool = False
    accept_motions: bool = False
    kind: ClassVar[str] = "video"
    value_help: ClassVar[str] = "VIDEO_FILE"
    asset_kind: ClassVar[str] = "video"

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        if self.accept_outputs and _looks_like_job(project, value):
            return _parse_output(self, project, value)
        if self.accept_motions:
            found = _motion_video(self, project, value)
            if found is not None:
                return found
        text = str(value).strip()
        if ((self.accept_motions or self.accept_outputs) and not re.fullmatch(r"[0-9a-f]{8,64}", text)
                and not Path(text).expanduser().is_file()):
            kinds = ["a video file", "a video asset id"] + [w for w, ok in (("a job id", self.accept_outputs),
                                                                            ("a motion name", self.accept_motions)) if ok]
            what = ", ".join(kinds[:-1]) + " or " + kinds[-1]
            raise _missing(self, f"{text!r} is not {what} of this project", f"Give {what}.")
        return super().parse(project, value, deferred=deferred)

    def depends_on(self, stored: Any) -> str | None:
        return _output_id(stored)

    def describe(self, stored: Any) -> str:
        if isinstance(stored, dict) and "motion" in stored:
            return f"motion {stored['motion']} video {str(stored.get('video'))[:8]}"
        return f"output of {str(_output_id(stored))[:8]}" if isinstance(stored, dict) else super().describe(stored)

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        if isinstance(stored, dict) and "motion" in stored:
            asset = self._asset(project, str(stored.get("video")))
            try:
                name: Any = project.motion(stored["motion"]).name
            except InvalidRequest:  # the motion was removed since: its video asset is still there
                name = stored["motion"]
            recorded: Any = {"motion": name, "video": asset.hash}
        elif isinstance(stored, dict):
            return _resolve_output(self, project, stored)
        else:
            asset = self._asset(project, str(stored))
            recorded = asset.hash
        return ({"path": str(asset.path), "num_frames": asset.num_frames, "width": asset.width,
                 "height": asset.height, "fps": asset.fps}, recorded)

    def materialize(self, data: Any) -> Any:
        return _video_input(data)

    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        if isinstance(recorded, dict) and recorded.get("output"):
            return str(recorded["output"])
        if isinstance(recorded, dict) and recorded.get("motion") is not None:
            try:
                videos = [v.hash for v in project.motion(recorded["motion"]).videos]
            except InvalidRequest:
                videos = []
            if recorded.get("video") in videos:
                i = videos.index(recorded["video"])
                return str(recorded["motion"]) + (f"#{i + 1}" if i else "")
            return recorded.get("video")
        return super().from_recipe(project, recorded)


def _motion_video(fld: InputField, project: "Project", value: Any) -> dict[str, Any] | None:
    """``{"motion": id, "video": sha256}`` when ``value`` names a project motion (``NAME`` or ``NAME#N``), None when
    it names none (or is an existing file: a file wins)."""
    text = str(value).strip()
    if not text or Path(text).expanduser().exists():
        return None
    name, index = text, 1
    if not _has_motion(project, text) and "#" in text:
        head, _, tail = text.rpartition("#")
        if tail.isdigit() and _has_motion(project, head):
            name, index = head, int(tail)
    if not _has_motion(project, name):
        return None
    motion = project.motion(name)
    if motion.problem:
        raise _missing(fld, f"the motion {motion.name!r} cannot be used ({motion.problem})",
                       "Add the motion again from its files.")
    if not 1 <= index <= len(motion.videos):
        raise _missing(fld, f"motion {motion.name!r} has {len(motion.videos)} video(s), not a #{index}",
                       f"Give {motion.name}#1 … {motion.name}#{len(motion.videos)}.")
    return {"motion": motion.id, "video": motion.videos[index - 1].hash}


def _has_motion(project: "Project", name: str) -> bool:
    return any(mo.name == name for mo in project.motions())


def _looks_like_job(project: "Project", value: Any) -> bool:
    text = str(value).strip().lower()
    if not _JOB_ID_RE.match(text) or Path(text).exists():
        return False
    try:
        project.job(text)
    except InvalidRequest:
        return False
    return True


def _video_input(data: dict[str, Any]) -> VideoInput:
    return VideoInput(path=Path(data["path"]), num_frames=int(data.get("num_frames") or 0),
                      width=int(data.get("width") or 0), height=int(data.get("height") or 0), fps=data.get("fps"),
                      frames_dir=Path(data["frames_dir"]) if data.get("frames_dir") else None,
                      job_id=data.get("job_id"), meta=dict(data.get("meta") or {}))


def _output_id(stored: Any) -> str | None:
    return str(stored["output"]) if isinstance(stored, dict) and stored.get("output") else None


def _parse_output(fld: InputField, project: "Project", value: Any) -> dict[str, str]:
    from sdk.records import JobStatus

    try:
        source = project.job(str(value).strip())
    except InvalidRequest:
        raise _missing(fld, f"there is no job {str(value)!r} in this project",
                       "Give the id of a job whose output to use (`vgen queue list`).") from None
    if source.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise _missing(fld, f"job {source.id} {source.status.value.lower()}, so it has no output",
                       f"Retry it first (`vgen queue retry PROJECT {source.id}`), or pick another job.")
    if source.kind != "generate":
        raise _missing(fld, f"job {source.id} is a {source.kind} job and makes no video", "Give the id of a generate job.")
    return {"output": source.id}


def _resolve_output(fld: InputField, project: "Project", stored: Any) -> tuple[Any, Any]:
    source_id = _output_id(stored)
    try:
        out = project.output(str(source_id))
    except InvalidRequest:
        raise _missing(fld, f"job {source_id} has no output (it did not succeed)",
                       "Retry that job, then this one.") from None
    if not out.video_path.is_file():
        raise _missing(fld, f"the output video {out.video_path} is missing", "Render that job again.")
    from sdk.outputs import read_output_meta

    meta = read_output_meta(out.dir)
    data = {"path": str(out.video_path), "num_frames": int(meta.get("num_frames") or 0),
            "width": int(meta.get("width") or 0), "height": int(meta.get("height") or 0), "fps": meta.get("fps"),
            "frames_dir": str(out.frames_dir) if out.frames_dir else None, "job_id": source_id, "meta": meta}
    return data, {"output": source_id, "spec_id": meta.get("spec_id")}


@dataclass(frozen=True)
class OutputRef(InputField):
    """An earlier job's output (by job id or prefix). The job waits for that job; it is refused at queue time when
    that job failed or was cancelled. The worker gets a :class:`VideoInput` of the output."""

    kind: ClassVar[str] = "output"
    value_help: ClassVar[str] = "JOB_ID"

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        return _parse_output(self, project, value)

    def depends_on(self, stored: Any) -> str | None:
        return _output_id(stored)

    def describe(self, stored: Any) -> str:
        return f"output of {str(_output_id(stored))[:8]}"

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        return _resolve_output(self, project, stored)

    def materialize(self, data: Any) -> Any:
        return _video_input(data)

    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        return _output_id(recorded)


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
LEGACY = {"image": ImageRef, "subject": SubjectRef, "motion": MotionRef, "video": VideoRef}
FIELD_TYPES: tuple[type[InputField], ...] = (ImageRef, VideoRef, OutputRef, SubjectRef, MotionRef, AdapterRef,
                                             ConditionRef)


def normalize(inputs: Any, required: Any) -> tuple[bool, tuple[InputField, ...]]:
    """A spec's declared inputs → (takes text?, fields). Strings are the legacy spelling: ``"text"`` (prompts)
    and the names in :data:`LEGACY`; ``required`` (legacy ``required_inputs``) marks those fields required.
    Raises ValueError for anything else."""
    takes_text = False
    out: list[InputField] = []
    for item in inputs or ():
        if item == "text":
            takes_text = True
        elif isinstance(item, str):
            if item not in LEGACY:
                raise ValueError(f"unknown input {item!r}; declare a typed field (ImageRef, VideoRef, …)")
            out.append(LEGACY[item](item, required=required is None or item in required))
        elif isinstance(item, InputField):
            out.append(item)
        else:
            raise ValueError(f"input {item!r} is neither a typed field nor a known name")
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise ValueError(f"input names repeat: {', '.join(names)}")
    for f in out:
        f.check()
    return takes_text, tuple(out)
