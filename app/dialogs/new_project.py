"""New project: choose a template (listed with descriptions) and where the project folder goes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from app import look

NameRole = Qt.ItemDataRole.UserRole + 1


def existing_folder(folder: Path) -> Path:
    """``folder`` if it still exists, else its nearest existing parent (a remembered folder may have been deleted
    or unmounted since), else the home folder."""
    for candidate in (Path(folder).expanduser(), *Path(folder).expanduser().parents):
        if candidate.is_dir() and candidate != Path(candidate.anchor):
            return candidate
    return Path.home()


class NewProjectDialog(QDialog):
    #: project folder, template name ("" for an empty project)
    project_requested = Signal(object, str)

    def __init__(self, templates: list[dict[str, Any]], folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.setObjectName("newProjectDialog")
        self.templates = QListWidget(self)
        self.templates.setObjectName("templateList")
        empty = QListWidgetItem("Empty project\nNo subjects, motions or prompts yet.")
        empty.setData(NameRole, None)
        self.templates.addItem(empty)
        for t in templates:
            item = QListWidgetItem(f"{t['title']}\n{t['description']}")
            item.setData(NameRole, t["name"])
            item.setToolTip(str(t.get("path", "")))
            self.templates.addItem(item)
        self.templates.setWordWrap(True)
        self.templates.setCurrentRow(1 if templates else 0)
        self.name = QLineEdit("Untitled", self)
        self.folder = QLineEdit(str(existing_folder(folder)), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._on_browse_clicked)
        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        self.path_label = QLabel(self)
        look.muted(self.path_label)
        self.name.textChanged.connect(self._update_path)
        self.folder.textChanged.connect(self._update_path)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Folder", where)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Start from a template:", self))
        lay.addWidget(self.templates, 1)
        lay.addLayout(form)
        lay.addWidget(self.path_label)
        lay.addWidget(buttons)
        self.resize(520, 400)
        self._update_path()

    def project_path(self) -> Path:
        name = self.name.text().strip() or "Untitled"
        return Path(self.folder.text().strip()).expanduser() / (name if name.endswith(".vgen") else name + ".vgen")

    def template(self) -> str | None:
        item = self.templates.currentItem()
        return item.data(NameRole) if item is not None else None

    def select_template(self, name: str | None) -> None:
        for i in range(self.templates.count()):
            if self.templates.item(i).data(NameRole) == name:
                self.templates.setCurrentRow(i)

    def _update_path(self) -> None:
        self.path_label.setText(f"Creates {self.project_path()}")

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Where to create the project", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def accept(self) -> None:
        if self.project_path().exists():
            red = look.tone("error")
            self.path_label.setText(f"<span style='color:{red}'>{self.project_path()} already exists: "
                                    "choose another name.</span>")
            return
        self.project_requested.emit(self.project_path(), self.template() or "")
        super().accept()
