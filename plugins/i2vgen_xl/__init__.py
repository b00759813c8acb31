"""I2VGen-XL (VGen's image + prompt → video model). Hook implementations only: no torch here."""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import ImageRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.i2vgen_xl.params import I2VParams

TINY = "plugins.i2vgen_xl.tiny:make_tiny_weights"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
# the VGen UNet takes latent + first-frame latent (8 channels) and holds the image branches
BRANCHES = (("context_embedding", 4), ("fps_embedding", 4), ("local_image_concat", 6), ("local_image_embedding", 6),
            ("local_temporal_encoder", 9))
LAYOUT = WeightsLayout(diffusers_pipeline="I2VGenXLPipeline", unet_in_channels=8,
                       unet_extra=tuple(p for p, _ in BRANCHES), clip_visual=True, released=RELEASED_UNET_CORE + BRANCHES)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="i2vgen_xl.i2v",
        title="I2VGen-XL image-to-video",
        method="I2VGen-XL",
        params=I2VParams,
        entry="plugins.i2vgen_xl.pipeline:I2VGenerator",
        inputs=(ImageRef("image", required=True, description="the picture to animate (its first frame)"),),
        default_weights="i2vgen_xl.i2vgen_xl",
        description="An image and a prompt to a short video with the I2VGen-XL UNet (first-frame latent, CLIP ViT-H "
                    "image embedding, fps conditioning), SD 2.1 VAE and OpenCLIP-H text features. The image is fitted "
                    "to the video size by scaling its short side and cropping the centre. Reads the diffusers folder "
                    "(ali-vilab/i2vgen-xl) and VGen's i2vgen_xl_00854500.pth.",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [
        WeightsSpec(
            id="i2vgen_xl.i2vgen_xl", title="I2VGen-XL (diffusers)", method="I2VGen-XL",
            formats=("diffusers",), source="huggingface", repo_id="ali-vilab/i2vgen-xl",
            licence=NON_COMMERCIAL, commercial=False, size_gb=14.0, tiny=TINY, layout=LAYOUT,
            description="The diffusers conversion of I2VGen-XL (1280×704, v-prediction / cosine / zero-SNR).",
        ),
        WeightsSpec(
            id="i2vgen_xl.vgen_00854500", title="I2VGen-XL (VGen .pth)", method="I2VGen-XL",
            formats=("vgen",), source="modelscope", repo_id="damo/I2VGen-XL", revision="v1.0.0",
            files=(WeightsFile("i2vgen_xl_00854500.pth"), WeightsFile("open_clip_pytorch_model.bin"),
                   WeightsFile("v2-1_512-ema-pruned.ckpt")),
            licence=NON_COMMERCIAL, commercial=False, size_gb=13.0, tiny=TINY, layout=LAYOUT,
            description="The original release as VGen loads it (configs/i2vgen_xl_infer.yaml).",
        ),
    ]
