"""Shared by the evaluation board's tests (sdk and app): a stranger's plugin installed as a real distribution — a
generator whose noise grows with the seed and with the distance of ``identity_step`` from 200 (a DreamVideo-like
step axis whose best step is known), and an auto metric (higher is better) — next to the built-in
``classic_cv.flow_warp`` (lower is better), and a scored grid rendered by the real worker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.conditions import score_jobs
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService
from sdk.testing.install import install_plugin

HOOKS = '''
from pydantic import Field

from sdk.hookspecs import hookimpl
from sdk.inputs import OutputRef
from sdk.params import Params, VideoParams
from sdk.specs import GeneratorSpec, MetricSpec


class NoisyParams(VideoParams):
    num_frames: int = Field(4, ge=1, le=16)
    height: int = Field(32, ge=8, le=128, multiple_of=8)
    width: int = Field(32, ge=8, le=128, multiple_of=8)
    identity_step: int = Field(0, ge=0, description="a stand-in for an adapter step: 200 is the cleanest")


@hookimpl
def vgen_generators():
    return [GeneratorSpec(id="evaltest.noisy", title="A noisy moving square", method="Test", params=NoisyParams,
                          entry="evaltest_run:Noisy", inputs=())]


@hookimpl
def vgen_metrics():
    return [MetricSpec(id="evaltest.clean", title="Closeness to the clean square", method="Test", params=Params,
                       entry="evaltest_run:Clean", inputs=(OutputRef("output", required=True),), auto=True,
                       applies_to=("evaltest.noisy",))]
'''

RUN = '''
import numpy as np
from PIL import Image

from sdk.video import Video


def clean_frames(n, h, w):
    frames = np.full((n, h, w, 3), 128, np.uint8)
    for t in range(n):
        frames[t, 8:20, 4 + 2 * t:16 + 2 * t] = 230
    return frames


def noise_amplitude(seed, step):
    return 12.0 * seed + 0.3 * abs(step - 200)


class Noisy:
    def generate(self, ctx, req):
        p = req.params
        clean = clean_frames(p.num_frames, p.height, p.width).astype(np.float64)
        noise = np.random.default_rng(req.seed).standard_normal(clean.shape)
        ctx.progress(1, 1)
        frames = np.clip(clean + noise * noise_amplitude(req.seed, p.identity_step), 0, 255).round()
        return Video(frames.astype(np.uint8), fps=p.fps)


class Clean:
    def score(self, ctx, req):
        files = sorted(req.inputs["output"].frames_dir.glob("*.png"))
        frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).astype(np.float64)
        clean = clean_frames(*frames.shape[:3]).astype(np.float64)
        return {"clean": float(1.0 - np.abs(frames - clean).mean() / 255.0)}
'''

SEEDS = (1, 2)
STEPS = (100, 200, 300)


@pytest.fixture(scope="session")
def eval_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entry_points = {"evaltest": "evaltest"}
    if "classic_cv" not in load_plugins(refresh=True).plugins:
        entry_points["classic_cv"] = "plugins.classic_cv"  # an editable install older than classic_cv's entry point
    return install_plugin(tmp_path_factory.mktemp("site"), "vgen-evaltest",
                          {"evaltest.py": HOOKS, "evaltest_run.py": RUN}, entry_points)


def render_scored_grid(project: Project, registry: object) -> str:
    """Queue seeds 1,2 × identity_step 100,200,300 of ``evaltest.noisy`` (auto-scored by ``evaltest.clean``), score
    them with ``classic_cv.flow_warp`` too, run everything in the real worker; the batch id."""
    batch = queue_jobs(project, registry, "evaltest.noisy", params={"identity_step": list(STEPS)},
                       seeds=",".join(map(str, SEEDS)))
    score_jobs(project, registry, ["classic_cv.flow_warp"], jobs=list(batch.job_ids))
    stats = RenderService(project, registry=registry).run(until_empty=True)
    assert stats["failed"] == 0, stats
    return batch.id


def expected_clean(seed: int, step: int) -> float:
    """What ``evaltest.clean`` gives the output of (seed, step), computed here the plugin's way."""
    n, h, w = 4, 32, 32
    clean = np.full((n, h, w, 3), 128.0)
    for t in range(n):
        clean[t, 8:20, 4 + 2 * t:16 + 2 * t] = 230
    noise = np.random.default_rng(seed).standard_normal(clean.shape)
    frames = np.clip(clean + noise * (12.0 * seed + 0.3 * abs(step - 200)), 0, 255).round()
    return float(1.0 - np.abs(frames - clean).mean() / 255.0)
