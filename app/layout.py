"""The main window's layout at any width from 1024 px up (bug 7 of issue 11).

- Wide (≥ ``PREVIEW_BESIDE_WIDTH``): the project sidebar docked left, the job editor docked right, the live
  preview beside the queue in the middle.
- Medium: the same docks; the preview goes under the queue, so the queue keeps its columns.
- Compact (< ``COMPACT_WIDTH``): the project and the job editor share one dock column as tabs (the editor in
  front), the preview under the queue, so the queue keeps its state, its filter and its columns at 1024 px.

A part changes only when the width crosses its line, so a dock the user moved stays where it is, and a floating dock
is never touched. Toolbars overflow into their » menu by themselves (QToolBar).
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QSplitter, QTabWidget, QWidget

COMPACT_WIDTH = 1200
PREVIEW_BESIDE_WIDTH = 1500
#: the docks' widths when they sit side by side (project, job editor)
DOCK_WIDTHS = [250, 340]
#: QWIDGETSIZE_MAX
_NO_LIMIT = 16777215


class AdaptiveLayout(QObject):
    """Watches the window's width and arranges the ``left`` (project) and ``right`` (job editor) docks and the
    queue/preview ``split`` for it."""

    def __init__(self, window: QMainWindow, left: QDockWidget, right: QDockWidget, split: QSplitter,
                 preview: QWidget, preview_max_width: int = 400) -> None:
        super().__init__(window)
        self.window, self.left, self.right, self.split, self.preview = window, left, right, split, preview
        self.preview_max_width = preview_max_width
        self.compact: bool | None = None
        self.preview_beside: bool | None = None
        # tabbed docks show their tabs on top, where a reader looks for them (Qt's default is below)
        window.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        window.installEventFilter(self)
        right.installEventFilter(self)
        self.fit(window.width())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Resize:
            self.fit(self.window.width())
        elif watched is self.right and event.type() == QEvent.Type.Show and self.compact:
            # docks shown again (a project opened): the editor in front, once the dock layout has settled
            QTimer.singleShot(0, self._raise_right)
        return False

    def _raise_right(self) -> None:
        if self.compact and self.left in self.window.tabifiedDockWidgets(self.right):
            self.right.raise_()

    def fit(self, width: int) -> None:
        self._fit_docks(width < COMPACT_WIDTH)
        self._fit_preview(width >= PREVIEW_BESIDE_WIDTH)

    def _fit_docks(self, compact: bool) -> None:
        if compact == self.compact:
            return
        self.compact = compact
        w = self.window
        if self.left.isFloating() or self.right.isFloating():
            return
        tabbed = self.left in w.tabifiedDockWidgets(self.right)
        if compact and not tabbed:
            # into the editor's area, then the editor tabbed on top of it: the editor stays in front (a raise_()
            # right after tabifying is lost to the dock layout's own deferred update)
            w.addDockWidget(w.dockWidgetArea(self.right), self.left)
            w.tabifyDockWidget(self.left, self.right)
        elif not compact and tabbed:
            w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.left)
            w.resizeDocks([self.left, self.right], DOCK_WIDTHS, Qt.Orientation.Horizontal)

    def _fit_preview(self, beside: bool) -> None:
        if beside == self.preview_beside:
            return
        self.preview_beside = beside
        if beside:
            self.split.setOrientation(Qt.Orientation.Horizontal)
            self.preview.setMaximumWidth(self.preview_max_width)
            self.split.setSizes([720, 240])
        else:
            self.preview.setMaximumWidth(_NO_LIMIT)
            self.split.setOrientation(Qt.Orientation.Vertical)
            self.split.setSizes([400, 240])
