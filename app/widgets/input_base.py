"""The base of the job editor's input widgets (:mod:`app.widgets.input_widgets`): what they read from
(:class:`InputSources`), what each must say (:class:`InputWidget`), and combos over the project's records that
refresh in place (:class:`ChoiceInput`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QComboBox, QVBoxLayout, QWidget

from app.imaging import ThumbnailCache
from sdk.inputs import InputField


@dataclass
class InputSources:
    """The project's item models the widgets choose from; any may be None (then that choice is empty)."""

    subjects: Any = None
    motions: Any = None
    outputs: Any = None      # OutputListModel (GalleryItem records)
    jobs: Any = None         # JobTableModel: queued/running jobs whose output a job may wait for
    adapters: Any = None
    conditions: Any = None   # records shaped like ConditionRecord(id, kind, path, extractor, source, num_frames)
    thumbs: ThumbnailCache | None = None

    @classmethod
    def of(cls, loader: Any) -> "InputSources":
        """The models of a :class:`app.loader.ModelLoader` (those it has)."""
        return cls(**{name: getattr(loader, name, None) for name in cls.__dataclass_fields__})


def label_of(field: InputField) -> str:
    return field.name.replace("_", " ").capitalize()


def status_of(record: Any) -> str:
    return getattr(record.status, "value", str(record.status))


class InputWidget(QWidget):
    """Base: ``value()`` (None when empty), ``set_value()``, ``missing()`` (the message when a required field is
    empty) and ``problem()`` (a message when the value given cannot be used, else "")."""

    changed = Signal()

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.field, self.sources = field, sources
        self.setToolTip(field.description)
        self.setObjectName(f"input_{field.name}")

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> bool:
        return False

    def missing(self) -> str:
        return f"{label_of(self.field)}: choose one (this generator needs it)."

    def problem(self) -> str:
        return ""


@dataclass(frozen=True)
class Choice:
    key: Any
    text: str
    tooltip: str = ""
    icon: Any = None


class ChoiceCombo(QComboBox):
    """A combo over choices computed from models; refreshed in place, keeping the chosen key."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(32, 32))
        # long names (an output's prompt) must not widen the editor's narrow dock; the popup shows them whole
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(14)
        self._choices: list[Choice] = []

    def set_choices(self, choices: list[Choice]) -> bool:
        """Show ``choices``; True when the chosen key changed as a result."""
        before = self.current_key()
        if [(c.key, c.text) for c in choices] == [(c.key, c.text) for c in self._choices]:
            for i, c in enumerate(choices):  # thumbnails that loaded (or play) since
                if c.icon is not self._choices[i].icon:
                    self.setItemIcon(i, c.icon if c.icon is not None else QIcon())
            self._choices = choices
            return False
        self.blockSignals(True)
        self.clear()
        for c in choices:
            self.addItem(c.icon if c.icon is not None else QIcon(), c.text)
            self.setItemData(self.count() - 1, c.tooltip, Qt.ItemDataRole.ToolTipRole)
        self._choices = choices
        keys = [c.key for c in choices]
        self.setCurrentIndex(keys.index(before) if before in keys else (0 if choices else -1))
        self.blockSignals(False)
        return self.current_key() != before

    def current_key(self) -> Any:
        i = self.currentIndex()
        return self._choices[i].key if 0 <= i < len(self._choices) else None

    def select_key(self, key: Any) -> bool:
        for i, c in enumerate(self._choices):
            if c.key == key or str(c.key) == str(key):
                self.setCurrentIndex(i)
                return True
        return False

    def keys(self) -> list[Any]:
        return [c.key for c in self._choices]


class ChoiceInput(InputWidget):
    """A field whose value is one of the project's records: ``choices()`` lists them from ``models``."""

    #: the choice meaning "nothing" for optional fields
    NONE = Choice(None, "(none)", "Leave this input out.")

    def __init__(self, field: InputField, sources: InputSources, parent: QWidget | None = None,
                 models: tuple[Any, ...] = ()) -> None:
        super().__init__(field, sources, parent)
        self.combo = ChoiceCombo(self)
        self.combo.setObjectName(f"input_{field.name}_combo")
        self.combo.setToolTip(field.description)
        self.combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo)
        for model in models:
            if model is None:
                continue
            for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.layoutChanged):
                sig.connect(self.refresh)
            model.dataChanged.connect(self._on_model_data_changed)
        self.refresh()

    def choices(self) -> list[Choice]:
        raise NotImplementedError

    def all_choices(self) -> list[Choice]:
        found = self.choices()
        return found if self.field.required else [self.NONE, *found]

    @Slot()
    def refresh(self, *_: Any) -> None:
        if self.combo.set_choices(self.all_choices()):
            self.changed.emit()

    @Slot(QModelIndex, QModelIndex)
    def _on_model_data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Any = ()) -> None:
        if top.column() == 0:  # whole rows (a status, a thumbnail); progress and timers touch later columns only
            self.refresh()

    def value(self) -> Any:
        return self.combo.current_key()

    def set_value(self, value: Any) -> bool:
        return self.combo.select_key(value)


def icon_at(model: Any, row: int) -> Any:
    """The thumbnail a model shows for ``row`` (its column 0 decoration), or None."""
    return model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)
