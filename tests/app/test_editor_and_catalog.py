"""The job editor checks what it will queue before queueing; motions come in by drag-and-drop."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from guihelpers import create_project, drop_files

from app.widgets.param_form import INVALID_STYLE


def test_invalid_values_are_marked_and_block_queueing(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    editor = window.editor
    assert editor.spec.id == "modelscope_t2v.t2v"
    assert set(editor.params.editors) >= {"num_frames", "height", "width", "num_inference_steps", "guidance_scale"}
    assert "prompt" not in editor.params.editors  # prompts come from the list
    height = editor.params.editors["height"]
    assert height.minimum() == 8 and height.maximum() == 2048 and "multiple of 8" in height.toolTip()

    editor.seeds.setText("1,2,5-8")
    assert "3 prompt(s) × 6 seed(s)" in editor.grid.text() and "18 job(s)" in editor.grid.text()
    assert editor.queue_button.isEnabled()

    height.setValue(30)  # in range, but not a multiple of 8
    assert height.styleSheet() == INVALID_STYLE and "⚠" in height.toolTip()
    assert not editor.queue_button.isEnabled() and "height" in editor.problem_label.text()
    assert editor.submit(False) is False
    height.setValue(32)
    assert height.styleSheet() == "" and editor.queue_button.isEnabled()

    editor.seeds.setText("8-5")
    assert "backwards" in editor.problem_label.text() and not editor.start_button.isEnabled()
    editor.seeds.setText("3")
    editor.prompt_view.clearSelection()
    assert "Select one or more prompts" in editor.problem_label.text()


def test_dropped_videos_become_a_motion_with_an_animated_thumbnail(qtbot: Any, window: Any, tmp_path: Path) -> None:
    import imageio_ffmpeg

    create_project(qtbot, window, tmp_path, template=None)
    video = tmp_path / "jumping_jacks.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for i in range(8):
        writer.send(np.full((32, 32, 3), i * 30, np.uint8))
    writer.close()
    window.sidebar.setCurrentWidget(window.sidebar.motions_page)
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=20_000, check_params_cb=lambda k: k == "motions"):
        drop_files(window.sidebar.motions_page, [video])
    motion = window.loader.motions.record(0)
    assert motion.name == "jumping jacks" and motion.videos[0].num_frames == 8
    qtbot.waitUntil(lambda: window.loader.thumbs.is_loaded(motion.videos[0].path), timeout=20_000)
    assert len(window.loader.motions._frames(motion)) > 1  # the thumbnail plays
    assert "Motions (1)" in window.sidebar.tabText(1)


def test_previews_repaint_at_most_ten_times_a_second(qtbot: Any) -> None:
    from PySide6.QtCore import QElapsedTimer, QTimer

    from app.widgets.preview import FramePlayer

    player = FramePlayer(max_fps=10)
    qtbot.addWidget(player)
    player.show()
    qtbot.waitExposed(player)
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    fed, clock, feeder = [0], QElapsedTimer(), QTimer()
    feeder.setInterval(2)  # a worker reporting 500 previews a second

    def feed() -> None:
        fed[0] += 1
        player.set_frames(frames + fed[0] % 255)

    feeder.timeout.connect(feed)
    start = player.paint_count
    clock.start()
    feeder.start()
    qtbot.waitUntil(lambda: clock.elapsed() >= 1000, timeout=5_000)
    feeder.stop()
    seconds = clock.elapsed() / 1000
    assert fed[0] > 50
    assert player.paint_count - start <= 10 * seconds + 2
    assert player.frame_count == 4


def test_layout_gives_the_queue_table_room_and_hides_collapsed_groups(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from app.dialogs.new_subject import IMAGE_FILTER

    create_project(qtbot, window, tmp_path)
    window.resize(1440, 860)
    qtbot.waitUntil(lambda: window.queue_split.width() > 600)
    table, preview = window.queue_split.sizes()
    assert table >= 0.55 * (table + preview), "the queue table is not squeezed by the preview"

    params = window.editor.params
    toggle = params.advanced_button
    assert toggle.isVisible() and toggle.text().startswith("Advanced (")
    assert not params._adv_body.isVisible(), "a collapsed Advanced group shows no empty box"
    toggle.click()
    assert params._adv_body.isVisible() and params._adv_body.layout().rowCount() > 0
    toggle.click()
    assert not params._adv_body.isVisible()

    assert all(f"*.{s}" in IMAGE_FILTER for s in ("png", "jpg", "tif", "tiff", "gif"))
