"""Helpers for the GUI tests: create a project through the dialog, drop files, tiny parameters."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

#: tiny renders: a few seconds per job on 2 CPU cores
TINY = {"num_frames": 4, "height": 32, "width": 32, "num_inference_steps": 2}


def create_project(qtbot: Any, window: Any, folder: Path, template: str | None = "demo", name: str = "Test") -> Any:
    """File ▸ New project through the dialog; returns the open session."""
    dialog = window.show_new_project_dialog()
    dialog.select_template(template)
    dialog.folder.setText(str(folder))
    dialog.name.setText(name)
    with qtbot.waitSignal(window.project_changed, timeout=30_000):
        dialog.accept()
    session = window.session
    qtbot.waitUntil(lambda: session.state in ("paused", "running", "locked"), timeout=30_000)
    assert window.editor.select_generator("modelscope_t2v.t2v")
    return session


def write_images(folder: Path, n: int = 3, size: int = 48) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"rex_{i}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def drop_files(widget: Any, paths: list[Path]) -> None:
    """Deliver a real drop event with file URLs to ``widget`` (as a file manager would)."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.rect().center())
    event = QDropEvent(pos, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)
    assert event.isAccepted()


def set_tiny_params(window: Any, **overrides: Any) -> None:
    window.editor.params.set_values({**TINY, **overrides})


def job_statuses(window: Any) -> list[str]:
    return [getattr(j.status, "value", j.status) for j in window.loader.jobs.records()]

