"""A form built from a generator's params schema (pydantic JSON schema): defaults, ranges,
descriptions as tooltips, basic and advanced groups, invalid values marked before queueing."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QLineEdit,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

#: shown first; every other field goes under "Advanced"
BASIC = ("num_frames", "height", "width", "num_inference_steps", "guidance_scale", "fps", "strength",
         "max_train_steps", "learning_rate", "train_batch_size")
#: given elsewhere in the job editor (the prompt list carries each prompt's negative prompt)
HANDLED_ELSEWHERE = ("prompt", "negative_prompt")
#: a translucent red over the palette's base: readable in the light and the dark theme (the text keeps its colour)
INVALID_STYLE = "background-color: rgba(229, 57, 53, 0.22); border: 1px solid #e53935;"
INT32_MAX = 2**31 - 1


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _range_text(prop: dict[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in prop:
            parts.append(f"{sign} {prop[key]}")
    if "multipleOf" in prop:
        parts.append(f"multiple of {prop['multipleOf']}")
    return ", ".join(parts)


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    """Optional fields (``anyOf: [X, null]``) are edited as X."""
    if "anyOf" in prop:
        for alt in prop["anyOf"]:
            if alt.get("type") != "null":
                return {**prop, **alt}
    return prop


class ParamForm(QWidget):
    """Editors for every field of a params model except the prompt fields."""

    #: values changed (validity may have changed)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: Any = None
        self.editors: dict[str, QWidget] = {}
        self._props: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._basic = QGroupBox("Parameters", self)
        self._basic_form = QFormLayout(self._basic)
        # a disclosure button, and the advanced fields' box only while expanded (an empty box reads as a bug)
        self.advanced_button = QToolButton(self)
        self.advanced_button.setObjectName("advancedToggle")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setText("Advanced")
        self.advanced_button.toggled.connect(self._on_advanced_toggled)
        self._adv_body = QGroupBox(self)
        self._adv_form = QFormLayout(self._adv_body)
        self._adv_body.setVisible(False)
        # a narrow job editor (1024 px windows): a long label puts its field on the next line, never sideways
        for form in (self._basic_form, self._adv_form):
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._lay.addWidget(self._basic)
        self._lay.addWidget(self.advanced_button)
        self._lay.addWidget(self._adv_body)

    # -- building -----------------------------------------------------------------------------
    def set_params_model(self, model: Any) -> None:
        """Rebuild the form for a pydantic params class (None: empty)."""
        self._model = model
        for form in (self._basic_form, self._adv_form):
            while form.rowCount():
                form.removeRow(0)
        self.editors, self._props, self.errors = {}, {}, {}
        if model is None:
            self.advanced_button.setVisible(False)
            self._adv_body.setVisible(False)
            return
        schema = model.model_json_schema()
        required = set(schema.get("required", []))
        defs = schema.get("$defs", {})
        n_adv = 0
        for name, prop in schema.get("properties", {}).items():
            if name in HANDLED_ELSEWHERE:
                continue
            if "$ref" in prop:
                prop = {**defs.get(prop["$ref"].split("/")[-1], {}), **{k: v for k, v in prop.items() if k != "$ref"}}
            prop = _plain(prop)
            editor = self._editor_for(name, prop)
            self.editors[name] = editor
            self._props[name] = prop
            tip = prop.get("description", "")
            rng = _range_text(prop)
            tip = "\n".join(x for x in (tip, rng and f"Allowed: {rng}", f"Default: {prop.get('default')!r}"
                                        if "default" in prop else "Required") if x)
            editor.setToolTip(tip)
            label = QLabel(_label(name) + ("*" if name in required else ""), self)
            label.setToolTip(tip)
            if name in BASIC:
                self._basic_form.addRow(label, editor)
            else:
                self._adv_form.addRow(label, editor)
                n_adv += 1
        self.advanced_button.setVisible(n_adv > 0)
        self.advanced_button.setText(f"Advanced ({n_adv})")
        self._adv_body.setVisible(n_adv > 0 and self.advanced_button.isChecked())
        self.validate()

    def _editor_for(self, name: str, prop: dict[str, Any]) -> QWidget:
        kind, default = prop.get("type"), prop.get("default")
        if "enum" in prop:
            w = QComboBox(self)
            for v in prop["enum"]:
                w.addItem(str(v), v)
            if default in prop["enum"]:
                w.setCurrentIndex(prop["enum"].index(default))
            w.currentIndexChanged.connect(self._on_editor_changed)
        elif kind == "boolean":
            w = QCheckBox(self)
            w.setChecked(bool(default))
            w.toggled.connect(self._on_editor_changed)
        elif kind == "integer" and prop.get("maximum", 0) <= INT32_MAX:
            w = QSpinBox(self)
            if "minimum" in prop:
                lo = prop["minimum"]
            elif "exclusiveMinimum" in prop:
                lo = prop["exclusiveMinimum"] + 1
            else:
                lo = -INT32_MAX - 1
            w.setRange(max(int(lo), -INT32_MAX - 1), int(prop.get("maximum", INT32_MAX)))
            w.setSingleStep(int(prop.get("multipleOf", 1)))
            w.setValue(int(default) if default is not None else max(0, w.minimum()))
            w.valueChanged.connect(self._on_editor_changed)
        elif kind == "number":
            w = QDoubleSpinBox(self)
            w.setDecimals(6 if (default is not None and 0 < abs(default) < 0.01) else 3)
            lo = prop.get("minimum", prop.get("exclusiveMinimum", -1e9))
            w.setRange(float(lo), float(prop.get("maximum", prop.get("exclusiveMaximum", 1e9))))
            w.setSingleStep(float(prop.get("multipleOf", 0.1 if abs(default or 1) >= 0.1 else abs(default) or 0.1)))
            w.setValue(float(default) if default is not None else max(0.0, w.minimum()))
            w.valueChanged.connect(self._on_editor_changed)
        else:
            w = QLineEdit(self)
            w.setText("" if default is None else (default if isinstance(default, str) else json.dumps(default)))
            w.textChanged.connect(self._on_editor_changed)
        w.setObjectName(f"param_{name}")
        return w

    # -- values ---------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, w in self.editors.items():
            if isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                out[name] = w.value()
            elif isinstance(w, QLineEdit):
                text = w.text()
                if self._props[name].get("type") == "string":
                    out[name] = text
                elif text.strip():
                    try:
                        out[name] = json.loads(text)
                    except ValueError:
                        out[name] = text
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Set the editors named in ``values`` (others keep theirs)."""
        for name, value in values.items():
            w = self.editors.get(name)
            if w is None:
                continue
            w.blockSignals(True)
            if isinstance(w, QComboBox):
                i = w.findData(value)
                w.setCurrentIndex(i if i >= 0 else w.currentIndex())
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QSpinBox):
                w.setValue(int(value))
            elif isinstance(w, QDoubleSpinBox):
                w.setValue(float(value))
            elif isinstance(w, QLineEdit):
                w.setText(value if isinstance(value, str) else json.dumps(value))
            w.blockSignals(False)
        self.validate()
        self.changed.emit()

    def validate(self, extra: dict[str, Any] | None = None) -> dict[str, str]:
        """Check the values against the params model; mark invalid editors; return field → message."""
        self.errors = {}
        if self._model is not None:
            from pydantic import ValidationError

            values = {"prompt": "x", **self.values(), **(extra or {})}
            values = {k: v for k, v in values.items() if k in self._model.model_fields}
            try:
                self._model.model_validate(values)
            except ValidationError as exc:
                for err in exc.errors():
                    field = str(err["loc"][0]) if err["loc"] else ""
                    self.errors.setdefault(field, err["msg"])
        for name, w in self.editors.items():
            msg = self.errors.get(name)
            w.setStyleSheet(INVALID_STYLE if msg else "")
            base = w.toolTip().split("\n⚠")[0]
            w.setToolTip(base + (f"\n⚠ {msg}" if msg else ""))
        return self.errors

    def _on_editor_changed(self, *_: Any) -> None:
        self.validate()
        self.changed.emit()

    def _on_advanced_toggled(self, on: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self._adv_body.setVisible(on)
