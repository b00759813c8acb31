"""How a gallery thumbnail is painted: the thumbnail and its caption as usual, plus the method that made it as a
badge (top left), a star (top right) that a click toggles, and where it comes from or went (an upscale's "from JOB",
its source's "Upscale → JOB") as a badge at the bottom."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.models.output_model import ChainRole, MethodRole, StarredRole

Index = QModelIndex | QPersistentModelIndex
STAR_SIZE = 22
BADGE_COLOUR = QColor(21, 101, 192, 225)   # blue: readable on noise and on black frames alike
STAR_COLOUR = QColor("#ffc107")
CHAIN_COLOUR = QColor(46, 125, 50, 225)    # green: a different badge than the method's


class GalleryDelegate(QStyledItemDelegate):
    """Paints badges over the thumbnail; emits ``star_clicked(index)`` when its star is clicked."""

    star_clicked = Signal(QModelIndex)

    def icon_rect(self, option: QStyleOptionViewItem, index: Index) -> QRect:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is None:
            return option.rect
        return style.subElementRect(QStyle.SubElement.SE_ItemViewItemDecoration, opt, widget)

    def star_rect(self, option: QStyleOptionViewItem, index: Index) -> QRect:
        icon = self.icon_rect(option, index)
        return QRect(icon.right() - STAR_SIZE + 1, icon.top(), STAR_SIZE, STAR_SIZE)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        super().paint(painter, option, index)
        icon = self.icon_rect(option, index)
        painter.save()
        method = index.data(MethodRole) or ""
        if method:
            font = QFont(option.font)
            font.setBold(True)
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
            painter.setFont(font)
            fm = QFontMetrics(font)
            text = fm.elidedText(method, Qt.TextElideMode.ElideRight, icon.width() - STAR_SIZE - 8)
            box = fm.boundingRect(text).adjusted(-4, -1, 4, 1)
            box.moveTopLeft(icon.topLeft() + QRect(0, 0, 3, 3).bottomRight())
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(BADGE_COLOUR)
            painter.drawRoundedRect(box, 3, 3)
            painter.setPen(QColor("white"))
            painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
        chain = index.data(ChainRole) or ""
        if chain:
            self._badge(painter, option, icon, chain, CHAIN_COLOUR, bottom=True)
        starred = bool(index.data(StarredRole))
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if starred or hovered:
            font = QFont(option.font)
            font.setPointSizeF(max(10.0, font.pointSizeF() * 1.3))
            painter.setFont(font)
            rect = self.star_rect(option, index)
            painter.setPen(QColor(0, 0, 0, 160))  # a shadow keeps the star visible on a light frame
            painter.drawText(rect.translated(1, 1), int(Qt.AlignmentFlag.AlignCenter), "★" if starred else "☆")
            painter.setPen(STAR_COLOUR if starred else QColor(255, 255, 255, 200))
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), "★" if starred else "☆")
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, option: QStyleOptionViewItem, icon: QRect, text: str, colour: QColor,
               bottom: bool = False) -> None:
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        fm = QFontMetrics(font)
        text = fm.elidedText(text, Qt.TextElideMode.ElideRight, icon.width() - 8)
        box = fm.boundingRect(text).adjusted(-4, -1, 4, 1)
        if bottom:
            box.moveBottomLeft(icon.bottomLeft() + QPoint(3, -3))
        else:
            box.moveTopLeft(icon.topLeft() + QPoint(3, 3))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(QColor("white"))
        painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)

    def editorEvent(self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: Index) -> bool:
        if (event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent)
                and event.button() == Qt.MouseButton.LeftButton
                and self.star_rect(option, index).contains(event.position().toPoint())):
            self.star_clicked.emit(QModelIndex(index))
            return True
        return super().editorEvent(event, model, option, index)
