"""ORM rows → detached records (:mod:`sdk.records`), built inside the session that loaded them."""
from __future__ import annotations

from pathlib import Path

from sdk.records import (
    AdapterRecord,
    AssetRecord,
    JobRecord,
    JobStatus,
    MotionRecord,
    OutputRecord,
    PromptRecord,
    SubjectImageRecord,
    SubjectRecord,
)
from sdk.store import models as m
from sdk.store.assets import asset_rel_path


def asset_record(root: Path, a: m.Asset) -> AssetRecord:
    return AssetRecord(hash=a.hash, kind=a.kind, path=root / asset_rel_path(a.hash, a.ext),
                       original_name=a.original_name, width=a.width, height=a.height,
                       num_frames=a.num_frames, fps=a.fps, bytes=a.bytes)


def subject_record(root: Path, s: m.Subject) -> SubjectRecord:
    images = tuple(
        SubjectImageRecord(asset=asset_record(root, i.asset),
                           mask=asset_record(root, i.mask) if i.mask is not None else None)
        for i in s.images
    )
    return SubjectRecord(id=s.id, name=s.name, token=s.token, images=images)


def motion_record(root: Path, mo: m.Motion) -> MotionRecord:
    return MotionRecord(id=mo.id, name=mo.name, videos=tuple(asset_record(root, v.asset) for v in mo.videos))


def prompt_record(p: m.Prompt) -> PromptRecord:
    return PromptRecord(id=p.id, text=p.text, negative=p.negative)


def adapter_record(root: Path, a: m.Adapter) -> AdapterRecord:
    return AdapterRecord(id=a.id, name=a.name, kind=a.kind, path=root / a.dir, job_id=a.job_id, step=a.step,
                         subject_id=a.subject_id, motion_id=a.motion_id, meta=dict(a.meta or {}))


def job_record(j: m.Job) -> JobRecord:
    return JobRecord(
        id=j.id, batch_id=j.batch_id, kind=j.kind, spec_id=j.spec_id, spec_version=j.spec_version,
        params=dict(j.params or {}), seed=j.seed, prompt=j.prompt, inputs=dict(j.inputs or {}),
        weights=j.weights, status=JobStatus(j.status), position=j.position, attempts=j.attempts,
        created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at,
        progress_step=j.progress_step, progress_total=j.progress_total,
        cancel_requested=bool(j.cancel_requested), error_message=j.error_message,
        error_hint=j.error_hint, error_traceback=j.error_traceback, exit_code=j.exit_code,
    )


def output_record(root: Path, o: m.Output) -> OutputRecord:
    return OutputRecord(
        id=o.id, job_id=o.job_id, dir=root / o.dir, video_path=root / o.video, meta_path=root / o.meta,
        thumb_path=root / o.thumb if o.thumb else None, frames_dir=root / o.frames if o.frames else None,
        created_at=o.created_at,
    )
