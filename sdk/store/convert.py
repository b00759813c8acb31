"""ORM rows → detached records (:mod:`sdk.records`), built inside the session that loaded them.

Every row is validated here, because a project folder is untrusted input (DESIGN §3): SQLite keeps
whatever was written (a list where an object belongs, text in an integer column, ``../..`` in an
id), and a crafted or damaged row must never crash a listing or become a path.

- A job row that fails gets a :class:`~sdk.records.JobRecord` whose ``problem`` says what is wrong
  (fields that could not be read get neutral values), so ``jobs()`` can list it as invalid;
  :meth:`~sdk.store.queue.QueueMixin.claim_next_job` fails such rows instead of running them.
- An asset row that fails gets a record with ``problem`` and a path that never exists
  (``assets/.invalid``); subjects and motions built from it carry the problem too.
- Adapter and output rows that fail give ``None`` (listings skip them; lookups by id refuse them).
- Condition and score rows that fail get a record with ``problem`` (a condition's path then never exists, a
  score's values are empty): listings flag them, lookups refuse them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdk.records import (
    AdapterRecord,
    AssetRecord,
    ConditionRecord,
    JobRecord,
    JobStatus,
    MotionRecord,
    OutputRecord,
    PromptRecord,
    ScoreRecord,
    SubjectImageRecord,
    SubjectRecord,
)
from sdk.safe_text import printable
from sdk.store import models as m
from sdk.store.assets import ASSET_KINDS, asset_rel_path
from sdk.store.db import Unreadable
from sdk.store.paths import asset_name_problem, contained, is_id, stored_path_problem

INVALID_ASSET = "assets/.invalid"  # never created: an invalid asset row points here, inside the project
_STATUSES = tuple(s.value for s in JobStatus)

Check = Callable[[Any], bool]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _obj(v: Any) -> bool:
    return isinstance(v, dict)


def describe(v: Any) -> str:
    """A short, printable description of a bad value."""
    if isinstance(v, Unreadable):
        return f"text that is not JSON ({printable(v.text[:40])!r})"
    if isinstance(v, list):
        return "a JSON list"
    if v is None:
        return "empty"
    return f"{type(v).__name__} {printable(repr(v))[:60]}"


def _validate(row: Any, fields: tuple[tuple[str, Check, str], ...]) -> list[str]:
    return [f"{col} is {describe(getattr(row, col))}, not {what}"
            for col, ok, what in fields if not ok(getattr(row, col))]


def _real(root: Path, real_root: Path | None) -> Path:
    return real_root if real_root is not None else Path(os.path.realpath(root))


# ---------------------------------------------------------------- assets, subjects, motions, prompts
_ASSET_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("kind", lambda v: v in ASSET_KINDS, f"one of {', '.join(ASSET_KINDS)}"),
    ("original_name", _str, "text"),
    ("width", lambda v: _int(v) and v >= 0, "a size in pixels"),
    ("height", lambda v: _int(v) and v >= 0, "a size in pixels"),
    ("num_frames", lambda v: _int(v) and v >= 0, "a frame count"),
    ("fps", _opt(_num), "a frame rate"),
    ("bytes", lambda v: _int(v) and v >= 0, "a file size"),
)


def asset_record(root: Path, a: m.Asset, real_root: Path | None = None) -> AssetRecord:
    """The record of an asset row; ``problem`` set (and a path that never exists) if the row is invalid or
    its file is a symlink leading out of the project."""
    problems = _validate(a, _ASSET_FIELDS)
    name_problem = asset_name_problem(a.hash, a.ext)
    rel = INVALID_ASSET
    if name_problem is not None:
        problems.insert(0, name_problem)
    else:
        rel = asset_rel_path(a.hash, a.ext)
        if not contained(root, _real(root, real_root), Path(rel)):
            problems.append(f"{rel} leads outside the project")
            rel = INVALID_ASSET

    def ok(col: str, default: Any) -> Any:
        v = getattr(a, col)
        return v if not any(p.startswith(f"{col} is ") for p in problems) else default

    return AssetRecord(hash=str(a.hash), kind=str(a.kind), path=root / rel, original_name=str(a.original_name),
                       width=ok("width", 0), height=ok("height", 0), num_frames=ok("num_frames", 1),
                       fps=ok("fps", None), bytes=ok("bytes", 0),
                       problem="; ".join(problems) if problems else None)


def _missing_asset(root: Path, hash_: Any, what: str) -> AssetRecord:
    return AssetRecord(hash=str(hash_), kind="image", path=root / INVALID_ASSET, original_name="", width=0,
                       height=0, problem=f"{what} refers to asset {printable(hash_)!r}, which is not in the project")


def _collect(name: Any, token_ok: bool, assets: list[AssetRecord]) -> str | None:
    problems = [] if isinstance(name, str) else [f"name is {describe(name)}, not text"]
    if not token_ok:
        problems.append("token is not text")
    problems += [a.problem for a in assets if a.problem]
    return "; ".join(problems) if problems else None


def subject_record(root: Path, s: m.Subject, real_root: Path | None = None) -> SubjectRecord:
    real = _real(root, real_root)
    images = []
    for n, i in enumerate(s.images, 1):
        asset = asset_record(root, i.asset, real) if i.asset is not None else _missing_asset(root, i.asset_hash,
                                                                                             f"image {n}")
        mask = None
        if i.mask_hash is not None:
            mask = asset_record(root, i.mask, real) if i.mask is not None else _missing_asset(root, i.mask_hash,
                                                                                              f"mask {n}")
        images.append(SubjectImageRecord(asset=asset, mask=mask))
    flat = [x for img in images for x in (img.asset, img.mask) if x is not None]
    return SubjectRecord(id=s.id, name=str(s.name), token=str(s.token), images=tuple(images),
                         problem=_collect(s.name, isinstance(s.token, str), flat))


def motion_record(root: Path, mo: m.Motion, real_root: Path | None = None) -> MotionRecord:
    real = _real(root, real_root)
    videos = tuple(asset_record(root, v.asset, real) if v.asset is not None
                   else _missing_asset(root, v.asset_hash, f"video {n}") for n, v in enumerate(mo.videos, 1))
    return MotionRecord(id=mo.id, name=str(mo.name), videos=videos, problem=_collect(mo.name, True, list(videos)))


def prompt_record(p: m.Prompt) -> PromptRecord:
    return PromptRecord(id=p.id, text=str(p.text), negative=str(p.negative or ""))


# ---------------------------------------------------------------- adapters and outputs
def adapter_problem(root: Path, a: m.Adapter, real_root: Path | None = None) -> str | None:
    """Why an adapter row cannot be used (None when it can)."""
    problems = _validate(a, (
        ("id", is_id, "an adapter id (12 hexadecimal characters)"), ("name", _str, "text"), ("kind", _str, "text"),
        ("job_id", _opt(is_id), "a job id"), ("step", _int, "an integer"), ("subject_id", _opt(_int), "an id"),
        ("motion_id", _opt(_int), "an id"), ("meta", _obj, "a JSON object")))
    where = stored_path_problem(root, _real(root, real_root), a.dir, "adapters")
    if where is not None:
        problems.append(f"dir {where}")
    return "; ".join(problems) if problems else None


def adapter_record(root: Path, a: m.Adapter, real_root: Path | None = None) -> AdapterRecord | None:
    """The record of a valid adapter row, None for an invalid one (see :func:`adapter_problem`)."""
    if adapter_problem(root, a, real_root) is not None:
        return None
    return AdapterRecord(id=a.id, name=a.name, kind=a.kind, path=root / a.dir, job_id=a.job_id, step=a.step,
                         subject_id=a.subject_id, motion_id=a.motion_id, meta=dict(a.meta))


def output_problem(root: Path, o: m.Output, real_root: Path | None = None) -> str | None:
    """Why an output row cannot be used (None when it can)."""
    real = _real(root, real_root)
    problems = _validate(o, (("job_id", is_id, "a job id (12 hexadecimal characters)"),))
    for col in ("dir", "video", "meta", "thumb", "frames"):
        value = getattr(o, col)
        if value is None and col in ("thumb", "frames"):
            continue
        where = stored_path_problem(root, real, value, "outputs")
        if where is not None:
            problems.append(f"{col} {where}")
    return "; ".join(problems) if problems else None


def output_record(root: Path, o: m.Output, real_root: Path | None = None) -> OutputRecord | None:
    """The record of a valid output row, None for an invalid one (see :func:`output_problem`)."""
    if output_problem(root, o, real_root) is not None:
        return None
    return OutputRecord(
        id=o.id, job_id=o.job_id, dir=root / o.dir, video_path=root / o.video, meta_path=root / o.meta,
        thumb_path=root / o.thumb if o.thumb else None, frames_dir=root / o.frames if o.frames else None,
        created_at=o.created_at, starred=bool(o.starred),
    )


# ---------------------------------------------------------------- jobs
_JOB_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("id", is_id, "a job id (12 hexadecimal characters)"),
    ("batch_id", is_id, "a batch id (12 hexadecimal characters)"),
    ("kind", lambda v: v in m.JOB_KINDS, "one of " + ", ".join(m.JOB_KINDS)),
    ("spec_id", lambda v: isinstance(v, str) and bool(v.strip()), "a generator or trainer id"),
    ("spec_version", _str, "text"),
    ("params", _obj, "a JSON object"),
    ("options", _obj, "a JSON object"),
    ("depends_on", lambda v: isinstance(v, list) and all(is_id(x) for x in v), "a list of job ids"),
    ("seed", _int, "an integer"),
    ("prompt", _opt(_str), "text"),
    ("inputs", _obj, "a JSON object"),
    ("weights", _opt(_str), "text"),
    ("status", lambda v: v in _STATUSES, f"one of {', '.join(_STATUSES)}"),
    ("position", _int, "an integer"),
    ("attempts", lambda v: _int(v) and v >= 0, "a count"),
    ("created_at", _num, "a time"),
    ("started_at", _opt(_num), "a time"),
    ("finished_at", _opt(_num), "a time"),
    ("progress_step", _int, "an integer"),
    ("progress_total", _int, "an integer"),
    ("error_message", _opt(_str), "text"),
    ("error_hint", _opt(_str), "text"),
    ("error_traceback", _opt(_str), "text"),
    ("exit_code", _opt(_int), "an integer"),
)
# what a field that failed validation shows in the record (text fields show the raw value as text)
_JOB_NEUTRAL: dict[str, Any] = {"params": {}, "options": {}, "depends_on": [], "inputs": {}, "seed": 0, "status": JobStatus.FAILED.value,
                                "position": 0, "attempts": 0, "created_at": 0.0, "progress_step": 0,
                                "progress_total": 0, "started_at": None, "finished_at": None, "exit_code": None}


def job_problem(j: m.Job) -> str | None:
    """Why a job row is invalid (every field that fails, joined), or None."""
    problems = _validate(j, _JOB_FIELDS)
    return "; ".join(problems) if problems else None


def job_record(j: m.Job) -> JobRecord:
    """The record of a job row. An invalid row (see :func:`job_problem`) gets ``problem`` set and neutral
    values for the fields that failed; its ``id`` is then whatever the row holds and must not be used
    to build a path."""
    values: dict[str, Any] = {}
    bad = []
    for col, ok, _what in _JOB_FIELDS:
        v = getattr(j, col)
        if ok(v):
            values[col] = v
        else:
            bad.append(col)
            values[col] = _JOB_NEUTRAL.get(col, None if v is None else str(v))
    for col in ("id", "batch_id", "kind", "spec_id", "spec_version"):
        if values[col] is None:
            values[col] = ""
    return JobRecord(
        id=values["id"], batch_id=values["batch_id"], kind=values["kind"], spec_id=values["spec_id"],
        spec_version=values["spec_version"], params=dict(values["params"]), options=dict(values["options"]),
        depends_on=tuple(values["depends_on"]),
        seed=values["seed"],
        prompt=values["prompt"], inputs=dict(values["inputs"]), weights=values["weights"],
        status=JobStatus(values["status"]), position=values["position"], attempts=values["attempts"],
        created_at=float(values["created_at"]), started_at=values["started_at"], finished_at=values["finished_at"],
        progress_step=values["progress_step"], progress_total=values["progress_total"],
        cancel_requested=bool(j.cancel_requested), error_message=values["error_message"],
        error_hint=values["error_hint"], error_traceback=values["error_traceback"], exit_code=values["exit_code"],
        problem=job_problem(j) if bad else None,
    )


# ---------------------------------------------------------------- conditions and scores
_CONDITION_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("id", is_id, "a condition id (12 hexadecimal characters)"),
    ("kind", lambda v: isinstance(v, str) and bool(v.strip()), "a condition kind"),
    ("extractor", _str, "an extractor id"),
    ("extractor_version", _str, "text"),
    ("source", _obj, "a JSON object"),
    ("params", _obj, "a JSON object"),
    ("job_id", _opt(is_id), "a job id"),
    ("created_at", _num, "a time"),
)


def condition_record(root: Path, c: m.Condition, real_root: Path | None = None) -> ConditionRecord:
    """The record of a condition row; ``problem`` set (and a path that never exists) when the row or its asset is
    invalid. The path is the asset's, built only from a checked hash (:func:`asset_record`)."""
    problems = _validate(c, _CONDITION_FIELDS)
    asset = asset_record(root, c.asset, real_root) if c.asset is not None else _missing_asset(
        root, c.asset_hash, "the condition")
    if asset.problem:
        problems.append(asset.problem)
    elif asset.kind != "video":
        problems.append(f"its asset {asset.hash[:12]} is a {asset.kind}, not a video")

    def ok(col: str, default: Any) -> Any:
        v = getattr(c, col)
        return v if not any(p.startswith(f"{col} is ") for p in problems) else default

    bad = bool(problems)
    return ConditionRecord(
        id=str(c.id), kind=str(ok("kind", "")), asset_hash=str(c.asset_hash),
        path=root / INVALID_ASSET if bad else asset.path, extractor=str(ok("extractor", "")),
        extractor_version=str(ok("extractor_version", "")), source=dict(ok("source", {})),
        params=dict(ok("params", {})), job_id=ok("job_id", None), created_at=float(ok("created_at", 0.0)),
        num_frames=asset.num_frames, width=asset.width, height=asset.height, fps=asset.fps,
        problem="; ".join(problems) if problems else None)


def _score_values(v: Any) -> bool:
    import math

    return isinstance(v, dict) and bool(v) and all(
        isinstance(k, str) and _num(x) and math.isfinite(x) for k, x in v.items())


_SCORE_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("job_id", is_id, "a job id (12 hexadecimal characters)"),
    ("metric", lambda v: isinstance(v, str) and bool(v.strip()), "a metric id"),
    ("metric_version", _str, "text"),
    ("values", _score_values, "a JSON object of names to finite numbers"),
    ("details", _obj, "a JSON object"),
    ("created_at", _num, "a time"),
)


def score_record(sc: m.Score) -> ScoreRecord:
    """The record of a score row; an invalid one gets ``problem`` and empty values."""
    problems = _validate(sc, _SCORE_FIELDS)

    def ok(col: str, default: Any) -> Any:
        v = getattr(sc, col)
        return v if not any(p.startswith(f"{col} is ") for p in problems) else default

    return ScoreRecord(id=sc.id, job_id=str(sc.job_id), metric=str(ok("metric", "")),
                       metric_version=str(ok("metric_version", "")),
                       values={k: float(x) for k, x in ok("values", {}).items()}, details=dict(ok("details", {})),
                       created_at=float(ok("created_at", 0.0)), problem="; ".join(problems) if problems else None)
