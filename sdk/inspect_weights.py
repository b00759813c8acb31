"""Read what a checkpoint file holds — tensor names, shapes and dtypes — without running code or importing torch.

Weights are checked at the door (``vgen models import``, ``queue add --weights``) by reading headers only:

- ``.safetensors``: the 8-byte header length and the JSON header; every tensor's byte range must lie inside the
  file and match its shape and dtype, and the data must end where the file ends (a truncated copy is refused).
- torch ``.pth/.bin/.ckpt/.pt`` (the zip format of ``torch.save`` since torch 1.6): the zip's ``data.pkl`` is read
  by a restricted unpickler that knows only the globals a weights file needs (``OrderedDict``, storage types,
  ``torch._utils._rebuild_tensor_v2`` …). Each tensor becomes a :class:`TensorInfo`; any other global
  (``os.system``, ``builtins.eval``, a class to build) refuses the file *before* it is called. Every storage
  record must exist in the zip with the size its tensors need.
- The legacy (pre-1.6, non-zip) torch pickle is refused with how to convert it.

Nothing here imports torch; a multi-GB checkpoint is inspected in milliseconds.
"""
from __future__ import annotations

import collections
import io
import json
import math
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sdk.errors import IncompatibleCheckpoint

#: A weights file's pickle larger than this is not a state dict (real UNets' data.pkl are well under 1 MB).
MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
WRAPPER_KEYS = ("state_dict", "model_state_dict", "module", "model")  # as sdk.ml.checkpoints unwraps them
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

# safetensors dtype → (torch's name for it, bytes per element)
_SAFETENSORS_DTYPES = {"F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
                       "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1),
                       "U64": ("uint64", 8), "U32": ("uint32", 4), "U16": ("uint16", 2), "U8": ("uint8", 1),
                       "BOOL": ("bool", 1), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
                       "C64": ("complex64", 8), "C128": ("complex128", 16)}
_STORAGE_TYPES = {"DoubleStorage": ("float64", 8), "FloatStorage": ("float32", 4), "HalfStorage": ("float16", 2),
                  "BFloat16Storage": ("bfloat16", 2), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
                  "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
                  "BoolStorage": ("bool", 1), "ComplexFloatStorage": ("complex64", 8),
                  "ComplexDoubleStorage": ("complex128", 16), "UntypedStorage": ("uint8", 1)}
_DTYPE_SIZES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
                "int8": 1, "uint8": 1, "bool": 1, "uint16": 2, "uint32": 4, "uint64": 8, "complex64": 8,
                "complex128": 16, "float8_e4m3fn": 1, "float8_e5m2": 1}
CONVERT_HINT = ("Only tensors are read from weights files. To re-save a file you trust in a safe format: in Python "
                "with torch, `torch.save(torch.load(OLD, weights_only=True), NEW)`, or convert it to .safetensors.")

_CODE_HINT = ("Nothing in it was run. Get the weights from their official source (`vgen models fetch ID`) or as "
              ".safetensors.")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as a checkpoint describes it (no data read)."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _bad(path: Path, problem: str, hint: str = "The file may be truncated or damaged: download or copy it again.") -> IncompatibleCheckpoint:
    return IncompatibleCheckpoint(f"{path.name} is not a readable weights file: {problem}.", hint=hint)


def read_tensors(path: str | Path) -> dict[str, TensorInfo]:
    """The state dict in ``path`` as ``{key: TensorInfo}``: unwrapped from ``{"state_dict": …}`` style wrappers,
    key prefixes kept. Raises :class:`IncompatibleCheckpoint` naming the file and the first problem (code in a
    pickle, truncation, not a weights file)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise _bad(path, f"it cannot be read ({exc.strerror or exc})", "Check the file's permissions.") from None
    if len(head) < 8:
        raise _bad(path, f"it is only {len(head)} bytes long")
    n = struct.unpack("<Q", head[:8])[0]
    if (head[8:9] == b"{" and 2 <= n <= MAX_HEADER_BYTES) or path.suffix.lower() == ".safetensors":
        return read_safetensors(path)  # (names the problem with the header of a damaged .safetensors)
    if head[:4] == b"PK\x03\x04":
        return unwrap(read_torch_zip(path), path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        if head[2:3] == b"\x8a" and int.from_bytes(head[4:14], "little") == _TORCH_MAGIC:
            raise _bad(path, "it is a legacy (pre-zip) torch checkpoint, which this app does not open", CONVERT_HINT)
        raise IncompatibleCheckpoint(f"Refused {path.name}: it is a plain Python pickle, which can run code.",
                                     hint=_CODE_HINT)
    raise _bad(path, "it is neither a safetensors file nor a torch zip checkpoint",
               "Give the .safetensors / .pth / .bin / .ckpt file of the weights.")


def unwrap(obj: Any, path: Path) -> dict[str, TensorInfo]:
    """The tensor mapping inside ``obj`` (a state dict, or a training checkpoint wrapping one under
    ``state_dict``/``model_state_dict``/``module``/``model``); non-tensor entries (``step``) are dropped."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, TensorInfo) for v in obj.values()):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise IncompatibleCheckpoint(f"{path.name} holds a {type(obj).__name__}, not a state dict.",
                                     hint="Give a file holding tensors (a state dict), e.g. the released .pth.")
    return {str(k): v for k, v in obj.items() if isinstance(v, TensorInfo)}


# -- safetensors --------------------------------------------------------------------------------------------------
def read_safetensors(path: Path) -> dict[str, TensorInfo]:
    """``{key: TensorInfo}`` from a safetensors header; checks every byte range against the file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise _bad(path, "the safetensors header is cut off")
        n = struct.unpack("<Q", raw)[0]
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise _bad(path, f"the safetensors header claims {n} bytes but the file has {size} bytes")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad(path, f"the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, "the safetensors header is not a JSON object")
    data_size = size - 8 - n
    out: dict[str, TensorInfo] = {}
    end_max = 0
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = meta["dtype"], tuple(int(s) for s in meta["shape"]), meta["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise _bad(path, f"the header entry of {key!r} is malformed") from None
        if dtype not in _SAFETENSORS_DTYPES:
            raise _bad(path, f"tensor {key!r} has an unknown dtype {dtype!r}")
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end) or any(s < 0 for s in shape):
            raise _bad(path, f"tensor {key!r} has invalid offsets or shape")
        name, itemsize = _SAFETENSORS_DTYPES[dtype]
        if end - begin != math.prod(shape) * itemsize:
            raise _bad(path, f"tensor {key!r} ({dtype} {list(shape)}) does not match its {end - begin} bytes")
        if end > data_size:
            raise _bad(path, f"tensor {key!r} ends at byte {end} of the data but the file holds only {data_size}"
                             " (truncated)")
        end_max = max(end_max, end)
        out[key] = TensorInfo(shape, name)
    if end_max != data_size:
        raise _bad(path, f"its data is {data_size} bytes but its tensors cover {end_max}")
    return out


# -- torch zip pickles -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _StorageType:
    dtype: str
    itemsize: int


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str
    itemsize: int
    numel: int


class _Refused(Exception):
    """A global the restricted unpickler will not touch (raised before anything is called)."""


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any, dtype: str | None = None) -> TensorInfo:
    if not isinstance(storage, _Storage):
        raise _Refused("a tensor without a storage record")
    shape, strides = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(shape) != len(strides):
        raise _Refused("a tensor whose shape and strides disagree")
    span = 0 if 0 in shape else int(offset) + 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    if span > storage.numel:
        raise _Refused(f"a tensor that reaches past its storage ({span} > {storage.numel} elements)")
    return TensorInfo(shape, dtype or storage.dtype)


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any,
                       dtype: Any, *rest: Any) -> TensorInfo:
    return _tensor(storage, offset, size, stride, dtype=str(dtype).removeprefix("torch."))


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    return func(*args)  # only allowlisted rebuild functions can reach here


class _DType(str):
    """A torch dtype named in a pickle (``torch.float16``), kept as its name."""


def _allowed() -> dict[tuple[str, str], Any]:
    rc: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "Counter"): collections.Counter,
        ("torch._utils", "_rebuild_tensor"): _tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch.nn.parameter", "Parameter"): "Parameter",
        ("torch", "Tensor"): "Tensor",
        ("torch", "Size"): tuple,
        ("torch", "device"): str,
        ("_codecs", "encode"): lambda text, encoding="latin1": str(text).encode(encoding),
        ("builtins", "set"): set, ("builtins", "bytearray"): bytearray, ("builtins", "complex"): complex,
    }
    for name, (dtype, size) in _STORAGE_TYPES.items():
        rc[("torch", name)] = _StorageType(dtype, size)
    rc[("torch.storage", "UntypedStorage")] = _StorageType("uint8", 1)
    for dtype in _DTYPE_SIZES:
        rc[("torch", dtype)] = _DType(dtype)
    return rc


_ALLOWED = _allowed()


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storages: dict[str, int]) -> None:
        super().__init__(io.BytesIO(data))
        self._sizes = storages  # zip record key → bytes

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise _Refused(f"it would call {module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise _Refused(f"it holds an unknown persistent object {str(pid)[:80]!r}")
        stype, key, numel = pid[1], str(pid[2]), int(pid[4])
        have = self._sizes.get(key)
        if have is None:
            raise _Refused(f"storage {key} is missing from the archive (truncated?)")
        if have < numel * stype.itemsize:
            raise _Refused(f"storage {key} holds {have} bytes but needs {numel * stype.itemsize} (truncated?)")
        return _Storage(key, stype.dtype, stype.itemsize, numel)


def read_torch_zip(path: Path) -> Any:
    """The object ``torch.save`` wrote, with tensors as :class:`TensorInfo`, read without running its code."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
                  [n for n in names if n == "data.pkl"]
            if not pkl:
                raise _bad(path, "it is a zip archive but not a torch checkpoint (no data.pkl)")
            root = pkl[0][: -len("data.pkl")]
            info = z.getinfo(pkl[0])
            if info.file_size > MAX_PICKLE_BYTES:
                raise _bad(path, f"its pickle is {info.file_size} bytes, too big for a state dict",
                           "Give the weights file itself (a state dict of tensors).")
            sizes = {n[len(root) + 5:]: z.getinfo(n).file_size for n in names if n.startswith(root + "data/")}
            data = z.read(pkl[0])
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _bad(path, f"the zip archive is damaged or truncated ({exc})") from None
    try:
        return _Unpickler(data, sizes).load()
    except _Refused as exc:
        problem = str(exc)
        if problem.startswith("it would call"):
            raise IncompatibleCheckpoint(
                f"Refused {path.name}: it is a pickle that would run code or build objects other than tensors "
                f"({problem}).",
                hint=_CODE_HINT) from None
        raise _bad(path, problem) from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
            struct.error, RecursionError) as exc:
        raise _bad(path, f"its pickle is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None
