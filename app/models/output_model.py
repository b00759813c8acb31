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
#: the chain badge: "from JOB" on an output made from another (an upscale), "Upscale → JOB" on its source; "" else
ChainRole = Qt.ItemDataRole.UserRole + 12


@dataclass(frozen=True)
class GalleryItem:
    """An output and the job that made it (both detached sdk records)."""

    output: Any
    job: Any
    #: the job whose output this one was made from (an upscale's source), or None
    source_id: str | None = None
    #: (job id, generator id) of the jobs made from this output (its upscales …), oldest first
    derived: tuple[tuple[str, str], ...] = ()

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
    from sdk.chain import source_of

    listed = project.jobs()
    jobs = {j.id: j for j in listed}
    derived: dict[str, list[tuple[str, str]]] = {}
    for j in listed:
        src = source_of(j)
        if src:
            derived.setdefault(src, []).append((j.id, j.spec_id))
    out = []
    for o in reversed(project.outputs()):
        job = jobs.get(o.job_id)
        out.append(GalleryItem(o, job, source_of(job) if job is not None else None, tuple(derived.get(o.job_id, ()))))
    return out


class OutputListModel(_ThumbModel):
    columns = ("Output", "Prompt", "Seed", "Method", "Batch")

    def __init__(self, thumbs: Any = None, parent: Any = None,
                 method_of: Callable[[str], str] | None = None) -> None:
        super().__init__(thumbs, parent)
        self._method_of = method_of or (lambda spec_id: spec_id.split(".")[0])
        self._action_of: Callable[[str], str] = lambda spec_id: ""

    def set_method_lookup(self, method_of: Callable[[str], str]) -> None:
        self._method_of = method_of

    def set_action_lookup(self, action_of: Callable[[str], str]) -> None:
        """How to name what a generator does to an output (its ``output_action``: "Upscale"), for chain badges."""
        self._action_of = action_of

    def chain_text(self, item: GalleryItem) -> str:
        """The chain badge: "from JOB" for an output made from another, "Upscale → JOB" for a source ("" if none)."""
        if item.source_id:
            return f"from {item.source_id[:8]}"
        if item.derived:
            job_id, spec_id = item.derived[-1]
            label = self._action_of(spec_id) or "Used"
            more = f" +{len(item.derived) - 1}" if len(item.derived) > 1 else ""
            return f"{label} → {job_id[:8]}{more}"
        return ""

    def thumb_source(self, item: GalleryItem) -> tuple[Any, Any]:
        return item.output.thumb_path, None

    def method(self, item: GalleryItem) -> str:
        return self._method_of(item.job.spec_id) if item.job is not None else ""

    def cell(self, item: GalleryItem, row: int, column: int, role: int) -> Any:
        if role == MethodRole:
            return self.method(item)
        if role == StarredRole:
            return item.starred
        if role == ChainRole:
            return self.chain_text(item)
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
                    f"{job.params.get('height', '?')}\n{item.output.video_path}"
                    + (f"\nMade from the output of job {item.source_id}" if item.source_id else "")
                    + "".join(f"\n{self._action_of(spec) or 'Used'} → job {jid} ({spec})"
                              for jid, spec in item.derived))
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
