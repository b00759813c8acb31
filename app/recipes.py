"""Turn an output's recipe (``meta.json`` / the MP4 comment) back into a queue request."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdk.project import Project


def request_from_meta(meta: Any, project: "Project | None" = None) -> tuple[str, dict[str, Any]]:
    """``(spec_id, plan_jobs keyword arguments)`` that queue exactly this recipe again.

    Inputs are found in ``project`` by asset hash (image) or name (subject, motion).
    Raises ValueError when ``meta`` is not a VGen Studio recipe.
    """
    if not isinstance(meta, dict) or not meta.get("spec_id"):
        raise ValueError("This file carries no VGen Studio recipe.")
    params = dict(meta.get("params") or {})
    prompt = params.pop("prompt", None) or meta.get("prompt")
    request: dict[str, Any] = {
        "kind": meta.get("kind") or None,
        "prompts": [prompt] if prompt else [],
        "seeds": [int(meta.get("seed") or 0)],
        "params": {k: [v] for k, v in params.items()},
    }
    if meta.get("weights"):
        request["weights"] = str(meta["weights"])
    options = {k: v for k, v in (meta.get("options") or {}).items() if k in ("precision", "memory_mode")}
    if options:
        request["options"] = options
    inputs = meta.get("inputs") or {}
    if project is not None:
        if inputs.get("image"):
            request["image"] = project.asset(str(inputs["image"])).path
        for name in ("subject", "motion"):
            ref = inputs.get(name)
            if isinstance(ref, dict) and ref.get("name"):
                request[name] = ref["name"]
    return str(meta["spec_id"]), request
