"""Frames painted by hand: a looping player for previews and outputs.

A QVideoWidget cannot be grabbed offscreen, and previews arrive as numpy frames anyway, so
:class:`FramePlayer` paints QImages itself. It repaints on a timer at most ``max_fps`` times a
second, however often new frames arrive (new frames only mark it dirty).
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.imaging import frame_to_qimage


class FramePlayer(QWidget):
    """Loops a list of frames at ``fps`` (capped at ``max_fps`` repaints per second)."""

    #: the frame index just painted
    frame_shown = Signal(int)

    def __init__(self, parent: QWidget | None = None, max_fps: float = 10.0,
                 placeholder: str = "Nothing to show") -> None:
        super().__init__(parent)
        self.max_fps = max_fps
        self.placeholder = placeholder
        self.caption = ""
        self.paint_count = 0
        self._raw: Any = None          # newest numpy frames, converted on the next tick
        self._images: list[QImage] = []
        self._index = 0
        self._dirty = False
        self._playing = True
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.set_fps(8)
        self.setMinimumSize(QSize(160, 120))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # -- content ----------------------------------------------------------------------------
    def set_fps(self, fps: float) -> None:
        self._timer.setInterval(int(max(1000.0 / max(fps, 0.1), 1000.0 / self.max_fps)))

    def set_frames(self, frames: Any, fps: float | None = None) -> None:
        """New uint8 ``[F, H, W, 3]`` frames; painted on the next tick (the animation keeps its place)."""
        self._raw = frames
        if fps:
            self.set_fps(fps)
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def set_images(self, images: list[QImage], fps: float | None = None) -> None:
        self._raw = None
        self._images = list(images)
        self._index = 0
        if fps:
            self.set_fps(fps)
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def clear(self, placeholder: str | None = None) -> None:
        self._raw, self._images, self._index = None, [], 0
        if placeholder is not None:
            self.placeholder = placeholder
        self.caption = ""
        self._timer.stop()
        self.update()

    def set_caption(self, text: str) -> None:
        if text != self.caption:
            self.caption = text
            self._dirty = True

    @property
    def frame_count(self) -> int:
        return len(self._images) if self._raw is None else len(self._raw)

    def set_playing(self, playing: bool) -> None:
        self._playing = playing

    @property
    def playing(self) -> bool:
        return self._playing

    def current_image(self) -> QImage | None:
        return self._images[self._index] if self._images else None

    # -- painting ---------------------------------------------------------------------------
    @Slot()
    def _on_timer_timeout(self) -> None:
        if self._raw is not None:
            self._images = [frame_to_qimage(f) for f in self._raw]
            self._raw = None
        advanced = False
        if self._playing and len(self._images) > 1:
            self._index = (self._index + 1) % len(self._images)
            advanced = True
        elif self._images:
            self._index = min(self._index, len(self._images) - 1)
        if advanced or self._dirty:
            self._dirty = False
            self.update()
        if len(self._images) <= 1 and not self._dirty:
            self._timer.stop()  # a still image needs no timer until new frames come

    def paintEvent(self, event: QPaintEvent) -> None:
        self.paint_count += 1
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1e1e"))
        image = self.current_image()
        if image is None:
            p.setPen(QColor("#9e9e9e"))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.placeholder)
            p.end()
            return
        area = self.rect().adjusted(4, 4, -4, -24 if self.caption else -4)
        size = image.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(area.center())
        # small previews are upscaled a lot: keep their pixels sharp
        smooth = size.width() < 4 * image.width()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.drawImage(target, image)
        if self.caption:
            p.setPen(QColor("#e0e0e0"))
            f = QFont(p.font())
            f.setPointSizeF(max(8.0, f.pointSizeF()))
            p.setFont(f)
            p.drawText(self.rect().adjusted(8, 0, -8, -4),
                       int(Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft), self.caption)
        p.end()
        self.frame_shown.emit(self._index)


class LivePreview(QWidget):
    """The running job's latest preview, playing all its frames, with step n/N."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.player = FramePlayer(self, placeholder="No job is rendering.\nQueue a job and press Start queue: "
                                                    "its preview plays here, updated every step.")
        self.title = QLabel("Live preview", self)
        self.title.setObjectName("previewTitle")
        self.title.setStyleSheet("font-weight: bold")
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.player, 1)
        lay.addWidget(self.status)
        self.job_id: str | None = None
        self.step = self.total = 0

    def follow(self, job_id: str | None, label: str = "") -> None:
        """Show ``job_id``'s previews from now on (None: nothing)."""
        if job_id == self.job_id:
            if label:
                self.title.setText(f"Live preview — {label}")
            return
        self.job_id = job_id
        self.step = self.total = 0
        self.player.clear()
        self.title.setText(f"Live preview — {label}" if label and job_id else "Live preview")
        self.status.setText("Waiting for the first step…" if job_id else "")

    @Slot(str, int, int, object)
    def _on_bridge_preview_ready(self, job_id: str, step: int, total: int, frames: Any) -> None:
        if job_id != self.job_id:
            return
        self.step, self.total = step, total
        self.player.set_frames(frames)
        self.player.set_caption(f"step {step}/{total}")
        self.status.setText(f"Step {step}/{total} · {len(frames)} frames")

    @Slot(str, int, int, float, float)
    def _on_bridge_progress_updated(self, job_id: str, step: int, total: int, elapsed: float, eta: Any) -> None:
        if job_id == self.job_id and self.player.frame_count == 0:
            self.status.setText(f"Step {step}/{total} (no preview yet)")
