"""Side-by-side compare plays 2-4 outputs in sync under one scrubber, in a window that leaves the app usable; the
player leaves it usable too. Each video is a square moving one step a frame: the frame a pane shows is read from its
pixels."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gallery_helpers import click, frame_of, item_point, open_project, publish
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from sdk.project import Project


def double_click(qtbot: Any, gallery: Any, job_id: str) -> None:
    """A real double-click: a click, then the second press that Qt delivers as a double-click."""
    viewport, pos = gallery.view.viewport(), item_point(gallery, job_id)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=pos)


def shown_frames(compare: Any) -> list[int]:
    return [frame_of(p.current_image()) for p in compare.panes]


def test_compare_plays_three_outputs_in_sync_with_one_scrubber(qtbot: Any, window: Any, tmp_path: Path) -> None:
    path = tmp_path / "Sweep.vgen"
    with Project.create(path) as p:
        low = publish(p, 1, "a red fox", guidance_scale=7.0)
        high = publish(p, 1, "a red fox", guidance_scale=9.0, colour=(64, 255, 0))
        short = publish(p, 1, "a red fox", n=4, guidance_scale=9.0, colour=(0, 128, 255))
    open_project(qtbot, window, path, 3)
    gallery = window.gallery
    click(qtbot, gallery, short)
    assert not gallery.compare_action.isEnabled(), "one output is nothing to compare"
    click(qtbot, gallery, high, Qt.KeyboardModifier.ControlModifier)
    click(qtbot, gallery, low, Qt.KeyboardModifier.ControlModifier)
    assert gallery.compare_action.isEnabled()

    qtbot.mouseClick(gallery.buttons["Compare"], Qt.MouseButton.LeftButton)
    compare = gallery.compare_window
    assert compare is not None and compare.isVisible()
    qtbot.waitUntil(lambda: compare.is_loaded, timeout=20_000)
    assert [p.frame_count for p in compare.panes] == [4, 8, 8]  # newest first, as the gallery shows them
    captions = [c.text() for c in compare.captions]
    assert "guidance_scale 9" in captions[0] and "num_frames 4" in captions[0]
    assert "guidance_scale 7" in captions[2] and "num_frames 8" in captions[2]

    # not modal: the gallery still takes clicks while it plays
    assert not compare.isModal() and QApplication.activeModalWidget() is None
    assert compare.playing and compare.play_button.text() == "Pause"
    seen: list[tuple[int, list[int]]] = []
    compare.position_changed.connect(lambda tick: seen.append((tick, shown_frames(compare))))
    click(qtbot, gallery, low)
    assert [i.job_id for i in gallery.selected_items()] == [low]
    qtbot.waitUntil(lambda: len({t for t, _ in seen}) >= 5, timeout=20_000)
    for tick, (short_frame, high_frame, low_frame) in seen:
        assert high_frame == low_frame == tick, "the two 8-frame outputs show the same frame at every tick"
        assert short_frame == min(tick, 3), "the shorter one holds its last frame"

    # one play/pause for all; the scrubber moves them together
    qtbot.mouseClick(compare.play_button, Qt.MouseButton.LeftButton)
    assert not compare.playing and compare.play_button.text() == "Play"
    compare.scrubber.setFocus()
    qtbot.keyClick(compare.scrubber, Qt.Key.Key_Home)
    assert compare.position == 0 and shown_frames(compare) == [0, 0, 0]
    qtbot.keyClick(compare.scrubber, Qt.Key.Key_Right)
    qtbot.keyClick(compare.scrubber, Qt.Key.Key_Right)
    assert compare.position == 2 and shown_frames(compare) == [2, 2, 2]
    qtbot.keyClick(compare.scrubber, Qt.Key.Key_End)
    assert compare.position == 7 and shown_frames(compare) == [3, 7, 7]
    assert compare.frame_label.text().startswith("8 / 8")
    # dragging the handle pauses playback and scrubs all of them
    qtbot.keyClick(compare, Qt.Key.Key_Space)
    assert compare.playing
    handle = compare.scrubber.rect().center()
    qtbot.mousePress(compare.scrubber, Qt.MouseButton.LeftButton, pos=handle)
    assert not compare.playing
    qtbot.mouseRelease(compare.scrubber, Qt.MouseButton.LeftButton, pos=handle)
    assert len(set(shown_frames(compare)[1:])) == 1

    compare.close()
    qtbot.waitUntil(lambda: not compare.isVisible())


def test_the_player_is_not_modal(qtbot: Any, window: Any, tmp_path: Path) -> None:
    path = tmp_path / "Two.vgen"
    with Project.create(path) as p:
        first = publish(p, 1, "a red fox")
        second = publish(p, 2, "a paper boat")
    open_project(qtbot, window, path, 2)
    gallery = window.gallery
    double_click(qtbot, gallery, first)
    player = gallery.player
    qtbot.waitUntil(lambda: player.loaded, timeout=20_000)
    assert player.isVisible() and not player.isModal() and QApplication.activeModalWidget() is None
    assert player.player.frame_count == 8

    # the gallery behind it still works: another output opens in a second player
    double_click(qtbot, gallery, second)
    other = gallery.player
    assert other is not player and player.isVisible() and other.isVisible()
    qtbot.waitUntil(lambda: other.loaded, timeout=20_000)
    assert "a paper boat" in other.info.text()
    player.close()
    other.close()
