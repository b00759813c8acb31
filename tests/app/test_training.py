"""DreamVideo training from the sidebar: one action per subject or motion queues its training jobs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from guihelpers import create_project, drop_files, write_images


def _add_subject(qtbot: Any, window: Any, tmp_path: Path, name: str = "Rex") -> Any:
    page = window.sidebar.subjects_page
    drop_files(page, write_images(tmp_path / "drop"))
    page.dialog.name.setText(name)
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        page.dialog.accept()
    return window.loader.subjects.record(window.loader.subjects.rowCount() - 1)


def _add_motion(qtbot: Any, window: Any, tmp_path: Path) -> Any:
    import imageio_ffmpeg

    video = tmp_path / "jumping_jacks.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for i in range(8):
        writer.send(np.full((32, 32, 3), i * 30, np.uint8))
    writer.close()
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=20_000, check_params_cb=lambda k: k == "motions"):
        drop_files(window.sidebar.motions_page, [video])
    return window.loader.motions.record(0)


def test_train_subject_queues_step1_then_step2_for_the_selected_subject(
        qtbot: Any, window: Any, installed_dreamvideo_weights: str, tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    page = window.sidebar.subjects_page
    action = page.train_action
    assert not action.isEnabled() and "Select a subject first" in action.toolTip()
    assert action in page.list.actions()  # the subject list's context menu offers it

    subject = _add_subject(qtbot, window, tmp_path)
    qtbot.waitUntil(action.isEnabled)  # the new subject is selected
    assert page.selected_subject().id == subject.id
    assert page.train_button.isEnabled() and page.train_button.text() == "Train DreamVideo subject"

    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        page.train_button.click()
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)
    jobs = sorted(window.loader.jobs.records(), key=lambda j: j.position)
    assert [j.spec_id for j in jobs] == ["dreamvideo.subject_step1", "dreamvideo.subject_step2"]
    assert all(j.kind == "train" and j.inputs["subject"] == subject.id for j in jobs)
    assert jobs[0].batch_id == jobs[1].batch_id
    assert window.tabs.currentIndex() == 0 and "Queued 2 job(s)" in window.statusBar().currentMessage()


def test_train_motion_asks_the_caption_then_queues_it(qtbot: Any, window: Any, installed_dreamvideo_weights: str,
                                                      tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    window.sidebar.setCurrentWidget(window.sidebar.motions_page)
    page = window.sidebar.motions_page
    motion = _add_motion(qtbot, window, tmp_path)
    page.list.setCurrentIndex(page.proxy.index(0, 0))
    assert page.train_action.isEnabled()

    page.train_action.trigger()
    dialog = page.caption_dialog
    assert dialog is not None and dialog.isVisible() and dialog.textValue() == "jumping jacks"
    dialog.setTextValue("a person doing jumping jacks")
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        dialog.accept()
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 1, timeout=10_000)
    job = window.loader.jobs.records()[0]
    assert job.spec_id == "dreamvideo.motion" and job.kind == "train"
    assert job.inputs["motion"] == motion.id and job.prompt == "a person doing jumping jacks"


def test_missing_weights_are_explained_in_a_message_box(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    _add_subject(qtbot, window, tmp_path)
    action = window.sidebar.subjects_page.train_action
    qtbot.waitUntil(action.isEnabled)
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as blocker:
        action.trigger()
    title, message = blocker.args
    assert title == "Cannot queue these jobs" and "dreamvideo.modelscope_v1_5" in message
    assert window.findChild(object, "errorBox").isVisible()
    assert window.loader.jobs.records() == []


def test_train_actions_say_why_without_the_dreamvideo_plugin(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from sdk.plugins import PluginRegistry

    create_project(qtbot, window, tmp_path, template=None)
    _add_subject(qtbot, window, tmp_path)
    window._on_plugins_loaded(PluginRegistry())  # as if only other plugins were installed
    for page in (window.sidebar.subjects_page, window.sidebar.motions_page):
        assert not page.train_action.isEnabled() and not page.train_button.isEnabled()
        assert "dreamvideo plugin is not installed" in page.train_button.toolTip()
