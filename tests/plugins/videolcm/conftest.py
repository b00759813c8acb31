"""One tiny TF-T2V teacher per session for the distillation tests (the trainer reads it, never writes it)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def teacher_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plugins.tf_t2v.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("teacher") / "tft2v-tiny")
