"""Undo for a few seconds: a stack of timed steps, a toast that offers the latest one, and Edit ▸ Undo.

A step is pushed after its change is made. Until it expires the user can undo it (the toast's Undo button, or
Edit ▸ Undo / Ctrl+Z); when it expires, or the project closes, its ``commit`` runs (e.g. the deleted rows, hidden
until then, are deleted for good). Steps are undone newest first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

#: how long a step can be undone
UNDO_MS = 10_000


@dataclass
class UndoStep:
    #: what was done, as a sentence ("Cleared 3 queued jobs.")
    message: str
    #: a short name for the Undo action ("Clear queued")
    name: str
    undo: Callable[[], None]
    commit: Callable[[], None] | None = None
    timer: QTimer | None = field(default=None, repr=False)


class UndoStack(QObject):
    """Timed undo steps (newest last)."""

    #: the steps changed (pushed, undone or expired)
    changed = Signal()

    def __init__(self, parent: QObject | None = None, timeout_ms: int = UNDO_MS) -> None:
        super().__init__(parent)
        self.timeout_ms = timeout_ms
        self._steps: list[UndoStep] = []

    def push(self, message: str, name: str, undo: Callable[[], None],
             commit: Callable[[], None] | None = None, timeout_ms: int | None = None) -> UndoStep:
        """Offer ``undo`` for ``timeout_ms`` (default :attr:`timeout_ms`); then run ``commit`` (if any)."""
        step = UndoStep(message, name, undo, commit)
        step.timer = QTimer(self)
        step.timer.setSingleShot(True)
        step.timer.setInterval(self.timeout_ms if timeout_ms is None else int(timeout_ms))
        step.timer.timeout.connect(lambda s=step: self._expire(s))
        step.timer.start()
        self._steps.append(step)
        self.changed.emit()
        return step

    @property
    def top(self) -> UndoStep | None:
        return self._steps[-1] if self._steps else None

    def __len__(self) -> int:
        return len(self._steps)

    def undo(self) -> bool:
        """Undo the newest step that has not expired (False when there is none)."""
        if not self._steps:
            return False
        step = self._steps.pop()
        self._stop(step)
        self.changed.emit()
        step.undo()
        return True

    def commit_all(self) -> None:
        """Make every pending step final now (the project closes)."""
        steps, self._steps = self._steps, []
        for step in steps:
            self._stop(step)
            if step.commit is not None:
                step.commit()
        if steps:
            self.changed.emit()

    def _expire(self, step: UndoStep) -> None:
        if step in self._steps:
            self._steps.remove(step)
            self._stop(step)
            self.changed.emit()
            if step.commit is not None:
                step.commit()

    @staticmethod
    def _stop(step: UndoStep) -> None:
        if step.timer is not None:
            step.timer.stop()
            step.timer.deleteLater()
            step.timer = None


class _FollowsStack:
    """Shared by the action and the toast: which stack they show (the session's; None without a project), followed
    through its ``changed`` signal, and undoing its newest step."""

    stack: UndoStack | None

    def set_stack(self, stack: UndoStack | None) -> None:
        if self.stack is not None:
            self.stack.changed.disconnect(self._on_stack_changed)
        self.stack = stack
        if stack is not None:
            stack.changed.connect(self._on_stack_changed)
        self._on_stack_changed()

    def _on_stack_changed(self) -> None:
        raise NotImplementedError

    def undo_newest(self) -> None:
        if self.stack is not None:
            self.stack.undo()


class UndoAction(_FollowsStack, QAction):
    """Edit ▸ Undo (Ctrl+Z) over one :class:`UndoStack` at a time: "Undo Clear queued", enabled while a step waits."""

    def __init__(self, parent: QObject) -> None:
        super().__init__("&Undo", parent)
        self.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.stack: UndoStack | None = None
        self.triggered.connect(self.undo_newest)
        self.set_stack(None)

    @Slot()
    def _on_stack_changed(self) -> None:
        top = self.stack.top if self.stack is not None else None
        self.setEnabled(top is not None)
        self.setText(f"&Undo {top.name}" if top is not None else "&Undo")
        self.setStatusTip(f"Undo: {top.message}" if top is not None else "Nothing to undo")



class UndoToast(_FollowsStack, QFrame):
    """A bar that says what was just done, with an Undo button, while the step can be undone."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("undoToast")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(self)
        self.label.setObjectName("undoMessage")
        self.button = QPushButton("Undo", self)
        self.button.setObjectName("undoButton")
        self.button.clicked.connect(self.undo_newest)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 4, 2)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.button)
        self.stack: UndoStack | None = None
        self.setVisible(False)

    @Slot()
    def _on_stack_changed(self) -> None:
        top = self.stack.top if self.stack is not None else None
        self.setVisible(top is not None)
        if top is not None:
            self.label.setText(top.message)
            self.button.setToolTip(f"Undo {top.name} (Ctrl+Z)")



def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
