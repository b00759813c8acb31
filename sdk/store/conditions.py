"""Conditions (condition videos made by extractors) and scores (what metrics say about outputs).

Mixed into :class:`sdk.Project`. Anyone may read them; the writers marked "RenderService only" are called when an
extract or score job finishes (:func:`sdk.conditions.publish_result`):

- an extract job's video is published as an output (so it can be previewed like any other) and, in the same
  transaction, stored as a content-addressed video asset with a ``conditions`` row linking it to its source and
  to the extractor's id and version;
- a score job leaves no output: its values go into ``scores`` for the scored output's job (one row per job and
  metric; scoring again replaces them) and into that output's ``meta.json``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sdk.errors import InvalidRequest, UnsafeProject, VGenError
from sdk.records import ConditionRecord, JobStatus, OutputRecord, ScoreRecord
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.access import StoreAccess
from sdk.store.assets import stage_asset
from sdk.store.catalog import by_prefix, new_id
from sdk.store.convert import _score_values, condition_record, score_record
from sdk.store.paths import check_id, is_id, real_dir

log = logging.getLogger(__name__)
_INVALID_HINT = ("The row was damaged or crafted by hand; nothing was read through it. Extract the condition again, "
                 "or ask whoever sent the project for a clean copy.")


def _matches(source: Mapping[str, Any], wanted: Mapping[str, Any] | str) -> bool:
    if isinstance(wanted, Mapping):
        return all(source.get(k) == v for k, v in wanted.items())
    return any(str(v) == wanted or (len(wanted) >= 4 and is_id(v) and str(v).startswith(wanted))
               for v in source.values())


def scored_job_id(inputs: Mapping[str, Any], depends_on: Any) -> str | None:
    """The job whose output a score job scores: its ``output`` input (an :class:`~sdk.inputs.OutputRef`), else the
    first job it waits for."""
    value = inputs.get("output") if isinstance(inputs, Mapping) else None
    if isinstance(value, Mapping) and is_id(value.get("output")):
        return str(value["output"])
    deps = list(depends_on or ())
    return str(deps[0]) if deps and is_id(deps[0]) else None


class ConditionsMixin(StoreAccess):
    # ------------------------------------------------------------------ everybody
    def conditions(self, source: Mapping[str, Any] | str | None = None, kind: str | None = None
                   ) -> list[ConditionRecord]:
        """Conditions, oldest first; optionally only those of a ``kind`` (``"canny"``) and/or extracted from
        ``source``: a dict its source must contain (``{"motion": "run"}``, ``{"output": job_id}``), or a text any of
        its source's values equals (a motion name, a job id or its prefix, an asset hash). Rows that fail validation
        are listed with ``problem`` set."""
        with self._reading() as s:
            rows = s.scalars(select(m.Condition).order_by(m.Condition.created_at, m.Condition.id))
            records = [condition_record(self.path, c, self.real_path) for c in rows]
        if kind is not None:
            records = [r for r in records if r.kind == kind]
        if source is not None:
            records = [r for r in records if _matches(r.source, source)]
        return records

    def condition(self, id_or_prefix: str) -> ConditionRecord:
        """A condition by id or id prefix; InvalidRequest(field="condition") if unknown or ambiguous, UnsafeProject
        if its row (or its asset's) is invalid."""
        with self._reading() as s:
            row = by_prefix(s, m.Condition, m.Condition.id, id_or_prefix, "condition")
            record = condition_record(self.path, row, self.real_path)
        return _refuse(record)

    def condition_of_job(self, job_id: str) -> ConditionRecord:
        """The condition an extract job made; InvalidRequest(field="job") if it made none (yet)."""
        with self._reading() as s:
            row = s.scalar(select(m.Condition).where(m.Condition.job_id == str(job_id))
                           .order_by(m.Condition.created_at.desc()).limit(1))
            if row is None:
                raise InvalidRequest(f"Job {printable(job_id)} has made no condition.",
                                     hint="Conditions come from extract jobs that succeeded (`vgen conditions list`).",
                                     field="job")
            record = condition_record(self.path, row, self.real_path)
        return _refuse(record)

    def scores(self, job_id: str | None = None, metric: str | None = None) -> list[ScoreRecord]:
        """Scores, oldest first; optionally only those of one job's output (its id or prefix) and/or one metric.
        Rows that fail validation are listed with ``problem`` set and no values."""
        with self._reading() as s:
            q = select(m.Score).order_by(m.Score.created_at, m.Score.id)
            if job_id is not None:
                q = q.where(m.Score.job_id == by_prefix(s, m.Job, m.Job.id, job_id, "job").id)
            if metric is not None:
                q = q.where(m.Score.metric == metric)
            return [score_record(sc) for sc in s.scalars(q)]

    # ------------------------------------------------------------------ RenderService only
    def finish_extract_job(self, job_id: str, staging_dir: Path, *, kind: str) -> tuple[OutputRecord, ConditionRecord]:
        """Publish a finished extract job: its output as :meth:`finish_job` does and, in the same transaction, its
        video as a video asset and a ``conditions`` row of ``kind`` linked to the job's source input and to the
        extractor (the job's spec id and version). A video that does not decode fails here (nothing is recorded).
        """
        job_id = check_id(job_id, "job")
        staging_dir = Path(staging_dir)
        own = real_dir(self.path, ".staging", create=False) / job_id
        if staging_dir.is_symlink() or os.path.realpath(staging_dir) != os.path.realpath(own):
            raise UnsafeProject(f"Job {job_id}: {staging_dir} is not its staging folder {own}; nothing was published.",
                                hint="Outputs are published only from the job's own folder in .staging/.")
        with self._writing_files():
            # decoded and hashed before the transaction: a long video does not hold the write lock
            staged = stage_asset(staging_dir / "video.mp4", "video", real_dir(self.path, ".staging"))
        made: list[ConditionRecord] = []

        def record(s: Session, row: m.Job, out_dir: Path) -> None:
            asset = self._store_staged(s, staged, placed)  # type: ignore[attr-defined]
            cond = m.Condition(id=new_id(), kind=str(kind), asset=asset, extractor=row.spec_id,
                               extractor_version=row.spec_version or "", source=_source_of(s, row.inputs),
                               params=dict(row.params), job_id=row.id, created_at=time.time())
            s.add(cond)
            s.flush()
            made.append(_refuse(condition_record(self.path, cond, self.real_path)))

        with self._placing([staged]) as placed:  # type: ignore[attr-defined]
            output = self.finish_job(job_id, staging_dir, record=record)  # type: ignore[attr-defined]
        return output, made[0]

    def finish_score_job(self, job_id: str, staging_dir: Path) -> ScoreRecord:
        """Record a finished score job: the values its metric wrote (``meta.json`` ``"scores"`` in its staging
        folder) become the ``scores`` row of the scored job and metric (replacing an earlier one), the score job
        is SUCCEEDED — in one transaction — and the values are added to the scored output's ``meta.json``. A score
        job has no output of its own; its staging folder is dropped."""
        job_id = check_id(job_id, "job")
        own = real_dir(self.path, ".staging", create=False) / job_id
        if Path(staging_dir).is_symlink() or os.path.realpath(staging_dir) != os.path.realpath(own):
            raise UnsafeProject(f"Job {job_id}: {staging_dir} is not its staging folder {own}; nothing was recorded.",
                                hint="Scores are read only from the job's own folder in .staging/.")
        try:
            meta = json.loads((own / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"Job {job_id} left no readable meta.json with its scores ({exc}).",
                                 hint="This is a bug in the metric or the worker; retry the job.", field="job") from exc
        values = meta.get("scores") if isinstance(meta, dict) else None
        if not _score_values(values):
            raise InvalidRequest(f"Job {job_id} wrote no scores (got {printable(repr(values))[:80]}).",
                                 hint="A metric returns a dict of names to finite numbers.", field="job")
        with self._writing() as s:
            row = self._running_row(s, job_id)  # type: ignore[attr-defined]
            if row.status != JobStatus.RUNNING.value:
                raise InvalidRequest(f"Job {job_id} is {row.status}, not RUNNING; it cannot be finished.", field="job")
            scored = scored_job_id(row.inputs, row.depends_on)
            if scored is None or s.get(m.Job, scored) is None:
                raise InvalidRequest(f"Job {job_id} scores job {printable(scored)}, which is no longer in this "
                                     "project.", hint="Score another output.", field="output")
            now = time.time()
            details = {"score_job": job_id, "params": dict(row.params), "timings": meta.get("timings") or {},
                       "runtime": meta.get("runtime") or {}}
            sc = s.scalar(select(m.Score).where(m.Score.job_id == scored, m.Score.metric == row.spec_id))
            if sc is None:
                sc = m.Score(job_id=scored, metric=row.spec_id)
                s.add(sc)
            sc.metric_version, sc.values, sc.details, sc.created_at = row.spec_version or "", dict(values), details, now
            row.status = JobStatus.SUCCEEDED.value
            row.finished_at = now
            row.progress_step = max(row.progress_step, row.progress_total)
            s.flush()
            result = score_record(sc)
        self._drop_staging(job_id)  # type: ignore[attr-defined]
        self._note_score(result)
        return result

    def _note_score(self, score: ScoreRecord) -> None:
        """Add a score to its output's ``meta.json`` (the output then carries it wherever it is copied). The
        database already holds it: a failure here is logged, not raised."""
        try:
            out = self.output(score.job_id)  # type: ignore[attr-defined]
            with self._writing_files():
                path = out.meta_path
                meta = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
                if not isinstance(meta, dict):
                    return
                scores = meta.get("scores") if isinstance(meta.get("scores"), dict) else {}
                scores[score.metric] = {"values": score.values, "metric_version": score.metric_version,
                                        "scored_at": score.created_at}
                meta["scores"] = scores
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
                os.replace(tmp, path)
        except (OSError, ValueError, VGenError) as exc:
            log.warning("score of %s by %s is in project.db but not in its meta.json: %s", score.job_id,
                        score.metric, exc)


def _refuse(record: ConditionRecord) -> ConditionRecord:
    if record.problem:
        raise UnsafeProject(f"The condition {printable(record.id)!r} cannot be used: its row in project.db is invalid "
                            f"({record.problem}).", hint=_INVALID_HINT)
    return record


def _source_of(s: Session, inputs: Any) -> dict[str, Any]:
    """What an extract job extracted from, as its stored source input says: ``{"motion": name, "video": sha}``,
    ``{"output": job id}`` or ``{"asset": sha}`` (the ``video`` input by convention, else the first one)."""
    if not isinstance(inputs, Mapping) or not inputs:
        return {}
    value = inputs["video"] if "video" in inputs else next(iter(inputs.values()))
    if isinstance(value, Mapping) and value.get("output"):
        return {"output": str(value["output"])}
    if isinstance(value, Mapping) and value.get("motion") is not None:
        motion = s.get(m.Motion, value["motion"]) if isinstance(value["motion"], int) else None
        return {"motion": motion.name if motion is not None else str(value["motion"]), "video": value.get("video")}
    if isinstance(value, str):
        return {"asset": value}
    return {"input": value}
