"""Outputs (rendered videos) for the gallery, newest first, with filters by batch, prompt, method and star."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QSortFilterProxyModel, Qt

from app.models.base import Index
from app.models.catalog_models import _ThumbModel

Display, Decoration, ToolTip = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole
#: the method that made an output ("ModelScope T2V", "I2VGen-XL", "DreamVideo" …): its thumbnail's badge
MethodRole = Qt.ItemDataRole.UserRole + 10
#: True when the output is starred
StarredRole = Qt.ItemDataRole.UserRole + 11


@dataclass(frozen=True)
class GalleryItem:
    """An output and the job that made it (both detached sdk records)."""

    output: Any
    job: Any

    @property
    def id(self) -> int:
        return self.output.id

    @property
    def job_id(self) -> str:
        return self.output.job_id

    @property
    def starred(self) -> bool:
        return bool(getattr(self.output, "starred", False))

    @property
    def title(self) -> str:
        return (self.job.prompt or self.job.spec_id) if self.job is not None else self.output.job_id


def load_gallery(project: Any) -> list[GalleryItem]:
    """Every output with its job, newest first, as galleries show them (worker thread)."""
    jobs = {j.id: j for j in project.jobs()}
    return [GalleryItem(o, jobs.get(o.job_id)) for o in reversed(project.outputs())]


class OutputListModel(_ThumbModel):
    columns = ("Output", "Prompt", "Seed", "Method", "Batch")

    def __init__(self, thumbs: Any = None, parent: Any = None,
                 method_of: Callable[[str], str] | None = None) -> None:
        super().__init__(thumbs, parent)
        self._method_of = method_of or (lambda spec_id: spec_id.split(".")[0])

    def set_method_lookup(self, method_of: Callable[[str], str]) -> None:
        self._method_of = method_of

    def thumb_source(self, item: GalleryItem) -> tuple[Any, Any]:
        return item.output.thumb_path, None

    def method(self, item: GalleryItem) -> str:
        return self._method_of(item.job.spec_id) if item.job is not None else ""

    def cell(self, item: GalleryItem, row: int, column: int, role: int) -> Any:
        if role == MethodRole:
            return self.method(item)
        if role == StarredRole:
            return item.starred
        job = item.job
        prompt = (job.prompt or job.spec_id) if job is not None else item.output.job_id
        if role == Display:
            if column == 0:
                short = prompt if len(prompt) <= 28 else prompt[:27] + "…"
                return f"{short}\nseed {job.seed}" if job is not None else short
            return (None, prompt, str(job.seed) if job else "", self.method(item),
                    job.batch_id if job else "")[column]
        if role == ToolTip:
            if job is None:
                return str(item.output.video_path)
            return (f"{'★ ' if item.starred else ''}{prompt}\n{self.method(item)} · seed {job.seed} · "
                    f"{job.params.get('num_frames', '?')} frames {job.params.get('width', '?')}×"
                    f"{job.params.get('height', '?')}\n{item.output.video_path}")
        if role == Decoration and column == 0:
            frames = self._frames(item)
            return frames[0] if frames else None
        return None


class OutputFilterProxy(QSortFilterProxyModel):
    """Batch, prompt and method filters (None: any) plus words typed in the search field."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.batch: str | None = None
        self.prompt: str | None = None
        self.method: str | None = None
        self.starred_only = False
        self._words: list[str] = []

    def set_filters(self, batch: str | None = None, prompt: str | None = None, method: str | None = None) -> None:
        self.batch, self.prompt, self.method = batch, prompt, method
        self.invalidateFilter()

    def set_starred_only(self, on: bool) -> None:
        self.starred_only = bool(on)
        self.invalidateFilter()

    def set_filter_text(self, text: str) -> None:
        self._words = text.lower().split()
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        m: OutputListModel = self.sourceModel()  # type: ignore[assignment]
        item: GalleryItem = m.record(source_row)
        job = item.job
        if self.starred_only and not item.starred:
            return False
        if self.batch is not None and (job is None or job.batch_id != self.batch):
            return False
        if self.prompt is not None and (job is None or job.prompt != self.prompt):
            return False
        if self.method is not None and m.method(item) != self.method:
            return False
        if self._words:
            hay = " ".join([job.prompt or "", job.spec_id, str(job.seed), job.id] if job else []).lower()
            hay += " " + m.method(item).lower()
            return all(w in hay for w in self._words)
        return True
