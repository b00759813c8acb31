"""The job editor builds its inputs from the generator's declared fields, as a user meets them: an image dropped on
its picker, an earlier output chosen from a list, subjects and adapters from the project. A job that takes another
job's output shows in the queue as waiting for it. Runs a small installed plugin with typed inputs (no weights)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guihelpers import create_project, drop_files, job_statuses, write_images
from PySide6.QtCore import Qt

from app.models.queue_model import JobTableModel, WaitingRole
from sdk.queueing import queue_jobs
from tests.sdk.typed_plugin import tint_registry  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def tint_window(tint_registry: Any, window: Any) -> Any:  # noqa: F811 - the fixture imported above
    """The main window with the tint plugin installed (plugins are loaded after it is)."""
    assert "tint.paint" in window.registry.generators
    return window


def queue_with_button(qtbot: Any, window: Any) -> Any:
    with qtbot.waitSignal(window.session.jobs_queued, timeout=20_000) as queued:
        qtbot.mouseClick(window.editor.queue_button, Qt.MouseButton.LeftButton)
    return window.session.project.job(queued.args[0].job_ids[0])


def status_cell(window: Any, job_id: str) -> Any:
    model = window.loader.jobs
    return model.index(model.row_of(job_id), JobTableModel.STATUS)


def test_inputs_follow_the_declared_fields_and_a_job_waits_for_the_output_it_takes(qtbot: Any, tint_window: Any,
                                                                                  tmp_path: Path) -> None:
    window = tint_window
    create_project(qtbot, window, tmp_path / "Tint.vgen", template=None)
    editor = window.editor
    assert editor.select_generator("tint.paint")
    assert list(editor.inputs) == ["image", "video", "subject", "look"]
    form = editor.inputs_form
    labels = [form.labelForField(w).text() for w in editor.inputs.values()]
    assert labels == ["Image", "Video (optional)", "Subject (optional)", "Look (optional)"]
    assert editor.prompt_widget.isVisibleTo(editor), "tint.paint takes text: the prompt list shows"

    # a prompt typed into the editor is added and selected; the required image still blocks queueing, by name
    qtbot.keyClicks(editor.new_prompt, "a teal wave")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "prompts"):
        qtbot.keyClick(editor.new_prompt, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: editor.selected_prompts() == [("a teal wave", "")])
    assert "Image: choose an image file" in editor.problem_label.text() and not editor.queue_button.isEnabled()

    # an image dropped on its picker: its path, a thumbnail, and the job can be queued
    image = write_images(tmp_path / "pictures", n=1)[0]
    drop_files(editor.inputs["image"], [image])
    assert editor.inputs["image"].value() == str(image)
    qtbot.waitUntil(editor.inputs["image"].has_thumbnail, timeout=10_000)
    assert editor.queue_button.isEnabled() and editor.problem_label.text() == ""
    first = queue_with_button(qtbot, window)
    assert first.prompt == "a teal wave" and set(first.inputs) == {"image", "look"} and first.inputs["look"] == "latest"

    # a generator that takes only an output: no prompt list; the queued job is offered, and the new job waits for it
    assert editor.select_generator("tint.chain")
    assert not editor.prompt_widget.isVisibleTo(editor)
    assert list(editor.inputs) == ["source", "edges"]
    qtbot.waitUntil(lambda: first.id in editor.inputs["source"].combo.keys(), timeout=10_000)
    assert editor.inputs["source"].value() == first.id and editor.inputs["edges"].value() is None
    chained = queue_with_button(qtbot, window)
    assert chained.depends_on == (first.id,)
    qtbot.waitUntil(lambda: window.loader.jobs.row_of(chained.id) is not None, timeout=10_000)
    cell = status_cell(window, chained.id)
    assert cell.data() == "Waiting" and cell.data(WaitingRole) == [first.id]
    assert f"waits for job {first.id}" in window.loader.jobs.index(cell.row(), JobTableModel.SEED).data(
        Qt.ItemDataRole.ToolTipRole)

    # rendered: the wait ends, and the finished output is offered to a video input with its thumbnail
    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        window.queue_panel.start_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["SUCCEEDED", "SUCCEEDED"], timeout=120_000)
    assert status_cell(window, chained.id).data() == "Done" and status_cell(window, chained.id).data(WaitingRole) == []
    assert editor.select_generator("tint.paint")
    assert editor.inputs["image"].value() == str(image), "the image stays when the generator changes"
    video = editor.inputs["video"]
    qtbot.waitUntil(lambda: first.id in video.outputs.combo.keys(), timeout=10_000)
    assert video.file.isVisibleTo(video), "a video file is the default"
    combo = video.outputs.combo
    combo.setFocus()
    while video.value() != first.id:
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: not combo.itemIcon(combo.currentIndex()).isNull(), timeout=10_000)
    assert not video.file.isVisibleTo(video)
    assert editor.request()["inputs"]["video"] == first.id


def test_the_gallery_requeues_an_output_exactly(qtbot: Any, tint_window: Any, tmp_path: Path) -> None:
    window = tint_window
    session = create_project(qtbot, window, tmp_path / "Tint.vgen", template=None)
    project = session.project
    image = write_images(tmp_path / "pictures", n=1)[0]
    batch = queue_jobs(project, window.registry, "tint.paint", prompts=[("a teal wave", "blurry")], seeds="5",
                       inputs={"image": str(image)}, options={"precision": "fp32", "memory_mode": "low"})
    source = project.job(batch.job_ids[0])
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=120_000):
        window.queue_panel.start_action.trigger()
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 1, timeout=120_000)

    window.tabs.setCurrentIndex(1)
    gallery = window.gallery
    gallery.view.setCurrentIndex(gallery.proxy.index(0, 0))
    with qtbot.waitSignal(session.jobs_queued, timeout=20_000) as queued:
        gallery.requeue_action.trigger()
    again = project.job(queued.args[0].job_ids[0])
    for key in ("spec_id", "params", "prompt", "seed", "inputs", "weights"):
        assert getattr(again, key) == getattr(source, key), key
    assert again.params["negative_prompt"] == "blurry" and again.options["memory_mode"] == "low"


def test_subjects_adapters_and_required_outputs_are_offered_from_the_project(qtbot: Any, tint_window: Any,
                                                                            tmp_path: Path) -> None:
    window = tint_window
    session = create_project(qtbot, window, tmp_path / "Tint.vgen", template=None)
    editor = window.editor
    assert editor.select_generator("tint.chain")
    assert "Source: render or queue a video first" in editor.problem_label.text()
    assert not editor.start_button.isEnabled()
    assert editor.inputs["edges"].combo.keys() == [None], "no conditions yet: only (none)"

    assert editor.select_generator("tint.paint")
    subject = editor.inputs["subject"]
    assert subject.combo.keys() == [None] and subject.combo.currentText() == "(none)"
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=20_000, check_params_cb=lambda k: k == "subjects"):
        session.add_subject("Rex", write_images(tmp_path / "rex"))
    qtbot.waitUntil(lambda: len(subject.combo.keys()) == 2)
    rex = window.loader.subjects.record(0)
    subject.combo.setFocus()
    qtbot.keyClick(subject.combo, Qt.Key.Key_Down)
    assert subject.value() == rex.id and subject.combo.currentText() == "Rex"
    qtbot.waitUntil(lambda: not subject.combo.itemIcon(1).isNull(), timeout=10_000)
    look = editor.inputs["look"]
    assert look.combo.keys() == ["latest", "none"] and look.value() == "latest"
    look.combo.setFocus()
    qtbot.keyClick(look.combo, Qt.Key.Key_Down)
    assert editor.request()["inputs"] == {"subject": rex.id, "look": "none"}
