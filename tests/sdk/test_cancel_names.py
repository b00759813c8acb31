"""The exception that stops a cancelled job is sdk.errors.CancelRequested; sdk.events.JobCancelled is the event. The
old exception name still works for one release, with a DeprecationWarning."""
from __future__ import annotations

import pytest

from sdk import errors, events
from sdk.context import JobContext


def test_check_cancelled_raises_cancel_requested_and_the_old_name_still_catches_it(tmp_path) -> None:
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", cancel_flag=lambda: True)
    with pytest.raises(errors.CancelRequested):
        ctx.check_cancelled()
    with pytest.warns(DeprecationWarning, match="CancelRequested"):
        from sdk.errors import JobCancelled
    with pytest.raises(JobCancelled):  # a plugin written against 0.1 keeps catching it
        ctx.check_cancelled()
    assert JobCancelled is errors.CancelRequested and events.JobCancelled is not JobCancelled
    assert issubclass(events.JobCancelled, events.Event)


def test_nothing_in_the_sdk_uses_the_deprecated_name() -> None:
    import subprocess
    import sys
    from pathlib import Path

    import sdk

    repo = Path(__file__).resolve().parents[2]
    code = "import sdk, sdk.worker, sdk.context, sdk.service, sdk.testing.contract, sdk.cli.queue"
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.warns(DeprecationWarning):
        assert sdk.JobCancelled is errors.CancelRequested
