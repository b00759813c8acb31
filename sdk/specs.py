"""Frozen descriptions of what plugins offer. Listing them imports nothing heavy (no torch)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

#: The kinds of input a generator or trainer can declare.
InputKind = Literal["text", "image", "subject", "motion", "conditions", "video", "adapter"]


def load_entry(entry: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = entry.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class GeneratorSpec:
    """A generator a plugin offers.

    ``params`` is a pydantic model: its JSON schema drives validation, CLI flags and GUI forms.
    ``entry`` (``"pkg.module:Class"``) is imported only inside the worker; the class has a
    no-argument constructor and ``generate(ctx, request) -> Video``.
    """

    id: str
    title: str
    method: str
    params: type[BaseModel]
    entry: str
    inputs: tuple[InputKind, ...] = ("text",)
    default_weights: str | None = None
    version: str = "0.1.0"
    description: str = ""
    #: inputs that must be given; None means every declared input except "text" for trainers
    required_inputs: tuple[InputKind, ...] | None = None
    #: params that name a project Adapter, with the Adapter kind each takes: (param, kind). A value is an adapter
    #: id (or prefix), "latest" (the newest of that kind for the job's subject/motion), "none"/"" or a file path;
    #: the queue checks ids, the service resolves them into ``JobRequest.inputs["adapters"][param]``.
    adapter_params: tuple[tuple[str, str], ...] = ()
    kind: Literal["generate"] = "generate"


@dataclass(frozen=True)
class TrainerSpec:
    """A trainer a plugin offers; ``entry`` class has ``train(ctx, request) -> None``."""

    id: str
    title: str
    method: str
    params: type[BaseModel]
    entry: str
    inputs: tuple[InputKind, ...] = ()
    default_weights: str | None = None
    version: str = "0.1.0"
    description: str = ""
    #: inputs that must be given; None means every declared input except "text" for trainers
    required_inputs: tuple[InputKind, ...] | None = None
    #: as :attr:`GeneratorSpec.adapter_params`
    adapter_params: tuple[tuple[str, str], ...] = ()
    #: a composite action: queueing it queues consecutive jobs of these trainer ids instead (same inputs, seeds;
    #: each param goes to every trainer whose params have it). ``entry`` is then never run.
    expands_to: tuple[str, ...] = ()
    kind: Literal["train"] = "train"


@dataclass(frozen=True)
class WeightsFile:
    """One file of a weights snapshot."""

    path: str
    sha256: str | None = None


@dataclass(frozen=True)
class WeightsSpec:
    """Weights a plugin knows how to fetch and load.

    ``tiny`` (``"pkg.module:function"``) writes a tiny twin in the same on-disk format:
    ``function(dir, format) -> None``.
    """

    id: str
    title: str
    method: str
    formats: tuple[str, ...] = ("diffusers",)
    source: Literal["huggingface", "modelscope", "none"] = "huggingface"
    repo_id: str = ""
    revision: str | None = None
    files: tuple[WeightsFile, ...] = ()
    licence: str = ""
    size_gb: float = 0.0
    tiny: str | None = None
    description: str = ""


@dataclass(frozen=True)
class ConditionSpec:
    """A condition extractor (depth, sketch, canny, motion, mask ...)."""

    id: str
    title: str
    entry: str
    output: str = "video"


@dataclass(frozen=True)
class MetricSpec:
    """A metric over outputs (CLIP-T, CLIP-I, DINO-I, temporal consistency ...)."""

    id: str
    title: str
    entry: str
    higher_is_better: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
