"""CogVideoX through the real worker (SQLite, worker process, ffmpeg) on tiny twins: a text-to-video render, an
image-to-video render of a PNG, and a video-to-video render of the first one's output (queued by job id before it
has run: it waits for it); each sends a preview and a progress count per step. The same text-to-video job in
precision int8 renders too, with its transformer quantized (issue 15: int8 must run on the CPU)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sdk import events as ev
from sdk.outputs import read_frames
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from tests.step_events import StepEvents

pytestmark = pytest.mark.slow
SMALL = {"height": [32], "width": [48], "num_frames": [9], "num_inference_steps": [3]}
REPO = Path(__file__).resolve().parents[3]


def test_t2v_i2v_and_v2v_of_the_t2v_output_render_in_the_worker_with_previews(tmp_path: Path) -> None:
    from sdk.ml.cogvideox import write_twin
    from sdk.service import RenderService

    t2v_weights = write_twin(tmp_path / "2b", variant="2b")
    i2v_weights = write_twin(tmp_path / "5b-i2v", variant="5b-i2v")
    registry = load_plugins(refresh=True)
    path = tmp_path / "Cog.vgen"
    with Project.create(path) as project:
        t2v = queue_jobs(project, registry, "cogvideox.t2v", prompts=["a paper boat on a stream"], seeds=3,
                         weights=str(t2v_weights), params=SMALL).job_ids[0]
        i2v = queue_jobs(project, registry, "cogvideox.i2v", prompts=["the sample comes alive"], seeds=4,
                         weights=str(i2v_weights), params=SMALL,
                         image=str(REPO / "project_templates/image-to-video/sample.png")).job_ids[0]
        v2v = queue_jobs(project, registry, "cogvideox.v2v", prompts=["a paper boat at night"], seeds=5,
                         weights=str(t2v_weights), params=dict(SMALL, strength=[0.67]),
                         inputs={"video": t2v}).job_ids[0]
        assert t2v in (next(j for j in project.jobs() if j.id == v2v).depends_on or [])
        int8 = queue_jobs(project, registry, "cogvideox.t2v", prompts=["a paper boat on a stream"], seeds=3,
                          weights=str(t2v_weights), params=SMALL, options={"precision": "int8"}).job_ids[0]

    seen = StepEvents()

    with Project.open(path) as project:
        service = RenderService(project, registry=registry)
        service.subscribe(seen)
        stats = service.run(until_empty=True)
        assert stats["succeeded"] == 4, [(j.spec_id, j.error_message) for j in project.jobs()]
        clips = {jid: read_frames(project.output(jid).dir) for jid in (t2v, i2v, v2v, int8)}
        runtime = json.loads(project.output(int8).meta_path.read_text())["runtime"]
        fps = {jid: json.loads(project.output(jid).meta_path.read_text())["fps"] for jid in (t2v, i2v, v2v)}
    for jid, steps in ((t2v, 3), (i2v, 3), (v2v, 2)):  # v2v runs steps × strength
        assert clips[jid].shape == (9, 32, 48, 3) and clips[jid].std() > 1.0
        progress = [e for e in seen[jid] if isinstance(e, ev.ProgressUpdated)]
        assert [(e.step, e.total) for e in progress] == [(i, steps) for i in range(1, steps + 1)]
        previews = [e for e in seen[jid] if isinstance(e, ev.PreviewReady)]
        assert previews and previews[-1].step == steps and previews[-1].frames.shape == (3, 8, 12, 3)
        assert fps[jid] == 8
    assert np.abs(clips[v2v].astype(int) - clips[t2v].astype(int)).max() > 4  # re-rendered, not copied
    # int8: the transformer's Linear weights quantized (torchao on the CPU), computing in bf16; a different render
    assert runtime["quantization"] == "int8" and runtime["quantized"]["layers"] > 0
    assert runtime["compute_dtype"] == "bfloat16"
    assert clips[int8].shape == (9, 32, 48, 3) and clips[int8].std() > 1.0
