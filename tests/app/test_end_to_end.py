"""A person's whole path through the app, on the real worker with tiny weights (no sleeps)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guihelpers import create_project, drop_files, job_statuses, set_tiny_params, write_images

pytestmark = pytest.mark.slow


def test_new_project_subject_prompt_two_jobs_to_the_gallery(qtbot: Any, window: Any, installed_weights: str,
                                                            tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path)
    assert window.stack.currentIndex() == 1, "the workspace replaces the welcome page"
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)  # the demo template's prompts
    assert window.windowTitle().startswith("Test")

    # add a subject by dropping image files on the Subjects tab
    images = write_images(tmp_path / "drop")
    drop_files(window.sidebar.subjects_page, images)
    dialog = window.sidebar.subjects_page.dialog
    assert dialog is not None and dialog.isVisible()
    dialog.name.setText("Rex")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        dialog.accept()
    subject = window.loader.subjects.record(0)
    assert subject.name == "Rex" and subject.token == "<rex>" and len(subject.images) == 3
    qtbot.waitUntil(lambda: window.sidebar.subjects_page.images.rowCount() == 3)

    # add a prompt in the Prompts tab: it appears, its token is known, and the editor selects it
    page = window.sidebar.prompts_page
    page.text.setText("a photo of <rex> surfing")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "prompts"):
        page._on_add_clicked()
    assert window.loader.prompts.rowCount() == 4
    assert "<rex>" in window.loader.prompts.tokens

    # queue two jobs: one prompt × seeds 1,2, and start the queue
    window.editor.select_prompt_text("a photo of <rex> surfing")
    set_tiny_params(window)
    window.editor.seeds.setText("1,2")
    assert "2 job(s)" in window.editor.grid.text()
    with qtbot.waitSignal(session.jobs_queued, timeout=10_000):
        assert window.editor.submit(start=True)
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)

    # a running job's preview plays in the live preview
    qtbot.waitUntil(lambda: window.preview.player.frame_count > 0, timeout=120_000)
    assert window.preview.total == 2

    qtbot.waitUntil(lambda: job_statuses(window) == ["SUCCEEDED", "SUCCEEDED"], timeout=120_000)
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 2, timeout=10_000)
    items = window.loader.outputs.records()
    assert sorted(i.job.seed for i in items) == [1, 2]
    assert all(i.output.video_path.is_file() and i.job.prompt == "a photo of <rex> surfing" for i in items)

    # the gallery shows thumbnails, filters by prompt, and plays an output
    window.tabs.setCurrentIndex(1)
    gallery = window.gallery
    qtbot.waitUntil(lambda: all(window.loader.thumbs.is_loaded(i.output.thumb_path) for i in items), timeout=10_000)
    gallery.prompt.setCurrentIndex(gallery.prompt.findData("a photo of <rex> surfing"))
    assert gallery.proxy.rowCount() == 2
    gallery.view.setCurrentIndex(gallery.proxy.index(0, 0))
    player = gallery.play_selected()
    qtbot.waitUntil(lambda: player.loaded, timeout=20_000)
    assert player.player.frame_count == 4
    player.close()

    # export as GIF (in the background) and as PNG frames
    exported: list[Path] = []
    session.export(items[0].output.dir, tmp_path / "out.gif", "gif", exported.append)
    session.export(items[0].output.dir, tmp_path / "frames", "png", exported.append)
    qtbot.waitUntil(lambda: len(exported) == 2, timeout=20_000)
    assert (tmp_path / "out.gif").stat().st_size > 0 and len(list((tmp_path / "frames").glob("*.png"))) == 4

    # an output MP4 dropped on the window queues its recipe again (exactly: one prompt, same seed and parameters)
    first = items[0]
    with qtbot.waitSignal(session.jobs_queued, timeout=20_000):
        drop_files(window, [first.output.video_path])
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 3, timeout=10_000)
    again = window.loader.jobs.records()[-1]
    assert again.seed == first.job.seed and again.params == first.job.params and again.prompt == first.job.prompt
    assert again.inputs == first.job.inputs and again.options == first.job.options
    assert again.weights == first.job.weights
