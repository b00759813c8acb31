"""Recall settings: an output's (or a queued job's) recipe comes back into the job editor for editing, nothing queued;
edited and queued, the new job differs only where the user changed it. Runs the tint test plugin (no weights) on the
real worker."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guihelpers import create_project, write_images
from PySide6.QtCore import Qt

from sdk.queueing import queue_jobs
from tests.sdk.typed_plugin import tint_registry  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def tint_window(tint_registry: Any, window: Any) -> Any:  # noqa: F811 - the fixture imported above
    assert "tint.paint" in window.registry.generators
    return window


def test_recall_settings_loads_an_output_and_a_queued_job_into_the_editor(qtbot: Any, tint_window: Any,
                                                                          tmp_path: Path) -> None:
    window = tint_window
    session = create_project(qtbot, window, tmp_path / "Tint.vgen", template=None)
    project = session.project
    image = write_images(tmp_path / "pictures", n=1)[0]
    batch = queue_jobs(project, window.registry, "tint.paint", prompts=[("a teal wave", "blurry")], seeds="5",
                       params={"strength": [0.5], "num_frames": [3]}, inputs={"image": str(image)},
                       options={"precision": "fp32", "memory_mode": "low"})
    source = project.job(batch.job_ids[0])
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=120_000):
        window.queue_panel.start_action.trigger()
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 1, timeout=120_000)

    editor = window.editor
    assert editor.select_generator("tint.chain")  # the editor shows something else before the recall
    window.tabs.setCurrentIndex(1)
    gallery = window.gallery
    rect = gallery.view.visualRect(gallery.proxy.index(0, 0))
    qtbot.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    jobs_before = len(project.jobs())
    with qtbot.waitSignal(window.statusBar().messageChanged, timeout=20_000,
                          check_params_cb=lambda text: "nothing was queued" in text):
        qtbot.mouseClick(gallery.buttons["Recall settings"], Qt.MouseButton.LeftButton)

    # generator, parameters, the input image, seed, run options, and the prompt with its negative (added to the list)
    assert editor.spec.id == "tint.paint"
    values = editor.params.values()
    assert values["strength"] == 0.5 and values["num_frames"] == 3
    image_path = Path(editor.inputs["image"].value())
    assert image_path.is_file() and image_path.read_bytes() == image.read_bytes()
    assert editor.seeds.text() == "5"
    assert editor.options_label.isVisible() and "precision fp32" in editor.options_label.text()
    qtbot.waitUntil(lambda: editor.selected_prompts() == [("a teal wave", "blurry")], timeout=10_000)
    assert len(project.jobs()) == jobs_before, "recall queues nothing"
    assert window.editor_dock.isVisible()

    # edit the seed and queue: the new job is the old one with that change
    editor.seeds.selectAll()
    qtbot.keyClicks(editor.seeds, "6")
    with qtbot.waitSignal(session.jobs_queued, timeout=20_000) as queued:
        qtbot.mouseClick(editor.queue_button, Qt.MouseButton.LeftButton)
    again = project.job(queued.args[0].job_ids[0])
    assert again.seed == 6
    for key in ("spec_id", "params", "prompt", "options"):
        assert getattr(again, key) == getattr(source, key), key
    # the job had no adapter; the editor cannot leave that input empty and says "none" (not "latest")
    assert again.inputs == {**source.inputs, "look": "none"}

    # the queue's recall (MainWindow.recall) takes a job that has not rendered yet
    waiting = project.job(queue_jobs(project, window.registry, "tint.paint", prompts=["a red sun"], seeds="9",
                                     params={"strength": [0.25]}, inputs={"image": str(image)}).job_ids[0])
    with qtbot.waitSignal(window.statusBar().messageChanged, timeout=20_000,
                          check_params_cb=lambda text: f"job {waiting.id}" in text):
        window.recall(waiting)
    assert editor.params.values()["strength"] == 0.25 and editor.seeds.text() == "9"
    qtbot.waitUntil(lambda: editor.selected_prompts() == [("a red sun", "")], timeout=10_000)
    assert editor.recalled_options == {k: v for k, v in waiting.options.items() if k in ("precision", "memory_mode")}
