"""CogVideoX (THUDM): text-, image- and video-to-video with diffusers' CogVideoX pipelines. Hook implementations
only: no torch here (the shared model code is :mod:`sdk.ml.cogvideox`).

Weights: ``cogvideox-2b`` (Apache-2.0: commercial use allowed), ``cogvideox-5b``, ``cogvideox-5b-i2v`` and
``cogvideox1.5-5b`` (the CogVideoX LICENSE: research use free, commercial use only after registering with Zhipu AI).
More than 49 frames is refused, naming the ExVideo adapter (``exvideo.cogvideox``).
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import ImageRef, VideoRef
from sdk.ml.cogvideox_models import APACHE, COG_LICENCE
from sdk.specs import GeneratorSpec, WeightsFile, WeightsLayout, WeightsSpec

from plugins.cogvideox.params import CogVideoXParams, CogVideoXV2VParams

METHOD = "CogVideoX"
#: image-to-video weights (32 input channels) are their own method: t2v/v2v never accept them, nor i2v the others
METHOD_I2V = "CogVideoX I2V"
ENTRY = "plugins.cogvideox.pipeline:CogVideoXGenerator"
TINY = "plugins.cogvideox.tiny:make_"
_COMMON = ("model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
           "text_encoder/model-00001-of-00002.safetensors", "text_encoder/model-00002-of-00002.safetensors",
           "text_encoder/model.safetensors.index.json", "tokenizer/added_tokens.json",
           "tokenizer/special_tokens_map.json", "tokenizer/spiece.model", "tokenizer/tokenizer_config.json",
           "transformer/config.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors")
_ONE_FILE = ("transformer/diffusion_pytorch_model.safetensors",)
_TWO_SHARDS = ("transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
               "transformer/diffusion_pytorch_model-00002-of-00002.safetensors",
               "transformer/diffusion_pytorch_model.safetensors.index.json")


def _files(extra: tuple[str, ...]) -> tuple[WeightsFile, ...]:
    return tuple(WeightsFile(f) for f in _COMMON + extra)


def _layout(pipeline: str) -> WeightsLayout:
    return WeightsLayout(diffusers_pipeline=pipeline)


@hookimpl
def vgen_generators() -> list[GeneratorSpec]:
    common = dict(entry=ENTRY)
    return [
        GeneratorSpec(
            id="cogvideox.t2v", title="CogVideoX text-to-video", method=METHOD, params=CogVideoXParams,
            inputs=("text",),
            default_weights="cogvideox-2b",
            description="A prompt to 49 frames (6 s at 8 fps; 1.5: 16 fps) with CogVideoX's 3-D transformer, T5-XXL "
                        "text encoder and 3-D causal VAE (diffusers' CogVideoXPipeline). 2B is Apache-2.0; the 5B "
                        "family is under the CogVideoX licence (commercial use only after registration).", **common),
        GeneratorSpec(
            id="cogvideox.i2v", title="CogVideoX image-to-video", method=METHOD_I2V, params=CogVideoXParams,
            inputs=(ImageRef("image", required=True, description="the first frame (cropped to the frame's aspect "
                                                                 "ratio)"), "text"),
            default_weights="cogvideox-5b-i2v",
            description="An image and a prompt to 49 frames with CogVideoX-5B-I2V (diffusers' "
                        "CogVideoXImageToVideoPipeline); CogVideoX licence.", **common),
        GeneratorSpec(
            id="cogvideox.v2v", title="CogVideoX video-to-video", method=METHOD, params=CogVideoXV2VParams,
            inputs=(VideoRef("video", required=True, accept_outputs=True,
                             description="the source video (a file or a job's output): its first num_frames frames, "
                                         "resized to the frame size"), "text"),
            default_weights="cogvideox-2b",
            description="Re-renders a video after a prompt: the source is encoded, noised to `strength` and denoised "
                        "(diffusers' CogVideoXVideoToVideoPipeline).", **common),
    ]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    def spec(wid: str, tiny: str, title: str, repo: str, licence: str, commercial: bool, pipeline: str,
             extra: tuple[str, ...], size: float, description: str) -> WeightsSpec:
        method = METHOD_I2V if "ImageToVideo" in pipeline else METHOD
        return WeightsSpec(id=wid, title=title, method=method, formats=("diffusers",), source="huggingface",
                           repo_id=repo, files=_files(extra), licence=licence, commercial=commercial, size_gb=size,
                           tiny=TINY + tiny, layout=_layout(pipeline), description=description)

    return [
        spec("cogvideox-2b", "2b", "CogVideoX-2B", "THUDM/CogVideoX-2b", APACHE, True, "CogVideoXPipeline", _ONE_FILE,
             13.0, "720×480, 49 frames at 8 fps; trained in fp16; text- and video-to-video."),
        spec("cogvideox-5b", "5b", "CogVideoX-5B", "THUDM/CogVideoX-5b", COG_LICENCE, False, "CogVideoXPipeline",
             _TWO_SHARDS, 21.0, "720×480, 49 frames at 8 fps, dynamic CFG; trained in bf16."),
        spec("cogvideox-5b-i2v", "5b_i2v", "CogVideoX-5B image-to-video", "THUDM/CogVideoX-5b-I2V", COG_LICENCE, False,
             "CogVideoXImageToVideoPipeline", _TWO_SHARDS, 21.0, "720×480 from a first frame, 49 frames at 8 fps."),
        spec("cogvideox1.5-5b", "1_5_5b", "CogVideoX1.5-5B", "THUDM/CogVideoX1.5-5B", COG_LICENCE, False,
             "CogVideoXPipeline", _TWO_SHARDS, 21.0,
             "1360×768 at 16 fps (here at most 49 frames; its card's 81 and 161 are more than cogvideox.* renders)."),
    ]
