"""Bug 7 of issue 11: the window is usable at 1024×700. The queue keeps its start button, its state and its filter;
the job editor never scrolls sideways (at 1024 or 1600 px, for every generator and trainer); the project sidebar is
one click away (a dock tab); widening splits the docks again; toolbar actions that do not fit sit in the » menu."""
from __future__ import annotations

from typing import Any

import pytest
from guihelpers import create_project
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QTabBar, QToolBar, QToolButton, QWidget

from app.layout import COMPACT_WIDTH


def resize(qtbot: Any, window: Any, width: int, height: int) -> None:
    window.resize(width, height)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (width, height), timeout=5_000)
    QApplication.processEvents()  # the docks and the splitter settle


def on_screen(window: Any, widget: QWidget) -> bool:
    """Shown, with a size, and entirely inside the window (not scrolled away, not behind another tab)."""
    if not widget.isVisible() or widget.width() <= 0 or widget.height() <= 0:
        return False
    top_left = widget.mapTo(window, QPoint(0, 0))
    return window.rect().contains(QRect(top_left, widget.size()))


def test_the_window_is_usable_at_1024_by_700(qtbot: Any, window: Any, tmp_path: Any) -> None:
    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    assert window.minimumSizeHint().width() <= 1024  # was 1310: a window manager could not make it narrower
    resize(qtbot, window, 1024, 700)

    panel, editor = window.queue_panel, window.editor
    for name, widget in (("queue start button", panel.start_button), ("queue state (Paused)", panel.state_label),
                         ("job filter", panel.filter), ("queue table", panel.view), ("live preview", window.preview),
                         ("generator", editor.generator), ("prompt list", editor.prompt_view),
                         ("Queue button", editor.queue_button), ("Queue & start button", editor.start_button)):
        assert on_screen(window, widget), f"{name} is not reachable at 1024×700"
    assert panel.state_label.text() == "Paused"
    qtbot.keyClicks(panel.filter, "fox")  # the filter takes typing
    qtbot.waitUntil(lambda: panel.proxy.rowCount() == 0, timeout=5_000)
    assert not editor.scroll.horizontalScrollBar().isVisible()
    assert not editor.prompt_view.horizontalScrollBar().isVisible()  # long prompts are elided, not scrolled

    # the project sidebar shares the editor's dock column: its tab brings it forward
    assert window.project_dock in window.tabifiedDockWidgets(window.editor_dock)
    bars = [b for b in window.findChildren(QTabBar) if "Project" in [b.tabText(i) for i in range(b.count())]]
    assert len(bars) == 1 and on_screen(window, bars[0])
    bar = bars[0]
    index = [bar.tabText(i) for i in range(bar.count())].index("Project")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    qtbot.waitUntil(lambda: on_screen(window, window.sidebar), timeout=5_000)

    # queue actions that do not fit are in the toolbar's » menu, never lost
    toolbar = panel.findChild(QToolBar)
    hidden = [a for a in toolbar.actions() if not a.isSeparator() and
              (toolbar.widgetForAction(a) is None or not toolbar.widgetForAction(a).isVisible())]
    if hidden:
        extension = [b for b in toolbar.findChildren(QToolButton) if b.objectName() == "qt_toolbar_ext_button"]
        assert extension and on_screen(window, extension[0])


def test_widening_splits_the_docks_again_and_puts_the_preview_beside_the_queue(qtbot: Any, window: Any,
                                                                               tmp_path: Any) -> None:
    create_project(qtbot, window, tmp_path)
    resize(qtbot, window, 1024, 700)
    assert window.project_dock in window.tabifiedDockWidgets(window.editor_dock)
    resize(qtbot, window, 1600, 900)
    assert window.project_dock not in window.tabifiedDockWidgets(window.editor_dock)
    assert window.dockWidgetArea(window.project_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    for widget in (window.sidebar, window.editor, window.queue_panel.state_label, window.queue_panel.filter,
                   window.preview):
        assert on_screen(window, widget)
    assert window.queue_split.orientation() == Qt.Orientation.Horizontal  # the preview beside the queue
    assert window.sidebar.mapTo(window, QPoint(0, 0)).x() < window.queue_panel.mapTo(window, QPoint(0, 0)).x() \
        < window.editor.mapTo(window, QPoint(0, 0)).x()
    # between the two: docks side by side, the preview under the queue (the queue keeps its columns)
    resize(qtbot, window, COMPACT_WIDTH + 80, 800)
    assert window.project_dock not in window.tabifiedDockWidgets(window.editor_dock)
    assert window.queue_split.orientation() == Qt.Orientation.Vertical
    assert on_screen(window, window.sidebar) and on_screen(window, window.queue_panel.filter)


@pytest.mark.parametrize("width", [1024, 1600])
def test_the_job_editor_never_scrolls_sideways(qtbot: Any, window: Any, tmp_path: Any, width: int) -> None:
    create_project(qtbot, window, tmp_path)
    window.session.add_prompt("a very long prompt about a fox that runs through fresh snow at golden hour, "
                              "filmed on a telephoto lens with a shallow depth of field and soft backlight")
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 4, timeout=10_000)
    resize(qtbot, window, width, 700)
    editor = window.editor
    specs = list(window.registry.generators) + list(window.registry.trainers)
    assert len(specs) >= 5
    editor.params.advanced_button.setChecked(True)  # the widest state: every parameter shown
    for spec_id in specs:
        assert editor.select_generator(spec_id)
        QApplication.processEvents()
        body, viewport = editor.scroll.widget(), editor.scroll.viewport()
        assert not editor.scroll.horizontalScrollBar().isVisible(), f"{spec_id} scrolls sideways at {width} px"
        # nothing is cut off either: the form fits the width it gets
        assert body.minimumSizeHint().width() <= viewport.width() and body.width() <= viewport.width(), spec_id
        for w in editor.inputs.values():
            assert w.mapTo(body, QPoint(w.width(), 0)).x() <= viewport.width(), f"{spec_id}: {w.field.name} is cut"
        assert not editor.prompt_view.horizontalScrollBar().isVisible()
