"""Condition videos (depth, canny … made by condition extractors) as an item model, for the job editor's
condition inputs. Rows are records shaped like ``sdk.records.ConditionRecord``: id, kind, path, extractor, source,
num_frames."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from app.models.catalog_models import _ThumbModel

Display, Decoration, ToolTip = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole


def load_conditions(project: Any) -> list[Any]:
    """The project's conditions (worker thread); none from an sdk that does not keep them yet."""
    return list(project.conditions()) if hasattr(project, "conditions") else []


class ConditionListModel(_ThumbModel):
    columns = ("Condition", "Kind", "Frames")
    video = True

    def thumb_source(self, c: Any) -> tuple[Any, Any]:
        return c.path, None

    def cell(self, c: Any, row: int, column: int, role: int) -> Any:
        if role == Display:
            return (str(c.id)[:8], c.kind, str(c.num_frames))[column]
        if role == ToolTip:
            return f"{c.kind} by {c.extractor} from {c.source}\n{c.path}"
        if role == Decoration and column == 0:
            frames = self._frames(c)
            return frames[0] if frames else None
        return None
