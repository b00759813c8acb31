"""Render the main states of the GUI to PNG files (offscreen, or under Xvfb with QT_QPA_PLATFORM=xcb).

    python scripts/screenshots.py [OUT_DIR]      (default: build/screenshots, not tracked)

States: the empty window, a project loaded (demo template + a subject), a job rendering with its
live preview, the gallery. Uses tiny random weights (made in a subprocess: they need torch, the
GUI process never imports it), so the videos are noise by design.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait_until(app: Any, cond: Callable[[], bool], timeout: float = 120.0) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"the GUI did not reach the expected state in {timeout:g} s: "
                               f"{getattr(cond, '__code__', None) and cond.__code__.co_firstlineno} "
                               f"(line of {__file__})")
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)  # blocks until something happens


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else REPO / "build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vgen-shots-"))
    os.environ["VGEN_MODELS_DIR"] = str(work / "models")

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    from sdk.plugins import load_plugins

    default = load_plugins().generators["modelscope_t2v.t2v"].default_weights
    subprocess.run([sys.executable, "-m", "sdk.cli", "models", "make-tiny", default, str(work / "tiny"), "--register"],
                   check=True, cwd=REPO, capture_output=True)

    win = MainWindow()
    win.resize(1440, 860)
    win.show()
    win.load_plugins()
    wait_until(app, lambda: win.registry is not None)

    def shot(name: str, widget: Any = None) -> None:
        wait_until(app, lambda: not win.tasks.busy, 30)
        for _ in range(5):
            app.processEvents()
        path = out / f"{name}.png"
        (widget or win).grab().save(str(path))
        print(path)

    shot("01-empty-window")

    win.create_project(work / "Fitness.vgen", "demo")
    wait_until(app, lambda: win.session is not None and win.session.state == "paused")
    session = win.session
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    imgs = []
    for i in range(4):
        a = np.zeros((96, 96, 3), np.uint8)
        a[...] = (40 + 50 * i, 120, 200 - 40 * i)
        a[24:72, 24:72] = rng.integers(0, 255, (48, 48, 3))
        p = work / f"rex_{i}.png"
        Image.fromarray(a).save(p)
        imgs.append(p)
    mask = np.zeros((96, 96), np.uint8)
    mask[16:80, 16:80] = 255
    Image.fromarray(mask).save(work / "rex_0_mask.png")
    session.add_subject("Rex", imgs, masks=[work / "rex_0_mask.png", None, None, None])
    session.add_prompt("a photo of <rex> surfing a wave at sunset", "blurry, low quality")
    wait_until(app, lambda: win.loader.subjects.rowCount() == 1 and win.loader.prompts.rowCount() == 4)
    wait_until(app, lambda: win.sidebar.subjects_page.images.rowCount() == 4)
    wait_until(app, lambda: all(win.loader.thumbs.is_loaded(i.asset.path, i.mask.path if i.mask else None)
                                for i in win.loader.subjects.record(0).images), 20)
    shot("02-project-loaded")

    win.editor.select_generator("modelscope_t2v.t2v")
    win.editor.select_prompt_text("a photo of <rex> surfing a wave at sunset")
    win.editor.params.set_values({"num_frames": 8, "height": 64, "width": 64, "num_inference_steps": 16})
    win.editor.seeds.setText("1-3")
    win.editor.submit(True)
    wait_until(app, lambda: win.preview.step >= 6, 180)
    win.queue_panel.select_job(win.preview.job_id)
    shot("03-rendering-with-preview")

    wait_until(app, lambda: win.loader.outputs.rowCount() == 3, 600)
    win.tabs.setCurrentIndex(1)
    win.gallery.view.setCurrentIndex(win.gallery.proxy.index(0, 0))
    wait_until(app, lambda: all(win.loader.thumbs.is_loaded(i.output.thumb_path) for i in win.loader.outputs.records()),
               20)
    shot("04-gallery")

    win.sidebar.setCurrentWidget(win.sidebar.prompts_page)
    dlg = win.show_plugins_dialog()
    wait_until(app, lambda: dlg.weights.topLevelItemCount() > 0, 20)
    shot("05-plugins-dialog", dlg)
    dlg.close()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
