"""Fixtures of the sdk tests."""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Callable

import pytest


class RunsCode:
    """Unpickling this calls os.system: what a malicious .pth does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_code_checkpoint(path: Path, marker: Path) -> Path:
    """A real torch zip checkpoint whose data.pkl calls ``os.system("touch MARKER")`` when unpickled (``torch.load``
    without ``weights_only`` would run it)."""
    import torch

    torch.save({"w": torch.zeros(2)}, path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in entries if n.endswith("/data.pkl"))
    entries[pkl] = pickle.dumps({"state_dict": {"w": RunsCode(marker)}}, protocol=2)
    path.unlink()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def code_checkpoint() -> Callable[[Path, Path], Path]:
    """``code_checkpoint(path, marker)`` writes a checkpoint that would create ``marker`` if its code ran."""
    return write_code_checkpoint


@pytest.fixture
def code_pickle() -> Callable[[Path], bytes]:
    """``code_pickle(marker)``: the bytes of a plain pickle that would create ``marker`` if unpickled."""
    return lambda marker: pickle.dumps(RunsCode(marker), protocol=4)
