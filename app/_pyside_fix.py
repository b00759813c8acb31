"""Work around a PySide6 6.12 bug on Python 3.11: it hands out None, True and False without
taking a reference (as if they were immortal, which they are only from Python 3.12 on).

Measured: every ``QModelIndex.data()`` that returns nothing and every ``Signal.emit()`` costs
``None``/``True`` one reference, so a window that paints item views aborts within seconds with
"Fatal Python error: none_dealloc: deallocating None". Making those singletons immortal by hand
(a reference count no leak can exhaust, as Python 3.12 does) keeps the process alive; on 3.12+
this does nothing. Remove it when the project moves to Python ≥ 3.12 or a PySide6 that increfs.
"""
from __future__ import annotations

import ctypes
import sys

_IMMORTAL = 1 << 60
_applied = False


def make_singletons_immortal() -> None:
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for obj in (None, True, False, Ellipsis, NotImplemented):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is PyObject's first field
        refcnt.value = max(refcnt.value, 0) + _IMMORTAL
    _applied = True
