"""TF-T2V (text-free text-to-video, CVPR'24), text → video mode. Hook implementations only: no torch here."""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import ImageRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.tf_t2v.params import TFT2VParams

TINY = "plugins.tf_t2v.tiny:make_tiny_weights"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
ENCODERS = (WeightsFile("open_clip_pytorch_model.bin"), WeightsFile("v2-1_512-ema-pruned.ckpt"))
# 12 input channels (latent + 8 condition channels); the style-image branch is optional (VideoLCM lacks it)
LAYOUT = WeightsLayout(unet_in_channels=12, unet_optional=("pre_image_condition",), unet_files=("tft2v_t2v",),
                       released=RELEASED_UNET_CORE + (("pre_image_condition", 4),))


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="tf_t2v.t2v",
        title="TF-T2V text-to-video",
        method="TF-T2V",
        params=TFT2VParams,
        entry="plugins.tf_t2v.pipeline:TFT2VGenerator",
        inputs=(ImageRef("style_image", description="optional style reference (4 CLIP-image tokens after the text)"),),
        default_weights="tf_t2v.tft2v_t2v_16f",
        description="Text to video with the TF-T2V UNet (12-channel input, optional style-image tokens), "
                    "v-prediction on the zero-SNR scaled-linear schedule, DDIM 50 and guidance 9 as released. "
                    "Reads the VGen .pth files of ModelScope iic/tf-t2v (16 and 32 frames).",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [
        WeightsSpec(
            id="tf_t2v.tft2v_t2v_16f", title="TF-T2V text-to-video, 16 frames (VGen .pth)", method="TF-T2V",
            formats=("vgen",), source="modelscope", repo_id="iic/tf-t2v",
            files=(WeightsFile("tft2v_t2v_non_ema_512000.pth"),) + ENCODERS,
            licence=NON_COMMERCIAL, commercial=False, size_gb=14.5, tiny=TINY, layout=LAYOUT,
            description="TF-T2V t2v checkpoint (448×256, 16 frames); also the teacher of videolcm.distill.",
        ),
        WeightsSpec(
            id="tf_t2v.tft2v_t2v_32f", title="TF-T2V text-to-video, 32 frames (VGen .pth)", method="TF-T2V",
            formats=("vgen",), source="modelscope", repo_id="iic/tf-t2v",
            files=(WeightsFile("tft2v_t2v_32frames_non_ema_560000.pth"),) + ENCODERS,
            licence=NON_COMMERCIAL, commercial=False, size_gb=14.5, tiny=TINY, layout=LAYOUT,
            description="TF-T2V t2v checkpoint trained on 32-frame clips (448×256); use num_frames=32.",
        ),
    ]
