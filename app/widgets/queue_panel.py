"""The queue: a table view over :class:`JobTableModel` with start/pause; cancel, retry and delete of the selected jobs
(several at once); reorder; cancel all, clear queued and clear finished, each undoable for a few seconds; status
filter tabs and a text filter; and the selected failed job's message (its traceback behind Details)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMenu, QMessageBox, QPushButton, QStyle, QStyledItemDelegate, QStyleOptionProgressBar,
                               QStyleOptionViewItem, QTabBar, QTableView, QToolBar, QToolButton, QVBoxLayout, QWidget)

from app.models.base import RecordRole
from app.models.queue_model import (STATUS_FILTERS, JobFilterProxy, JobTableModel, ProgressRole, StatusRole,
                                    status_value)
from app.undo import UndoAction, UndoToast


class ProgressDelegate(QStyledItemDelegate):
    """Paints the progress column as a progress bar (no widget per row)."""

    def paint(self, painter: Any, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if index.data(StatusRole) not in ("RUNNING", "SUCCEEDED") and not index.data(ProgressRole):
            super().paint(painter, option, index)  # a job that has not started: no empty bar
            return
        opt = QStyleOptionProgressBar()
        opt.rect = option.rect.adjusted(2, 3, -2, -3)
        opt.minimum, opt.maximum = 0, 100
        opt.progress = int(index.data(ProgressRole) or 0)
        opt.text = str(index.data() or "")
        opt.textVisible = bool(opt.text)
        opt.state = option.state | QStyle.StateFlag.State_Horizontal
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, opt, painter)


class QueuePanel(QWidget):
    """Actions act on the selected jobs; ``selected_job_changed`` says which job is current."""

    #: job id or "" when none is selected
    selected_job_changed = Signal(str)

    def __init__(self, model: JobTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self.model = model
        self.proxy = JobFilterProxy(self)
        self.proxy.setSourceModel(model)
        self._current_id = ""
        self._counts: dict[str, int] | None = None
        self.view = QTableView(self)
        self.view.setObjectName("queueView")
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Ctrl/Shift-click select several jobs: cancel, retry and delete act on all of them
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setItemDelegateForColumn(JobTableModel.PROGRESS, ProgressDelegate(self.view))
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.view.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.view.setDragDropOverwriteMode(False)
        self.view.setDropIndicatorShown(True)
        self.view.verticalHeader().setVisible(False)
        self.view.setAlternatingRowColors(True)
        # one line per job, the prompt elided: wrapped prompts in a narrow column read as "a / ph…"
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.view.horizontalHeader()
        header.setMinimumSectionSize(36)
        header.setSectionResizeMode(JobTableModel.PROMPT, QHeaderView.ResizeMode.Stretch)
        for col, width in ((JobTableModel.STATUS, 72), (JobTableModel.METHOD, 108), (JobTableModel.SEED, 44),
                           (JobTableModel.PROGRESS, 88), (JobTableModel.ETA, 48), (JobTableModel.ELAPSED, 60)):
            header.resizeSection(col, width)
        # the buttons follow the selection: a mouse click selects after it moves the current row (issue 11 #1)
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection_changed)
        self.view.selectionModel().currentRowChanged.connect(self._on_view_selection_changed)
        model.dataChanged.connect(self._on_model_data_changed)
        for sig in (model.rowsInserted, model.rowsRemoved, model.layoutChanged, model.modelReset):
            sig.connect(self._on_model_rows_changed)
        model.move_requested.connect(self._on_model_move_requested)

        def action(text: str, shortcut: Any, tip: str, panel_only: bool = False) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            if panel_only:  # e.g. Delete: only while the queue has the focus (the gallery has its own)
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(a)
            keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            a.setToolTip(f"{tip} ({keys})" if keys else tip)
            a.setStatusTip(tip)
            return a

        self.start_action = action("Start queue", "F5", "Render queued jobs one after another")
        self.start_action.triggered.connect(self._on_start_action_triggered)
        self.cancel_action = action("Cancel job", "Ctrl+Backspace", "Cancel the selected queued or running jobs")
        self.cancel_action.triggered.connect(lambda: self._act("cancel"))
        self.retry_action = action("Retry job", "Ctrl+R", "Queue the selected failed or cancelled jobs again")
        self.retry_action.triggered.connect(lambda: self._act("retry"))
        self.up_action = action("Move up", "Ctrl+Up", "Render the selected queued job earlier")
        self.up_action.triggered.connect(lambda: self._act("move", -1))
        self.down_action = action("Move down", "Ctrl+Down", "Render the selected queued job later")
        self.down_action.triggered.connect(lambda: self._act("move", 1))
        self.delete_action = action("Delete", QKeySequence.StandardKey.Delete,
                                    "Delete the selected queued, failed or cancelled jobs (undoable)", panel_only=True)
        self.delete_action.triggered.connect(lambda: self._act("delete"))
        self.cancel_all_action = action("Cancel all", "", "Cancel every queued job and the running one (undoable)")
        self.cancel_all_action.triggered.connect(lambda: self.session and self.session.cancel_jobs(None))
        self.clear_queued_action = action("Clear queued", "", "Take every queued job out of the queue (undoable)")
        self.clear_queued_action.triggered.connect(lambda: self.session and self.session.clear_queued())
        self.clear_action = action("Clear finished", "Ctrl+Shift+Backspace",
                                   "Remove failed and cancelled jobs from the list; outputs stay (undoable)")
        self.clear_action.triggered.connect(lambda: self.session and self.session.clear_finished())
        #: Edit ▸ Undo for the queue's changes (the window puts it in its Edit menu)
        self.undo_action = UndoAction(self)
        self.actions_ = [self.start_action, self.cancel_action, self.retry_action, self.up_action,
                         self.down_action, self.delete_action, self.cancel_all_action, self.clear_queued_action,
                         self.clear_action]
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for a in self.actions_[1:6]:
            self.view.addAction(a)
        self.view.addAction(self._separator())
        for a in self.actions_[6:]:
            self.view.addAction(a)

        # short toolbar texts (the menus keep the long ones): the whole bar fits beside the preview at 1280 px
        for a, short in ((self.cancel_action, "Cancel"), (self.retry_action, "Retry"), (self.up_action, "↑"),
                         (self.down_action, "↓")):
            a.setIconText(short)
        bar = QToolBar(self)  # narrow windows move what does not fit into the toolbar's overflow menu
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        bar.addAction(self.start_action)
        self.start_button = bar.widgetForAction(self.start_action)
        self.state_label = QLabel("", self)
        self.state_label.setObjectName("renderState")
        self.state_label.setContentsMargins(4, 0, 8, 0)
        for a in self.actions_[1:6]:
            bar.addAction(a)
        self.clear_menu = QMenu("Clear", self)
        self.clear_menu.addActions([self.cancel_all_action, self.clear_queued_action, self.clear_action])
        self.clear_button = QToolButton(self)
        self.clear_button.setObjectName("clearQueueButton")
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Cancel all, clear queued or clear finished jobs (each undoable)")
        self.clear_button.setMenu(self.clear_menu)
        self.clear_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(self.clear_button)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter jobs…")
        self.filter.setMinimumWidth(120)
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_filter_text)

        self.status_tabs = QTabBar(self)
        self.status_tabs.setObjectName("statusTabs")
        self.status_tabs.setDrawBase(False)
        self.status_tabs.setExpanding(False)
        self._tab_keys = list(STATUS_FILTERS)
        for key in self._tab_keys:
            self.status_tabs.addTab(STATUS_FILTERS[key][0])
        self.status_tabs.currentChanged.connect(self._on_status_tabs_current_changed)

        self.error_box = QFrame(self)
        self.error_box.setObjectName("jobError")
        # translucent: readable over the light and the dark palette
        self.error_box.setStyleSheet("#jobError { background: rgba(229, 57, 53, 0.16); border: 1px solid #e57373; }")
        self.error_label = QLabel(self.error_box)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details…", self.error_box)
        self.details_button.clicked.connect(self._on_details_button_clicked)
        el = QHBoxLayout(self.error_box)
        el.addWidget(self.error_label, 1)
        el.addWidget(self.details_button)
        self.error_box.setVisible(False)
        self.details_box: QMessageBox | None = None
        self.toast = UndoToast(self)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        # the render state sits beside the toolbar and the filter beside the tabs: never in an overflow menu
        top = QHBoxLayout()
        top.addWidget(bar, 1)
        top.addWidget(self.state_label)
        tabs_row = QHBoxLayout()
        tabs_row.addWidget(self.status_tabs)
        tabs_row.addStretch(1)
        tabs_row.addWidget(self.filter)
        lay.addLayout(top)
        lay.addLayout(tabs_row)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.toast)
        lay.addWidget(self.error_box)
        self.set_session(None)

    def _separator(self) -> QAction:
        sep = QAction(self)
        sep.setSeparator(True)
        return sep

    # -- session ------------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        if self.session is not None:
            self.session.hidden_changed.disconnect(self.model.set_hidden)
        self.session = session
        stack = session.undo if session is not None else None
        self.undo_action.set_stack(stack)
        self.toast.set_stack(stack)
        if session is not None:
            session.hidden_changed.connect(self.model.set_hidden)
        self.model.set_hidden(session.hidden if session is not None else ())
        self.set_render_state(session.state if session is not None else "stopped")

    def set_render_state(self, state: str) -> None:
        running = state == "running"
        self.start_action.setText("Pause queue" if running else "Start queue")
        self.start_action.setStatusTip("Finish the running job, then take no new ones" if running
                                       else "Render queued jobs one after another")
        text = {"running": "Rendering", "paused": "Paused", "stopped": "Not rendering",
                "locked": "Rendered by another process"}.get(state, state)
        if state == "locked" and self.session is not None:
            self.state_label.setToolTip(self.session.lock_message)
        self.state_label.setText(text)
        self._update_actions()

    # -- selection ------------------------------------------------------------------------------
    def selected_jobs(self) -> list[Any]:
        """The selected jobs, in the order shown."""
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        return [self.proxy.index(r, 0).data(RecordRole) for r in rows]

    def selected_job(self) -> Any:
        """The current job when it is selected, else the one selected job (None if none or several)."""
        sm = self.view.selectionModel()
        idx = sm.currentIndex()
        if idx.isValid() and sm.isRowSelected(idx.row(), QModelIndex()):
            return self.proxy.index(idx.row(), 0).data(RecordRole)
        jobs = self.selected_jobs()
        return jobs[0] if len(jobs) == 1 else None

    def select_job(self, job_id: str) -> None:
        row = self.model.row_of(job_id)
        if row is None:
            return
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        if idx.isValid():
            self.view.selectionModel().setCurrentIndex(
                idx, self.view.selectionModel().SelectionFlag.ClearAndSelect
                | self.view.selectionModel().SelectionFlag.Rows)

    def set_status_filter(self, key: str) -> None:
        """Show one status tab: "all", "queued", "running", "failed" or "done"."""
        self.status_tabs.setCurrentIndex(self._tab_keys.index(key))

    @Slot()
    def _on_view_selection_changed(self, *_: Any) -> None:
        self._update_actions()
        job = self.selected_job()
        job_id = job.id if job is not None else ""
        if job_id != self._current_id:
            self._current_id = job_id
            self.selected_job_changed.emit(job_id)

    @Slot(QModelIndex, QModelIndex)
    def _on_model_data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Any = None) -> None:
        if top.column() <= JobTableModel.STATUS:  # a status may have changed (not only progress)
            self._on_model_rows_changed()

    @Slot()
    def _on_model_rows_changed(self, *_: Any) -> None:
        counts = self.model.status_counts()
        for i, key in enumerate(self._tab_keys):
            label = STATUS_FILTERS[key][0]
            self.status_tabs.setTabText(i, f"{label} ({counts[key]})" if counts[key] else label)
        self._counts = counts
        self._update_actions()

    @Slot(int)
    def _on_status_tabs_current_changed(self, index: int) -> None:
        self.proxy.set_status_filter(self._tab_keys[index])
        self._on_view_selection_changed()

    def _update_actions(self) -> None:
        jobs = self.selected_jobs()
        statuses = {status_value(j) for j in jobs if not (status_value(j) == "RUNNING" and j.cancel_requested)}
        has = self.session is not None
        counts = self._counts or self.model.status_counts()
        self.start_action.setEnabled(has and self.session.state != "locked")
        self.cancel_action.setEnabled(has and bool(statuses & {"QUEUED", "RUNNING"}))
        self.retry_action.setEnabled(has and bool(statuses & {"FAILED", "CANCELLED"}))
        single_queued = len(jobs) == 1 and status_value(jobs[0]) == "QUEUED"
        self.up_action.setEnabled(has and single_queued)
        self.down_action.setEnabled(has and single_queued)
        self.delete_action.setEnabled(has and bool({status_value(j) for j in jobs} & {"QUEUED", "FAILED", "CANCELLED"}))
        self.cancel_all_action.setEnabled(has and (counts["queued"] + counts["running"]) > 0)
        self.clear_queued_action.setEnabled(has and counts["queued"] > 0)
        self.clear_action.setEnabled(has and counts["failed"] > 0)
        n = len(jobs)
        self.cancel_action.setText("Cancel job" if n <= 1 else f"Cancel {n} jobs")
        self.cancel_action.setIconText("Cancel" if n <= 1 else f"Cancel {n}")
        self.retry_action.setText("Retry job" if n <= 1 else f"Retry {n} jobs")
        self.retry_action.setIconText("Retry" if n <= 1 else f"Retry {n}")
        job = self.selected_job()
        failed = job is not None and status_value(job) == "FAILED"
        self.error_box.setVisible(failed)
        if failed:
            hint = f"<br><i>{job.error_hint}</i>" if job.error_hint else ""
            self.error_label.setText(f"<b>This job failed:</b> {job.error_message or 'unknown error'}{hint}")
            self.details_button.setEnabled(bool(job.error_traceback))

    # -- actions ----------------------------------------------------------------------------------
    @Slot()
    def _on_start_action_triggered(self) -> None:
        if self.session is None:
            return
        if self.session.state == "running":
            self.session.pause_queue()
        else:
            self.session.start_queue()

    def _act(self, what: str, delta: int = 0) -> None:
        jobs = self.selected_jobs()
        if self.session is None or not jobs:
            return
        ids = [j.id for j in jobs]
        if what == "cancel":
            self.session.cancel_jobs(ids)
        elif what == "retry":
            self.session.retry_jobs(ids)
        elif what == "delete":
            self.session.delete_jobs(ids)
        elif what == "move" and len(jobs) == 1:
            self.session.move(jobs[0].id, delta)

    @Slot(str, int)
    def _on_model_move_requested(self, job_id: str, delta: int) -> None:
        if self.session is not None:
            self.session.move(job_id, delta)

    @Slot()
    def _on_details_button_clicked(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "Job failed", job.error_message or "The job failed.",
                          QMessageBox.StandardButton.Close, self)
        box.setInformativeText(job.error_hint or "")
        box.setDetailedText(job.error_traceback or "No traceback was recorded.")
        box.setObjectName("jobDetails")
        self.details_box = box
        box.open()
