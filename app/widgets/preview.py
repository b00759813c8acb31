"""Frames painted by hand: a looping player for previews and outputs, and the live preview of the running job.

A QVideoWidget cannot be grabbed offscreen, and previews arrive as numpy frames anyway, so
:class:`FramePlayer` paints QImages itself. It repaints on a timer at most ``max_fps`` times a
second, however often new frames arrive (new frames only mark it dirty).
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRect, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

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


IDLE_TEXT = "No job is rendering.\nQueue a job and press Start queue: its preview plays here, updated every step."


class LossPlot(QWidget):
    """A training job's loss so far, as a line (the newest ``keep`` values)."""

    def __init__(self, parent: QWidget | None = None, keep: int = 500) -> None:
        super().__init__(parent)
        self.keep = keep
        self.values: list[tuple[int, float]] = []
        self.setMinimumHeight(48)
        self.setMaximumHeight(72)
        self.setToolTip("Training loss per step")

    def add(self, step: int, loss: float) -> None:
        if loss == loss and abs(loss) != float("inf"):  # a skipped (non-finite) step draws nothing
            self.values = (self.values + [(step, loss)])[-self.keep:]
            self.update()

    def clear(self) -> None:
        self.values = []
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1e1e"))
        area = self.rect().adjusted(4, 14, -4, -4)
        p.setPen(QColor("#9e9e9e"))
        last = f"loss {self.values[-1][1]:.4g}" if self.values else "loss: no step yet"
        p.drawText(self.rect().adjusted(4, 0, -4, 0), int(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft), last)
        if len(self.values) >= 2:
            steps = [s for s, _ in self.values]
            losses = [v for _, v in self.values]
            lo, hi = min(losses), max(losses)
            s0, s1 = steps[0], max(steps[-1], steps[0] + 1)
            span = (hi - lo) or 1.0
            line = QPolygonF([QPointF(area.left() + (s - s0) / (s1 - s0) * area.width(),
                                      area.bottom() - (v - lo) / span * area.height()) for s, v in self.values])
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor("#4fc3f7"), 1.5))
            p.drawPolyline(line)
        p.end()


class LivePreview(QWidget):
    """The running job's latest preview, playing all its frames, with its progress: step n/N of a generation, step,
    loss and sample videos of a training; in a window that does not render the project (another process holds its
    render lock), which job that process runs and how far it is, read from the project every poll."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.player = FramePlayer(self, placeholder=IDLE_TEXT)
        self.title = QLabel("Live preview", self)
        self.title.setObjectName("previewTitle")
        self.title.setStyleSheet("font-weight: bold")
        self.title.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("previewProgress")
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.loss_plot = LossPlot(self)
        self.loss_plot.setVisible(False)
        self.status = QLabel("", self)
        self.status.setObjectName("previewStatus")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.player, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.loss_plot)
        lay.addWidget(self.status)
        self.session: Any = None
        self.job_id: str | None = None
        self.kind = ""
        #: "" when this window renders; else who does ("another process (pid 123)")
        self.remote = ""
        self.step = self.total = 0
        self.loss: float | None = None
        self._sample_every = 0

    # -- what to follow ---------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        """Listen to ``session``'s live events (previews, progress, training metrics); None: show nothing."""
        if self.session is not None:
            bridge = self.session.bridge
            bridge.preview_ready.disconnect(self._on_bridge_preview_ready)
            bridge.progress_updated.disconnect(self._on_bridge_progress_updated)
            bridge.metrics_updated.disconnect(self._on_bridge_metrics_updated)
        self.session = session
        if session is not None:
            bridge = session.bridge
            bridge.preview_ready.connect(self._on_bridge_preview_ready)
            bridge.progress_updated.connect(self._on_bridge_progress_updated)
            bridge.metrics_updated.connect(self._on_bridge_metrics_updated)
        self.follow(None)

    def update_jobs(self, model: Any, selected: Any = None) -> None:
        """Follow the selected job if it runs, else the running one; keep the last one when none runs here.
        ``model`` is the queue's JobTableModel (its records, and how it describes a job)."""
        running = [j for j in model.records() if _status(j) == "RUNNING"]
        job = selected if selected is not None and selected in running else (running[0] if running else None)
        remote = self._remote_text()
        if job is not None:
            label = model.describe(job) + (f" · seed {job.seed}" if job.kind == "generate" else "")
            self.follow(job.id, label[:90], kind=job.kind, params=job.params, remote=remote)
            if remote:  # no events from another process: the project's own record of its progress
                self._show_progress(job.progress_step, job.progress_total)
        elif remote and (self.job_id is not None or self.remote != remote):
            self.follow(None, remote=remote)

    def _remote_text(self) -> str:
        session = self.session
        if session is None or getattr(session, "state", "") != "locked":
            return ""
        holder = getattr(session, "lock_holder", {}) or {}
        pid = holder.get("pid")
        who = f" “{holder['holder']}”" if holder.get("holder") else ""
        return f"another process{who} (pid {pid})" if pid else "another process"

    def follow(self, job_id: str | None, label: str = "", *, kind: str = "generate", params: Any = None,
               remote: str = "") -> None:
        """Show ``job_id``'s previews and progress from now on (None: nothing runs)."""
        if job_id == self.job_id and remote == self.remote:
            if label:
                self.title.setText(f"Live preview — {label}")
            return
        self.job_id, self.kind, self.remote = job_id, kind, remote
        self.step = self.total = 0
        self.loss = None
        self.player.clear()
        self.loss_plot.clear()
        self.progress.setVisible(job_id is not None)
        self.progress.setRange(0, 0)  # busy until the first step
        self.loss_plot.setVisible(job_id is not None and kind == "train" and not remote)
        self._sample_every = int((params or {}).get("validation_steps") or 0) if kind == "train" else 0
        if job_id is None:
            self.title.setText("Live preview")
            self.player.placeholder = (f"Rendered by {remote}: no job runs there now.\nJobs queued here are "
                                       "rendered by that process." if remote else IDLE_TEXT)
            self.status.setText(f"This project is rendered by {remote}." if remote else "")
            self.player.update()
            return
        self.title.setText(f"Live preview — {label}" if label else "Live preview")
        if remote:
            self.player.placeholder = (f"Rendered by {remote}.\nIts previews are not shared with this window; "
                                       "the progress below is read from the project every few seconds.")
            self.status.setText(f"Running · rendered by {remote}")
        elif kind == "train":
            every = f" every {self._sample_every} steps" if self._sample_every else ""
            self.player.placeholder = (f"Training.\nA sample video plays here{every}; the loss is drawn below "
                                       "at each step.")
            self.status.setText("Training: waiting for the first step…")
        else:
            self.player.placeholder = "Starting…\nThe preview plays here from the first step."
            self.status.setText("Waiting for the first step…")
        self.player.update()

    # -- progress ---------------------------------------------------------------------------------
    def _show_progress(self, step: int, total: int) -> None:
        self.step, self.total = step, total
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.progress.setFormat(f"step {step}/{total}")
        parts = [f"Step {step}/{total}" if total else "Starting"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.player.frame_count:
            parts.append("sample" if self.kind == "train" else f"{self.player.frame_count} frames")
        elif self.kind == "train" and self._sample_every and not self.remote:
            parts.append(f"first sample at step {self._sample_every}")
        elif not self.remote:
            parts.append("no preview yet")
        if self.remote:
            parts.append(f"rendered by {self.remote}")
        self.status.setText(" · ".join(parts))

    @Slot(str, int, int, object)
    def _on_bridge_preview_ready(self, job_id: str, step: int, total: int, frames: Any) -> None:
        if job_id != self.job_id:
            return
        self.player.set_frames(frames)
        self.player.set_caption(f"{'sample at ' if self.kind == 'train' else ''}step {step}/{total}")
        self._show_progress(step, total)

    @Slot(str, int, int, float, float)
    def _on_bridge_progress_updated(self, job_id: str, step: int, total: int, elapsed: float, eta: Any) -> None:
        if job_id == self.job_id:
            self._show_progress(step, total)

    @Slot(str, int, int, object)
    def _on_bridge_metrics_updated(self, job_id: str, step: int, total: int, metrics: Any) -> None:
        if job_id != self.job_id or "loss" not in metrics:
            return
        self.loss = float(metrics["loss"])
        self.loss_plot.add(step, self.loss)
        self._show_progress(step, total)


def _status(job: Any) -> str:
    return getattr(job.status, "value", str(job.status))
