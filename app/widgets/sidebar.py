"""The project sidebar: subjects, motions, prompts and adapters."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListView, QMessageBox,
                               QPushButton, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from app.dialogs.new_subject import IMAGE_FILTER, IMAGE_SUFFIXES, NewSubjectDialog
from app.models.catalog_models import MotionListModel, SubjectImagesModel, SubjectListModel, TextFilterProxy
from app.widgets.conditions_view import ConditionStrip
from app.widgets.prompts_page import AdaptersPage, PromptsPage
from app.widgets.training import MOTION_TRAINER, SUBJECT_TRAINER, TrainAction, TrainSettingsDialog, action_button

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")


def dropped_files(event: Any, suffixes: tuple[str, ...]) -> list[Path]:
    md = event.mimeData()
    if not md.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in md.urls() if u.isLocalFile() and u.toLocalFile().lower().endswith(suffixes)]


def drop_problem(paths: list[Path], used: list[Path]) -> str | None:
    """What to tell the user about dropped files the window cannot use (``used``: the ones it takes), or None."""
    unused = [p for p in paths if p not in used]
    if not unused:
        return None
    videos = [p.name for p in unused if p.suffix.lower() in VIDEO_SUFFIXES]
    others = [p.name for p in unused if p.suffix.lower() not in VIDEO_SUFFIXES]
    parts = []
    if others:
        parts.append(f"{', '.join(others[:5])}{' …' if len(others) > 5 else ''} cannot be used here")
    if videos:
        parts.append(f"{', '.join(videos[:5])}: drop videos on the Motions tab to make a motion")
    return ("; ".join(parts) + ". Drop images (a new subject), a rendered .mp4 (queued again from its recipe) or a "
            "project folder.")


def remove_action(kind: str, parent: QWidget, slot: Any) -> QAction:
    """"Remove …" on the selected subject or motion (Delete key on its list, context menu)."""
    a = QAction(f"Remove {kind}…", parent)
    a.setShortcut(QKeySequence.StandardKey.Delete)
    a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    a.setToolTip(f"Remove the selected {kind}, its files and its trained adapters (asks first)")
    a.triggered.connect(slot)
    return a


def removal_box(parent: QWidget, kind: str, name: str, jobs: list[Any]) -> QMessageBox:
    """Ask before removing a subject/motion; name the jobs that need it. Running ones block it; queued ones are
    cancelled with it ("Cancel N jobs and remove"). Not yet open; the destructive button (``confirmRemove``) means
    go on."""
    label = html.escape(name)
    shown = "".join(f"<li>{html.escape(j.id)} — {html.escape(j.spec_id)} ({getattr(j.status, 'value', j.status).lower()})"
                    f"</li>" for j in jobs[:8]) + (f"<li>… and {len(jobs) - 8} more</li>" if len(jobs) > 8 else "")
    running = [j for j in jobs if getattr(j.status, "value", j.status) == "RUNNING"]
    box = QMessageBox(parent)
    box.setObjectName("removeTargetBox")
    box.setWindowTitle(f"Remove {kind}")
    box.setIcon(QMessageBox.Icon.Warning if jobs else QMessageBox.Icon.Question)
    if running:
        box.setText(f"The {kind} <b>{label}</b> cannot be removed now: a job that needs it is running.<ul>{shown}</ul>"
                    "Cancel that job and wait until it has stopped, then remove it.")
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        return box
    if jobs:
        box.setText(f"{len(jobs)} queued job(s) need the {kind} <b>{label}</b>:<ul>{shown}</ul>"
                    f"Removing it cancels them too.")
        go = box.addButton(f"Cancel {len(jobs)} job(s) and remove", QMessageBox.ButtonRole.DestructiveRole)
    else:
        box.setText(f"Remove the {kind} <b>{label}</b>, its files and the adapters trained on it?")
        go = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
    go.setObjectName("confirmRemove")
    keep = box.addButton("Keep it", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    return box


class _Removable:
    """What the subject and motion pages share: "Remove …" asks, naming the jobs that need the item."""

    kind = "subject"
    #: kind, id, name — the window looks up the jobs that need it and calls confirm_removal
    remove_requested: Any
    #: kind, id, cascade — confirmed by the user
    remove_confirmed: Any

    def _selected(self) -> Any:
        raise NotImplementedError

    def _on_remove_triggered(self) -> None:
        item = self._selected()
        if item is not None:
            self.remove_requested.emit(self.kind, item.id, item.name)

    def confirm_removal(self, ident: int, name: str, jobs: list[Any]) -> QMessageBox:
        """Ask (window-modal); confirming emits remove_confirmed (a cascade when queued jobs need it)."""
        self.remove_box = box = removal_box(self, self.kind, name, jobs)  # type: ignore[arg-type]
        cascade = bool(jobs)

        def finished(_: int) -> None:
            clicked = box.clickedButton()
            if clicked is not None and box.buttonRole(clicked) == QMessageBox.ButtonRole.DestructiveRole:
                self.remove_confirmed.emit(self.kind, ident, cascade)

        box.finished.connect(finished)
        box.open()
        return box


def _icon_view(parent: QWidget, model: Any, size: int = 72) -> QListView:
    v = QListView(parent)
    v.setModel(model)
    v.setViewMode(QListView.ViewMode.IconMode)
    v.setIconSize(QSize(size, size))
    v.setGridSize(QSize(size + 28, size + 36))
    v.setResizeMode(QListView.ResizeMode.Adjust)
    v.setMovement(QListView.Movement.Static)
    v.setWordWrap(True)
    return v


class SubjectsPage(QWidget, _Removable):
    """Subjects and a thumbnail grid of the selected one's reference images (masks tinted)."""

    kind = "subject"
    #: name, images, token, masks
    subject_requested = Signal(str, object, str, object)
    #: trainer id, subject id, params (from the settings dialog) — Train DreamVideo subject on the selected subject
    train_requested = Signal(str, int, object)
    remove_requested = Signal(str, int, str)
    remove_confirmed = Signal(str, int, bool)

    def __init__(self, subjects: SubjectListModel, thumbs: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.subjects = subjects
        self.images = SubjectImagesModel(thumbs, self)
        self.proxy = TextFilterProxy(self)
        self.proxy.setSourceModel(subjects)
        self.list = _icon_view(self, self.proxy, 56)
        self.list.setObjectName("subjectList")
        self.list.selectionModel().selectionChanged.connect(self._on_list_selection_changed)
        self.list.selectionModel().currentChanged.connect(self._on_list_selection_changed)
        subjects.dataChanged.connect(lambda *_: self._show_selected())
        subjects.rowsInserted.connect(self._on_subjects_rows_inserted)
        self.grid = _icon_view(self, self.images, 88)
        self.grid.setObjectName("subjectImages")
        self.token = QLabel("Drop reference images here, or use Add subject…, to make a subject.", self)
        self.token.setWordWrap(True)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter subjects…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_filter_text)
        add = QPushButton("Add subject…", self)
        add.clicked.connect(self.choose_files)
        self.train_action = TrainAction(
            "Train DreamVideo subject", SUBJECT_TRAINER, "subject",
            "Queues DreamVideo identity training on this subject: step 1 (its token's embedding), then step 2 "
            "(the identity adapter). The adapters appear under the subject in the Adapters tab.", self)
        self.train_action.triggered.connect(self._on_train_action_triggered)
        self.remove_action = remove_action("subject", self, self._on_remove_triggered)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.list.addAction(self.train_action)
        self.list.addAction(self.remove_action)
        self.train_button = action_button(self.train_action, self)
        self.train_button.setObjectName("trainSubjectButton")
        self.dialog: NewSubjectDialog | None = None
        self.train_dialog: TrainSettingsDialog | None = None
        self.remove_box: QMessageBox | None = None
        #: the project's job records (the train dialog shows the time per step measured on them)
        self.job_records: Any = lambda: []
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(self.grid)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(split, 1)
        lay.addWidget(self.token)
        lay.addWidget(add)
        lay.addWidget(self.train_button)

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Reference images of the subject", "", IMAGE_FILTER)
        if files:
            self.new_subject([Path(f) for f in files])

    def new_subject(self, files: list[Path]) -> NewSubjectDialog:
        """Open the New subject dialog for these files (window-modal; it emits subject_requested)."""
        taken = {self.subjects.record(r).name for r in range(self.subjects.rowCount())}
        self.dialog = NewSubjectDialog(files, taken, self)
        self.dialog.subject_requested.connect(self.subject_requested)
        self.dialog.open()
        return self.dialog

    def subject_added(self, record: Any = None) -> None:
        """The New subject dialog's subject is stored: it closes."""
        if self.dialog is not None:
            self.dialog.subject_added()

    def subject_failed(self, exc: BaseException) -> None:
        """The import was refused: the dialog stays open with the error, the refused files marked."""
        from app.session import describe_error

        message, hint = describe_error(exc)
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.subject_failed(message, hint, getattr(exc, "problems", None))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_files(event, IMAGE_SUFFIXES):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = dropped_files(event, IMAGE_SUFFIXES)
        if files:
            event.acceptProposedAction()
            self.new_subject(files)

    @Slot(QItemSelection, QItemSelection)
    def _on_list_selection_changed(self, *_: Any) -> None:
        self._show_selected()

    def _on_subjects_rows_inserted(self, parent: Any, first: int, last: int) -> None:
        self.list.setCurrentIndex(self.proxy.mapFromSource(self.subjects.index(last, 0)))

    def selected_subject(self) -> Any:
        idx = self.list.currentIndex()
        return self.subjects.record(self.proxy.mapToSource(idx).row()) if idx.isValid() else None

    def _selected(self) -> Any:
        return self.selected_subject()

    def _on_train_action_triggered(self) -> Any:
        """Ask the training's settings (window-modal); accepting them emits train_requested."""
        s = self.selected_subject()
        registry = self.train_action.registry
        if s is None or registry is None:
            return None
        trainer_id = self.train_action.trainer_id
        self.train_dialog = TrainSettingsDialog(registry.trainer(trainer_id), registry, s.name, self.job_records(), self)
        self.train_dialog.settings_accepted.connect(
            lambda params, sid=s.id: self.train_requested.emit(trainer_id, sid, params))
        self.train_dialog.open()
        return self.train_dialog

    def _show_selected(self) -> None:
        s = self.selected_subject()
        self.train_action.set_selected(s is not None)
        if s is None:
            self.images.set_records([])
            return
        self.images.set_records(s.images)
        masks = sum(1 for i in s.images if i.mask)
        self.token.setText(f"<b>{html.escape(s.name)}</b>: write <code>{html.escape(s.token)}</code> in a prompt. "
                           f"{len(s.images)} image(s), {masks} with a mask (tinted).")


class MotionsPage(QWidget, _Removable):
    """Motions with animated thumbnails; drop videos to add one."""

    kind = "motion"
    #: name, videos
    motion_requested = Signal(str, object)
    #: trainer id, motion id, caption — Train DreamVideo motion on the selected motion
    #: trainer id, motion id, caption, training params (the settings dialog's)
    train_requested = Signal(str, int, str, object)
    remove_requested = Signal(str, int, str)
    remove_confirmed = Signal(str, int, bool)

    def __init__(self, motions: MotionListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.motions = motions
        self.proxy = TextFilterProxy(self)
        self.proxy.setSourceModel(motions)
        self.list = _icon_view(self, self.proxy, 88)
        self.list.setObjectName("motionList")
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter motions…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_filter_text)
        hint = QLabel("Drop reference videos here (one motion per drop), or use Add motion….", self)
        hint.setWordWrap(True)
        add = QPushButton("Add motion…", self)
        add.clicked.connect(self.choose_files)
        self.train_action = TrainAction(
            "Train DreamVideo motion…", MOTION_TRAINER, "motion",
            "Queues DreamVideo motion training on this motion's videos (you give their caption first). "
            "The motion adapter appears under the motion in the Adapters tab.", self)
        self.train_action.triggered.connect(self.ask_settings)
        self.remove_action = remove_action("motion", self, self._on_remove_triggered)
        self.remove_box: QMessageBox | None = None
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.list.addAction(self.train_action)
        self.list.addAction(self.remove_action)
        # the current index changes after selectionChanged: follow it
        self.list.selectionModel().currentChanged.connect(
            lambda *_: self.train_action.set_selected(self.selected_motion() is not None))
        self.train_button = action_button(self.train_action, self)
        self.train_button.setObjectName("trainMotionButton")
        self.train_dialog: Any = None
        self.job_records: Any = lambda: []  # the project's jobs (set by the window): measured step times
        # the selected motion's condition videos (app/widgets/conditions_view.py; the window gives it its model)
        self.conditions = ConditionStrip("motion", self)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(self.conditions)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(split, 1)
        lay.addWidget(hint)
        lay.addWidget(add)
        lay.addWidget(self.train_button)

    def selected_motion(self) -> Any:
        idx = self.list.currentIndex()
        return self.motions.record(self.proxy.mapToSource(idx).row()) if idx.isValid() else None

    def _selected(self) -> Any:
        return self.selected_motion()

    def ask_settings(self) -> Any:
        """Ask the selected motion's caption and the training's settings (window-modal); accepting them emits
        train_requested."""
        mo = self.selected_motion()
        registry = self.train_action.registry
        if mo is None or registry is None:
            return None
        trainer_id = self.train_action.trainer_id
        self.train_dialog = TrainSettingsDialog(registry.trainer(trainer_id), registry, mo.name, self.job_records(),
                                                self, caption=mo.name)
        dialog = self.train_dialog
        dialog.settings_accepted.connect(
            lambda params, mid=mo.id: self.train_requested.emit(trainer_id, mid, dialog.caption(), params))
        dialog.open()
        return dialog

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Reference videos of the motion", "",
                                                "Videos (" + " ".join("*" + s for s in VIDEO_SUFFIXES) + ")")
        if files:
            self.add_videos([Path(f) for f in files])

    def add_videos(self, files: list[Path]) -> None:
        taken = {self.motions.record(r).name for r in range(self.motions.rowCount())}
        base = files[0].stem.replace("_", " ")
        name, n = base, 2
        while name in taken:
            name, n = f"{base} {n}", n + 1
        self.motion_requested.emit(name, files)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_files(event, VIDEO_SUFFIXES):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = dropped_files(event, VIDEO_SUFFIXES)
        if files:
            event.acceptProposedAction()
            self.add_videos(files)


class ProjectSidebar(QTabWidget):
    def __init__(self, subjects: SubjectListModel, motions: MotionListModel, prompts: Any, adapters: Any,
                 thumbs: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("projectSidebar")
        self.subjects_page = SubjectsPage(subjects, thumbs, self)
        self.motions_page = MotionsPage(motions, self)
        self.prompts_page = PromptsPage(prompts, self)
        self.adapters_page = AdaptersPage(adapters, self)
        self.addTab(self.subjects_page, "Subjects")
        self.addTab(self.motions_page, "Motions")
        self.addTab(self.prompts_page, "Prompts")
        self.addTab(self.adapters_page, "Adapters")
        for model, page, label in ((subjects, 0, "Subjects"), (motions, 1, "Motions"), (prompts, 2, "Prompts"),
                                   (adapters, 3, "Adapters")):
            for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset):
                sig.connect(lambda *_, m=model, i=page, t=label: self.setTabText(i, f"{t} ({m.rowCount()})"))


__all__ = ["ProjectSidebar", "SubjectsPage", "MotionsPage", "QHBoxLayout", "QAbstractItemView"]
