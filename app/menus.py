"""The main window's menu bar: File, Edit, Project, Queue, Output, View, Tools, Help (actions, shortcuts, tips)."""
from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox


def build_menus(win: Any) -> None:
    """Fill ``win``'s menu bar; sets ``win.recent_menu``, ``win.close_action``, ``win.edit_menu`` and
    ``win.project_actions`` (enabled only while a project is open)."""
    def act(menu: Any, text: str, shortcut: Any, slot: Any, tip: str = "") -> QAction:
        a = menu.addAction(text)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    m = win.menuBar().addMenu("&File")
    act(m, "&New project…", QKeySequence.StandardKey.New, win.show_new_project_dialog, "Create a project from a template")
    act(m, "&Open project…", QKeySequence.StandardKey.Open, win.choose_project)
    win.recent_menu = m.addMenu("Open &recent")
    win.close_action = act(m, "&Close project", QKeySequence.StandardKey.Close, win.close_project)
    m.addSeparator()
    act(m, "&Quit", QKeySequence.StandardKey.Quit, win.close)
    win.edit_menu = win.menuBar().addMenu("&Edit")
    win.edit_menu.addAction(win.queue_panel.undo_action)
    m = win.menuBar().addMenu("&Project")
    win.project_actions = [
        act(m, "Add &subject…", "Ctrl+Shift+S", win.sidebar.subjects_page.choose_files),
        act(m, "Add &motion…", "Ctrl+Shift+M", win.sidebar.motions_page.choose_files),
        act(m, "Add &prompt", "Ctrl+Shift+P", win._focus_new_prompt),
    ]
    m = win.menuBar().addMenu("&Queue")
    win.project_actions += [
        act(m, "&Queue jobs", "Ctrl+Return", lambda: win.editor.submit(False), "Queue the job editor's grid"),
        act(m, "Queue && s&tart", "Ctrl+Shift+Return", lambda: win.editor.submit(True)),
    ]
    m.addSeparator()
    m.addActions(win.queue_panel.actions_)
    m = win.menuBar().addMenu("&Output")
    m.addActions(win.gallery.actions_)
    m = win.menuBar().addMenu("&View")
    act(m, "&Queue", "Ctrl+1", lambda: win.tabs.setCurrentIndex(0))
    act(m, "&Gallery", "Ctrl+2", lambda: win.tabs.setCurrentIndex(1))
    act(m, "&Find", QKeySequence.StandardKey.Find, win._focus_filter, "Filter the list in front")
    m.addSeparator()
    m.addAction(win.project_dock.toggleViewAction())
    m.addAction(win.editor_dock.toggleViewAction())
    m = win.menuBar().addMenu("&Tools")
    act(m, "&Model manager…", "Ctrl+Shift+L", win.show_plugins_dialog, "Weights: fetch, import, make tiny")
    act(m, "P&lugins…", "", lambda: win.show_plugins_dialog("Plugins"), "Installed plugins and load errors")
    m.addSeparator()
    act(m, "&Settings…", "Ctrl+,", win.show_settings,
        "Device, precision, memory mode, theme, export folder, notifications, auto-scoring")
    m = win.menuBar().addMenu("&Help")
    act(m, "&About VGen Studio", "", lambda: QMessageBox.about(
        win, "About VGen Studio", "VGen Studio: a batch app and Python SDK for the VGen video-diffusion methods."))

