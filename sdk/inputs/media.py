"""Inputs that are files of the project: images and videos (a file, an asset, a motion's video or an earlier
job's output), and outputs of earlier jobs."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.project import Project

from sdk.inputs.base import JOB_ID_RE as _JOB_ID_RE
from sdk.inputs.base import InputField, _missing
from sdk.inputs.values import VideoInput

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

    @property
    def takes_outputs(self) -> bool:
        return self.accept_outputs

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
    if source.status is JobStatus.SUCCEEDED:
        try:
            project.output(source.id)
        except InvalidRequest as exc:  # its output was deleted (it may be in the trash): nothing to take
            raise _missing(fld, f"job {source.id} has no output any more ({exc.user_message.rstrip('.')})",
                           exc.hint or "Render that job again, or pick another job.") from None
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

    @property
    def takes_outputs(self) -> bool:
        return True

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
