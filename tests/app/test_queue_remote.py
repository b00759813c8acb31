"""A window that does not hold the render lock shows what the rendering process runs (issue 11 #8): the job, its
progress read from the project every poll, and who renders it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from guihelpers import TINY


def test_preview_shows_the_job_another_process_renders(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from sdk.project import Project
    from sdk.records import NewJob

    path = tmp_path / "Birds.vgen"
    other = Project.create(path, template="demo")
    lock = other.acquire_render_lock("vgen queue run")
    try:
        job_id = other.add_jobs([NewJob(kind="generate", spec_id="modelscope_t2v.t2v", params=dict(TINY), seed=3,
                                        prompt="a heron landing on a pier")]).job_ids[0]
        with qtbot.waitSignal(window.error_shown, timeout=30_000):
            window.open_project(path)
        window._message_box.close()
        window.session._poll.setInterval(200)  # the default 2 s poll, faster for the test
        assert window.session.state == "locked"
        preview = window.preview
        qtbot.waitUntil(lambda: "no job runs there now" in preview.player.placeholder, timeout=10_000)
        assert f"pid {os.getpid()}" in preview.status.text()

        # the other process takes the job and reports progress into project.db, as a RenderService does
        assert other.claim_next_job().id == job_id  # type: ignore[union-attr]
        other.set_progress(job_id, 3, 10)
        qtbot.waitUntil(lambda: preview.job_id == job_id and "Step 3/10" in preview.status.text(), timeout=10_000)
        assert "heron" in preview.title.text()
        assert f"rendered by another process “vgen queue run” (pid {os.getpid()})" in preview.status.text()
        assert "No job is rendering" not in preview.player.placeholder
        other.set_progress(job_id, 7, 10)
        qtbot.waitUntil(lambda: "Step 7/10" in preview.status.text() and preview.progress.value() == 7,
                        timeout=10_000)

        other.fail_job(job_id, "The worker ran out of memory")
        qtbot.waitUntil(lambda: preview.job_id is None and "no job runs there now" in preview.player.placeholder,
                        timeout=10_000)
    finally:
        lock.release()
        other.close()
