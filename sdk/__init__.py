"""VGen Studio SDK: projects, the render queue, plugins. ``import sdk`` never imports torch.

A script's usual names are here: ``Project`` (``Project.open_or_create(path)``, ``project.requeue(job)``),
``RenderService``, ``load_plugins`` and ``export`` (an output as MP4, GIF, WebP or PNG frames).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdk.errors import (
    CancelRequested,
    IncompatibleCheckpoint,
    InvalidRequest,
    OutOfMemory,
    PluginLoadError,
    ProjectLocked,
    VGenError,
    WeightsMissing,
)
from sdk.hookspecs import hookimpl
from sdk.records import JobStatus
from sdk.specs import GeneratorSpec, TrainerSpec, WeightsSpec
from sdk.video import Video

__version__ = "0.1.0"

__all__ = [
    "GeneratorSpec", "TrainerSpec", "WeightsSpec", "Video", "JobStatus", "hookimpl",
    "VGenError", "InvalidRequest", "PluginLoadError", "WeightsMissing", "IncompatibleCheckpoint",
    "OutOfMemory", "CancelRequested", "ProjectLocked", "Project", "RenderService", "load_plugins", "export",
]

if TYPE_CHECKING:
    from sdk.outputs import export
    from sdk.plugins import load_plugins
    from sdk.project import Project
    from sdk.service import RenderService


def __getattr__(name: str) -> Any:  # lazy: keep `import sdk` light (SQLAlchemy loads on first use)
    if name == "Project":
        from sdk.project import Project

        return Project
    if name == "RenderService":
        from sdk.service import RenderService

        return RenderService
    if name == "load_plugins":
        from sdk.plugins import load_plugins

        return load_plugins
    if name == "export":  # sdk.outputs imports numpy: only when asked for
        from sdk.outputs import export

        return export
    if name == "JobCancelled":  # deprecated alias of CancelRequested (warns)
        from sdk import errors

        return errors.JobCancelled
    raise AttributeError(name)
