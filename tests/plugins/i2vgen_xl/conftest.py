"""Shared tiny twins of I2VGen-XL (written once per session, both formats from one random init)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLE_IMAGE = REPO / "project_templates" / "image-to-video" / "sample.png"


@pytest.fixture(scope="session")
def sample_image() -> Path:
    return SAMPLE_IMAGE


@pytest.fixture(scope="session")
def i2v_twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from plugins.i2vgen_xl.tiny import make_tiny_weights

    root = tmp_path_factory.mktemp("i2v-twins")
    return {fmt: make_tiny_weights(root / fmt, fmt, seed=3) for fmt in ("diffusers", "vgen")}
