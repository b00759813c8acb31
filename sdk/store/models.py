"""SQLAlchemy 2.0 typed ORM for a project database (``project.db``).

The Alembic revisions under ``sdk/store/migrations/versions`` are the source of truth for the
schema on disk; these classes must describe exactly the same tables (a test compares them).
Times are POSIX seconds (``float``), as in :mod:`sdk.records`.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
JOB_KINDS = ("generate", "train", "extract", "score")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProjectMeta(Base):
    """Key/value facts about the project: name, created_at, app_version, template, suggested_jobs."""

    __tablename__ = "project_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Asset(Base):
    """A content-addressed file under ``assets/<hash[:2]>/<hash>.<ext>``."""

    __tablename__ = "assets"
    __table_args__ = (CheckConstraint("kind IN ('image', 'mask', 'video')", name="kind"),)

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    ext: Mapped[str] = mapped_column(String(16))
    original_name: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    num_frames: Mapped[int] = mapped_column(Integer, default=1)
    fps: Mapped[float | None] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class Subject(Base):
    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)

    images: Mapped[list[SubjectImage]] = relationship(
        back_populates="subject", order_by="SubjectImage.position", cascade="all, delete-orphan"
    )


class SubjectImage(Base):
    __tablename__ = "subject_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    asset_hash: Mapped[str] = mapped_column(ForeignKey("assets.hash"))
    mask_hash: Mapped[str | None] = mapped_column(ForeignKey("assets.hash"))

    subject: Mapped[Subject] = relationship(back_populates="images")
    asset: Mapped[Asset] = relationship(foreign_keys=[asset_hash], lazy="joined")
    mask: Mapped[Asset | None] = relationship(foreign_keys=[mask_hash], lazy="joined")


class Motion(Base):
    __tablename__ = "motions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[float] = mapped_column(Float)

    videos: Mapped[list[MotionVideo]] = relationship(
        back_populates="motion", order_by="MotionVideo.position", cascade="all, delete-orphan"
    )


class MotionVideo(Base):
    __tablename__ = "motion_videos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    asset_hash: Mapped[str] = mapped_column(ForeignKey("assets.hash"))

    motion: Mapped[Motion] = relationship(back_populates="videos")
    asset: Mapped[Asset] = relationship(lazy="joined")


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    negative: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class Job(Base):
    """One queued generate/train request; fields mirror :class:`sdk.records.JobRecord`."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
        Index("ix_jobs_status_position", "status", "position"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    spec_id: Mapped[str] = mapped_column(String(200))
    spec_version: Mapped[str] = mapped_column(String(64), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: how to run it, not what to make: {"precision", "memory_mode", "oom_retry"} (see sdk.options)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, server_default=text("'{}'"), default=dict)
    #: ids of the jobs whose outputs this one takes as inputs: it runs once they all succeeded
    depends_on: Mapped[list[str]] = mapped_column(JSON, server_default=text("'[]'"), default=list)
    seed: Mapped[int] = mapped_column(BigInteger)
    prompt: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    weights: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean(create_constraint=False), default=False)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_hint: Mapped[str | None] = mapped_column(Text)
    error_traceback: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)


class Output(Base):
    """A finished job's folder ``outputs/<job-id>/``; paths are relative to the project folder."""

    __tablename__ = "outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    dir: Mapped[str] = mapped_column(Text)
    video: Mapped[str] = mapped_column(Text)
    meta: Mapped[str] = mapped_column(Text)
    thumb: Mapped[str | None] = mapped_column(Text)
    frames: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    #: kept by the user (the gallery's star)
    starred: Mapped[bool] = mapped_column(Boolean(create_constraint=False), default=False,
                                          server_default=text("0"))
    #: set while the output is deleted but can still be undone (its folder is in ``.trash/``); NULL otherwise
    deleted_at: Mapped[float | None] = mapped_column(Float)


class Adapter(Base):
    """A trained artifact folder ``adapters/<id>/`` (embeddings, adapter weights, LoRA)."""

    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))
    dir: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id", ondelete="SET NULL"))
    motion_id: Mapped[int | None] = mapped_column(ForeignKey("motions.id", ondelete="SET NULL"))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class JobLog(Base):
    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    ts: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_job_logs_job_id_ts", "job_id", "ts"),)


class Condition(Base):
    """A condition video (canny, depth, sketch …) that a condition extractor made from a source: a motion's video,
    an output or an imported video. The video itself is a content-addressed video asset."""

    __tablename__ = "conditions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: what the condition is ("canny", "depth" …): the extractor's ``ConditionSpec.condition``
    kind: Mapped[str] = mapped_column(String(64))
    asset_hash: Mapped[str] = mapped_column(ForeignKey("assets.hash"), index=True)
    extractor: Mapped[str] = mapped_column(String(200))
    extractor_version: Mapped[str] = mapped_column(String(64), default="")
    #: what it was extracted from: {"motion": name, "video": sha} | {"output": job id} | {"asset": sha}
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: the extract job that made it (its output folder previews it)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[float] = mapped_column(Float)

    asset: Mapped[Asset] = relationship(lazy="joined")


class Score(Base):
    """A metric's scores of one job's output; scoring the same output with the same metric again replaces them."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("job_id", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the scored output's job (not the score job, which leaves no output)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(200))
    metric_version: Mapped[str] = mapped_column(String(64), default="")
    #: {name: number}; the first is the metric's headline score
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: how they were computed: the score job, its params, device, time
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
