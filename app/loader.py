"""Keeps the item models in step with the open project.

Every reload reads the project on the session's background runner and applies the result to
the model as a diff. Reload requests that arrive while one is in flight are merged into one
more read, so a burst of events costs at most two queries.
"""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.imaging import ThumbnailCache
from app.models.catalog_models import AdapterListModel, MotionListModel, PromptListModel, SubjectListModel
from app.models.condition_model import ConditionListModel, load_conditions
from app.models.output_model import OutputListModel, load_gallery
from app.models.queue_model import JobTableModel


class _Reload:
    def __init__(self, loader: "ModelLoader", read: Callable[[Any], Any], apply: Callable[[Any], None]) -> None:
        self.loader, self.read, self.apply = loader, read, apply
        self.in_flight = self.dirty = False

    def request(self) -> None:
        session = self.loader.session
        if session is None:
            return
        if self.in_flight:
            self.dirty = True
            return
        self.in_flight = True
        generation = self.loader.generation

        def done(result: Any) -> None:
            self.in_flight = False
            if generation == self.loader.generation:
                self.apply(result)
                if self.dirty:
                    self.dirty = False
                    self.request()

        def failed(exc: BaseException) -> None:
            self.in_flight = False
            self.dirty = False

        session.tasks.submit(lambda: self.read(session.project), done, failed)


class ModelLoader(QObject):
    jobs_loaded = Signal()
    outputs_loaded = Signal()
    catalog_loaded = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self.generation = 0
        self.thumbs = ThumbnailCache(self)
        self.jobs = JobTableModel(self)
        self.outputs = OutputListModel(self.thumbs, self)
        self.subjects = SubjectListModel(self.thumbs, self)
        self.motions = MotionListModel(self.thumbs, self)
        self.prompts = PromptListModel(self)
        self.adapters = AdapterListModel(self)
        self.conditions = ConditionListModel(self.thumbs, self)
        self._reloads = {
            "jobs": _Reload(self, lambda p: p.jobs(), self._apply_jobs),
            "outputs": _Reload(self, load_gallery, self._apply_outputs),
            "subjects": _Reload(self, lambda p: p.subjects(), self._apply("subjects", self.subjects)),
            "motions": _Reload(self, lambda p: p.motions(), self._apply("motions", self.motions)),
            "prompts": _Reload(self, lambda p: p.prompts(), self._apply("prompts", self.prompts)),
            "adapters": _Reload(self, lambda p: p.adapters(), self._apply("adapters", self.adapters)),
            "conditions": _Reload(self, load_conditions, self._apply("conditions", self.conditions)),
        }
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self.jobs.tick)
        self._tick.start()

    def set_method_lookup(self, method_of: Callable[[str], str]) -> None:
        self.jobs.set_method_lookup(method_of)
        self.outputs.set_method_lookup(method_of)

    def set_session(self, session: Any) -> None:
        if self.session is not None:
            for sig, slot in self._connections():
                sig.disconnect(slot)
        self.generation += 1
        self.session = session
        for model in (self.jobs, self.outputs, self.subjects, self.motions, self.prompts, self.adapters,
                      self.conditions):
            model.set_records([])
        if session is None:
            return
        for sig, slot in self._connections():
            sig.connect(slot)
        session.bridge.progress_updated.connect(self._on_bridge_progress_updated)
        for reload in self._reloads.values():
            reload.request()

    def _connections(self) -> list[tuple[Any, Any]]:
        s = self.session
        return [(s.jobs_changed, self._on_session_jobs_changed), (s.outputs_changed, self._on_session_outputs_changed),
                (s.catalog_changed, self._on_session_catalog_changed)]

    def reload(self, what: str) -> None:
        self._reloads[what].request()

    # -- applying ----------------------------------------------------------------------------------
    def _apply_jobs(self, jobs: list[Any]) -> None:
        self.jobs.set_records(jobs)
        self.jobs_loaded.emit()

    def _apply_outputs(self, items: list[Any]) -> None:
        self.outputs.set_records(items)
        self.outputs_loaded.emit()

    def _apply(self, kind: str, model: Any) -> Callable[[Any], None]:
        def apply(records: list[Any]) -> None:
            model.set_records(records)
            if kind == "subjects":
                self.prompts.tokens = [s.token for s in records]
                if self.prompts.rowCount():
                    self.prompts.dataChanged.emit(self.prompts.index(0, 0),
                                                  self.prompts.index(self.prompts.rowCount() - 1, 0))
                self.adapters.names.update({("subject", s.id): s.name for s in records})
            elif kind == "motions":
                self.adapters.names.update({("motion", m.id): m.name for m in records})
            if kind in ("subjects", "motions") and self.adapters.rowCount():  # their names show in the For column
                last = self.adapters.rowCount() - 1
                self.adapters.dataChanged.emit(self.adapters.index(0, 0), self.adapters.index(last, 0))
            self.catalog_loaded.emit(kind)
        return apply

    # -- session signals -------------------------------------------------------------------------
    @Slot()
    def _on_session_jobs_changed(self) -> None:
        self.reload("jobs")

    @Slot()
    def _on_session_outputs_changed(self) -> None:
        self.reload("outputs")
        self.reload("adapters")
        self.reload("conditions")  # a finished extraction job adds one

    @Slot(str)
    def _on_session_catalog_changed(self, kind: str) -> None:
        self.reload(kind)

    @Slot(str, int, int, float, float)
    def _on_bridge_progress_updated(self, job_id: str, step: int, total: int, elapsed: float, eta: Any) -> None:
        self.jobs.update_progress(job_id, step, total, eta if eta >= 0 else None)
