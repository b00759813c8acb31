"""What a project holds besides its queue: assets, subjects, motions, prompts and adapters.

Mixed into :class:`sdk.Project`; every method opens its own short transaction and returns
detached records. Files are validated before any transaction starts, so a refused import
changes nothing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from sdk.errors import InvalidFiles, InvalidRequest, UnsafeProject
from sdk.records import AdapterRecord, AssetRecord, MotionRecord, PromptRecord, SubjectRecord
from sdk.store import models as m
from sdk.store.assets import StagedAsset, asset_rel_path, place_staged, stage_asset
from sdk.store.convert import (
    adapter_problem,
    adapter_record,
    asset_record,
    motion_record,
    prompt_record,
    subject_record,
)
from sdk.safe_text import printable
from sdk.store.paths import asset_name_problem, real_dir, remove_entry
from sdk.store.removal import RemovalMixin

PathLike = str | os.PathLike[str]


def slug(name: str) -> str:
    """``"My Dog"`` → ``"my-dog"`` (used for default subject tokens)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "subject"


def new_id() -> str:
    """12 hex characters: job, batch and adapter ids."""
    return uuid.uuid4().hex[:12]


#: where a user finds the ids of each kind (named in "no such id" hints)
_WHERE_IDS = {"job": "Run `vgen queue list PROJECT`", "condition": "Run `vgen conditions list PROJECT`",
              "adapter": "Open the Adapters tab of VGen Studio (adapters are listed under their subject or motion)",
              "asset": "Run `vgen subject list PROJECT --json` (an asset id starts its file's name)"}


def by_prefix(s: Session, model: Any, column: Any, prefix: str, field: str) -> Any:
    """The one row whose ``column`` starts with ``prefix``; InvalidRequest if none or several."""
    text = str(prefix).strip().lower()
    if not text or not re.fullmatch(r"[0-9a-f]+", text):
        raise InvalidRequest(f"{prefix!r} is not a {field} id.", hint=f"Give a {field} id or the first "
                             "characters of one (hexadecimal).", field=field)
    rows = s.scalars(select(model).where(column.startswith(text, autoescape=True)).limit(2)).all()
    if not rows:
        raise InvalidRequest(f"No {field} with id {prefix!r} in this project.",
                             hint=f"{_WHERE_IDS.get(field, 'List them')} to see the ids.", field=field)
    if len(rows) > 1:
        raise InvalidRequest(f"The {field} id prefix {prefix!r} is ambiguous.",
                             hint="Type more characters of the id.", field=field)
    return rows[0]


NAME_MAX_CHARS = 200


def _checked_text(value: str, field: str, what: str, *, one_line: bool = False, limit: int | None = None) -> str:
    """``value`` stripped, refused (InvalidRequest naming the field) when it holds control characters, a line
    break where one line is expected, or more than ``limit`` characters (names: 200; prompts: the params limit)."""
    from sdk.params import MAX_TEXT_CHARS
    from sdk.safe_text import refuse_controls

    value = (value or "").strip()
    refuse_controls(value, field, what)
    if one_line and ("\n" in value or "\t" in value):
        raise InvalidRequest(f"The {what} {printable(value[:60])!r} spans several lines.",
                             hint="Give a one-line name.", field=field)
    limit = limit or (NAME_MAX_CHARS if one_line else MAX_TEXT_CHARS)
    if len(value) > limit:
        raise InvalidRequest(f"The {what} is {len(value):,} characters long.",
                             hint=f"Keep it to {limit:,} characters.", field=field)
    return value


def _refuse_invalid(record: Any, what: str) -> Any:
    """Lookups by name or id refuse a record built from an invalid row (listings show it flagged)."""
    if record.problem:
        label = printable(getattr(record, "name", None) or getattr(record, "hash", "?"))
        raise UnsafeProject(f"The {what} {label!r} cannot be used: its row in project.db is invalid ({record.problem}).",
                            hint="The row was damaged or crafted by hand; import the files again under a new name, "
                                 "or ask whoever sent the project for a clean copy.")
    return record


def _invalid_files(bad: dict[str, InvalidRequest], total: int, what: str) -> InvalidFiles:
    """One error for every refused file: a single one keeps its own words; several are listed by name."""
    problems = {path: exc.user_message for path, exc in bad.items()}
    first = next(iter(bad.values()))
    if len(bad) == 1:
        return InvalidFiles(first.user_message, first.hint, field=first.field, problems=problems)
    listed = "; ".join(f"{Path(p).name} ({_IMPORT_PROBLEM.sub('', msg).rstrip('.')})" for p, msg in problems.items())
    return InvalidFiles(f"{len(bad)} of the {total} files of {what or 'this import'} cannot be used: {listed}.",
                        first.hint + " Remove or replace those files; the others are fine.", field=first.field,
                        problems=problems)


_IMPORT_PROBLEM = re.compile(r"^Cannot import .* as an? \w+: ")


class CatalogMixin(RemovalMixin):
    # ------------------------------------------------------------------ assets
    def _imports_dir(self) -> Path:
        # temp copies sit directly in .staging/ as ".import-*" files, gone when the import ends
        return real_dir(self.path, ".staging")

    @contextmanager
    def _placing(self, staged: Sequence[StagedAsset | None]) -> Iterator[list[Path]]:
        """Discard staged copies on the way out; undo files newly placed if the transaction failed."""
        placed: list[Path] = []
        try:
            yield placed
        except BaseException:
            for p in placed:
                p.unlink(missing_ok=True)
            raise
        finally:
            for st in staged:
                if st is not None:
                    st.discard()

    def _store_staged(self, s: Session, st: StagedAsset, placed: list[Path]) -> m.Asset:
        row = s.get(m.Asset, st.hash)
        problem = asset_name_problem(st.hash, st.ext)
        if problem is not None:
            raise InvalidRequest(f"Cannot store {st.original_name}: {problem}.", hint="Report this as a bug.",
                                 field=st.kind)
        real_dir(self.path, "assets", st.hash[:2])  # assets/ and assets/<xx> are real folders, never links
        if place_staged(st, self.path):
            placed.append(self.path / st.rel_path())
        if row is None:
            row = m.Asset(hash=st.hash, kind=st.kind, ext=st.ext, original_name=st.original_name,
                          width=st.width, height=st.height, num_frames=st.num_frames, fps=st.fps,
                          bytes=st.bytes, created_at=time.time())
            s.add(row)
        return row

    def import_asset(self, src: PathLike, kind: str) -> AssetRecord:
        """Validate ``src`` (decode it fully) and store a content-addressed copy.

        Args: src: the file; kind: ``"image"``, ``"mask"`` or ``"video"``.
        Returns the AssetRecord; importing the same bytes again returns the same record.
        Raises InvalidRequest(field=kind) naming the file and the problem; nothing is stored then.
        """
        with self._writing_files():
            st = stage_asset(src, kind, self._imports_dir())
        with self._placing([st]) as placed, self._writing() as s:
            return asset_record(self.path, self._store_staged(s, st, placed), self.real_path)

    def asset(self, hash_or_prefix: str) -> AssetRecord:
        """The asset whose sha256 starts with ``hash_or_prefix``; InvalidRequest(field="asset") otherwise."""
        with self._reading() as s:
            record = asset_record(self.path, by_prefix(s, m.Asset, m.Asset.hash, hash_or_prefix, "asset"),
                                  self.real_path)
        return _refuse_invalid(record, "asset")

    def discard_asset(self, sha: str) -> bool:
        """Remove the asset ``sha`` if nothing refers to it (no subject image, mask, motion video or job): undoes
        an import whose batch was refused after all. Returns True if it was removed."""
        from sqlalchemy import String, cast, or_

        with self._writing() as s:
            row = s.get(m.Asset, sha)
            if row is None or asset_name_problem(row.hash, row.ext):
                return False
            refs = (select(m.SubjectImage.id).where(or_(m.SubjectImage.asset_hash == sha, m.SubjectImage.mask_hash == sha)),
                    select(m.MotionVideo.id).where(m.MotionVideo.asset_hash == sha),
                    select(m.Job.id).where(cast(m.Job.inputs, String).contains(sha)))
            if any(s.scalar(q.limit(1)) is not None for q in refs):
                return False
            name = asset_rel_path(sha, row.ext).rsplit("/", 1)[1]
            s.delete(row)
        with self._writing_files():
            remove_entry(real_dir(self.path, "assets", sha[:2]), name)
        return True

    def _stage_all(self, items: Sequence[tuple[PathLike | None, str]], what: str = "") -> list[StagedAsset | None]:
        """Stage every file; if any is refused, raise :class:`InvalidFiles` naming all of them (the others are
        fine: the caller can offer to go on without the bad ones). Nothing stays staged then."""
        staged: list[StagedAsset | None] = []
        bad: dict[str, InvalidRequest] = {}
        try:
            with self._writing_files():
                for src, kind in items:
                    try:
                        staged.append(None if src is None else stage_asset(src, kind, self._imports_dir()))
                    except InvalidRequest as exc:
                        bad.setdefault(str(src), exc)
                        staged.append(None)
            if bad:
                raise _invalid_files(bad, sum(1 for src, _ in items if src is not None), what)
        except BaseException:
            for st in staged:
                if st is not None:
                    st.discard()
            raise
        return staged

    # ------------------------------------------------------------------ subjects
    def add_subject(self, name: str, images: Sequence[PathLike], token: str | None = None,
                    masks: Sequence[PathLike | None] | None = None) -> SubjectRecord:
        """Add a subject: a name, a trigger token and reference images (optionally one mask each).

        Args: name: unique; images: at least one image file; token: defaults to ``"<slug(name)>"``;
        masks: None, or one entry per image (a mask file of the same size, or None).
        Raises InvalidRequest naming the field and file; every file is checked before anything is stored.
        """
        name = _checked_text(name, "name", "subject name", one_line=True)
        if token is not None:
            token = _checked_text(token, "token", "subject token", one_line=True) or None
        if not name:
            raise InvalidRequest("A subject needs a name.", hint="Give it a short name, e.g. 'Rex'.", field="name")
        images = list(images)
        if not images:
            raise InvalidRequest(f"Subject {name!r} has no images.", hint="Give at least one reference image "
                                 "(3-5 photos from different angles work best).", field="images")
        masks = list(masks) if masks is not None else [None] * len(images)
        if len(masks) != len(images):
            raise InvalidRequest(f"Subject {name!r} has {len(images)} images but {len(masks)} masks.",
                                 hint="Give one mask per image (or None for an image without a mask).",
                                 field="masks")
        self._check_name_free(m.Subject, name, "subject")
        staged = self._stage_all([(p, "image") for p in images] + [(p, "mask") for p in masks], f"subject {name!r}")
        imgs, msks = staged[: len(images)], staged[len(images):]
        with self._placing(staged) as placed:
            for img_src, mask_src, img, mask in zip(images, masks, imgs, msks):
                assert img is not None
                if mask is not None and (mask.width, mask.height) != (img.width, img.height):
                    raise InvalidRequest(
                        f"Mask {mask_src} is {mask.width}x{mask.height} px but its image {img_src} is "
                        f"{img.width}x{img.height} px.", hint="Each mask must have the size of its image.",
                        field="masks")
            with self._writing() as s:
                self._check_name_free(m.Subject, name, "subject", s)
                subject = m.Subject(name=name, token=token or f"<{slug(name)}>", created_at=time.time())
                for pos, (img, mask) in enumerate(zip(imgs, msks)):
                    assert img is not None
                    subject.images.append(m.SubjectImage(
                        position=pos, asset=self._store_staged(s, img, placed),
                        mask=self._store_staged(s, mask, placed) if mask is not None else None))
                s.add(subject)
                s.flush()
                return subject_record(self.path, subject, self.real_path)

    def _check_name_free(self, model: Any, name: str, field: str, s: Session | None = None) -> None:
        def check(sess: Session) -> None:
            if sess.scalar(select(model.id).where(model.name == name)) is not None:
                raise InvalidRequest(f"A {field} named {name!r} already exists.",
                                     hint=f"Choose another name or use the existing {field}.", field="name")
        if s is not None:
            return check(s)
        with self._reading() as sess:
            check(sess)

    def subjects(self) -> list[SubjectRecord]:
        """All subjects, oldest first."""
        with self._reading() as s:
            rows = s.scalars(select(m.Subject).options(selectinload(m.Subject.images)).order_by(m.Subject.id))
            return [subject_record(self.path, r, self.real_path) for r in rows]

    def subject(self, name_or_id: str | int) -> SubjectRecord:
        """A subject by name or id; InvalidRequest(field="subject") listing the known names otherwise."""
        with self._reading() as s:
            record = subject_record(self.path, self._find_named(s, m.Subject, name_or_id, "subject"), self.real_path)
        return _refuse_invalid(record, "subject")

    def _find_named(self, s: Session, model: Any, name_or_id: str | int, field: str) -> Any:
        row = s.scalar(select(model).where(model.name == str(name_or_id)))
        if row is None and str(name_or_id).strip().isdigit():
            row = s.get(model, int(name_or_id))
        if row is None:
            names = s.scalars(select(model.name).order_by(model.id)).all()
            known = f"Known {field}s: {', '.join(names)}." if names else f"This project has no {field}s yet."
            raise InvalidRequest(f"Unknown {field} {name_or_id!r}.", hint=known, field=field)
        return row

    # ------------------------------------------------------------------ motions
    def add_motion(self, name: str, videos: Sequence[PathLike]) -> MotionRecord:
        """Add a motion: a unique name and one or more reference videos (all checked before storing).

        Raises InvalidRequest naming the field and the file.
        """
        name = _checked_text(name, "name", "motion name", one_line=True)
        if not name:
            raise InvalidRequest("A motion needs a name.", hint="Give it a short name, e.g. 'jumping jacks'.",
                                 field="name")
        videos = list(videos)
        if not videos:
            raise InvalidRequest(f"Motion {name!r} has no videos.", hint="Give at least one reference video.",
                                 field="videos")
        self._check_name_free(m.Motion, name, "motion")
        staged = self._stage_all([(p, "video") for p in videos], f"motion {name!r}")
        with self._placing(staged) as placed, self._writing() as s:
            self._check_name_free(m.Motion, name, "motion", s)
            motion = m.Motion(name=name, created_at=time.time())
            for pos, st in enumerate(staged):
                assert st is not None
                motion.videos.append(m.MotionVideo(position=pos, asset=self._store_staged(s, st, placed)))
            s.add(motion)
            s.flush()
            return motion_record(self.path, motion, self.real_path)

    def motions(self) -> list[MotionRecord]:
        """All motions, oldest first."""
        with self._reading() as s:
            rows = s.scalars(select(m.Motion).options(selectinload(m.Motion.videos)).order_by(m.Motion.id))
            return [motion_record(self.path, r, self.real_path) for r in rows]

    def motion(self, name_or_id: str | int) -> MotionRecord:
        """A motion by name or id; InvalidRequest(field="motion") listing the known names otherwise."""
        with self._reading() as s:
            record = motion_record(self.path, self._find_named(s, m.Motion, name_or_id, "motion"), self.real_path)
        return _refuse_invalid(record, "motion")

    # ------------------------------------------------------------------ prompts
    def add_prompt(self, text: str, negative: str = "") -> PromptRecord:
        """Save a prompt (and its negative prompt). Raises InvalidRequest(field="prompt") if empty."""
        text = _checked_text(text, "prompt", "prompt")
        negative = _checked_text(negative, "negative_prompt", "negative prompt")
        if not text:
            raise InvalidRequest("The prompt is empty.", hint="Describe the video you want.", field="prompt")
        with self._writing() as s:
            row = m.Prompt(text=text, negative=negative, created_at=time.time())
            s.add(row)
            s.flush()
            return prompt_record(row)

    def prompts(self) -> list[PromptRecord]:
        """All saved prompts, oldest first."""
        with self._reading() as s:
            return [prompt_record(p) for p in s.scalars(select(m.Prompt).order_by(m.Prompt.id))]

    def _prompt_row(self, s: Session, prompt_id: int) -> m.Prompt:
        row = s.get(m.Prompt, int(prompt_id))
        if row is None:
            raise InvalidRequest(f"No prompt with id {prompt_id}.", hint="List prompts to see their ids.",
                                 field="prompt")
        return row

    def update_prompt(self, prompt_id: int, text: str | None = None, negative: str | None = None) -> PromptRecord:
        """Change a prompt's text and/or negative prompt; returns the updated record."""
        text = _checked_text(text, "prompt", "prompt") if text is not None else None
        negative = _checked_text(negative, "negative_prompt", "negative prompt") if negative is not None else None
        if text is not None and not text:
            raise InvalidRequest("The prompt is empty.", hint="Describe the video you want.", field="prompt")
        with self._writing() as s:
            row = self._prompt_row(s, prompt_id)
            if text is not None:
                row.text = text
            if negative is not None:
                row.negative = negative
            return prompt_record(row)

    def remove_prompt(self, prompt_id: int) -> None:
        """Delete a saved prompt (jobs keep their own copy of the text)."""
        with self._writing() as s:
            s.delete(self._prompt_row(s, prompt_id))

    # ------------------------------------------------------------------ adapters
    def add_adapter(self, name: str, kind: str, src_dir: PathLike, *, job_id: str | None = None, step: int = 0,
                    subject_id: int | None = None, motion_id: int | None = None,
                    meta: dict[str, Any] | None = None, move: bool = False) -> AdapterRecord:
        """Register a trained artifact: ``src_dir`` (a folder, or one file) is copied — or moved with
        ``move=True`` — to ``adapters/<id>/``, and a ``meta.json`` is written there unless present.

        Raises InvalidRequest if ``src_dir`` is missing or the job/subject/motion is unknown.
        """
        placed: list[tuple[Path, Path | None]] = []
        with self._undo_adapters(placed), self._writing() as s:
            row = self._insert_adapter(s, placed, name, kind, Path(src_dir), move=move, job_id=job_id, step=step,
                                       subject_id=subject_id, motion_id=motion_id, meta=meta)
            record = adapter_record(self.path, row, self.real_path)
            if record is None:  # only if adapters/ was swapped for a link meanwhile: undo, never use it
                raise UnsafeProject(f"Adapter {row.id}: {adapter_problem(self.path, row, self.real_path)}.",
                                    hint="Remove links from the project folder.")
            return record

    @contextmanager
    def _undo_adapters(self, placed: list[tuple[Path, Path | None]]) -> Iterator[None]:
        """If the transaction fails, take placed adapter folders away again (moved ones go back)."""
        try:
            yield
        except BaseException:
            for target, moved_from in reversed(placed):
                if moved_from is not None and not moved_from.exists():
                    # put moved files back where they came from (a folder, or one file inside target)
                    single = target / moved_from.name
                    os.replace(single if single.is_file() else target, moved_from)
                remove_entry(target.parent, target.name)
            raise

    def _insert_adapter(self, s: Session, placed: list[tuple[Path, Path | None]], name: str, kind: str,
                        src: Path, *, move: bool, job_id: str | None, step: int, subject_id: int | None,
                        motion_id: int | None, meta: dict[str, Any] | None) -> m.Adapter:
        """Insert an adapter row and put its files in place; ``placed`` records them for undo."""
        if not src.exists():
            raise InvalidRequest(f"Adapter files {src} do not exist.", hint="Give the folder the trainer wrote.",
                                 field="adapter")
        for model, key, field in ((m.Job, job_id, "job"), (m.Subject, subject_id, "subject"),
                                  (m.Motion, motion_id, "motion")):
            if key is not None and s.get(model, key) is None:
                raise InvalidRequest(f"Unknown {field} {key!r} for adapter {name!r}.",
                                     hint=f"Give the id of an existing {field}.", field=field)
        adapter_id = new_id()
        rel = f"adapters/{adapter_id}"
        target = self.path / rel
        tmp = real_dir(self.path, "adapters") / f".incoming-{adapter_id}"
        try:
            if src.is_dir() and move:
                os.replace(src, tmp)  # same file system: the project folder
            elif src.is_dir():
                shutil.copytree(src, tmp)
            else:
                tmp.mkdir()
                if move:
                    os.replace(src, tmp / src.name)
                else:
                    shutil.copy2(src, tmp / src.name)
            meta = dict(meta or {})
            if not (tmp / "meta.json").exists():
                (tmp / "meta.json").write_text(json.dumps(
                    {"name": name, "kind": kind, "job_id": job_id, "step": step, "subject_id": subject_id,
                     "motion_id": motion_id, "meta": meta}, indent=2), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            remove_entry(tmp.parent, tmp.name)
            err = self._translate(exc)  # a full disk says so ("disk full (N MB free at PATH)")
            if err is not None:
                raise err from exc
            raise InvalidRequest(f"Cannot store adapter files from {src}: {exc}.",
                                 hint="Check the files' permissions.", field="adapter") from exc
        placed.append((target, src if move else None))
        row = m.Adapter(id=adapter_id, name=name, kind=kind, dir=rel, job_id=job_id, step=int(step),
                        subject_id=subject_id, motion_id=motion_id, meta=meta, created_at=time.time())
        s.add(row)
        s.flush()
        return row

    def adapters(self, subject_id: int | None = None, motion_id: int | None = None) -> list[AdapterRecord]:
        """Adapters, oldest first, optionally only those trained for a subject and/or motion."""
        with self._reading() as s:
            q = select(m.Adapter).order_by(m.Adapter.created_at, m.Adapter.id)
            if subject_id is not None:
                q = q.where(m.Adapter.subject_id == subject_id)
            if motion_id is not None:
                q = q.where(m.Adapter.motion_id == motion_id)
            records = [adapter_record(self.path, a, self.real_path) for a in s.scalars(q)]
        return [r for r in records if r is not None]  # invalid rows are skipped (adapter() names them)

    def adapter(self, id_or_prefix: str) -> AdapterRecord:
        """An adapter by id or id prefix; InvalidRequest(field="adapter") if unknown or ambiguous."""
        with self._reading() as s:
            row = by_prefix(s, m.Adapter, m.Adapter.id, id_or_prefix, "adapter")
            record = adapter_record(self.path, row, self.real_path)
            if record is None:
                raise UnsafeProject(f"Adapter {printable(row.id)!r} cannot be used: its row in project.db is invalid "
                                    f"({adapter_problem(self.path, row, self.real_path)}).",
                                    hint="The row was damaged or crafted by hand; train or import the adapter again.")
            return record
