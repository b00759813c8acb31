"""HiGen (hierarchical spatio-temporal decoupling, CVPR'24): text → 32 frames at 448×256 in two stages, a spatial key
frame, then a temporal stage steered by motion and appearance cues. Hook implementations only: no torch here.

The UNet is :class:`plugins.higen.unet.HiGenUNet`; the two-stage sampler is :mod:`plugins.higen.pipeline`.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.higen.params import HiGenParams

WEIGHTS_ID = "higen.t2v"
UNET_FILE = "cvpr2024.t2v.e003.non_ema_0725000.pth"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
ENCODERS = (WeightsFile("open_clip_pytorch_model.bin"), WeightsFile("v2-1_512-ema-pruned.ckpt"))
#: VGen's module names of HiGen's branches and their tensor counts in the released UNet
BRANCHES: tuple[tuple[str, int], ...] = (("context_embedding", 45), ("img_embedding", 2), ("msim_embedding", 4),
                                         ("asim_embedding", 4))
LAYOUT = WeightsLayout(unet_in_channels=4, unet_extra=tuple(p for p, _ in BRANCHES),
                       unet_files=("cvpr2024.t2v", "higen"), released=RELEASED_UNET_CORE + BRANCHES)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="higen.t2v",
        title="HiGen text-to-video (key frame, then motion)",
        method="HiGen",
        params=HiGenParams,
        entry="plugins.higen.pipeline:HiGenGenerator",
        default_weights=WEIGHTS_ID,
        description="Text to 32 frames at 448×256 in two stages: a spatial key frame (shown as a preview), then the "
                    "video around it, steered by motion_factor and appearance_factor (both grid axes). DDIM 50 "
                    "per stage, guidance 12, v-prediction on the zero-SNR schedule, as released.",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [WeightsSpec(
        id=WEIGHTS_ID, title="HiGen text-to-video (VGen .pth)", method="HiGen", formats=("vgen",),
        source="modelscope", repo_id="iic/HiGen", files=(WeightsFile(UNET_FILE),) + ENCODERS,
        licence=NON_COMMERCIAL, commercial=False, size_gb=15.0, tiny="plugins.higen.tiny:make_tiny_weights",
        layout=LAYOUT,
        description="HiGen's UNet (448×256, 32 frames) with the OpenCLIP-H text encoder and the SD 2.1 VAE.",
    )]
