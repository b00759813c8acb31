"""Motion vectors from the compressed stream (PyAV's exported vectors), in VideoComposer's layout: a square moving
right gives rightward vectors of the distance it moved between sampled frames, the background none."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plugins import composer_conditions
from plugins.composer_conditions.encoding import frame_to_motion, motion_to_frame
from sdk import events as ev
from sdk.plugins import PluginRegistry
from tests.plugins.composer_conditions.helpers import extract, make_clip


@pytest.fixture(scope="module")
def spec():
    return PluginRegistry([("composer_conditions", composer_conditions)]).extractor("composer_conditions.motion")


@pytest.mark.parametrize("codec", ["mpeg4", "h264"])
def test_a_moving_square_gives_vectors_of_the_distance_it_moved(spec, tmp_path: Path, codec: str) -> None:
    clip = make_clip(tmp_path / "clip.mp4")  # the square moves 2 px right per source frame, 24 fps
    # stride round(24 / 6) = 4 source frames, resized ×2: 16 px right between sampled frames
    video, run = extract(spec, clip, tmp_path, {"num_frames": 7, "sample_fps": 6, "width": 128, "height": 96,
                                                "codec": codec})
    assert video.frames.shape == (7, 96, 128, 3) and video.fps == 6
    fields = [frame_to_motion(f) for f in video.frames]
    assert not fields[0].any()  # the first frame is intra-coded: no vectors
    assert not fields[6].any()  # 24 frames / stride 4 = 6 real frames: the 7th is padding
    for t in range(1, 6):
        dx, dy = fields[t][..., 0], fields[t][..., 1]
        left = 2 * (4 + 8 * t)  # the square's left edge in the resized frame t
        on_square = np.zeros(dx.shape, bool)
        on_square[24:56, left:left + 32] = True
        moving = (dx != 0) | (dy != 0)
        assert moving[on_square].any(), t
        assert np.median(dx[on_square & moving]) == pytest.approx(16, abs=1.5), t  # the distance it moved
        assert np.abs(np.median(dy[on_square & moving])) <= 1, t
        # sparse, as VideoComposer's field: values only at block centres, the static background mostly still
        assert moving.mean() < 0.05 and np.abs(dx[~on_square]).mean() < 0.5
    assert any(f"motion vectors from {codec}: 5 of 6 frame(s) move" in m for m in run.logs)
    assert [e.step for e in run.of(ev.ProgressUpdated)][-1] == 7


def test_motion_frames_hold_half_pixel_vectors_and_say_when_they_clip() -> None:
    mv = np.zeros((4, 4, 2), np.float32)
    mv[1, 2] = (3.5, -12.0)
    mv[3, 3] = (80.0, -1.5)
    frame, clipped = motion_to_frame(mv)
    assert clipped == 1 and frame.dtype == np.uint8 and (frame[..., 2] == 128).all()
    back = frame_to_motion(frame)
    assert back[1, 2].tolist() == [3.5, -12.0] and back[3, 3].tolist() == [63.5, -1.5] and not back[0].any()
