"""Random-weight twins of any size (the real size included), written tensor by tensor in the real on-disk layouts.

Nothing bigger than one tensor is ever held in memory:
- safetensors files are written header first, then tensor by tensor (:func:`write_safetensors`); a diffusers
  component is split into ``<stem>-0000i-of-0000n.safetensors`` shards plus ``<stem>.safetensors.index.json``
  as the hub stores big models (:func:`write_component`);
- torch ``.pth``/``.bin``/``.ckpt`` files are saved as a skeleton without bytes
  (``torch.serialization.skip_data``), then filled in place through a shared memory map (:func:`write_torch_file`).

Every tensor is drawn from a generator seeded by ``(seed, source key)``, so the same seed gives the same weights
whatever the format, the shard size or the write order: a VGen ``.pth`` and a diffusers folder written from one
seed load into identical models. The values follow :func:`sdk.ml.tiny.randomize_` (matrices N(0, 1/fan_in), norm
scales 1 + N(0, 0.1²), biases N(0, 0.02²)) so activations stay O(1) even at real depth.
"""
from __future__ import annotations

import json
import math
import mmap
import struct
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

#: safetensors dtype names
_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
              torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}
DEFAULT_SHARD_BYTES = 2 * 1024 ** 3  # the UNet (5.6 GB in fp32) becomes 3 shards


@dataclass(frozen=True)
class Entry:
    """One tensor of a file to write: its shape and dtype, and how to make its values."""

    shape: tuple[int, ...]
    make: Callable[[], torch.Tensor]
    dtype: torch.dtype = torch.float32

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * torch.empty((), dtype=self.dtype).element_size()


Plan = dict[str, Entry]


def key_seed(seed: int, key: str) -> int:
    """A stable 63-bit seed for one tensor (independent of Python's hash randomisation)."""
    return ((int(seed) * 0x9E3779B97F4A7C15) ^ (zlib.crc32(key.encode()) << 20) ^ zlib.adler32(key.encode())) % (2 ** 63)


def _norm_like(key: str) -> bool:
    return "norm" in key or "ln_" in key


def random_tensor(key: str, shape: Iterable[int], seed: int, *, gain: float = 1.0) -> torch.Tensor:
    """The float32 values of tensor ``key`` (same distribution as :func:`sdk.ml.tiny.randomize_`)."""
    shape = tuple(int(s) for s in shape)
    g = torch.Generator("cpu").manual_seed(key_seed(seed, key))
    if len(shape) == 0:
        return torch.tensor(math.log(1 / 0.07))  # open_clip's logit_scale init (unused by the generators)
    x = torch.randn(shape, generator=g)
    if len(shape) >= 2:
        return x.mul_(gain / math.prod(shape[1:]) ** 0.5)
    if _norm_like(key):
        return x.mul_(0.1).add_(1.0) if key.endswith("weight") else x.mul_(0.02)
    return x.mul_(0.02)


def random_entry(key: str, shape: Iterable[int], seed: int) -> Entry:
    shape = tuple(int(s) for s in shape)
    return Entry(shape, lambda: random_tensor(key, shape, seed))


def model_plan(model: torch.nn.Module, seed: int, *, rename: Callable[[str], str] = lambda k: k) -> Plan:
    """A plan for every state-dict entry of ``model`` (built on the meta device: no memory), keyed by
    ``rename(key)``; values are seeded by the model's own key. Integer buffers named ``*position_ids`` get
    ``arange``."""
    plan: Plan = {}
    for key, t in model.state_dict().items():
        shape = tuple(t.shape)
        if key.endswith("position_ids"):
            plan[rename(key)] = Entry(shape, lambda s=shape: torch.arange(s[-1]).expand(s).contiguous(), t.dtype)
        elif t.is_floating_point():
            plan[rename(key)] = random_entry(key, shape, seed)
        else:
            plan[rename(key)] = Entry(shape, lambda s=shape, d=t.dtype: torch.zeros(s, dtype=d), t.dtype)
    return plan


def plan_from_shapes(shapes: Mapping[str, Any], seed: int) -> Plan:
    """A plan from ``key → tensor or shape`` (e.g. a meta state dict), values seeded by key."""
    return {k: random_entry(k, tuple(v.shape) if hasattr(v, "shape") else tuple(v), seed) for k, v in shapes.items()}


def converted_plan(shapes: Mapping[str, tuple[int, ...]], seed: int,
                   convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
                   groups: Iterable[Iterable[str]] | None = None) -> Plan:
    """A plan for the output of ``convert`` (a key renaming/reshaping such as diffusers → VGen names), applied to
    random source tensors seeded by their *source* keys. ``convert`` sees one group of source keys at a time
    (default: each key alone; group keys that it fuses, e.g. q|k|v); it runs on meta tensors to plan shapes."""
    plan: Plan = {}
    for group in (groups if groups is not None else ([k] for k in shapes)):
        group = list(group)
        meta = {k: torch.empty(shapes[k], device="meta") for k in group}
        for out_key, t in convert(meta).items():
            plan[out_key] = Entry(tuple(t.shape), partial(_converted, group, shapes, seed, convert, out_key))
    return plan


def _converted(group: list[str], shapes: Mapping[str, tuple[int, ...]], seed: int,
               convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], key: str) -> torch.Tensor:
    return convert({k: random_tensor(k, shapes[k], seed) for k in group})[key]


def meta_model(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``factory()`` with every parameter and buffer on the meta device (real size costs nothing)."""
    with torch.device("meta"):
        return factory()


# -- safetensors ---------------------------------------------------------------------------------------------------
def _ordered(plan: Plan) -> list[str]:
    # Widest dtype first: every tensor then starts at an offset aligned to its element size (zero-copy mmap loads).
    return sorted(plan, key=lambda k: -torch.empty((), dtype=plan[k].dtype).element_size())


def _produce(key: str, entry: Entry) -> torch.Tensor:
    t = entry.make()
    if tuple(t.shape) != entry.shape:
        raise ValueError(f"twin tensor {key!r} came out {list(t.shape)}, planned {list(entry.shape)}")
    return t.to(entry.dtype).contiguous()


def write_safetensors(path: str | Path, plan: Plan, metadata: Mapping[str, str] | None = None) -> int:
    """Write ``plan`` as one safetensors file, one tensor at a time. Returns the bytes of tensor data."""
    path = Path(path)
    header: dict[str, Any] = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    keys = _ordered(plan)
    for k in keys:
        e = plan[k]
        header[k] = {"dtype": _ST_DTYPES[e.dtype], "shape": list(e.shape), "data_offsets": [offset, offset + e.nbytes]}
        offset += e.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for k in keys:
            t = _produce(k, plan[k])
            f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # no copy; bf16 has no numpy dtype
            del t
    tmp.replace(path)
    return offset


def shard_plan(plan: Plan, max_bytes: int) -> list[list[str]]:
    """Keys in write order, cut into consecutive shards of at most ``max_bytes`` (a bigger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    size = 0
    for k in plan:
        n = plan[k].nbytes
        if shards[-1] and size + n > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(k)
        size += n
    return shards


def write_component(folder: str | Path, stem: str, plan: Plan, *, config: Mapping[str, Any] | None = None,
                    max_shard_bytes: int | None = DEFAULT_SHARD_BYTES) -> list[Path]:
    """A diffusers/transformers component folder: ``config.json`` and ``<stem>.safetensors``, or shards
    ``<stem>-00001-of-0000N.safetensors`` + ``<stem>.safetensors.index.json`` when it exceeds ``max_shard_bytes``
    (None: never shard). Returns the weight files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(dict(config), indent=2, sort_keys=True, default=list))
    groups = shard_plan(plan, max_shard_bytes) if max_shard_bytes else [list(plan)]
    if len(groups) == 1:
        write_safetensors(folder / f"{stem}.safetensors", plan)
        return [folder / f"{stem}.safetensors"]
    files, weight_map, total = [], {}, 0
    for i, keys in enumerate(groups, 1):
        name = f"{stem}-{i:05d}-of-{len(groups):05d}.safetensors"
        total += write_safetensors(folder / name, {k: plan[k] for k in keys})
        weight_map.update({k: name for k in keys})
        files.append(folder / name)
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return files


# -- torch pickles (.pth / .bin / .ckpt) ---------------------------------------------------------------------------
def write_torch_file(path: str | Path, plan: Plan, *, wrap: str | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """A zip-format torch file holding ``plan`` as a state dict (under ``wrap`` with ``extra`` beside it when
    given, e.g. ``{"state_dict": ..., "step": 0}``), loadable with ``torch.load(weights_only=True)``.

    The skeleton is saved from fake tensors without bytes, then each tensor is generated and copied into the file
    through a shared memory map, so memory never holds more than one tensor."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with FakeTensorMode():
        skeleton = {k: torch.empty(e.shape, dtype=e.dtype) for k, e in plan.items()}
    obj: Any = skeleton if wrap is None else {wrap: skeleton, **dict(extra or {})}
    with torch.serialization.skip_data(materialize_fake_tensors=True):
        torch.save(obj, tmp)
    del obj, skeleton
    old = torch.serialization.get_default_mmap_options()
    torch.serialization.set_default_mmap_options(mmap.MAP_SHARED)
    try:
        loaded = torch.load(tmp, mmap=True, weights_only=True)
    finally:
        torch.serialization.set_default_mmap_options(old)
    sd = loaded if wrap is None else loaded[wrap]
    from sdk.ml.process_memory import release_pages

    for k, e in plan.items():
        dst = sd[k]
        dst.copy_(_produce(k, e))
        release_pages(dst)  # written pages go back to the page cache: the writer's RSS stays one tensor
    del sd, loaded
    tmp.replace(path)
    return path
