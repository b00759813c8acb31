"""DreamVideo training from the sidebar: one action per subject or motion queues its training jobs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from guihelpers import create_project, drop_files, write_images
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QSpinBox


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

    # the button asks the settings first (issue 11 #5), with VGen's defaults and what the steps cost
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    dialog = page.train_dialog
    assert dialog is not None and dialog.isVisible() and window.loader.jobs.records() == []
    steps1, steps2 = (dialog.findChild(QSpinBox, f"train_subject_step{i}_max_train_steps") for i in (1, 2))
    rate1, rate2 = (dialog.findChild(QLineEdit, f"train_subject_step{i}_learning_rate") for i in (1, 2))
    assert (steps1.value(), steps2.value(), rate1.text(), rate2.text()) == (3000, 1000, "0.0001", "1e-5")
    assert dialog.findChild(QSpinBox, "train_subject_step1_train_batch_size").value() == 4
    assert "3000 + 1000 steps" in dialog.estimate.text() and "0.2 s" in dialog.estimate.text()
    steps1.setFocus()
    steps1.selectAll()
    qtbot.keyClicks(steps1, "20")
    steps2.setFocus()
    steps2.selectAll()
    qtbot.keyClicks(steps2, "10")
    rate2.setFocus()
    rate2.selectAll()
    qtbot.keyClicks(rate2, "2e-5")
    seed = dialog.findChild(QSpinBox, "train_subject_step1_seed")
    seed.setFocus()
    seed.selectAll()
    qtbot.keyClicks(seed, "7")
    assert "20 + 10 steps" in dialog.estimate.text()
    rate1.setFocus()
    rate1.selectAll()
    qtbot.keyClicks(rate1, "5")  # out of range: named, and the dialog cannot queue it
    assert "learning rate" in dialog.problem.text() and not dialog.queue_button.isEnabled()
    rate1.selectAll()
    qtbot.keyClicks(rate1, "1e-4")
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        qtbot.mouseClick(dialog.queue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)
    jobs = sorted(window.loader.jobs.records(), key=lambda j: j.position)
    assert [j.spec_id for j in jobs] == ["dreamvideo.subject_step1", "dreamvideo.subject_step2"]
    assert all(j.kind == "train" and j.inputs["subject"] == subject.id for j in jobs)
    assert [(j.params["max_train_steps"], j.params["learning_rate"]) for j in jobs] == [(20, 1e-4), (10, 2e-5)]
    assert all(j.params["seed"] == 7 and j.seed == 7 and j.params["train_batch_size"] == 4 for j in jobs)
    assert jobs[0].batch_id == jobs[1].batch_id
    assert window.tabs.currentIndex() == 0 and "Queued 2 job(s)" in window.statusBar().currentMessage()

    # once a step has run here, the dialog shows the time it measured
    import dataclasses
    import time

    ran = dataclasses.replace(jobs[0], status=type(jobs[0].status)("SUCCEEDED"), started_at=time.time() - 10,
                              finished_at=time.time(), progress_step=20, progress_total=20)
    window.loader.jobs.set_records([ran, jobs[1]])
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    assert "Measured in this project: 0.50 s, 0.50 s per step" in page.train_dialog.estimate.text()
    assert "about 33 min for 3000 + 1000 steps" in page.train_dialog.estimate.text()
    page.train_dialog.reject()


def test_train_motion_asks_the_caption_and_the_settings_then_queues_them(qtbot: Any, window: Any,
                                                                        installed_dreamvideo_weights: str,
                                                                        tmp_path: Path) -> None:
    """Train DreamVideo motion opens the same settings dialog as a subject's training, with the caption first."""
    session = create_project(qtbot, window, tmp_path, template=None)
    window.sidebar.setCurrentWidget(window.sidebar.motions_page)
    page = window.sidebar.motions_page
    motion = _add_motion(qtbot, window, tmp_path)
    page.list.setCurrentIndex(page.proxy.index(0, 0))
    assert page.train_action.isEnabled()

    page.train_action.trigger()
    dialog = page.train_dialog
    assert dialog is not None and dialog.isVisible() and dialog.caption_edit.text() == "jumping jacks"
    steps = dialog.findChild(QSpinBox, "train_motion_max_train_steps")
    assert steps.value() == 3000  # VGen's default, shown before anything is queued
    qtbot.keyClicks(dialog.caption_edit, " done slowly")
    steps.setFocus()
    steps.selectAll()
    qtbot.keyClicks(steps, "12")
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        qtbot.mouseClick(dialog.queue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 1, timeout=10_000)
    job = window.loader.jobs.records()[0]
    assert job.spec_id == "dreamvideo.motion" and job.kind == "train"
    assert job.inputs["motion"] == motion.id and job.prompt == "jumping jacks done slowly"
    assert job.params["max_train_steps"] == 12


def test_the_editor_counts_each_step_of_a_composite_training(qtbot: Any, window: Any,
                                                             installed_dreamvideo_weights: str, tmp_path: Path) -> None:
    """Chosen in the job editor, "DreamVideo subject" says it queues 2 jobs per seed (step 1, step 2), and does."""
    session = create_project(qtbot, window, tmp_path, template=None)
    subject = _add_subject(qtbot, window, tmp_path)
    editor = window.editor
    assert editor.select_generator("dreamvideo.subject")
    field = editor.inputs["subject"]
    qtbot.waitUntil(lambda: subject.id in field.combo.keys())
    field.combo.setCurrentIndex(field.combo.keys().index(subject.id))
    editor.seeds.setFocus()
    editor.seeds.selectAll()
    qtbot.keyClicks(editor.seeds, "1-2")
    qtbot.waitUntil(lambda: "4 job(s)" in editor.grid.text())
    assert "2 seed(s) × 2 steps" in editor.grid.text()
    editor.params.set_values({"max_train_steps": 1})
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        qtbot.mouseClick(editor.queue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 4, timeout=10_000)
    assert sorted(j.spec_id for j in window.loader.jobs.records()) == ["dreamvideo.subject_step1"] * 2 + [
        "dreamvideo.subject_step2"] * 2


def test_missing_weights_are_explained_in_a_message_box(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    _add_subject(qtbot, window, tmp_path)
    action = window.sidebar.subjects_page.train_action
    qtbot.waitUntil(action.isEnabled)
    action.trigger()
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as blocker:
        window.sidebar.subjects_page.train_dialog.accept()
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
