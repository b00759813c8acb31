"""The queue: a table view over :class:`JobTableModel` with start/pause, cancel, retry, reorder,
clear finished, a filter, and the selected failed job's message (its traceback behind Details)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMessageBox, QPushButton, QStyle, QStyledItemDelegate, QStyleOptionProgressBar,
                               QStyleOptionViewItem, QTableView, QToolBar, QVBoxLayout, QWidget)

from app.models.base import RecordRole
from app.models.queue_model import JobFilterProxy, JobTableModel, ProgressRole, StatusRole, status_value


class ProgressDelegate(QStyledItemDelegate):
    """Paints the progress column as a progress bar (no widget per row)."""

    def paint(self, painter: Any, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionProgressBar()
        opt.rect = option.rect.adjusted(2, 3, -2, -3)
        opt.minimum, opt.maximum = 0, 100
        opt.progress = int(index.data(ProgressRole) or 0)
        opt.text = str(index.data() or "")
        opt.textVisible = bool(opt.text)
        opt.state = option.state | QStyle.StateFlag.State_Horizontal
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, opt, painter)


class QueuePanel(QWidget):
    """Actions act on the selected job; ``selected_job_changed`` says which job that is."""

    #: job id or "" when none is selected
    selected_job_changed = Signal(str)

    def __init__(self, model: JobTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self.model = model
        self.proxy = JobFilterProxy(self)
        self.proxy.setSourceModel(model)
        self.view = QTableView(self)
        self.view.setObjectName("queueView")
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
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
        self.view.selectionModel().currentRowChanged.connect(self._on_view_current_row_changed)
        model.dataChanged.connect(self._on_model_data_changed)
        model.move_requested.connect(self._on_model_move_requested)

        def action(text: str, shortcut: str, tip: str) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
            a.setStatusTip(tip)
            return a

        self.start_action = action("Start queue", "F5", "Render queued jobs one after another")
        self.start_action.triggered.connect(self._on_start_action_triggered)
        self.cancel_action = action("Cancel job", "Ctrl+Backspace", "Cancel the selected queued or running job")
        self.cancel_action.triggered.connect(lambda: self._act("cancel"))
        self.retry_action = action("Retry job", "Ctrl+R", "Queue the selected failed or cancelled job again")
        self.retry_action.triggered.connect(lambda: self._act("retry"))
        self.up_action = action("Move up", "Ctrl+Up", "Render the selected queued job earlier")
        self.up_action.triggered.connect(lambda: self._act("move", -1))
        self.down_action = action("Move down", "Ctrl+Down", "Render the selected queued job later")
        self.down_action.triggered.connect(lambda: self._act("move", 1))
        self.clear_action = action("Clear finished", "Ctrl+Shift+Backspace",
                                   "Remove failed and cancelled jobs from the list (outputs stay)")
        self.clear_action.triggered.connect(lambda: self.session and self.session.clear_finished())
        self.actions_ = [self.start_action, self.cancel_action, self.retry_action, self.up_action,
                         self.down_action, self.clear_action]

        bar = QToolBar(self)  # narrow windows move what does not fit into the toolbar's overflow menu
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for a in self.actions_:
            bar.addAction(a)
            if a is self.start_action:
                self.start_button = bar.widgetForAction(a)
        self.state_label = QLabel("", self)
        self.state_label.setObjectName("renderState")
        self.state_label.setContentsMargins(8, 0, 8, 0)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter jobs…")
        self.filter.setMinimumWidth(120)
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_filter_text)
        # the state and the filter sit beside the toolbar, never in its overflow menu: only actions overflow
        top = QHBoxLayout()
        top.addWidget(bar, 1)
        top.addWidget(self.state_label)
        top.addWidget(self.filter)

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

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.error_box)
        self.set_session(None)

    # -- session ------------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        self.session = session
        self.set_render_state(session.state if session is not None else "stopped")
        self._update_actions()

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
    def selected_job(self) -> Any:
        idx = self.view.selectionModel().currentIndex()
        if not idx.isValid() or not self.view.selectionModel().isRowSelected(idx.row(), QModelIndex()):
            return None
        return self.proxy.index(idx.row(), 0).data(RecordRole)

    def select_job(self, job_id: str) -> None:
        row = self.model.row_of(job_id)
        if row is None:
            return
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        if idx.isValid():
            self.view.selectionModel().setCurrentIndex(
                idx, self.view.selectionModel().SelectionFlag.ClearAndSelect
                | self.view.selectionModel().SelectionFlag.Rows)

    @Slot(QModelIndex, QModelIndex)
    def _on_view_current_row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        job = self.selected_job()
        self._update_actions()
        self.selected_job_changed.emit(job.id if job is not None else "")

    @Slot(QModelIndex, QModelIndex)
    def _on_model_data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Any = None) -> None:
        job = self.selected_job()
        row = self.model.row_of(job.id) if job is not None else None
        if row is not None and top.row() <= row <= bottom.row():
            self._update_actions()

    def _update_actions(self) -> None:
        job = self.selected_job()
        status = status_value(job) if job is not None else ""
        has = self.session is not None
        self.start_action.setEnabled(has and self.session.state != "locked")
        self.cancel_action.setEnabled(has and status in ("QUEUED", "RUNNING") and not job.cancel_requested)
        self.retry_action.setEnabled(has and status in ("FAILED", "CANCELLED"))
        self.up_action.setEnabled(has and status == "QUEUED")
        self.down_action.setEnabled(has and status == "QUEUED")
        self.clear_action.setEnabled(has)
        failed = status == "FAILED"
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
        job = self.selected_job()
        if self.session is None or job is None:
            return
        if what == "cancel":
            self.session.cancel(job.id)
        elif what == "retry":
            self.session.retry(job.id)
        elif what == "move":
            self.session.move(job.id, delta)

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
