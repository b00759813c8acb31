"""Parameters of ``exvideo.cogvideox`` (torch-free: the GUI builds forms from the schema)."""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from sdk.ml.cogvideox_models import frames_problem
from sdk.params import GenerateParams

#: the LoRA's frame count: CogVideoX-5B (49 frames) extended to 129 = 8·16 + 1
MAX_FRAMES = 129
LORA_WEIGHTS = "exvideo-cogvideox-lora-129f"


def frames_error(frames: int) -> str | None:
    """Why ``frames`` cannot be rendered (None when it can): CogVideoX's 8k+1 rule, at most the LoRA's 129."""
    problem = frames_problem(frames, MAX_FRAMES, adapter=False)
    return " ".join(problem) if problem else None


class ExVideoCogParams(GenerateParams):
    """The published ExVideo-CogVideoX settings (DiffSynth-Studio's example): 720×480, 129 frames, guidance 7,
    100 steps, 8 fps."""

    #: T5-XXL reads 226 tokens: the queue's CLIP 77-token warning does not apply
    TEXT_ENCODER: ClassVar[str] = "t5"
    #: guidance runs both branches in one batch (diffusers' CogVideoX pipeline)
    CFG_BATCHED: ClassVar[bool] = True
    #: the preflight's activation factor (sdk.ml.preflight: bytes per batch × frame × (h/8)(w/8) × 320 × dtype
    #: byte). Derived, not measured: the cogvideox plugin's 6 for CogVideoX-2B's 1920-wide blocks, scaled to the
    #: 5B's 3072 (×1.6); SDPA keeps attention memory linear in the tokens, so 129 frames cost 129/49 of 49.
    DENOISER_BYTES_PER_UNIT: ClassVar[float] = 10.0
    #: CogVideoX's VAE decodes two latent frames (8 frames) at a time with its causal conv cache, whatever the mode
    decode_chunk_size: ClassVar[int] = 8

    num_frames: int = Field(MAX_FRAMES, ge=1, le=MAX_FRAMES, description=(
        "Frames to render: 8k+1 (9, 17, …, 129). The LoRA extends CogVideoX-5B from 49 to 129 frames."))
    height: int = Field(480, ge=16, le=2048, multiple_of=16, description="Frame height (a multiple of 16).")
    width: int = Field(720, ge=16, le=2048, multiple_of=16, description="Frame width (a multiple of 16).")
    num_inference_steps: int = Field(100, ge=1, le=1000, description="Denoising steps (ExVideo's example: 100).")
    guidance_scale: float = Field(7.0, ge=0.0, le=50.0, description="Classifier-free guidance (ExVideo: 7).")
    use_dynamic_cfg: bool = Field(False, description=(
        "CogVideoX-5B's dynamic guidance schedule (diffusers' use_dynamic_cfg). Off by default: ExVideo's published "
        "example (DiffSynth-Studio) guides with a constant 7."))
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video (ExVideo: 8).")
    lora: str = Field(LORA_WEIGHTS, min_length=1, description=(
        "The ExVideo LoRA: an installed weights id or the path of ExVideo-CogVideoX-LoRA-129f-v1.safetensors."))
    lora_scale: float = Field(1.0, ge=-4.0, le=4.0, description=(
        "How strongly the LoRA is fused (W + scale·B·A; DiffSynth's lora_alpha, default 1). 0 renders plain "
        "CogVideoX-5B."))

    @field_validator("num_frames")
    @classmethod
    def _four_k_plus_one(cls, value: int) -> int:
        why = frames_error(value)
        if why:
            raise ValueError(why)
        return value

    def check_inputs(self, given: frozenset[str], project: object) -> None:
        """At queue time: the LoRA must be installed (an id) or be a .safetensors file (a path)."""
        from pathlib import Path

        from sdk import weights as w
        from sdk.errors import InvalidRequest

        path, _ = w.resolve(self.lora, LORA_WEIGHTS)  # WeightsMissing naming the id and how to get it
        if path.is_file() and path.suffix.lower() != ".safetensors":
            raise InvalidRequest(f"lora {self.lora!r} is not a .safetensors file.",
                                 hint="Give the released ExVideo-CogVideoX-LoRA-129f-v1.safetensors (safetensors "
                                      "only: other formats can run code when loaded).", field="lora")
        if path.is_dir() and not any(Path(path).glob("*.safetensors")):
            raise InvalidRequest(f"lora folder {str(path)!r} holds no .safetensors file.",
                                 hint="Point lora at ExVideo-CogVideoX-LoRA-129f-v1.safetensors.", field="lora")

    def queue_warnings(self) -> list[str]:
        """CogVideoX's scheduler is not VGen's DDIM: the base class's DDIM-divisor warning does not apply."""
        return []
