"""The model manager: every weights id the plugins know (title, method, licence, size, installed state) and what is
installed besides, with Fetch, Import folder… and Make tiny.

Every action runs ``python -m sdk.cli models …`` in a subprocess (a :class:`QProcess`: the GUI never downloads,
hashes or imports torch on its own thread) with a progress bar and Cancel. A download's progress is the bytes in
its destination folder against the size the plugin declares. Fetch shows the licence first and asks for a
confirmation when it is non-commercial; offline, it fails with the hub's reason and the way out (import weights
you already have).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from app.tasks import TaskRunner

IdRole = Qt.ItemDataRole.UserRole + 1
#: columns of the weights tree
TITLE, WID, METHOD, LICENCE, SIZE, STATE = range(6)
_NON_COMMERCIAL = re.compile(r"non[- ]?commercial|\bNC\b|-NC-|-NC$", re.IGNORECASE)


def is_non_commercial(licence: str) -> bool:
    """True for licences that forbid commercial use ("research / non-commercial use only", CC-BY-NC-4.0 …)."""
    return bool(_NON_COMMERCIAL.search(licence or ""))


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (0 if it does not exist); what a download wrote so far."""
    total = 0
    if path.is_dir():
        for f in path.rglob("*"):
            try:
                if f.is_file() and not f.is_symlink():
                    total += f.stat().st_size
            except OSError:  # a file renamed while we look: the next poll counts it
                pass
    return total


def cli_error(output: str) -> tuple[str, str]:
    """(message, hint) from ``vgen``'s ``error: …`` / ``hint: …`` lines, else the output's last line."""
    message = hint = ""
    for line in output.splitlines():
        if line.startswith("error: "):
            message = line[len("error: "):].strip()
        elif line.startswith("hint: "):
            hint = line[len("hint: "):].strip()
    if not message:
        lines = [ln for ln in output.strip().splitlines() if ln.strip()]
        message = lines[-1] if lines else "the command failed without a message"
    return message, hint


class ModelsPanel(QWidget):
    """The weights list and its actions. ``registry``: the loaded plugins (their ``weights`` specs)."""

    #: the installed weights changed (their ids)
    weights_changed = Signal(object)
    #: an action ended: (action, weights id, outcome) with outcome "ok" | "failed" | "cancelled"
    action_finished = Signal(str, str, str)
    #: a confirmation box is open (the licence of non-commercial weights)
    confirmation_shown = Signal(object)

    def __init__(self, registry: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.runner = TaskRunner(self)
        self.process: QProcess | None = None
        self.action = ""
        self.action_id = ""
        self._output = ""
        self._cancelled = False
        self._expected_bytes = 0
        self._dest: Path | None = None
        self._installed: dict[str, dict[str, Any]] = {}
        self.confirm_box: QMessageBox | None = None

        self.models_dir = QLabel(self)
        self.models_dir.setWordWrap(True)
        self.models_dir.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weights = QTreeWidget(self)
        self.weights.setObjectName("weightsTree")
        self.weights.setRootIsDecorated(False)
        self.weights.setHeaderLabels(["Weights", "Id", "Method", "Licence", "Size", "State"])
        header = self.weights.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(TITLE, QHeaderView.ResizeMode.Stretch)
        for col, width in ((WID, 170), (METHOD, 110), (LICENCE, 150), (SIZE, 60), (STATE, 120)):
            header.resizeSection(col, width)
        self.weights.currentItemChanged.connect(self._on_weights_current_item_changed)
        self.details = QLabel(self)
        self.details.setObjectName("weightsDetails")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.fetch_button = QPushButton("Fetch", self)
        self.fetch_button.setToolTip("Download the selected weights (shows the licence first)")
        self.fetch_button.clicked.connect(self._on_fetch_clicked)
        self.import_button = QPushButton("Import folder…", self)
        self.import_button.setToolTip("Register a diffusers folder or VGen checkpoint files you already have")
        self.import_button.clicked.connect(self._on_import_clicked)
        self.tiny_button = QPushButton("Make tiny", self)
        self.tiny_button.setToolTip("Write and register tiny random weights for the selected id (they render noise)")
        self.tiny_button.clicked.connect(self._on_tiny_clicked)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("fetchProgress")
        self.progress.setVisible(False)
        self.status = QLabel(self)
        self.status.setObjectName("modelsStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(90)
        self.log.setPlaceholderText("Tiny weights are random (they render noise): they make the whole pipeline run "
                                    "without a download. Real weights: Fetch, or Import folder… if you have them.")
        self._poll = QTimer(self)
        self._poll.setInterval(500)
        self._poll.timeout.connect(self._on_poll_timeout)

        row = QHBoxLayout()
        for b in (self.fetch_button, self.import_button, self.tiny_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.models_dir)
        lay.addWidget(self.weights, 1)
        lay.addWidget(self.details)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.log)
        self.refresh()

    # -- the list -------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read what is installed (in the background) and fill the list."""
        def work() -> tuple[str, list[dict[str, Any]]]:
            from sdk import weights as w

            return str(w.models_dir()), w.list_installed()

        self.runner.submit(work, self._on_weights_loaded, lambda exc: self.log.appendPlainText(str(exc)))

    def _on_weights_loaded(self, result: tuple[str, list[dict[str, Any]]]) -> None:
        models_dir, installed = result
        self.models_dir.setText(f"Models directory: {models_dir}")
        self._installed = {e["id"]: e for e in installed}
        keep = self.selected_id()
        self.weights.clear()
        rest = dict(self._installed)
        for spec in sorted(self.registry.weights.values(), key=lambda s: (s.method, s.title)):
            e = rest.pop(spec.id, None)
            size = f"{spec.size_gb:g} GB" if spec.size_gb else ""
            self._add_row(spec.id, spec.title, spec.method, spec.licence, size, e)
        for e in rest.values():  # imported under a user id, or from a plugin no longer installed
            self._add_row(e["id"], e["id"], "", e.get("licence", ""), "", e)
        if self.weights.topLevelItemCount():
            self.select(keep or self.weights.topLevelItem(0).data(0, IdRole))
        self.weights_changed.emit(sorted(self._installed))

    def _add_row(self, wid: str, title: str, method: str, licence: str, size: str, entry: Any) -> None:
        state = f"installed ({entry['source']})" if entry else "not installed"
        item = QTreeWidgetItem([title, wid, method, licence, size, state])
        item.setData(0, IdRole, wid)
        item.setToolTip(LICENCE, licence)
        item.setToolTip(TITLE, title)
        self.weights.addTopLevelItem(item)

    def row(self, weights_id: str) -> QTreeWidgetItem | None:
        for i in range(self.weights.topLevelItemCount()):
            item = self.weights.topLevelItem(i)
            if item.data(0, IdRole) == weights_id:
                return item
        return None

    def state_of(self, weights_id: str) -> str:
        item = self.row(weights_id)
        return item.text(STATE) if item is not None else ""

    def select(self, weights_id: str) -> None:
        item = self.row(weights_id)
        if item is not None:
            self.weights.setCurrentItem(item)

    def selected_id(self) -> str | None:
        item = self.weights.currentItem()
        return item.data(0, IdRole) if item is not None else None

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_weights_current_item_changed(self, current: QTreeWidgetItem | None, previous: Any) -> None:
        wid = current.data(0, IdRole) if current is not None else None
        spec = self.registry.weights.get(wid or "")
        entry = self._installed.get(wid or "")
        parts = []
        if spec is not None:
            where = f"{spec.source}: {spec.repo_id}" if spec.source != "none" and spec.repo_id else "no download source"
            parts.append(f"<b>{spec.title}</b> ({spec.id}) — {where}"
                         + (f", about {spec.size_gb:g} GB" if spec.size_gb else ""))
            parts.append(f"Licence: {spec.licence or 'not stated'}")
            if spec.description:
                parts.append(spec.description)
        if entry is not None:
            parts.append(f"Installed ({entry['source']}, {entry.get('format', '')}) at {entry['path']}")
        self.details.setText("<br>".join(parts))
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.process is not None
        spec = self.registry.weights.get(self.selected_id() or "")
        self.fetch_button.setEnabled(not busy and spec is not None and spec.source != "none" and bool(spec.repo_id))
        self.tiny_button.setEnabled(not busy and spec is not None and bool(spec.tiny))
        self.import_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    # -- actions ------------------------------------------------------------------------------------------------------
    @Slot()
    def _on_fetch_clicked(self) -> None:
        wid = self.selected_id()
        if wid:
            self.fetch(wid)

    def fetch(self, weights_id: str) -> None:
        """Show the licence; non-commercial weights need a confirmation; then download in a subprocess."""
        spec = self.registry.weights_spec(weights_id)
        if not is_non_commercial(spec.licence):
            self._start_fetch(spec)
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Licence", f"{spec.title} ({spec.id}) is licensed "
                          f"<b>{spec.licence}</b>.", QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("licenceConfirm")
        box.setInformativeText(f"Fetch about {spec.size_gb:g} GB from {spec.source} ({spec.repo_id}) and use "
                               "these weights for research or other non-commercial purposes only?")
        fetch = box.addButton("Fetch", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(*_: Any) -> None:
            self.confirm_box = None
            if box.clickedButton() is fetch:
                self._start_fetch(spec)
            else:
                self.status.setText(f"Not fetched: {spec.id} needs the licence accepted.")

        box.finished.connect(answered)
        self.confirm_box = box
        box.open()
        self.confirmation_shown.emit(box)

    def _start_fetch(self, spec: Any) -> None:
        from sdk import weights as w

        self.log.appendPlainText(f"Fetching {spec.id} from {spec.source} ({spec.repo_id}); licence: "
                                 f"{spec.licence or 'not stated'}")
        self._run("fetch", spec.id, ["fetch", spec.id], w.models_dir() / spec.id, int(spec.size_gb * 2**30))

    @Slot()
    def _on_tiny_clicked(self) -> None:
        wid = self.selected_id()
        if wid:
            self.make_tiny(wid)

    def make_tiny(self, weights_id: str, dest: Path | None = None) -> None:
        """``vgen models make-tiny ID DIR --register`` (it needs torch: a subprocess)."""
        from sdk import weights as w

        spec = self.registry.weights_spec(weights_id)
        dest = dest or (w.models_dir() / f"{weights_id}-tiny")
        self.log.appendPlainText(f"Making tiny {weights_id} weights in {dest}…")
        self._run("make-tiny", weights_id, ["make-tiny", weights_id, str(dest), "--format",
                                            spec.formats[0] if spec.formats else "diffusers", "--register"])

    @Slot()
    def _on_import_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Weights folder (diffusers layout or VGen checkpoints)")
        if not folder:
            return
        wid, ok = QInputDialog.getText(self, "Import weights", "Register as id (a known id, or user.NAME):",
                                       text=self.selected_id() or "")
        if ok and wid.strip():
            self.import_folder(wid.strip(), Path(folder))

    def import_folder(self, weights_id: str, folder: Path) -> None:
        """``vgen models import ID FOLDER``: checks the files and hashes them (large weights take a while)."""
        self.log.appendPlainText(f"Importing {folder} as {weights_id}…")
        self._run("import", weights_id, ["import", weights_id, str(folder)])

    # -- the subprocess ---------------------------------------------------------------------------------------------
    def _run(self, action: str, weights_id: str, args: list[str], dest: Path | None = None,
             expected_bytes: int = 0) -> None:
        if self.process is not None:
            self.status.setText("Another action is running: wait for it or cancel it.")
            return
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(self._on_process_ready_read)
        proc.finished.connect(self._on_process_finished)
        proc.errorOccurred.connect(self._on_process_error_occurred)
        self.process, self.action, self.action_id = proc, action, weights_id
        self._output, self._cancelled = "", False
        self._dest, self._expected_bytes = dest, expected_bytes
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)  # busy until bytes arrive
        self.progress.setFormat("%p%")
        self.status.setText(f"{action.capitalize()} {weights_id}…")
        self._update_buttons()
        if dest is not None:
            self._poll.start()
        proc.start(sys.executable, ["-m", "sdk.cli", "models", *args])

    @Slot()
    def _on_process_ready_read(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardOutput().data()).decode(errors="replace")
        self._output += text
        # download bars redraw with carriage returns: log whole lines only
        for line in text.replace("\r", "\n").splitlines():
            if line.strip() and "%|" not in line:
                self.log.appendPlainText(line.rstrip())

    @Slot()
    def _on_poll_timeout(self) -> None:
        dest = self._dest
        if dest is None:
            return
        self.runner.submit(lambda: folder_bytes(dest), self._on_bytes_counted)

    def _on_bytes_counted(self, n: int) -> None:
        if self.process is None or n <= 0:
            return
        done = f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"
        if self._expected_bytes > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(999, int(1000 * n / self._expected_bytes)))
            self.progress.setFormat(f"{done} of about {self._expected_bytes / 2**30:.1f} GB (%p%)")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(done)

    def cancel(self) -> None:
        """Stop the running action (terminate, then kill after 3 s); nothing is registered."""
        proc = self.process
        if proc is None:
            return
        self._cancelled = True
        self.status.setText(f"Cancelling {self.action} {self.action_id}…")
        if proc.state() == QProcess.ProcessState.Starting:
            proc.waitForStarted(3000)
        proc.terminate()
        QTimer.singleShot(3000, lambda: self.process is proc and proc.kill())

    @Slot(QProcess.ProcessError)
    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._output += f"\nerror: cannot start {sys.executable}: {self.process.errorString()}"
            self._finish(-1)

    @Slot(int, QProcess.ExitStatus)
    def _on_process_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_process_ready_read()
        self._finish(code if status == QProcess.ExitStatus.NormalExit else -1)

    def _finish(self, code: int) -> None:
        proc, action, wid = self.process, self.action, self.action_id
        if proc is None:
            return
        self.process = None
        self._poll.stop()
        self.progress.setVisible(False)
        if self._cancelled:
            outcome = "cancelled"
            self.status.setText(f"Cancelled: {action} {wid}. Nothing was registered"
                                + ("; a later Fetch resumes what was downloaded." if action == "fetch" else "."))
        elif code == 0:
            outcome = "ok"
            done = {"fetch": "Fetched", "import": "Imported", "make-tiny": "Made tiny weights for"}[action]
            self.status.setText(f"{done} {wid}.")
        else:
            outcome = "failed"
            message, hint = cli_error(self._output)
            what = {"fetch": "Fetch", "import": "Import", "make-tiny": "Make tiny"}[action]
            self.status.setText(f"<b>{what} failed:</b> {message}" + (f"<br><i>{hint}</i>" if hint else ""))
        self.log.appendPlainText(self.status.text().replace("<b>", "").replace("</b>", "").replace("<br><i>", " ")
                                 .replace("</i>", ""))
        proc.deleteLater()
        self._update_buttons()
        self.refresh()
        self.action_finished.emit(action, wid, outcome)

    def shutdown(self) -> None:
        """Closing: stop a running action and wait for background reads."""
        if self.process is not None:
            self._cancelled = True
            self.process.kill()
            self.process.waitForFinished(3000)
        self.runner.wait()
