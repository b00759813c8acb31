"""Before a job loads anything: how much memory will it need, and which memory mode fits (DESIGN §2, §7)?

The estimate has three parts, each documented so a user can check it:

- **weights**: the bytes of the tensors the loaders will read, at the job's dtype; with ``precision=int8|fp8`` the
  denoiser's Linear weights (2-D ``….weight`` tensors that are not embedding tables,
  :func:`sdk.ml.quantize.is_linear_weight`) at 1 byte per element plus their per-row scales
  (:data:`sdk.ml.quantize.ROW_BYTES`), the rest of it at the compute dtype. Read from the files' tensor
  metadata, not their data (safetensors headers; torch zip checkpoints opened with ``mmap=True`` and
  ``weights_only=True``, which touches no tensor data). In a VGen folder only the parts that are used count: the
  UNet ``.pth``, the text tower of ``open_clip_pytorch_model.bin`` (not ``visual.*``) and the VAE of
  ``v2-1_512-ema-pruned.ckpt`` (``first_stage_model.*``).
- **denoiser activations**: ``DENOISER_BYTES_PER_UNIT × batch × frames × (height/8) × (width/8) × C0 × dtype
  bytes``, C0 being the denoiser's first-block width (320 for every VGen UNet), batch 2 with classifier-free
  guidance run as one doubled batch. The factor was measured on the real-size ModelScope UNet at 16×256² on the
  CPU; a generator whose activations per unit differ (measured at its own sizes) says so in its params class
  (``DENOISER_BYTES_PER_UNIT``, :func:`denoiser_bytes_per_unit`), as one that runs the guidance's branches as two
  batch-1 calls does (``CFG_BATCHED = False``, :func:`cfg_batched`).
- **VAE decode**: ``VAE_BYTES_PER_PIXEL × frames decoded at once × height × width × dtype bytes``.

Where the weights live during the job depends on the mode (:mod:`sdk.ml.memory`): all of them on the device in
``none``; the largest component in ``balanced`` on a GPU; one denoiser block plus the largest other component in
``low``/``minimum`` on a GPU. On the CPU everything is in RAM, less the encoders once freed.

The available memory is the device's free memory (CUDA: ``mem_get_info``; CPU: ``MemAvailable``) plus what the
worker's cache already holds for these weights, capped by ``VGEN_MEMORY_BUDGET`` (bytes, or ``12GB``/``800MB``) when
it is set: a way to keep a shared machine's worker smaller than the machine.
"""
from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sdk.errors import InvalidRequest, OutOfMemory
from sdk.ml.memory import DECODE_CHUNK_CAP, MODES
from sdk.ml.quantize import BYTES_PER_WEIGHT, ROW_BYTES, is_linear_weight

#: measured: peak denoiser activations per (batch × frame × latent pixel × first-block channel × dtype byte)
DENOISER_BYTES_PER_UNIT = 140.0
#: measured: peak VAE-decode activations per (decoded frame × output pixel × dtype byte)
VAE_BYTES_PER_PIXEL = 850.0
#: share of the denoiser's activations left by feed-forward chunking (low) and sliced attention (minimum)
MODE_ACTIVATION_SHARE = {"none": 1.0, "balanced": 1.0, "low": 0.75, "minimum": 0.55}
#: a job is only started where the estimate fits with this much room to spare
MARGIN = 1.15
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1}
_OPEN_CLIP = "open_clip_pytorch_model.bin"
_SD_CKPT = "v2-1_512-ema-pruned.ckpt"


@dataclass
class Component:
    """One weights file's contribution: its tensors' element count and the first conv's output width (if any)."""

    name: str
    role: str          # denoiser | vae | encoder
    numel: int
    float_numel: int   # elements cast to the job's dtype (integer buffers keep theirs)
    first_width: int = 0
    linear_numel: int = 0  # denoiser: elements of its Linear weights (what int8/fp8 quantize)
    linear_rows: int = 0   # denoiser: their output rows (one scale each)

    def bytes_at(self, size: int, quantization: str = "none") -> int:
        """Bytes this component holds with floats of ``size`` bytes, its Linear weights quantized as
        ``quantization`` when it is the denoiser."""
        plain = self.float_numel * size + (self.numel - self.float_numel) * 8
        if self.role != "denoiser" or quantization not in BYTES_PER_WEIGHT:
            return plain
        return plain - self.linear_numel * size + self.linear_numel * BYTES_PER_WEIGHT[quantization] \
            + self.linear_rows * ROW_BYTES[quantization]


@dataclass
class Estimate:
    mode: str
    weights_bytes: int
    resident_weights_bytes: int
    activations_bytes: int
    total_bytes: int
    available_bytes: int

    @property
    def fits(self) -> bool:
        return self.total_bytes * MARGIN <= self.available_bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gb(n: float) -> str:
    """Bytes for people: ``12.3 GB`` or, below a gigabyte, ``412 MB``."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


# -- what the weights hold ---------------------------------------------------------------------------------------
def _safetensors_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size))


def _tensors(path: Path, keep: Any = None) -> list[tuple[str, tuple[int, ...], int, bool]]:
    """(key, shape, bytes per element, is float) of every tensor in ``path`` whose key ``keep(key)`` accepts."""
    out = []
    if path.suffix == ".safetensors":
        for key, info in _safetensors_header(path).items():
            if key == "__metadata__" or (keep and not keep(key)):
                continue
            out.append((key, tuple(info["shape"]), _DTYPE_BYTES.get(info["dtype"], 4), info["dtype"].startswith(("F", "BF"))))
        return out
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)  # no tensor data is read
    except Exception:  # a legacy (non-zip) pickle cannot be mapped: count its size as float32 tensors
        n = path.stat().st_size // 4
        return [(path.name, (n,), 4, True)]
    while isinstance(sd, dict) and not any(isinstance(v, torch.Tensor) for v in sd.values()):
        inner = next((v for k, v in sd.items() if k in ("state_dict", "model", "module") and isinstance(v, dict)), None)
        if inner is None:
            break
        sd = inner
    for key, t in (sd.items() if isinstance(sd, dict) else []):
        if isinstance(t, torch.Tensor) and not (keep and not keep(key)):
            out.append((key, tuple(t.shape), t.element_size(), t.is_floating_point()))
    return out


def _component(name: str, role: str, files: list[Path], keep: Any = None) -> Component:
    numel = float_numel = first = linear = rows = 0
    for f in files:
        for key, shape, _, is_float in _tensors(f, keep):
            n = 1
            for d in shape:
                n *= d
            numel += n
            float_numel += n if is_float else 0
            if role == "denoiser" and is_float and is_linear_weight(key, shape):
                linear += n
                rows += shape[0]
            if role == "denoiser" and not first and len(shape) in (4, 5) and re.search(
                    r"(^|\.)(conv_in|input_blocks\.0\.0)\.weight$", key):
                first = int(shape[0])
    return Component(name, role, numel, float_numel, first, linear, rows)


def components(weights: Path) -> list[Component]:
    """The components a generator will load from ``weights`` (a diffusers folder, a VGen folder or a UNet file)."""
    weights = Path(weights)
    root = weights.parent if weights.is_file() else weights
    if (root / "model_index.json").is_file():
        out = []
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(p for p in sub.iterdir() if p.suffix in WEIGHT_SUFFIXES and not p.name.startswith("."))
            safes = [p for p in files if p.suffix == ".safetensors"]
            files = safes or files  # a folder with both formats: the loader reads the safetensors
            if not files:
                continue
            role = ("denoiser" if sub.name in ("unet", "transformer") else "vae" if sub.name == "vae"
                    else "encoder")
            out.append(_component(sub.name, role, files))
        return out
    unets = [weights] if weights.is_file() else sorted(
        p for p in root.glob("*.pt*") if p.suffix in (".pth", ".pt") and p.name not in (_OPEN_CLIP, _SD_CKPT))
    out = [_component(u.name, "denoiser", [u]) for u in unets[:1]]
    if (root / _OPEN_CLIP).is_file():
        out.append(_component("text_encoder", "encoder", [root / _OPEN_CLIP], lambda k: not k.startswith("visual.")))
    if (root / _SD_CKPT).is_file():
        out.append(_component("vae", "vae", [root / _SD_CKPT],
                              lambda k: k.startswith("first_stage_model.") or not k.startswith("model.")))
    return out


# -- the estimate ------------------------------------------------------------------------------------------------
def parse_bytes(text: str) -> int:
    """``"12GB"``, ``"800 MB"``, ``"1.5G"`` or a plain number of bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise InvalidRequest(f"Cannot read the memory amount {text!r}.", hint="Write e.g. 12GB, 800MB or 1.5G.",
                             field="memory_budget")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def available_bytes(device: torch.device, cached_bytes: int = 0) -> int:
    """Free memory on ``device`` plus ``cached_bytes`` (models the worker already holds for this job), capped by
    ``VGEN_MEMORY_BUDGET`` minus what the worker process uses besides that cache."""
    if device.type == "cuda":
        free = int(torch.cuda.mem_get_info(device)[0])
        used = int(torch.cuda.memory_allocated(device))
    elif device.type == "mps":
        free = int(torch.mps.recommended_max_memory() - torch.mps.current_allocated_memory())
        used = int(torch.mps.current_allocated_memory())
    else:
        from sdk.devices import _meminfo

        free = _meminfo().get("MemAvailable", 0)
        used = _rss()
    budget = os.environ.get("VGEN_MEMORY_BUDGET")
    if budget:
        free = min(free, max(0, parse_bytes(budget) - max(0, used - cached_bytes)))
    return free + cached_bytes


def _rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def estimate(parts: list[Component], *, mode: str, device: torch.device, dtype: torch.dtype, frames: int,
             height: int, width: int, cfg: bool, decode_chunk: int | None, available: int,
             bytes_per_unit: float | None = None, quantization: str = "none") -> Estimate:
    """Peak bytes of one job in ``mode`` (see the module docstring for the model); ``bytes_per_unit`` replaces
    :data:`DENOISER_BYTES_PER_UNIT` for a denoiser measured on its own; ``quantization`` (``int8``/``fp8``) counts
    the denoiser's Linear weights as quantized (``dtype`` is then the compute dtype)."""
    size = torch.tensor([], dtype=dtype).element_size()
    by_role: dict[str, int] = {}
    for c in parts:
        b = c.bytes_at(size, quantization)
        by_role[c.role] = by_role.get(c.role, 0) + b
    weights = sum(by_role.values())
    den = by_role.get("denoiser", 0)
    others = [v for k, v in by_role.items() if k != "denoiser"]
    if device.type == "cpu" or mode == "none":
        resident = weights - (by_role.get("encoder", 0) if device.type == "cpu" and mode in ("low", "minimum") else 0)
    elif mode == "balanced":
        resident = max([den] + others)
    else:  # one denoiser block at a time (~1/20 of it) plus the largest other component
        resident = den // 20 + max(others or [0])
    width0 = max((c.first_width for c in parts if c.role == "denoiser"), default=320) or 320
    latent = frames * max(1, height // 8) * max(1, width // 8)
    per_unit = DENOISER_BYTES_PER_UNIT if bytes_per_unit is None else bytes_per_unit
    act = per_unit * (2 if cfg else 1) * latent * width0 * size * MODE_ACTIVATION_SHARE[mode]
    cap = DECODE_CHUNK_CAP[mode]
    chunk = min(x for x in (frames, decode_chunk or frames, cap or frames) if x)
    vae_act = VAE_BYTES_PER_PIXEL * chunk * height * width * size
    activations = int(max(act, vae_act))
    return Estimate(mode, int(weights), int(resident), activations, int(resident + activations), int(available))


def cfg_batched(params: Any) -> bool:
    """Whether the denoiser runs classifier-free guidance as one doubled batch (``[uncond, cond]``: twice the
    activations): ``guidance_scale`` > 1, unless the params' class sets ``CFG_BATCHED = False`` because its generator
    runs the two branches as two batch-1 calls (SR600, as VGen does)."""
    return float(getattr(params, "guidance_scale", 0.0) or 0.0) > 1.0 and bool(getattr(type(params), "CFG_BATCHED", True))


def denoiser_bytes_per_unit(params: Any) -> float:
    """The activation factor for the job's denoiser: its params class's ``DENOISER_BYTES_PER_UNIT`` when it measured
    its own (SR600 at 720p, where the per-unit peak is well below the 256² calibration), else the module's."""
    return float(getattr(type(params), "DENOISER_BYTES_PER_UNIT", DENOISER_BYTES_PER_UNIT))


def choose_mode(requested: str, parts: list[Component], *, device: torch.device, dtype: torch.dtype, frames: int,
                height: int, width: int, cfg: bool, decode_chunk: int | None, cached_bytes: int = 0,
                bytes_per_unit: float | None = None, quantization: str = "none") -> tuple[str, Estimate]:
    """The mode to run in: ``requested``, or with ``auto`` the fastest that fits.

    Raises :class:`OutOfMemory` before anything loads when ``auto`` finds no mode that fits, with the needed and
    available memory and the settings to lower."""
    available = available_bytes(device, cached_bytes)

    def est(mode: str) -> Estimate:
        return estimate(parts, mode=mode, device=device, dtype=dtype, frames=frames, height=height, width=width,
                        cfg=cfg, decode_chunk=decode_chunk, available=available, bytes_per_unit=bytes_per_unit,
                        quantization=quantization)

    if requested != "auto":
        if requested not in MODES:
            raise InvalidRequest(f"Unknown memory_mode {requested!r}.",
                                 hint="Use one of: auto, " + ", ".join(MODES) + ".", field="memory_mode")
        return requested, est(requested)
    for mode in MODES:
        e = est(mode)
        if e.fits:
            return mode, e
    lightest = est(MODES[-1])
    raise OutOfMemory(
        f"This job needs about {gb(lightest.total_bytes * MARGIN)} even in memory_mode=minimum, but only "
        f"{gb(available)} is available on {device} ({frames} frames at {width}×{height}, {str(dtype)[6:]}).",
        hint="Lower num_frames, height or width, use precision bf16/fp16 instead of fp32 (or int8: quantized "
             "denoiser weights), close other programs, or "
             "raise VGEN_MEMORY_BUDGET if it is set.")
