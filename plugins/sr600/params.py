"""Parameters of the SR600 upscaler (torch-free: the GUI builds forms from the schema) and its frame-size rule."""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from sdk.errors import InvalidRequest
from sdk.params import VideoParams

#: configs/sr600_infer.yaml: the unconditional text (DDIM inversion and the guidance's uncond branch)
SR_NEGATIVE = ("worst quality, normal quality, low quality, low res, blurry, text, watermark, logo, banner, extra "
               "digits, cropped, jpeg artifacts, signature, username, error, sketch ,duplicate, ugly, monochrome, "
               "horror, geometry, mutation, disgusting")
#: configs/sr600_infer.yaml: appended to the prompt of the guidance's cond branch
SR_POSITIVE_SUFFIX = (", cinematic, High Contrast, highly detailed, Unreal Engine 5, no blur, full length ultra-wide "
                      "angle shot a cinematic scene, taken using a Canon EOS R camera, hyper detailed photo - "
                      "realistic maximum detail, 32k, Color Grading, portrait Photography, ultra HD, extreme "
                      "meticulous detailing, skin pore detailing, hyper sharpness, perfect without deformations, "
                      "4k render")
#: VGen's SR model runs on 32 frames ("only supports 32-frame input"); 16-frame sources are doubled
MODEL_FRAMES = 32
#: the SR600 UNet's levels (three padded downsamples)
LEVELS = 4
#: an input whose aspect ratio is further than this from the target's is letterboxed rather than stretched
ASPECT_TOLERANCE = 0.10


def check_frame_size(height: int, width: int, *, levels: int = LEVELS, factor: int = 8) -> None:
    """Refuse a frame size SR600's geometry cannot take back up (padded downsamples, cropping upsamplers: see
    :mod:`plugins.sr600.unet`): latent rows must be 2 more than a multiple of 2^(levels−1) (720 → 90 rows) and
    latent columns a multiple of it. Raises :class:`InvalidRequest` naming the nearest sizes that work."""
    step = 2 ** (levels - 1)
    h, w = height // factor, width // factor
    if height % factor or h % step != 2 % step:
        lo = max(step + 2 % step, (h - 2) // step * step + 2 % step)
        raise InvalidRequest(
            f"height {height} does not fit SR600's geometry: its {h} latent rows (height/{factor}) must be 2 more "
            f"than a multiple of {step} (720 → 90 rows).", hint=f"Use height {lo * factor} or {(lo + step) * factor}.",
            field="height")
    if width % factor or w % step:
        lo = max(step, w // step * step)
        raise InvalidRequest(
            f"width {width} does not fit SR600's geometry: its latent columns (width/{factor}) must be a multiple "
            f"of {step}.", hint=f"Use width {lo * factor} or {(lo + step) * factor}.", field="width")


class SR600Params(VideoParams):
    """VGen's ``inference_sr600_entrance`` defaults: 1280×720, DDIM inversion to t = 699 then 30 DPM-Solver++(2M)
    SDE steps, guidance 9 with rescale 0.3, the SR yaml's positive suffix and negative prompt."""

    #: the guidance's two branches run as two batch-1 UNet calls (VGen's way; the preflight counts one batch)
    CFG_BATCHED: ClassVar[bool] = False
    #: the preflight's activation factor (bytes per batch × frame × latent pixel × 320 × dtype byte, before the
    #: mode's share): benchmarks/sr600_memory.py measured 39 (no chunking) and 35 (feed-forward chunking, ``low``)
    #: for the real-size SR600 UNet at 720p on the CPU; 47 keeps ``low``'s estimate (×0.75) above the measured 35
    DENOISER_BYTES_PER_UNIT: ClassVar[float] = 47.0

    prompt: str = Field("", description="What the video shows (optional: an upscale of a project output uses the "
                                         "source's prompt when none is given).")
    negative_prompt: str = Field(SR_NEGATIVE, description="The unconditional text (inversion and guidance), the SR "
                                                          "yaml's.")
    positive_suffix: str = Field(SR_POSITIVE_SUFFIX, description="Appended to the prompt, as the SR yaml does.")
    num_frames: int = Field(MODEL_FRAMES, ge=2, le=64, description=(
        "Frames the SR model refines (VGen: 32). A 16-frame source is doubled to 32 and halved after decoding (the "
        "output keeps 16); other counts are resampled to this many (the job log says so)."))
    height: int = Field(720, ge=16, le=2048, multiple_of=8, description="Output height (latent rows ≡ 2 mod 8).")
    width: int = Field(1280, ge=64, le=4096, multiple_of=64, description="Output width (a multiple of 64).")
    num_inference_steps: int = Field(30, ge=2, le=200, description="DPM-Solver++(2M) SDE steps (and VGen's "
                                                                   "inversion stride: total_noise_levels // steps).")
    total_noise_levels: int = Field(700, ge=10, le=1000, description=(
        "How far the input is noised (strength): DDIM inversion to t = total_noise_levels − 1, sampling back from "
        "there. Lower keeps more of the source."))
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0, description="Classifier-free guidance scale (≤1 turns it off).")
    guide_rescale: float = Field(0.3, ge=0.0, le=1.0, description="Guidance rescale (arXiv:2305.08891); 0 turns it off.")
    fps: int = Field(0, ge=0, le=60, description="Frames per second of the output; 0 keeps the source's (VGen: 8 "
                                                 "when unknown).")
    decode_chunk_size: int = Field(4, ge=1, le=64, description="Frames the VAE decodes at a time (VGen: 4).")
    vae_tiling: bool = Field(True, description="Encode and decode 720p frames in overlapping tiles (less memory; "
                                               "tile seams are blended).")

    @field_validator("height", "width")
    @classmethod
    def _size_fits_the_geometry(cls, value: int, info) -> int:
        try:  # each rule reads one side only: check it against a size that fits on the other
            check_frame_size(value, 1280) if info.field_name == "height" else check_frame_size(720, value)
        except InvalidRequest as exc:
            raise ValueError(f"{exc.user_message} {exc.hint}") from None
        return value
