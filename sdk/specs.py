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


#: Tensors per top-level key prefix of the 3D-UNet core that VGen's released 1.4B UNets share (manifests of
#: ``UNetSD_T2VBase`` and its descendants); a plugin adds its own branches' counts.
RELEASED_UNET_CORE: tuple[tuple[str, int], ...] = (("input_blocks", 558), ("middle_block", 104),
                                                     ("output_blocks", 810), ("out", 4), ("time_embed", 4))


@dataclass(frozen=True)
class WeightsLayout:
    """What weights a generator reads must hold, checked without running code or importing torch when they are
    imported or queued (:mod:`sdk.weights_check`).

    Shapes are checked for consistency inside the folder (UNet width, cross-attention width = text encoder width,
    latent channels = VAE channels), so tiny twins pass as the real weights do; ``released`` adds the tensor count
    per top-level key prefix of the released UNet, checked for UNets of the released width.
    """

    #: diffusers format: the ``_class_name`` in ``model_index.json`` ("" = this method has no diffusers format)
    diffusers_pipeline: str = ""
    #: VGen format: input channels of the UNet's first conv (4 latent + any concatenated condition channels)
    unet_in_channels: int = 4
    #: VGen format: top-level key prefixes beyond the 3D-UNet core that the UNet must hold / may hold
    unet_extra: tuple[str, ...] = ()
    unet_optional: tuple[str, ...] = ()
    #: VGen format: file-name prefixes that pick the UNet ``.pth`` when a folder holds several (as the loader does)
    unet_files: tuple[str, ...] = ()
    #: the OpenCLIP file must hold the image tower (``visual.*``) too
    clip_visual: bool = False
    #: ``meta.json`` kinds of checkpoint folders (a diffusers-named ``weights.safetensors``) also read
    checkpoint_kinds: tuple[str, ...] = ()
    #: tensors per top-level prefix of the released UNet, checked when the UNet is ``released_width`` wide
    released: tuple[tuple[str, int], ...] = ()
    released_width: int = 320


@dataclass(frozen=True)
class WeightsSpec:
    """Weights a plugin knows how to fetch and load.

    ``tiny`` (``"pkg.module:function"``) writes a tiny twin in the same on-disk format:
    ``function(dir, format) -> None``. ``layout`` says what the weights hold, so that files are checked at the
    door; the generators and trainers of the same ``method`` (and those naming it as ``default_weights``) read them.
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
    layout: WeightsLayout | None = None


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
