"""Weights licences against a project's policy (``weights_policy`` from its template, e.g. ``commercial-safe``):
checked when jobs are queued, before the weights are resolved, so the licence is the first thing said."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry
    from sdk.project import Project


def check_licence(project: "Project", registry: "PluginRegistry", weights_value: str | None) -> list[str]:
    """A project made from a template that admits commercial-use weights only (``weights_policy``:
    ``{"commercial_only": true}``) refuses weights whose spec says their licence does not allow it, naming the
    licence; weights whose licence is not stated pass with a warning."""
    policy = (project.meta("weights_policy") if project is not None else None) or {}
    if not isinstance(policy, dict) or not policy.get("commercial_only") or weights_value is None:
        return []
    spec = registry.weights.get(weights_value)
    if spec is None:  # a path: the weights id it is installed under, if any
        from sdk import weights as w

        here = Path(weights_value).expanduser().resolve()
        ids = [e["id"] for e in w.list_installed() if e.get("path") and Path(e["path"]).resolve() == here]
        spec = next((registry.weights[i] for i in ids if i in registry.weights), None)
    template = (project.meta("template") or {}).get("title", "this project's template")
    if spec is not None and spec.commercial is False:
        allowed = sorted(w.id for w in registry.weights.values() if w.commercial)
        raise InvalidRequest(
            f"Weights {weights_value} are not for commercial use: {spec.licence}. This project ({template}) admits "
            "commercial-use weights only.",
            hint=(f"Use {', '.join(allowed)}" if allowed else "Use weights whose licence allows commercial use") +
                 ", or a project made without the commercial-safe template.", field="weights")
    if spec is None or spec.commercial is None:
        return [f"The licence of weights {weights_value} does not say whether commercial use is allowed; this "
                "project admits commercial-use weights only: check it yourself."]
    return []
