"""The job editor: pick a generator, its inputs, parameters and seeds; queue prompts × seeds.

The inputs shown are the spec's declared fields (``spec.fields``), each edited by the widget registered for its
type (:mod:`app.widgets.input_widgets`); the prompt list shows only for a spec that takes text.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, Signal, Slot
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QListView, QPushButton, QScrollArea, QStyledItemDelegate,
                               QStyleOptionViewItem, QVBoxLayout, QWidget)

from app import look
from app.widgets.condition_toggles import ConditionToggles
from app.widgets.input_widgets import InputSources, InputWidget, label_of, widget_for
from app.widgets.param_form import INVALID_STYLE, ParamForm

SpecRole = Qt.ItemDataRole.UserRole + 1
DEFAULT_GENERATOR = "modelscope_t2v.t2v"


class _FitWidthDelegate(QStyledItemDelegate):
    """Rows as wide as the view, so a long prompt is elided (its tooltip has all of it) instead of scrolling the
    list sideways."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        hint = super().sizeHint(option, index)
        view = self.parent()
        return QSize(min(hint.width(), max(view.viewport().width(), 40)), hint.height())


class JobEditor(QWidget):
    """Emits ``queue_requested(spec_id, request, start)`` with ``sdk.queueing.plan_jobs`` arguments."""

    queue_requested = Signal(str, object, bool)
    #: text, negative
    prompt_add_requested = Signal(str, str)

    def __init__(self, prompts: Any, subjects: Any = None, motions: Any = None, parent: QWidget | None = None,
                 sources: InputSources | None = None) -> None:
        super().__init__(parent)
        self.registry: Any = None
        self.spec: Any = None
        self.problems: list[str] = []
        self._prompts = prompts
        #: what the input widgets choose from (the project's subjects, motions, outputs, adapters, conditions)
        self.sources = sources or InputSources(subjects=subjects, motions=motions)
        #: the declared input fields' widgets, by field name
        self.inputs: dict[str, InputWidget] = {}
        self._given: dict[tuple[str, type], Any] = {}
        #: run options of a recalled job (precision, memory mode), queued with it until cleared; {} = the defaults
        self.recalled_options: dict[str, Any] = {}
        self._recalled_prompts: list[tuple[str, str]] = []
        #: parameter values the user changed, by (name, value type): they carry over to the next generator
        self._given_params: dict[tuple[str, str], Any] = {}
        #: prompts typed into this editor and not yet in the list: they join the selection when they arrive
        self._typed_prompts: list[str] = []

        self.generator = QComboBox(self)
        self.generator.setObjectName("generatorCombo")
        self.generator_model = QStandardItemModel(self)
        self.generator.setModel(self.generator_model)
        self.generator.currentIndexChanged.connect(self._on_generator_current_index_changed)
        self.description = QLabel("Loading plugins…", self)
        self.description.setWordWrap(True)
        look.muted(self.description)

        # inputs
        self.inputs_box = QGroupBox("Inputs", self)
        form = QFormLayout(self.inputs_box)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # long labels wrap the row, never widen it
        self.prompt_view = QListView(self)
        self.prompt_view.setModel(prompts)
        self.prompt_view.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.prompt_view.setMaximumHeight(120)
        # never sideways: the editor must fit a narrow dock (1024 px windows)
        self.prompt_view.setItemDelegate(_FitWidthDelegate(self.prompt_view))
        self.prompt_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.prompt_view.setResizeMode(QListView.ResizeMode.Adjust)
        self.prompt_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.prompt_view.selectionModel().selectionChanged.connect(self._on_editor_changed)
        prompts.rowsInserted.connect(self._on_prompts_rows_inserted)
        prompts.rowsInserted.connect(self._on_prompts_rows_inserted_recalled)
        self.new_prompt = QLineEdit(self)
        self.new_prompt.setPlaceholderText("Type a new prompt and press Enter…")
        self.new_prompt.returnPressed.connect(self._on_new_prompt_return_pressed)
        self.prompt_widget = QWidget(self)
        pl = QVBoxLayout(self.prompt_widget)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.prompt_view)
        pl.addWidget(self.new_prompt)
        self.weights = QComboBox(self)
        self.weights.setEditable(True)
        self.weights.lineEdit().setPlaceholderText("default weights")
        self.weights.setToolTip("An installed weights id or a folder; empty uses the generator's default weights.")
        self.inputs_form = form
        form.addRow("Prompts", self.prompt_widget)
        form.addRow("Weights", self.weights)

        self.params = ParamForm(self)
        self.condition_toggles = ConditionToggles(self)  # which condition inputs take part (VideoComposer)
        self.params.changed.connect(self._on_editor_changed)
        self.seeds = QLineEdit("1", self)
        self.seeds.setObjectName("seedsEdit")
        self.seeds.setPlaceholderText("1,2,5-8")
        self.seeds.setToolTip("Seeds: numbers and ranges, e.g. 1,2,5-8. Each prompt is rendered once per seed.")
        self.seeds.textChanged.connect(self._on_editor_changed)
        self.grid = QLabel(self)
        self.grid.setObjectName("gridLabel")
        self.options_label = QLabel(self)
        self.options_label.setObjectName("recalledOptions")
        self.options_label.setWordWrap(True)
        self.options_label.setTextFormat(Qt.TextFormat.RichText)
        self.options_label.linkActivated.connect(lambda _link: self._set_recalled_options({}))
        self.options_label.hide()
        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        look.error(self.problem_label)
        self.queue_button = QPushButton("Queue", self)
        self.queue_button.setToolTip("Add these jobs to the queue (Ctrl+Enter)")
        self.queue_button.clicked.connect(lambda: self.submit(False))
        self.start_button = QPushButton("Queue && start", self)
        self.start_button.setDefault(True)
        self.start_button.setToolTip("Add these jobs and start rendering (Ctrl+Shift+Enter)")
        self.start_button.clicked.connect(lambda: self.submit(True))

        body = QWidget(self)
        lay = QVBoxLayout(body)
        top = QFormLayout()
        top.addRow("Generator", self.generator)
        lay.addLayout(top)
        lay.addWidget(self.description)
        lay.addWidget(self.inputs_box)
        lay.addWidget(self.condition_toggles)
        lay.addWidget(self.params)
        seeds_form = QFormLayout()
        seeds_form.addRow("Seeds", self.seeds)
        lay.addLayout(seeds_form)
        lay.addWidget(self.grid)
        lay.addWidget(self.options_label)
        lay.addWidget(self.problem_label)
        lay.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setObjectName("editorScroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        # the body fits a narrow dock (it scrolls up and down only): the combos shrink, eliding their text. With a
        # height-for-width body (wrapped labels) QScrollArea adds a sideways bar as soon as the vertical one takes
        # its few pixels, though the body's minimum width (~240 px) is far below the dock's: never show it
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.generator.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.generator.setMinimumContentsLength(12)
        self.weights.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.weights.setMinimumContentsLength(12)
        self.scroll = scroll
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.queue_button)
        buttons.addWidget(self.start_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll, 1)
        outer.addLayout(buttons)
        self._set_spec(None)

    # -- generators -------------------------------------------------------------------------
    def set_registry(self, registry: Any) -> None:
        """List the registry's generators (grouped by method) and trainers."""
        self.registry = registry
        current = self.generator.currentData(SpecRole)
        self.generator_model.clear()
        groups: dict[str, list[Any]] = {}
        for spec in list(registry.generators.values()) + list(registry.trainers.values()):
            key = spec.method + (" — training" if spec.kind == "train" else "")
            groups.setdefault(key, []).append(spec)
        bold = QFont()
        bold.setBold(True)
        for method in sorted(groups):
            header = QStandardItem(method)
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            header.setFont(bold)
            self.generator_model.appendRow(header)
            for spec in sorted(groups[method], key=lambda s: s.title):
                item = QStandardItem("    " + spec.title)
                item.setData(spec.id, SpecRole)
                item.setToolTip(f"{spec.id}\n{spec.description}")
                self.generator_model.appendRow(item)
        if not groups:
            self.description.setText("No generators are installed. Tools ▸ Plugins… shows why.")
            self._set_spec(None)
            return
        # a new user starts from plain text-to-video, not from whatever sorts first
        if not self.select_generator(current or "") and not self.select_generator(DEFAULT_GENERATOR):
            first = next(i for i in range(self.generator_model.rowCount())
                         if self.generator_model.item(i).data(SpecRole))
            self.generator.setCurrentIndex(first)

    def select_generator(self, spec_id: str) -> bool:
        for i in range(self.generator_model.rowCount()):
            if self.generator_model.item(i).data(SpecRole) == spec_id:
                self.generator.setCurrentIndex(i)
                return True
        return False

    @Slot(int)
    def _on_generator_current_index_changed(self, index: int) -> None:
        spec_id = self.generator.itemData(index, SpecRole)
        if spec_id and self.registry is not None:
            self._set_spec(self.registry.spec(spec_id))

    def _set_spec(self, spec: Any) -> None:
        self.spec = spec
        self._build_inputs(spec)
        takes_text = spec is not None and spec.takes_text
        self.prompt_widget.setVisible(takes_text)
        self.inputs_form.labelForField(self.prompt_widget).setVisible(takes_text)
        if spec is not None:
            self.description.setText(spec.description or spec.title)
            self.weights.lineEdit().setPlaceholderText(f"default: {spec.default_weights}" if spec.default_weights
                                                       else "none needed: or give an id or a folder")
        self._set_params_model(spec.params if spec is not None else None)
        self.condition_toggles.set_spec(spec, self.inputs, self.params)
        self._on_editor_changed()

    def _set_params_model(self, model: Any) -> None:
        """Rebuild the parameters; a value the user changed comes back in a field of the same name and value type
        (guidance 12 stays 12 from T2V to I2V), every other field shows the new generator's default."""
        form = self.params
        edited = form.edited_values()
        for name in form.editors:
            key = (name, form.field_type(name))
            if name in edited:
                self._given_params[key] = edited[name]
            else:
                self._given_params.pop(key, None)  # back at its default: the next generator's default wins
        form.set_params_model(model)
        keep = {name: value for (name, kind), value in self._given_params.items()
                if name in form.editors and form.field_type(name) == kind}
        if keep:
            form.set_values(keep)

    def _build_inputs(self, spec: Any) -> None:
        """One row per declared input field, between the prompts and the weights. A value given to a field comes
        back in a field of the same name and type when another generator is chosen (now or later)."""
        kept = self._given
        kept.update({(name, type(w.field)): w.value() for name, w in self.inputs.items()})
        for w in self.inputs.values():
            self.inputs_form.removeRow(w)
        self.inputs = {}
        for i, fld in enumerate(spec.fields if spec is not None else ()):
            w = widget_for(fld, self.sources, self)
            if kept.get((fld.name, type(fld))) is not None:
                w.set_value(kept[(fld.name, type(fld))])
            w.changed.connect(self._on_editor_changed)
            label = QLabel(label_of(fld) + ("" if fld.required else " (optional)"), self)
            label.setToolTip(fld.description)
            self.inputs_form.insertRow(1 + i, label, w)
            self.inputs[fld.name] = w

    def set_installed_weights(self, ids: list[str]) -> None:
        text = self.weights.currentText()
        self.weights.clear()
        self.weights.addItem("")
        self.weights.addItems(ids)
        self.weights.setEditText(text)

    # -- prompts --------------------------------------------------------------------------------
    @Slot(QModelIndex, int, int)
    def _on_prompts_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        """The selection is the user's: a prompt added elsewhere (the Prompts tab, a script) does not join it; one
        typed here does. A project's prompts, as it opens (the list was empty), start selected."""
        sel = self.prompt_view.selectionModel()
        opening = first == 0 and self._prompts.rowCount() == last + 1
        for row in range(first, last + 1):
            text = self._prompts.record(row).text
            if opening or text in self._typed_prompts:
                sel.select(self._prompts.index(row, 0), QItemSelectionModel.SelectionFlag.Select)
                if text in self._typed_prompts:
                    self._typed_prompts.remove(text)

    @Slot()
    def _on_new_prompt_return_pressed(self) -> None:
        text = self.new_prompt.text().strip()
        if text:
            self._typed_prompts.append(text)
            self.prompt_add_requested.emit(text, "")
            self.new_prompt.clear()

    def selected_prompts(self) -> list[tuple[str, str]]:
        rows = sorted({i.row() for i in self.prompt_view.selectionModel().selectedIndexes()})
        return [(self._prompts.record(r).text, self._prompts.record(r).negative) for r in rows]

    def select_prompt_text(self, text: str) -> None:
        sel = self.prompt_view.selectionModel()
        sel.clearSelection()
        for r in range(self._prompts.rowCount()):
            if self._prompts.record(r).text == text:
                sel.select(self._prompts.index(r, 0), QItemSelectionModel.SelectionFlag.Select)

    # -- the request ----------------------------------------------------------------------------
    def request(self) -> dict[str, Any]:
        """``plan_jobs`` keyword arguments for what the editor shows (inputs as ``{field name: value}``)."""
        req: dict[str, Any] = {"kind": self.spec.kind if self.spec is not None else None,
                               "seeds": self.seeds.text().strip() or "0",
                               "params": {k: [v] for k, v in self.params.values().items()},
                               "inputs": {name: v for name, w in self.inputs.items() if (v := w.value()) is not None}}
        if self.spec is not None and self.spec.takes_text:
            req["prompts"] = self.selected_prompts()
        if self.weights.currentText().strip():
            req["weights"] = self.weights.currentText().strip()
        if self.recalled_options:
            req["options"] = dict(self.recalled_options)
        return req

    # -- recall -----------------------------------------------------------------------------------
    def load_request(self, spec_id: str, request: dict[str, Any]) -> list[str]:
        """Show a request for editing, as "Recall settings" does: its generator, parameters, inputs, prompts, seeds,
        weights and run options (a :func:`sdk.requeue.requeue_request` dict: params as one-value lists). Queues
        nothing. A prompt that is not in the project's list yet is added to it and selected. Returns what could not
        be shown, one sentence each (an unknown generator, an input whose source is not in the project)."""
        if not self.select_generator(spec_id):
            return [f"The generator {spec_id} is not installed, so its settings cannot be shown."]
        params = {k: v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v
                  for k, v in (request.get("params") or {}).items()}
        self.params.set_values(params)
        problems = []
        given = request.get("inputs") or {}
        for name, w in self.inputs.items():
            value = given.get(name)
            if not w.set_value(value) and value is not None and not self._choose_by_text(w, value):
                problems.append(f"{label_of(w.field)}: {value} is not in this project.")
            elif value is None and w.value() is not None:
                # a widget that cannot be left empty (an adapter: latest / none): an input the job did not have
                # means none, not the newest adapter
                w.set_value("none")
        seeds = request.get("seeds")
        self.seeds.setText(",".join(map(str, seeds)) if isinstance(seeds, (list, tuple)) else str(seeds or "0"))
        self.weights.setEditText(str(request.get("weights") or ""))
        self._set_recalled_options(dict(request.get("options") or {}))
        if self.spec is not None and self.spec.takes_text:
            negative = str(params.get("negative_prompt") or "")
            self._recalled_prompts = [(str(p), negative) for p in request.get("prompts") or []]
            self._select_recalled_prompts()
        self._on_editor_changed()
        return problems

    @staticmethod
    def _choose_by_text(w: InputWidget, value: Any) -> bool:
        """A recipe names a subject or motion by name; its combo is keyed by id and shows the name."""
        combo = getattr(w, "combo", None)
        i = combo.findText(str(value)) if combo is not None else -1
        if i >= 0:
            combo.setCurrentIndex(i)
        return i >= 0

    def _set_recalled_options(self, options: dict[str, Any]) -> None:
        self.recalled_options = {k: v for k, v in options.items() if k in ("precision", "memory_mode")}
        text = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.recalled_options.items())
        self.options_label.setText(f"Runs with the recalled job's options: {text} "
                                   "(<a href='defaults'>use the rendering settings</a>)")
        self.options_label.setVisible(bool(self.recalled_options))

    def _select_recalled_prompts(self) -> None:
        """Select exactly the recalled prompts; ask to add those the list lacks (selected when they arrive)."""
        sel = self.prompt_view.selectionModel()
        sel.clearSelection()
        rows = {(r.text, r.negative): i for i, r in enumerate(self._prompts.records())}
        missing = []
        for prompt in self._recalled_prompts:
            if prompt in rows:
                sel.select(self._prompts.index(rows[prompt], 0), QItemSelectionModel.SelectionFlag.Select)
            else:
                missing.append(prompt)
        for text, negative in missing:
            self.prompt_add_requested.emit(text, negative)
        if not missing:
            self._recalled_prompts = []

    @Slot(QModelIndex, int, int)
    def _on_prompts_rows_inserted_recalled(self, parent: QModelIndex, first: int, last: int) -> None:
        if self._recalled_prompts:
            wanted = set(self._recalled_prompts)
            sel = self.prompt_view.selectionModel()
            for row in range(first, last + 1):
                r = self._prompts.record(row)
                select = (r.text, r.negative) in wanted
                sel.select(self._prompts.index(row, 0), QItemSelectionModel.SelectionFlag.Select if select
                           else QItemSelectionModel.SelectionFlag.Deselect)
                self._recalled_prompts = [p for p in self._recalled_prompts if p != (r.text, r.negative)]

    def _prompt_required(self) -> bool:
        fields = self.spec.params.model_fields
        return "prompt" in fields and fields["prompt"].is_required()

    def _check(self) -> tuple[list[str], int]:
        """(problems, number of jobs) — what would stop queueing, before asking the sdk."""
        if self.spec is None:
            return ["Choose a generator."], 0
        problems = [f"{k.replace('_', ' ')}: {v}" for k, v in self.params.validate().items()]
        try:
            from sdk.params import parse_seeds

            n_seeds = len(parse_seeds(self.seeds.text().strip() or "0"))
            self.seeds.setStyleSheet("")
        except Exception as exc:  # InvalidRequest: shown next to the field
            problems.append(getattr(exc, "user_message", str(exc)) + " " + getattr(exc, "hint", ""))
            self.seeds.setStyleSheet(INVALID_STYLE)
            n_seeds = 0
        n_prompts = 1
        if self.spec.takes_text:
            n_prompts = len(self.selected_prompts())
            if not n_prompts and self._prompt_required():
                problems.append("Select one or more prompts (or type a new one).")
            elif not n_prompts:
                n_prompts = 1  # a prompt-optional spec: one job without a prompt
        # only what the generator requires blocks queueing (DreamVideo's appearance image is optional)
        for name, w in self.inputs.items():
            if w.value() is None:
                if w.field.required:
                    problems.append(w.missing())
            elif w.problem():
                problems.append(w.problem())
        return problems, n_prompts * n_seeds * self._steps_per_job()

    def _steps_per_job(self) -> int:
        """Jobs queued per prompt × seed: a composite trainer queues one job per step (DreamVideo subject: 2)."""
        return max(1, len(getattr(self.spec, "expands_to", ()) or ()))

    @Slot()
    def _on_editor_changed(self, *_: Any) -> None:
        problems, n = self._check()
        self.problems = problems
        self.problem_label.setText("\n".join(problems))
        steps = self._steps_per_job() if self.spec is not None else 1
        per_step = f" × {steps} steps" if steps > 1 else ""
        if self.spec is not None and self.spec.takes_text and (self.selected_prompts() or self._prompt_required()):
            n_prompts = len(self.selected_prompts())
            seeds = n // max(n_prompts * steps, 1) if n_prompts else 0
            self.grid.setText(f"{n_prompts} prompt(s) × {seeds} seed(s){per_step} = <b>{n} job(s)</b>")
        elif steps > 1:
            self.grid.setText(f"{n // steps} seed(s){per_step} = <b>{n} job(s)</b>")
        else:
            self.grid.setText(f"<b>{n} job(s)</b>")
        ok = not problems and n > 0
        self.queue_button.setEnabled(ok)
        self.start_button.setEnabled(ok)

    def submit(self, start: bool) -> bool:
        """Queue what the editor shows (``start``: and start the queue). False if it is not valid."""
        self._on_editor_changed()
        if self.problems or self.spec is None:
            return False
        self.queue_requested.emit(self.spec.id, self.request(), start)
        return True
