"""What the window shows with no project open: the two ways to start, and recent projects."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from app import look


class WelcomePage(QWidget):
    new_requested = Signal()
    open_requested = Signal()
    #: a recent project's path
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        title = QLabel("<h1>VGen Studio</h1>", self)
        intro = QLabel("Generate videos from prompts, reference images (subjects) and reference videos (motions). "
                       "A project keeps them together with its render queue and results.", self)
        intro.setWordWrap(True)
        steps = [QLabel(text, self) for text in (
            "1. <b>New project</b>: pick a template (the demo has prompts ready).",
            "2. In the <b>Project</b> panel, drop reference images to make a subject; add prompts.",
            "3. In the <b>Job editor</b>, choose a generator, parameters and seeds, then <b>Queue &amp; start</b>.",
            "4. Watch the <b>Live preview</b>; finished videos appear in the <b>Gallery</b>.")]
        weights = QLabel("No model weights yet? <b>Tools ▸ Model manager</b> makes tiny test weights "
                         "(they render noise) or imports the real ones you have.", self)
        weights.setWordWrap(True)
        self.new_button = QPushButton("New project from a template…   (Ctrl+N)", self)
        self.new_button.setObjectName("welcomeNew")
        self.new_button.clicked.connect(self.new_requested)
        self.open_button = QPushButton("Open a project…   (Ctrl+O)", self)
        self.open_button.clicked.connect(self.open_requested)
        self.recent = QListWidget(self)
        self.recent.setObjectName("welcomeRecent")
        self.recent.itemActivated.connect(lambda item: self.recent_requested.emit(item.text()))
        self.recent_label = QLabel("<b>Recent projects</b> (double-click to open)", self)
        self.status = QLabel("", self)
        look.muted(self.status)
        box = QWidget(self)
        box.setFixedWidth(680)
        lay = QVBoxLayout(box)
        for w in (title, intro, *steps, weights, self.new_button, self.open_button, self.recent_label, self.recent, self.status):
            lay.addWidget(w)
        lay.addStretch(1)
        # box takes the full height (no alignment flag), so wrapped labels get the height they need
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(box)
        outer.addStretch(1)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        self.recent.addItems(paths)
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
