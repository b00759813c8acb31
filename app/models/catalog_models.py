"""Subjects, their images, motions, prompts and adapters as item models."""
from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QPixmap

from app.imaging import ThumbnailCache
from app.models.base import Index, RecordTableModel

Display, Decoration, ToolTip, Edit = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole,
                                      Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.EditRole)


class _ThumbModel(RecordTableModel):
    """Rows whose column 0 shows a thumbnail from a :class:`ThumbnailCache`."""

    video = False

    def __init__(self, thumbs: ThumbnailCache | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._thumbs = thumbs
        self._pixmaps: dict[str, list[QIcon]] = {}
        if thumbs is not None:
            thumbs.loaded.connect(self._on_thumbs_loaded)

    def thumb_source(self, record: Any) -> tuple[Any, Any]:
        """(path, mask path) of the record's thumbnail."""
        return None, None

    def _placeholder(self) -> list[QIcon]:
        """A blank thumbnail while the real one loads, so item sizes never change under the view."""
        if "" not in self._pixmaps:
            size = self._thumbs.size if self._thumbs is not None else 96
            pm = QPixmap(size, size)
            pm.fill(QColor("#d0d0d0"))
            self._pixmaps[""] = [QIcon(pm)]
        return self._pixmaps[""]

    def _frames(self, record: Any) -> list[QIcon]:
        path, mask = self.thumb_source(record)
        if self._thumbs is None or path is None:
            return []
        key = ThumbnailCache.key(path, mask)
        if key not in self._pixmaps:
            images = self._thumbs.frames(path, mask, video=self.video)
            if not images:
                return [] if self._thumbs.failed(path, mask) else self._placeholder()
            # icons, not pixmaps: a view scales an icon to its icon size
            self._pixmaps[key] = [QIcon(QPixmap.fromImage(i)) for i in images]
        return self._pixmaps[key]

    @Slot(str, object)
    def _on_thumbs_loaded(self, key: str, images: object) -> None:
        for row, record in enumerate(self._rows):
            path, mask = self.thumb_source(record)
            if path is not None and ThumbnailCache.key(path, mask) == key:
                self.refresh_row(row, 0, 0, [Decoration])


class SubjectListModel(_ThumbModel):
    columns = ("Subject", "Token", "Images")

    def thumb_source(self, s: Any) -> tuple[Any, Any]:
        return (s.images[0].asset.path, None) if s.images else (None, None)

    def cell(self, s: Any, row: int, column: int, role: int) -> Any:
        if role == Display:
            return (s.name, s.token, str(len(s.images)))[column]
        if role == ToolTip:
            masks = sum(1 for i in s.images if i.mask)
            return f"{s.name} — write {s.token} in a prompt to use it. {len(s.images)} image(s), {masks} mask(s)."
        if role == Decoration and column == 0:
            frames = self._frames(s)
            return frames[0] if frames else None
        return None


class SubjectImagesModel(_ThumbModel):
    """The reference images of one subject; a mask shows as a tint over the thumbnail."""

    columns = ("Image",)

    def key(self, record: Any) -> Any:
        return (record.asset.hash, record.mask.hash if record.mask else None)

    def thumb_source(self, image: Any) -> tuple[Any, Any]:
        return image.asset.path, image.mask.path if image.mask else None

    def cell(self, image: Any, row: int, column: int, role: int) -> Any:
        a = image.asset
        if role == Display:
            return a.original_name + (" (mask)" if image.mask else "")
        if role == ToolTip:
            mask = f"\nmask: {image.mask.original_name}" if image.mask else "\nno mask"
            return f"{a.original_name}\n{a.width}×{a.height} px{mask}"
        if role == Decoration:
            frames = self._frames(image)
            return frames[0] if frames else None
        return None


class MotionListModel(_ThumbModel):
    """Motions; their thumbnails play a few frames of the first reference video."""

    columns = ("Motion", "Videos")
    video = True

    def __init__(self, thumbs: ThumbnailCache | None = None, parent: Any = None) -> None:
        super().__init__(thumbs, parent)
        self._tick = 0
        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    def thumb_source(self, mo: Any) -> tuple[Any, Any]:
        return (mo.videos[0].path, None) if mo.videos else (None, None)

    def cell(self, mo: Any, row: int, column: int, role: int) -> Any:
        if role == Display:
            return (mo.name, str(len(mo.videos)))[column]
        if role == ToolTip:
            return f"{mo.name}: " + ", ".join(f"{v.original_name} ({v.num_frames} frames)" for v in mo.videos)
        if role == Decoration and column == 0:
            frames = self._frames(mo)
            return frames[self._tick % len(frames)] if frames else None
        return None

    @Slot()
    def _on_timer_timeout(self) -> None:
        self._tick += 1
        for row, mo in enumerate(self._rows):
            if len(self._frames(mo)) > 1:
                self.refresh_row(row, 0, 0, [Decoration])


def highlight_tokens(text: str, tokens: list[str]) -> str:
    """HTML of ``text`` with every subject token in bold colour."""
    import html

    from app import look

    colour = look.tone("token")
    out = html.escape(text)
    for tok in sorted(set(tokens), key=len, reverse=True):
        esc = html.escape(tok)
        out = re.sub(re.escape(esc), f'<b style="color:{colour}">{esc}</b>', out)
    return out


class PromptListModel(RecordTableModel):
    """Saved prompts; both columns are editable in place (the change is written in the background)."""

    columns = ("Prompt", "Negative prompt")
    #: prompt id, text, negative
    edit_requested = Signal(int, str, str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.tokens: list[str] = []

    def cell(self, p: Any, row: int, column: int, role: int) -> Any:
        if role in (Display, Edit):
            return (p.text, p.negative)[column]
        if role == ToolTip:
            return p.text + (f"\nNegative: {p.negative}" if p.negative else "")
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.isValid() else base

    def setData(self, index: Index, value: Any, role: int = Edit) -> bool:
        if not index.isValid() or role != Edit:
            return False
        p = self._rows[index.row()]
        text, negative = (str(value), p.negative) if index.column() == 0 else (p.text, str(value))
        if not text.strip():
            return False
        self.replace_record(type(p)(id=p.id, text=text.strip(), negative=negative.strip()))
        self.edit_requested.emit(p.id, text.strip(), negative.strip())
        return True


def adapter_targets(a: Any) -> list[tuple[str, int]]:
    """The ("subject" | "motion", id) an adapter was trained on."""
    return [(k, i) for k, i in (("subject", a.subject_id), ("motion", a.motion_id)) if i is not None]


class AdapterListModel(RecordTableModel):
    columns = ("For", "Kind", "Step", "Adapter")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.names: dict[tuple[str, int], str] = {}

    def target_name(self, kind: str, ident: int) -> str:
        return self.names.get((kind, ident), f"{kind} {ident}")

    def sort_key(self, row: int, column: int) -> tuple[Any, ...]:
        """The column's value, then subject/motion, kind and step: each one's adapters stay together in order."""
        a = self._rows[row]
        group = (", ".join(self.target_name(k, i) for k, i in adapter_targets(a)).lower(), a.kind, a.step)
        return ((*group, a.name.lower())[column if column < 3 else 3],) + group

    def cell(self, a: Any, row: int, column: int, role: int) -> Any:
        if role == Display:
            target = ", ".join(self.target_name(k, i) for k, i in adapter_targets(a)) or "—"
            return (target, a.kind, str(a.step), a.name)[column]
        if role == ToolTip:
            return f"{a.name} ({a.id})\n{a.kind}, step {a.step}\n{a.path}"
        return None


class AdapterFilterProxy(QSortFilterProxyModel):
    """Adapters of one subject or motion (or all), sorted so each one's adapters sit together."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._target: tuple[str, int] | None = None

    def set_target(self, target: tuple[str, int] | None) -> None:
        self._target = target
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self._target is None:
            return True
        return self._target in adapter_targets(self.sourceModel().record(source_row))

    def lessThan(self, left: Index, right: Index) -> bool:
        m = self.sourceModel()
        return m.sort_key(left.row(), left.column()) < m.sort_key(right.row(), right.column())


class TextFilterProxy(QSortFilterProxyModel):
    """Filters rows as you type: every word must appear in one of the row's columns."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []

    def set_filter_text(self, text: str) -> None:
        self._words = text.lower().split()
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if not self._words:
            return True
        m = self.sourceModel()
        hay = " ".join(str(m.index(source_row, c, source_parent).data() or "")
                       for c in range(m.columnCount(source_parent))).lower()
        return all(w in hay for w in self._words)


__all__ = ["SubjectListModel", "SubjectImagesModel", "MotionListModel", "PromptListModel", "AdapterListModel",
           "AdapterFilterProxy",
           "TextFilterProxy", "highlight_tokens", "QModelIndex"]
