"""A form built from a generator's params schema (pydantic JSON schema): defaults, ranges,
descriptions as tooltips, basic and advanced groups, invalid values marked before queueing."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QKeyEvent, QRegularExpressionValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

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
        optional = any(alt.get("type") == "null" for alt in prop["anyOf"])
        for alt in prop["anyOf"]:
            if alt.get("type") != "null":
                return {**prop, **alt, "optional": optional}
    return prop


def format_number(value: float | int) -> str:
    """The value as a person writes it: ``0.0001``, ``1e-5``, ``9.0``, ``16`` (15 significant digits, so a
    learning rate is never shown rounded to ``0.000``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = f"{float(value):.15g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    elif "." not in text and text.lstrip("-").isdigit():
        text += ".0"  # a float stays recognisably a float
    return text


_FLOAT_TEXT = QRegularExpression(r"[+-]?(\d+\.?\d*|\.\d*)?([eE][+-]?\d*)?")
_INT_TEXT = QRegularExpression(r"[+-]?\d*")


class NumberEdit(QLineEdit):
    """A number typed as text: scientific notation welcome (``1e-5``), the real value shown, never rounded to a
    spin box's decimals. For an optional field, empty means "the default" (shown as the placeholder). Up/Down
    step like a spin box. Range checks are the params model's (the form marks a value out of range)."""

    def __init__(self, integer: bool, optional: bool, step: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.integer, self.optional, self.step = integer, optional, step
        self.setValidator(QRegularExpressionValidator(_INT_TEXT if integer else _FLOAT_TEXT, self))
        if optional:
            self.setPlaceholderText("default")
            self.setClearButtonEnabled(True)

    def value(self) -> Any:
        """The number; None when empty; the text itself when it is not a number yet (validation names it)."""
        text = self.text().strip()
        if not text:
            return None
        try:
            return int(text) if self.integer else float(text)
        except ValueError:
            return text

    def set_value(self, value: Any) -> None:
        self.setText("" if value is None else format_number(value) if isinstance(value, (int, float)) else str(value))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        delta = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1}.get(Qt.Key(event.key()))
        current = self.value()
        if delta is None or not isinstance(current, (int, float)):
            super().keyPressEvent(event)
            return
        new = current + delta * self.step
        # float steps add up to 0.30000000000000004: keep the digits the step has
        self.set_value(int(new) if self.integer else float(f"{new:.12g}"))


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
        elif kind in ("integer", "number") and (kind == "number" or prop.get("optional")):
            # floats (learning rates: 1e-5) and optional numbers (empty: the default) are typed, not spun
            step = prop.get("multipleOf") or (1 if kind == "integer" else
                                              0.1 if abs(default or 1) >= 0.1 else abs(default) or 0.1)
            w = NumberEdit(kind == "integer", bool(prop.get("optional")), step, self)
            w.set_value(default)
            w.textChanged.connect(self._on_editor_changed)
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
            elif isinstance(w, QSpinBox):
                out[name] = w.value()
            elif isinstance(w, NumberEdit):
                value = w.value()
                if value is None and w.optional:
                    continue  # empty: the model's default (a composite trainer: each step's own)
                out[name] = "" if value is None else value
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

    def field_type(self, name: str) -> str:
        """What kind of value a field holds (``integer``, ``number``, ``string``, ``boolean``, ``enum``): a value
        carries over to another generator's field only when the name and this agree."""
        prop = self._props.get(name, {})
        return "enum" if "enum" in prop else str(prop.get("type", ""))

    def edited_values(self) -> dict[str, Any]:
        """The values that differ from their field's default: what the user changed."""
        values = self.values()
        return {name: values.get(name) for name in self.editors
                if values.get(name) != self._props[name].get("default")}

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
            elif isinstance(w, NumberEdit):
                w.set_value(value)
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
