"""Recall settings: a job's or an output's recipe as a request the job editor shows for editing (nothing is queued;
"Re-queue exactly" is :meth:`sdk.Project.requeue`). Blocking: runs on the session's worker thread."""
from __future__ import annotations

import re
from typing import Any

_SHA = re.compile(r"[0-9a-f]{64}")


def read_recipe(project: Any, registry: Any, source: Any) -> tuple[str, dict[str, Any], str]:
    """(spec id, ``plan_jobs`` request, what it came from) for ``source``: a JobRecord, an OutputRecord, a job id, an
    output folder, its ``meta.json`` or a rendered MP4 (see :func:`sdk.requeue.load_recipe`).

    The request is the one "Re-queue exactly" would queue (:func:`sdk.requeue.requeue_request`), with each input an
    editor can show: an imported image or video (recorded by its content hash) becomes that asset's file in the
    project. Raises InvalidRequest when ``source`` is no job of this project and no VGen Studio recipe.
    """
    from sdk.errors import InvalidRequest
    from sdk.requeue import load_recipe, requeue_request

    recipe = load_recipe(project, source, registry)
    request = requeue_request(recipe)
    inputs = {}
    for name, value in request["inputs"].items():
        if isinstance(value, str) and _SHA.fullmatch(value):
            try:  # the editor picks files; the same bytes import as the same asset when it is queued
                value = str(project.asset(value).path)
            except InvalidRequest:
                pass  # not an asset here: the editor shows the value and says it is missing
        inputs[name] = value
    request["inputs"] = inputs
    return recipe.spec_id, request, recipe.source
