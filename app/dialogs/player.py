"""Plays an output in a window of its own that leaves the rest of the app usable (not modal).

Frames are decoded off the GUI thread by :func:`load_output` (exact PNG frames when the output has them, else the MP4
through imageio-ffmpeg; the compare window decodes the same way) and painted by :class:`FramePlayer`, which also works
where QtMultimedia is missing and can be grabbed offscreen."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.tasks import TaskRunner
from app.widgets.preview import FramePlayer


def load_output(output_dir: Path) -> tuple[Any, float, dict[str, Any]]:
    """(uint8 ``[F, H, W, 3]`` frames, fps, recipe) of an output folder. Blocking: call it on a worker thread."""
    from sdk.outputs import read_frames, read_output_meta

    meta = read_output_meta(output_dir)
    try:
        fps = float((meta.get("params") or {}).get("fps") or 8)
    except (TypeError, ValueError, AttributeError):
        fps = 8.0
    return read_frames(output_dir), fps, meta


def describe(meta: dict[str, Any], n_frames: int, fps: float) -> str:
    """Two lines about an output: its prompt, then generator, seed, frames and size."""
    p = meta.get("params") if isinstance(meta.get("params"), dict) else {}
    return (f"{meta.get('prompt') or ''}\n{meta.get('spec_id', '')} · seed {meta.get('seed', '?')} · "
            f"{n_frames} frames at {fps:g} fps · {p.get('width', '?')}×{p.get('height', '?')}")


class PlayerDialog(QDialog):
    """One output, looping. Shown with :meth:`show`: several can be open while the main window stays usable."""

    def __init__(self, output_dir: Path, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("playerDialog")
        self.setWindowTitle(title or output_dir.name)
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.player = FramePlayer(self, max_fps=30, placeholder="Decoding…")
        self.player.setMinimumSize(320, 320)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.play = QPushButton("Pause", self)
        self.play.setToolTip("Play or pause (Space)")
        self.play.clicked.connect(self._on_play_clicked)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self._on_play_clicked)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.play)
        row.addStretch(1)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.player, 1)
        lay.addWidget(self.info)
        lay.addLayout(row)
        self.loaded = False
        self._runner = TaskRunner(self)
        self._runner.submit(lambda: load_output(output_dir), self._on_frames_loaded, self._on_frames_failed)
        self.resize(480, 520)

    def _on_frames_loaded(self, result: tuple[Any, float, dict[str, Any]]) -> None:
        frames, fps, meta = result
        self.player.set_frames(frames, fps)
        self.info.setText(describe(meta, len(frames), fps))
        self.loaded = True

    def _on_frames_failed(self, exc: BaseException) -> None:
        self.player.clear(f"Cannot play this output: {getattr(exc, 'user_message', None) or exc}")
        self.loaded = True

    def _on_play_clicked(self) -> None:
        self.player.set_playing(not self.player.playing)
        self.play.setText("Pause" if self.player.playing else "Play")

    def done(self, result: int) -> None:
        self._runner.wait()
        super().done(result)
