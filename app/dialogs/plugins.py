"""Plugins and models: the model manager (:mod:`app.dialogs.models`) and the installed plugins with their
generators, trainers, extractors, metrics and load errors."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app import look
from app.dialogs.models import ModelsPanel


class PluginsDialog(QDialog):
    #: the installed weights changed (ids)
    weights_changed = Signal(object)

    def __init__(self, registry: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models and plugins")
        self.setObjectName("pluginsDialog")
        self.registry = registry
        self.models = ModelsPanel(registry, self)
        self.models.weights_changed.connect(self.weights_changed)
        #: the weights list (the model manager's)
        self.weights = self.models.weights

        self.plugins = QTreeWidget(self)
        self.plugins.setObjectName("pluginTree")
        self.plugins.setHeaderLabels(["Plugin / spec", "Id", "Details"])
        self.plugins.setColumnWidth(0, 300)
        self.plugins.setColumnWidth(1, 200)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.models, "Models")
        self.tabs.addTab(self.plugins, "Plugins")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(buttons)
        self.resize(900, 560)
        self._fill_plugins()

    def show_tab(self, name: str) -> None:
        """"Models" or "Plugins"."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == name:
                self.tabs.setCurrentIndex(i)

    def _fill_plugins(self) -> None:
        self.plugins.clear()
        red = QBrush(look.tone_color("error"))
        tables = (("generator", "generators", self.registry.generators), ("trainer", "trainers", self.registry.trainers),
                  ("extractor", "extractors", getattr(self.registry, "conditions", {})),
                  ("metric", "metrics", getattr(self.registry, "metrics", {})))
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
            for label, attr, table in tables:
                for sid in getattr(info, attr, ()):
                    spec = table.get(sid)
                    if spec is None:
                        continue
                    inputs = ", ".join(f.name for f in getattr(spec, "fields", ()))
                    top.addChild(QTreeWidgetItem([f"{label}: {spec.title}", sid,
                                                  spec.method + (f"; inputs: {inputs}" if inputs else "")]))
            for wid in getattr(info, "weights", ()):
                spec = self.registry.weights.get(wid)
                if spec is not None:
                    top.addChild(QTreeWidgetItem([f"weights: {spec.title}", wid, spec.licence]))
            top.setExpanded(True)
        if not self.registry.plugins:
            self.plugins.addTopLevelItem(QTreeWidgetItem(["No plugins installed", "", ""]))

    def done(self, result: int) -> None:
        # a download goes on while the dialog is closed (Tools ▸ Model manager… shows it again); else tidy up
        if self.models.process is None:
            self.models.shutdown()
        super().done(result)
