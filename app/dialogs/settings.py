"""Settings: one dialog, one tab per subject.

- **General**: the folder exports go to by default; desktop notifications on or off.
- **Appearance**: follow the system's light/dark scheme, light, or dark (Fusion + a palette, applied app-wide).
- **Rendering**: the device the worker runs on, the precision and memory mode new jobs get, and what this machine
  offers (:func:`sdk.devices.available`, torch-free: ``vgen doctor`` adds dtypes and attention backends).
- **Project**: the open project's auto-scoring: the metrics that score every finished output (off by default).

Nothing here blocks the GUI thread: the device probe (it may run ``nvidia-smi``) and the project's setting are
read and written in the background. OK and Apply store everything and emit ``applied`` with what changed.
"""
from __future__ import annotations

import platform
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractButton, QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QRadioButton, QTabWidget, QVBoxLayout, QWidget)

from app import settings as st
from app.tasks import TaskRunner

PRECISION_HELP = {"auto": "auto (fp16 on CUDA, bf16 on CPUs that run it natively, else fp32)",
                  "fp32": "fp32 (exact, slowest)", "bf16": "bf16", "fp16": "fp16 (GPU only)",
                  "int8": "int8 (denoiser weights quantized: about half of bf16's memory; computes in bf16)",
                  "fp8": "fp8 (like int8, fp8 weights; CUDA GPUs of compute capability 8.9+ only)"}
MEMORY_HELP = {"auto": "auto (the fastest mode that fits)", "none": "none (everything resident: fastest)",
               "balanced": "balanced (model offload on a GPU; smaller VAE chunks)",
               "low": "low (sequential offload, chunked feed-forward, encoders freed)",
               "minimum": "minimum (also sliced attention, one frame per VAE decode)"}
THEME_TEXT = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
MetricRole = Qt.ItemDataRole.UserRole + 1


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n > 0 else "unknown"


def machine_report(devices: list[Any]) -> str:
    """What ``vgen doctor`` says about this machine without torch: devices, memory, bf16, ffmpeg, versions."""
    import sdk

    rows = []
    for d in devices:
        extra = " · runs bf16 natively" if d.id == "cpu" and d.native_bf16 else ""
        rows.append(f"<b>{d.id}</b> — {d.name}<br>&nbsp;&nbsp;memory {_gb(d.total_bytes)} total, "
                    f"{_gb(d.free_bytes)} free{extra}")
    try:
        from imageio_ffmpeg import get_ffmpeg_exe

        ffmpeg = get_ffmpeg_exe()
    except Exception as exc:  # noqa: BLE001 - a report: show what went wrong, never fail the dialog
        ffmpeg = f"not found ({exc})"
    from PySide6 import __version__ as pyside

    return ("<br>".join(rows) + f"<br><br>ffmpeg: {ffmpeg}<br>VGen Studio {sdk.__version__} · Python "
            f"{platform.python_version()} · PySide6 {pyside}<br><i>`vgen doctor` also lists the precisions and "
            "attention backends each device runs (it loads torch, so the app does not).</i>")


class SettingsDialog(QDialog):
    """``session``: the open project (its Project tab), or None; ``registry``: the loaded plugins (its metrics)."""

    #: the device list was probed (the Rendering tab is filled)
    devices_loaded = Signal()
    #: the open project's auto metrics were read (the Project tab is filled)
    project_loaded = Signal()
    #: what OK/Apply changed: {"device": "cuda:0", "theme": "dark", ...} (only the keys that changed)
    applied = Signal(dict)

    def __init__(self, parent: QWidget | None = None, session: Any = None, registry: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.session = session
        self.registry = registry
        self.runner = TaskRunner(self)
        self._loaded_metrics: list[str] | None = None
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._general_page(), "General")
        self.tabs.addTab(self._appearance_page(), "Appearance")
        self.tabs.addTab(self._rendering_page(), "Rendering")
        self.tabs.addTab(self._project_page(), "Project")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.Apply, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.clicked.connect(self._on_buttons_clicked)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.buttons)
        self.resize(620, 460)
        self._load_devices()
        self._load_project()

    def show_page(self, name: str) -> None:
        """Bring a tab to the front by its title ("Rendering" …)."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == name:
                self.tabs.setCurrentIndex(i)

    # -- pages ----------------------------------------------------------------------------------------------------
    def _general_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        self.export_folder = QLineEdit(st.export_folder_setting(), page)
        self.export_folder.setObjectName("exportFolder")
        self.export_folder.setPlaceholderText(f"{st.export_folder()} (when none is chosen)")
        self.export_folder.setToolTip("Where Export proposes to save videos, GIFs and frames")
        browse = QPushButton("Browse…", page)
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.export_folder, 1)
        row.addWidget(browse)
        label = QLabel("&Export to:", page)
        label.setBuddy(self.export_folder)  # Alt+E, and the & is not shown
        form.addRow(label, row)
        self.notifications = QCheckBox("Notify me when a batch finishes or a job fails", page)
        self.notifications.setObjectName("notificationsEnabled")
        self.notifications.setChecked(st.notifications_enabled())
        self.notifications.setToolTip("A desktop (tray) notification; the window title counts the jobs either way")
        form.addRow(self.notifications)
        return page

    def _appearance_page(self) -> QWidget:
        page = QWidget(self)
        lay = QVBoxLayout(page)
        self.theme_group = QButtonGroup(page)
        current = st.theme()
        self.theme_buttons: dict[str, QRadioButton] = {}
        for name in st.THEMES:
            b = QRadioButton(THEME_TEXT[name], page)
            b.setObjectName(f"theme_{name}")
            b.setChecked(name == current)
            self.theme_group.addButton(b)
            self.theme_buttons[name] = b
            lay.addWidget(b)
        note = QLabel("Follow the system uses your desktop's light or dark scheme and switches with it.", page)
        note.setWordWrap(True)
        lay.addWidget(note)
        lay.addStretch(1)
        return page

    def _rendering_page(self) -> QWidget:
        from sdk.options import MEMORY_MODES, PRECISIONS

        page = QWidget(self)
        form = QFormLayout(page)
        self.device = QComboBox(page)
        self.device.setObjectName("deviceCombo")
        self.device.addItem("auto (CUDA, then MPS, then the CPU)", "auto")
        saved = st.render_setting("device")
        if saved != "auto":  # shown until the probe answers (and kept if it does not list it: another machine's)
            self.device.addItem(saved, saved)
            self.device.setCurrentIndex(1)
        self.precision = QComboBox(page)
        for p in PRECISIONS:
            self.precision.addItem(PRECISION_HELP[p], p)
        self.memory_mode = QComboBox(page)
        for m in MEMORY_MODES:
            self.memory_mode.addItem(MEMORY_HELP[m], m)
        for combo, key in ((self.precision, "precision"), (self.memory_mode, "memory_mode")):
            combo.setCurrentIndex(max(0, combo.findData(st.render_setting(key))))
        form.addRow("&Device:", self.device)
        form.addRow("&Precision of new jobs:", self.precision)
        form.addRow("&Memory mode of new jobs:", self.memory_mode)
        self.farm = QLineEdit(st.render_setting("farm"), page)
        self.farm.setObjectName("farmEdit")
        self.farm.setPlaceholderText("empty = this machine; ray://HOST:10001, auto or local:2")
        self.farm.setToolTip("A Ray render farm runs the queue on its nodes (docs/farm.md); the device above is then "
                             "ignored. Needs the farm extra: pip install 'vgen-studio[farm]'.")
        form.addRow("Render &farm:", self.farm)
        note = QLabel("A new device applies as soon as no job is rendering. Jobs keep the precision and memory mode "
                      "they were queued with; an out-of-memory error retries a job once, one mode lighter.", page)
        note.setWordWrap(True)
        form.addRow(note)
        box = QGroupBox("This machine", page)
        bl = QVBoxLayout(box)
        self.machine = QLabel("Looking for devices…", box)
        self.machine.setObjectName("machineReport")
        self.machine.setWordWrap(True)
        self.machine.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bl.addWidget(self.machine)
        form.addRow(box)
        return page

    def _project_page(self) -> QWidget:
        page = QWidget(self)
        lay = QVBoxLayout(page)
        self.project_note = QLabel(page)
        self.project_note.setWordWrap(True)
        self.metrics = QListWidget(page)
        self.metrics.setObjectName("autoMetrics")
        lay.addWidget(self.project_note)
        lay.addWidget(self.metrics, 1)
        specs = sorted(getattr(self.registry, "metrics", {}).values(), key=lambda s: s.title)
        for spec in specs:
            better = "higher is better" if spec.higher_is_better else "lower is better"
            scope = f"; scores {', '.join(spec.applies_to)} only" if spec.applies_to else ""
            item = QListWidgetItem(f"{spec.title}  ({spec.id})", self.metrics)
            item.setData(MetricRole, spec.id)
            item.setToolTip(f"{spec.description}\n{better}{scope}")
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Unchecked)
        if self.session is None:
            self.project_note.setText("Open a project to choose its auto-scoring.")
            self.metrics.setEnabled(False)
        elif not specs:
            self.project_note.setText("No installed plugin offers a metric.")
            self.metrics.setEnabled(False)
        else:
            self.project_note.setText(f"Score every finished output of <b>{self.session.name}</b> with the checked "
                                      "metrics (each runs as a score job after the render; off by default). The "
                                      "scores are stored with the output and in its meta.json.")
            self.metrics.setEnabled(False)  # until the project's choice is read
        return page

    # -- loading ----------------------------------------------------------------------------------------------------
    def _load_devices(self) -> None:
        def work() -> tuple[list[Any], str]:
            from sdk.devices import available

            devices = available()
            return devices, machine_report(devices)

        self.runner.submit(work, self._on_devices_loaded,
                           lambda exc: self.machine.setText(f"Cannot list the devices: {exc}"))

    def _on_devices_loaded(self, result: tuple[list[Any], str]) -> None:
        devices, report = result
        chosen = self.device.currentData()
        self.device.clear()
        self.device.addItem(f"auto (here: {devices[0].id})", "auto")
        for d in devices:
            self.device.addItem(d.describe(), d.id)
        if self.device.findData(chosen) < 0:  # a device this machine lacks (settings from another machine)
            self.device.addItem(f"{chosen} (not on this machine)", chosen)
        self.device.setCurrentIndex(self.device.findData(chosen))
        self.machine.setText(report)
        self.devices_loaded.emit()

    def _load_project(self) -> None:
        if self.session is None or not self.metrics.count():
            return
        project = self.session.project

        def work() -> list[str] | None:
            from sdk.conditions import project_auto_metrics

            return project_auto_metrics(project)

        self.session.call(work, self._on_project_loaded, "Cannot read the project's settings")

    def _on_project_loaded(self, chosen: list[str] | None) -> None:
        self._loaded_metrics = chosen
        specs = getattr(self.registry, "metrics", {})
        for i in range(self.metrics.count()):
            item = self.metrics.item(i)
            mid = item.data(MetricRole)
            on = mid in chosen if chosen is not None else bool(getattr(specs.get(mid), "auto", False))
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.metrics.setEnabled(not getattr(self.session.project, "read_only", False))
        self.project_loaded.emit()

    def checked_metrics(self) -> list[str]:
        return [self.metrics.item(i).data(MetricRole) for i in range(self.metrics.count())
                if self.metrics.item(i).checkState() == Qt.CheckState.Checked]

    # -- applying -------------------------------------------------------------------------------------------------------
    @Slot()
    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.export_folder.text() or
                                                  str(st.export_folder()))
        if folder:
            self.export_folder.setText(folder)

    @Slot(QAbstractButton)
    def _on_buttons_clicked(self, button: QAbstractButton) -> None:
        if self.buttons.buttonRole(button) == QDialogButtonBox.ButtonRole.ApplyRole:
            self.apply()

    def chosen_theme(self) -> str:
        return next(name for name, b in self.theme_buttons.items() if b.isChecked())

    def apply(self) -> dict[str, Any]:
        """Store every setting; apply the theme now and the auto metrics to the project. Returns what changed."""
        changed: dict[str, Any] = {}
        for combo, key in ((self.device, "device"), (self.precision, "precision"), (self.memory_mode, "memory_mode")):
            value = str(combo.currentData())
            if value != st.render_setting(key):
                st.set_render_setting(key, value)
                changed[key] = value
        farm = self.farm.text().strip()
        if farm != st.render_setting("farm"):
            st.set_render_setting("farm", farm)
            changed["farm"] = farm
        theme = self.chosen_theme()
        if theme != st.theme():
            st.set_theme(theme)
            changed["theme"] = theme
        if changed.get("theme"):
            from PySide6.QtWidgets import QApplication

            from app.application import apply_theme

            apply_theme(QApplication.instance(), theme)
        folder = self.export_folder.text().strip()
        if folder != st.export_folder_setting():
            st.set_export_folder(folder)
            changed["export_folder"] = st.export_folder_setting()
        on = self.notifications.isChecked()
        if on != st.notifications_enabled():
            self._set_notifications(on)
            changed["notifications"] = on
        self._apply_metrics(changed)
        if changed:
            self.applied.emit(changed)
        return changed

    @staticmethod
    def _set_notifications(on: bool) -> None:
        try:
            from app import notifications
        except ImportError:  # the notifier is optional: the setting is kept either way
            notifications = None  # type: ignore[assignment]
        if notifications is not None and hasattr(notifications, "set_enabled"):
            notifications.set_enabled(on)
        else:
            st.set_notifications_enabled(on)

    def _apply_metrics(self, changed: dict[str, Any]) -> None:
        if self.session is None or not self.metrics.isEnabled():
            return
        chosen = self.checked_metrics()
        specs = getattr(self.registry, "metrics", {})
        before = self._loaded_metrics if self._loaded_metrics is not None else [
            m for m in (self.metrics.item(i).data(MetricRole) for i in range(self.metrics.count()))
            if getattr(specs.get(m), "auto", False)]
        if sorted(chosen) == sorted(before):
            return
        project, registry = self.session.project, self.registry
        self._loaded_metrics = chosen

        def work() -> list[str] | None:
            from sdk.conditions import set_project_auto_metrics

            return set_project_auto_metrics(project, registry, chosen)

        self.session.call(work, None, "Cannot change the project's auto-scoring")
        changed["auto_metrics"] = chosen

    def accept(self) -> None:
        self.apply()
        super().accept()

    def done(self, result: int) -> None:
        self.runner.wait()
        super().done(result)
