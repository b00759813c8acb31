"""The smaller problems a new user met (issue 11): recent projects that are gone, a prompt joining a selection by
itself, a prompt cut at 77 tokens without a word, a dropped file the window cannot use."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import TINY, create_project, drop_files, write_images
from PySide6.QtCore import Qt


def test_gone_projects_are_not_offered_and_new_project_starts_in_a_folder_that_exists(
        qtbot: Any, window: Any, tmp_path: Path) -> None:
    from app import settings as st

    create_project(qtbot, window, tmp_path / "keep", name="Kept")
    window.close_project()
    gone_parent = tmp_path / "usb" / "projects"
    gone_parent.mkdir(parents=True)
    st.add_recent_project(gone_parent / "Old.vgen")  # a project on a drive that is now unplugged
    st.settings().setValue("last_folder", str(gone_parent))
    gone_parent.rmdir()
    window._update_recent_menu()

    shown = [window.welcome.recent.item(i).text() for i in range(window.welcome.recent.count())]
    assert shown == [str(tmp_path / "keep" / "Kept.vgen")]
    assert [a.text() for a in window.recent_menu.actions()] == [f"&1 {tmp_path / 'keep' / 'Kept.vgen'}"]
    qtbot.mouseClick(window.welcome.new_button, Qt.MouseButton.LeftButton)
    dialog = window.new_dialog
    assert dialog.isVisible() and dialog.folder.text() == str(tmp_path / "usb")  # the nearest folder that exists
    dialog.reject()


def test_a_new_prompt_joins_the_selection_only_when_typed_in_the_editor(
        qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    editor = window.editor
    assert len(editor.selected_prompts()) == 3  # a project's prompts start selected as it opens
    # the user keeps only the first one (a click selects it, a second click on the others would toggle them)
    editor.prompt_view.clearSelection()
    rect = editor.prompt_view.visualRect(window.loader.prompts.index(0, 0))
    qtbot.mouseClick(editor.prompt_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    chosen = editor.selected_prompts()
    assert len(chosen) == 1

    # added in the Prompts tab: it is listed, the editor's selection stays the user's
    page = window.sidebar.prompts_page
    qtbot.keyClicks(page.text, "a kite over the dunes")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "prompts"):
        qtbot.keyClick(page.text, Qt.Key.Key_Return)
    assert window.loader.prompts.rowCount() == 4 and editor.selected_prompts() == chosen
    assert "1 prompt(s)" in editor.grid.text()

    # typed into the editor's own box: that is asking for it
    qtbot.keyClicks(editor.new_prompt, "a lantern in the fog")
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "prompts"):
        qtbot.keyClick(editor.new_prompt, Qt.Key.Key_Return)
    assert editor.selected_prompts() == chosen + [("a lantern in the fog", "")]


def test_a_prompt_over_77_tokens_is_said_after_queueing(qtbot: Any, window: Any, installed_weights: str,
                                                        tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    editor = window.editor
    long_prompt = "a red fox " + " ".join(f"running past tree number {i}" for i in range(30))
    qtbot.keyClicks(editor.new_prompt, long_prompt)
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "prompts"):
        qtbot.keyClick(editor.new_prompt, Qt.Key.Key_Return)
    editor.params.set_values(TINY)
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000) as queued:
        qtbot.mouseClick(editor.queue_button, Qt.MouseButton.LeftButton)
    warning = queued.args[0].warnings[0]
    assert "CLIP tokens" in warning
    message = window.statusBar().currentMessage()
    assert message.startswith("Queued 1 job(s).") and "CLIP tokens" in message and "ignores everything from" in message
    assert window.statusBar().toolTip() == warning  # the full text, however long


def test_dropping_files_the_window_cannot_use_says_so_and_adds_nothing(qtbot: Any, window: Any,
                                                                       tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list")
    with qtbot.waitSignal(window.error_shown, timeout=5_000) as shown:
        drop_files(window, [notes])
    title, message = shown.args
    assert title == "Nothing was added" and "notes.txt cannot be used here" in message and "Drop images" in message
    assert window.sidebar.subjects_page.dialog is None and window.loader.jobs.records() == []

    # images with a stray file: the images make a subject, the stray one is named
    images = write_images(tmp_path / "rex", n=2)
    drop_files(window, [*images, notes])
    assert window.sidebar.subjects_page.dialog.isVisible()
    assert window.sidebar.subjects_page.dialog.table.rowCount() == 2
    assert "notes.txt cannot be used here" in window.statusBar().currentMessage()
    window.sidebar.subjects_page.dialog.reject()
