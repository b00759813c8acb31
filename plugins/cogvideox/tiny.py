"""Tiny (and real-size) twins of the CogVideoX weights ids, in the hub's diffusers layout (:func:`sdk.ml.cogvideox.
write_twin`): one builder per weights id, as ``WeightsSpec.tiny`` names them."""
from __future__ import annotations

from pathlib import Path

#: weights id -> twin variant
VARIANT = {"cogvideox-2b": "2b", "cogvideox-5b": "5b", "cogvideox-5b-i2v": "5b-i2v", "cogvideox1.5-5b": "1.5-5b"}


def make_tiny_weights(dir: Path, format: str = "diffusers", seed: int = 0, size: str = "tiny",
                      variant: str = "2b") -> Path:
    """Write a CogVideoX snapshot of random weights into ``dir`` and return it."""
    if format != "diffusers":
        raise ValueError(f"Unknown weights format {format!r}; CogVideoX weights come as a diffusers folder")
    from sdk.ml.cogvideox import write_twin

    return write_twin(dir, variant=variant, size=size, seed=seed)


def make_2b(dir: Path, format: str = "diffusers", seed: int = 0, size: str = "tiny") -> Path:
    return make_tiny_weights(dir, format, seed, size, "2b")


def make_5b(dir: Path, format: str = "diffusers", seed: int = 0, size: str = "tiny") -> Path:
    return make_tiny_weights(dir, format, seed, size, "5b")


def make_5b_i2v(dir: Path, format: str = "diffusers", seed: int = 0, size: str = "tiny") -> Path:
    return make_tiny_weights(dir, format, seed, size, "5b-i2v")


def make_1_5_5b(dir: Path, format: str = "diffusers", seed: int = 0, size: str = "tiny") -> Path:
    return make_tiny_weights(dir, format, seed, size, "1.5-5b")
