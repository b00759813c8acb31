"""The shared reference beside the checkout (``../shared``, or ``$VGEN_SHARED``): VGen's UNet manifests, which the
loaders must map key for key. A test that needs one is skipped, saying how to point at it, when it is not there."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def manifest(name: str) -> dict:
    """``reference/vgen_unet_manifests/<name>`` of the shared folder, parsed (skips the test when absent)."""
    roots = [Path(os.environ["VGEN_SHARED"]) if os.environ.get("VGEN_SHARED") else None, REPO.parent / "shared"]
    for root in filter(None, roots):
        path = root / "reference" / "vgen_unet_manifests" / name
        if path.exists():
            return json.loads(path.read_text())
    pytest.skip(f"manifest {name} not found (set VGEN_SHARED to the shared folder holding reference/vgen_unet_manifests)")
