"""Side-by-side compare of 2-4 outputs, playing in sync: one clock, one scrubber, one play/pause.

A window of its own (not modal): the gallery stays usable while it is open, and several can be open at once.
Each output is decoded on a worker thread with the player's :func:`~app.dialogs.player.load_output`; frames become
QImages there too, so the GUI thread only paints.

Sync: the clock counts ticks at the highest fps among the outputs; at tick ``t`` an output of ``fps_k`` shows frame
``floor(t * fps_k / fps)``, held on its last frame when it is shorter than the longest. Outputs with the same frame
count and fps (a seed or guidance sweep) therefore show the same frame index at every tick.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QColor, QImage, QKeySequence, QPainter, QPaintEvent, QShortcut
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout,
                               QWidget)

from app.tasks import TaskRunner

#: how many outputs one compare window shows
MIN_OUTPUTS, MAX_OUTPUTS = 2, 4
#: recipe keys never listed as a difference (they always differ, or say nothing about the picture)
# "source" (an upscale's link to the output it was made from) is in the pane's title, not a recipe difference
_NOT_COMPARED = ("job_id", "created_at", "timings", "runtime", "app_version", "schema", "weights_hashes", "extra",
                 "scores", "source")


@dataclass
class CompareSource:
    """One output to compare: its folder (or a video file: a motion's video, a condition video), a title and the badge
    its thumbnail shows."""

    dir: Path
    title: str
    badge: str = ""


@dataclass
class _Clip:
    images: list[QImage] = field(default_factory=list)
    fps: float = 8.0
    meta: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _decode(output_dir: Path) -> _Clip:
    """Frames as QImages (a worker thread: QImage, unlike QPixmap, may be made off the GUI thread). A video file
    (not an output folder) plays at its own frame rate and has no recipe."""
    from app.dialogs.player import load_output
    from app.imaging import frame_to_qimage

    if Path(output_dir).is_file():
        frames, fps = _decode_file(Path(output_dir))
        return _Clip([frame_to_qimage(f) for f in frames], fps, {})
    frames, fps, meta = load_output(output_dir)
    return _Clip([frame_to_qimage(f) for f in frames], fps, meta)


def _decode_file(path: Path) -> tuple[list[Any], float]:
    from app.imaging import decode_video_file

    frames, fps = decode_video_file(path)
    if not frames:
        raise ValueError(f"{path.name} has no video frames")
    return frames, fps


def differences(metas: list[dict[str, Any]]) -> list[list[str]]:
    """Per output, ``name value`` for each recipe value that is not the same in all of them (seed, params, prompt,
    generator, weights, inputs, run options), so each pane says what makes it different."""
    flat: list[dict[str, Any]] = []
    for meta in metas:
        row: dict[str, Any] = {}
        for key, value in meta.items():
            if key in _NOT_COMPARED:
                continue
            if isinstance(value, dict):
                row.update({f"{k}": v for k, v in value.items()} if key == "params" else
                           {f"{key}.{k}": v for k, v in value.items()})
            else:
                row[key] = value
        flat.append(row)
    keys = list(dict.fromkeys(k for row in flat for k in row))
    # the prompt is each pane's title already
    varying = [k for k in keys if k != "prompt" and len({repr(row.get(k)) for row in flat}) > 1]
    out = []
    for row in flat:
        parts = []
        for k in varying:
            v = row.get(k)
            text = "—" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))
            parts.append(f"{k} {text if len(text) <= 40 else text[:39] + '…'}")
        out.append(parts)
    return out


class ComparePane(QWidget):
    """One output's frame at the shared time, scaled to fit, with its badge and what differs."""

    def __init__(self, source: CompareSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.clip: _Clip | None = None
        self.index = 0
        self.placeholder = "Decoding…"
        self.setMinimumSize(160, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip(f"{source.title}\n{source.dir}")

    @property
    def frame_count(self) -> int:
        return len(self.clip.images) if self.clip is not None else 0

    def show_index(self, index: int) -> None:
        if self.frame_count:
            index = max(0, min(index, self.frame_count - 1))
            if index != self.index:
                self.index = index
                self.update()

    def current_image(self) -> QImage | None:
        return self.clip.images[self.index] if self.frame_count else None

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1e1e"))
        image = self.current_image()
        if image is None:
            p.setPen(QColor("#9e9e9e"))
            p.drawText(self.rect().adjusted(8, 8, -8, -8), int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                       self.clip.error if self.clip is not None and self.clip.error else self.placeholder)
        else:
            area = self.rect().adjusted(2, 2, -2, -2)
            size = image.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(area.center())
            # small renders are upscaled a lot: keep their pixels sharp, so differences stay visible
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, size.width() < 4 * image.width())
            p.drawImage(target, image)
        if self.source.badge:
            f = p.font()
            f.setBold(True)
            p.setFont(f)
            box = p.fontMetrics().boundingRect(self.source.badge).adjusted(-5, -2, 5, 2)
            box.moveTopLeft(self.rect().topLeft() + QRect(0, 0, 6, 6).bottomRight())
            p.fillRect(box, QColor(21, 101, 192, 220))
            p.setPen(QColor("white"))
            p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), self.source.badge)
        p.end()


class CompareWindow(QWidget):
    """2-4 outputs side by side (a row of 2 or 3, a 2×2 grid of 4) under one scrubber and one play/pause."""

    #: every output decoded (or failed)
    loaded = Signal()
    #: the shared clock moved: the tick now shown
    position_changed = Signal(int)

    def __init__(self, sources: list[CompareSource], parent: QWidget | None = None, *, title: str = "",
                 max_sources: int = MAX_OUTPUTS) -> None:
        super().__init__(parent)
        if not MIN_OUTPUTS <= len(sources) <= max_sources:
            raise ValueError(f"compare takes {MIN_OUTPUTS}-{max_sources} outputs, not {len(sources)}")
        # a top-level window even with a parent (it closes with the app), never modal
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setObjectName("compareWindow")
        self.setWindowTitle(title or f"Compare {len(sources)} outputs")
        self.panes = [ComparePane(s, self) for s in sources]
        self.captions = [QLabel(s.title, self) for s in sources]
        grid = QGridLayout()
        # a row of 2 or 3; 4 and more in two rows (a source and its conditions: up to 8)
        cols = len(sources) if len(sources) <= 3 else math.ceil(len(sources) / 2)
        for i, (pane, caption) in enumerate(zip(self.panes, self.captions)):
            caption.setWordWrap(True)
            caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            caption.setToolTip(str(sources[i].dir))
            cell = QVBoxLayout()
            cell.addWidget(pane, 1)
            cell.addWidget(caption)
            grid.addLayout(cell, i // cols, i % cols)

        self.play_button = QPushButton("Play", self)
        self.play_button.setObjectName("comparePlay")
        self.play_button.setToolTip("Play or pause all of them (Space)")
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.play_button.clicked.connect(self.toggle_playing)
        self.scrubber = QSlider(Qt.Orientation.Horizontal, self)
        self.scrubber.setObjectName("compareScrubber")
        self.scrubber.setToolTip("Drag to scrub all of them; ← and → step one frame")
        self.scrubber.setRange(0, 0)
        self.scrubber.setPageStep(1)
        self.scrubber.valueChanged.connect(self._on_scrubber_value_changed)
        self.scrubber.sliderPressed.connect(lambda: self.set_playing(False))
        self.frame_label = QLabel("", self)
        self.frame_label.setMinimumWidth(90)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.toggle_playing)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.scrubber, 1)
        controls.addWidget(self.frame_label)
        lay = QVBoxLayout(self)
        lay.addLayout(grid, 1)
        lay.addLayout(controls)

        self.fps = 8.0
        self.ticks = 0
        self.playing = False
        self._want_playing = True  # starts playing once everything is decoded
        self._pending = len(sources)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._runner = TaskRunner(self, threads=min(len(sources), 4))
        for pane in self.panes:
            self._runner.submit(lambda d=pane.source.dir: _decode(d),
                                lambda clip, p=pane: self._on_clip_loaded(p, clip),
                                lambda exc, p=pane: self._on_clip_failed(p, exc))
        self.resize(min(380 * cols, 1200), (380 if cols <= 3 else 300) * (2 if len(sources) > 3 else 1) + 60)

    # -- loading ------------------------------------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._pending == 0

    def _on_clip_loaded(self, pane: ComparePane, clip: _Clip) -> None:
        pane.clip = clip
        pane.update()
        self._one_done()

    def _on_clip_failed(self, pane: ComparePane, exc: BaseException) -> None:
        pane.clip = _Clip(error=f"Cannot play this output: {getattr(exc, 'user_message', None) or exc}")
        pane.update()
        self._one_done()

    def _one_done(self) -> None:
        self._pending -= 1
        if self._pending:
            return
        clips = [p.clip for p in self.panes if p.clip is not None and p.clip.images]
        self.fps = max((c.fps for c in clips), default=8.0)
        self.ticks = max((math.ceil(len(c.images) * self.fps / c.fps) for c in clips), default=0)
        self.scrubber.setRange(0, max(self.ticks - 1, 0))
        self._timer.setInterval(max(int(1000 / self.fps), 1))
        for caption, pane, diff in zip(self.captions, self.panes, differences([p.clip.meta if p.clip else {}
                                                                               for p in self.panes])):
            lines = [pane.source.title if len(pane.source.title) <= 60 else pane.source.title[:59] + "…"]
            if diff:
                lines.append(" · ".join(diff))
            caption.setText("\n".join(lines))
        self.show_tick(0)
        self.set_playing(self._want_playing and self.ticks > 1)
        self.loaded.emit()

    # -- the clock ----------------------------------------------------------------------------------------------
    def frame_at(self, pane: ComparePane, tick: int) -> int:
        """The frame ``pane`` shows at ``tick`` of the shared clock."""
        if pane.clip is None or not pane.clip.images:
            return 0
        return min(int(tick * pane.clip.fps / self.fps + 1e-6), len(pane.clip.images) - 1)

    def show_tick(self, tick: int) -> None:
        """Move every pane (and the scrubber) to ``tick``."""
        tick = max(0, min(tick, max(self.ticks - 1, 0)))
        for pane in self.panes:
            pane.show_index(self.frame_at(pane, tick))
        if self.scrubber.value() != tick:
            self.scrubber.blockSignals(True)
            self.scrubber.setValue(tick)
            self.scrubber.blockSignals(False)
        self.frame_label.setText(f"{tick + 1} / {self.ticks}  ({tick / self.fps:.2f} s)" if self.ticks else "")
        self.position_changed.emit(tick)

    @property
    def position(self) -> int:
        return self.scrubber.value()

    def set_playing(self, playing: bool) -> None:
        self._want_playing = playing
        self.playing = playing and self.is_loaded and self.ticks > 1
        if self.playing:
            self._timer.start()
        else:
            self._timer.stop()
        self.play_button.setText("Pause" if self.playing else "Play")

    @Slot()
    def toggle_playing(self) -> None:
        self.set_playing(not self.playing)

    @Slot()
    def _on_timer_timeout(self) -> None:
        self.show_tick((self.position + 1) % max(self.ticks, 1))

    @Slot(int)
    def _on_scrubber_value_changed(self, value: int) -> None:
        self.set_playing(False)  # scrubbing (drag, click, arrow keys) pauses, as in every player
        self.show_tick(value)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._timer.stop()
        self._runner.wait()
        super().closeEvent(event)
