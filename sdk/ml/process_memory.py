"""Process memory: resident-set figures, peak reset, and giving back the pages of memory-mapped weights.

Checkpoints are loaded memory-mapped (safetensors, ``torch.load(mmap=True, weights_only=True)``): a tensor's bytes stay in the file
until read. Casting such a tensor (fp32 file → bf16 model) reads its pages, which then stay resident as long as
the mapping lives — for the whole file, so a cast model would cost file + model. :func:`release_pages` hands the
pages of one already-copied tensor back to the kernel (``madvise(MADV_DONTNEED)``), so the cast costs the model
plus one tensor. Only pages of regular-file mappings are released: a private file mapping re-reads them from the
file if touched again, a shared one keeps them in the page cache — no data is lost either way.
"""
from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import os
import sys
from typing import Iterable

import torch

MADV_DONTNEED = 4
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_libc = None


def _madvise():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return _libc.madvise


def file_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of regular files (sorted), from ``/proc/self/maps``."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                if not path.startswith("/") or path.startswith(("/dev/", "/memfd:", "/SYSV")):
                    continue
                a, b = (int(v, 16) for v in parts[0].split("-"))
                out.append((a, b))
    except OSError:
        return []
    return sorted(out)


def _inside(ranges: list[tuple[int, int]], start: int, end: int) -> bool:
    i = bisect.bisect_right(ranges, (start, float("inf"))) - 1
    return i >= 0 and ranges[i][0] <= start and end <= ranges[i][1]


def byte_range(t: torch.Tensor) -> tuple[int, int]:
    """[first, last) byte address of a contiguous CPU tensor's data."""
    start = t.data_ptr()
    return start, start + t.numel() * t.element_size()


def release_ranges(ranges: Iterable[tuple[int, int]], mappings: list[tuple[int, int]] | None = None) -> int:
    """``madvise(MADV_DONTNEED)`` the whole pages inside each [start, end) that lies in a regular-file mapping.
    Returns the bytes released (0 off Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    maps = file_mappings() if mappings is None else mappings
    done = 0
    for start, end in ranges:
        lo = -(-start // _PAGE) * _PAGE  # whole pages only: a neighbour's bytes are never touched
        hi = end // _PAGE * _PAGE
        if hi <= lo or not _inside(maps, start, end):
            continue
        if _madvise()(lo, hi - lo, MADV_DONTNEED) == 0:
            done += hi - lo
    return done


def release_pages(*tensors: torch.Tensor) -> int:
    """Give back the resident pages of memory-mapped CPU tensors whose values were copied elsewhere."""
    ranges = [byte_range(t) for t in tensors if t.device.type == "cpu" and t.is_contiguous() and t.numel()]
    return release_ranges(ranges) if ranges else 0


# -- figures -------------------------------------------------------------------------------------------------------
def rss() -> dict[str, int]:
    """This process's memory in bytes: ``rss`` (now), ``anon``, ``file``, ``peak`` (VmHWM since start or the
    last :func:`reset_peak`). Empty off Linux."""
    keys = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "VmHWM": "peak"}
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in keys:
                    out[keys[name]] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def reset_peak() -> bool:
    """Reset the peak resident set (Linux ``/proc/self/clear_refs`` = 5), so the next :func:`rss` ``peak`` measures
    from now. Returns False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def trim() -> bool:
    """Return the free memory at the top and inside glibc's heaps to the kernel (``malloc_trim(0)``): call it after
    dropping a model, since the worker's malloc tuning (:data:`sdk.executor.MALLOC_ENV`) keeps freed heap memory
    for reuse. False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
