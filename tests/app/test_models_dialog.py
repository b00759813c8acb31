"""The model manager (Tools ▸ Model manager…): every weights id with its title, method, licence and installed state;
Fetch in a subprocess (never the GUI process) with the licence shown first, a confirmation for non-commercial
weights, a progress bar, Cancel, and a clear failure offline; Import folder… and Make tiny.

The hub is local: a real HTTP server speaking the part of the Hugging Face API a snapshot download uses
(``HF_ENDPOINT``), a port nobody listens on (offline), or one that accepts and never answers (a stalled network)."""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QProcess, Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from app.dialogs.models import cli_error, is_non_commercial

T2V = "modelscope_t2v.ms_1_7b"  # huggingface, CC-BY-NC-4.0
SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves one repo's files; the big file's second half waits for ``release`` (the test looks at the progress
    bar in between)."""

    def __init__(self, files: dict[str, bytes], hold: str = "") -> None:
        self.files, self.hold, self.release = files, hold, threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, body: bool) -> None:
                name = self.path.split("?")[0].split(f"/resolve/{SHA}/", 1)[-1]
                data = hub.files.get(name)
                if data is None or f"/resolve/{SHA}/" not in self.path:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", SHA)
                self.end_headers()
                if not body:
                    return
                if name == hub.hold:
                    half = len(data) // 2
                    self.wfile.write(data[:half])
                    self.wfile.flush()
                    hub.release.wait(120)
                    self.wfile.write(data[half:])
                else:
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if "/tree/" in self.path:
                    self._json([{"type": "file", "path": n, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                for n, d in hub.files.items()])
                elif self.path.startswith("/api/models/"):
                    self._json({"id": T2V, "sha": SHA, "siblings": [{"rfilename": n} for n in hub.files]})
                else:
                    self._file(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._file(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub answers: a port nobody listens on (the download fails at once, as it does without a network)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")


@pytest.fixture
def stalled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A hub that accepts the connection and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{s.getsockname()[1]}")
    yield
    s.close()


@pytest.fixture
def manager(qtbot: Any, window: Any) -> Iterator[Any]:
    """Tools ▸ Model manager…, opened from its menu action, with its list read."""
    action = next(a for m in window.menuBar().actions() if m.menu() is not None for a in m.menu().actions()
                  if a.text() == "&Model manager…")
    action.trigger()
    dialog = window.plugins_dialog
    panel = dialog.models
    assert dialog.isVisible() and dialog.tabs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.weights.topLevelItemCount() >= len(window.registry.weights), timeout=10_000)
    yield panel
    dialog.close()


def choose(qtbot: Any, panel: Any, weights_id: str) -> None:
    item = panel.row(weights_id)
    rect = panel.weights.visualItemRect(item)
    qtbot.mouseClick(panel.weights.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())
    assert panel.selected_id() == weights_id


def click_fetch_and_accept(qtbot: Any, panel: Any) -> QMessageBox:
    with qtbot.waitSignal(panel.confirmation_shown, timeout=5_000) as shown:
        qtbot.mouseClick(panel.fetch_button, Qt.MouseButton.LeftButton)
    box = shown.args[0]
    next(b for b in box.buttons() if b.text() == "Fetch").click()
    return box


def test_every_weights_id_is_listed_with_its_licence_and_state(qtbot: Any, window: Any, manager: Any) -> None:
    for spec in window.registry.weights.values():
        row = manager.row(spec.id)
        assert row is not None, spec.id
        assert [row.text(c) for c in range(4)] == [spec.title, spec.id, spec.method, spec.licence]
        assert row.text(5) == "not installed"
    choose(qtbot, manager, T2V)
    assert "CC-BY-NC-4.0" in manager.details.text() and "ali-vilab/text-to-video-ms-1.7b" in manager.details.text()
    assert manager.fetch_button.isEnabled() and manager.tiny_button.isEnabled()
    assert is_non_commercial("CC-BY-NC-4.0") and is_non_commercial("research / non-commercial use only")
    assert not is_non_commercial("Apache-2.0") and not is_non_commercial("MIT")


def test_offline_fetch_fails_clearly_and_nothing_is_installed(qtbot: Any, manager: Any, offline: None) -> None:
    choose(qtbot, manager, T2V)
    with qtbot.waitSignal(manager.action_finished, timeout=60_000) as finished:
        box = click_fetch_and_accept(qtbot, manager)
        assert "CC-BY-NC-4.0" in box.text()  # the licence, before anything downloads
        assert isinstance(manager.process, QProcess)  # a subprocess downloads, never the GUI process
        assert manager.cancel_button.isEnabled() and not manager.fetch_button.isEnabled()
    assert finished.args == ["fetch", T2V, "failed"]
    text = manager.status.text()
    assert "Fetch failed:" in text and f"Could not download {T2V} from huggingface" in text
    assert f"vgen models import {T2V}" in text  # the way out
    qtbot.waitUntil(lambda: manager.state_of(T2V) == "not installed", timeout=10_000)
    assert manager.fetch_button.isEnabled() and not manager.cancel_button.isEnabled()
    assert not manager.progress.isVisible()


def test_declining_a_non_commercial_licence_fetches_nothing(qtbot: Any, manager: Any, offline: None) -> None:
    choose(qtbot, manager, T2V)
    with qtbot.waitSignal(manager.confirmation_shown, timeout=5_000) as shown:
        qtbot.mouseClick(manager.fetch_button, Qt.MouseButton.LeftButton)
    box = shown.args[0]
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)  # Enter does not accept it
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: manager.confirm_box is None, timeout=5_000)
    assert manager.process is None and "licence" in manager.status.text()


def test_cancel_stops_a_stalled_download(qtbot: Any, window: Any, manager: Any, stalled: None) -> None:
    choose(qtbot, manager, T2V)
    click_fetch_and_accept(qtbot, manager)
    proc = manager.process
    assert manager.progress.isVisible()
    # the subprocess is in the download (it printed the licence) and hangs on the hub
    qtbot.waitUntil(lambda: f"Licence of {T2V}" in manager.log.toPlainText() and
                    proc.state() == QProcess.ProcessState.Running, timeout=30_000)
    # closing the manager does not stop the download; opening it again shows it, with Cancel
    dialog = window.plugins_dialog
    dialog.close()
    assert proc.state() == QProcess.ProcessState.Running
    assert window.show_plugins_dialog() is dialog and dialog.isVisible() and manager.cancel_button.isEnabled()
    with qtbot.waitSignal(manager.action_finished, timeout=15_000) as finished:
        qtbot.mouseClick(manager.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["fetch", T2V, "cancelled"]
    assert manager.process is None and "Cancelled" in manager.status.text()
    qtbot.waitUntil(lambda: manager.state_of(T2V) == "not installed", timeout=10_000)
    assert manager.fetch_button.isEnabled()


def test_fetch_shows_progress_and_installs(qtbot: Any, window: Any, manager: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    unet = bytes(range(256)) * (3 * 2**20 // 256)  # 3 MB, the second half held back until the bar moved
    hub = FakeHub({"model_index.json": b'{"_class_name": "TextToVideoSDPipeline"}',
                   "unet/diffusion_pytorch_model.safetensors": unet}, hold="unet/diffusion_pytorch_model.safetensors")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        choose(qtbot, manager, T2V)
        with qtbot.waitSignal(manager.action_finished, timeout=60_000) as finished:
            click_fetch_and_accept(qtbot, manager)
            qtbot.waitUntil(lambda: "MB of about 6.9 GB" in manager.progress.text(), timeout=30_000)
            assert manager.progress.isVisible() and manager.progress.maximum() > 0
            hub.release.set()
        assert finished.args == ["fetch", T2V, "ok"]
    finally:
        hub.close()
    qtbot.waitUntil(lambda: manager.state_of(T2V) == "installed (fetched)", timeout=10_000)
    from sdk import weights as w

    entry = w.installed(T2V)
    assert Path(entry["path"], "unet", "diffusion_pytorch_model.safetensors").read_bytes() == unet
    assert entry["licence"] == "CC-BY-NC-4.0"
    qtbot.waitUntil(lambda: window.editor.weights.findText(T2V) >= 0, timeout=5_000)  # the editor offers it


def test_make_tiny_and_import_a_folder(qtbot: Any, window: Any, manager: Any, tiny_t2v_weights: Path) -> None:
    choose(qtbot, manager, "modelscope_t2v.v1_5")
    with qtbot.waitSignal(manager.action_finished, timeout=300_000) as finished:
        qtbot.mouseClick(manager.tiny_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["make-tiny", "modelscope_t2v.v1_5", "ok"], manager.log.toPlainText()
    qtbot.waitUntil(lambda: manager.state_of("modelscope_t2v.v1_5") == "installed (tiny)", timeout=10_000)

    # Import folder…: the folder dialog, then the id, as the user answers them
    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QFileDialog):
            box.setDirectory(str(tiny_t2v_weights.parent))
            box.selectFile(str(tiny_t2v_weights))
            box.accept()
        elif isinstance(box, QInputDialog):
            box.setTextValue("user.my_t2v")
            box.accept()
            return
        QTimer.singleShot(50, answer)

    QTimer.singleShot(0, answer)
    with qtbot.waitSignal(manager.action_finished, timeout=120_000) as finished:
        qtbot.mouseClick(manager.import_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["import", "user.my_t2v", "ok"], manager.log.toPlainText()
    qtbot.waitUntil(lambda: manager.state_of("user.my_t2v") == "installed (imported)", timeout=10_000)


def test_the_clis_error_lines_become_the_message_and_hint() -> None:
    assert cli_error("Licence: x\nerror: Could not download a: offline\nhint: import it\n") == \
        ("Could not download a: offline", "import it")
    assert cli_error("Traceback …\nKeyError: 'x'\n") == ("KeyError: 'x'", "")
