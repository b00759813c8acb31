"""What a generator or trainer sees while it runs: :class:`JobContext`.

Torch is imported lazily (only inside the worker or a test does a generator run).
"""
from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel

from sdk import events as ev
from sdk.errors import CancelRequested
from sdk.inputs import AdapterInput, ConditionInput, MotionInput, SubjectInput, VideoInput  # noqa: F401 (re-export)


@dataclass
class JobRequest:
    """One job, validated and with its inputs resolved to files."""

    job_id: str
    kind: str  # "generate" | "train"
    spec_id: str
    params: BaseModel
    seed: int
    inputs: dict[str, Any] = field(default_factory=dict)
    #: resolved weights location (a folder or file); None means the spec's default tiny/installed weights
    weights: Path | None = None
    weights_id: str | None = None


class ModelCache:
    """LRU cache of loaded models kept across jobs in one worker.

    One entry per component (:mod:`sdk.ml.components` keys them by the files they are read from, dtype and device,
    so methods reading the same files share them) with its ``role`` (denoiser, vae, encoder, other) and the identity
    of those files; a plugin may also cache a dict of its own under one key. ``budget_bytes`` bounds the summed size
    (parameters + buffers): the least recently used entries go first. ``hits`` and ``misses`` count ``get`` calls,
    ``misses_by_role`` the loads per role.
    """

    def __init__(self, budget_bytes: int = 16 * 2**30) -> None:
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # key -> (value, bytes)
        self._meta: dict[str, tuple[str | None, tuple[str, ...]]] = {}  # key -> (role, file identities)
        self.hits = 0
        self.misses = 0
        self.misses_by_role: dict[str, int] = {}
        #: seconds each key's load took: what every later hit on it saved
        self.load_seconds: dict[str, float] = {}

    def get(self, key: str, load: Callable[[], Any], *, role: str | None = None,
            files: tuple[str, ...] | list[str] = ()) -> Any:
        """The value cached under ``key``, or ``load()`` cached there (with its ``role`` and source ``files``)."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]
        self.misses += 1
        self.misses_by_role[role or "-"] = self.misses_by_role.get(role or "-", 0) + 1
        t0 = time.monotonic()
        value = load()
        self.load_seconds[key] = time.monotonic() - t0
        self._items[key] = (value, _size_of(value))
        self._meta[key] = (role, tuple(files))
        while len(self._items) > 1 and sum(size for _, size in self._items.values()) > self.budget_bytes:
            old, (gone, _) = self._items.popitem(last=False)
            self._meta.pop(old, None)
            _forget(gone)
        return value

    def drop(self, key: str) -> None:
        """Forget ``key`` (its models were released): the next ``get`` loads it again."""
        item = self._items.pop(key, None)
        self._meta.pop(key, None)
        if item is not None:
            _forget(item[0])

    def role(self, key: str) -> str | None:
        """The role ``key`` was cached with (None: not cached, or cached without one)."""
        return self._meta.get(key, (None, ()))[0]

    def value(self, key: str) -> Any:
        """What is cached under ``key`` (KeyError when nothing is)."""
        return self._items[key][0]

    def held_bytes(self, files: set[str] | frozenset[str]) -> int:
        """Bytes held by the entries read from any of ``files`` (file identities, as :func:`sdk.ml.components.
        file_identity` gives them): what a job on those files will find loaded."""
        return sum(size for key, (_, size) in self._items.items() if files.intersection(self._meta[key][1]))

    def __contains__(self, key: str) -> bool:
        return key in self._items

    @property
    def sizes(self) -> dict[str, int]:
        """Bytes held per key (parameters and buffers)."""
        return {k: size for k, (_, size) in self._items.items()}

    @property
    def keys(self) -> list[str]:
        return list(self._items)

    def clear(self) -> None:
        for value, _ in self._items.values():
            _forget(value)
        self._items.clear()
        self._meta.clear()


def _forget(value: Any) -> None:
    """A cached value leaves the cache: forget its memory mode and drop compiled graphs holding its weights (both
    modules are only loaded, with torch, when they were used)."""
    memory = sys.modules.get("sdk.ml.memory")
    if memory is not None:
        memory.forget(value)
    accel = sys.modules.get("sdk.ml.accel")
    if accel is not None:
        for module in (value.values() if isinstance(value, dict) else [value]):
            if hasattr(module, "parameters") and accel.applied(module):
                accel.release(module)


class JobModels:
    """A job's view of the worker's :class:`ModelCache`: ``get`` also arranges each component of a generate job for
    its memory mode (by the ``role`` it is cached with) and hooks the denoiser to record what it runs in
    (:mod:`sdk.ml.memory`)."""

    def __init__(self, cache: ModelCache, ctx: "JobContext") -> None:
        self.cache = cache
        self._ctx = ctx
        self._memory: Any = None

    def get(self, key: str, load: Callable[[], Any], *, role: str | None = None,
            files: tuple[str, ...] | list[str] = ()) -> Any:
        """``cache.get(key, load, role=..., files=...)``; in a generate job the value (a module of ``role``, or a dict
        of components named as diffusers names them) is arranged for the job's memory mode. In an ``int8``/``fp8``
        job the denoiser (role ``denoiser``, or a dict's ``unet``/``transformer``) is cached under its own key and
        quantized when it loads (:mod:`sdk.ml.quantize`)."""
        ctx = self._ctx
        quant = ctx.quantization if ctx.kind == "generate" else "none"
        if quant not in ("", "none") and (role == "denoiser" or role is None):
            key, load = self._quantized(key, load, quant, role)
        value = self.cache.get(key, load, role=role, files=files)
        memory = sys.modules.get("sdk.ml.memory")
        if ctx.kind != "generate" and role is not None and memory is not None:
            # a trainer shares components with generators: it gets them as loaded, not as a light mode left them
            memory.as_loaded(value, role=role, device=ctx.device_for_models())
        elif ctx.kind == "generate" and (role is not None or isinstance(value, dict)):
            from sdk.ml import memory  # torch: only ever inside the worker or a test

            if self._memory is None:
                self._memory = memory.JobMemory(mode=ctx.memory_mode, device=ctx.device_for_models(),
                                                runtime=ctx.runtime, release=self.cache.drop)
                ctx._hooks.append(self._end)
            self._memory.add(value, role=role, key=key)
        return value

    def _quantized(self, key: str, load: Callable[[], Any], quant: str,
                   role: str | None) -> tuple[str, Callable[[], Any]]:
        """The cache key and loader of the quantized denoiser (see :meth:`get`); on a cache hit the job's runtime
        record still says what the cached denoiser holds."""
        from sdk.ml import quantize  # torch: only ever inside the worker or a test

        ctx = self._ctx
        qkey = quantize.cache_key(key, quant)

        def load_quantized() -> Any:
            return quantize.quantize_component(load(), quant, ctx.device_for_models(), ctx.runtime, role=role)

        if qkey in self.cache:
            cached = self.cache.value(qkey)
            for m in (cached.values() if isinstance(cached, dict) else [cached]):
                if quantize.applied(m):
                    ctx.runtime["quantized"] = quantize.applied(m)
        return qkey, load_quantized

    def _end(self) -> None:
        if self._memory is not None:
            self._memory.end()
            self._memory = None

    def __contains__(self, key: str) -> bool:
        return key in self.cache

    def __getattr__(self, name: str) -> Any:  # hits, misses, keys, clear …
        return getattr(self.cache, name)


def _size_of(value: Any) -> int:
    total = 0
    seen: set[int] = set()
    for obj in value.values() if isinstance(value, dict) else getattr(value, "components", {value: None}):
        for p in _tensors_of(obj):
            if id(p) not in seen:
                seen.add(id(p))
                total += _nbytes(p)
    return total


def _nbytes(t: Any) -> int:
    """Bytes ``t`` holds: a tensor subclass that wraps others (a quantized weight: int8 data, scales) counts them, not
    ``numel × element_size`` of the compute dtype it reports."""
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None:
        names, _ = t.__tensor_flatten__()
        return sum(_nbytes(getattr(t, n)) for n in names if getattr(t, n, None) is not None)
    return t.numel() * t.element_size()


def _tensors_of(obj: Any):
    params = getattr(obj, "parameters", None)
    if callable(params):
        yield from obj.parameters()
        yield from obj.buffers()


class JobContext:
    """The worker-side view of a running job.

    ``emit`` receives events (in the worker it sends them over the pipe; in tests it can append
    to a list). ``cancel_flag`` is a callable returning True once a cancel was asked for.
    """

    preview_interval_s = 0.1  # ≤ 10 previews per second

    def __init__(
        self,
        job_id: str,
        emit: Callable[[ev.Event], None],
        *,
        staging_dir: Path,
        models: ModelCache | None = None,
        device: str = "auto",
        # in-process contexts (tests, scripts) run in full precision unless told otherwise, so their results do not
        # depend on the machine; the worker always passes the job's resolved precision
        dtype: str = "float32",
        memory_mode: str = "none",
        quantization: str = "none",
        kind: str = "generate",
        cancel_flag: Callable[[], bool] = lambda: False,
        preview_every: int = 1,
        resume_from: Path | None = None,
        resume_step: int = 0,
    ) -> None:
        self.job_id = job_id
        self._emit = emit
        self.staging_dir = Path(staging_dir)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.device = device
        #: the precision the models run in (a torch dtype name: float32, bfloat16, float16)
        self.dtype = dtype
        #: none | balanced | low | minimum (:mod:`sdk.ml.memory`), applied to what ``models.get`` returns
        self.memory_mode = memory_mode
        #: none | int8 | fp8: how the denoiser's weights are quantized (:mod:`sdk.ml.quantize`); ``dtype`` is then
        #: the compute dtype
        self.quantization = quantization or "none"
        self.kind = kind
        #: what the job really ran on, for ``meta.json``: the denoiser's dtype and input dtype, attention …
        self.runtime: dict[str, Any] = {}
        self._hooks: list[Any] = []
        self.models = JobModels(models if models is not None else ModelCache(), self)
        self._cancel_flag = cancel_flag
        self.preview_every = max(1, preview_every)
        self._t0 = time.monotonic()
        self._last_preview = 0.0
        self.log = logging.getLogger(f"vgen.job.{job_id}")
        self.log.propagate = False
        self.log.handlers[:] = [_EmitHandler(self)]
        self.log.setLevel(logging.INFO)
        self.artifacts: list[ev.ArtifactSaved] = []
        #: trainers: the folder of this job's latest checkpoint (saved by an earlier attempt that was
        #: cancelled or crashed), or None for a fresh start; ``resume_step`` is its step.
        self.resume_from = Path(resume_from) if resume_from else None
        self.resume_step = int(resume_step)

    def device_for_models(self) -> str:
        """``device`` with ``auto`` resolved (CUDA, then MPS, then CPU)."""
        if self.device not in ("", "auto"):
            return self.device
        from sdk.ml.device import resolve_device

        return str(resolve_device("auto"))

    def finish(self) -> None:
        """Remove this job's hooks from the cached models (the worker calls it when the job ends)."""
        for end in self._hooks:
            end()
        self._hooks.clear()

    # -- reporting ----------------------------------------------------------------------
    def emit(self, event: ev.Event) -> None:
        self._emit(event)

    def progress(self, step: int, total: int, **metrics: float) -> None:
        elapsed = time.monotonic() - self._t0
        eta = elapsed / step * (total - step) if step > 0 else None
        self._emit(ev.ProgressUpdated(self.job_id, step=step, total=total, metrics={k: float(v) for k, v in metrics.items()},
                                      elapsed_s=elapsed, eta_s=eta))

    def preview(self, latents_or_frames: Any, step: int, total: int, *, force: bool = False) -> bool:
        """Send a preview: SD-VAE latents ``[B,4,F,h,w]`` (mapped latent→RGB, ~0.1 ms) or uint8
        frames ``[F,H,W,3]``. Throttled to ≤ 10 per second; the last step is always sent."""
        now = time.monotonic()
        if not force and step != total and (now - self._last_preview < self.preview_interval_s or step % self.preview_every):
            return False
        self._last_preview = now
        if isinstance(latents_or_frames, np.ndarray) and latents_or_frames.dtype == np.uint8:
            frames = latents_or_frames
        else:
            from sdk.ml.preview import latents_to_rgb  # torch lives there

            frames = latents_to_rgb(latents_or_frames)
        self._emit(ev.PreviewReady(self.job_id, step=step, total=total, frames=frames))
        return True

    # -- control ------------------------------------------------------------------------
    def cancelled(self) -> bool:
        return bool(self._cancel_flag())

    def check_cancelled(self) -> None:
        """Raise :class:`sdk.errors.CancelRequested` if a cancel was asked for (call every step)."""
        if self.cancelled():
            raise CancelRequested()

    def generator(self, seed: int):
        """The seed's meaning, as in diffusers: ``torch.Generator("cpu").manual_seed(seed)``."""
        import torch

        return torch.Generator("cpu").manual_seed(int(seed))

    # -- trainers -----------------------------------------------------------------------
    def save_artifact(self, name: str, tensors: dict[str, Any], *, step: int, meta: dict[str, Any] | None = None,
                      state: dict[str, Any] | None = None, kind: str | None = None) -> Path:
        """Write a checkpoint: ``tensors`` to ``weights.safetensors``, optional training ``state``
        (optimizer state dict, RNG, counters: only tensors, numbers, strings, lists and dicts, so it
        loads with ``torch.load(weights_only=True)``) to ``training_state.pt``, and ``meta.json``.

        The service records the folder as a project Adapter at once (it survives a crash of the job),
        and a retried job gets it back as :attr:`resume_from`.
        """
        import json

        import torch
        from safetensors.torch import save_file

        folder = self.staging_dir / "artifacts" / f"{name}-{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "weights.safetensors"
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
        if state is not None:
            torch.save(state, folder / "training_state.pt")
        meta = dict(meta or {}, step=step, name=name)
        if kind:
            meta["kind"] = kind
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        event = ev.ArtifactSaved(self.job_id, name=name, path=str(folder), step=step, meta=meta)
        self.artifacts.append(event)
        self._emit(event)
        return path

    def sample(self, frames: np.ndarray, step: int, total: int) -> None:
        """A trainer's sample video at ``step`` (shown as a preview)."""
        self.preview(frames, step, total, force=True)


class _EmitHandler(logging.Handler):
    def __init__(self, ctx: JobContext) -> None:
        super().__init__()
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ctx._emit(ev.LogRecord(self.ctx.job_id, level=record.levelname, message=record.getMessage()))
        except Exception:
            pass
