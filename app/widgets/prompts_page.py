"""Prompts (editable in place, subject tokens highlighted) and adapters."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAbstractTextDocumentLayout, QPalette, QTextDocument
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView,
                               QVBoxLayout, QWidget)

from app.models.catalog_models import AdapterListModel, PromptListModel, TextFilterProxy, highlight_tokens


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
    def __init__(self, adapters: AdapterListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = QTableView(self)
        self.view.setModel(adapters)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hint = QLabel("Trained artifacts (identity and motion adapters, LoRA…) appear here per subject and motion "
                      "once a training job finishes. No trainer is installed yet.", self)
        hint.setWordWrap(True)
        self.hint = hint
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.view, 1)
        lay.addWidget(hint)
