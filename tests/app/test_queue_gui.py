"""The queue under stress: cancel a running job, a failed job's message, a locked project, a broken plugin."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guihelpers import create_project, job_statuses, set_tiny_params

pytestmark = pytest.mark.slow


def queue_one(qtbot: Any, window: Any, start: bool = True, **params: Any) -> None:
    assert window.editor.select_generator("modelscope_t2v.t2v")
    window.editor.select_prompt_text("a paper boat drifting down a rainy street")
    set_tiny_params(window, **params)
    window.editor.seeds.setText("7")
    with qtbot.waitSignal(window.session.jobs_queued, timeout=10_000):
        assert window.editor.submit(start=start)


def test_cancel_a_running_job_then_the_queue_goes_on(qtbot: Any, window: Any, installed_weights: str,
                                                     tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    queue_one(qtbot, window, num_inference_steps=400)
    qtbot.waitUntil(lambda: window.preview.step >= 1, timeout=120_000)  # running, and its preview plays
    long_id = window.loader.jobs.record(0).id
    window.queue_panel.select_job(long_id)
    assert window.queue_panel.cancel_action.isEnabled()
    with qtbot.waitSignal(window.session.bridge.job_cancelled, timeout=30_000):
        window.queue_panel.cancel_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["CANCELLED"], timeout=10_000)
    assert window.queue_panel.retry_action.isEnabled()

    # the same (warm) worker renders the next job
    queue_one(qtbot, window, num_inference_steps=2)
    qtbot.waitUntil(lambda: job_statuses(window) == ["CANCELLED", "SUCCEEDED"], timeout=120_000)
    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        window.queue_panel.clear_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["SUCCEEDED"], timeout=10_000)


def test_a_failed_job_shows_its_message_and_traceback_and_can_be_retried(qtbot: Any, window: Any,
                                                                          tmp_path: Path, tiny_t2v_weights: Path) -> None:
    import shutil

    from safetensors.numpy import load_file, save_file

    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    # weights that pass the checks at the door (headers, layout) but fail the loader's strict load at run time
    broken = tmp_path / "broken-weights"
    shutil.copytree(tiny_t2v_weights, broken)
    unet = broken / "unet" / "diffusion_pytorch_model.safetensors"
    sd = load_file(str(unet))
    sd.pop(next(k for k in sd if k.startswith("mid_block.")))
    save_file(sd, str(unet))
    window.editor.weights.setEditText(str(broken))
    queue_one(qtbot, window)
    qtbot.waitUntil(lambda: job_statuses(window) == ["FAILED"], timeout=120_000)
    failed = window.loader.jobs.record(0)
    assert failed.error_message

    window.queue_panel.select_job(failed.id)
    panel = window.queue_panel
    assert panel.error_box.isVisible()
    assert failed.error_message[:30] in panel.error_label.text()
    assert "FAILED" not in window.windowTitle()  # the app goes on
    if failed.error_traceback:
        panel.details_button.click()
        assert panel.details_box is not None and "Traceback" in panel.details_box.detailedText()
        panel.details_box.close()

    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        panel.retry_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window)[0] in ("QUEUED", "RUNNING", "FAILED"), timeout=10_000)
    assert window.loader.jobs.record(0).attempts >= 1


def test_a_project_rendered_elsewhere_shows_who_and_still_takes_jobs(qtbot: Any, window: Any, installed_weights: str,
                                                                      tmp_path: Path) -> None:
    from sdk.project import Project

    path = tmp_path / "Locked.vgen"
    other = Project.create(path, template="demo")
    lock = other.acquire_render_lock("a script")
    try:
        with qtbot.waitSignal(window.error_shown, timeout=30_000) as shown:
            window.open_project(path)
        assert shown.args[0] == "Project is rendered elsewhere"
        assert "a script" in shown.args[1] or "pid" in shown.args[1].lower()
        assert window.session.state == "locked"
        assert "another process" in window.queue_panel.state_label.text()
        qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
        queue_one(qtbot, window, start=False)  # queueing still works: the lock holder renders it
        qtbot.waitUntil(lambda: job_statuses(window) == ["QUEUED"], timeout=10_000)
        assert [j.status.value for j in other.jobs()] == ["QUEUED"]
    finally:
        lock.release()
        other.close()


def test_a_plugin_that_fails_to_load_is_listed_and_the_rest_works(qtbot: Any, window: Any) -> None:
    from sdk.plugins import PluginRegistry, load_plugins

    class Broken:
        __name__ = "broken_plugin"

        @staticmethod
        def vgen_generators() -> list[Any]:
            raise RuntimeError("cannot find libfoo.so")

    good = load_plugins()
    registry = PluginRegistry([("modelscope_t2v", __import__("plugins.modelscope_t2v", fromlist=["x"])),
                               ("broken", Broken())])
    assert registry.plugins["broken"].error and good.generators
    window._on_plugins_loaded(registry)
    assert "broken" in window.statusBar().currentMessage()
    assert window.editor.select_generator("modelscope_t2v.t2v")
    dialog = window.show_plugins_dialog()
    texts = [dialog.plugins.topLevelItem(i).text(2) for i in range(dialog.plugins.topLevelItemCount())]
    assert "failed to load" in texts
    qtbot.waitUntil(lambda: dialog.weights.topLevelItemCount() >= 2, timeout=10_000)
    dialog.close()


def test_recent_projects_and_layout_are_kept_in_settings(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from app.main_window import MainWindow

    create_project(qtbot, window, tmp_path, name="Kept")
    window.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.welcome.recent.count() == 1
    assert second.welcome.recent.item(0).text().endswith("Kept.vgen")
    assert second.recent_menu.actions()[0].text().endswith("Kept.vgen")
    with qtbot.waitSignal(second.plugins_loaded, timeout=30_000):
        second.load_plugins()
    with qtbot.waitSignal(second.project_changed, timeout=30_000):
        second.recent_menu.actions()[0].trigger()
    assert second.session.name == "Kept"
    second.close()
