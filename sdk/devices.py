"""Which devices this machine has, found without importing torch (the service and the GUI stay torch-free).

The worker checks again with torch (``sdk.ml.probe``); this module only answers "may a worker be started on
``cuda:1`` here?" before one is, so a wrong ``--device`` fails at once, naming what there is, and no job moves.

Device strings are torch's: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``mps``, ``cuda``, ``cuda:N``;
several, comma-separated (``cuda:0,cuda:1``), start one worker each.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sdk.errors import InvalidRequest

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(:\d+)?$")


@dataclass(frozen=True)
class DeviceInfo:
    """One device: ``id`` as torch names it, a human ``name``, memory in bytes (-1 when unknown)."""

    id: str
    name: str
    total_bytes: int = -1
    free_bytes: int = -1
    #: CPU only: the processor runs bf16 matmuls natively (AMX-BF16; AVX512-BF16 alone is slower than fp32)
    native_bf16: bool = False

    def describe(self) -> str:
        mem = f", {self.total_bytes / 2**30:.0f} GB" if self.total_bytes > 0 else ""
        return f"{self.id} ({self.name}{mem})"


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def _cpu_flags_and_name() -> tuple[set[str], str]:
    flags: set[str] = set()
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.partition(":")[2].split())
            elif line.startswith("model name"):
                name = line.partition(":")[2].strip()
    except OSError:
        pass
    return flags, name


def cpu_info() -> DeviceInfo:
    flags, name = _cpu_flags_and_name()
    mem = _meminfo()
    # AMX only: with AVX512-BF16 alone a bf16 matmul runs at half the fp32 speed (sdk.ml.accel.cpu_bf16_native)
    native = "amx_bf16" in flags
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        native = True  # Apple M-series run bf16 natively
    return DeviceInfo("cpu", f"{name}, {os.cpu_count()} threads", mem.get("MemTotal", -1),
                      mem.get("MemAvailable", -1), native_bf16=native)


def cuda_devices() -> list[DeviceInfo]:
    """CUDA devices as ``nvidia-smi`` lists them (respecting ``CUDA_VISIBLE_DEVICES``); [] without a driver."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return []
    smi = shutil.which("nvidia-smi")
    rows: list[DeviceInfo] = []
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=index,name,memory.total,memory.free",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            for line in out.stdout.strip().splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 4 and parts[0].isdigit():
                    rows.append(DeviceInfo(f"cuda:{parts[0]}", parts[1], int(float(parts[2])) * 2**20,
                                           int(float(parts[3])) * 2**20))
    elif Path("/proc/driver/nvidia/gpus").is_dir():
        for i, gpu in enumerate(sorted(Path("/proc/driver/nvidia/gpus").iterdir())):
            name = "NVIDIA GPU"
            try:
                for line in (gpu / "information").read_text().splitlines():
                    if line.startswith("Model:"):
                        name = line.partition(":")[2].strip()
            except OSError:
                pass
            rows.append(DeviceInfo(f"cuda:{i}", name))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible and rows:
        keep = [v.strip() for v in visible.split(",") if v.strip().isdigit()]
        rows = [DeviceInfo(f"cuda:{n}", r.name, r.total_bytes, r.free_bytes)
                for n, r in enumerate(r for r in rows if r.id.split(":")[1] in keep)]
    return rows


def mps_available() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def available() -> list[DeviceInfo]:
    """Every device a worker could use here: CUDA devices, MPS, then the CPU."""
    devs = cuda_devices()
    if mps_available():
        devs.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    devs.append(cpu_info())
    return devs


def parse_devices(spec: str | None) -> list[str]:
    """``"cuda:0,cuda:1"`` → ``["cuda:0", "cuda:1"]``, checked against this machine.

    Raises :class:`InvalidRequest` (field ``device``) for a malformed name, a repeated device, or a device this
    machine lacks, naming the devices it has."""
    items = [s.strip().lower() for s in str(spec or "auto").split(",") if s.strip()] or ["auto"]
    here = available()
    names = ", ".join(d.describe() for d in here)
    for item in items:
        if not _DEVICE_RE.match(item) or item.startswith(("auto:", "cpu:", "mps:")):
            raise InvalidRequest(f"Unknown device {item!r}.", hint=f"Use auto, cpu, mps, cuda or cuda:N. This machine "
                                 f"has: {names}.", field="device")
    if len(set(items)) != len(items) or (len(items) > 1 and "auto" in items):
        raise InvalidRequest(f"The device list {spec!r} repeats a device.",
                             hint="Name each device once, e.g. cuda:0,cuda:1.", field="device")
    cuda_ids = {d.id for d in here if d.id.startswith("cuda")}
    for item in items:
        if item.startswith("cuda") and not cuda_ids:
            raise InvalidRequest(f"Device {item!r} was asked for, but this machine has no CUDA device.",
                                 hint=f"Use --device auto or cpu. This machine has: {names}.", field="device")
        if item.startswith("cuda:") and item not in cuda_ids:
            raise InvalidRequest(f"Device {item!r} does not exist here.",
                                 hint=f"This machine has: {names}.", field="device")
        if item == "mps" and not mps_available():
            raise InvalidRequest("Device 'mps' was asked for, but this is not an Apple-silicon Mac.",
                                 hint=f"Use --device auto or cpu. This machine has: {names}.", field="device")
    return items


def default_device() -> str:
    """What ``auto`` means here: the first CUDA device, else MPS, else the CPU."""
    here = available()
    return here[0].id
