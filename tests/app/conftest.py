"""GUI tests drive the real main window against a real project on disk and the real worker."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QSettings

# the tests import their shared helpers (guihelpers.py) from this folder (importlib import mode)
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path) -> Iterator[None]:
    """Tests never read or write the user's settings (window layout, recent projects)."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture
def installed_weights(tiny_t2v_weights: Path) -> str:
    """Tiny weights registered as the T2V generator's default weights (in this test's models dir)."""
    from sdk import weights as w
    from sdk.plugins import load_plugins

    default = load_plugins().generators["modelscope_t2v.t2v"].default_weights
    w.import_weights(default, tiny_t2v_weights)
    return default


@pytest.fixture
def window(qtbot: Any) -> Iterator[Any]:
    from app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.plugins_loaded, timeout=30_000):
        win.load_plugins()
    yield win
    win.close()


@pytest.fixture(scope="session")
def tiny_dreamvideo_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny DreamVideo base weights (VGen checkpoint layout), written once per session."""
    from sdk import weights as w
    from sdk.plugins import load_plugins

    spec = load_plugins().weights["dreamvideo.modelscope_v1_5"]
    return w.make_tiny(spec, tmp_path_factory.mktemp("weights") / "dreamvideo-tiny", "vgen")


@pytest.fixture
def installed_dreamvideo_weights(tiny_dreamvideo_weights: Path) -> str:
    """The tiny DreamVideo weights registered under the trainers' default weights id (in this test's models dir)."""
    from sdk import weights as w

    w.import_weights("dreamvideo.modelscope_v1_5", tiny_dreamvideo_weights)
    return "dreamvideo.modelscope_v1_5"
