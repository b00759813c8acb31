"""Editors for a spec's typed inputs (:mod:`sdk.inputs`): one widget per declared field, made by the factory
registered for the field's type, so the job editor never asks which kind an input is.

Every widget says what it holds as the value the field's ``parse`` takes (a file path, a job id, a subject id …),
or None when nothing is given. Widgets read the project through the item models the loader keeps (no SQL on the GUI
thread) and follow them as they change. A field type without a registered factory (a third-party field) gets a
plain text box whose text goes to its ``parse``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app import look
from app.dialogs.new_subject import IMAGE_FILTER, IMAGE_SUFFIXES
from app.imaging import ThumbnailCache
from app.widgets.input_base import Choice, ChoiceInput, InputSources, InputWidget, icon_at, label_of, status_of
from sdk.inputs import (AdapterRef, ConditionRef, ImageRef, InputField, MotionRef, OutputRef, SubjectRef,
                        VideoRef)

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
VIDEO_FILTER = "Videos (" + " ".join("*" + s for s in VIDEO_SUFFIXES) + ");;All files (*)"
THUMB = 56
#: statuses of a job whose output is still to come (a job taking it waits for it)
PENDING = ("QUEUED", "RUNNING")

__all__ = ["InputSources", "InputWidget", "FACTORIES", "register", "widget_for", "label_of"]


class TextInput(InputWidget):
    """Any field: its text, as the CLI's ``--input NAME=VALUE`` gives it."""

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        super().__init__(field, sources, parent)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText(field.value_help + ("" if field.required else " (optional)"))
        self.edit.textChanged.connect(self.changed)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit)

    def value(self) -> Any:
        return self.edit.text().strip() or None

    def set_value(self, value: Any) -> bool:
        self.edit.setText("" if value is None else str(value))
        return True

    def missing(self) -> str:
        return f"{label_of(self.field)}: give a value (this generator needs it)."


class FileInput(InputWidget):
    """A file: typed, browsed or dropped, with a thumbnail of it."""

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None, *,
                 video: bool = False) -> None:
        super().__init__(field, sources, parent)
        self.video = video
        self.setAcceptDrops(True)
        what = "Video" if video else "Image"
        self.thumb = QLabel(self)
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("border: 1px dashed palette(mid)")
        look.muted(self.thumb)
        self.thumb.setText("drop")
        self.path = QLineEdit(self)
        self.path.setClearButtonEnabled(True)
        self.path.setPlaceholderText(f"{what} file: drop one here" + ("" if field.required else " (optional)"))
        self.path.textChanged.connect(self._on_path_text_changed)
        self.browse = QPushButton("Browse…", self)
        self.browse.clicked.connect(self._on_browse_clicked)
        # the path gets the whole width beside the thumbnail (the editor is a narrow dock)
        right = QVBoxLayout()
        right.addWidget(self.path)
        buttons = QHBoxLayout()
        buttons.addWidget(self.browse)
        buttons.addStretch(1)
        right.addLayout(buttons)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.thumb)
        lay.addLayout(right, 1)
        if sources.thumbs is not None:
            sources.thumbs.loaded.connect(self._on_thumbs_loaded)

    def value(self) -> Any:
        return self.path.text().strip() or None

    def set_value(self, value: Any) -> bool:
        self.path.setText("" if value is None else str(value))
        return True

    def missing(self) -> str:
        return f"{label_of(self.field)}: choose {'a video' if self.video else 'an image'} file (this generator needs it)."

    def problem(self) -> str:
        text = self.path.text().strip()
        if text and not Path(text).expanduser().is_file():
            return f"{label_of(self.field)}: there is no file at {text}."
        return ""

    # -- drops and the thumbnail ------------------------------------------------------------
    def _accepts(self, path: Path) -> bool:
        return path.suffix.lower() in (VIDEO_SUFFIXES if self.video else IMAGE_SUFFIXES)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() and self._accepts(Path(u.toLocalFile())) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        files = [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and self._accepts(Path(u.toLocalFile()))]
        if files:
            event.acceptProposedAction()
            self.path.setText(str(files[0]))

    @Slot()
    def _on_browse_clicked(self) -> None:
        title = f"{label_of(self.field)} ({'video' if self.video else 'image'})"
        path, _ = QFileDialog.getOpenFileName(self, title, "", VIDEO_FILTER if self.video else IMAGE_FILTER)
        if path:
            self.path.setText(path)

    @Slot(str)
    def _on_path_text_changed(self, text: str) -> None:
        self._show_thumb()
        self.changed.emit()

    @Slot(str, object)
    def _on_thumbs_loaded(self, key: str, images: object) -> None:
        text = self.path.text().strip()
        if text and key == ThumbnailCache.key(Path(text).expanduser()):
            self._show_thumb()

    def _show_thumb(self) -> None:
        text = self.path.text().strip()
        path = Path(text).expanduser() if text else None
        frames = []
        if path is not None and self.sources.thumbs is not None and path.is_file():
            frames = self.sources.thumbs.frames(path, video=self.video)  # loads in the background, once
        if frames:
            self.thumb.setPixmap(QPixmap.fromImage(frames[0]).scaled(
                QSize(THUMB, THUMB), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        else:
            self.thumb.setPixmap(QPixmap())
            self.thumb.setText("…" if path is not None and path.is_file() else "drop")

    def has_thumbnail(self) -> bool:
        pm = self.thumb.pixmap()
        return pm is not None and not pm.isNull()


class NamedInput(ChoiceInput):
    """A subject or a motion of the project, with its thumbnail."""

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        self.what = "subject" if isinstance(field, SubjectRef) else "motion"
        super().__init__(field, sources, parent, (self._model(sources),))

    def _model(self, sources: InputSources) -> Any:
        return sources.subjects if self.what == "subject" else sources.motions

    def choices(self) -> list[Choice]:
        model = self._model(self.sources)
        if model is None:
            return []
        return [Choice(r.id, r.name, model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole) or "", icon_at(model, row))
                for row, r in enumerate(model.records()) if not r.problem]

    def missing(self) -> str:
        return f"{label_of(self.field)}: add a {self.what} to the project first (Project panel); this generator needs one."


class OutputInput(ChoiceInput):
    """An earlier job's output: finished ones with their thumbnails, then jobs still to render (the new job then
    waits for them)."""

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        super().__init__(field, sources, parent, (sources.outputs, sources.jobs))

    def choices(self) -> list[Choice]:
        out: list[Choice] = []
        done: set[str] = set()
        model = self.sources.outputs
        for row, item in enumerate(model.records() if model is not None else []):
            job = item.job
            if job is None or job.kind != "generate" or job.id in done:
                continue
            done.add(job.id)
            out.append(Choice(job.id, f"{(job.prompt or job.spec_id)[:40]} · seed {job.seed} · {job.id[:6]}",
                              str(item.output.video_path), icon_at(model, row)))
        jobs = self.sources.jobs
        for job in jobs.records() if jobs is not None else []:
            if job.kind == "generate" and status_of(job) in PENDING and job.id not in done:
                out.append(Choice(job.id, f"{status_of(job).lower()}: {(job.prompt or job.spec_id)[:40]} · seed {job.seed} · {job.id[:6]}",
                                  f"Job {job.id} is {status_of(job).lower()}: the new job waits for its output."))
        return out

    def missing(self) -> str:
        return f"{label_of(self.field)}: render or queue a video first; this generator continues an output."


class VideoInput(InputWidget):
    """A video file, or (``accept_outputs``) one of the project's outputs."""

    FILE = Choice("", "A video file…", "Pick, type or drop a video file below.")

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        super().__init__(field, sources, parent)
        self.file = FileInput(field, sources, self, video=True)
        self.file.setObjectName(f"input_{field.name}_file")
        self.file.changed.connect(self.changed)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.outputs: OutputInput | None = None
        if getattr(field, "accept_outputs", False):
            self.outputs = _FileOrOutput(field, sources, self)
            self.outputs.changed.connect(self._on_outputs_changed)
            lay.addWidget(self.outputs)
        lay.addWidget(self.file)
        self._on_outputs_changed()

    @Slot()
    def _on_outputs_changed(self) -> None:
        self.file.setVisible(self.outputs is None or self.outputs.value() in ("", None))
        self.changed.emit()

    def _output(self) -> Any:
        return self.outputs.value() if self.outputs is not None else None

    def value(self) -> Any:
        return self._output() or self.file.value()

    def set_value(self, value: Any) -> bool:
        if self.outputs is not None and self.outputs.set_value(value):
            return True
        if self.outputs is not None:
            self.outputs.set_value("")
        return self.file.set_value(value)

    def missing(self) -> str:
        return f"{label_of(self.field)}: choose a video file" + (" or an output" if self.outputs else "") + \
            " (this generator needs it)."

    def problem(self) -> str:
        return "" if self._output() else self.file.problem()


class _FileOrOutput(OutputInput):
    """The output list of a VideoRef, after a first entry that means "a file"."""

    def all_choices(self) -> list[Choice]:
        return [VideoInput.FILE, *self.choices()]


class AdapterInput(ChoiceInput):
    """A trained Adapter of the field's ``adapter_kind``, or ``latest`` / ``none``."""

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        super().__init__(field, sources, parent, (sources.adapters,))

    def choices(self) -> list[Choice]:
        kind = getattr(self.field, "adapter_kind", "")
        model = self.sources.adapters
        out = [Choice("latest", "latest", "The newest one of this kind for the job's subject or motion, chosen "
                                          "when the job starts."),
               Choice("none", "none", "Use no adapter.")]
        for row, a in enumerate(model.records() if model is not None else []):
            if not kind or a.kind == kind:
                target = model.index(row, 0).data() or ""
                out.append(Choice(a.id, f"{a.name} · {target} · step {a.step}", f"{a.kind} {a.id}\n{a.path}"))
        return out

    def all_choices(self) -> list[Choice]:
        return self.choices()  # "none" is always there


class ConditionInput(ChoiceInput):
    """A condition video of the project (of the field's ``condition`` kind, when it names one)."""

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        super().__init__(field, sources, parent, (sources.conditions,))

    def choices(self) -> list[Choice]:
        kind = getattr(self.field, "condition", "")
        model = self.sources.conditions
        out = []
        for row, c in enumerate(model.records() if model is not None else []):
            if not kind or c.kind == kind:
                out.append(Choice(c.id, f"{c.kind} · {c.num_frames} frames · {str(c.id)[:8]}",
                                  f"{c.kind} by {c.extractor} from {c.source}\n{c.path}", icon_at(model, row)))
        return out

    def missing(self) -> str:
        kind = getattr(self.field, "condition", "") or "condition"
        return f"{label_of(self.field)}: extract a {kind} video first; this generator needs one."


Factory = Callable[[InputField, InputSources, QWidget], InputWidget]
#: field type → widget factory; a field's nearest registered base class decides
FACTORIES: dict[type, Factory] = {}


def register(field_type: type, factory: Factory) -> None:
    FACTORIES[field_type] = factory


register(ImageRef, lambda f, s, p: FileInput(f, s, p, video=False))
register(VideoRef, VideoInput)
register(OutputRef, OutputInput)
register(SubjectRef, NamedInput)
register(MotionRef, NamedInput)
register(AdapterRef, AdapterInput)
register(ConditionRef, ConditionInput)


def widget_for(field: InputField, sources: InputSources, parent: QWidget | None = None) -> InputWidget:
    """The editor for ``field``: the factory of its type or nearest base type; a text box if none."""
    for cls in type(field).__mro__:
        if cls in FACTORIES:
            return FACTORIES[cls](field, sources, parent)
    return TextInput(field, sources, parent)
