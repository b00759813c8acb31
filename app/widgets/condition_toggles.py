"""Which conditions take part: for a generator with condition inputs and a ``conditions`` parameter (VideoComposer:
VGen's ``partial_keys``), one toggle per condition input, showing the chosen condition's thumbnail. The toggles
write the ``conditions`` parameter (``depth+sketch``; ``none`` for text only), so what the user sees is what is
queued; typing a grid (``depth,sketch``) into the parameter itself still works, and the toggles then step aside.

A toggle is enabled once a condition is chosen for its input (choosing one checks it); unchecking it keeps the
condition chosen but leaves it out of the job. Generic: any spec whose params have a ``conditions`` string and whose
inputs include :class:`sdk.inputs.ConditionRef` fields gets them; nothing here knows a plugin.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QGridLayout, QGroupBox, QLabel, QLineEdit, QSizePolicy, QToolButton, QVBoxLayout,
                               QWidget)

from app import look

PARAM = "conditions"
NONE = "none"
COLUMNS = 3  # the editor is a narrow dock: "single sketch" must fit


def condition_fields(spec: Any) -> list[Any]:
    """The spec's condition inputs (in declared order) when it has a ``conditions`` parameter, else []."""
    if spec is None or PARAM not in getattr(spec.params, "model_fields", {}):
        return []
    return [f for f in spec.fields if getattr(f, "kind", "") == "condition"]


class ConditionToggles(QGroupBox):
    """The toggles of the job editor's current spec (hidden when it has no condition inputs)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Conditions that take part", parent)
        self.setObjectName("conditionToggles")
        self.buttons: dict[str, QToolButton] = {}
        self.inputs: dict[str, Any] = {}
        self.params: Any = None
        self._writing = False
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        look.muted(self.note)
        lay = QVBoxLayout(self)
        lay.addLayout(self._grid)
        lay.addWidget(self.note)
        self.setVisible(False)

    def set_spec(self, spec: Any, inputs: dict[str, Any], params: Any) -> None:
        """Rebuild for ``spec``: ``inputs`` are the editor's input widgets by name, ``params`` its ParamForm."""
        for b in self.buttons.values():
            self._grid.removeWidget(b)
            b.deleteLater()
        if params is not None and params is not self.params:  # the editor keeps one form: connect it once
            params.changed.connect(self._on_param_text_changed)  # values set by code (a recalled recipe) too
        self.buttons, self.inputs, self.params = {}, {}, params
        fields = condition_fields(spec)
        self.setVisible(bool(fields))
        if not fields:
            return
        for i, fld in enumerate(fields):
            w = inputs.get(fld.name)
            if w is None:
                continue
            b = QToolButton(self)
            b.setObjectName(f"toggle_{fld.name}")
            b.setCheckable(True)
            b.setText(fld.name.replace("_", " "))
            b.setIconSize(QSize(40, 40))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            b.toggled.connect(self._on_button_toggled)
            self._grid.addWidget(b, i // COLUMNS, i % COLUMNS)
            self.buttons[fld.name], self.inputs[fld.name] = b, w
            w.changed.connect(lambda name=fld.name: self._on_input_changed(name))
            combo = getattr(w, "combo", None)
            if combo is not None:  # thumbnails load after the choice: follow the combo's icons
                combo.model().dataChanged.connect(lambda *_, name=fld.name: self._show(name))
        editor = params.editors.get(PARAM) if params is not None else None
        if isinstance(editor, QLineEdit):
            editor.textChanged.connect(self._on_param_text_changed)
        for name in self.buttons:
            self._show(name)
        self._on_param_text_changed()

    # -- state -----------------------------------------------------------------------------------
    def given(self) -> list[str]:
        """The condition inputs that have a condition chosen."""
        return [n for n, w in self.inputs.items() if w.value() is not None]

    def checked(self) -> list[str]:
        return [n for n, b in self.buttons.items() if b.isChecked() and b.isEnabled()]

    def subset(self) -> str:
        """The ``conditions`` value the toggles mean: empty when every chosen condition is checked (the parameter's
        "all given", so a condition chosen later takes part too), the checked ones (``depth+sketch``), or ``none``."""
        checked, given = self.checked(), self.given()
        if checked == given:
            return ""
        return "+".join(checked) or NONE

    def _param_text(self) -> str:
        editor = self.params.editors.get(PARAM) if self.params is not None else None
        return editor.text().strip() if isinstance(editor, QLineEdit) else ""

    def _show(self, name: str) -> None:
        b, w = self.buttons.get(name), self.inputs.get(name)
        if b is None or w is None:
            return
        has = w.value() is not None
        b.setEnabled(has)
        combo = getattr(w, "combo", None)
        b.setIcon(combo.itemIcon(combo.currentIndex()) if combo is not None and has else QIcon())
        b.setToolTip((f"{name}: takes part when checked, left out when not\n"
                      + (combo.currentText() if combo is not None else "")) if has
                     else f"{name}: choose a {name} condition in its input above first")

    # -- syncing: the toggles show the parameter; a click writes it -----------------------------------
    def _on_input_changed(self, name: str) -> None:
        self._show(name)
        self._on_param_text_changed()

    @Slot(bool)
    def _on_button_toggled(self, _on: bool) -> None:
        if self.params is None or PARAM not in self.params.editors or "," in self._param_text():
            return
        self._writing = True
        try:
            self.params.set_values({PARAM: self.subset()})
        finally:
            self._writing = False
        self._on_param_text_changed()

    @Slot()
    def _on_param_text_changed(self, *_: Any) -> None:
        """Check the toggles the parameter names (empty: every chosen condition); a grid (commas) is only
        described."""
        text = self._param_text()
        if "," in text:
            self.note.setText(f"A grid over the subsets {', '.join(t.strip() or 'all' for t in text.split(','))}: "
                              "one job for each (edit it in the Conditions parameter).")
            return
        given = self.given()
        names = given if not text else [] if text.lower() == NONE else [n.strip() for n in text.split("+")]
        lacking = [n for n in names if n not in given]
        self.note.setText(f"{', '.join(lacking)}: in the subset but no condition is chosen for it." if lacking else
                          "Choose a condition in an input above to add it; uncheck it to leave it out of the job."
                          if not given else
                          f"Taking part: {' + '.join(n for n in names if n in given) or 'none (text only)'}.")
        if self._writing:
            return
        for name, b in self.buttons.items():
            b.blockSignals(True)
            b.setChecked(name in names and name in given)
            b.blockSignals(False)
