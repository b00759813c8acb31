from __future__ import annotations

import os
from pathlib import Path

import pytest

# Qt aborts without a display unless told to render offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_models_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the user's models directory."""
    monkeypatch.setenv("VGEN_MODELS_DIR", str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="session")
def tiny_t2v_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny ModelScope-T2V weights in the diffusers layout, written once per session."""
    from plugins.modelscope_t2v.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("weights") / "ms-tiny", "diffusers")
