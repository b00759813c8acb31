"""SR600: VGen's super-resolution refiner to 1280×720 (vgen-notes §9). Hook implementations only: no torch here.

``sr600.upscale`` takes a video — any finished output of the project (it waits for it) or a video file — and
refines it at 1280×720: VAE-encode, DDIM-invert to t = 699, then 30 DPM-Solver++(2M) SDE steps with guidance 9
(rescale 0.3). The UNet (:mod:`plugins.sr600.unet`) is the T2V core with padded downsamples and cropping
upsamplers, so 720p's 90 latent rows go down and back up.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import VideoRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.sr600.params import SR600Params

NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
UNET_FILE = "sr_step_110000_ema.pth"
#: the same 1480 tensors as the T2V core (sr600_unet.json); 4 latent input channels, no extra branches
LAYOUT = WeightsLayout(unet_in_channels=4, unet_files=("sr_step", "sr600"), released=RELEASED_UNET_CORE)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="sr600.upscale",
        title="SR600 upscale to 1280×720",
        method="SR600",
        params=SR600Params,
        entry="plugins.sr600.pipeline:SR600Generator",
        inputs=(VideoRef("video", required=True, accept_outputs=True,
                         description="the video to upscale: a job's output (the upscale waits for it) or a file"),
                "text"),
        resizes=True,
        output_action="Upscale",  # the gallery's Upscale, `vgen jobs upscale`, `queue add --then sr600.upscale`
        default_weights="sr600.sr600",
        description="VGen's SR600 refiner: the source resized to 1280×720, VAE-encoded, DDIM-inverted to t = 699 and "
                    "re-sampled with 30 DPM-Solver++(2M) SDE steps, guidance 9 (rescale 0.3). 16-frame sources are "
                    "doubled to 32 and halved again; other frame counts are resampled to 32; sources far from 16:9 "
                    "are letterboxed. The prompt is optional (the source's is used for project outputs).",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [WeightsSpec(
        id="sr600.sr600", title="SR600 super-resolution UNet (VGen .pth)", method="SR600", formats=("vgen",),
        source="modelscope", repo_id="iic/tf-t2v",
        files=(WeightsFile(UNET_FILE), WeightsFile("open_clip_pytorch_model.bin"),
               WeightsFile("v2-1_512-ema-pruned.ckpt")),
        licence=NON_COMMERCIAL, commercial=False, size_gb=10.5, tiny="plugins.sr600.tiny:make_tiny_weights",
        layout=LAYOUT,
        description="VGen's SR600 checkpoint (sr_step_110000_ema.pth, also shipped in iic/HiGen) with the OpenCLIP-H "
                    "text encoder and the SD 2.1 VAE; refines 32 frames at 1280×720.",
    )]
