"""Subjects in the GUI: a refused import keeps its dialog and names every bad image; removing a subject or motion
that queued jobs need names them and cancels them only when the user confirms."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project, drop_files, write_images
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox


def _click(qtbot: Any, button: Any) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _add_subject(qtbot: Any, window: Any, images: list[Path], name: str) -> Any:
    page = window.sidebar.subjects_page
    drop_files(page, images)
    page.dialog.name.setText(name)
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        _click(qtbot, page.dialog.add_button)
    qtbot.waitUntil(lambda: not page.dialog.isVisible())
    return next(s for s in window.loader.subjects.records() if s.name == name)


def test_a_refused_subject_keeps_its_dialog_and_form(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    _add_subject(qtbot, window, write_images(tmp_path / "first"), "Rex")
    page = window.sidebar.subjects_page
    drop_files(page, write_images(tmp_path / "second"))
    dialog = page.dialog
    dialog.name.setText("Rex")  # taken
    qtbot.keyClicks(dialog.token, "<rex2>")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, raising=False):
        _click(qtbot, dialog.add_button)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.isVisible() and "already exists" in dialog.error.text()
    assert dialog.token.text() == "<rex2>" and dialog.table.rowCount() == 3  # nothing typed was lost
    assert window.last_error is None  # said in the dialog, not in a second box
    assert dialog.add_button.isEnabled() and not dialog.keep_good_button.isVisible()

    dialog.name.setText("Rex 2")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        _click(qtbot, dialog.add_button)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert [s.name for s in window.loader.subjects.records()] == ["Rex", "Rex 2"]


def test_bad_images_are_named_and_the_good_ones_can_be_added(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    good = write_images(tmp_path / "rex", n=3)
    broken = tmp_path / "rex" / "rex_broken.png"
    broken.write_bytes(good[0].read_bytes()[:100])  # truncated
    text = tmp_path / "rex" / "rex_notes.png"
    text.write_text("not a picture")
    page = window.sidebar.subjects_page
    drop_files(page, [*good, broken, text])
    dialog = page.dialog
    _click(qtbot, dialog.add_button)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.isVisible() and window.loader.subjects.rowCount() == 0
    assert "2 of the 5 files" in dialog.error.text()
    assert "rex_broken.png" in dialog.error.text() and "rex_notes.png" in dialog.error.text()
    marked = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert marked == ["rex_0.png", "rex_1.png", "rex_2.png", "⚠ rex_broken.png", "⚠ rex_notes.png"]
    assert "not an image file" in dialog.table.item(4, 0).toolTip()
    button = dialog.keep_good_button
    assert button.isVisible() and "Add the 3 good image(s)" in button.text()

    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        _click(qtbot, button)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    subject = window.loader.subjects.record(0)
    assert subject.name == "rex" and [i.asset.original_name for i in subject.images] == [g.name for g in good]


def test_removing_a_subject_that_queued_jobs_need_names_them(qtbot: Any, window: Any,
                                                            installed_dreamvideo_weights: str, tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    rex = _add_subject(qtbot, window, write_images(tmp_path / "rex"), "Rex")
    _add_subject(qtbot, window, write_images(tmp_path / "max"), "Max")
    page = window.sidebar.subjects_page
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        session.queue("dreamvideo.subject", kind="train", subject=rex.id, params={"max_train_steps": [2]})
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)
    job_ids = [j.id for j in window.loader.jobs.records()]

    # select Rex and press Delete: the box names both jobs; "Keep it" changes nothing
    window.activateWindow()
    page.list.setFocus()
    qtbot.waitUntil(page.list.hasFocus)
    row = next(r for r in range(page.proxy.rowCount()) if page.proxy.index(r, 0).data() == "Rex")
    rect = page.list.visualRect(page.proxy.index(row, 0))
    qtbot.mouseClick(page.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.selected_subject().name == "Rex"
    qtbot.keyClick(page.list, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: page.remove_box is not None and page.remove_box.isVisible(), timeout=10_000)
    box = page.remove_box
    assert "2 queued job(s) need the subject" in box.text() and all(i in box.text() for i in job_ids)
    _click(qtbot, next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.RejectRole))
    assert window.loader.subjects.rowCount() == 2

    # confirmed: the jobs are cancelled and the subject goes
    page.remove_action.trigger()
    qtbot.waitUntil(lambda: page.remove_box is not box and page.remove_box.isVisible(), timeout=10_000)
    go = page.remove_box.findChild(object, "confirmRemove")
    assert go.text() == "Cancel 2 job(s) and remove"
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        _click(qtbot, go)
    assert [s.name for s in window.loader.subjects.records()] == ["Max"]
    qtbot.waitUntil(lambda: {getattr(j.status, "value", j.status) for j in window.loader.jobs.records()}
                    == {"CANCELLED"}, timeout=10_000)


def test_removing_an_unused_motion_asks_once(qtbot: Any, window: Any, tmp_path: Path) -> None:
    import imageio_ffmpeg
    import numpy as np

    create_project(qtbot, window, tmp_path, template=None)
    video = tmp_path / "squat.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for i in range(4):
        writer.send(np.full((32, 32, 3), i * 50, np.uint8))
    writer.close()
    window.sidebar.setCurrentWidget(window.sidebar.motions_page)
    page = window.sidebar.motions_page
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=20_000, check_params_cb=lambda k: k == "motions"):
        drop_files(page, [video])
    stored = window.loader.motions.record(0).videos[0].path
    page.list.setCurrentIndex(page.proxy.index(0, 0))
    page.remove_action.trigger()
    qtbot.waitUntil(lambda: page.remove_box is not None and page.remove_box.isVisible(), timeout=10_000)
    assert "Remove the motion <b>squat</b>" in page.remove_box.text()
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "motions"):
        _click(qtbot, page.remove_box.findChild(object, "confirmRemove"))
    assert window.loader.motions.rowCount() == 0 and not stored.exists() and video.is_file()  # the project's copy
