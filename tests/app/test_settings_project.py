"""Settings ▸ Project: the open project's auto-scoring (off by default; checked metrics score every finished output,
stored in the project so the CLI's renders honour it too). Settings ▸ General's export folder is where Export
proposes to save."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project, set_tiny_params
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import (QApplication, QDialogButtonBox, QFileDialog, QStyle,
                               QStyleOptionViewItem)

from app import settings as st


def metric_item(dialog: Any, metric_id: str) -> Any:
    for i in range(dialog.metrics.count()):
        if dialog.metrics.item(i).data(Qt.ItemDataRole.UserRole + 1) == metric_id:
            return dialog.metrics.item(i)
    raise AssertionError(f"{metric_id} is not listed")


def check_box_of(view: Any, item: Any) -> QPoint:
    """Where the item's check box is drawn (the style says)."""
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualItemRect(item)
    option.features |= QStyleOptionViewItem.ViewItemFeature.HasCheckIndicator
    return view.style().subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator, option, view).center()


def test_auto_scoring_is_a_project_setting_off_by_default(qtbot: Any, window: Any, tmp_path: Path) -> None:
    window.show_settings("Project")
    dialog = window.settings_dialog
    assert not dialog.metrics.isEnabled() and "Open a project" in dialog.project_note.text()
    dialog.reject()

    create_project(qtbot, window, tmp_path)
    window.show_settings("Project")
    dialog = window.settings_dialog
    qtbot.waitUntil(dialog.metrics.isEnabled, timeout=10_000)  # the project's choice was read
    item = metric_item(dialog, "classic_cv.flow_warp")
    assert item.checkState() == Qt.CheckState.Unchecked and dialog.checked_metrics() == []  # off by default
    qtbot.mouseClick(dialog.metrics.viewport(), Qt.MouseButton.LeftButton, pos=check_box_of(dialog.metrics, item))
    assert item.checkState() == Qt.CheckState.Checked
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    project = window.session.project
    qtbot.waitUntil(lambda: project.meta("auto_metrics") == ["classic_cv.flow_warp"], timeout=10_000)

    window.show_settings("Project")
    again = window.settings_dialog
    qtbot.waitUntil(again.metrics.isEnabled, timeout=10_000)
    assert again.checked_metrics() == ["classic_cv.flow_warp"]  # reopened: shows the project's choice
    metric_item(again, "classic_cv.flow_warp").setCheckState(Qt.CheckState.Unchecked)
    again.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: project.meta("auto_metrics") == [], timeout=10_000)


def test_export_proposes_the_chosen_folder(qtbot: Any, window: Any, tmp_path: Path, installed_weights: str) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    st.set_export_folder(exports)
    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    window.editor.select_prompt_text(window.loader.prompts.record(0).text)
    set_tiny_params(window)
    window.editor.submit(True)
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 1, timeout=180_000)
    window.tabs.setCurrentIndex(1)
    gallery = window.gallery
    gallery.view.setCurrentIndex(gallery.proxy.index(0, 0))

    proposed: list[str] = []

    def answer() -> None:  # the save dialog, as the user sees it: read where it points, then cancel
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QFileDialog) and w.isVisible()]
        if not boxes:
            QTimer.singleShot(50, answer)
            return
        proposed.append(boxes[0].directory().absolutePath())
        boxes[0].reject()

    QTimer.singleShot(0, answer)
    export = next(a for a in gallery.actions_ if a.text().startswith("Export"))
    export.trigger()
    qtbot.waitUntil(lambda: bool(proposed), timeout=10_000)
    assert proposed == [str(exports)]
