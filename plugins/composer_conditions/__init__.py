"""VideoComposer's condition extractors: depth, sketch, single sketch, motion vectors, masks and the local image,
computed as VGen's ``inference_tft2v_vcomposer_entrance`` computes them (and, for motion vectors, which VGen leaves
out, as the original VideoComposer does). Hook implementations only: no torch here (it loads in the worker).

Each writes a condition video (uint8 RGB, ``num_frames`` × ``height`` × ``width``) that the service stores as a
condition asset linked to its source; how each one encodes VGen's tensor is in :mod:`plugins.composer_conditions.
encoding` (the VideoComposer generators decode them the same way).
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import ImageRef, VideoRef
from sdk.specs import ConditionSpec, WeightsSpec

from plugins.composer_conditions.params import (DepthParams, LocalImageParams, MaskParams, MotionParams,
                                                SketchParams)
from plugins.composer_conditions.weights import DEPTH_ID, METHOD, SKETCH_ID, weights_specs

_SOURCE = ("the reference video: a motion's name (NAME or NAME#N), an output's job id, a video asset id or a video "
           "file")


def _video() -> VideoRef:
    return VideoRef("video", required=True, accept_outputs=True, accept_motions=True, description=_SOURCE)


@hookimpl
def vgen_condition_extractors() -> list[ConditionSpec]:
    return [
        ConditionSpec(
            id="composer_conditions.local_image", title="Local image (first frame)", method=METHOD,
            condition="local_image", params=LocalImageParams, version="1.0.0", inputs=(_video(),),
            entry="plugins.composer_conditions.simple:LocalImageExtractor",
            description="The first sampled frame repeated over every frame: VideoComposer's local-image condition."),
        ConditionSpec(
            id="composer_conditions.mask", title="Inpainting mask", method=METHOD, condition="mask",
            params=MaskParams, version="1.0.0",
            inputs=(_video(), ImageRef("mask_image", description="your own mask: white where the video is "
                                       "generated, black where it is kept (resized to the frames)")),
            entry="plugins.composer_conditions.simple:MaskExtractor",
            description="A mask over every frame, white where VideoComposer generates: one of VGen's random families "
                        "(irregular strokes, rectangles, half-image uncrop), seeded, or your own drawing."),
        ConditionSpec(
            id="composer_conditions.motion", title="Motion vectors", method=METHOD, condition="motion",
            params=MotionParams, version="1.0.0", inputs=(_video(),),
            entry="plugins.composer_conditions.motion:MotionExtractor",
            description="The codec's motion vectors between sampled frames (PyAV, exported from the compressed "
                        "stream), one per block, as VideoComposer's motion condition."),
        ConditionSpec(
            id="composer_conditions.sketch", title="Sketch (PiDiNet + simplification)", method=METHOD,
            condition="sketch", params=SketchParams, version="1.0.0", inputs=(_video(),), default_weights=SKETCH_ID,
            entry="plugins.composer_conditions.sketch:SketchExtractor",
            description="PiDiNet edges cleaned by the sketch-simplification net, bright lines on black, one per "
                        "frame: VideoComposer's sketch condition."),
        ConditionSpec(
            id="composer_conditions.single_sketch", title="Single sketch (first frame)", method=METHOD,
            condition="single_sketch", params=SketchParams, version="1.0.0", inputs=(_video(),),
            default_weights=SKETCH_ID, entry="plugins.composer_conditions.sketch:SingleSketchExtractor",
            description="The first frame's sketch repeated over every frame: VideoComposer's single-sketch condition."),
        ConditionSpec(
            id="composer_conditions.depth", title="Depth (MiDaS DPT-Large)", method=METHOD, condition="depth",
            params=DepthParams, version="1.0.0", inputs=(_video(),), default_weights=DEPTH_ID,
            entry="plugins.composer_conditions.depth:DepthExtractor",
            description="MiDaS v3 DPT-Large depth scaled as VGen does (depth / 20, clamped to [0, 10]), grey: "
                        "VideoComposer's depth condition."),
    ]


@hookimpl
def vgen_weights() -> list[WeightsSpec]:
    return weights_specs()
