"""Helpers for the gallery tests: a project whose outputs went through the real publish path (staging folder, real
ffmpeg, ``finish_job``), each video a bright square moving one step a frame, so the frame a pane shows can be read
from its pixels."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from app.models.base import RecordRole

SIZE = 32
STEP = 4  # the square moves this many pixels a frame


def moving_frames(n: int, colour: tuple[int, int, int]) -> np.ndarray:
    frames = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        frames[i, 12:20, i * STEP:i * STEP + 4] = colour
    return frames


def frame_of(image: Any) -> int:
    """Which frame a QImage of :func:`moving_frames` is: where its square is."""
    row = image.height() * 16 // SIZE
    for x in range(image.width()):
        if image.pixelColor(x, row).value() > 100:
            return x * SIZE // image.width() // STEP
    raise AssertionError("no square in this frame")


def publish(project: Any, seed: int, prompt: str, spec_id: str = "modelscope_t2v.t2v", n: int = 8,
            colour: tuple[int, int, int] = (255, 64, 0), **params: Any) -> str:
    """Queue, claim, write and publish one output; returns its job id."""
    from sdk.outputs import build_meta, write_output
    from sdk.records import NewJob
    from sdk.video import Video

    params = {"num_frames": n, "height": SIZE, "width": SIZE, "fps": 8, **params}
    job_id = project.add_jobs([NewJob(kind="generate", spec_id=spec_id, params=params, seed=seed,
                                      prompt=prompt)]).job_ids[0]
    assert project.claim_next_job().id == job_id
    meta = build_meta(job_id=job_id, kind="generate", spec_id=spec_id, spec_version="1", params=params, seed=seed,
                      prompt=prompt, inputs={}, weights=None, weights_hashes={}, timings={"total": 0.1})
    write_output(project.staging_dir(job_id), Video(moving_frames(n, colour), fps=8), meta)
    project.finish_job(job_id, project.staging_dir(job_id))
    return job_id


def open_project(qtbot: Any, window: Any, path: Path, outputs: int) -> Any:
    """Open ``path`` in the window (as File ▸ Open does) and wait until the gallery lists ``outputs`` outputs."""
    with qtbot.waitSignal(window.project_changed, timeout=30_000):
        window.open_project(path)
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == outputs, timeout=20_000)
    window.tabs.setCurrentIndex(1)
    return window.session


def item_point(gallery: Any, job_id: str) -> QPoint:
    """The centre of ``job_id``'s thumbnail in the gallery's viewport."""
    return gallery.view.visualRect(index_of(gallery, job_id)).center()


def index_of(gallery: Any, job_id: str) -> Any:
    for r in range(gallery.proxy.rowCount()):
        if gallery.proxy.index(r, 0).data(RecordRole).job_id == job_id:
            return gallery.proxy.index(r, 0)
    raise AssertionError(f"{job_id} is not shown")


def click(qtbot: Any, gallery: Any, job_id: str, modifier: Any = Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, modifier, item_point(gallery, job_id))


def star_point(gallery: Any, job_id: str) -> QPoint:
    """Where the star of ``job_id``'s thumbnail is drawn."""
    index = index_of(gallery, job_id)
    option = QStyleOptionViewItem()
    gallery.view.initViewItemOption(option)
    option.rect = gallery.view.visualRect(index)
    return gallery.delegate.star_rect(option, index).center()


def shown_job_ids(gallery: Any) -> list[str]:
    return [gallery.proxy.index(r, 0).data(RecordRole).job_id for r in range(gallery.proxy.rowCount())]
