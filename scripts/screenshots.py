"""Render the GUI's states to PNG files, under a real X server with a window manager.

    python scripts/screenshots.py [OUT_DIR] [--offscreen]     (default OUT_DIR: build/screenshots, not tracked)
    make screenshots                                          (the README's images, into docs/screenshots)

Where ``Xvfb`` and ``openbox`` are installed and no ``$DISPLAY`` is set, the script starts both on a free display
and runs the app on it (``QT_QPA_PLATFORM=xcb``): windows are mapped, focused and stacked by a real window manager,
as a user's are. ``--offscreen`` (or no Xvfb) uses Qt's offscreen platform instead. Debian: ``apt-get install xvfb
openbox libxcb-icccm4 libxcb-keysyms1`` (Qt's xcb plugin needs the last two).

States: the empty window; a project loaded (demo template + a subject); a job rendering with its live preview; the
gallery with a multi-selection and a star; the side-by-side compare window; the model manager; the settings
dialog; the whole app in the dark theme; the window at 1024×700; the whole X screen (main window and compare window
side by side). Uses tiny random weights (made in a subprocess: they need torch, the GUI process never imports it),
so the videos are noise by design.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def start_x_server(width: int = 1600, height: int = 1000) -> list[subprocess.Popen]:
    """Start Xvfb on a free display and openbox on it; sets ``$DISPLAY`` and the xcb platform. [] when either is
    missing (the caller falls back to offscreen)."""
    xvfb, wm = shutil.which("Xvfb"), shutil.which("openbox")
    if not xvfb or not wm:
        return []
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    else:
        return []
    display = f":{n}"
    server = subprocess.Popen([xvfb, display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if server.poll() is not None or time.monotonic() > end:
            server.kill()
            return []
        time.sleep(0.05)
    os.environ["DISPLAY"] = display
    manager = subprocess.Popen([wm], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    time.sleep(0.5)  # openbox takes over the root window
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return [manager, server]


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
    offscreen = "--offscreen" in argv
    args = [a for a in argv if a != "--offscreen"]
    out = Path(args[0]) if args else REPO / "build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    if not offscreen and not os.environ.get("DISPLAY"):
        procs = start_x_server()
    if not os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    print(f"platform: {os.environ.get('QT_QPA_PLATFORM', 'xcb')} display {os.environ.get('DISPLAY', '-')}"
          f"{' (Xvfb + openbox)' if procs else ''}")
    try:
        return shoot(out)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def shoot(out: Path) -> int:
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
    gallery = win.gallery
    wait_until(app, lambda: all(win.loader.thumbs.is_loaded(i.output.thumb_path) for i in win.loader.outputs.records()),
               20)
    gallery.view.selectAll()  # three outputs selected: Compare is enabled
    gallery.set_starred([gallery.selected_items()[0].job_id], True)
    wait_until(app, lambda: any(i.output.starred for i in win.loader.outputs.records()), 20)
    gallery.view.selectAll()
    shot("04-gallery")

    compare = gallery.compare_selected()
    compare.resize(900, 420)
    compare.move(520, 520)
    wait_until(app, lambda: compare.is_loaded, 30)
    compare.set_playing(False)
    compare.show_tick(3)
    shot("05-compare", compare)
    if os.environ.get("QT_QPA_PLATFORM") == "xcb":  # the real screen: two top-level windows, both usable
        win.move(0, 0)
        compare.raise_()
        wait_until(app, lambda: True)
        time.sleep(0.3)
        app.processEvents()
        app.primaryScreen().grabWindow(0).save(str(out / "10-desktop.png"))
        print(out / "10-desktop.png")
    compare.close()

    dlg = win.show_plugins_dialog("Models")
    dlg.resize(980, 560)
    wait_until(app, lambda: dlg.weights.topLevelItemCount() > 0, 20)
    dlg.models.select(default)
    shot("06-model-manager", dlg)
    dlg.close()

    settings = win.show_settings("Rendering")
    settings.resize(620, 460)
    shot("07-settings", settings)
    settings.close()

    from app.application import apply_theme

    apply_theme(app, "dark")
    win.tabs.setCurrentIndex(0)
    shot("08-dark-theme")
    win.tabs.setCurrentIndex(1)
    shot("08b-dark-gallery")
    apply_theme(app, "light")

    win.resize(1024, 700)
    win.tabs.setCurrentIndex(0)
    shot("09-1024x700")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
