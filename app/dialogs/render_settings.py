"""Rendering settings: the device the worker runs on, and the precision and memory mode new jobs get.

The device list comes from :func:`sdk.devices.available` (torch-free). A changed device applies the next time the
queue starts (the running worker keeps its device)."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from app import settings as st

PRECISION_HELP = {"auto": "auto (fp16 on CUDA, bf16 on CPUs that run it natively, else fp32)",
                  "fp32": "fp32 (exact, slowest)", "bf16": "bf16", "fp16": "fp16 (GPU only)"}
MEMORY_HELP = {"auto": "auto (the fastest mode that fits)", "none": "none (everything resident: fastest)",
               "balanced": "balanced (model offload on a GPU; smaller VAE chunks)",
               "low": "low (sequential offload, chunked feed-forward, encoders freed)",
               "minimum": "minimum (also sliced attention, one frame per VAE decode)"}


class RenderSettingsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from sdk.devices import available
        from sdk.options import MEMORY_MODES, PRECISIONS

        self.setWindowTitle("Rendering settings")
        form = QFormLayout(self)
        self.device = QComboBox()
        devices = available()
        self.device.addItem(f"auto ({devices[0].id})", "auto")
        for d in devices:
            self.device.addItem(d.describe(), d.id)
        self.precision = QComboBox()
        for p in PRECISIONS:
            self.precision.addItem(PRECISION_HELP[p], p)
        self.memory_mode = QComboBox()
        for m in MEMORY_MODES:
            self.memory_mode.addItem(MEMORY_HELP[m], m)
        for combo, key in ((self.device, "device"), (self.precision, "precision"), (self.memory_mode, "memory_mode")):
            i = combo.findData(st.render_setting(key))
            combo.setCurrentIndex(max(0, i))
        form.addRow("&Device:", self.device)
        form.addRow("&Precision of new jobs:", self.precision)
        form.addRow("&Memory mode of new jobs:", self.memory_mode)
        note = QLabel("A new device applies when the queue starts next. Jobs keep the precision and memory mode "
                      "they were queued with; an out-of-memory error retries a job once, one mode lighter.")
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self) -> None:
        for combo, key in ((self.device, "device"), (self.precision, "precision"), (self.memory_mode, "memory_mode")):
            st.set_render_setting(key, str(combo.currentData()))
        super().accept()
