"""DreamVideo: learn a subject from a few images and a motion from a few videos, then compose them (vgen-notes §12).
Hook implementations only: no torch here."""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import ImageRef, MotionRef, SubjectRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, TrainerSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.dreamvideo.params import (EMBEDDING_KIND, IDENTITY_KIND, MOTION_KIND, ComposeParams, MotionParams,
                                       SubjectParams, SubjectStep1Params, SubjectStep2Params)

WEIGHTS_ID = "dreamvideo.modelscope_v1_5"
TINY = "plugins.dreamvideo.tiny:make_tiny_weights"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
TRAINERS = "plugins.dreamvideo.trainers"


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="dreamvideo.compose",
        title="DreamVideo: subject × motion",
        method="DreamVideo",
        params=ComposeParams,
        entry="plugins.dreamvideo.pipeline:ComposeGenerator",
        inputs=(SubjectRef("subject", description="whose identity adapter and token to use"),
                MotionRef("motion", description="whose motion adapter to use"),
                ImageRef("image", description="appearance guidance image (its CLIP embedding)")),
        default_weights=WEIGHTS_ID,
        adapter_params=(("identity_adapter", IDENTITY_KIND), ("motion_adapter", MOTION_KIND)),
        description="A prompt with the subject's token (`a <dog2> running on the beach`) through ModelScope T2V v1.5 "
                    "with the subject's identity adapter + embedding and/or a motion adapter (appearance image "
                    "optional). Adapters are the project's, or released DreamVideo files. identity_step / "
                    "motion_step pick a checkpoint, and each can be a grid axis.",
    )]


@hookimpl
def vgen_trainers() -> list[TrainerSpec]:
    subject = dict(method="DreamVideo", inputs=(SubjectRef("subject", required=True),), default_weights=WEIGHTS_ID)
    return [
        TrainerSpec(id="dreamvideo.subject_step1", title="DreamVideo subject, step 1 (textual inversion)",
                    params=SubjectStep1Params, entry=f"{TRAINERS}:SubjectStep1Trainer", **subject,
                    description="Learns the subject's token embedding on the frozen base (images as 1-frame videos; "
                                "masked loss where the subject has masks)."),
        TrainerSpec(id="dreamvideo.subject_step2", title="DreamVideo subject, step 2 (identity adapter)",
                    params=SubjectStep2Params, entry=f"{TRAINERS}:SubjectStep2Trainer", **subject,
                    adapter_params=(("embedding", EMBEDDING_KIND),),
                    description="Learns the identity adapter beside every spatial cross-attention, with the step-1 "
                                "embedding frozen."),
        TrainerSpec(id="dreamvideo.subject", title="DreamVideo subject (step 1 then step 2)",
                    params=SubjectParams, entry=f"{TRAINERS}:SubjectStep1Trainer", **subject,
                    expands_to=("dreamvideo.subject_step1", "dreamvideo.subject_step2"),
                    description="Queues textual inversion then the identity adapter for one subject; each parameter "
                                "goes to every step that has it."),
        TrainerSpec(id="dreamvideo.motion", title="DreamVideo motion (motion adapter)", method="DreamVideo",
                    params=MotionParams, entry=f"{TRAINERS}:MotionTrainer", inputs=(MotionRef("motion", required=True),),
                    default_weights=WEIGHTS_ID,
                    description="Learns the motion adapter on every temporal attention and feed-forward, guided by "
                                "a random frame's CLIP image embedding (dropped with p = 0.5)."),
    ]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [WeightsSpec(
        id=WEIGHTS_ID, title="ModelScope T2V v1.5 for DreamVideo (VGen .pth)", method="DreamVideo", formats=("vgen",),
        source="modelscope", repo_id="iic/dreamvideo-t2v",
        files=(WeightsFile("model_scope_v1-5_0632000.pth"), WeightsFile("open_clip_pytorch_model.bin"),
               WeightsFile("v2-1_512-ema-pruned.ckpt")),
        licence=NON_COMMERCIAL, commercial=False, size_gb=11.0, tiny=TINY,
        # the ModelScope T2V v1.5 UNet; the OpenCLIP image tower encodes the appearance image
        layout=WeightsLayout(unet_files=("model_scope",), clip_visual=True, released=RELEASED_UNET_CORE),
        description="The base of DreamVideo (eps / linear_sd, 256×256); the open_clip file also gives the appearance "
                    "image encoder.",
    )]
