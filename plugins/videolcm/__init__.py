"""VideoLCM: 4-step text-to-video by latent consistency distillation from TF-T2V.
Hook implementations only: no torch here."""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import MotionRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, TrainerSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.videolcm.params import DistillParams, VideoLCMParams

TINY = "plugins.videolcm.tiny:make_tiny_weights"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
TEACHER = "tf_t2v.tft2v_t2v_16f"  # offered by the tf_t2v plugin
LAYOUT = WeightsLayout(unet_in_channels=12, unet_optional=("pre_image_condition",), unet_files=("videolcm_t2v",),
                       checkpoint_kinds=("videolcm.student",), released=RELEASED_UNET_CORE)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="videolcm.t2v",
        title="VideoLCM text-to-video (4 steps)",
        method="VideoLCM",
        params=VideoLCMParams,
        entry="plugins.videolcm.pipeline:VideoLCMGenerator",
        default_weights="videolcm.videolcm_t2v",
        description="Text to video in 1–8 LCM steps (4 by default) without guidance: the TF-T2V backbone "
                    "consistency-distilled from a guided teacher. Reads the released VGen .pth and the student "
                    "checkpoints (adapters) written by videolcm.distill.",
    )]


@hookimpl
def vgen_trainers() -> list[TrainerSpec]:
    return [TrainerSpec(
        id="videolcm.distill",
        title="VideoLCM distillation (from TF-T2V)",
        method="VideoLCM",
        params=DistillParams,
        entry="plugins.videolcm.trainer:DistillTrainer",
        # the prompt captions the motion's videos and is what the sample previews show; the clips come from a
        # motion or from the `data_dir` param (video + same-name .txt caption pairs)
        inputs=(MotionRef("motion", description="training clips (captioned by the prompt); or the data_dir param"),),
        default_weights=TEACHER,
        description="Latent consistency distillation of a TF-T2V teacher into a 4-step student (EMA target 0.95, "
                    "DDIM solver 50 steps, teacher guidance 9, pseudo-Huber loss). Checkpoints become Adapters that "
                    "videolcm.t2v takes as weights.",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [WeightsSpec(
        id="videolcm.videolcm_t2v", title="VideoLCM text-to-video (VGen .pth)", method="VideoLCM",
        formats=("vgen", "student"), source="modelscope", repo_id="iic/tf-t2v",
        files=(WeightsFile("videolcm_t2v_non_ema_544000.pth"), WeightsFile("open_clip_pytorch_model.bin"),
               WeightsFile("v2-1_512-ema-pruned.ckpt")),
        licence=NON_COMMERCIAL, commercial=False, size_gb=14.5, tiny=TINY, layout=LAYOUT,
        description="The released VideoLCM t2v checkpoint (448×256, 16 frames, 4 LCM steps).",
    )]
