"""The gallery's "Upscale" (an action a generator offers on outputs: GeneratorSpec.output_action) queues the upscaler
on the selected output in one click; once rendered, the pair shows in the gallery ("from JOB" on the upscale,
"Upscale → JOB" on its source) and "Compare with source" plays them side by side. Runs the tint test plugin
(tint.upscale doubles a video's size; no weights) on the real worker."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gallery_helpers import click, index_of
from guihelpers import create_project, write_images
from PySide6.QtCore import Qt

from app.models.output_model import ChainRole
from sdk.queueing import queue_jobs
from tests.sdk.typed_plugin import tint_registry  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def tint_window(tint_registry: Any, window: Any) -> Any:  # noqa: F811 - the fixture imported above
    assert "tint.upscale" in window.registry.generators
    return window


def test_upscale_from_the_gallery_queues_the_follow_up_and_the_pair_shows(qtbot: Any, tint_window: Any,
                                                                          tmp_path: Path) -> None:
    window = tint_window
    session = create_project(qtbot, window, tmp_path / "Tint.vgen", template=None)
    project = session.project
    image = write_images(tmp_path / "pictures", n=1)[0]
    [source] = queue_jobs(project, window.registry, "tint.paint", prompts=["a teal wave"], seeds="5",
                          params={"num_frames": [3]}, inputs={"image": str(image)}).job_ids
    window.queue_panel.start_action.trigger()
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 1, timeout=120_000)
    window.tabs.setCurrentIndex(1)
    gallery = window.gallery
    upscale = gallery.buttons["Upscale (Tint)"]  # SR600 offers Upscale too: one action per generator
    assert not upscale.isEnabled(), "nothing selected"
    assert gallery.chain.actions["Upscale (Tint)"] in gallery.menu.actions(), "offered in the tile's context menu too"
    assert "Upscale (SR600)" in gallery.chain.actions and "Upscale (Tint)…" in gallery.chain.actions

    click(qtbot, gallery, source)
    assert upscale.isEnabled() and not gallery.chain.compare_action.isEnabled()
    with qtbot.waitSignal(session.jobs_queued, timeout=20_000) as queued:
        qtbot.mouseClick(upscale, Qt.MouseButton.LeftButton)
    up = project.job(queued.args[0].job_ids[0])
    assert (up.spec_id, up.inputs, up.depends_on) == ("tint.upscale", {"video": {"output": source}}, (source,))
    assert (up.prompt, up.seed) == ("a teal wave", 5), "the output's prompt and seed"
    qtbot.waitUntil(lambda: "Queued 1 job" in window.statusBar().currentMessage(), timeout=10_000)

    session.start_queue()  # the queue still runs: it takes the new job (this only makes sure)
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 2, timeout=120_000)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: index_of(gallery, up.id).data(ChainRole) == f"from {source[:8]}", timeout=20_000)
    assert index_of(gallery, source).data(ChainRole) == f"Upscale → {up.id[:8]}"
    assert f"Made from the output of job {source}" in index_of(gallery, up.id).data(Qt.ItemDataRole.ToolTipRole)

    click(qtbot, gallery, up.id)
    assert gallery.chain.compare_action.isEnabled()
    qtbot.mouseClick(gallery.buttons["Compare with source"], Qt.MouseButton.LeftButton)
    compare = gallery.compare_window
    assert compare is not None and compare.isVisible()
    qtbot.waitUntil(lambda: compare.is_loaded, timeout=20_000)
    assert [p.frame_count for p in compare.panes] == [3, 3]
    captions = [c.text() for c in compare.captions]
    assert "Upscale" in captions[0] and f"from {source[:8]}" in captions[1], captions
    compare.close()

    # several outputs at once: one upscale each
    click(qtbot, gallery, source, Qt.KeyboardModifier.ControlModifier)
    assert len(gallery.selected_items()) == 2 and upscale.isEnabled()
    before = len(project.jobs())
    with qtbot.waitSignals([session.jobs_queued, session.jobs_queued], timeout=20_000):
        qtbot.mouseClick(upscale, Qt.MouseButton.LeftButton)
    assert sorted(next(iter(j.inputs["video"].values())) for j in project.jobs()[before:]) == sorted([source, up.id])
