"""Shared by the conditions and scores tests: a stranger's plugin installed as a real distribution (a generator that
follows a canny condition, a generator that draws a moving square, an auto metric), the built-in classic_cv plugin
registered through the entry-point group, a project with a motion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.outputs import write_mp4
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.testing.install import install_plugin, pythonpath_with
from sdk.video import Video

HOOKS = '''
from pydantic import Field

from sdk.hookspecs import hookimpl
from sdk.inputs import ConditionRef, OutputRef
from sdk.params import Params, VideoParams
from sdk.specs import GeneratorSpec, MetricSpec


class SquareParams(VideoParams):
    num_frames: int = Field(4, ge=1, le=16)
    height: int = Field(32, ge=8, le=128, multiple_of=8)
    width: int = Field(32, ge=8, le=128, multiple_of=8)
    level: int = Field(200, ge=0, le=255, description="brightness of the square")
    fail: bool = Field(False, description="fail on purpose (tests)")


class FollowParams(VideoParams):
    num_frames: int = Field(4, ge=1, le=16)
    height: int = Field(32, ge=8, le=128, multiple_of=8)
    width: int = Field(32, ge=8, le=128, multiple_of=8)


@hookimpl
def vgen_generators():
    return [
        GeneratorSpec(id="condtest.square", title="A moving square", method="Test", params=SquareParams,
                      entry="condtest_run:Square", inputs=()),
        GeneratorSpec(id="condtest.follow", title="Frames of a canny condition", method="Test", params=FollowParams,
                      entry="condtest_run:Follow", inputs=(ConditionRef("edges", condition="canny", required=True),)),
        GeneratorSpec(id="condtest.depthy", title="Needs a depth condition", method="Test", params=FollowParams,
                      entry="condtest_run:Follow", inputs=(ConditionRef("depth", condition="depth", required=True),)),
    ]


@hookimpl
def vgen_metrics():
    return [MetricSpec(id="condtest.brightness", title="Mean brightness", method="Test", params=Params,
                       entry="condtest_run:Brightness", inputs=(OutputRef("output", required=True),), auto=True,
                       applies_to=("condtest.square",))]
'''

RUN = '''
import numpy as np
from PIL import Image

from sdk.errors import VGenError
from sdk.video import Video


def square_frames(n, h, w, level):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for t in range(n):
        frames[t, 8:20, 4 + 2 * t:16 + 2 * t] = level
    return frames


class Square:
    def generate(self, ctx, req):
        p = req.params
        if p.fail:
            raise VGenError("failed on purpose", hint="tests")
        ctx.progress(1, 1)
        return Video(square_frames(p.num_frames, p.height, p.width, p.level), fps=p.fps)


class Follow:
    def generate(self, ctx, req):
        p = req.params
        cond = next(iter(req.inputs.values()))
        ctx.log.info(f"condition {cond.id} {cond.kind} from {cond.source} by {cond.extractor}")
        files = sorted(cond.frames_dir.glob("*.png"))
        src = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
        pick = np.linspace(0, len(src) - 1, p.num_frames).round().astype(int)
        out = np.stack([np.asarray(Image.fromarray(src[i]).resize((p.width, p.height), Image.NEAREST)) for i in pick])
        ctx.progress(1, 1)
        return Video(out, fps=p.fps)


class Brightness:
    def score(self, ctx, req):
        files = sorted(req.inputs["output"].frames_dir.glob("*.png"))
        frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
        return {"brightness": float(frames.mean() / 255.0), "frames": float(len(frames))}
'''


def square_frames(n: int, h: int, w: int, level: int) -> np.ndarray:
    """What ``condtest.square`` draws (the same code as the plugin's)."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    for t in range(n):
        frames[t, 8:20, 4 + 2 * t:16 + 2 * t] = level
    return frames


@pytest.fixture(scope="module")
def cond_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entry_points = {"condtest": "condtest"}
    if "classic_cv" not in load_plugins(refresh=True).plugins:
        # an editable install made before classic_cv joined pyproject.toml lacks its entry point: add it the way
        # a reinstall would (the worker finds it through the entry-point group)
        entry_points["classic_cv"] = "plugins.classic_cv"
    return install_plugin(tmp_path_factory.mktemp("site"), "vgen-condtest",
                          {"condtest.py": HOOKS, "condtest_run.py": RUN}, entry_points)


@pytest.fixture
def registry(cond_site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(cond_site))
    monkeypatch.syspath_prepend(str(cond_site))
    yield load_plugins(refresh=True)
    load_plugins(refresh=True)


@pytest.fixture
def project(tmp_path: Path):
    p = Project.create(tmp_path / "Cond.vgen")
    yield p
    p.close()


def moving_square_video(path: Path, n: int = 6, size: int = 48) -> Path:
    """A real H.264 clip: a white 16 px square on black moving 2 px right per frame."""
    frames = np.zeros((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t, 16:32, 8 + 2 * t:24 + 2 * t] = 255
    return write_mp4(path, Video(frames, fps=8))
