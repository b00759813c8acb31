"""The render lock: one renderer per project, named in the error, taken over when its holder dies."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sdk.errors import ProjectLocked
from sdk.project import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Locked.vgen")
    yield p
    p.close()


HOLDER = textwrap.dedent("""
    import sys
    from sdk.project import Project
    lock = Project.open(sys.argv[1]).acquire_render_lock(holder="vgen-studio GUI")
    print("locked", flush=True)
    sys.stdin.read()  # hold until killed or stdin closes
""")


def start_holder(project: Project) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(project.path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # waits until the child holds the lock
    assert line.strip() == "locked", proc.stderr.read() if proc.stderr else ""
    return proc


def test_second_renderer_is_refused_naming_the_holder_until_it_is_killed(project: Project) -> None:
    holder = start_holder(project)
    try:
        with pytest.raises(ProjectLocked) as err:
            project.acquire_render_lock()
        assert f"pid {holder.pid}" in err.value.user_message
        assert "vgen-studio GUI" in err.value.user_message
        assert "queue add" in err.value.hint
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        for stream in (holder.stdin, holder.stdout, holder.stderr):
            if stream is not None:
                stream.close()

    with project.acquire_render_lock(holder="cli") as lock:  # the dead holder's lock is gone
        assert json.loads((project.path / ".lock").read_text())["pid"] == os.getpid()
        assert lock.held
    assert not lock.held


def test_lock_is_exclusive_within_one_process_and_reusable_after_release(project: Project) -> None:
    lock = project.acquire_render_lock(holder="service")
    with Project.open(project.path) as other, pytest.raises(ProjectLocked, match=f"pid {os.getpid()}"):
        other.acquire_render_lock()
    lock.release()
    lock.release()  # idempotent
    project.acquire_render_lock().release()
