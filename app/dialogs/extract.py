"""Extract conditions…: queue condition extractors (depth, sketch, motion vectors … registered by plugins) on a motion
or an output, one extract job per checked extractor, as ``vgen conditions extract`` does.

The dialog lists the registry's extractors with the weights each needs and whether they are installed; an extractor
whose weights are missing says so and offers the model manager. The sampling settings the extractors share
(frames, sample fps, start frame, size) are asked once and given to every checked extractor that has them, so the
conditions line up frame for frame, as VideoComposer needs. Window-modal; queueing runs on the session's background
runner and the dialog closes once the jobs are queued (a refusal stays in the dialog).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from app import look

#: the sampling settings extractors share (VGen's frame sampling); each goes to the checked extractors that have it
SHARED = ("num_frames", "sample_fps", "start_frame", "width", "height")
LABELS = {"num_frames": "Frames", "sample_fps": "Sample fps", "start_frame": "Start frame", "width": "Width",
          "height": "Height"}


@dataclass(frozen=True)
class ExtractSource:
    """What to extract from: ``value`` is what the extractor's video input takes (a motion name, ``NAME#N``, or a
    job id); ``label`` names it for the user."""

    value: str
    label: str


def source_field(spec: Any) -> str:
    """The input an extractor reads its source video through: ``video`` if it has one, else its first input."""
    names = [f.name for f in spec.fields]
    return "video" if "video" in names or not names else names[0]


def _prop(spec: Any, name: str) -> dict[str, Any] | None:
    props = spec.params.model_json_schema().get("properties", {})
    prop = props.get(name)
    if prop is None:
        return None
    if "anyOf" in prop:  # an optional number: its constraints sit in the non-null branch
        for branch in prop["anyOf"]:
            if branch.get("type") in ("integer", "number"):
                prop = {**branch, **{k: v for k, v in prop.items() if k != "anyOf"}}
                break
    return prop if prop.get("type") == "integer" else None


class ExtractDialog(QDialog):
    """Checkboxes of extractors, the shared sampling settings, Queue. Emits ``queue_requested(requests, start)``:
    a list of ``(extractor id, plan_jobs keyword arguments)``, one per checked extractor."""

    queue_requested = Signal(object, bool)
    #: a weights id the user wants to fetch or import (the window opens the model manager on it)
    models_requested = Signal(str)

    def __init__(self, registry: Any, source: ExtractSource, parent: QWidget | None = None,
                 installed: set[str] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("extractDialog")
        self.setWindowTitle(f"Extract conditions — {source.label}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.registry, self.source = registry, source
        #: installed weights ids (None: not known yet)
        self.installed: set[str] | None = installed
        self.specs = sorted(registry.conditions.values(), key=lambda s: (s.method, s.title))
        self.checks: dict[str, QCheckBox] = {}
        self.weights_labels: dict[str, QLabel] = {}
        self.problems: list[str] = []

        intro = QLabel(f"Queue one extract job per checked extractor on <b>{html.escape(source.label)}</b>. Each "
                       "makes a condition video, listed under its source; VideoComposer takes them as inputs.", self)
        intro.setWordWrap(True)
        box = QWidget(self)
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        for row, spec in enumerate(self.specs):
            check = QCheckBox(spec.title, self)
            check.setObjectName(f"extract_{spec.id}")
            check.setToolTip(f"{spec.id}\n{spec.description}")
            check.toggled.connect(self._on_changed)
            info = QLabel(self)
            info.setObjectName(f"weights_{spec.id}")
            info.setWordWrap(True)
            info.setTextFormat(Qt.TextFormat.RichText)
            info.linkActivated.connect(self.models_requested)
            self.checks[spec.id], self.weights_labels[spec.id] = check, info
            grid.addWidget(check, row, 0)
            grid.addWidget(info, row, 1)
        grid.setColumnStretch(1, 1)
        if not self.specs:
            grid.addWidget(QLabel("No condition extractor is installed (Tools ▸ Plugins… lists the plugins).", self))
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(box)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(min(44 * max(len(self.specs), 1), 320))

        self.settings: dict[str, QSpinBox] = {}
        settings_box = QGroupBox("Sampling (given to every checked extractor that has it)", self)
        form = QFormLayout(settings_box)
        for name in SHARED:
            owners = [s for s in self.specs if _prop(s, name) is not None]
            if not owners:
                continue
            prop = _prop(owners[0], name) or {}
            default = next((d for s in owners if (d := (_prop(s, name) or {}).get("default")) is not None), None)
            spin = QSpinBox(self)
            spin.setObjectName(f"setting_{name}")
            spin.setRange(int(prop.get("minimum", 0)), int(prop.get("maximum", 100_000)))
            spin.setSingleStep(int(prop.get("multipleOf", 1)))
            spin.setValue(int(default if default is not None else spin.minimum()))
            spin.setToolTip(prop.get("description", ""))
            spin.valueChanged.connect(self._on_changed)
            self.settings[name] = spin
            form.addRow(LABELS.get(name, name), spin)

        self.problem_label = QLabel(self)
        self.problem_label.setObjectName("extractProblems")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.RichText)
        self.problem_label.linkActivated.connect(self.models_requested)
        look.error(self.problem_label)
        self.models_button = QPushButton("Model manager…", self)
        self.models_button.setObjectName("extractModels")
        self.models_button.setToolTip("Fetch, import or make the weights an extractor needs")
        self.models_button.clicked.connect(self._on_models_clicked)
        self.queue_button = QPushButton("Queue", self)
        self.queue_button.setObjectName("extractQueue")
        self.queue_button.clicked.connect(lambda: self.submit(False))
        self.start_button = QPushButton("Queue && start", self)
        self.start_button.setObjectName("extractQueueStart")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.submit(True))
        close = QPushButton("Close", self)
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.models_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        buttons.addWidget(self.queue_button)
        buttons.addWidget(self.start_button)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(scroll, 1)
        lay.addWidget(settings_box)
        lay.addWidget(self.problem_label)
        lay.addLayout(buttons)
        self.resize(640, 640)
        self.set_installed(installed)

    # -- weights -------------------------------------------------------------------------------
    def set_installed(self, ids: Any) -> None:
        """The installed weights ids (from the model manager or a background read); None while unknown."""
        self.installed = set(ids) if ids is not None else None
        for spec in self.specs:
            wid = spec.default_weights
            if not wid:
                text = "no weights needed"
            elif self.installed is None:
                text = f"needs <code>{html.escape(wid)}</code> (checking…)"
            elif wid in self.installed:
                text = f"needs <code>{html.escape(wid)}</code>: installed"
            else:
                text = (f"needs <code>{html.escape(wid)}</code>: <b>not installed</b> — "
                        f"<a href='{html.escape(wid)}'>get it in the model manager</a>")
            self.weights_labels[spec.id].setText(f"<small>{html.escape(spec.id)} · {text}</small>")
        self._on_changed()

    def missing_weights(self, spec: Any) -> str | None:
        """The weights id ``spec`` needs and lacks, or None."""
        wid = spec.default_weights
        return wid if wid and self.installed is not None and wid not in self.installed else None

    @Slot()
    def _on_models_clicked(self) -> None:
        missing = [w for s in self.checked_specs() if (w := self.missing_weights(s))]
        self.models_requested.emit(missing[0] if missing else "")

    # -- the request ---------------------------------------------------------------------------
    def checked_specs(self) -> list[Any]:
        return [s for s in self.specs if self.checks[s.id].isChecked()]

    def params_for(self, spec: Any) -> dict[str, Any]:
        """The shared settings ``spec``'s params have."""
        fields = spec.params.model_fields
        return {name: spin.value() for name, spin in self.settings.items() if name in fields}

    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """``(extractor id, plan_jobs keyword arguments)`` per checked extractor."""
        return [(s.id, {"params": {k: [v] for k, v in self.params_for(s).items()},
                        "inputs": {source_field(s): self.source.value}, "seeds": None})
                for s in self.checked_specs()]

    def _check(self) -> list[str]:
        from pydantic import ValidationError

        checked = self.checked_specs()
        if not checked:
            return ["Check one or more extractors."]
        problems = []
        for spec in checked:
            wid = self.missing_weights(spec)
            if wid:
                problems.append(f"{html.escape(spec.title)} needs the weights <code>{html.escape(wid)}</code>, which "
                                f"are not installed: <a href='{html.escape(wid)}'>fetch or import them in the model "
                                f"manager</a> (or run <code>vgen models fetch {html.escape(wid)}</code>).")
            try:
                spec.params.model_validate(self.params_for(spec))
            except ValidationError as exc:
                for err in exc.errors():
                    field = ".".join(str(x) for x in err["loc"])
                    problems.append(f"{html.escape(spec.title)}: {LABELS.get(field, field)} "
                                    f"{html.escape(str(err['input']))}: {html.escape(err['msg'])}.")
        return problems

    @Slot()
    def _on_changed(self, *_: Any) -> None:
        self.problems = self._check()
        shown = [p for p in self.problems if p != "Check one or more extractors."]
        self.problem_label.setText("<br>".join(shown))
        self.problem_label.setVisible(bool(shown))
        ok = not self.problems
        self.queue_button.setEnabled(ok)
        self.start_button.setEnabled(ok)
        self.models_button.setVisible(any(self.missing_weights(s) for s in self.specs))

    def submit(self, start: bool) -> bool:
        """Ask to queue the checked extractors (``start``: and start the queue); False when the dialog shows a
        problem."""
        self._on_changed()
        if self.problems:
            return False
        self.queue_button.setEnabled(False)
        self.start_button.setEnabled(False)
        self.queue_requested.emit(self.requests(), start)
        return True

    def queued(self, batch: Any = None) -> None:
        """The jobs are queued: close."""
        self.accept()

    def refused(self, message: str, hint: str = "") -> None:
        """Queueing was refused: say why and stay open."""
        self.problem_label.setText(html.escape(message) + (f"<br>{html.escape(hint)}" if hint else ""))
        self.problem_label.setVisible(True)
        self.queue_button.setEnabled(True)
        self.start_button.setEnabled(True)


def queue_extractions(session: Any, requests: list[tuple[str, dict[str, Any]]], start: bool,
                      dialog: ExtractDialog | None = None) -> None:
    """Queue one extract job per request as one batch on the session's background runner (like the job editor's
    Queue): ``jobs_queued`` then; a refusal goes to ``dialog`` (which stays open), or to ``error_raised``."""
    project, registry = session.project, session.registry

    def work() -> Any:
        import dataclasses

        from sdk.queueing import QueuePlan, plan_jobs

        plan = QueuePlan()
        for spec_id, request in requests:
            plan.extend_plan(plan_jobs(project, registry, spec_id, **request))
        batch = project.add_jobs(plan)
        return dataclasses.replace(batch, warnings=tuple(plan.warnings))

    def done(batch: Any) -> None:
        if dialog is not None:
            dialog.queued(batch)
        session.jobs_queued.emit(batch)
        session.jobs_changed.emit()
        if start:
            session.start_queue()

    def failed(exc: BaseException) -> None:
        from app.session import describe_error

        message, details = describe_error(exc)
        if dialog is not None and dialog.isVisible():
            dialog.refused(message, details if getattr(exc, "user_message", None) else "")
        else:
            session.error_raised.emit("Cannot queue the extraction", message, details)

    session.tasks.submit(work, done, failed)
