"""ModelScope T2V (VGen's base text-to-video model). Hook implementations only: no torch here."""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.modelscope_t2v.params import T2VParams

TINY = "plugins.modelscope_t2v.tiny:make_tiny_weights"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
LAYOUT = WeightsLayout(diffusers_pipeline="TextToVideoSDPipeline", released=RELEASED_UNET_CORE)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="modelscope_t2v.t2v",
        title="ModelScope text-to-video",
        method="ModelScope T2V",
        params=T2VParams,
        entry="plugins.modelscope_t2v.pipeline:T2VGenerator",
        default_weights="modelscope_t2v.ms_1_7b",
        description="Text to a short video with the ModelScope/VGen 3D UNet, SD 2.1 VAE and OpenCLIP-H text features. "
                    "Reads diffusers folders and the original VGen .pth files.",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [
        WeightsSpec(
            id="modelscope_t2v.ms_1_7b", title="ModelScope text-to-video 1.7B (diffusers)", method="ModelScope T2V",
            formats=("diffusers",), source="huggingface", repo_id="ali-vilab/text-to-video-ms-1.7b",
            licence="CC-BY-NC-4.0", commercial=False, size_gb=6.9, tiny=TINY, layout=LAYOUT,
            description="The diffusers conversion of ModelScope T2V (eps / scaled_linear schedule).",
        ),
        WeightsSpec(
            id="modelscope_t2v.v1_5", title="ModelScope T2V v1.5 (VGen .pth, from DreamVideo)", method="ModelScope T2V",
            formats=("vgen",), source="modelscope", repo_id="iic/dreamvideo-t2v",
            files=(WeightsFile("model_scope_v1-5_0632000.pth"), WeightsFile("open_clip_pytorch_model.bin"),
                   WeightsFile("v2-1_512-ema-pruned.ckpt")),
            licence=NON_COMMERCIAL, commercial=False, size_gb=11.0, tiny=TINY, layout=LAYOUT,
            description="ModelScopeT2V V1.5 as VGen loads it (eps / linear_sd schedule, 256×256).",
        ),
    ]
