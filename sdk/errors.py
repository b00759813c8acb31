"""Errors a user sees. Every error carries a message that names what is wrong and a hint that says the fix."""
from __future__ import annotations

import warnings
from typing import Any


class VGenError(Exception):
    """Base class: ``user_message`` is shown to the person, ``hint`` says how to fix it."""

    def __init__(self, user_message: str, hint: str = "") -> None:
        self.user_message = user_message
        self.hint = hint
        super().__init__(f"{user_message} ({hint})" if hint else user_message)

    def to_dict(self) -> dict[str, str]:
        return {"type": type(self).__name__, "message": self.user_message, "hint": self.hint}


class InvalidRequest(VGenError):
    """A request (job, import, parameter) was refused before anything changed."""

    def __init__(self, user_message: str, hint: str = "", field: str | None = None) -> None:
        self.field = field
        super().__init__(user_message, hint)


class InvalidFiles(InvalidRequest):
    """Some files of an import were refused. ``problems`` maps each refused file's path (as given) to what is
    wrong with it, so a caller can name them all and offer to go on with the others."""

    def __init__(self, user_message: str, hint: str = "", field: str | None = None,
                 problems: dict[str, str] | None = None) -> None:
        self.problems = dict(problems or {})
        super().__init__(user_message, hint, field)


class PluginLoadError(VGenError):
    """A plugin failed to import or registered something invalid."""


class WeightsMissing(VGenError):
    """The weights a job needs are not installed."""


class IncompatibleCheckpoint(VGenError):
    """A checkpoint does not fit the model it was loaded into (keys, shapes or format)."""


class OutOfMemory(VGenError):
    """The device ran out of memory."""


class CancelRequested(VGenError):
    """Raised inside a generator or trainer by ``ctx.check_cancelled()`` once a cancel was asked for: it stops the
    job at the step it is in. The worker then reports the event :class:`sdk.events.JobCancelled` (the fact that the
    job ended cancelled); this exception is the request travelling up the stack, not that fact."""

    def __init__(self, user_message: str = "The job was cancelled.", hint: str = "") -> None:
        super().__init__(user_message, hint)


class ProjectLocked(VGenError):
    """Another process already renders this project's queue."""


class ProjectError(VGenError):
    """A project folder or database could not be opened or created."""


class ProjectReadOnly(ProjectError):
    """The project can be read (list, info, export) but not changed: its folder or database is read-only,
    or its database is damaged and writes are refused until it is recovered."""


class UnsafeProject(ProjectError):
    """The project folder holds a path that leaves it (a symlink, ``..`` in an id): it is refused."""


class DiskFull(VGenError):
    """The disk holding the project (or the models) has no room left; nothing saved was lost."""


def __getattr__(name: str) -> Any:
    if name == "JobCancelled":  # the exception's name until 0.1; it clashed with the event sdk.events.JobCancelled
        warnings.warn("sdk.errors.JobCancelled is deprecated and will be removed in the next release: catch "
                      "sdk.errors.CancelRequested (sdk.events.JobCancelled is the event of a cancelled job).",
                      DeprecationWarning, stacklevel=2)
        return CancelRequested
    raise AttributeError(f"module 'sdk.errors' has no attribute {name!r}")
