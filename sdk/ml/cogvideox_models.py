"""CogVideoX's released models and frame rule, torch-free: the plugins' params (read by the GUI and at queue time)
and :mod:`sdk.ml.cogvideox` (the worker) share one table."""
from __future__ import annotations

from dataclasses import dataclass

from sdk.errors import InvalidRequest

#: the ExVideo adapter that takes CogVideoX-5B past 49 frames (named when more frames are asked for)
EXVIDEO_WEIGHTS = "exvideo-cogvideox-lora-129f"
EXVIDEO_GENERATOR = "exvideo.cogvideox"
MAX_FRAMES = 49
APACHE = "Apache-2.0"
COG_LICENCE = ("CogVideoX LICENSE: free for academic research; commercial use only after registering with Zhipu AI "
               "(non-commercial without registration)")


@dataclass(frozen=True)
class CogModel:
    """Defaults of one released CogVideoX model (model cards; diffusers' pipeline docs)."""

    repo_id: str
    frames: int
    fps: int
    height: int
    width: int
    dynamic_cfg: bool
    licence: str
    commercial: bool
    kinds: tuple[str, ...]
    steps: int = 50
    guidance: float = 6.0
    size_gb: float = 0.0
    twin: str = "2b"


MODELS: dict[str, CogModel] = {
    "cogvideox-2b": CogModel("THUDM/CogVideoX-2b", 49, 8, 480, 720, False, APACHE, True, ("t2v", "v2v"),
                             size_gb=13.4, twin="2b"),
    "cogvideox-5b": CogModel("THUDM/CogVideoX-5b", 49, 8, 480, 720, True, COG_LICENCE, False, ("t2v", "v2v"),
                             size_gb=21.0, twin="5b"),
    "cogvideox-5b-i2v": CogModel("THUDM/CogVideoX-5b-I2V", 49, 8, 480, 720, True, COG_LICENCE, False, ("i2v",),
                                 size_gb=21.0, twin="5b-i2v"),
    # its card renders 81 or 161 frames; cogvideox.* renders at most 49 (issue 15's contract), so 49 here too
    "cogvideox1.5-5b": CogModel("THUDM/CogVideoX1.5-5B", 49, 16, 768, 1360, True, COG_LICENCE, False,
                                ("t2v", "v2v"), size_gb=21.0, twin="1.5-5b"),
}
KINDS = ("t2v", "i2v", "v2v")


def frames_problem(frames: int, limit: int = MAX_FRAMES, *, adapter: bool = True) -> tuple[str, str] | None:
    """(message, hint) when ``frames`` is not a CogVideoX frame count, None when it is: 8k+1 and at most ``limit``.
    The VAE packs 4 frames into one latent after the first, and its decoder gives 4L−3 frames back only for an odd
    latent count L (an even one comes back as 4L: 13 frames would return 16; measured on diffusers' own pipeline),
    so 9, 17, …, 49 (the model cards' 8N+1). Past ``limit`` the hint names the ExVideo adapter when ``adapter``."""
    if frames > limit:
        hint = f"Use at most {limit} frames."
        if adapter:
            hint = (f"Use at most {limit} frames, or the ExVideo adapter for up to 129: generator {EXVIDEO_GENERATOR} "
                    f"with weights {EXVIDEO_WEIGHTS} (CogVideoX-5B + its LoRA).")
        return f"num_frames {frames} is more than this model renders ({limit} frames).", hint
    if frames < 1 or (frames - 1) % 8:
        lo = max(1, (frames - 1) // 8 * 8 + 1)
        return (f"num_frames {frames} is not 8k+1: CogVideoX renders 1, 9, 17, … frames (its VAE packs 4 frames into a "
                "latent, and returns them only for an odd number of latents).",
                f"Use {lo} or {lo + 8}." if lo + 8 <= limit else f"Use {lo}.")
    return None


def check_frames(frames: int, *, limit: int = MAX_FRAMES, field: str = "num_frames", adapter: bool = True) -> None:
    """:class:`InvalidRequest` naming ``field`` for a frame count :func:`frames_problem` refuses."""
    problem = frames_problem(frames, limit, adapter=adapter)
    if problem:
        raise InvalidRequest(problem[0], hint=problem[1], field=field)
