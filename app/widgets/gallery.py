"""Results gallery: output thumbnails, newest first, with the method that made each as a badge and a star; filtered
by batch, prompt, method and star. Select one or several (Ctrl/Shift-click) to play, recall their settings into the
job editor, re-queue them exactly, compare 2-4 side by side, star, delete (with an undo), reveal or export; run the
actions generators offer on outputs ("Upscale") and compare an output with its source (app.widgets.gallery_chain)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListView,
                               QMenu, QToolBar, QToolButton, QVBoxLayout, QWidget)

from app import look
from app.dialogs.player import PlayerDialog
from app.models.base import RecordRole
from app.models.output_model import GalleryItem, OutputFilterProxy, OutputListModel
from app.undo import UndoToast
from app.widgets.gallery_chain import GalleryChain
from app.widgets.gallery_delegate import GalleryDelegate

log = logging.getLogger("vgen.app.gallery")

EXPORT_FILTERS = {"MP4 video (*.mp4)": "mp4", "Animated GIF (*.gif)": "gif", "Animated WebP (*.webp)": "webp",
                  "PNG frames (a folder)": "png"}
#: how long a delete can be undone; then (or when the project closes) the outputs are gone for good
UNDO_SECONDS = 60.0


def export_target(path: str | Path, chosen_filter: str = "") -> tuple[Path, str]:
    """(destination, format) for a name typed in the export dialog: the typed extension wins over the chosen filter
    (``fox.gif`` is a GIF whatever the filter); a name without one takes the filter's; ``.png`` means a folder of
    PNG frames (the name without ``.png``). Raises InvalidRequest(field="dest") for an extension it cannot write."""
    from sdk.errors import InvalidRequest
    from sdk.outputs import EXPORT_FORMATS

    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if not ext:
        fmt = EXPORT_FILTERS.get(chosen_filter, "mp4")
        return (path if fmt == "png" else path.with_name(f"{path.name}.{fmt}")), fmt
    if ext not in EXPORT_FORMATS:
        raise InvalidRequest(f"Cannot export {path.name}: VGen Studio does not write .{ext} files.",
                             hint="Name it .mp4, .gif or .webp, or .png for a folder of PNG frames.", field="dest")
    return (path.with_suffix("") if ext == "png" else path), ext




class Gallery(QWidget):
    #: the output folder whose recipe should be queued again
    requeue_requested = Signal(object)
    #: output folder, destination, format
    export_requested = Signal(object, object, str)
    #: a job record (or an output record) whose settings to load into the job editor
    recall_requested = Signal(object)

    def __init__(self, model: OutputListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.session: Any = None
        self.undo_seconds = UNDO_SECONDS
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
        self.view.setMouseTracking(True)  # the star shows on hover
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.delegate = GalleryDelegate(self.view)
        self.delegate.star_clicked.connect(self._on_delegate_star_clicked)
        self.view.setItemDelegate(self.delegate)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.empty = QLabel("No outputs yet. Finished jobs appear here, newest first; double-click one to play it.",
                            self)
        look.muted(self.empty)
        for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            sig.connect(self._on_model_rows_changed)
        model.dataChanged.connect(lambda *_: self._update_actions())

        self.batch, self.prompt, self.method = QComboBox(self), QComboBox(self), QComboBox(self)
        for combo, tip in ((self.batch, "batch"), (self.prompt, "prompt"), (self.method, "method")):
            combo.setToolTip(f"Show only this {tip}")
            combo.setMinimumContentsLength(8)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.starred_only = QToolButton(self)
        self.starred_only.setObjectName("starredOnly")
        self.starred_only.setText("★ Starred")
        self.starred_only.setCheckable(True)
        self.starred_only.setToolTip("Show only starred outputs")
        self.starred_only.toggled.connect(self.proxy.set_starred_only)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter outputs…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(110)
        self.search.textChanged.connect(self.proxy.set_filter_text)

        def action(text: str, shortcut: Any, slot: Any, tip: str = "", local: bool = False) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            if local:  # only while the gallery has focus: Delete and Ctrl+Z mean other things elsewhere
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(a)
            if tip:
                a.setToolTip(tip)
                a.setStatusTip(tip)
            a.triggered.connect(slot)
            return a

        self.play_action = action("Play", "Ctrl+Shift+Space", self.play_selected, "Play the selected output")
        self.recall_action = action("Recall settings", "Ctrl+Shift+E", self._on_recall_triggered,
                                    "Load this output's generator, parameters, inputs and seed into the job editor "
                                    "to edit them (nothing is queued)", local=True)
        self.requeue_action = action("Re-queue exactly", "Ctrl+Shift+R", self._on_requeue_triggered,
                                     "Queue the selected outputs' jobs again, exactly as they were")
        self.compare_action = action("Compare", "Ctrl+Shift+C", self.compare_selected,
                                     "Play 2-4 selected outputs side by side, in sync", local=True)
        self.star_action = action("Star", ".", self._on_star_triggered, "Star or unstar the selected outputs",
                                  local=True)
        self.delete_action = action("Delete", QKeySequence.StandardKey.Delete, self.delete_selected,
                                    "Delete the selected outputs (Undo brings them back)", local=True)
        self.reveal_action = action("Reveal in folder", "Ctrl+Shift+O", self._on_reveal_triggered)
        self.export_action = action("Export…", "Ctrl+E", self._on_export_triggered,
                                    "Save the selected output as MP4, GIF, WebP or PNG frames")
        self.evaluate_action = action("Evaluate batch…", "Ctrl+Shift+B", self.evaluate_batch,
                                      "The selected output's batch (or the batch shown) ranked by its scores: "
                                      "best per prompt/subject, best seed, score vs step")
        self.actions_ = [self.play_action, self.recall_action, self.requeue_action, self.compare_action,
                         self.star_action, self.delete_action, self.reveal_action, self.export_action,
                         self.evaluate_action]
        top = QHBoxLayout()
        for label, combo in (("Batch", self.batch), ("Prompt", self.prompt), ("Method", self.method)):
            top.addWidget(QLabel(label, self))
            top.addWidget(combo)
        top.addWidget(self.starred_only)
        top.addWidget(self.search, 1)
        # a narrow window moves the actions that do not fit into the toolbar's overflow menu
        bar = QToolBar(self)
        bar.setObjectName("galleryActions")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.buttons: dict[str, QWidget] = {}
        for a in self.actions_:
            bar.addAction(a)
            self.buttons[a.text()] = bar.widgetForAction(a)
        # the project's one undo stack (app/undo.py): a delete here is undone by this bar or Edit ▸ Undo (Ctrl+Z)
        self.toast = UndoToast(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.empty)
        lay.addWidget(self.toast)
        lay.addWidget(bar)
        self.menu = QMenu(self)
        self.menu.addActions(self.actions_)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(lambda pos: self.menu.popup(self.view.mapToGlobal(pos)))
        self.bar = bar
        self.chain = GalleryChain(self)  # "Upscale" and the other actions generators offer on outputs
        self.player: PlayerDialog | None = None
        self.compare_window: Any = None
        self.board: Any = None
        self.export_dialog: QFileDialog | None = None
        self._update_actions()

    # -- the project ----------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        """Follow an open project (None: closed). Its undo stack makes deletes still undoable final when it closes."""
        self.session = session
        if self.board is not None:  # the board belongs to the project that was open
            self.board.close()
            self.board = None
        self.toast.set_stack(session.undo if session is not None else None)
        self.chain.set_session(session)
        if session is not None and not session.project.read_only:
            # deletes an earlier session could not finish (a crash): their undo has expired by now
            seconds = self.undo_seconds
            session.tasks.submit(lambda: session.project.purge_trash(older_than=seconds), None,
                                 self._on_housekeeping_failed)
        self._update_actions()

    @staticmethod
    def _on_housekeeping_failed(exc: BaseException) -> None:
        log.warning("could not empty the project's trash: %s", exc)

    # -- filters --------------------------------------------------------------------------------
    @Slot()
    def _on_model_rows_changed(self, *_: Any) -> None:
        self.empty.setVisible(self.model.rowCount() == 0)
        items: list[GalleryItem] = self.model.records()
        batches = list(dict.fromkeys(i.job.batch_id for i in reversed(items) if i.job))  # numbered oldest first
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
        self._update_actions()

    # -- selection ------------------------------------------------------------------------------
    def selected_items(self) -> list[GalleryItem]:
        """The selected outputs in the order shown (newest first)."""
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        return [self.proxy.index(r, 0).data(RecordRole) for r in rows]

    def selected(self) -> GalleryItem | None:
        """The one selected output (the current one when several are selected), or None."""
        items = self.selected_items()
        if len(items) == 1:
            return items[0]
        idx = self.view.currentIndex()
        return idx.data(RecordRole) if items and idx.isValid() and idx.data(RecordRole) in items else None

    def _update_actions(self) -> None:
        items = self.selected_items()
        one, some = len(items) == 1, bool(items)
        has_session = self.session is not None
        for a in (self.play_action, self.reveal_action, self.export_action):
            a.setEnabled(one)
        self.recall_action.setEnabled(one and has_session)
        self.requeue_action.setEnabled(some and has_session)
        self.star_action.setEnabled(some and has_session)
        self.delete_action.setEnabled(some and has_session)
        self.compare_action.setEnabled(2 <= len(items) <= 4)
        self.evaluate_action.setEnabled(has_session and self._batch_to_evaluate() is not None)
        self.star_action.setText("Unstar" if some and all(i.starred for i in items) else "Star")
        n = f" {len(items)} outputs" if len(items) > 1 else ""
        self.delete_action.setText(f"Delete{n}")
        self.chain.update_actions()

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        self.play_selected()

    # -- play, compare ----------------------------------------------------------------------------
    def play_selected(self) -> PlayerDialog | None:
        """Open a player for the selected output; it is a window of its own (the gallery stays usable)."""
        item = self.selected()
        if item is None:
            return None
        self.player = PlayerDialog(item.output.dir, item.title, self)
        self.player.show()
        return self.player

    def _batch_to_evaluate(self) -> str | None:
        items = self.selected_items()
        if items and items[0].job is not None:
            return items[0].job.batch_id
        return self.batch.currentData() or None

    def evaluate_batch(self) -> Any:
        """Open the evaluation board (app.dialogs.evaluation) of the selected output's batch, or the batch shown."""
        from app.dialogs.evaluation import EvaluationBoard

        batch = self._batch_to_evaluate()
        if batch is None or self.session is None:
            return None
        self.board = EvaluationBoard(self.session, batch, self.window())
        self.board.show()
        return self.board

    def compare_selected(self) -> Any:
        """Open a compare window for the 2-4 selected outputs (playing in sync); None when the count is wrong."""
        from app.dialogs.compare import MAX_OUTPUTS, MIN_OUTPUTS, CompareSource, CompareWindow

        items = self.selected_items()
        if not MIN_OUTPUTS <= len(items) <= MAX_OUTPUTS:
            return None
        sources = [CompareSource(i.output.dir, i.title + (f" · seed {i.job.seed}" if i.job else ""),
                                 self.model.method(i)) for i in items]
        self.compare_window = CompareWindow(sources, self.window())
        self.compare_window.show()
        return self.compare_window

    # -- recall, re-queue, reveal ---------------------------------------------------------------
    def _on_recall_triggered(self) -> None:
        item = self.selected()
        if item is not None:
            self.recall_requested.emit(item.job if item.job is not None else item.output)

    def _on_requeue_triggered(self) -> None:
        for item in self.selected_items():
            self.requeue_requested.emit(item.output.dir)

    def _on_reveal_triggered(self) -> None:
        item = self.selected()
        if item is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.output.dir)))

    # -- star, delete, undo ---------------------------------------------------------------------
    def _call(self, fn: Any, title: str, on_done: Any = None) -> None:
        s = self.session
        if s is not None:
            s.call(fn, on_done, title, s.outputs_changed.emit)

    def _on_star_triggered(self) -> None:
        items = self.selected_items()
        if items:
            self.set_starred([i.job_id for i in items], not all(i.starred for i in items))

    @Slot(QModelIndex)
    def _on_delegate_star_clicked(self, index: QModelIndex) -> None:
        item: GalleryItem = index.data(RecordRole)
        if item is not None:
            self.set_starred([item.job_id], not item.starred)

    def set_starred(self, job_ids: list[str], starred: bool) -> None:
        s = self.session
        if s is not None:
            self._call(lambda: s.project.star_outputs(job_ids, starred), "Cannot star")

    def delete_selected(self) -> None:
        """Delete the selected outputs (moved to the project's trash); the project's undo brings them back for
        :attr:`undo_seconds`, then (or when the project closes) they are gone for good."""
        items, s = self.selected_items(), self.session
        if not items or s is None:
            return
        ids = [i.job_id for i in items]
        text = f"Deleted {len(ids)} outputs." if len(ids) > 1 else f"Deleted “{items[0].title[:40]}”."
        text += f" Undo brings {'them' if len(ids) > 1 else 'it'} back for {self.undo_seconds:g} s."

        def undo() -> None:
            self._call(lambda: s.project.restore_outputs(ids), "Cannot undo the delete")

        def commit() -> None:
            s.tasks.submit(lambda: s.project.purge_trash(ids), None, self._on_housekeeping_failed)

        self._call(lambda: s.project.delete_outputs(ids), "Cannot delete",
                   lambda _: s.undo.push(text, "Delete outputs", undo, commit, int(self.undo_seconds * 1000)))

    # -- export ---------------------------------------------------------------------------------
    def _on_export_triggered(self) -> None:
        item = self.selected()
        if item is None:
            return
        from app import settings as st

        folder = st.export_folder()  # Settings ▸ General, else where the last export went
        dialog = QFileDialog(self, "Export output", str(folder / f"{item.job_id}.mp4"), ";;".join(EXPORT_FILTERS))
        dialog.setObjectName("exportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setDefaultSuffix("mp4")
        dialog.filterSelected.connect(lambda f: dialog.setDefaultSuffix("" if EXPORT_FILTERS.get(f) == "png"
                                                                         else EXPORT_FILTERS.get(f, "")))
        dialog.fileSelected.connect(lambda path: self._export_to(item, path, dialog.selectedNameFilter()))
        self.export_dialog = dialog
        dialog.open()

    def _export_to(self, item: GalleryItem, path: str, chosen_filter: str) -> None:
        from sdk.errors import InvalidRequest

        try:
            dest, fmt = export_target(path, chosen_filter)
        except InvalidRequest as exc:
            if self.session is not None:
                self.session.error_raised.emit("Cannot export", exc.user_message, exc.hint)
            return
        from app import settings as st

        st.settings().setValue("last_export_folder", str(dest.parent))
        self.export_requested.emit(item.output.dir, dest, fmt)
