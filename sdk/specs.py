"""Frozen descriptions of what plugins offer. Listing them imports nothing heavy (no torch)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

def load_entry(entry: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = entry.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class JobSpec:
    """What every spec that runs as a job has: a generator, a trainer, a condition extractor or a metric.

    ``params`` is a pydantic model: its JSON schema drives validation, CLI flags and GUI forms. ``entry``
    (``"pkg.module:Class"``) is imported only inside the worker; the class has a no-argument constructor.
    ``inputs`` are typed fields (:mod:`sdk.inputs`: ``ImageRef("image", required=True)``, ``VideoRef``,
    ``SubjectRef``, ``MotionRef``, ``AdapterRef``, ``ConditionRef``, ``OutputRef``); ``"text"`` among them (or a
    ``prompt`` field in ``params``) means the spec takes prompts. The legacy spelling ``("text", "image")`` with
    ``required_inputs`` still works. ``default_weights`` None: the spec needs no weights unless given some.
    """

    id: str
    title: str
    method: str
    params: type[BaseModel]
    entry: str
    inputs: tuple[Any, ...] = ()
    default_weights: str | None = None
    version: str = "0.1.0"
    description: str = ""
    #: legacy: names of ``inputs`` that must be given (None: all declared); typed fields say ``required=`` instead
    required_inputs: tuple[str, ...] | None = None
    #: params that name a project Adapter, with the Adapter kind each takes: (param, kind). A value is an adapter
    #: id (or prefix), "latest" (the newest of that kind for the job's subject/motion), "none"/"" or a file path;
    #: the queue checks ids, the service resolves them into ``JobRequest.inputs["adapters"][param]``.
    adapter_params: tuple[tuple[str, str], ...] = ()
    kind: str = "generate"

    @property
    def fields(self) -> tuple[Any, ...]:
        """The typed input fields (:class:`sdk.inputs.InputField`), legacy names converted."""
        from sdk.inputs import normalize

        return normalize(self.inputs, self.required_inputs)[1]

    @property
    def takes_text(self) -> bool:
        """True when the spec takes prompts: ``"text"`` among its inputs or a ``prompt`` field in its params."""
        from sdk.inputs import normalize

        return normalize(self.inputs, self.required_inputs)[0] or "prompt" in self.params.model_fields

    def field(self, name: str) -> Any:
        """The input field called ``name``; InvalidRequest listing the inputs this spec takes otherwise."""
        for f in self.fields:
            if f.name == name:
                return f
        from sdk.errors import InvalidRequest

        names = ", ".join(f.name for f in self.fields)
        raise InvalidRequest(f"{self.id} takes no {name}.", hint=f"Its inputs: {names}." if names else
                             "It takes nothing but its prompts and parameters.", field=name)


@dataclass(frozen=True)
class GeneratorSpec(JobSpec):
    """A generator: ``generate(ctx, request) -> Video``.

    The worker checks the result: it must be a :class:`sdk.Video` with the requested ``num_frames`` and
    ``height``×``width`` (when the params have them), unless ``resizes`` says the generator changes them (an
    upscaler, a frame interpolator).

    ``output_action`` (e.g. ``"Upscale"``) offers the generator as an action on outputs: the GUI's gallery shows it
    in an output's menu, ``vgen jobs upscale`` / ``vgen jobs follow`` and ``queue add --then ID`` queue it on an
    earlier job's output. The source goes into the generator's first input that accepts outputs (an ``OutputRef``
    or a ``VideoRef(accept_outputs=True)``); a spec with an ``output_action`` and no such input is refused at
    registration.
    """

    inputs: tuple[Any, ...] = ("text",)
    resizes: bool = False
    #: the label of an action offered on outputs ("Upscale"); "" for none
    output_action: str = ""
    kind: Literal["generate"] = "generate"


@dataclass(frozen=True)
class TrainerSpec(JobSpec):
    """A trainer: ``train(ctx, request) -> None``; checkpoints go through ``ctx.save_artifact``."""

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
    #: whether the licence allows commercial use (True/False); None: not stated (queued with a warning where a
    #: project admits commercial-use weights only; False is refused there)
    commercial: bool | None = None
    size_gb: float = 0.0
    tiny: str | None = None
    description: str = ""
    layout: WeightsLayout | None = None


@dataclass(frozen=True)
class ConditionSpec(JobSpec):
    """A condition extractor (depth, sketch, canny, motion vectors, mask …): ``extract(ctx, request) -> Video``.

    It runs as a job on a source video (its ``video`` input: a file, a motion's video or an earlier output); the
    video it returns is stored as a condition asset of kind ``condition``, linked to its source and to this
    extractor's id and version, and can be given to generators as a ``ConditionRef`` input.
    """

    condition: str = ""
    inputs: tuple[Any, ...] = ()
    kind: Literal["extract"] = "extract"


@dataclass(frozen=True)
class MetricSpec(JobSpec):
    """A metric over outputs (CLIP-T, CLIP-I, DINO-I, temporal consistency …): ``score(ctx, request) ->
    dict[str, float]`` (the first key is the metric's headline score). It runs as a job on an output (its
    ``output`` input); the scores are stored with that output. ``auto``: score every finished output of the
    generators it applies to (``applies_to``: generator ids; empty: all)."""

    higher_is_better: bool = True
    auto: bool = False
    applies_to: tuple[str, ...] = ()
    inputs: tuple[Any, ...] = ()
    kind: Literal["score"] = "score"
