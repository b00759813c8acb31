"""VideoComposer: compositional video generation on TF-T2V and VideoLCM (VGen's ``video_compositions`` mode).
Hook implementations only: no torch here.

The UNet (:mod:`plugins.videocomposer.unet`) is the TF-T2V/VideoLCM core plus one small encoder per condition
(depth, sketch, single sketch, motion vectors, masked video, local image) and the style-image token branch.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.specs import RELEASED_UNET_CORE, WeightsFile, WeightsLayout, WeightsSpec

NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
ENCODERS = (WeightsFile("open_clip_pytorch_model.bin"), WeightsFile("v2-1_512-ema-pruned.ckpt"))
#: VGen's module names of the released conditions' branches (stem, frame transformer) and their tensor counts
BRANCHES: tuple[tuple[str, int], ...] = tuple(
    (p, n) for c in ("depth", "local_image", "motion", "sketch", "single_sketch")
    for p, n in ((f"{c}_embedding", 6), (f"{c}_embedding_after", 9))) + (
    ("masked_embedding", 6), ("mask_embedding_after", 9), ("pre_image_condition", 4))


def _layout(prefix: str) -> WeightsLayout:
    # every released branch is required; canny is a branch VGen's class can build but no release holds
    return WeightsLayout(unet_in_channels=12, unet_extra=tuple(p for p, _ in BRANCHES),
                         unet_optional=("canny_embedding", "canny_embedding_after"), unet_files=(prefix,),
                         clip_visual=True, released=RELEASED_UNET_CORE + BRANCHES)


T2V_LAYOUT = _layout("tft2v_vcomposer")
LCM_LAYOUT = _layout("videolcm_vcomposer")


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    common = dict(method="VideoComposer", formats=("vgen",), source="modelscope", repo_id="iic/tf-t2v",
                  licence=NON_COMMERCIAL, size_gb=14.5)
    return [
        WeightsSpec(id="videocomposer.tft2v_vcomposer", title="VideoComposer on TF-T2V, 448×256 (VGen .pth)",
                    files=(WeightsFile("tft2v_vcomposer_non_ema_254000.pth"),) + ENCODERS,
                    tiny="plugins.videocomposer.tiny:make_tiny_weights", layout=T2V_LAYOUT,
                    description="TF-T2V with VideoComposer's condition encoders (448×256; 16 and 32 frames).",
                    **common),
        WeightsSpec(id="videocomposer.tft2v_vcomposer_896x512", title="VideoComposer on TF-T2V, 896×512 (VGen .pth)",
                    files=(WeightsFile("tft2v_vcomposer_non_ema_270000_896x512.pth"),) + ENCODERS,
                    tiny="plugins.videocomposer.tiny:make_tiny_weights", layout=T2V_LAYOUT,
                    description="TF-T2V with VideoComposer's condition encoders, trained at 896×512.", **common),
        WeightsSpec(id="videocomposer.videolcm_vcomposer", title="VideoComposer on VideoLCM, 4 steps (VGen .pth)",
                    files=(WeightsFile("videolcm_vcomposer_non_ema_914000.pth"),) + ENCODERS,
                    tiny="plugins.videocomposer.tiny:make_tiny_lcm_weights", layout=LCM_LAYOUT,
                    description="VideoLCM with VideoComposer's condition encoders (448×256, 4 LCM steps, no guidance).",
                    **common),
    ]
