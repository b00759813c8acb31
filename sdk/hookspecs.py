"""The hooks a VGen Studio plugin implements. Each docstring is the contract."""
from __future__ import annotations

import pluggy

from sdk.specs import ConditionSpec, GeneratorSpec, MetricSpec, TrainerSpec, WeightsSpec

PROJECT_NAME = "vgen_studio"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def vgen_generators() -> list[GeneratorSpec]:
    """Return the generators this plugin offers.

    Ids are ``"<plugin>.<name>"`` and unique across plugins. The module defining this hook
    must not import torch: the GUI lists generators without it.
    """


@hookspec
def vgen_trainers() -> list[TrainerSpec]:
    """Return the trainers this plugin offers (same rules as :func:`vgen_generators`)."""


@hookspec
def vgen_weights() -> list[WeightsSpec]:
    """Return the weights this plugin can fetch, import and load, with their licence."""


@hookspec
def vgen_condition_extractors() -> list[ConditionSpec]:
    """Return condition extractors (depth, sketch, canny, motion, mask ...)."""


@hookspec
def vgen_metrics() -> list[MetricSpec]:
    """Return metrics this plugin computes over outputs."""
