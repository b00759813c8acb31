"""The classic-CV extractor and metric compute what their docs say: numbers checked against a direct OpenCV
computation on synthetic clips, and the plugin is registered through the entry-point group like every built-in."""
from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from plugins import classic_cv
from plugins.classic_cv.canny import canny_frame, sample_frames
from plugins.classic_cv.flow import FARNEBACK, backward_flow, flow_warp_scores, warp_error
from plugins.classic_cv.params import CannyParams, FlowWarpParams
from sdk.errors import InvalidRequest
from sdk.params import validate_params
from sdk.plugins import PluginRegistry

REPO = Path(__file__).resolve().parents[3]


def square(size: int = 64, top: int = 16, side: int = 32) -> np.ndarray:
    frame = np.zeros((size, size, 3), np.uint8)
    frame[top:top + side, top:top + side] = 255
    return frame


def test_canny_of_a_square_is_its_outline_as_controlnet_computes_it() -> None:
    frame = square()
    edges = canny_frame(frame, CannyParams())
    assert edges.shape == (64, 64, 3) and (edges[..., 0] == edges[..., 2]).all()
    assert np.array_equal(edges[..., 0], cv2.Canny(frame, 100, 200))  # ControlNet's preprocessor, thresholds 100/200
    ys, xs = np.nonzero(edges[..., 0])
    # the outline: every edge pixel on the square's border (±1 px), all four sides, nothing inside or outside
    on_border = (np.minimum(np.abs(ys - 16), np.abs(ys - 47)) <= 1) | (np.minimum(np.abs(xs - 16), np.abs(xs - 47)) <= 1)
    assert on_border.all() and ys.min() >= 15 and ys.max() <= 48 and xs.min() >= 15 and xs.max() <= 48
    assert len(ys) >= 4 * 30  # every side, not a few dots


def test_canny_resizes_without_crop_and_thresholds_matter() -> None:
    frame = square()
    small = canny_frame(frame, CannyParams(height=32, width=48))
    assert small.shape == (32, 48, 3)
    assert np.array_equal(small[..., 0], cv2.Canny(cv2.resize(frame, (48, 32), interpolation=cv2.INTER_AREA), 100, 200))
    soft = square() // 12  # a faint square (level 21): its gradients never reach 200
    assert not canny_frame(soft, CannyParams()).any() and canny_frame(soft, CannyParams(low_threshold=10,
                                                                                         high_threshold=20)).any()
    with pytest.raises(InvalidRequest, match="low_threshold 300 is above high_threshold 200"):
        validate_params(CannyParams, {"low_threshold": 300}, spec_id="classic_cv.canny")


def test_frames_are_sampled_by_stride_and_padded_with_empty_frames() -> None:
    frames = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    picked, pad = sample_frames(frames, 3, None)
    assert pad == 0 and picked[:, 0, 0, 0].tolist() == [0, 3, 6, 9]
    picked, pad = sample_frames(frames, 2, 3)
    assert pad == 0 and picked[:, 0, 0, 0].tolist() == [0, 2, 4]
    picked, pad = sample_frames(frames, 4, 5)
    assert pad == 2 and picked[:, 0, 0, 0].tolist() == [0, 4, 8, 0, 0] and not picked[3:].any()


def _direct(a: np.ndarray, b: np.ndarray) -> float:
    """The documented definition, written out: Farnebäck flow from b to a on grey frames, a warped onto b, mean
    absolute difference / 255 where the flow stays in the frame."""
    flow = cv2.calcOpticalFlowFarneback(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), cv2.cvtColor(a, cv2.COLOR_RGB2GRAY),
                                        None, 0.5, 3, 15, 3, 5, 1.2, 0)
    h, w = b.shape[:2]
    mx = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    my = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    warped = cv2.remap(a, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    keep = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return float(np.abs(warped - b).mean(axis=2)[keep].mean() / 255)


def test_flow_warping_error_equals_the_documented_computation() -> None:
    assert FARNEBACK == (0.5, 3, 15, 3, 5, 1.2, 0)
    rng = np.random.default_rng(1)
    blurred = cv2.GaussianBlur((rng.random((80, 80, 3)) * 255).astype(np.uint8), (0, 0), 2)
    moving = np.stack([blurred[8:72, 8 - 2 * t:72 - 2 * t] for t in range(4)])  # texture sliding 2 px per frame
    noise = (rng.random((4, 64, 64, 3)) * 255).astype(np.uint8)
    still = np.repeat(moving[:1], 4, axis=0)
    for clip in (moving, noise, still):
        pairs = [_direct(clip[t], clip[t + 1]) for t in range(3)]
        got = flow_warp_scores(clip)
        assert got["warp_error"] == pytest.approx(np.mean(pairs), rel=1e-5, abs=1e-7)
        assert got["warp_error_max"] == pytest.approx(max(pairs), rel=1e-5, abs=1e-7)
    # a still clip is perfectly consistent; motion the flow explains costs little; independent noise a lot
    assert flow_warp_scores(still)["warp_error"] < 1e-3 and flow_warp_scores(still)["mean_flow_px"] < 0.01
    assert flow_warp_scores(moving)["warp_error"] < 0.01 < 0.2 < flow_warp_scores(noise)["warp_error"]
    assert 1.0 < flow_warp_scores(moving)["mean_flow_px"] < 2.5  # about the 2 px it moves
    # a stride compares frames further apart: the texture moved 4 px between them
    assert flow_warp_scores(moving, 2)["mean_flow_px"] > flow_warp_scores(moving)["mean_flow_px"]
    assert flow_warp_scores(moving[:1]) == {"warp_error": 0.0, "warp_error_max": 0.0, "mean_flow_px": 0.0}


def test_warp_with_the_true_shift_leaves_no_error() -> None:
    rng = np.random.default_rng(2)
    base = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    later = np.roll(base, 3, axis=1)  # content moved 3 px right: later(x) = base(x - 3)
    flow = np.zeros((40, 60, 2), np.float32)
    flow[..., 0] = -3
    assert warp_error(base, later, flow) == 0.0  # the wrapped-around columns map outside the frame: left out
    assert warp_error(base, later, np.zeros_like(flow)) > 0.2
    assert backward_flow(base, base).shape == (40, 60, 2)


def test_the_plugin_registers_an_extractor_and_a_metric_through_the_entry_point_group() -> None:
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["entry-points"]["vgen_studio"]["classic_cv"] == "plugins.classic_cv"
    assert any(dep.startswith("opencv-python-headless") for dep in project["dependencies"])
    reg = PluginRegistry([("classic_cv", classic_cv)])
    assert reg.plugins["classic_cv"].error is None
    canny, flow = reg.extractor("classic_cv.canny"), reg.metric("classic_cv.flow_warp")
    assert canny.condition == "canny" and [f.name for f in canny.fields] == ["video"] and canny.fields[0].required
    assert canny.fields[0].accept_motions and canny.fields[0].accept_outputs
    assert [(f.name, f.kind, f.required) for f in flow.fields] == [("output", "output", True)]
    assert not flow.higher_is_better and not flow.auto and flow.params is FlowWarpParams
