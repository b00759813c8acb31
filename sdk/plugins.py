"""Plugin discovery: every plugin, built-in or third-party, comes through the ``vgen_studio``
entry-point group. A plugin that fails to import or registers something invalid is listed with
its error; everything else keeps working."""
from __future__ import annotations

import importlib.metadata
import re
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Iterable

import pluggy
from pydantic import BaseModel

from sdk import hookspecs
from sdk.errors import InvalidRequest
from sdk.specs import ConditionSpec, GeneratorSpec, JobSpec, MetricSpec, TrainerSpec, WeightsSpec

ENTRY_POINT_GROUP = "vgen_studio"
_ID_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
#: weights ids may also take the hub's own spelling (``cogvideox-2b``, ``cogvideox1.5-5b``): lowercase, digits,
#: '_', '.' and '-', outside the user's namespace
_WEIGHTS_ID_RE = re.compile(r"^(?!user\.)[a-z0-9][a-z0-9_.\-]*$")


@dataclass
class PluginInfo:
    name: str
    version: str
    module: str
    generators: list[str] = field(default_factory=list)
    trainers: list[str] = field(default_factory=list)
    extractors: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_spec(spec: JobSpec) -> None:
    """Refuse a spec that contradicts itself (the plugin is then listed with this reason and not loaded)."""
    params = spec.params
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise TypeError(f"{spec.id}: params must be a pydantic model class")
    if not isinstance(spec.inputs, (tuple, list)):
        raise TypeError(f"{spec.id}: inputs must be a tuple of typed fields (ImageRef(...), …)")
    from sdk.inputs import normalize

    try:
        takes_text, fields = normalize(spec.inputs, spec.required_inputs)
    except ValueError as exc:
        raise ValueError(f"{spec.id}: {exc}") from None
    names = {f.name for f in fields}
    if spec.required_inputs is not None:
        legacy = {i for i in spec.inputs if isinstance(i, str)}
        extra = set(spec.required_inputs) - legacy
        if extra:
            raise ValueError(f"{spec.id}: required_inputs names inputs it does not declare: {', '.join(sorted(extra))}")
    if takes_text and "prompt" not in params.model_fields:
        raise ValueError(f"{spec.id}: it declares a 'text' input but its params have no 'prompt' field")
    clash = names & set(params.model_fields)
    if clash:
        raise ValueError(f"{spec.id}: {', '.join(sorted(clash))} is both an input and a param")
    for param, _kind in spec.adapter_params:
        if param not in params.model_fields:
            raise ValueError(f"{spec.id}: adapter param {param!r} is not a field of its params")
    action = getattr(spec, "output_action", "")
    if action:
        from sdk.inputs.base import accepts_outputs

        if not isinstance(action, str) or not action.strip() or len(action) > 40:
            raise ValueError(f"{spec.id}: output_action {action!r} must be a short label such as 'Upscale'")
        if not any(accepts_outputs(f) for f in fields):
            raise ValueError(f"{spec.id}: output_action {action!r} needs an input that takes an earlier job's output "
                             "(an OutputRef, or a VideoRef with accept_outputs=True) to put the source in")


def _plugin_traceback(exc: BaseException) -> str:
    """The traceback of a plugin's import error without the import machinery's frames: it ends at the plugin's
    own file and line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename
              and not f.filename.endswith(("sdk/plugins.py", "metadata/__init__.py"))]
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    return "Traceback (most recent call last):\n" + text


class PluginRegistry:
    """What the installed plugins offer.

    Build one with :func:`load_plugins` (entry points) or pass plugin objects/modules
    directly (tests register only what they declare, as pytest's own tests do).
    """

    def __init__(self, plugins: Iterable[tuple[str, Any]] = (), *, use_entry_points: bool = False) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.generators: dict[str, GeneratorSpec] = {}
        self.trainers: dict[str, TrainerSpec] = {}
        self.weights: dict[str, WeightsSpec] = {}
        self.conditions: dict[str, ConditionSpec] = {}
        self.metrics: dict[str, MetricSpec] = {}
        if use_entry_points:
            self._load_entry_points()
        for name, obj in plugins:
            self.register(obj, name=name)

    # -- registration -------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                self.plugins[ep.name] = PluginInfo(ep.name, version, ep.value, error=_plugin_traceback(exc))
                continue
            self.register(obj, name=ep.name, version=version)

    def register(self, plugin: ModuleType | object, name: str, version: str = "0") -> PluginInfo:
        """Register a plugin object and collect its specs; errors are recorded, not raised."""
        module = getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name, version, module)
        self.plugins[name] = info
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            return info
        try:
            found = self._collect(plugin)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            self.pm.unregister(plugin)
            return info
        for spec in found:
            table = self._table_for(spec)
            table[spec.id] = spec
            listing = {GeneratorSpec: info.generators, TrainerSpec: info.trainers, ConditionSpec: info.extractors,
                       MetricSpec: info.metrics, WeightsSpec: info.weights}[type(spec)]
            listing.append(spec.id)
        return info

    def _table_for(self, spec: Any) -> dict[str, Any]:
        return {
            GeneratorSpec: self.generators,
            TrainerSpec: self.trainers,
            WeightsSpec: self.weights,
            ConditionSpec: self.conditions,
            MetricSpec: self.metrics,
        }[type(spec)]

    def _collect(self, plugin: object) -> list[Any]:
        """Call this plugin's hooks and validate what they return; all or nothing."""
        found: list[Any] = []
        for hook_name, cls in (
            ("vgen_generators", GeneratorSpec),
            ("vgen_trainers", TrainerSpec),
            ("vgen_weights", WeightsSpec),
            ("vgen_condition_extractors", ConditionSpec),
            ("vgen_metrics", MetricSpec),
        ):
            impl = getattr(plugin, hook_name, None)
            if impl is None:
                continue
            for spec in impl() or []:
                if not isinstance(spec, cls):
                    raise TypeError(f"{hook_name} returned {type(spec).__name__}, expected {cls.__name__}")
                if cls is WeightsSpec and _WEIGHTS_ID_RE.match(spec.id):
                    pass
                elif not _ID_RE.match(spec.id):
                    raise ValueError(f"id {spec.id!r} must look like '<plugin>.<name>' (lowercase, digits, _)")
                if spec.id in self._table_for(spec) or any(s.id == spec.id and type(s) is cls for s in found):
                    raise ValueError(f"id {spec.id!r} is already registered by another plugin")
                if isinstance(spec, JobSpec):
                    check_spec(spec)
                found.append(spec)
        return found

    # -- look-ups -----------------------------------------------------------------------
    def generator(self, generator_id: str) -> GeneratorSpec:
        try:
            return self.generators[generator_id]
        except KeyError:
            raise InvalidRequest(
                f"Unknown generator {generator_id!r}.",
                hint="Known generators: " + (", ".join(sorted(self.generators)) or "none")
                + ". `vgen plugins list` shows them.",
                field="generator",
            ) from None

    def trainer(self, trainer_id: str) -> TrainerSpec:
        try:
            return self.trainers[trainer_id]
        except KeyError:
            raise InvalidRequest(
                f"Unknown trainer {trainer_id!r}.",
                hint="Known trainers: " + (", ".join(sorted(self.trainers)) or "none")
                + ". `vgen plugins list` shows them.",
                field="trainer",
            ) from None

    def spec(self, spec_id: str) -> JobSpec:
        """A generator, trainer, condition extractor or metric by id; InvalidRequest listing the generators
        otherwise."""
        for table in (self.trainers, self.conditions, self.metrics):
            if spec_id in table:
                return table[spec_id]
        return self.generator(spec_id)

    def extractor(self, extractor_id: str) -> ConditionSpec:
        try:
            return self.conditions[extractor_id]
        except KeyError:
            raise InvalidRequest(f"Unknown condition extractor {extractor_id!r}.",
                                 hint="Known extractors: " + (", ".join(sorted(self.conditions)) or "none") + ".",
                                 field="extractor") from None

    def metric(self, metric_id: str) -> MetricSpec:
        try:
            return self.metrics[metric_id]
        except KeyError:
            raise InvalidRequest(f"Unknown metric {metric_id!r}.",
                                 hint="Known metrics: " + (", ".join(sorted(self.metrics)) or "none") + ".",
                                 field="metric") from None

    def weights_spec(self, weights_id: str) -> WeightsSpec:
        try:
            return self.weights[weights_id]
        except KeyError:
            raise InvalidRequest(
                f"Unknown weights {weights_id!r}.",
                hint="Known weights: " + (", ".join(sorted(self.weights)) or "none") + ".",
                field="weights",
            ) from None


_default: PluginRegistry | None = None


def load_plugins(refresh: bool = False) -> PluginRegistry:
    """The registry of all installed plugins (entry-point group ``vgen_studio``), cached."""
    global _default
    if _default is None or refresh:
        _default = PluginRegistry(use_entry_points=True)
    return _default
