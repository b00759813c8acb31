"""VGen's evaluation metrics as score jobs (vgen-notes §13, §14). Hook implementations only: no torch here.

- ``vgen_metrics.clip_t``: text–video alignment (OpenAI CLIP ViT-B/32): the prompt's feature · the mean of the
  frames' normalised features;
- ``vgen_metrics.clip_i`` / ``vgen_metrics.dino_i``: subject fidelity: each of the subject's images · the frame mean
  (CLIP ViT-B/32 / DINO ViT-S/16), averaged over the images; only outputs of jobs that took a subject (others are
  skipped with the reason in their job's log);
- ``vgen_metrics.temporal``: the mean CLIP cosine similarity of consecutive frames;
- ``vgen_metrics.hpsv2``: Human Preference Score v2 (InstructVideo's reward model) of 4 segments' middle frames
  against the prompt; also the mean over every frame.

All of them: every frame, higher is better. The HPSv2 scorer (:mod:`sdk.ml.hps`) is also InstructVideo's reward.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.specs import MetricSpec, WeightsFile, WeightsSpec

from plugins.vgen_metrics.params import MetricParams
from plugins.vgen_metrics.scored import ScoredOutputRef

METHOD = "Evaluation"


def _output(needs_subject: bool = False) -> ScoredOutputRef:
    what = "the output to score (its job must have taken a subject)" if needs_subject else "the output to score"
    return ScoredOutputRef("output", required=True, description=what, needs_subject=needs_subject)


def _metric(id: str, title: str, entry: str, weights: str, description: str, *, subject: bool = False) -> MetricSpec:
    return MetricSpec(id=f"vgen_metrics.{id}", title=title, method=METHOD, params=MetricParams,
                      entry=f"plugins.vgen_metrics.{entry}", version="1.0.0", inputs=(_output(subject),),
                      default_weights=f"vgen_metrics.{weights}", higher_is_better=True, description=description)


@hookimpl
def vgen_metrics() -> list[MetricSpec]:
    return [
        _metric("clip_t", "CLIP-T (text alignment)", "clip_metrics:ClipT", "clip_vit_b32",
                "OpenAI CLIP ViT-B/32: the prompt's normalised feature · the mean of every frame's normalised feature "
                "(as VGen's DreamVideo metric script)."),
        _metric("clip_i", "CLIP-I (subject fidelity)", "clip_metrics:ClipI", "clip_vit_b32",
                "OpenAI CLIP ViT-B/32: each subject image's normalised feature · the mean of every frame's normalised "
                "feature, averaged over the subject's images. Needs an output of a job that took a subject.",
                subject=True),
        _metric("dino_i", "DINO-I (subject fidelity)", "clip_metrics:DinoI", "dino_vits16",
                "DINO ViT-S/16 CLS features: as CLIP-I. Needs an output of a job that took a subject.", subject=True),
        _metric("temporal", "CLIP temporal consistency", "clip_metrics:Temporal", "clip_vit_b32",
                "OpenAI CLIP ViT-B/32: the mean cosine similarity of consecutive frames' features."),
        _metric("hpsv2", "HPSv2 (human preference)", "hps:HPSv2Metric", "hpsv2",
                "Human Preference Score v2 (OpenCLIP ViT-H-14 with HPS_v2.pt; InstructVideo's reward model) of the "
                "middle frame of each of 4 equal segments against the prompt, averaged; hpsv2_all_frames averages "
                "every frame."),
    ]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return [
        WeightsSpec(id="vgen_metrics.clip_vit_b32", title="OpenAI CLIP ViT-B/32 (open_clip layout)", method=METHOD,
                    formats=("open_clip",), source="huggingface", repo_id="timm/vit_base_patch32_clip_224.openai",
                    files=(WeightsFile("open_clip_pytorch_model.bin"), WeightsFile("open_clip_config.json")),
                    licence="MIT (OpenAI CLIP)", size_gb=0.6, tiny="plugins.vgen_metrics.tiny:make_tiny_clip",
                    description="OpenAI's CLIP ViT-B/32 weights as open_clip state dict (QuickGELU), for CLIP-T, "
                                "CLIP-I and temporal consistency; read with weights_only=True."),
        WeightsSpec(id="vgen_metrics.dino_vits16", title="DINO ViT-S/16", method=METHOD, formats=("pth",),
                    source="huggingface", repo_id="timm/vit_small_patch16_224.dino",
                    files=(WeightsFile("model.safetensors"),), licence="Apache-2.0 (DINO)", size_gb=0.09,
                    tiny="plugins.vgen_metrics.tiny:make_tiny_dino",
                    description="DINO's self-supervised ViT-S/16 (dino_deitsmall16_pretrain.pth; the hub copy has "
                                "the same key names as safetensors), for DINO-I."),
        WeightsSpec(id="vgen_metrics.hpsv2", title="HPSv2 (OpenCLIP ViT-H-14)", method=METHOD, formats=("pth",),
                    source="huggingface", repo_id="xswu/HPSv2", files=(WeightsFile("HPS_v2_compressed.pt"),),
                    licence="Apache-2.0 (HPSv2)", size_gb=1.97, tiny="sdk.ml.hps:make_tiny_hps",
                    description="Human Preference Score v2: OpenCLIP ViT-H-14 fine-tuned on human preferences "
                                "(HPS_v2.pt); InstructVideo's reward model and the hpsv2 metric."),
    ]
