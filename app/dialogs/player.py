"""Plays an output. Frames are decoded off the GUI thread (exact PNG frames when the output has
them, else the MP4 through imageio-ffmpeg) and painted by :class:`FramePlayer`, which also works
where QtMultimedia is missing and can be grabbed offscreen."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.tasks import TaskRunner
from app.widgets.preview import FramePlayer


def _load(output_dir: Path) -> tuple[Any, float, dict[str, Any]]:
    from sdk.outputs import read_frames

    try:
        meta = json.loads((output_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    fps = float((meta.get("params") or {}).get("fps") or 8)
    return read_frames(output_dir), fps, meta


class PlayerDialog(QDialog):
    def __init__(self, output_dir: Path, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("playerDialog")
        self.setWindowTitle(title or output_dir.name)
        self.player = FramePlayer(self, max_fps=30, placeholder="Decoding…")
        self.player.setMinimumSize(320, 320)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.play = QPushButton("Pause", self)
        self.play.clicked.connect(self._on_play_clicked)
        close = QPushButton("Close", self)
        close.clicked.connect(self.accept)
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
        self._runner.submit(lambda: _load(output_dir), self._on_frames_loaded, self._on_frames_failed)
        self.resize(480, 520)

    def _on_frames_loaded(self, result: tuple[Any, float, dict[str, Any]]) -> None:
        frames, fps, meta = result
        self.player.set_frames(frames, fps)
        p = meta.get("params") or {}
        self.info.setText(f"{meta.get('prompt') or ''}\n{meta.get('spec_id', '')} · seed {meta.get('seed', '?')} · "
                          f"{len(frames)} frames at {fps:g} fps · {p.get('width', '?')}×{p.get('height', '?')}")
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
