"""The scored output as the vgen_metrics metrics take it: an :class:`~sdk.inputs.OutputRef` that, for the metrics
comparing frames with a subject's images (CLIP-I, DINO-I), also brings the images of the subject the output's job
took. An output whose job took no subject is refused at queue time with :class:`~sdk.conditions.MetricNotApplicable`:
``vgen jobs score`` and the auto metrics then skip it, with the reason in that job's log. Torch-free."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk.conditions import MetricNotApplicable
from sdk.inputs import OutputRef
from sdk.inputs.values import VideoInput

if TYPE_CHECKING:
    from sdk.project import Project


@dataclass
class ScoredVideo(VideoInput):
    """The output's video and recipe, plus the subject's name and image files (empty when not asked for)."""

    subject_name: str | None = None
    subject_images: list[Path] | None = None


@dataclass(frozen=True)
class ScoredOutputRef(OutputRef):
    """An output to score; ``needs_subject``: the output's job must have taken a subject (its images come along)."""

    needs_subject: bool = False

    def _subject_of(self, project: "Project", output_id: str) -> Any:
        return (project.job(output_id).inputs or {}).get("subject")

    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        stored = super().parse(project, value, deferred=deferred)
        if self.needs_subject and self._subject_of(project, stored["output"]) in (None, ""):
            raise MetricNotApplicable(
                f"job {stored['output']} took no subject, so there are no subject images to compare its frames with",
                hint="Score outputs of subject-customised jobs (DreamVideo) with CLIP-I/DINO-I.", field=self.name)
        return stored

    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        data, recorded = super().resolve(project, stored, job=job)
        if self.needs_subject:
            subject = self._subject_of(project, recorded["output"])
            if subject in (None, ""):
                raise MetricNotApplicable(f"job {recorded['output']} took no subject",
                                          hint="Score a subject-customised output.", field=self.name)
            s = project.subject(subject)
            data = dict(data, subject_name=s.name, subject_images=[str(i.asset.path) for i in s.images])
            recorded = dict(recorded, subject=s.name, subject_images=[i.asset.hash for i in s.images])
        return data, recorded

    def materialize(self, data: Any) -> Any:
        v = super().materialize(data)
        return ScoredVideo(v.path, v.num_frames, v.width, v.height, v.fps, v.frames_dir, v.job_id, v.meta,
                           subject_name=data.get("subject_name"),
                           subject_images=[Path(p) for p in data.get("subject_images") or []])
