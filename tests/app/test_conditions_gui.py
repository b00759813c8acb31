"""Issue 12 in the window, driven as a user does: Extract conditions… on a motion queues the checked extractors (real
worker, tiny twins) and their condition videos show under the motion and play beside it; an extractor whose weights
are missing says so and opens the model manager on them; the job editor's condition toggles decide the
``conditions`` subset the VideoComposer job is queued with, and its style image has a picker."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, Iterator

import pytest
from guihelpers import create_project, drop_files, job_statuses, write_images
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.plugins.composer_conditions.helpers import make_clip

pytestmark = pytest.mark.slow

PLUGINS = {"composer_conditions": "plugins.composer_conditions", "videocomposer": "plugins.videocomposer"}
SMALL = {"num_frames": 4, "width": 64, "height": 48}


@pytest.fixture
def composer_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The installed plugins with composer_conditions and videocomposer: an editable install made before they joined
    pyproject.toml lacks their entry points, so they are added as a reinstall would (this process and its workers)."""
    from sdk.plugins import load_plugins
    from sdk.testing.install import install_plugin, pythonpath_with

    have = {ep.name for ep in importlib.metadata.entry_points(group="vgen_studio")}
    missing = {k: v for k, v in PLUGINS.items() if k not in have}
    if missing:
        site = install_plugin(tmp_path_factory.mktemp("site"), "vgen-composer-entry", {}, missing)
        monkeypatch.setenv("PYTHONPATH", pythonpath_with(site))
        monkeypatch.syspath_prepend(str(site))
    registry = load_plugins(refresh=True)
    assert "composer_conditions.sketch" in registry.conditions and "videocomposer.t2v" in registry.generators
    yield registry
    monkeypatch.undo()
    load_plugins(refresh=True)


@pytest.fixture
def sketch_weights(composer_registry: Any, tmp_path: Path) -> str:
    """The sketch annotators' tiny twin (VGen's .pth files) installed in this test's models dir."""
    from sdk import weights as w

    spec = composer_registry.weights["composer_conditions.sketch"]
    w.import_weights(spec.id, w.make_tiny(spec, tmp_path / "sketch-tiny", "vgen"))
    return spec.id


@pytest.fixture
def composer_window(composer_registry: Any, window: Any) -> Any:
    assert "composer_conditions.depth" in window.registry.conditions
    return window


def click(qtbot: Any, widget: Any) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def click_row(qtbot: Any, view: Any, row: int, double: bool = False) -> None:
    pos = view.visualRect(view.model().index(row, 0)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    if double:
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def type_number(qtbot: Any, spin: Any, value: int) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, str(value))
    qtbot.keyClick(spin, Qt.Key.Key_Tab)
    assert spin.value() == value


def add_motion(qtbot: Any, window: Any, tmp_path: Path, name: str = "walk") -> Any:
    """Drop a clip on the Motions page (its tab clicked) and select the motion with the mouse."""
    sidebar, page = window.sidebar, window.sidebar.motions_page
    click_tab = sidebar.tabBar().tabRect(sidebar.indexOf(page)).center()
    qtbot.mouseClick(sidebar.tabBar(), Qt.MouseButton.LeftButton, pos=click_tab)
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=20_000, check_params_cb=lambda k: k == "motions"):
        drop_files(page, [make_clip(tmp_path / f"{name}.mp4")])
    qtbot.waitUntil(lambda: page.proxy.rowCount() == 1, timeout=10_000)
    click_row(qtbot, page.list, 0)
    qtbot.waitUntil(lambda: page.selected_motion() is not None, timeout=5_000)
    return page


def open_extract_dialog(qtbot: Any, window: Any, page: Any) -> Any:
    strip = page.conditions
    assert "no conditions yet" in strip.title.text()
    click(qtbot, strip.extract_button)
    dialog = window.conditions_ui.dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.installed is not None, timeout=10_000)  # the installed weights were read
    return dialog


def test_extract_conditions_on_a_motion_queues_the_checked_extractors_and_shows_their_videos(
        qtbot: Any, composer_window: Any, sketch_weights: str, tmp_path: Path) -> None:
    window = composer_window
    create_project(qtbot, window, tmp_path / "Compose.vgen", template=None)
    page = add_motion(qtbot, window, tmp_path)
    dialog = open_extract_dialog(qtbot, window, page)
    assert "motion walk" in dialog.windowTitle()
    assert set(dialog.checks) == set(window.registry.conditions)  # every extractor the plugins register
    assert "no weights needed" in dialog.weights_labels["composer_conditions.local_image"].text()
    assert "installed" in dialog.weights_labels["composer_conditions.sketch"].text()
    assert not dialog.queue_button.isEnabled(), "nothing checked yet"
    # the shared sampling settings, with VGen's defaults
    assert {k: s.value() for k, s in dialog.settings.items()} == {"num_frames": 16, "sample_fps": 3, "start_frame": 0,
                                                                   "width": 448, "height": 256}

    click(qtbot, dialog.checks["composer_conditions.local_image"])
    click(qtbot, dialog.checks["composer_conditions.sketch"])
    for name, value in SMALL.items():
        type_number(qtbot, dialog.settings[name], value)
    assert dialog.queue_button.isEnabled() and dialog.problem_label.isHidden()
    with qtbot.waitSignal(window.session.jobs_queued, timeout=20_000) as queued:
        click(qtbot, dialog.start_button)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5_000)
    jobs = [window.session.project.job(j) for j in queued.args[0].job_ids]
    assert sorted(j.spec_id for j in jobs) == ["composer_conditions.local_image", "composer_conditions.sketch"]
    assert all(j.kind == "extract" and j.params["num_frames"] == 4 and (j.params["width"], j.params["height"]) ==
               (64, 48) and j.params["sample_fps"] == 3 for j in jobs)

    # rendered by the real worker: the two condition videos show under the motion, by kind
    qtbot.waitUntil(lambda: job_statuses(window).count("SUCCEEDED") == 2, timeout=240_000)
    strip = page.conditions
    qtbot.waitUntil(lambda: strip.proxy.rowCount() == 2, timeout=20_000)
    assert sorted(strip.proxy.index(r, 0).data() for r in range(2)) == ["local_image", "sketch"]
    assert "Conditions of <b>walk</b> (2)" in strip.title.text()
    qtbot.waitUntil(lambda: all(not strip.proxy.index(r, 0).data(Qt.ItemDataRole.DecorationRole).isNull()
                                for r in range(2)), timeout=20_000)

    # double-click one: the motion's video and its conditions play side by side
    row = [strip.proxy.index(r, 0).data() for r in range(2)].index("sketch")
    click_row(qtbot, strip.view, row, double=True)
    compare = window.conditions_ui.compare_window
    assert compare is not None and compare.isVisible()
    qtbot.waitUntil(lambda: compare.is_loaded, timeout=30_000)
    assert [p.source.badge for p in compare.panes] == ["source", "sketch", "local_image"]
    assert [p.frame_count for p in compare.panes] == [24, 4, 4]
    assert all(p.clip.error == "" for p in compare.panes)
    assert compare.panes[1].current_image().size().toTuple() == (64, 48)
    compare.close()


def test_an_extractor_without_its_weights_says_so_and_opens_the_model_manager(qtbot: Any, composer_window: Any,
                                                                              tmp_path: Path) -> None:
    window = composer_window
    create_project(qtbot, window, tmp_path / "Compose.vgen", template=None)
    page = add_motion(qtbot, window, tmp_path)
    dialog = open_extract_dialog(qtbot, window, page)
    depth = "composer_conditions.depth"
    wid = window.registry.conditions[depth].default_weights
    assert "not installed" in dialog.weights_labels[depth].text() and wid in dialog.weights_labels[depth].text()

    click(qtbot, dialog.checks[depth])
    text = dialog.problem_label.text()
    assert dialog.problem_label.isVisible() and "not installed" in text and f"vgen models fetch {wid}" in text
    assert not dialog.queue_button.isEnabled() and not dialog.start_button.isEnabled()
    assert dialog.models_button.isVisible()

    click(qtbot, dialog.models_button)
    manager = window.plugins_dialog
    assert manager is not None and manager.isVisible() and manager.tabs.tabText(manager.tabs.currentIndex()) == "Models"
    qtbot.waitUntil(lambda: manager.models.selected_id() == wid, timeout=10_000)
    assert manager.models.state_of(wid) == "not installed"
    manager.reject()
    # unchecked again, the dialog can queue the rest
    click(qtbot, dialog.checks[depth])
    click(qtbot, dialog.checks["composer_conditions.local_image"])
    assert dialog.queue_button.isEnabled()
    dialog.reject()


def extract_in_the_project(registry: Any, path: Path, tmp_path: Path) -> None:
    """A project with a motion and its local-image, sketch and single-sketch conditions (real worker)."""
    from sdk.project import Project
    from sdk.queueing import queue_jobs
    from sdk.service import RenderService

    p = Project.create(path)
    try:
        p.add_motion("walk", [make_clip(tmp_path / "walk.mp4")])
        for kind in ("local_image", "sketch", "single_sketch"):
            queue_jobs(p, registry, f"composer_conditions.{kind}", inputs={"video": "walk"},
                       params={k: [v] for k, v in SMALL.items()})
        stats = RenderService(p, registry=registry).run(until_empty=True)
        assert stats["succeeded"] == 3, [(j.spec_id, j.error_message) for j in p.jobs()]
    finally:
        p.close()


def choose_first_condition(qtbot: Any, widget: Any) -> None:
    combo = widget.combo
    combo.setFocus()
    while widget.value() is None:
        qtbot.keyClick(combo, Qt.Key.Key_Down)


def test_the_editor_toggles_choose_the_conditions_subset_of_the_queued_job(qtbot: Any, composer_window: Any,
                                                                           sketch_weights: str, tmp_path: Path) -> None:
    from sdk import weights as w

    window = composer_window
    spec = window.registry.generators["videocomposer.t2v"]
    w.import_weights(spec.default_weights,
                     w.make_tiny(window.registry.weights[spec.default_weights], tmp_path / "vc-tiny", "vgen"))
    path = tmp_path / "Compose.vgen"
    extract_in_the_project(window.registry, path, tmp_path)  # the sketches need sketch_weights
    with qtbot.waitSignal(window.project_changed, timeout=30_000):
        window.open_project(path)
    editor = window.editor
    qtbot.waitUntil(lambda: window.loader.conditions.rowCount() == 3, timeout=20_000)
    assert editor.select_generator("videocomposer.t2v")
    toggles = editor.condition_toggles
    assert toggles.isVisibleTo(editor)
    assert list(toggles.buttons) == ["depth", "sketch", "single_sketch", "motion", "local_image", "mask", "canny"]
    assert not any(b.isEnabled() for b in toggles.buttons.values()), "no condition chosen yet"

    # the style image has a picker: an image dropped on it shows its thumbnail
    style = editor.inputs["style_image"]
    assert type(style).__name__ == "FileInput"
    qtbot.waitUntil(lambda: style.isVisibleTo(editor), timeout=5_000)  # a row added to a shown form shows next turn
    image = write_images(tmp_path / "style", n=1)[0]
    drop_files(style, [image])
    qtbot.waitUntil(style.has_thumbnail, timeout=10_000)

    # choosing a condition in each input enables (and checks) its toggle, with the condition's thumbnail
    for name in ("sketch", "single_sketch", "local_image"):
        choose_first_condition(qtbot, editor.inputs[name])
    buttons = toggles.buttons
    assert [n for n, b in buttons.items() if b.isEnabled()] == ["sketch", "single_sketch", "local_image"]
    assert toggles.checked() == ["sketch", "single_sketch", "local_image"]
    assert editor.params.values()["conditions"] == "", "all chosen conditions take part"
    qtbot.waitUntil(lambda: not buttons["sketch"].icon().isNull(), timeout=20_000)

    # unchecking sketch leaves it out of the job
    click(qtbot, buttons["sketch"])
    assert editor.params.values()["conditions"] == "single_sketch+local_image"
    qtbot.keyClicks(editor.new_prompt, "a dancer in the rain")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "prompts"):
        qtbot.keyClick(editor.new_prompt, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: editor.queue_button.isEnabled(), timeout=10_000)
    with qtbot.waitSignal(window.session.jobs_queued, timeout=30_000) as queued:
        click(qtbot, editor.queue_button)
    job = window.session.project.job(queued.args[0].job_ids[0])
    assert job.params["conditions"] == "local_image+single_sketch"  # stored in VGen's order
    assert set(job.inputs) >= {"sketch", "single_sketch", "local_image", "style_image"}
    first = job

    # every toggle off: text (and style) only
    for name in ("single_sketch", "local_image"):
        click(qtbot, buttons[name])
    assert editor.params.values()["conditions"] == "none" and toggles.checked() == []
    with qtbot.waitSignal(window.session.jobs_queued, timeout=30_000) as queued:
        click(qtbot, editor.queue_button)
    assert window.session.project.job(queued.args[0].job_ids[0]).params["conditions"] == "none"

    # a grid typed into the parameter is kept: the toggles step aside and say so
    param = editor.params.editors["conditions"]
    param.selectAll()
    qtbot.keyClicks(param, "sketch,local_image")
    click(qtbot, buttons["sketch"])
    assert param.text() == "sketch,local_image" and "grid" in toggles.note.text()

    # the first job's settings recalled: its subset shows on the toggles again
    window.recall(first)
    qtbot.waitUntil(lambda: editor.params.values()["conditions"] == "local_image+single_sketch", timeout=20_000)
    qtbot.waitUntil(lambda: toggles.checked() == ["single_sketch", "local_image"], timeout=5_000)
    assert buttons["sketch"].isEnabled() and not buttons["sketch"].isChecked()
    QApplication.processEvents()


def test_extract_conditions_on_an_output_from_the_gallery_and_play_them_beside_it(qtbot: Any, composer_window: Any,
                                                                                  tmp_path: Path) -> None:
    from gallery_helpers import click as click_output
    from gallery_helpers import open_project, publish

    from sdk.project import Project

    window = composer_window
    path = tmp_path / "Gallery.vgen"
    with Project.create(path) as p:
        job_id = publish(p, 1, "a red square", n=8)
    session = open_project(qtbot, window, path, outputs=1)
    gallery, ui = window.gallery, window.conditions_ui
    extract, play = gallery.buttons["Extract conditions…"], gallery.buttons["Play with conditions"]
    assert not ui.gallery_extract.isEnabled(), "nothing selected"
    click_output(qtbot, gallery, job_id)
    assert ui.gallery_extract.isEnabled() and not ui.gallery_conditions.isEnabled(), "no conditions yet"

    click(qtbot, extract)
    dialog = ui.dialog
    assert dialog is not None and dialog.isVisible() and job_id[:8] in dialog.windowTitle()
    qtbot.waitUntil(lambda: dialog.installed is not None, timeout=10_000)
    click(qtbot, dialog.checks["composer_conditions.local_image"])
    for name, value in {"num_frames": 3, "width": 32, "height": 32}.items():
        type_number(qtbot, dialog.settings[name], value)
    with qtbot.waitSignal(session.jobs_queued, timeout=20_000) as queued:
        click(qtbot, dialog.start_button)
    extract_job = session.project.job(queued.args[0].job_ids[0])
    assert extract_job.kind == "extract" and extract_job.depends_on == (job_id,)
    qtbot.waitUntil(lambda: job_statuses(window).count("SUCCEEDED") == 2, timeout=240_000)
    assert session.project.conditions(source={"output": job_id})[0].kind == "local_image"

    # the condition (itself an output in the gallery now) plays beside the output it came from
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: gallery.proxy.rowCount() == 2, timeout=20_000)
    click_output(qtbot, gallery, job_id)
    qtbot.waitUntil(ui.gallery_conditions.isEnabled, timeout=20_000)
    click(qtbot, play)
    compare = ui.compare_window
    qtbot.waitUntil(lambda: compare.is_loaded, timeout=30_000)
    assert [p.source.badge for p in compare.panes] == ["source", "local_image"]
    assert [p.frame_count for p in compare.panes] == [8, 3]
    compare.close()
    # an extract job's output is a condition already: nothing to extract from it
    click_output(qtbot, gallery, extract_job.id)
    assert not ui.gallery_extract.isEnabled()
