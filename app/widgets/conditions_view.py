"""Condition videos beside their source: a thumbnail strip of the conditions extracted from a motion (on the Motions
page) and, from the gallery, those of an output; double-click plays the source and its conditions side by side in a
compare window (one clock, one scrubber). "Extract conditions…" on a motion or an output opens
:class:`app.dialogs.extract.ExtractDialog`.

:class:`ConditionsController` wires it into the main window (the Motions page's strip, two gallery actions, the
extract dialog, the model manager), so the window itself only creates it.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, QSortFilterProxyModel, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListView, QPushButton, QToolBar, QVBoxLayout, QWidget

from app import look
from app.dialogs.extract import ExtractDialog, ExtractSource, queue_extractions
from app.models.base import RecordRole

#: the source and up to 7 conditions in one compare window (VideoComposer has 7 condition kinds)
MAX_PANES = 8


def matches(source: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """A condition's ``source`` holds every key of ``wanted`` with the same value."""
    return bool(wanted) and all(str(source.get(k)) == str(v) for k, v in wanted.items())


class ConditionSourceProxy(QSortFilterProxyModel):
    """The conditions of one source (``{"motion": name}``, ``{"output": job id}``), shown by their kind."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.wanted: dict[str, Any] = {}

    def set_wanted(self, wanted: dict[str, Any]) -> None:
        self.wanted = dict(wanted)
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        record = self.sourceModel().index(row, 0, parent).data(RecordRole)
        return record is not None and not record.problem and matches(record.source or {}, self.wanted)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and index.column() == 0:
            record = index.data(RecordRole)
            return record.kind if record is not None else None
        return super().data(index, role)

    def records(self) -> list[Any]:
        return [self.index(r, 0).data(RecordRole) for r in range(self.rowCount())]


class ConditionStrip(QWidget):
    """The conditions of the selected source as thumbnails, with "Extract conditions…"; double-click one to play it
    beside its source."""

    #: a condition record was double-clicked
    compare_requested = Signal(object)
    extract_requested = Signal()

    def __init__(self, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.proxy = ConditionSourceProxy(self)
        self.view = QListView(self)
        self.view.setObjectName("conditionStrip")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(56, 56))
        self.view.setGridSize(QSize(80, 80))
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setMinimumHeight(90)
        self.view.setToolTip("Double-click a condition to play it beside its source")
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        look.muted(self.title)
        self.extract_action = QAction("Extract conditions…", self)
        self.extract_action.setToolTip(f"Extract depth, sketch, motion vectors … from the selected {what} (queued as "
                                       "extract jobs)")
        self.extract_action.triggered.connect(self.extract_requested)
        self.extract_button = QPushButton("Extract conditions…", self)
        self.extract_button.setObjectName("extractConditionsButton")
        self.extract_button.setToolTip(self.extract_action.toolTip())
        self.extract_button.clicked.connect(self.extract_action.trigger)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.extract_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(head)
        lay.addWidget(self.view, 1)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.layoutChanged):
            sig.connect(self._update_title)
        self.set_source(None, "")

    def set_model(self, conditions: Any) -> None:
        """The project's conditions (``app.models.condition_model.ConditionListModel``)."""
        self.proxy.setSourceModel(conditions)
        self.view.setModel(self.proxy)
        self._update_title()

    def set_source(self, wanted: dict[str, Any] | None, label: str) -> None:
        """Show the conditions of ``wanted`` (None: nothing is selected)."""
        if (wanted or {}) == self.proxy.wanted and label == getattr(self, "label", None):
            return  # the motions' thumbnails animate (dataChanged 4×/s): never re-filter for nothing
        self.label = label
        self.proxy.set_wanted(wanted or {})
        self.extract_action.setEnabled(wanted is not None)
        self.extract_button.setEnabled(wanted is not None)
        self._update_title()

    @Slot()
    def _update_title(self, *_: Any) -> None:
        n = self.proxy.rowCount() if self.proxy.sourceModel() is not None else 0
        if not self.proxy.wanted:
            self.title.setText(f"Select a {self.what} to see its conditions.")
        elif n:
            self.title.setText(f"Conditions of <b>{html.escape(self.label)}</b> ({n}): double-click to play beside it.")
        else:
            self.title.setText(f"<b>{html.escape(self.label)}</b> has no conditions yet.")

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        record = index.data(RecordRole)
        if record is not None:
            self.compare_requested.emit(record)


def compare_sources(source: Path, title: str, conditions: list[Any], first: Any = None) -> list[Any]:
    """CompareSources: the source video (or output folder) first, then its conditions (``first`` before the others),
    at most :data:`MAX_PANES` in all."""
    from app.dialogs.compare import CompareSource

    ordered = ([first] if first is not None else []) + [c for c in conditions if first is None or c.id != first.id]
    out = [CompareSource(source, title, "source")]
    for c in ordered[:MAX_PANES - 1]:
        out.append(CompareSource(c.path, f"{c.kind} · {c.extractor} · {c.num_frames} frames", c.kind))
    return out


class ConditionsController:
    """Extract conditions… and the condition players of the main window (Motions page and gallery)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.dialog: ExtractDialog | None = None
        self.compare_window: Any = None
        page = window.sidebar.motions_page
        self.strip: ConditionStrip = page.conditions
        self.strip.set_model(window.loader.conditions)
        self.strip.extract_requested.connect(self.extract_from_motion)
        self.strip.compare_requested.connect(self.compare_motion_condition)
        page.list.addAction(self.strip.extract_action)
        page.list.selectionModel().currentChanged.connect(lambda *_: self._follow_motion())
        page.motions.dataChanged.connect(lambda *_: self._follow_motion())
        page.motions.modelReset.connect(self._follow_motion)
        gallery = window.gallery
        self.gallery_extract = QAction("Extract conditions…", gallery)
        self.gallery_extract.setToolTip("Extract depth, sketch, motion vectors … from the selected output")
        self.gallery_extract.triggered.connect(self.extract_from_output)
        self.gallery_conditions = QAction("Play with conditions", gallery)
        self.gallery_conditions.setToolTip("Play the selected output beside the conditions extracted from it")
        self.gallery_conditions.triggered.connect(lambda: self.compare_output())
        gallery.menu.addSeparator()
        for a in (self.gallery_extract, self.gallery_conditions):
            gallery.menu.addAction(a)
        bar = gallery.findChild(QToolBar, "galleryActions")
        if bar is not None:  # narrow windows move them into the toolbar's » menu with the others
            for a in (self.gallery_extract, self.gallery_conditions):
                bar.addAction(a)
                gallery.buttons[a.text()] = bar.widgetForAction(a)
        gallery.view.selectionModel().selectionChanged.connect(lambda *_: self._update_gallery_actions())
        window.loader.conditions.rowsInserted.connect(lambda *_: self._update_gallery_actions())
        window.loader.conditions.modelReset.connect(self._update_gallery_actions)
        self._update_gallery_actions()

    # -- motions -----------------------------------------------------------------------------------
    def _follow_motion(self, *_: Any) -> None:
        motion = self.window.sidebar.motions_page.selected_motion()
        self.strip.set_source({"motion": motion.name} if motion is not None else None,
                              motion.name if motion is not None else "")

    def extract_from_motion(self) -> ExtractDialog | None:
        motion = self.window.sidebar.motions_page.selected_motion()
        if motion is None:
            return None
        return self.open_dialog(ExtractSource(motion.name, f"motion {motion.name}"))

    def compare_motion_condition(self, condition: Any) -> Any:
        """The motion's video the condition came from, beside every condition of that video."""
        motion = self.window.sidebar.motions_page.selected_motion()
        if motion is None:
            return None
        video_hash = (condition.source or {}).get("video")
        videos = [v for v in motion.videos if v.hash == video_hash] or list(motion.videos[:1])
        if not videos:
            return None
        same = [c for c in self.strip.proxy.records() if (c.source or {}).get("video") == videos[0].hash]
        index = [v.hash for v in motion.videos].index(videos[0].hash)
        title = f"motion {motion.name}" + (f" #{index + 1}" if len(motion.videos) > 1 else "")
        return self._open_compare(compare_sources(videos[0].path, title, same, condition),
                                  f"{motion.name} and its conditions")

    # -- outputs -----------------------------------------------------------------------------------
    def _selected_output(self) -> Any:
        items = self.window.gallery.selected_items()
        return items[0] if len(items) == 1 else None

    def output_conditions(self, item: Any) -> list[Any]:
        return [c for c in self.window.loader.conditions.records()
                if not c.problem and matches(c.source or {}, {"output": item.job_id})]

    def _update_gallery_actions(self) -> None:
        item = self._selected_output()
        # extractors take a generate job's output (an extract job's output is a condition already)
        generated = item is not None and item.job is not None and item.job.kind == "generate"
        self.gallery_extract.setEnabled(generated and self.window.session is not None)
        self.gallery_conditions.setEnabled(item is not None and bool(self.output_conditions(item)))

    def extract_from_output(self) -> ExtractDialog | None:
        item = self._selected_output()
        if item is None:
            return None
        return self.open_dialog(ExtractSource(item.job_id, f"output {item.job_id[:8]} ({item.title[:40]})"))

    def compare_output(self, first: Any = None) -> Any:
        item = self._selected_output()
        conditions = self.output_conditions(item) if item is not None else []
        if not conditions:
            return None
        return self._open_compare(compare_sources(item.output.dir, item.title, conditions, first),
                                  f"{item.title[:40]} and its conditions")

    def _open_compare(self, sources: list[Any], title: str) -> Any:
        from app.dialogs.compare import CompareWindow

        if len(sources) < 2:
            return None
        self.compare_window = CompareWindow(sources, self.window, title=title, max_sources=MAX_PANES)
        self.compare_window.show()
        return self.compare_window

    # -- the dialog --------------------------------------------------------------------------------
    def open_dialog(self, source: ExtractSource) -> ExtractDialog | None:
        """Open Extract conditions… on ``source`` (window-modal); the installed weights are read in the background."""
        window = self.window
        if window.session is None or window.registry is None:
            return None
        dialog = ExtractDialog(window.registry, source, window)
        dialog.queue_requested.connect(lambda requests, start: self._queue(dialog, requests, start))
        dialog.models_requested.connect(lambda wid: self.show_models(dialog, wid))
        self.dialog = dialog
        self._read_installed(dialog)
        dialog.open()
        return dialog

    def _queue(self, dialog: ExtractDialog, requests: list[Any], start: bool) -> None:
        if self.window.session is not None:
            queue_extractions(self.window.session, requests, start, dialog)

    def _read_installed(self, dialog: ExtractDialog) -> None:
        def work() -> list[str]:
            from sdk import weights as w

            return [e["id"] for e in w.list_installed()]

        self.window.tasks.submit(work, dialog.set_installed, lambda exc: dialog.set_installed(set()))

    def show_models(self, dialog: ExtractDialog, weights_id: str = "") -> Any:
        """The model manager (on ``weights_id``); what it installs shows in the dialog at once."""
        manager = self.window.show_plugins_dialog("Models")
        if manager is None:
            return None
        manager.weights_changed.connect(dialog.set_installed)
        models = getattr(manager, "models", None)
        if weights_id and models is not None:
            models.select(weights_id)
            if models.selected_id() != weights_id:  # its list is still loading: select it once it has loaded

                def select_once(_ids: Any) -> None:
                    manager.weights_changed.disconnect(select_once)
                    models.select(weights_id)

                manager.weights_changed.connect(select_once)
        return manager
