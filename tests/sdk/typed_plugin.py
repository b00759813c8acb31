"""A small third-party plugin for tests that need typed inputs without model weights: ``tint.paint`` takes a prompt
(with a negative prompt), a required image, an optional video (a file or an earlier output), an optional subject
and an optional adapter; ``tint.chain`` takes only an earlier job's output; ``tint.upscale`` (``output_action="Upscale"``) enlarges a video
or an earlier output. It renders in well under a second and
is installed as a real distribution (the worker finds it through the entry-point group)."""
from __future__ import annotations

from pathlib import Path

import pytest

HOOKS = '''
from pydantic import Field

from sdk.hookspecs import hookimpl
from sdk.inputs import AdapterRef, ConditionRef, ImageRef, OutputRef, SubjectRef, VideoRef
from sdk.params import GenerateParams, VideoParams
from sdk.specs import GeneratorSpec


class PaintParams(GenerateParams):
    num_frames: int = Field(4, ge=1, le=64)
    height: int = Field(32, ge=8, le=256, multiple_of=8)
    width: int = Field(32, ge=8, le=256, multiple_of=8)
    num_inference_steps: int = Field(2, ge=1, le=10)
    strength: float = Field(1.0, ge=0.0, le=1.0, description="how much of the image shows")


class UpscaleParams(VideoParams):
    prompt: str = Field("", description="what the video shows (the source's prompt when not given)")
    scale: int = Field(2, ge=1, le=4, description="how many times larger")
    fail: bool = Field(False, description="raise instead of upscaling (to test a failed follow-up)")


class ChainParams(VideoParams):
    num_frames: int = Field(4, ge=1, le=64)
    height: int = Field(32, ge=8, le=256, multiple_of=8)
    width: int = Field(32, ge=8, le=256, multiple_of=8)


@hookimpl
def vgen_generators():
    return [
        GeneratorSpec(id="tint.paint", title="Paint an image", method="Tint", params=PaintParams,
                      entry="tint_gen:Paint",
                      inputs=("text", ImageRef("image", required=True, description="the colour source"),
                              VideoRef("video", accept_outputs=True, description="a clip to tint"),
                              SubjectRef("subject", description="who to paint"),
                              AdapterRef("look", adapter_kind="tint.look", description="a trained look"))),
        GeneratorSpec(id="tint.chain", title="Continue an output", method="Tint", params=ChainParams,
                      entry="tint_gen:Chain",
                      inputs=(OutputRef("source", required=True, description="the output to continue"),
                              ConditionRef("edges", description="edges to follow"))),
        GeneratorSpec(id="tint.upscale", title="Upscale an output", method="Tint", params=UpscaleParams,
                      entry="tint_gen:Upscale", resizes=True, output_action="Upscale",
                      inputs=(VideoRef("video", required=True, accept_outputs=True, description="the video to upscale"),
                              "text")),
    ]
'''

GENERATOR = '''
import numpy as np
from PIL import Image

from sdk.video import Video


def _frames(p, colour):
    return np.broadcast_to(np.asarray(colour, np.uint8), (p.num_frames, p.height, p.width, 3)).copy()


class Paint:
    def generate(self, ctx, req):
        p = req.params
        colour = np.asarray(Image.open(req.inputs["image"]).convert("RGB"), np.float32).mean(axis=(0, 1)) * p.strength
        for step in range(1, p.num_inference_steps + 1):
            ctx.check_cancelled()
            ctx.progress(step, p.num_inference_steps)
        return Video(_frames(p, colour.round()), fps=p.fps)


class Chain:
    def generate(self, ctx, req):
        p = req.params
        source = req.inputs["source"]
        first = np.asarray(Image.open(sorted(source.frames_dir.glob("*.png"))[0]).convert("RGB")) \\
            if source.frames_dir else np.zeros((1, 1, 3), np.uint8)
        ctx.progress(1, 1)
        return Video(_frames(p, first.reshape(-1, 3)[0]), fps=p.fps)


class Upscale:
    def generate(self, ctx, req):
        p = req.params
        if p.fail:
            raise RuntimeError("asked to fail")
        source = req.inputs["video"]
        frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(source.frames_dir.glob("*.png"))])
        ctx.progress(1, 1)
        return Video(frames.repeat(p.scale, axis=1).repeat(p.scale, axis=2), fps=p.fps)
'''


def install_tint(site: Path) -> Path:
    """Install the plugin into ``site`` (a folder to put on sys.path and the worker's PYTHONPATH)."""
    from sdk.testing.install import install_plugin

    return install_plugin(site, "vgen-tint", {"tint.py": HOOKS, "tint_gen.py": GENERATOR}, {"tint": "tint"})


@pytest.fixture
def tint_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The installed plugins plus ``tint`` (this process and the workers it starts find it)."""
    from sdk.plugins import load_plugins
    from sdk.testing.install import pythonpath_with

    site = install_tint(tmp_path_factory.mktemp("tint-site"))
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(site))
    monkeypatch.syspath_prepend(str(site))
    registry = load_plugins(refresh=True)
    assert "tint.paint" in registry.generators, registry.plugins.get("tint")
    yield registry
    monkeypatch.undo()
    load_plugins(refresh=True)
