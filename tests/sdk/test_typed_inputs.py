"""Typed inputs end to end, with a plugin written as a stranger would: an image input and a video input (which
may be an earlier job's output), no prompt, no weights. It is installed as a distribution and found through the
entry-point group by the worker, like any third-party plugin. Also: what a broken plugin returns fails its job."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from sdk.cli import main as vgen
from sdk.errors import InvalidRequest
from sdk.outputs import read_frames
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService
from sdk.testing.install import install_plugin, pythonpath_with

pytestmark = pytest.mark.slow

HOOKS = '''
from pydantic import Field

from sdk.hookspecs import hookimpl
from sdk.inputs import ImageRef, VideoRef
from sdk.params import VideoParams
from sdk.specs import GeneratorSpec


class BlendParams(VideoParams):
    num_frames: int = Field(4, ge=1, le=64)
    height: int = Field(32, ge=8, le=256, multiple_of=8)
    width: int = Field(32, ge=8, le=256, multiple_of=8)
    mix: float = Field(0.5, ge=0.0, le=1.0, description="share of the image in each frame")
    mode: str = Field("ok", pattern="^(ok|no_return|wrong_shape)$", description="how to misbehave (tests)")


@hookimpl
def vgen_generators():
    return [GeneratorSpec(id="walls.blend", title="Blend an image into a video", method="Blend", params=BlendParams,
                          entry="walls_gen:Blend",
                          inputs=(ImageRef("image", required=True, description="the picture"),
                                  VideoRef("video", accept_outputs=True, description="frames to blend it into")))]
'''

GENERATOR = '''
import imageio.v3 as iio
import numpy as np
from PIL import Image

from sdk.video import Video


class Blend:
    def generate(self, ctx, req):
        p = req.params
        image = np.asarray(Image.open(req.inputs["image"]).convert("RGB").resize((p.width, p.height)), np.float32)
        frames = np.repeat(image[None], p.num_frames, axis=0)
        video = req.inputs.get("video")
        if video is not None:
            src = iio.imread(video.path, plugin="pyav") if video.frames_dir is None else np.stack(
                [np.asarray(Image.open(f).convert("RGB")) for f in sorted(video.frames_dir.glob("*.png"))])
            pick = np.linspace(0, len(src) - 1, p.num_frames).round().astype(int)
            src = np.stack([np.asarray(Image.fromarray(src[i]).resize((p.width, p.height)), np.float32) for i in pick])
            frames = p.mix * frames + (1 - p.mix) * src
        for step in range(1, 3):
            ctx.check_cancelled()
            ctx.progress(step, 2)
        if p.mode == "no_return":
            return None
        if p.mode == "wrong_shape":
            return Video(np.zeros((3, 16, 16, 3), np.uint8), fps=p.fps)
        return Video(frames.round().clip(0, 255).astype(np.uint8), fps=p.fps)
'''

CONTRADICTS = '''
from sdk.hookspecs import hookimpl
from sdk.params import VideoParams
from sdk.specs import GeneratorSpec


@hookimpl
def vgen_generators():
    return [GeneratorSpec(id="broken.gen", title="Says text, has no prompt", method="x", params=VideoParams,
                          entry="nowhere:Nothing", inputs=("text",))]
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(tmp_path_factory.mktemp("site"), "vgen-walls",
                          {"walls.py": HOOKS, "walls_gen.py": GENERATOR, "broken_plugin.py": CONTRADICTS},
                          {"walls": "walls", "broken": "broken_plugin"})


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(site))
    monkeypatch.syspath_prepend(str(site))
    yield load_plugins(refresh=True)
    load_plugins(refresh=True)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Walls.vgen")
    yield p
    p.close()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "red.png"
    Image.new("RGB", (48, 48), (200, 10, 10)).save(path)
    return path


def test_a_contradicting_plugin_is_listed_with_its_reason_and_the_others_work(registry) -> None:
    assert "contradicting" not in str(registry.plugins.get("walls").error)
    broken = registry.plugins["broken"]
    assert broken.error and "'text' input but its params have no 'prompt'" in broken.error
    assert "broken.gen" not in registry.generators and "walls.blend" in registry.generators
    assert "modelscope_t2v.t2v" in registry.generators


def test_an_image_only_weight_free_generator_renders_without_prompt_or_weights(registry, project: Project,
                                                                                picture: Path) -> None:
    spec = registry.generators["walls.blend"]
    assert not spec.takes_text and [f.name for f in spec.fields] == ["image", "video"]
    with pytest.raises(InvalidRequest, match="takes no prompt"):
        queue_jobs(project, registry, "walls.blend", prompts=["a cat"], inputs={"image": str(picture)})
    with pytest.raises(InvalidRequest, match="needs an image") as err:
        queue_jobs(project, registry, "walls.blend")
    assert "--input image=" in err.value.hint
    first = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture)}).job_ids[0]
    # the second job blends into the first one's output: it waits for it
    second = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture), "video": first},
                        params={"mix": [0.25]}).job_ids[0]
    assert project.job(second).depends_on == (first,) and project.waiting_for(project.job(second)) == [first]

    stats = RenderService(project, registry=registry).run(until_empty=True)

    assert stats["succeeded"] == 2, [j.error_message for j in project.jobs()]
    frames = read_frames(project.output(first).dir)
    assert frames.shape == (4, 32, 32, 3) and abs(int(frames[0, 5, 5, 0]) - 200) <= 2
    second_frames = read_frames(project.output(second).dir)
    assert np.abs(second_frames.astype(int) - frames.astype(int)).max() <= 2  # red into red is red
    meta = project.output(second).meta_path.read_text()
    assert f'"output": "{first}"' in meta and '"spec_id": "walls.blend"' in meta


def test_what_a_broken_generator_returns_fails_its_job_naming_the_plugin(registry, project: Project,
                                                                         picture: Path) -> None:
    none = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture)},
                      params={"mode": ["no_return"]}).job_ids[0]
    wrong = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture)},
                       params={"mode": ["wrong_shape"]}).job_ids[0]
    RenderService(project, registry=registry).run(until_empty=True)
    a, b = project.job(none), project.job(wrong)
    assert a.status is JobStatus.FAILED and "walls.blend" in a.error_message and "None" in a.error_message
    assert b.status is JobStatus.FAILED and "num_frames 3 (asked 4)" in b.error_message
    assert "height 16 (asked 32)" in b.error_message and "resizes=True" in b.error_hint
    assert project.outputs(none) == [] and project.outputs(wrong) == []


def test_outputs_of_failed_jobs_are_refused_and_a_failed_source_fails_its_dependents(registry, project: Project,
                                                                                   picture: Path) -> None:
    source = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture)},
                        params={"mode": ["no_return"]}).job_ids[0]
    dependent = queue_jobs(project, registry, "walls.blend",
                           inputs={"image": str(picture), "video": source}).job_ids[0]
    RenderService(project, registry=registry).run(until_empty=True)
    assert project.job(source).status is JobStatus.FAILED
    dep = project.job(dependent)
    assert dep.status is JobStatus.FAILED and f"Job {source}, which this job needs" in dep.error_message and "failed" in dep.error_message
    with pytest.raises(InvalidRequest, match="failed, so it has no output"):
        queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture), "video": source})


def test_cancelling_a_source_cancels_what_waits_for_it(registry, project: Project, picture: Path) -> None:
    source = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture)}).job_ids[0]
    dependent = queue_jobs(project, registry, "walls.blend",
                           inputs={"image": str(picture), "video": source}).job_ids[0]
    project.request_cancel(source)
    assert project.claim_next_job() is None
    assert project.job(dependent).status is JobStatus.CANCELLED


def test_an_input_file_that_vanished_fails_that_job_with_its_path(registry, project: Project, picture: Path) -> None:
    gone = queue_jobs(project, registry, "walls.blend", inputs={"image": str(picture)}).job_ids[0]
    asset = project.asset(project.job(gone).inputs["image"])
    asset.path.unlink()
    stats = RenderService(project, registry=registry).run(until_empty=True)
    job = project.job(gone)
    assert stats["failed"] == 1 and job.status is JobStatus.FAILED and str(asset.path) in job.error_message


def test_the_cli_takes_inputs_by_name(registry, project: Project, picture: Path, capsys) -> None:
    path = str(project.path)
    assert vgen(["queue", "add", path, "--generator", "walls.blend", "--input", f"image={picture}",
                 "--input", f"image={picture}", "--param", "mix=0.5"]) == 0  # a repeated name is a grid axis
    assert len(project.jobs()) == 2
    assert vgen(["queue", "add", path, "--generator", "walls.blend", "--input", "picture=x.png"]) == 2
    assert "takes no picture" in capsys.readouterr().err
