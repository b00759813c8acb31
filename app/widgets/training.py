"""Train actions on a selected subject or motion (DreamVideo), enabled only where their trainer is installed."""
from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QSizePolicy, QToolButton, QWidget

#: the trainer each action queues (a composite trainer queues its steps one after the other)
SUBJECT_TRAINER = "dreamvideo.subject"
MOTION_TRAINER = "dreamvideo.motion"


def trainer_availability(registry: Any, trainer_id: str) -> tuple[bool, str]:
    """(installed, why not) for a trainer id of the plugin registry."""
    if registry is None:
        return False, "Plugins are still loading…"
    if trainer_id in registry.trainers:
        return True, ""
    plugin = trainer_id.split(".")[0]
    info = registry.plugins.get(plugin)
    if info is not None and info.error:
        return False, (f"The {plugin} plugin failed to load ({info.error}); Tools ▸ Plugins… "
                       "shows why.")
    return False, f"The {plugin} plugin is not installed: install it and restart VGen Studio to train {trainer_id}."


class TrainAction(QAction):
    """"Train …" on the selected item: enabled when its trainer is installed and something is selected;
    the tooltip says what it queues, or why it cannot."""

    def __init__(self, text: str, trainer_id: str, what: str, explanation: str, parent: QWidget) -> None:
        super().__init__(text, parent)
        self.trainer_id = trainer_id
        self._what = what
        self._explanation = explanation
        self._available, self._reason = False, "Plugins are still loading…"
        self._selected = False
        self._update()

    def set_registry(self, registry: Any) -> None:
        self._available, self._reason = trainer_availability(registry, self.trainer_id)
        self._update()

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self._update()

    @property
    def reason(self) -> str:
        """Why the action is disabled ("" when enabled)."""
        if not self._available:
            return self._reason
        return "" if self._selected else f"Select a {self._what} first."

    def _update(self) -> None:
        why = self.reason
        self.setEnabled(not why)
        self.setToolTip(self._explanation if not why else f"{self._explanation}\n\nUnavailable: {why}")
        self.setStatusTip(self.toolTip().split("\n")[0])


def action_button(action: QAction, parent: QWidget) -> QToolButton:
    """A full-width button that mirrors an action (text, enabled state, tooltip)."""
    b = QToolButton(parent)
    b.setDefaultAction(action)
    b.setToolButtonStyle(b.toolButtonStyle().ToolButtonTextOnly)
    b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return b


def caption_dialog(motion_name: str, parent: QWidget) -> QInputDialog:
    """Asks the caption of a motion's videos before its training is queued (window-modal, not yet open)."""
    d = QInputDialog(parent)
    d.setObjectName("motionCaptionDialog")
    d.setWindowTitle("Train DreamVideo motion")
    d.setLabelText(f"Caption of the “{motion_name}” videos (what happens in them; may be empty):")
    d.setTextValue(motion_name)
    d.setOkButtonText("Queue training")
    return d
