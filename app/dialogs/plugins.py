"""Plugins and models: installed plugins with their generators, trainers and load errors;
known and installed weights; Make tiny weights (in a subprocess: it needs torch) and Import weights."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QPlainTextEdit, QPushButton, QTabWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from app.tasks import TaskRunner

IdRole = Qt.ItemDataRole.UserRole + 1


class PluginsDialog(QDialog):
    #: the installed weights changed (ids)
    weights_changed = Signal(object)

    def __init__(self, registry: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins and models")
        self.setObjectName("pluginsDialog")
        self.registry = registry
        self.runner = TaskRunner(self)
        self.process: QProcess | None = None

        self.plugins = QTreeWidget(self)
        self.plugins.setObjectName("pluginTree")
        self.plugins.setHeaderLabels(["Plugin / generator", "Id", "Details"])
        self.plugins.setColumnWidth(0, 320)
        self.plugins.setColumnWidth(1, 200)
        self.weights = QTreeWidget(self)
        self.weights.setObjectName("weightsTree")
        self.weights.setHeaderLabels(["Weights", "State", "Source / path", "Licence"])
        self.weights.setColumnWidth(0, 220)
        self.weights.setColumnWidth(1, 120)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(90)
        self.log.setPlaceholderText("Tiny weights are random (they render noise): they make the whole pipeline run "
                                    "without a download. Real weights: `vgen models fetch ID` or Import weights…")
        self.tiny_button = QPushButton("Make tiny weights", self)
        self.tiny_button.setToolTip("Write and register tiny random weights for the selected weights id")
        self.tiny_button.clicked.connect(self._on_tiny_clicked)
        self.import_button = QPushButton("Import weights…", self)
        self.import_button.setToolTip("Register a diffusers folder or VGen checkpoint files you already have")
        self.import_button.clicked.connect(self._on_import_clicked)
        self.models_dir = QLabel(self)
        self.models_dir.setWordWrap(True)
        wpage = QWidget(self)
        wl = QVBoxLayout(wpage)
        wl.addWidget(self.models_dir)
        wl.addWidget(self.weights, 1)
        row = QHBoxLayout()
        row.addWidget(self.tiny_button)
        row.addWidget(self.import_button)
        row.addStretch(1)
        wl.addLayout(row)
        wl.addWidget(self.log)
        tabs = QTabWidget(self)
        tabs.addTab(self.plugins, "Plugins")
        tabs.addTab(wpage, "Weights")
        self.tabs = tabs
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(tabs, 1)
        lay.addWidget(buttons)
        self.resize(760, 480)
        self._fill_plugins()
        self.refresh_weights()

    # -- plugins ------------------------------------------------------------------------------
    def _fill_plugins(self) -> None:
        self.plugins.clear()
        red = QBrush(QColor("#c62828"))
        for name, info in sorted(self.registry.plugins.items()):
            top = QTreeWidgetItem([f"{name} {info.version}", info.module, "failed to load" if info.error else ""])
            self.plugins.addTopLevelItem(top)
            if info.error:
                for c in range(3):
                    top.setForeground(c, red)
                err = QTreeWidgetItem([info.error.strip().splitlines()[-1], "", info.error.strip()])
                err.setForeground(0, red)
                err.setToolTip(0, info.error)
                top.addChild(err)
            for gid in info.generators:
                spec = self.registry.generators[gid]
                top.addChild(QTreeWidgetItem([f"generator: {spec.title}", gid,
                                              f"{spec.method}; inputs: {', '.join(spec.inputs)}"]))
            for tid in info.trainers:
                spec = self.registry.trainers[tid]
                top.addChild(QTreeWidgetItem([f"trainer: {spec.title}", tid, spec.method]))
            top.setExpanded(True)
        if not self.registry.plugins:
            self.plugins.addTopLevelItem(QTreeWidgetItem(["No plugins installed", "", ""]))

    # -- weights -----------------------------------------------------------------------------
    def refresh_weights(self) -> None:
        def work() -> tuple[str, list[dict[str, Any]]]:
            from sdk import weights as w

            return str(w.models_dir()), w.list_installed()

        self.runner.submit(work, self._on_weights_loaded, lambda exc: self.log.appendPlainText(str(exc)))

    def _on_weights_loaded(self, result: tuple[str, list[dict[str, Any]]]) -> None:
        models_dir, installed = result
        self.models_dir.setText(f"Models directory: {models_dir}")
        by_id = {e["id"]: e for e in installed}
        self.weights.clear()
        for spec in self.registry.weights.values():
            e = by_id.pop(spec.id, None)
            state = f"installed ({e['source']})" if e else "not installed"
            item = QTreeWidgetItem([spec.id, state, e["path"] if e else f"{spec.source}:{spec.repo_id}", spec.licence])
            item.setData(0, IdRole, spec.id)
            item.setToolTip(0, spec.description or spec.title)
            self.weights.addTopLevelItem(item)
        for e in by_id.values():
            item = QTreeWidgetItem([e["id"], f"installed ({e['source']})", e["path"], e.get("licence", "")])
            item.setData(0, IdRole, e["id"])
            self.weights.addTopLevelItem(item)
        if self.weights.topLevelItemCount() and self.weights.currentItem() is None:
            self.weights.setCurrentItem(self.weights.topLevelItem(0))
        self.weights_changed.emit(sorted(e["id"] for e in installed))

    def _selected_id(self) -> str | None:
        item = self.weights.currentItem()
        return item.data(0, IdRole) if item is not None else None

    @Slot()
    def _on_tiny_clicked(self) -> None:
        wid = self._selected_id()
        spec = self.registry.weights.get(wid or "")
        if spec is None or not spec.tiny:
            self.log.appendPlainText(f"{wid or 'This entry'} has no tiny twin.")
            return
        self.make_tiny(spec.id)

    def make_tiny(self, weights_id: str, dest: Path | None = None) -> QProcess:
        """Run ``vgen models make-tiny ID DIR --register`` in a subprocess (the GUI never imports torch)."""
        from sdk import weights as w

        dest = dest or (w.models_dir() / f"{weights_id}-tiny")
        spec = self.registry.weights[weights_id]
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(
            lambda: self.log.appendPlainText(bytes(proc.readAllStandardOutput().data()).decode(errors="replace").strip()))
        proc.finished.connect(self._on_process_finished)
        self.tiny_button.setEnabled(False)
        self.log.appendPlainText(f"Making tiny {weights_id} weights in {dest}…")
        proc.start(sys.executable, ["-m", "sdk.cli", "models", "make-tiny", weights_id, str(dest),
                                    "--format", spec.formats[0] if spec.formats else "diffusers", "--register"])
        self.process = proc
        return proc

    @Slot(int, QProcess.ExitStatus)
    def _on_process_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self.tiny_button.setEnabled(True)
        self.log.appendPlainText("Done." if code == 0 else f"Failed (exit code {code}).")
        self.refresh_weights()

    @Slot()
    def _on_import_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Weights folder (diffusers layout or VGen checkpoints)")
        if not folder:
            return
        wid, ok = QInputDialog.getText(self, "Import weights", "Register as id:", text=self._selected_id() or "")
        if ok and wid.strip():
            self.import_weights(wid.strip(), Path(folder))

    def import_weights(self, weights_id: str, folder: Path) -> None:
        def work() -> dict[str, Any]:
            from sdk import weights as w

            return w.import_weights(weights_id, folder)

        def done(entry: dict[str, Any]) -> None:
            self.log.appendPlainText(f"Registered {weights_id} ({entry['format']}) at {entry['path']}")
            self.refresh_weights()

        self.runner.submit(work, done, lambda exc: self.log.appendPlainText(
            f"Cannot import: {getattr(exc, 'user_message', None) or exc} {getattr(exc, 'hint', '')}"))

    def done(self, result: int) -> None:
        self.runner.wait()
        super().done(result)
