"""ExVideo (DiffSynth-Studio, arXiv 2406.14130): CogVideoX-5B extended from 49 to 129 frames by a LoRA
(ECNU-CILab/ExVideo-CogVideoX-LoRA-129f-v1). Hook implementations only: no torch here.

``exvideo.cogvideox`` renders text → up to 129 frames on the ``cogvideox-5b`` weights (registered by the cogvideox
plugin) with the LoRA of weights id ``exvideo-cogvideox-lora-129f`` fused into the transformer
(:mod:`plugins.exvideo.lora`: exact key mapping, all keys used). ExVideo-SVD is not offered: docs/exvideo.md says why.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.specs import GeneratorSpec, WeightsFile, WeightsSpec

from plugins.exvideo.params import LORA_WEIGHTS, ExVideoCogParams

LORA_FILE = "ExVideo-CogVideoX-LoRA-129f-v1.safetensors"  # plugins.exvideo.lora.RELEASED_FILE (torch-free here)
LORA_LICENCE = ("Apache-2.0 (the LoRA's model card); it runs on CogVideoX-5B, whose CogVideoX LICENSE allows "
                "academic research only without registering with Zhipu AI")


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="exvideo.cogvideox",
        title="ExVideo CogVideoX-5B, up to 129 frames",
        method="ExVideo",
        params=ExVideoCogParams,
        entry="plugins.exvideo.pipeline:ExVideoCogGenerator",
        inputs=("text",),
        default_weights="cogvideox-5b",
        description="CogVideoX-5B with the ExVideo LoRA fused into its transformer: text → up to 129 frames (8k+1) "
                    "at 8 fps, 16 s. Published settings: 720×480, guidance 7, 100 steps. Needs the cogvideox-5b "
                    f"weights and the LoRA ({LORA_WEIGHTS}).",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [WeightsSpec(
        # its own method: the LoRA is not exvideo.cogvideox's --weights (those are cogvideox-5b), it is its `lora` param
        id=LORA_WEIGHTS, title="ExVideo-CogVideoX LoRA, 129 frames (v1)", method="ExVideo LoRA",
        formats=("safetensors",), source="huggingface", repo_id="ECNU-CILab/ExVideo-CogVideoX-LoRA-129f-v1",
        files=(WeightsFile(LORA_FILE),), licence=LORA_LICENCE, size_gb=1.0,
        tiny="plugins.exvideo.tiny:make_tiny_weights",
        description="A LoRA on CogVideoX-5B's transformer (DiffSynth-Studio names) that extends it to 129 frames; "
                    "used by exvideo.cogvideox on top of the cogvideox-5b weights.",
    )]
