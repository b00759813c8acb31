"""Safe checkpoint loading: safetensors, or ``torch.load(..., weights_only=True)`` — never plain pickle.

Both are memory-mapped (safetensors by default, torch files with ``mmap=True``) and :func:`load_into` assigns the
mapped tensors to a meta-built model, so loading never holds a second copy of the weights.

Every failure becomes a :class:`sdk.errors.VGenError` naming the file, the key and the fix.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from sdk.errors import IncompatibleCheckpoint, WeightsMissing

FETCH_HINT = "Create a tiny test copy with `vgen models make-tiny`, or download real weights with `vgen models fetch <id>`."
WRAPPER_KEYS = ("state_dict", "model_state_dict", "module", "model")
DEFAULT_PREFIXES = ("module.", "model.diffusion_model.")


def require_file(path: Path, what: str = "weights file") -> Path:
    path = Path(path)
    if not path.exists():
        raise WeightsMissing(f"The {what} {str(path)!r} does not exist.", hint=FETCH_HINT)
    return path


def load_state_dict(path: str | Path, *, strip: Iterable[str] = DEFAULT_PREFIXES) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` (or a sharded ``*.index.json``) or a torch pickle loaded with
    ``weights_only=True``. Unwraps ``{'state_dict': ..., 'step': ...}`` and strips ``module.`` /
    ``model.diffusion_model.`` prefixes. A pickle that would run code is refused."""
    path = require_file(Path(path))
    if path.name.endswith(".index.json"):
        return _load_sharded(path, strip)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise IncompatibleCheckpoint(f"{path.name} is not a readable safetensors file: {exc}",
                                         hint="The file may be truncated; download or copy it again.") from None
    else:
        sd = _torch_load(path)
    return strip_prefixes(unwrap(sd, path), strip)


def _torch_load(path: Path) -> Any:
    # Memory-mapped: a tensor's bytes are read when used, so a 4 GB open_clip file whose text tower alone is used
    # costs the text tower, and a cast to bf16 never holds the fp32 file and the bf16 model at once
    # (sdk.ml.device.place releases each source tensor's pages after its copy). Legacy (pre-zip) files can't be
    # mapped and are read whole.
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise IncompatibleCheckpoint(
            f"Refused to load {path.name}: it is a pickle that would run code or build objects other than tensors "
            f"({str(exc).splitlines()[0][:200]}).",
            hint="Only tensors are loaded from untrusted files. Convert it to .safetensors with trusted tools, "
                 "or get the official checkpoint.",
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IncompatibleCheckpoint(f"{path.name} is not a readable torch checkpoint: {str(exc)[:200]}",
                                     hint="The file may be truncated or of another type; download or copy it again.") from None


def _load_sharded(index: Path, strip: Iterable[str]) -> dict[str, torch.Tensor]:
    weight_map = json.loads(index.read_text()).get("weight_map", {})
    out: dict[str, torch.Tensor] = {}
    for shard in dict.fromkeys(weight_map.values()):
        out.update(load_state_dict(index.parent / shard, strip=strip))
    return out


def unwrap(obj: Any, path: Path | None = None) -> dict[str, torch.Tensor]:
    """Return the tensor mapping inside ``obj`` (a raw state dict or a training checkpoint wrapping one)."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        name = path.name if path else "checkpoint"
        raise IncompatibleCheckpoint(f"{name} holds a {type(obj).__name__}, not a state dict.",
                                     hint="Give a file holding tensors (a state dict), e.g. the released .pth.")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def strip_prefixes(sd: dict[str, torch.Tensor], prefixes: Iterable[str] = DEFAULT_PREFIXES) -> dict[str, torch.Tensor]:
    prefixes = tuple(prefixes)
    if not prefixes:
        return sd
    out = {}
    for k, v in sd.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return out


def select_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys under ``prefix`` with the prefix removed (e.g. ``first_stage_model.`` of an LDM checkpoint)."""
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def check_compatible(expected: Mapping[str, Any], sd: Mapping[str, Any], *, source: str = "checkpoint",
                     target: str = "model") -> None:
    """Raise :class:`IncompatibleCheckpoint` naming the first missing, unexpected or mis-shaped key.

    ``expected`` maps key → tensor or shape (tuple/list)."""
    def shape(v: Any) -> tuple[int, ...]:
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    for key, want in expected.items():
        if key not in sd:
            n = sum(1 for k in expected if k not in sd)
            raise IncompatibleCheckpoint(
                f"{source} does not fit {target}: key {key!r} is missing ({n} missing in all).",
                hint="The file is for another model or version; pick weights made for this generator.")
        if shape(sd[key]) != shape(want):
            raise IncompatibleCheckpoint(
                f"{source} does not fit {target}: key {key!r} has shape {list(shape(sd[key]))} "
                f"but the model expects {list(shape(want))}.",
                hint="The file is for a model of another size or kind; pick weights made for this generator.")
    for key in sd:
        if key not in expected:
            n = sum(1 for k in sd if k not in expected)
            raise IncompatibleCheckpoint(
                f"{source} does not fit {target}: unexpected key {key!r} ({n} unexpected in all).",
                hint="The file is for another model or version; pick weights made for this generator.")


def load_into(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], *, source: str = "checkpoint",
              assign: bool | None = None) -> torch.nn.Module:
    """Strict load with clear errors. Parameters still on the meta device (built by :func:`empty_model`) are
    replaced by the checkpoint's tensors (``assign``)."""
    expected = model.state_dict()
    check_compatible(expected, sd, source=source, target=type(model).__name__)
    if assign is None:
        assign = any(t.is_meta for t in expected.values())
    if assign:
        sd = {k: v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v
              for k, v in sd.items()}
    model.load_state_dict(dict(sd), strict=True, assign=assign)
    return model


def empty_model(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a model with parameters on the meta device (no init cost); buffers stay real.
    Follow with :func:`load_into`, which assigns the checkpoint's tensors."""
    try:
        from accelerate import init_empty_weights
    except ImportError:  # pragma: no cover - accelerate is a dependency
        ctx: Any = contextlib.nullcontext()
    else:
        ctx = init_empty_weights(include_buffers=False)
    with ctx:
        return factory()


def find_weights_file(folder: Path, stems: Iterable[str]) -> Path:
    """The weights file of a diffusers/transformers component folder (safetensors first, then shards, then .bin)."""
    folder = require_file(Path(folder), "weights folder")
    for stem in stems:
        for name in (f"{stem}.safetensors", f"{stem}.safetensors.index.json", f"{stem}.bin", f"{stem}.bin.index.json"):
            if (folder / name).exists():
                return folder / name
    raise WeightsMissing(f"No weights file in {str(folder)!r} (looked for {', '.join(stems)}.safetensors/.bin).",
                         hint=FETCH_HINT)


def read_json(path: Path) -> dict[str, Any]:
    path = require_file(Path(path), "config file")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise IncompatibleCheckpoint(f"{path} is not valid JSON: {exc}", hint="Download or copy the folder again.") from None


def load_torch_file(path: str | Path, *, allow: Iterable[type] = ()) -> Any:
    """The raw object of a torch pickle, loaded with ``weights_only=True``; ``allow`` adds torch classes the file
    may hold (e.g. ``torch.nn.ParameterDict`` in textual-inversion files) to the weights-only allowlist.
    Raises :class:`IncompatibleCheckpoint` for a file that would run code or cannot be read."""
    path = require_file(Path(path))
    with torch.serialization.safe_globals(list(allow)):
        return _torch_load(path)
