"""The evaluation board: a batch's outputs × metrics in a sortable table with thumbnails, the best output per prompt
and per subject highlighted, the best seed, and a chart of score vs an adapter step (or any param the grid varies)
with its peak. It is a window of its own (the app stays usable) and refreshes when new scores arrive.

The data is :func:`sdk.evaluation.build_board` (the same as ``vgen batch report``); it, the thumbnails and the chart
(matplotlib on Agg, a PNG shown in a QLabel: no Qt backend of matplotlib is involved) are made off the GUI thread.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, QSortFilterProxyModel, Qt, QTimer, Slot
from PySide6.QtGui import QBrush, QColor, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QHBoxLayout, QHeaderView, QLabel, QSplitter,
                               QTableView, QVBoxLayout, QWidget)

from app import look

log = logging.getLogger("vgen.app.evaluation")

#: what each cell sorts by: a number (None sorts after every number, whichever the order)
SortRole = Qt.ItemDataRole.UserRole + 1
JobRole = Qt.ItemDataRole.UserRole + 2
BEST = QColor(200, 235, 200)
THUMB_PX = 64


class BoardProxy(QSortFilterProxyModel):
    """Sorts by :data:`SortRole`: numbers as numbers, text as text; cells without a value stay last."""

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        a, b = left.data(SortRole), right.data(SortRole)
        if a is None or b is None:
            # keep empty cells at the bottom in both orders
            ascending = self.sortOrder() == Qt.SortOrder.AscendingOrder
            return (a is not None) == ascending if (a is None) != (b is None) else False
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a < b
        return str(a) < str(b)


def _key(board: Any, metric: str | None, axis: str | None) -> tuple[Any, ...]:
    """What the board shows: the same key means nothing to redraw."""
    return (metric, axis, tuple((m.id, m.higher_is_better) for m in board.metrics),
            tuple((r.job_id, tuple(sorted(r.scores.items(), key=lambda kv: kv[0])), tuple(r.problems)) for r in board.rows))


def _load(project: Any, registry: Any, batch_id: str, metric: str | None, axis: str | None,
          thumbs: dict[str, bytes], last_key: Any = None) -> dict[str, Any]:
    """Off the GUI thread: the board, new thumbnails (PNG bytes), the summary lines and the chart PNG (or
    ``{"unchanged": True}`` when it shows what ``last_key`` showed: the session polls the project every few seconds)."""
    from sdk.errors import VGenError
    from sdk.evaluation import build_board
    from sdk.evaluation_report import chart_png, summary, thumbnail_png

    board = build_board(project, batch_id, registry=registry)
    metric = metric if metric in {m.id for m in board.metrics} else board.default_metric()
    axis = axis if axis in board.axes() else board.step_axis()
    key = _key(board, metric, axis)
    if key == last_key:
        return {"unchanged": True}
    new = {}
    for row in board.rows:
        if row.job_id not in thumbs and row.output_dir:
            try:
                new[row.job_id] = thumbnail_png(row.output_dir, THUMB_PX)
            except (OSError, VGenError, ValueError, IndexError) as exc:
                log.warning("no thumbnail for %s: %s", row.job_id, exc)
    chart = None
    if metric is not None and axis is not None:
        curve = board.step_curve(metric, axis)
        if curve.points:
            chart = chart_png(curve, size=(4.6, 2.8))
    return {"board": board, "metric": metric, "axis": axis, "thumbs": new, "chart": chart, "key": key,
            "summary": summary(board, metric, axis)}


class EvaluationBoard(QDialog):
    """The board of one batch of an open project session."""

    def __init__(self, session: Any, batch_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.batch_id = batch_id
        self.setWindowTitle(f"Evaluation board · batch {batch_id[:8]}")
        self.setModal(False)
        self.resize(980, 620)
        self.board: Any = None
        self.rank_metric: str | None = None
        self.chart_axis: str | None = None
        self.loads = 0  # finished loads (tests wait on it)
        self._thumbs: dict[str, bytes] = {}
        self._loading = False
        self._again = False
        self._key: Any = None
        self._sorted = False  # the table sorts best first by the ranking metric until the user picks a column
        self._ranked_by: str | None = None

        self.metric_box, self.axis_box = QComboBox(self), QComboBox(self)
        self.metric_box.setObjectName("boardMetric")
        self.axis_box.setObjectName("boardAxis")
        self.metric_box.setToolTip("The metric that ranks the outputs, picks the bests and is charted")
        self.axis_box.setToolTip("The chart's x axis: an adapter step (identity_step, motion_step) or a param the "
                                 "grid varies")
        self.metric_box.activated.connect(self._on_choice_activated)
        self.axis_box.activated.connect(self._on_choice_activated)
        self.summary = QLabel(self)
        self.summary.setObjectName("boardSummary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setWordWrap(True)
        self.model = QStandardItemModel(self)
        self.proxy = BoardProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.table = QTableView(self)
        self.table.setObjectName("boardTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 6)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.chart = QLabel(self)
        self.chart.setObjectName("boardChart")
        self.chart.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.chart.setMinimumWidth(320)
        look.muted(self.chart)

        top = QHBoxLayout()
        top.addWidget(QLabel("Rank by", self))
        top.addWidget(self.metric_box, 1)
        top.addWidget(QLabel("Chart against", self))
        top.addWidget(self.axis_box, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.table)
        split.addWidget(self.chart)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)

        # scores arrive as score jobs finish: refresh then (coalesced: one load at a time)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.refresh)
        session.jobs_changed.connect(self._timer.start)
        session.outputs_changed.connect(self._timer.start)
        self.refresh()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        """Closed: stop following the session (its project may close next)."""
        self._timer.stop()
        for sig in (self.session.jobs_changed, self.session.outputs_changed):
            try:
                sig.disconnect(self._timer.start)
            except (RuntimeError, TypeError):
                pass  # already disconnected (closed twice)
        super().closeEvent(event)

    # -- loading ----------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Read the board again (in the background); a refresh asked for during a load runs after it."""
        if self._loading:
            self._again = True
            return
        self._loading = True
        s, batch, metric, axis, thumbs = self.session, self.batch_id, self.rank_metric, self.chart_axis, dict(self._thumbs)
        key = self._key
        s.tasks.submit(lambda: _load(s.project, s.registry, batch, metric, axis, thumbs, key), self._on_loaded,
                       self._on_load_failed)

    def _on_loaded(self, result: dict[str, Any]) -> None:
        self._loading = False
        if result.get("unchanged"):
            self._rerun_if_asked()
            return
        self._key = result["key"]
        self._thumbs.update(result["thumbs"])
        self.board, self.rank_metric, self.chart_axis = result["board"], result["metric"], result["axis"]
        self._fill_choices()
        self._fill_table()
        self.summary.setText("\n".join(result["summary"]))
        if result["chart"] is not None:
            pix = QPixmap()
            pix.loadFromData(result["chart"], "PNG")
            self.chart.setPixmap(pix)
        else:
            self.chart.setPixmap(QPixmap())
            self.chart.setText("No chart: nothing varies across these outputs (queue a grid over a step, e.g. "
                               "identity_step) or nothing is scored yet.")
        self.loads += 1
        self._rerun_if_asked()

    def _on_load_failed(self, exc: BaseException) -> None:
        from sdk.errors import VGenError

        self._loading = False
        text = exc.user_message if isinstance(exc, VGenError) else f"{type(exc).__name__}: {exc}"
        hint = getattr(exc, "hint", "") or ""
        self.summary.setText(f"{text}\n{hint}".strip())
        self._key = None
        self.loads += 1
        self._rerun_if_asked()

    def _rerun_if_asked(self) -> None:
        if self._again:
            self._again = False
            self.refresh()

    @Slot(int)
    def _on_choice_activated(self, _: int) -> None:
        self.rank_metric = self.metric_box.currentData()
        self.chart_axis = self.axis_box.currentData()
        self.refresh()

    # -- showing ----------------------------------------------------------------------------------
    def _fill_choices(self) -> None:
        b = self.board
        for box, entries, current in (
                (self.metric_box, [(f"{m.title} ({m.id}, {'higher' if m.higher_is_better else 'lower'} is better)",
                                    m.id) for m in b.metrics], self.rank_metric),
                (self.axis_box, [(a, a) for a in b.axes()], self.chart_axis)):
            box.blockSignals(True)
            box.clear()
            for text, data in entries:
                box.addItem(text, data)
            box.setCurrentIndex(max(0, box.findData(current)))
            box.setEnabled(bool(entries))
            box.blockSignals(False)

    def columns(self) -> list[str]:
        """The table's header texts, in order."""
        return [self.model.horizontalHeaderItem(c).text() for c in range(self.model.columnCount())]

    def _fill_table(self) -> None:
        from sdk.evaluation_report import fmt_score, varying_params
        from sdk.safe_text import printable

        b = self.board
        params = varying_params(b)
        header = ["output", "prompt", "subject", "seed", *params,
                  *[f"{m.id} {'↑' if m.higher_is_better else '↓'}" for m in b.metrics]]
        sort_col, order = self.proxy.sortColumn(), self.proxy.sortOrder()
        self.model.clear()
        self.model.setHorizontalHeaderLabels(header)
        best = b.best_job_ids(self.rank_metric) if self.rank_metric else set()
        for r in b.rows:
            cells = [(r.job_id[:8], r.job_id[:8]), (printable(r.prompt), r.prompt),
                     (printable(r.subject or ""), r.subject), (str(r.seed), r.seed)]
            for p in params:
                v = r.params.get(p)
                cells.append((printable(str(v)), v if isinstance(v, (int, float)) and not isinstance(v, bool)
                              else str(v)))
            for m in b.metrics:
                v = r.score(m.id)
                cells.append(("INVALID" if m.id in r.problems else fmt_score(v),
                              v if v is not None and math.isfinite(v) else None))
            items = []
            for text, key in cells:
                it = QStandardItem(text)
                it.setData(key, SortRole)
                it.setData(r.job_id, JobRole)
                if r.job_id in best:
                    it.setBackground(QBrush(BEST))
                    it.setForeground(QBrush(QColor(0, 0, 0)))
                    it.setToolTip(f"Best for its prompt or subject by {self.rank_metric}")
                items.append(it)
            if r.job_id in self._thumbs:
                pix = QPixmap()
                pix.loadFromData(self._thumbs[r.job_id], "PNG")
                items[0].setData(pix, Qt.ItemDataRole.DecorationRole)
            self.model.appendRow(items)
        if (not self._sorted or self._ranked_by != self.rank_metric) and self.rank_metric:
            # first load, or another metric picked: best first by the ranking metric
            sort_col = header.index(next(h for h in header if h.startswith(self.rank_metric + " ")))
            order = Qt.SortOrder.DescendingOrder if b.metric(self.rank_metric).higher_is_better else Qt.SortOrder.AscendingOrder
            self._sorted, self._ranked_by = True, self.rank_metric
        if sort_col >= 0:
            self.table.sortByColumn(sort_col, order)

    def shown_job_ids(self) -> list[str]:
        """Job ids in the order the table shows them."""
        return [self.proxy.index(r, 0).data(JobRole) for r in range(self.proxy.rowCount())]

    def highlighted_job_ids(self) -> set[str]:
        return {self.proxy.index(r, 0).data(JobRole) for r in range(self.proxy.rowCount())
                if self.proxy.index(r, 0).data(Qt.ItemDataRole.BackgroundRole) is not None}
