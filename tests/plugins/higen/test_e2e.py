"""``higen.t2v`` through the real worker (SQLite project, worker process, ffmpeg): a motion_factor ×
appearance_factor grid from ``vgen queue add`` renders 32-frame MP4s on the tiny twin, each setting its own video,
and the stage-1 key frame arrives as a one-frame preview before stage 2's first step."""
from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from sdk import events as ev
from sdk.cli import main as vgen
from sdk.outputs import read_frames
from sdk.project import Project
from tests.step_events import StepEvents

pytestmark = pytest.mark.slow
STEPS = 2


def test_a_cue_grid_renders_32_frame_videos_with_the_key_frame_previewed_first(tmp_path: Path, capsys) -> None:
    from plugins.higen.tiny import make_tiny_weights
    from sdk.service import RenderService

    weights = make_tiny_weights(tmp_path / "higen-tiny")
    path = tmp_path / "HiGen.vgen"
    Project.create(path).close()
    argv = ["queue", "add", str(path), "--generator", "higen.t2v", "--prompt", "a lighthouse in a storm",
            "--weights", str(weights), "--seeds", "4"]
    params = ["height=32", "width=48", f"num_inference_steps={STEPS}", "motion_factor=100,900",
              "appearance_factor=0.2,1.0"]
    assert vgen(argv + [a for p in params for a in ("--param", p)]) == 0, capsys.readouterr().err
    assert "Queued 4 job(s)" in capsys.readouterr().out

    seen = StepEvents()

    with Project.open(path) as project:
        service = RenderService(project)
        service.subscribe(seen)
        stats = service.run(until_empty=True)
        jobs = project.jobs()
        assert stats["succeeded"] == 4, [j.error_message for j in jobs]
        cues = sorted((j.params["motion_factor"], j.params["appearance_factor"]) for j in jobs)
        assert cues == [(100.0, 0.2), (100.0, 1.0), (900.0, 0.2), (900.0, 1.0)]
        videos = {(j.params["motion_factor"], j.params["appearance_factor"]): read_frames(project.output(j.id).dir)
                  for j in jobs}
        for j in jobs:
            mp4 = project.output(j.id).video_path
            assert mp4.suffix == ".mp4" and imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 32
            events = seen[j.id]
            progress = [e for e in events if isinstance(e, ev.ProgressUpdated)]
            assert [e.step for e in progress] == list(range(1, 2 * STEPS + 1))  # both stages, one count
            assert {e.total for e in progress} == {2 * STEPS}
            key = next(i for i, e in enumerate(events) if isinstance(e, ev.PreviewReady) and e.frames.shape[0] == 1
                       and e.frames.shape[1:] == (32, 48, 3))
            first_stage2 = next(i for i, e in enumerate(events) if isinstance(e, ev.ProgressUpdated)
                                and e.step == STEPS + 1)
            assert key < first_stage2, "the key frame is shown before stage 2 starts"
    for v in videos.values():
        assert v.shape == (32, 32, 48, 3)
    keys = list(videos)
    for i in range(len(keys)):  # each cue setting steers stage 2: four different videos from one seed
        for k in range(i + 1, len(keys)):
            assert np.abs(videos[keys[i]].astype(int) - videos[keys[k]].astype(int)).max() > 4, (keys[i], keys[k])
