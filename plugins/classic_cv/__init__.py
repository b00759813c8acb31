"""Classic computer vision: conditions and metrics that need no weights (OpenCV). Hook implementations only: nothing
heavy is imported here (OpenCV loads in the worker, when a job runs).

- ``classic_cv.canny``: Canny edges of a video (a motion's, an output's or a file's), as ControlNet's Canny
  preprocessor computes them (``cv2.Canny`` on the RGB frame, thresholds 100/200 by default).
- ``classic_cv.flow_warp``: temporal consistency of an output as the flow warping error between consecutive
  frames (Farnebäck optical flow, backward warp; lower is better). See :mod:`plugins.classic_cv.flow`.
"""
from __future__ import annotations

from sdk.hookspecs import hookimpl
from sdk.inputs import OutputRef, VideoRef
from sdk.specs import ConditionSpec, MetricSpec

from plugins.classic_cv.params import CannyParams, FlowWarpParams


@hookimpl
def vgen_condition_extractors() -> list[ConditionSpec]:
    return [ConditionSpec(
        id="classic_cv.canny", title="Canny edges", method="Classic CV", condition="canny", params=CannyParams,
        entry="plugins.classic_cv.canny:CannyExtractor", version="1.0.0",
        inputs=(VideoRef("video", required=True, accept_outputs=True, accept_motions=True,
                         description="the video to take edges from: a motion's name (NAME or NAME#N), an output's "
                                     "job id, a video asset id or a video file"),),
        description="White-on-black Canny edge maps, one per frame (cv2.Canny on the RGB frame, as ControlNet's "
                    "Canny preprocessor), resized and sampled as asked.",
    )]


@hookimpl
def vgen_metrics() -> list[MetricSpec]:
    return [MetricSpec(
        id="classic_cv.flow_warp", title="Flow warping error (temporal consistency)", method="Classic CV",
        params=FlowWarpParams, entry="plugins.classic_cv.flow:FlowWarpError", version="1.0.0",
        inputs=(OutputRef("output", required=True, description="the output to score"),), higher_is_better=False,
        description="Mean absolute difference (0-1 of the full intensity range) between each frame and the previous "
                    "frame warped onto it by Farnebäck optical flow; 0 is perfectly consistent.",
    )]
