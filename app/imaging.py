"""Pixels: numpy frames → QImage, thumbnails loaded off the GUI thread."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter

from app.tasks import TaskRunner

THUMB = 128


def frame_to_qimage(frame: Any) -> QImage:
    """uint8 ``[H, W, 3]`` → QImage (copied, so Qt owns the buffer)."""
    import numpy as np

    a = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def fit(image: QImage, size: int = THUMB) -> QImage:
    return image.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


def load_thumbnail(path: Path, size: int = THUMB, mask: Path | None = None) -> QImage:
    """An image scaled to fit ``size``; with ``mask``, the masked-out area is tinted (worker thread)."""
    image = QImage(str(path))
    if image.isNull():
        return image
    image = fit(image, size).convertToFormat(QImage.Format.Format_ARGB32)
    if mask is not None:
        m = QImage(str(mask))
        if not m.isNull():
            m = m.scaled(image.size()).convertToFormat(QImage.Format.Format_Grayscale8)
            tint = QImage(image.size(), QImage.Format.Format_ARGB32)
            tint.fill(QColor(200, 30, 120, 130))
            # the tint shows where the mask is black (outside the subject)
            alpha = m.copy()
            alpha.invertPixels()
            tint.setAlphaChannel(alpha.convertToFormat(QImage.Format.Format_Alpha8))
            p = QPainter(image)
            p.setOpacity(0.6)
            p.drawImage(0, 0, tint)
            p.end()
    return image


def decode_video_file(path: Path) -> tuple[list[Any], float]:
    """Every frame of a video file as RGB uint8 arrays, and its fps (8 when unknown); ([], fps) when it has none.
    Worker threads only: it decodes the whole file."""
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        info = next(reader)
        w, h = info["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    finally:
        reader.close()
    return frames, float(info.get("fps") or 8.0)


def load_video_frames(path: Path, size: int = THUMB, max_frames: int = 12) -> list[QImage]:
    """Up to ``max_frames`` evenly spaced frames of a video, scaled to fit ``size`` (worker thread)."""
    frames, _ = decode_video_file(path)
    if not frames:
        return []
    step = max(1, len(frames) // max_frames)
    return [fit(frame_to_qimage(f), size) for f in frames[::step][:max_frames]]


class ThumbnailCache(QObject):
    """Loads thumbnails (images: one frame; videos: a few) in the background, once each."""

    #: cache key, list[QImage]
    loaded = Signal(str, object)

    def __init__(self, parent: QObject | None = None, size: int = THUMB) -> None:
        super().__init__(parent)
        self.size = size
        self._runner = TaskRunner(self, threads=2)
        self._cache: dict[str, list[QImage]] = {}
        self._pending: set[str] = set()

    def frames(self, path: Path | None, mask: Path | None = None, video: bool = False) -> list[QImage]:
        """The cached frames of ``path`` (empty until loaded; ``loaded`` tells when)."""
        if path is None:
            return []
        key = self.key(path, mask)
        found = self._cache.get(key)
        if found is not None:
            return found
        if key not in self._pending:
            self._pending.add(key)
            size = self.size

            def work() -> list[QImage]:
                if video:
                    return load_video_frames(path, size)
                image = load_thumbnail(path, size, mask)
                return [] if image.isNull() else [image]

            self._runner.submit(work, lambda imgs, k=key: self._store(k, imgs),
                                lambda _exc, k=key: self._store(k, []))
        return []

    def failed(self, path: Path, mask: Path | None = None) -> bool:
        """True when ``path`` was loaded and gave nothing (unreadable): no placeholder then."""
        return self._cache.get(self.key(path, mask)) == []

    def is_loaded(self, path: Path, mask: Path | None = None) -> bool:
        return bool(self._cache.get(self.key(path, mask)))

    @staticmethod
    def key(path: Path, mask: Path | None = None) -> str:
        return f"{path}|{mask or ''}"

    @Slot()
    def _store(self, key: str, images: list[QImage]) -> None:
        self._pending.discard(key)
        self._cache[key] = images
        self.loaded.emit(key, images)

    def wait(self) -> None:
        self._runner.wait()
