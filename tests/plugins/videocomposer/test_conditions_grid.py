"""``conditions`` (VGen's partial_keys) as a grid axis, queue-time refusals, and one batch rendered end to end: a
stranger's extractors make depth, sketch and local-image conditions from a motion (real worker, SQLite, ffmpeg);
``videocomposer.t2v`` renders one prompt under three subsets (three different videos) and ``videocomposer.lcm`` under
one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.cli import main as vgen
from sdk.errors import InvalidRequest
from sdk.outputs import read_frames, write_mp4, write_output
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import plan_jobs, queue_jobs
from sdk.testing.install import install_plugin, pythonpath_with
from sdk.video import Video

SIZE = {"num_frames": [3], "height": [32], "width": [48], "num_inference_steps": [2]}
HOOKS = '''
from pydantic import Field

from sdk.hookspecs import hookimpl
from sdk.inputs import VideoRef
from sdk.params import Params
from sdk.specs import ConditionSpec


class P(Params):
    num_frames: int = Field(3, ge=1, le=16)
    height: int = Field(32, ge=8, le=128, multiple_of=8)
    width: int = Field(48, ge=8, le=128, multiple_of=8)


@hookimpl
def vgen_condition_extractors():
    return [ConditionSpec(id=f"vctest.{k}", title=k, method="Test", condition=k, params=P, entry="vctest_run:Make",
                          version="1.0.0", inputs=(VideoRef("video", required=True, accept_motions=True),))
            for k in ("depth", "sketch", "local_image", "mask")]
'''
RUN = '''
from plugins.videocomposer.tiny import tiny_condition_frames
from sdk.video import Video


class Make:
    """Condition videos in the encoding contract (seeded patterns, not a real extractor)."""

    def extract(self, ctx, req):
        p = req.params
        kind = req.spec_id.rpartition(".")[2]
        ctx.progress(1, 1)
        return Video(tiny_condition_frames(p.num_frames, p.height, p.width, seed=1)[kind], fps=8)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entry_points = {"vctest": "vctest"}
    if "videocomposer" not in load_plugins(refresh=True).plugins:
        # an editable install made before videocomposer joined pyproject.toml lacks its entry point
        entry_points["videocomposer"] = "plugins.videocomposer"
    return install_plugin(tmp_path_factory.mktemp("site"), "vgen-vctest", {"vctest.py": HOOKS, "vctest_run.py": RUN},
                          entry_points)


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(site))
    monkeypatch.syspath_prepend(str(site))
    yield load_plugins(refresh=True)
    load_plugins(refresh=True)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from plugins.videocomposer.tiny import make_tiny_lcm_weights, make_tiny_weights

    root = tmp_path_factory.mktemp("vcomp-weights")
    return {"t2v": make_tiny_weights(root / "t2v"), "lcm": make_tiny_lcm_weights(root / "lcm")}


@pytest.fixture
def project(tmp_path: Path):
    p = Project.create(tmp_path / "Compose.vgen")
    frames = np.zeros((8, 32, 48, 3), np.uint8)
    for t in range(8):
        frames[t, 8:24, 4 + 3 * t:20 + 3 * t] = 220
    p.add_motion("slide", [write_mp4(tmp_path / "slide.mp4", Video(frames, fps=8))])
    yield p
    p.close()


def extract_jobs(project: Project, registry, kinds=("depth", "sketch", "local_image")) -> dict[str, str]:
    return {k: queue_jobs(project, registry, f"vctest.{k}", inputs={"video": "slide"}).job_ids[0] for k in kinds}


def test_conditions_is_a_grid_axis_and_a_subset_must_have_its_inputs(registry, project: Project,
                                                                     weights: dict[str, Path]) -> None:
    ids = extract_jobs(project, registry)
    plan = plan_jobs(project, registry, "videocomposer.t2v", prompts=["a boat"], seeds="5", weights=str(weights["t2v"]),
                     inputs=ids, params={**SIZE, "conditions": ["depth", "sketch+local_image", "none", ""]})
    # one job per subset, stored in one spelling; each waits for the extract jobs it was given
    assert [j.params["conditions"] for j in plan] == ["depth", "local_image+sketch", "none", ""]
    assert {j.seed for j in plan} == {5} and all(set(j.depends_on) == set(ids.values()) for j in plan)

    with pytest.raises(InvalidRequest) as info:
        plan_jobs(project, registry, "videocomposer.t2v", prompts=["a boat"], weights=str(weights["t2v"]),
                  inputs={"depth": ids["depth"]}, params={**SIZE, "conditions": ["depth", "depth+motion"]})
    assert info.value.field == "conditions"
    assert "'depth+motion' needs motion" in info.value.user_message and "given: depth" in info.value.user_message
    mask = extract_jobs(project, registry, ("mask",))["mask"]
    with pytest.raises(InvalidRequest, match=r"needs video.*given: mask"):  # the mask needs the video under it
        plan_jobs(project, registry, "videocomposer.lcm", prompts=["a boat"], weights=str(weights["lcm"]),
                  inputs={"mask": mask}, params={"conditions": ["mask"]})
    assert len(plan_jobs(project, registry, "videocomposer.lcm", prompts=["a boat"], weights=str(weights["lcm"]),
                         inputs={"mask": mask, "video": "slide"}, params={"conditions": ["mask"]})) == 1
    with pytest.raises(InvalidRequest, match="'colour' is not a condition") as info:
        plan_jobs(project, registry, "videocomposer.t2v", prompts=["a boat"], weights=str(weights["t2v"]),
                  params={"conditions": ["colour"]})
    assert info.value.field == "conditions"
    with pytest.raises(InvalidRequest, match="is depth, not sketch"):  # a condition of another kind
        plan_jobs(project, registry, "videocomposer.t2v", prompts=["a boat"], weights=str(weights["t2v"]),
                  inputs={"sketch": ids["depth"]})
    assert len(project.jobs()) == 4  # the extract jobs: nothing refused was queued


def test_vgen_queue_add_takes_the_conditions_grid_and_names_what_is_missing(registry, project: Project,
                                                                            weights: dict[str, Path], capsys) -> None:
    ids = extract_jobs(project, registry, ("depth", "sketch"))
    base = ["queue", "add", str(project.path), "--generator", "videocomposer.t2v", "--prompt", "a boat",
            "--weights", str(weights["t2v"]), "--input", f"depth={ids['depth']}", "--input", f"sketch={ids['sketch']}"]
    assert vgen(base + ["--param", "conditions=depth,sketch,depth+sketch"]) == 0
    assert "Queued 3 job(s)" in capsys.readouterr().out
    queued = [j.params["conditions"] for j in project.jobs() if j.spec_id == "videocomposer.t2v"]
    assert sorted(queued) == ["depth", "depth+sketch", "sketch"]
    assert vgen(base + ["--param", "conditions=depth,local_image"]) != 0
    err = capsys.readouterr().err
    assert "needs local_image" in err and "given: depth, sketch" in err and "--input NAME=CONDITION_ID" in err
    assert len(project.jobs()) == 5


@pytest.mark.slow
def test_one_batch_renders_three_subsets_and_an_lcm_job_end_to_end(registry, project: Project,
                                                                  weights: dict[str, Path]) -> None:
    from sdk.service import RenderService

    ids = extract_jobs(project, registry)
    t2v = queue_jobs(project, registry, "videocomposer.t2v", prompts=["a boat"], seeds="3", weights=str(weights["t2v"]),
                     inputs=ids, params={**SIZE, "conditions": ["depth", "sketch", "local_image"]}).job_ids
    lcm = queue_jobs(project, registry, "videocomposer.lcm", prompts=["a boat"], seeds="3", weights=str(weights["lcm"]),
                     inputs={"sketch": ids["sketch"]},
                     params={**SIZE, "num_inference_steps": [4], "conditions": ["sketch"]}).job_ids

    stats = RenderService(project, registry=registry).run(until_empty=True)

    assert stats["succeeded"] == 7, [(j.spec_id, j.error_message) for j in project.jobs()]
    videos = [read_frames(project.output(j).dir) for j in t2v]
    assert all(v.shape == (3, 32, 48, 3) for v in videos)
    for i in range(3):  # the same prompt and seed under each subset: three different videos
        for k in range(i + 1, 3):
            assert np.abs(videos[i].astype(int) - videos[k].astype(int)).max() > 8, (i, k)
    assert read_frames(project.output(lcm[0]).dir).shape == (3, 32, 48, 3)
    assert any("conditions depth" in line["message"] for line in project.logs(t2v[0]))
    # `vgen jobs show` names the condition assets a render took (and where they came from)
    from sdk.cli.conditions import job_extras

    used = {c["input"]: c for c in job_extras(project, project.job(t2v[0]))["conditions_used"]}
    assert used["depth"]["id"] == project.condition_of_job(ids["depth"]).id and used["depth"]["kind"] == "depth"
    assert set(used) == set(ids)
    # a subset naming a condition not given is refused, naming the ones the project holds of that kind
    held = project.condition_of_job(ids["depth"]).id
    with pytest.raises(InvalidRequest, match=f"holds depth: {held[:8]}"):
        plan_jobs(project, registry, "videocomposer.t2v", prompts=["a boat"], weights=str(weights["t2v"]),
                  inputs={"sketch": ids["sketch"]}, params={"conditions": ["depth"]})


def test_a_short_condition_is_padded_with_zeros_and_the_log_says_so(weights: dict[str, Path], tmp_path: Path) -> None:
    from plugins.videocomposer.params import ComposerLCMParams
    from plugins.videocomposer.pipeline import ComposerLCMGenerator
    from plugins.videocomposer.tiny import write_tiny_conditions
    from sdk import events as ev
    from sdk.context import JobContext, JobRequest, ModelCache

    short = write_tiny_conditions(tmp_path / "c", 2, 32, 48)  # 2 frames where 4 are rendered
    events: list = []
    ctx = JobContext("j", events.append, staging_dir=tmp_path / "s", models=ModelCache())
    params = ComposerLCMParams(prompt="a boat", num_frames=4, height=32, width=48, num_inference_steps=1)
    req = JobRequest("j", "generate", "videocomposer.lcm", params, seed=1, inputs={"depth": short["depth"]},
                     weights=weights["lcm"])
    assert ComposerLCMGenerator().generate(ctx, req).frames.shape == (4, 32, 48, 3)
    logs = [e.message for e in events if isinstance(e, ev.LogRecord)]
    assert any("depth: the condition video has 2 frames, 4 are needed; 2 zero frame(s) added" in m for m in logs)


def test_canny_is_refused_with_the_released_branches_named(weights: dict[str, Path], tmp_path: Path) -> None:
    from plugins.videocomposer.params import ComposerLCMParams
    from plugins.videocomposer.pipeline import ComposerLCMGenerator
    from plugins.videocomposer.tiny import write_tiny_conditions
    from sdk.context import JobContext, JobRequest, ModelCache

    inputs = write_tiny_conditions(tmp_path / "c", 2, 32, 48)
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=ModelCache())
    params = ComposerLCMParams(prompt="a boat", num_frames=2, height=32, width=48, num_inference_steps=1)
    req = JobRequest("j", "generate", "videocomposer.lcm", params, seed=1, inputs={"canny": inputs["canny"]},
                     weights=weights["lcm"])
    with pytest.raises(InvalidRequest, match="no branch for the canny condition") as info:
        ComposerLCMGenerator().generate(ctx, req)
    assert info.value.field == "conditions"


def test_video_composition_template_holds_a_motion_and_vgens_three_subsets(tmp_path: Path) -> None:
    from plugins.videocomposer import vgen_generators
    from plugins.videocomposer.params import VGEN_SUBSETS
    from sdk.params import validate_params

    with Project.create(tmp_path / "Compose.vgen", template="video-composition") as p:
        [motion] = p.motions()
        assert motion.name == "sailboat" and motion.videos[0].num_frames == 56 and not motion.problem
        extract, render = p.meta("suggested_jobs")
        assert extract["motion"] == render["conditions_from"] == "sailboat"
        assert tuple(extract["extract"]) == tuple(render["params"]["conditions"]) == VGEN_SUBSETS
        spec = vgen_generators()[0]
        assert render["generator"] == spec.id and len(p.prompts()) == 3
        for subset in render["params"]["conditions"]:
            for pr in p.prompts():
                validate_params(spec.params, {**render["params"], "prompt": pr.text, "conditions": subset})


def test_the_video_under_the_mask_is_sampled_as_the_mask_was(tmp_path: Path) -> None:
    """The masked video shows the source frames the extractors took for the mask (its own sample_fps and
    start_frame), as VGen's [frames·(1−m) in [−1, 1], 1−m]."""
    from plugins.videocomposer.conditions import load_conditions
    from plugins.videocomposer.tiny import tiny_condition_frames, write_tiny_conditions
    from sdk.inputs import VideoInput

    inputs = write_tiny_conditions(tmp_path / "c", 3, 32, 48)
    mask = inputs["mask"]
    mask.meta = {"params": {"sample_fps": 4, "start_frame": 1}}
    source = tiny_condition_frames(9, 32, 48, seed=7)["video"]
    paths = write_output(tmp_path / "src", Video(source, fps=8), {"tiny": True})
    video = VideoInput(path=paths["video"], num_frames=9, width=48, height=32, fps=8, frames_dir=paths["frames"])
    logged: list[str] = []
    conds = load_conditions({"mask": mask, "video": video}, ("mask",), 3, 32, 48, 3, logged.append)
    masked = conds["masked"][0]  # [4, F, H, W]
    keep = 1.0 - (tiny_condition_frames(3, 32, 48)["mask"][..., 0] >= 128).astype(np.float32)  # left half kept
    expected = (source[[1, 3, 5]].astype(np.float32) / 255 * 2 - 1) * keep[..., None]  # stride 2 from frame 1
    np.testing.assert_allclose(masked[:3].permute(1, 2, 3, 0).numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(masked[3].numpy(), keep)
    assert not logged  # nothing padded, nothing resized
