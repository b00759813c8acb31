from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def iv_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny InstructVideo twin per session (base, released LoRA UNet, encoders); tests never write to it."""
    from plugins.instructvideo.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("iv") / "tiny")
