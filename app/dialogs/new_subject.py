"""Name a new subject, check its token and give each reference image an optional mask."""
from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app import look

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: the file dialogs' filter for images
IMAGE_FILTER = "Images (" + " ".join("*" + s for s in IMAGE_SUFFIXES) + ");;All files (*)"
_MASK_RE = re.compile(r"^(?P<stem>.+?)[._-]mask$", re.IGNORECASE)


def pair_masks(files: list[Path]) -> tuple[list[Path], list[Path | None]]:
    """Split dropped files into images and their masks: ``x_mask.png`` (or ``x-mask``, ``x.mask``) is ``x.png``'s."""
    images, masks = [], {}
    for f in files:
        m = _MASK_RE.match(f.stem)
        if m:
            masks[m.group("stem").lower()] = f
        else:
            images.append(f)
    return images, [masks.get(i.stem.lower()) for i in images]


def suggest_name(files: list[Path]) -> str:
    """A subject name from the files: their common folder name, else the first file's stem."""
    if not files:
        return ""
    parent = files[0].parent.name
    if len(files) > 1 and all(f.parent == files[0].parent for f in files) and parent and not parent.startswith("tmp"):
        return parent
    return re.sub(r"[_\-]*\d+$", "", files[0].stem) or files[0].stem


class NewSubjectDialog(QDialog):
    """Stays open until the subject is stored: a refused import (a name taken, bad images) shows its error here and
    keeps the form; bad images are marked and can be left out ("Add the N good images")."""

    #: name, images, token ("" = automatic), masks (None per image without one)
    subject_requested = Signal(str, object, str, object)

    def __init__(self, files: list[Path], taken: set[str] = frozenset(), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New subject")
        self.setObjectName("newSubjectDialog")
        images, masks = pair_masks([Path(f) for f in files])
        self.images, self.masks = images, masks
        #: refused file (as given) → why, from the last attempt
        self.problems: dict[str, str] = {}
        base = suggest_name(images) or "subject"
        name, n = base, 2
        while name in taken:
            name, n = f"{base} {n}", n + 1
        self.name = QLineEdit(name, self)
        self.token = QLineEdit(self)
        self.token.setPlaceholderText("automatic: <name>")
        self.token.setToolTip("Write this token in a prompt to use the subject, e.g. 'a photo of <rex> surfing'.")
        self.table = QTableWidget(0, 2, self)
        self.table.setObjectName("subjectFiles")
        self.table.setHorizontalHeaderLabels(["Image", "Mask"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 220)
        set_mask = QPushButton("Set mask…", self)
        set_mask.clicked.connect(self._on_set_mask_clicked)
        clear_mask = QPushButton("Clear mask", self)
        clear_mask.clicked.connect(self._on_clear_mask_clicked)
        self.error = QLabel(self)
        self.error.setObjectName("subjectError")
        self.error.setWordWrap(True)
        look.error(self.error)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.keep_good_button = QPushButton(self)
        self.keep_good_button.setObjectName("keepGoodImages")
        self.keep_good_button.clicked.connect(self._on_keep_good_clicked)
        self.keep_good_button.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.add_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add subject")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Token", self.token)
        row = QHBoxLayout()
        row.addWidget(set_mask)
        row.addWidget(clear_mask)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(QLabel("Reference images (3–5 photos from different angles work best). A mask marks the "
                             "subject in white; name it like the image plus _mask to pair it automatically.", self))
        lay.itemAt(lay.count() - 1).widget().setWordWrap(True)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        lay.addWidget(self.error)
        lay.addWidget(self.keep_good_button)
        lay.addWidget(buttons)
        self.resize(560, 420)
        self._fill()

    def _fill(self) -> None:
        self.table.setRowCount(len(self.images))
        for r, (img, mask) in enumerate(zip(self.images, self.masks)):
            cells = (QTableWidgetItem(img.name), QTableWidgetItem(mask.name if mask else "—"))
            for column, (cell, path) in enumerate(zip(cells, (img, mask))):
                why = self.problems.get(str(path)) if path is not None else None
                if why:
                    cell.setForeground(look.tone_color("error"))
                    cell.setText("⚠ " + cell.text())
                cell.setToolTip(why or str(path or ""))
                self.table.setItem(r, column, cell)

    def _on_set_mask_clicked(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Mask for " + self.images[row].name, str(self.images[row].parent),
                                              IMAGE_FILTER)
        if path:
            self.masks[row] = Path(path)
            self._fill()

    def _on_clear_mask_clicked(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.masks[row] = None
            self._fill()

    def accept(self) -> None:
        """Ask for the subject; the dialog waits for :meth:`subject_added` or :meth:`subject_failed`."""
        if not self.name.text().strip() or not self.images:
            self.name.setFocus()
            return
        self._set_busy(True)
        self.subject_requested.emit(self.name.text().strip(), list(self.images), self.token.text().strip(),
                                    list(self.masks))

    def subject_added(self) -> None:
        self._set_busy(False)
        super().accept()

    def subject_failed(self, message: str, hint: str = "", problems: dict[str, str] | None = None) -> None:
        """Show why the subject was refused; mark the refused files and offer to go on without them."""
        self._set_busy(False)
        self.problems = dict(problems or {})
        self._fill()
        self.error.setText(message + (f"\n{hint}" if hint else ""))
        self.error.show()
        good = [i for i in self.images if str(i) not in self.problems]
        fixable = bool(self.problems) and bool(good)
        self.keep_good_button.setText(f"Add the {len(good)} good image(s) without the refused file(s)")
        self.keep_good_button.setVisible(fixable)
        if not self.problems:
            self.name.setFocus()
            self.name.selectAll()

    def _on_keep_good_clicked(self) -> None:
        """Leave the refused images (and refused masks) out, then add the rest."""
        kept = [(i, None if m is not None and str(m) in self.problems else m)
                for i, m in zip(self.images, self.masks) if str(i) not in self.problems]
        self.images, self.masks = [i for i, _ in kept], [m for _, m in kept]
        self.problems = {}
        self._fill()
        self.keep_good_button.hide()
        self.error.hide()
        self.accept()

    def _set_busy(self, busy: bool) -> None:
        self.add_button.setEnabled(not busy)
        self.add_button.setText("Adding…" if busy else "Add subject")
        self.keep_good_button.setEnabled(not busy)
