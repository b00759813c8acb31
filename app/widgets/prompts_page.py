"""Prompts (editable in place, subject tokens highlighted) and adapters."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAbstractTextDocumentLayout, QPalette, QTextDocument
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView,
                               QVBoxLayout, QWidget)

from app.models.catalog_models import (AdapterFilterProxy, AdapterListModel, PromptListModel, TextFilterProxy,
                                      adapter_targets, highlight_tokens)


class TokenDelegate(QStyledItemDelegate):
    """Paints prompt text with the project's subject tokens highlighted."""

    def __init__(self, tokens: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tokens = tokens  # callable → list[str]

    def _doc(self, option: QStyleOptionViewItem, index: QModelIndex) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(option.font)
        doc.setHtml(highlight_tokens(str(index.data() or ""), self._tokens()))
        doc.setTextWidth(option.rect.width())
        return doc

    def paint(self, painter: Any, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        doc = self._doc(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        if opt.state & QStyle.StateFlag.State_Selected:
            ctx.palette.setColor(QPalette.ColorRole.Text, opt.palette.color(QPalette.ColorRole.HighlightedText))
        painter.save()
        painter.translate(opt.rect.topLeft())
        painter.setClipRect(QRectF(0, 0, opt.rect.width(), opt.rect.height()))
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        doc = self._doc(option, index)
        return QSize(int(doc.idealWidth()), int(doc.size().height()))


class PromptsPage(QWidget):
    #: text, negative
    prompt_add_requested = Signal(str, str)
    #: prompt id
    prompt_remove_requested = Signal(int)

    def __init__(self, prompts: PromptListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompts = prompts
        self.proxy = TextFilterProxy(self)
        self.proxy.setSourceModel(prompts)
        self.view = QTableView(self)
        self.view.setObjectName("promptTable")
        self.view.setModel(self.proxy)
        self.view.setItemDelegateForColumn(0, TokenDelegate(lambda: prompts.tokens, self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setWordWrap(True)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.view.setToolTip("Double-click a prompt or its negative prompt to edit it.")
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter prompts…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_filter_text)
        self.text = QLineEdit(self)
        self.text.setObjectName("newPromptText")
        self.text.setPlaceholderText("New prompt, e.g. a photo of <rex> surfing a wave")
        self.text.returnPressed.connect(self._on_add_clicked)
        self.negative = QLineEdit(self)
        self.negative.setPlaceholderText("Negative prompt (optional), e.g. blurry, low quality")
        self.negative.returnPressed.connect(self._on_add_clicked)
        add = QPushButton("Add prompt", self)
        add.clicked.connect(self._on_add_clicked)
        remove = QPushButton("Remove", self)
        remove.clicked.connect(self._on_remove_clicked)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.text)
        lay.addWidget(self.negative)
        lay.addLayout(row)

    @Slot()
    def _on_add_clicked(self) -> None:
        text = self.text.text().strip()
        if not text:
            self.text.setFocus()
            return
        self.prompt_add_requested.emit(text, self.negative.text().strip())
        self.text.clear()
        self.negative.clear()

    @Slot()
    def _on_remove_clicked(self) -> None:
        rows = {self.proxy.mapToSource(i).row() for i in self.view.selectionModel().selectedRows()}
        for r in sorted(rows):
            self.prompt_remove_requested.emit(self.prompts.record(r).id)


class AdaptersPage(QWidget):
    """Trained adapters, sorted by the subject or motion they belong to; the combo shows one's only."""

    def __init__(self, adapters: AdapterListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.adapters = adapters
        self.proxy = AdapterFilterProxy(self)
        self.proxy.setSourceModel(adapters)
        self.view = QTableView(self)
        self.view.setObjectName("adapterTable")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().setVisible(False)
        header = self.view.horizontalHeader()
        for col in range(adapters.columnCount()):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.target = QComboBox(self)
        self.target.setObjectName("adapterTarget")
        self.target.setToolTip("Show the adapters of one subject or motion")
        self.target.currentIndexChanged.connect(lambda _: self.proxy.set_target(self._current_target()))
        for sig in (adapters.rowsInserted, adapters.rowsRemoved, adapters.modelReset, adapters.dataChanged):
            sig.connect(lambda *_: self._update_targets())
        hint = QLabel("Adapters appear here under their subject or motion once a training job finishes: "
                      "select a subject or motion and use Train DreamVideo… to make some.", self)
        hint.setWordWrap(True)
        self.hint = hint
        row = QHBoxLayout()
        row.addWidget(QLabel("For:", self))
        row.addWidget(self.target, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.view, 1)
        lay.addWidget(hint)
        self._update_targets()

    def show_target(self, kind: str, ident: int) -> bool:
        """Show only the adapters of this subject or motion; False when it has none."""
        i = self.target.findData(f"{kind}:{ident}")
        if i >= 0:
            self.target.setCurrentIndex(i)
        return i >= 0

    def _update_targets(self) -> None:
        m = self.adapters
        targets = sorted({t for r in range(m.rowCount()) for t in adapter_targets(m.record(r))},
                         key=lambda t: (t[0] != "subject", m.target_name(*t).lower()))
        items = [("All subjects and motions", None)] + [
            (f"{kind.capitalize()}: {m.target_name(kind, ident)}", f"{kind}:{ident}") for kind, ident in targets]
        self.hint.setVisible(m.rowCount() == 0)
        if [(self.target.itemText(i), self.target.itemData(i)) for i in range(self.target.count())] == items:
            return
        current = self.target.currentData()
        self.target.blockSignals(True)
        self.target.clear()
        for text, data in items:
            self.target.addItem(text, data)
        self.target.setCurrentIndex(max(0, self.target.findData(current)) if current is not None else 0)
        self.target.blockSignals(False)
        self.proxy.set_target(self._current_target())

    def _current_target(self) -> tuple[str, int] | None:
        """("subject" | "motion", id) of the combo's choice (kept as "kind:id" text: Qt compares it)."""
        data = self.target.currentData()
        if not data:
            return None
        kind, ident = str(data).split(":")
        return kind, int(ident)
