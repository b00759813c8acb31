"""Results gallery: output thumbnails filtered by batch, prompt and method; play, re-queue,
reveal and export the selected output."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListView, QMenu, QToolButton,
                               QVBoxLayout, QWidget)

from app.dialogs.player import PlayerDialog
from app.models.base import RecordRole
from app.models.output_model import GalleryItem, OutputFilterProxy, OutputListModel

EXPORT_FILTERS = {"MP4 video (*.mp4)": "mp4", "Animated GIF (*.gif)": "gif", "Animated WebP (*.webp)": "webp",
                  "PNG frames (a folder)": "png"}


class Gallery(QWidget):
    #: the output folder whose recipe should be queued again
    requeue_requested = Signal(object)
    #: output folder, destination, format
    export_requested = Signal(object, object, str)

    def __init__(self, model: OutputListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = OutputFilterProxy(self)
        self.proxy.setSourceModel(model)
        self.view = QListView(self)
        self.view.setObjectName("galleryView")
        self.view.setModel(self.proxy)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(128, 128))
        self.view.setGridSize(QSize(160, 180))
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setWordWrap(True)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.view.selectionModel().currentChanged.connect(lambda *_: self._update_actions())
        self.empty = QLabel("No outputs yet. Finished jobs appear here; double-click one to play it.", self)
        self.empty.setStyleSheet("color: #757575")
        for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            sig.connect(self._on_model_rows_changed)

        self.batch, self.prompt, self.method = QComboBox(self), QComboBox(self), QComboBox(self)
        for combo, tip in ((self.batch, "batch"), (self.prompt, "prompt"), (self.method, "method")):
            combo.setToolTip(f"Show only this {tip}")
            combo.setMinimumContentsLength(12)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter outputs…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_filter_text)

        def action(text: str, shortcut: str, slot: Any) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            return a

        self.play_action = action("Play", "Ctrl+Shift+Space", self.play_selected)
        self.requeue_action = action("Re-queue with these settings", "Ctrl+Shift+R", self._on_requeue_triggered)
        self.reveal_action = action("Reveal in folder", "Ctrl+Shift+O", self._on_reveal_triggered)
        self.export_action = action("Export…", "Ctrl+E", self._on_export_triggered)
        self.actions_ = [self.play_action, self.requeue_action, self.reveal_action, self.export_action]
        top = QHBoxLayout()
        for label, combo in (("Batch", self.batch), ("Prompt", self.prompt), ("Method", self.method)):
            top.addWidget(QLabel(label, self))
            top.addWidget(combo)
        top.addWidget(self.search, 1)
        bar = QHBoxLayout()
        for a in self.actions_:
            b = QToolButton(self)
            b.setDefaultAction(a)
            bar.addWidget(b)
        bar.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.empty)
        lay.addLayout(bar)
        self.menu = QMenu(self)
        self.menu.addActions(self.actions_)
        self.view.setContextMenuPolicy(self.view.contextMenuPolicy().CustomContextMenu)
        self.view.customContextMenuRequested.connect(lambda pos: self.menu.popup(self.view.mapToGlobal(pos)))
        self.player: PlayerDialog | None = None
        self._update_actions()

    # -- filters --------------------------------------------------------------------------------
    @Slot()
    def _on_model_rows_changed(self, *_: Any) -> None:
        self.empty.setVisible(self.model.rowCount() == 0)
        items: list[GalleryItem] = self.model.records()
        batches = list(dict.fromkeys(i.job.batch_id for i in items if i.job))
        prompts = sorted({i.job.prompt for i in items if i.job and i.job.prompt})
        methods = sorted({self.model.method(i) for i in items})
        self._fill(self.batch, "All batches", [(f"Batch {n + 1} · {b[:8]}", b) for n, b in enumerate(batches)])
        self._fill(self.prompt, "All prompts", [(p if len(p) < 40 else p[:39] + "…", p) for p in prompts])
        self._fill(self.method, "All methods", [(m, m) for m in methods])
        self._update_actions()

    @staticmethod
    def _fill(combo: QComboBox, all_label: str, entries: list[tuple[str, str]]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(all_label, None)
        for text, value in entries:
            combo.addItem(text, value)
        i = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(i, 0))
        combo.blockSignals(False)

    @Slot()
    def _on_filter_changed(self, *_: Any) -> None:
        self.proxy.set_filters(self.batch.currentData(), self.prompt.currentData(), self.method.currentData())

    # -- actions ----------------------------------------------------------------------------------
    def selected(self) -> GalleryItem | None:
        idx = self.view.currentIndex()
        return idx.data(RecordRole) if idx.isValid() else None

    def _update_actions(self) -> None:
        has = self.selected() is not None
        for a in self.actions_:
            a.setEnabled(has)

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        self.play_selected()

    def play_selected(self) -> PlayerDialog | None:
        item = self.selected()
        if item is None:
            return None
        title = (item.job.prompt or item.job.spec_id) if item.job else item.output.job_id
        self.player = PlayerDialog(item.output.dir, title, self)
        self.player.open()
        return self.player

    def _on_requeue_triggered(self) -> None:
        item = self.selected()
        if item is not None:
            self.requeue_requested.emit(item.output.dir)

    def _on_reveal_triggered(self) -> None:
        item = self.selected()
        if item is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.output.dir)))

    def _on_export_triggered(self) -> None:
        item = self.selected()
        if item is None:
            return
        stem = f"{item.output.job_id}"
        from app.settings import export_folder  # Settings ▸ General: where exports go by default

        path, chosen = QFileDialog.getSaveFileName(self, "Export output", str(export_folder() / (stem + ".mp4")),
                                                   ";;".join(EXPORT_FILTERS))
        if path:
            fmt = EXPORT_FILTERS.get(chosen) or Path(path).suffix.lstrip(".") or "mp4"
            dest = Path(path).with_suffix("") if fmt == "png" else Path(path)
            self.export_requested.emit(item.output.dir, dest, fmt)
