"""InstructVideo: ModelScope T2V v1.4 reward-fine-tuned with HPSv2 through a LoRA (vgen-notes §13).
Hook implementations only: no torch here."""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import AdapterRef, MotionRef
from sdk.specs import RELEASED_UNET_CORE, GeneratorSpec, TrainerSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.instructvideo.params import LORA_KIND, InstructVideoParams, RewardParams

WEIGHTS_ID = "instructvideo.modelscope_v1_4"
TINY = "plugins.instructvideo.tiny:make_tiny_weights"
NON_COMMERCIAL = "research / non-commercial use only (trained on WebVid-10M and LAION-400M)"
LAYOUT = WeightsLayout(unet_files=("model_scope",), released=RELEASED_UNET_CORE)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(
        id="instructvideo.t2v",
        title="InstructVideo text-to-video",
        method="InstructVideo",
        params=InstructVideoParams,
        entry="plugins.instructvideo.pipeline:InstructVideoGenerator",
        inputs=("text",
                AdapterRef("adapter", adapter_kind=LORA_KIND,
                           description="a LoRA from instructvideo.reward (id, 'latest' with a motion, or a file)"),
                MotionRef("motion", description="whose newest reward-tuned LoRA adapter=latest takes")),
        default_weights=WEIGHTS_ID,
        description="ModelScope T2V v1.4 with InstructVideo's HPSv2-tuned LoRA merged in (W += s·up·down): the "
                    "released fine-tuned checkpoint, a project LoRA from instructvideo.reward, or none. DDIM 20/50 on "
                    "VGen's step lists, guidance 3, 256×256, 16 frames.",
    )]


@hookimpl
def vgen_trainers() -> list[TrainerSpec]:
    return [TrainerSpec(
        id="instructvideo.reward",
        title="InstructVideo reward fine-tuning (HPSv2, LoRA)",
        method="InstructVideo",
        params=RewardParams,
        entry="plugins.instructvideo.trainer:RewardTrainer",
        inputs=(MotionRef("motion", description="training clips (captioned by the prompt); or the data_dir param"),),
        default_weights=WEIGHTS_ID,
        description="Reward fine-tuning as editing: a real clip noised to t = 551, the last 12 DDIM steps (guidance 3) "
                    "with gradients through the final one, segmental HPSv2 reward with temporal attenuation; only "
                    "the LoRA trains. Checkpoints become instructvideo.lora Adapters for instructvideo.t2v.",
    )]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [WeightsSpec(
        id=WEIGHTS_ID, title="InstructVideo (ModelScope T2V v1.4 + fine-tuned LoRA, VGen .pth)", method="InstructVideo",
        formats=("vgen",), source="modelscope", repo_id="iic/InstructVideo",
        files=(WeightsFile("model_scope_v1-4_0600000.pth"),
               WeightsFile("instructvideo-finetuned/ddim20_1102-18-52_non_ema_0620000.pth"),
               WeightsFile("open_clip_pytorch_model.bin"), WeightsFile("v2-1_512-ema-pruned.ckpt")),
        licence=NON_COMMERCIAL, commercial=False, size_gb=17.0, tiny=TINY, layout=LAYOUT,
        description="The base of InstructVideo (eps / linear_sd, 256×256) and its released reward-tuned LoRA UNet "
                    "(2008 tensors: the base plus rank-4 LoRA on every attention). The reward trainer also needs "
                    "HPS_v2.pt (vgen_metrics.hpsv2 weights, or the file beside these).",
    )]
