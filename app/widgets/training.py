"""Train actions on a selected subject or motion (DreamVideo), enabled only where their trainer is installed."""
from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from app import look

#: the trainer each action queues (a composite trainer queues its steps one after the other)
SUBJECT_TRAINER = "dreamvideo.subject"
MOTION_TRAINER = "dreamvideo.motion"


def trainer_availability(registry: Any, trainer_id: str) -> tuple[bool, str]:
    """(installed, why not) for a trainer id of the plugin registry."""
    if registry is None:
        return False, "Plugins are still loading…"
    if trainer_id in registry.trainers:
        return True, ""
    plugin = trainer_id.split(".")[0]
    info = registry.plugins.get(plugin)
    if info is not None and info.error:
        return False, (f"The {plugin} plugin failed to load ({info.error}); Tools ▸ Plugins… "
                       "shows why.")
    return False, f"The {plugin} plugin is not installed: install it and restart VGen Studio to train {trainer_id}."


class TrainAction(QAction):
    """"Train …" on the selected item: enabled when its trainer is installed and something is selected;
    the tooltip says what it queues, or why it cannot."""

    def __init__(self, text: str, trainer_id: str, what: str, explanation: str, parent: QWidget) -> None:
        super().__init__(text, parent)
        self.trainer_id = trainer_id
        self._what = what
        self._explanation = explanation
        self._available, self._reason = False, "Plugins are still loading…"
        self._selected = False
        self.registry: Any = None
        self._update()

    def set_registry(self, registry: Any) -> None:
        self.registry = registry
        self._available, self._reason = trainer_availability(registry, self.trainer_id)
        self._update()

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self._update()

    @property
    def reason(self) -> str:
        """Why the action is disabled ("" when enabled)."""
        if not self._available:
            return self._reason
        return "" if self._selected else f"Select a {self._what} first."

    def _update(self) -> None:
        why = self.reason
        self.setEnabled(not why)
        self.setToolTip(self._explanation if not why else f"{self._explanation}\n\nUnavailable: {why}")
        self.setStatusTip(self.toolTip().split("\n")[0])


def action_button(action: QAction, parent: QWidget) -> QToolButton:
    """A full-width button that mirrors an action (text, enabled state, tooltip)."""
    b = QToolButton(parent)
    b.setDefaultAction(action)
    b.setToolButtonStyle(b.toolButtonStyle().ToolButtonTextOnly)
    b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return b


#: what a training step costs on the tiny test weights on a CPU (issue 11: 3000 + 1000 steps took about 13 min)
TINY_CPU_STEP_S = 0.2


def seconds_per_step(jobs: list[Any], trainer_id: str) -> float | None:
    """Seconds per step of this trainer's newest finished (else running) job in the project, or None."""
    best: tuple[float, float] | None = None
    now = time.time()
    for j in jobs:
        status = getattr(j.status, "value", j.status)
        if j.spec_id != trainer_id or not j.started_at or not j.progress_step:
            continue
        if status == "SUCCEEDED" and j.finished_at:
            took = (j.finished_at - j.started_at) / max(j.progress_total or j.progress_step, 1)
        elif status == "RUNNING":
            took = (now - j.started_at) / j.progress_step
        else:
            continue
        if best is None or j.started_at > best[0]:
            best = (j.started_at, took)
    return best[1] if best else None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TrainSettingsDialog(QDialog):
    """The settings of a (composite) training before it is queued: steps and learning rate of each step, batch
    size and seed, with the trainer's defaults (VGen's) shown and what the steps will take. Accepting emits
    ``settings_accepted(params)``: ``plan_jobs`` params, a step's own values as ``"<step id>.<name>"``.

    With ``caption`` (a motion's training: what happens in its videos) the dialog starts with a caption field,
    prefilled with it; :meth:`caption` reads it back (it may be empty)."""

    settings_accepted = Signal(object)

    def __init__(self, spec: Any, registry: Any, target: str, jobs: list[Any] | None = None,
                 parent: QWidget | None = None, *, caption: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainSettingsDialog")
        self.setWindowTitle(spec.title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.spec = spec
        self.steps = [registry.trainer(t) for t in spec.expands_to] or [spec]
        self._jobs = jobs or []
        self._per_step = {s.id: seconds_per_step(self._jobs, s.id) for s in self.steps}
        #: (step trainer id, param name) → editor
        self.editors: dict[tuple[str, str], Any] = {}
        lay = QVBoxLayout(self)
        intro = QLabel(f"Trains <b>{html.escape(target)}</b> ({html.escape(spec.title)})."
                       + (" Each step has its own steps and learning rate; batch size and seed apply to every step."
                          if getattr(spec, "expands_to", ()) else ""), self)
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.caption_edit: QLineEdit | None = None
        if caption is not None:
            self.caption_edit = QLineEdit(caption, self)
            self.caption_edit.setObjectName("trainCaption")
            self.caption_edit.setPlaceholderText("what happens in the videos, e.g. “a person doing jumping jacks”")
            self.caption_edit.setToolTip("The caption the motion adapter learns with (may be empty).")
            top = QFormLayout()
            top.addRow("Caption", self.caption_edit)
            lay.addLayout(top)
        for step in self.steps:
            box = QGroupBox(step.title, self)
            form = QFormLayout(box)
            for name, label in (("max_train_steps", "Steps"), ("learning_rate", "Learning rate")):
                form.addRow(label, self._editor(step, name))
            lay.addWidget(box)
        shared = QFormLayout()
        first = self.steps[0]
        shared.addRow("Batch size", self._editor(first, "train_batch_size"))
        shared.addRow("Seed", self._editor(first, "seed"))
        lay.addLayout(shared)
        self.estimate = QLabel(self)
        self.estimate.setObjectName("trainEstimate")
        self.estimate.setWordWrap(True)
        look.muted(self.estimate)
        lay.addWidget(self.estimate)
        self.problem = QLabel(self)
        look.error(self.problem)
        self.problem.setWordWrap(True)
        lay.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        self.queue_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.queue_button.setText("Queue training")
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).setText("VGen's defaults")
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self._update()

    def _editor(self, step: Any, name: str) -> QWidget:
        from app.widgets.param_form import INT32_MAX, NumberEdit, format_number

        fld = step.params.model_fields[name]
        default = fld.default
        if isinstance(default, float):
            w: Any = NumberEdit(False, False, default, self)
            w.set_value(default)
            w.textChanged.connect(self._update)
        else:
            w = QSpinBox(self)
            w.setRange(0 if name == "seed" else 1, min(INT32_MAX, 1_000_000 if name == "max_train_steps" else INT32_MAX))
            w.setValue(int(default))
            w.valueChanged.connect(self._update)
        w.setObjectName(f"train_{step.id.rpartition('.')[2]}_{name}")
        w.setToolTip(f"{fld.description or name} Default (VGen): {format_number(default)}.")
        self.editors[(step.id, name)] = w
        box = QWidget(self)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(w, 1)
        row.addWidget(QLabel(f"VGen: {format_number(default)}", box))
        return box

    def caption(self) -> str:
        """The caption typed (stripped; "" without a caption field)."""
        return self.caption_edit.text().strip() if self.caption_edit is not None else ""

    def restore_defaults(self) -> None:
        for (step_id, name), w in self.editors.items():
            default = next(s for s in self.steps if s.id == step_id).params.model_fields[name].default
            w.set_value(default) if hasattr(w, "set_value") else w.setValue(int(default))

    def _value(self, step_id: str, name: str) -> Any:
        w = self.editors[(step_id, name)]
        return w.value()

    def params(self) -> dict[str, Any]:
        """What to queue: each step's steps and rate (``"<step id>.<name>"`` for a composite), batch size, seed."""
        composite = bool(getattr(self.spec, "expands_to", ()))
        out: dict[str, Any] = {}
        for step in self.steps:
            for name in ("max_train_steps", "learning_rate"):
                out[f"{step.id}.{name}" if composite else name] = self._value(step.id, name)
        first = self.steps[0].id
        out["train_batch_size"] = self._value(first, "train_batch_size")
        out["seed"] = self._value(first, "seed")
        return out

    def problems(self) -> list[str]:
        """What the trainers' params models refuse (named by step)."""
        from pydantic import ValidationError

        out = []
        shared = {k: self._value(self.steps[0].id, k) for k in ("train_batch_size", "seed")}
        for step in self.steps:
            values = {**shared, **{k: self._value(step.id, k) for k in ("max_train_steps", "learning_rate")}}
            try:
                step.params.model_validate(values)
            except ValidationError as exc:
                out += [f"{step.title}: {str(e['loc'][0]).replace('_', ' ')}: {e['msg']}" for e in exc.errors()]
        return out

    def _update(self, *_: Any) -> None:
        problems = self.problems()
        self.problem.setText("\n".join(problems))
        self.queue_button.setEnabled(not problems)
        counts = {s.id: self._value(s.id, "max_train_steps") for s in self.steps}
        known = [v for v in self._per_step.values() if v]
        parts, total = [], 0.0
        for s in self.steps:
            per = self._per_step[s.id] or (known[0] if known else None)
            if per is not None and isinstance(counts[s.id], int):
                total += per * counts[s.id]
                parts.append(f"{per:.2f} s")
        steps = " + ".join(str(c) for c in counts.values())
        if known:
            self.estimate.setText(f"Measured in this project: {', '.join(parts)} per step → about "
                                  f"{_duration(total)} for {steps} steps (plus loading the model).")
        else:
            n = sum(c for c in counts.values() if isinstance(c, int))
            self.estimate.setText(
                f"{steps} steps. Time per step depends on the weights and the device: about {TINY_CPU_STEP_S} s on the "
                f"tiny test weights on a CPU (≈ {_duration(n * TINY_CPU_STEP_S)} for these), much longer on real weights. "
                "Once a training has run in this project, this shows its measured time.")

    def accept(self) -> None:
        if self.problems():
            return
        self.settings_accepted.emit(self.params())
        super().accept()
