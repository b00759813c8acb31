"""The tiny twin of the ExVideo-CogVideoX LoRA: the released file's name and key scheme (DiffSynth names, PEFT pairs
``lora_A/lora_B.default``), rank 2, shaped for the tiny CogVideoX-5B twin (``sdk.ml.cogvideox.write_twin(variant=
"5b")``), so that fusing it into that twin's transformer uses every key."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from plugins.exvideo.lora import RELEASED_FILE, write_lora_twin


def tiny_base_transformer(seed: int = 0):
    """A transformer of the tiny CogVideoX-5B twin's shape (its config, random values)."""
    from diffusers import CogVideoXTransformer3DModel

    from sdk.ml.cogvideox import write_twin

    with tempfile.TemporaryDirectory(prefix="vgen-cog5b-") as tmp:
        folder = write_twin(Path(tmp) / "cog5b", variant="5b", size="tiny", seed=seed)
        config = json.loads((folder / "transformer" / "config.json").read_text())
    return CogVideoXTransformer3DModel.from_config(config)


def make_tiny_weights(dir: Path, format: str = "safetensors", seed: int = 0) -> Path:
    """Write ``dir/ExVideo-CogVideoX-LoRA-129f-v1.safetensors`` (random, rank 2) and return ``dir``."""
    if format != "safetensors":
        raise ValueError(f"Unknown weights format {format!r}; the ExVideo LoRA comes as one safetensors file")
    out = Path(dir)
    write_lora_twin(out, tiny_base_transformer(), rank=2, seed=seed)
    (out / "vgen_studio.json").write_text(json.dumps(
        {"preset": "exvideo-cogvideox-lora-129f", "twin": "tiny", "seed": seed, "file": RELEASED_FILE,
         "note": "Random weights for the tiny CogVideoX-5B twin: they produce noise."}, indent=2))
    return out
