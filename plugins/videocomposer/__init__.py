"""VideoComposer: compositional video generation on TF-T2V and VideoLCM (VGen's ``video_compositions`` mode).
Hook implementations only: no torch here.

Generators ``videocomposer.t2v`` (DDIM 50, guidance 9) and ``videocomposer.lcm`` (4 LCM steps) take any subset of the
conditions (``conditions`` param: VGen's ``partial_keys``), a style image and text. The UNet
(:mod:`plugins.videocomposer.unet`) is the TF-T2V/VideoLCM core plus one small encoder per condition
(depth, sketch, single sketch, motion vectors, masked video, local image) and the style-image token branch.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import ConditionRef, ImageRef, VideoRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.videocomposer.params import ComposerLCMParams, ComposerT2VParams

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


_CONDITIONS = {
    "depth": "depth maps (MiDaS, VGen's depth/20 in [0, 10], stored ×25.5 as grey)",
    "sketch": "sketches (PiDiNet + sketch simplification: white lines on black)",
    "single_sketch": "a sketch whose first frame steers every frame",
    "motion": "motion vectors (R = dx, G = dy; 128 = still, 2 levels a pixel)",
    "local_image": "a video whose first frame is the local image (VGen's first frame, repeated)",
    "mask": "a mask video (white = hidden); the `video` input is what shows under it",
    "canny": "Canny edges (the class takes them; the released weights hold no canny branch)",
}


def _inputs() -> tuple:
    conds = tuple(ConditionRef(name, condition=name, description=f"condition: {what}")
                  for name, what in _CONDITIONS.items())
    return conds + (
        VideoRef("video", accept_outputs=True, accept_motions=True,
                 description="the reference video under the mask (VGen's masked video; sampled at sample_fps)"),
        ImageRef("style_image", description="style reference: 4 CLIP-image tokens after the text"),
    )


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    common = dict(method="VideoComposer", inputs=_inputs())
    return [
        GeneratorSpec(
            id="videocomposer.t2v", title="VideoComposer on TF-T2V (conditions + style + text)",
            params=ComposerT2VParams, entry="plugins.videocomposer.pipeline:ComposerT2VGenerator",
            default_weights="videocomposer.tft2v_vcomposer",
            description="Text to video following any subset of depth, sketch, single sketch, motion vectors, "
                        "masked video and local image conditions (`conditions`: VGen's partial_keys, a grid axis), "
                        "plus an optional style image; DDIM 50 and guidance 9 as released (448×256, 16 or 32 "
                        "frames; 896×512 with the 896×512 weights).", **common),
        GeneratorSpec(
            id="videocomposer.lcm", title="VideoComposer on VideoLCM (4 steps)",
            params=ComposerLCMParams, entry="plugins.videocomposer.pipeline:ComposerLCMGenerator",
            default_weights="videocomposer.videolcm_vcomposer",
            description="The same conditions, style image and text in 4 LCM steps without guidance (VideoLCM "
                        "vcomposer weights, 448×256).", **common),
    ]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    common = dict(method="VideoComposer", formats=("vgen",), source="modelscope", repo_id="iic/tf-t2v",
                  licence=NON_COMMERCIAL, commercial=False, size_gb=14.5)
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
