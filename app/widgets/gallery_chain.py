"""The gallery's actions on outputs offered by generators (``GeneratorSpec.output_action``: "Upscale" …) and the
pair an output makes with its source: one action per label the installed generators offer (read from their specs
through the SDK; no plugin is imported), queueing the generator on each selected output in one click (with its
default params, the output's prompt and seed; the status bar says what was queued); a second one, "Upscale…",
which shows that follow-up in the job editor to change its settings first (a size, a strength) and queue it from
there; and "Compare with source", which plays an output and the one it was made from side by side."""
from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence


class GalleryChain(QObject):
    """Adds the output actions to a :class:`app.widgets.gallery.Gallery`'s menu and toolbar and keeps them enabled
    only for outputs of finished generate jobs.

    ``edit_requested(spec_id, request)``: "Upscale…" asks for the follow-up to be shown in the job editor (a
    :func:`sdk.requeue.requeue_request`-shaped dict; nothing is queued)."""

    edit_requested = Signal(str, object)

    def __init__(self, gallery: Any) -> None:
        super().__init__(gallery)
        self.gallery = gallery
        self.session: Any = None
        #: label ("Upscale") → its action; "Upscale…" → the one that opens the job editor on it
        self.actions: dict[str, QAction] = {}
        self.compare_action = QAction("Compare with source", gallery)
        self.compare_action.setObjectName("compareWithSource")
        self.compare_action.setShortcut(QKeySequence("Ctrl+Shift+K"))
        tip = "Play this output and the one it was made from (or made into) side by side"
        self.compare_action.setToolTip(tip)
        self.compare_action.setStatusTip(tip)
        self.compare_action.triggered.connect(self.compare_with_source)
        self._add(self.compare_action)

    def _add(self, action: QAction) -> None:
        g = self.gallery
        g.menu.addAction(action)
        g.bar.addAction(action)
        action.setProperty("buttonKey", action.text())
        g.buttons[action.text()] = g.bar.widgetForAction(action)

    def _remove(self, action: QAction) -> None:
        g = self.gallery
        g.menu.removeAction(action)
        g.buttons.pop(action.property("buttonKey"), None)
        g.bar.removeAction(action)
        action.deleteLater()

    # -- the project ------------------------------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        """Offer the actions of the session's generators (none without a session)."""
        from sdk.chain import output_actions

        self.session = session
        for a in self.actions.values():
            self._remove(a)
        self.actions = {}
        registry = getattr(session, "registry", None)
        if registry is None:
            self.update_actions()
            return
        self.gallery.model.set_action_lookup(
            lambda spec_id: registry.generators[spec_id].output_action if spec_id in registry.generators else "")
        for label, ids in output_actions(registry).items():
            for spec_id in ids:  # several generators offering one label: one action each, named by its method
                text = label if len(ids) == 1 else f"{label} ({registry.generators[spec_id].method})"
                self._offer(text, label, spec_id)
        self.update_actions()

    def _offer(self, text: str, label: str, spec_id: str) -> None:
        """The one-click action ``text`` (menu and toolbar) and ``text…`` (menu) that run ``spec_id``."""
        a = QAction(text, self.gallery)
        a.setObjectName(f"outputAction{text.replace(' ', '')}")
        tip = (f"{label} the selected outputs: queue {spec_id} on each, with its default settings and the output's "
               "prompt and seed")
        a.setToolTip(tip)
        a.setStatusTip(tip)
        a.setProperty("chainLabel", text)
        a.triggered.connect(partial(self.run_action, label, spec_id))
        self.actions[text] = a
        self._add(a)
        edit = QAction(f"{text}…", self.gallery)
        edit.setObjectName(f"outputAction{text.replace(' ', '')}Settings")
        tip = f"Show {spec_id} on the selected output in the job editor, to change its settings before queueing"
        edit.setToolTip(tip)
        edit.setStatusTip(tip)
        edit.triggered.connect(partial(self.edit_action, label, spec_id))
        self.actions[f"{text}…"] = edit
        self.gallery.menu.addAction(edit)  # menu only: the toolbar keeps the one-click action

    def update_actions(self) -> None:
        items = self.gallery.selected_items()
        usable = bool(items) and self.session is not None and all(_finished_video(i) for i in items)
        for label, a in self.actions.items():
            if label.endswith("…"):
                a.setEnabled(usable and len(items) == 1)
                continue
            a.setEnabled(usable)
            why = "" if usable or not items else " (only outputs of finished generate jobs)"
            a.setText(label + (f" {len(items)} outputs" if len(items) > 1 else ""))
            a.setToolTip(a.statusTip() + why)
        self.compare_action.setEnabled(len(items) == 1 and self.pair(items[0]) is not None)

    # -- actions ----------------------------------------------------------------------------------------------------
    def run_action(self, label: str, spec_id: str | None = None) -> list[str]:
        """Queue ``spec_id`` (default: the one generator offering ``label``) on each selected output;
        returns the job ids of the sources. A refusal comes back through the session's ``error_raised``."""
        from sdk.chain import action_spec, source_field
        from sdk.errors import VGenError

        s, items = self.session, self.gallery.selected_items()
        if s is None or not items or not all(_finished_video(i) for i in items):
            return []
        try:
            spec = action_spec(s.registry, label, spec_id)
        except VGenError as exc:
            s.error_raised.emit(f"Cannot {label.lower()}", exc.user_message, exc.hint)
            return []
        name = source_field(spec).name
        for item in items:
            s.queue(spec.id, inputs={name: item.job_id}, seeds=str(item.job.seed))
        return [i.job_id for i in items]

    def edit_action(self, label: str, spec_id: str | None = None) -> tuple[str, dict[str, Any]] | None:
        """Ask for ``spec_id`` (default: the first generator offering ``label``) on the selected output to be shown
        in the job editor (its default params, the output as its source, the output's prompt and seed); returns
        (spec id, request)."""
        from sdk.chain import action_spec, source_field
        from sdk.errors import VGenError

        s, items = self.session, self.gallery.selected_items()
        if s is None or len(items) != 1 or not _finished_video(items[0]):
            return None
        try:
            spec = action_spec(s.registry, label, spec_id)
        except VGenError as exc:
            s.error_raised.emit(f"Cannot {label.lower()}", exc.user_message, exc.hint)
            return None
        job = items[0].job
        request = {"params": {}, "inputs": {source_field(spec).name: job.id}, "seeds": [job.seed],
                   "prompts": [job.prompt] if spec.takes_text and job.prompt else []}
        self.edit_requested.emit(spec.id, request)
        return spec.id, request

    def pair(self, item: Any) -> tuple[Any, Any] | None:
        """(source, made from it) gallery items for ``item``: its source's output, else its newest follow-up's
        output shown in the gallery; None when there is none."""
        shown = {i.job_id: i for i in self.gallery.model.records()}
        if item.source_id and item.source_id in shown:
            return shown[item.source_id], item
        for job_id, _ in reversed(item.derived):
            if job_id in shown:
                return item, shown[job_id]
        return None

    def compare_with_source(self) -> Any:
        """Open the compare window on the selected output and its source (or what was made from it)."""
        from app.dialogs.compare import CompareSource, CompareWindow

        items = self.gallery.selected_items()
        pair = self.pair(items[0]) if len(items) == 1 else None
        if pair is None:
            return None
        g = self.gallery
        sources = [CompareSource(i.output.dir, f"{i.title} · {g.model.chain_text(i) or i.job_id[:8]}",
                                 g.model.method(i)) for i in pair]
        g.compare_window = CompareWindow(sources, g.window())
        g.compare_window.show()
        return g.compare_window


def _finished_video(item: Any) -> bool:
    """An output a follow-up can take: made by a generate job that succeeded."""
    job = item.job
    return job is not None and job.kind == "generate" and getattr(job.status, "value", job.status) == "SUCCEEDED"
