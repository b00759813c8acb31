"""Tells the user when a batch finishes or a job fails, and counts failed jobs in the title bar.

A notification goes to the system tray (``QSystemTrayIcon``) when the desktop has one, else to a desktop
notification (``notify-send``), else to the status bar; while the window is the active one it only goes to the status
bar. The setting :data:`KEY` (``set_enabled(False)``) turns the pop-ups off; the title bar count stays. The notifier
works from the job list the window already reads (every reload, including the poll of a project rendered by another
process), so it needs no events of its own.
"""
from __future__ import annotations

import shutil
import time
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal, Slot
from PySide6.QtWidgets import QApplication, QMainWindow, QStyle, QSystemTrayIcon

from app import settings as st

#: QSettings key (bool, default true): show tray/desktop notifications when a batch finishes or a job fails
KEY = "notifications/enabled"
APP_TITLE = "VGen Studio"
#: how long a tray message or status bar message stays (ms)
SHOW_MS = 10_000


def enabled() -> bool:
    """Whether notifications pop up (the :data:`KEY` setting; on by default)."""
    value = st.settings().value(KEY, True)
    return value not in (False, "false", "0", 0)


def set_enabled(on: bool) -> None:
    """Turn the tray/desktop notifications on or off (kept in QSettings under :data:`KEY`)."""
    s = st.settings()
    s.setValue(KEY, bool(on))
    s.sync()


def window_title(project_name: str | None, failed: int = 0) -> str:
    """"Birds (2 failed) — VGen Studio"; "VGen Studio" with no project."""
    if not project_name:
        return APP_TITLE
    return f"{project_name}{f' ({failed} failed)' if failed else ''} — {APP_TITLE}"


def _status(job: Any) -> str:
    return getattr(job.status, "value", str(job.status))


class Notifier(QObject):
    """Watches the window's job list; ``notified`` says what it told the user and where."""

    #: title, message, where it went: "tray" | "desktop" | "status" | "off" (the setting is off)
    notified = Signal(str, str, str)

    def __init__(self, window: QMainWindow, loader: Any) -> None:
        super().__init__(window)
        self.window = window
        self.loader = loader
        self.session: Any = None
        #: the last status seen of every job (kept for hidden jobs too, so an undone clear is no news)
        self._last: dict[str, str] | None = None
        self._since = time.time()
        self._tray: QSystemTrayIcon | None = None
        loader.jobs_loaded.connect(self._on_loader_jobs_loaded)

    def set_session(self, session: Any) -> None:
        self.session = session
        self._last = None
        self._since = time.time()

    # -- watching ---------------------------------------------------------------------------------
    @Slot()
    def _on_loader_jobs_loaded(self) -> None:
        if self.session is None:
            return
        model = self.loader.jobs
        jobs = model.records()
        statuses = {j.id: _status(j) for j in jobs}
        self.window.setWindowTitle(window_title(self.session.name, sum(s == "FAILED" for s in statuses.values())))
        if self._last is None:  # the project just opened: what is already there is no news
            self._last = dict(statuses)
            return
        ended = [j for j in jobs if statuses[j.id] in ("SUCCEEDED", "FAILED", "CANCELLED")
                 and self._last.get(j.id) != statuses[j.id]
                 and (j.id in self._last or (j.finished_at or 0) >= self._since)]
        self._last.update(statuses)
        if not ended:
            return
        failed = [j for j in ended if statuses[j.id] == "FAILED"]
        worked = {j.batch_id for j in ended if statuses[j.id] in ("SUCCEEDED", "FAILED")}
        batches = [b for b in worked if all(_status(j) in ("SUCCEEDED", "FAILED", "CANCELLED")
                                            for j in jobs if j.batch_id == b)]
        if batches:
            counts = {"SUCCEEDED": 0, "FAILED": 0, "CANCELLED": 0}
            for j in jobs:
                if j.batch_id in batches:
                    counts[statuses[j.id]] += 1
            parts = [f"{counts[k]} {w}" for k, w in (("SUCCEEDED", "done"), ("FAILED", "failed"),
                                                      ("CANCELLED", "cancelled")) if counts[k]]
            title = "Batch finished" if len(batches) == 1 else f"{len(batches)} batches finished"
            message = ", ".join(parts) + "."
            if failed:
                message += f" {self._failure_text(model, failed[0])}"
        elif failed:
            title = "Job failed" if len(failed) == 1 else f"{len(failed)} jobs failed"
            message = self._failure_text(model, failed[0])
        else:
            return
        self.notify(f"{title} — {self.session.name}", message)

    @staticmethod
    def _failure_text(model: Any, job: Any) -> str:
        return f"{model.describe(job)[:60]}: {job.error_message or 'failed'}"

    # -- telling ------------------------------------------------------------------------------------
    def notify(self, title: str, message: str) -> str:
        """Tell the user (tray, desktop or status bar, as available); returns where it went."""
        where = self._deliver(title, message)
        self.notified.emit(title, message, where)
        return where

    def _deliver(self, title: str, message: str) -> str:
        if not enabled():
            return "off"
        if self.window.isActiveWindow():  # the user is looking: no pop-up
            self.window.statusBar().showMessage(f"{title}: {message}", SHOW_MS)
            return "status"
        QApplication.alert(self.window)
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray().showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, SHOW_MS)
            return "tray"
        if shutil.which("notify-send") and QProcess.startDetached("notify-send", ["-a", APP_TITLE, title, message]):
            return "desktop"
        self.window.statusBar().showMessage(f"{title}: {message}", SHOW_MS)
        return "status"

    def tray(self) -> QSystemTrayIcon:
        if self._tray is None:
            icon = self.window.windowIcon()
            if icon.isNull():
                icon = self.window.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
            self._tray = QSystemTrayIcon(icon, self)
            self._tray.setToolTip(APP_TITLE)
            self._tray.messageClicked.connect(self._on_tray_message_clicked)
            self._tray.show()
        return self._tray

    @Slot()
    def _on_tray_message_clicked(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def close(self) -> None:
        if self._tray is not None:
            self._tray.hide()
