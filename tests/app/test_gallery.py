"""The gallery as a user meets it: export names, newest first, method badges, stars, multi-select, delete and undo.
Outputs are published through the real staging → outputs path (real ffmpeg, real SQLite) before the project opens."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gallery_helpers import click, index_of, open_project, publish, shown_job_ids, star_point
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QStyleOptionViewItem

from app.models.output_model import MethodRole, StarredRole
from sdk.project import Project


def export_as(qtbot: Any, window: Any, folder: Path, typed: str) -> None:
    """Export… with the dialog's default filter (MP4) left as it is, a name typed, Enter pressed."""
    gallery = window.gallery
    qtbot.mouseClick(gallery.buttons["Export…"], Qt.MouseButton.LeftButton)
    dialog = gallery.export_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.selectedNameFilter() == "MP4 video (*.mp4)"
    dialog.setDirectory(str(folder))  # the user browses to the folder
    name = dialog.findChild(QLineEdit, "fileNameEdit")
    name.selectAll()
    qtbot.keyClicks(name, typed)
    qtbot.keyClick(name, Qt.Key.Key_Return)


def test_export_writes_the_format_the_typed_name_asks_for(qtbot: Any, window: Any, tmp_path: Path) -> None:
    with Project.create(tmp_path / "Fox.vgen") as p:
        job = publish(p, 1, "a red fox")
    open_project(qtbot, window, tmp_path / "Fox.vgen", 1)
    click(qtbot, window.gallery, job)

    # "fox.gif" with the MP4 filter: a GIF (it used to be an MP4 named fox.gif, reported as a success)
    with qtbot.waitSignal(window.statusBar().messageChanged, timeout=20_000,
                          check_params_cb=lambda text: text.startswith("Exported to")):
        export_as(qtbot, window, tmp_path, "fox.gif")
    gif = tmp_path / "fox.gif"
    assert gif.read_bytes()[:6] == b"GIF89a"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 8

    # no extension: the filter's
    with qtbot.waitSignal(window.statusBar().messageChanged, timeout=20_000,
                          check_params_cb=lambda text: text.startswith("Exported to")):
        export_as(qtbot, window, tmp_path, "fox-again")
    assert (tmp_path / "fox-again.mp4").read_bytes()[4:8] == b"ftyp"

    # an extension it cannot write: refused, saying which and what to type, and nothing is written
    with qtbot.waitSignal(window.error_shown, timeout=10_000) as shown:
        export_as(qtbot, window, tmp_path, "fox.avi")
    title, message = shown.args
    assert title == "Cannot export" and "fox.avi" in message and ".avi" in message
    assert not (tmp_path / "fox.avi").exists()
    assert ".gif" in window._message_box.informativeText()


def test_newest_first_badges_stars_multi_select_and_delete_with_undo(qtbot: Any, window: Any, tmp_path: Path) -> None:
    path = tmp_path / "Gallery.vgen"
    with Project.create(path) as p:
        first = publish(p, 1, "a red fox")
        second = publish(p, 2, "a paper boat", spec_id="i2vgen_xl.i2v")
        third = publish(p, 3, "a red fox", guidance_scale=7.0)
    session = open_project(qtbot, window, path, 3)
    gallery = window.gallery
    assert shown_job_ids(gallery) == [third, second, first], "the newest output comes first"

    # each thumbnail carries its method as a badge, painted over its top-left corner
    qtbot.waitUntil(lambda: all(window.loader.thumbs.is_loaded(i.output.thumb_path)
                                for i in window.loader.outputs.records()), timeout=10_000)
    shot = gallery.view.viewport().grab().toImage()
    for job, method in ((second, "I2VGen-XL"), (third, "ModelScope T2V")):
        index = index_of(gallery, job)
        assert index.data(MethodRole) == method
        option = QStyleOptionViewItem()
        gallery.view.initViewItemOption(option)
        option.rect = gallery.view.visualRect(index)
        corner = gallery.delegate.icon_rect(option, index).topLeft()
        badge = shot.pixelColor(corner.x() + 4, corner.y() + 4)
        assert badge.blue() > 150 and badge.red() < 80, f"no badge on {method}: {badge.name()}"

    # a click on a thumbnail's star stars it (kept in the project); the Starred filter shows only it
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=10_000):
        qtbot.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=star_point(gallery, second))
    assert session.project.output(second).starred and index_of(gallery, second).data(StarredRole) is True
    qtbot.mouseClick(gallery.starred_only, Qt.MouseButton.LeftButton)
    assert shown_job_ids(gallery) == [second]
    qtbot.mouseClick(gallery.starred_only, Qt.MouseButton.LeftButton)
    assert len(shown_job_ids(gallery)) == 3

    # Ctrl+click selects several: Compare and Delete follow the selection
    click(qtbot, gallery, first)
    click(qtbot, gallery, third, Qt.KeyboardModifier.ControlModifier)
    assert [i.job_id for i in gallery.selected_items()] == [third, first]
    assert gallery.compare_action.isEnabled() and not gallery.play_action.isEnabled()
    assert gallery.buttons["Delete"].text() == "Delete 2 outputs"

    # the Delete key deletes them; the undo bar brings them back, files and all
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=10_000):
        qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    assert shown_job_ids(gallery) == [second]
    assert gallery.toast.isVisible() and gallery.toast.label.text().startswith("Deleted 2 outputs.")
    assert (path / ".trash" / first / "video.mp4").is_file() and not (path / "outputs" / first).exists()
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=10_000):
        qtbot.mouseClick(gallery.toast.button, Qt.MouseButton.LeftButton)
    assert shown_job_ids(gallery) == [third, second, first] and not gallery.toast.isVisible()
    assert (path / "outputs" / first / "video.mp4").is_file()

    # once the undo expires, the delete is final
    gallery.undo_seconds = 0.2
    click(qtbot, gallery, first)
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=10_000):
        qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: not gallery.toast.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: not (path / ".trash" / first).exists(), timeout=10_000)
    assert session.project.info()["outputs"] == 2

    # closing the project makes a delete still undoable final too
    click(qtbot, gallery, third)
    with qtbot.waitSignal(window.loader.outputs_loaded, timeout=10_000):
        qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    window.close_project()
    with Project.open(path) as p:
        assert [o.job_id for o in p.outputs()] == [second] and p.info()["outputs"] == 1
        assert p.output(second).starred
    assert list((path / ".trash").iterdir()) == []


def test_export_names_typed_extension_wins_else_the_filter(tmp_path: Path) -> None:
    import pytest

    from app.widgets.gallery import export_target
    from sdk.errors import InvalidRequest

    mp4, gif, png = "MP4 video (*.mp4)", "Animated GIF (*.gif)", "PNG frames (a folder)"
    assert export_target(tmp_path / "fox.gif", mp4) == (tmp_path / "fox.gif", "gif")
    assert export_target(tmp_path / "fox.WEBP", mp4) == (tmp_path / "fox.WEBP", "webp")
    assert export_target(tmp_path / "fox.mp4", gif) == (tmp_path / "fox.mp4", "mp4")
    assert export_target(tmp_path / "fox", gif) == (tmp_path / "fox.gif", "gif")
    assert export_target(tmp_path / "fox.png", mp4) == (tmp_path / "fox", "png"), "PNG frames go into a folder"
    assert export_target(tmp_path / "frames", png) == (tmp_path / "frames", "png")
    with pytest.raises(InvalidRequest, match=r"fox\.mov.*\.mov") as err:
        export_target(tmp_path / "fox.mov", mp4)
    assert err.value.field == "dest" and ".gif" in err.value.hint
