"""`vgen jobs score` with the vgen_metrics metrics through the real worker: a tiny DreamVideo render of a subject and
one without, scored by all five metrics (tiny twins registered as the metrics' default weights). The subject metrics
skip the render without a subject, with the reason in its log; the values stored equal the metrics' functions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdk.cli import main as vgen
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.records import JobStatus
from sdk.service import RenderService
from sdk.weights import make_tiny

pytestmark = pytest.mark.slow

METRICS = ["clip_t", "clip_i", "dino_i", "temporal", "hpsv2"]


@pytest.fixture(scope="module")
def dv_weights(tmp_path_factory) -> Path:
    from plugins.dreamvideo.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("dv") / "tiny")


def test_vgen_jobs_score_runs_the_metrics_in_the_worker(tmp_path: Path, dv_weights, capsys) -> None:
    from PIL import Image

    registry = load_plugins()
    for wid in ("vgen_metrics.clip_vit_b32", "vgen_metrics.dino_vits16", "vgen_metrics.hpsv2"):
        make_tiny(registry.weights[wid], tmp_path / wid, register=True)
    rng = np.random.default_rng(0)
    imgs = []
    for i in range(2):
        imgs.append(tmp_path / f"dog{i}.png")
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(imgs[-1])
    path = tmp_path / "Eval.vgen"
    Project.create(path).close()
    assert vgen(["subject", "add", str(path), "dog", *map(str, imgs), "--token", "<dog>"]) == 0, capsys.readouterr().err
    gp = ["num_frames=4", "height=32", "width=32", "num_inference_steps=1", "identity_adapter=none",
          "motion_adapter=none"]
    base = ["queue", "add", str(path), "--generator", "dreamvideo.compose", "--weights", str(dv_weights), "--seeds", "1"]
    params = [a for p in gp for a in ("--param", p)]
    assert vgen(base + ["--prompt", "a <dog> on the beach", "--subject", "dog"] + params) == 0, capsys.readouterr().err
    assert vgen(base + ["--prompt", "a cat on the sofa"] + params) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        with_subject, without = [j.id for j in project.jobs() if j.kind == "generate"]
        argv = ["jobs", "score", str(path), with_subject, without] + [a for m in METRICS
                                                                         for a in ("--metric", f"vgen_metrics.{m}")]
        capsys.readouterr()
        assert vgen(argv) == 0, capsys.readouterr().err
        err = capsys.readouterr().err  # the user is told what was skipped, not only the log
        assert f"warning: skipped vgen_metrics.clip_i on {without}" in err and "took no subject" in err
        scores = [j for j in project.jobs() if j.kind == "score"]
        assert len(scores) == 8  # clip_i and dino_i skip the render without a subject
        logs = " ".join(str(line["message"]) for line in project.logs(without))
        assert "vgen_metrics.clip_i skipped" in logs and "took no subject" in logs
        stats = RenderService(project, registry=registry).run(until_empty=True)
        assert stats["succeeded"] == 10, [(j.spec_id, j.error_message) for j in project.jobs()]

        got = {s.metric: s.values for s in project.scores(with_subject)}
        assert sorted(got) == sorted(f"vgen_metrics.{m}" for m in METRICS)
        assert sorted(s.metric for s in project.scores(without)) == ["vgen_metrics.clip_t", "vgen_metrics.hpsv2",
                                                                     "vgen_metrics.temporal"]
        assert list(got["vgen_metrics.hpsv2"]) == ["hpsv2", "hpsv2_all_frames"]
        assert got["vgen_metrics.clip_i"]["subject_images"] == 2.0

        # the stored values are what the metrics compute on the output's own frames and the subject's images
        from plugins.vgen_metrics.clip_metrics import encode_images, frame_mean, load_openai_clip, reference_score
        from sdk.ml.hps import hps_video_scores, load_hps
        from sdk.outputs import read_frames

        frames = read_frames(project.output(with_subject).dir)
        clip = load_openai_clip(tmp_path / "vgen_metrics.clip_vit_b32")
        f = encode_images(clip, list(frames), 8)
        with torch.no_grad():
            t = clip.text_features(["a <dog> on the beach"])[0]
        assert got["vgen_metrics.clip_t"]["clip_t"] == pytest.approx(float(t @ frame_mean(f)), abs=1e-6)
        refs = [np.asarray(Image.open(p).convert("RGB")) for p in imgs]
        assert got["vgen_metrics.clip_i"]["clip_i"] == pytest.approx(reference_score(f, encode_images(clip, refs, 8)),
                                                                     abs=1e-6)
        hps = hps_video_scores(load_hps(tmp_path / "vgen_metrics.hpsv2"),
                               torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255, "a <dog> on the beach")
        assert got["vgen_metrics.hpsv2"] == pytest.approx(hps, abs=1e-6)
        meta = json.loads(project.output(with_subject).meta_path.read_text())
        assert set(meta["scores"]) == {f"vgen_metrics.{m}" for m in METRICS}

        # only subject metrics on a job without a subject: nothing to queue, the reason is said
        assert vgen(["jobs", "score", str(path), without, "--metric", "vgen_metrics.dino_i"]) != 0
        assert "took no subject" in capsys.readouterr().err
        assert all(j.status is JobStatus.SUCCEEDED for j in project.jobs())
