"""What a user meets before anything renders: the three CogVideoX generators and four weights ids with their
licences (which allow commercial use), queue-time refusals (frame counts, with the ExVideo adapter named; 5B weights
in a commercial-safe project, with the licence), per-model defaults, and the commercial-safe template."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.errors import InvalidRequest
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs

SMALL = {"height": [32], "width": [48], "num_frames": [9], "num_inference_steps": [2]}


@pytest.fixture(scope="module")
def registry():
    reg = load_plugins(refresh=True)
    assert reg.plugins["cogvideox"].error is None, reg.plugins["cogvideox"].error
    return reg


@pytest.fixture(scope="module")
def twin_2b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sdk.ml.cogvideox import write_twin

    return write_twin(tmp_path_factory.mktemp("cogx") / "2b", variant="2b")


def test_generators_and_weights_say_their_inputs_licences_and_commercial_use(registry) -> None:
    t2v, i2v, v2v = (registry.generators[f"cogvideox.{k}"] for k in ("t2v", "i2v", "v2v"))
    assert [f.name for f in i2v.fields] == ["image"] and i2v.field("image").required
    assert [f.name for f in v2v.fields] == ["video"] and v2v.field("video").accept_outputs
    assert t2v.takes_text and t2v.default_weights == "cogvideox-2b" and i2v.default_weights == "cogvideox-5b-i2v"
    ws = {w: registry.weights[w] for w in ("cogvideox-2b", "cogvideox-5b", "cogvideox-5b-i2v", "cogvideox1.5-5b")}
    assert ws["cogvideox-2b"].commercial is True and "Apache-2.0" in ws["cogvideox-2b"].licence
    for wid in ("cogvideox-5b", "cogvideox-5b-i2v", "cogvideox1.5-5b"):
        assert ws[wid].commercial is False and "CogVideoX LICENSE" in ws[wid].licence
    assert ws["cogvideox1.5-5b"].repo_id == "THUDM/CogVideoX1.5-5B"
    # image-to-video weights (32 input channels) are never offered to t2v/v2v, nor t2v weights to i2v
    assert ws["cogvideox-5b-i2v"].method == i2v.method != t2v.method == ws["cogvideox-5b"].method


def test_models_list_shows_which_weights_allow_commercial_use(capsys) -> None:
    assert vgen(["models", "list"]) == 0
    out = capsys.readouterr().out
    line = {ln.split()[0]: nxt for ln, nxt in zip(out.splitlines(), out.splitlines()[1:]) if ln.startswith("cog")}
    assert "[commercial use allowed]" in line["cogvideox-2b"]
    assert "[not for commercial use]" in line["cogvideox-5b"] and "CogVideoX LICENSE" in line["cogvideox-5b"]


@pytest.mark.parametrize("frames, words", [(57, ["at most 49", "exvideo.cogvideox", "exvideo-cogvideox-lora-129f"]),
                                           (45, ["8k+1", "41 or 49"]), (13, ["8k+1", "9 or 17"])])
def test_frame_counts_cogvideox_cannot_render_are_refused_at_queue_time(tmp_path: Path, registry, twin_2b: Path,
                                                                       frames: int, words: list[str]) -> None:
    with Project.create(tmp_path / "P.vgen") as project:
        with pytest.raises(InvalidRequest) as err:
            queue_jobs(project, registry, "cogvideox.t2v", prompts=["a kite"], weights=str(twin_2b),
                       params=dict(SMALL, num_frames=[frames]))
        assert project.jobs() == []
    text = f"{err.value.user_message} {err.value.hint}"
    assert "num_frames" in text and str(frames) in text
    for w in words:
        assert w in text, text


def test_the_size_fps_and_dynamic_cfg_default_to_the_models(tmp_path: Path, registry, twin_2b: Path) -> None:
    from plugins.cogvideox.params import model_defaults

    assert model_defaults("cogvideox1.5-5b") == (768, 1360, 16, True, False)  # not installed: its model card
    assert model_defaults("cogvideox-2b") == (480, 720, 8, False, False)
    assert model_defaults("cogvideox-5b-i2v").fixed_size
    with Project.create(tmp_path / "P.vgen") as project:
        queue_jobs(project, registry, "cogvideox.t2v", prompts=["a kite"], weights=str(twin_2b),
                   params={"num_inference_steps": [2], "num_frames": [9]})
        queue_jobs(project, registry, "cogvideox.t2v", prompts=["a kite"], weights=str(twin_2b),
                   params={"height": [64], "fps": [12], "use_dynamic_cfg": [True]})
        first, second = sorted(project.jobs(), key=lambda j: j.params["fps"])
    # the twin's transformer was trained at 8×12 latents (×4: its VAE) → 32×48; 2B: 8 fps, no dynamic CFG
    assert (first.params["height"], first.params["width"], first.params["fps"]) == (32, 48, 8)
    assert first.params["use_dynamic_cfg"] is False and first.params["guidance_scale"] == 6.0
    assert first.params["num_inference_steps"] == 2
    assert (second.params["height"], second.params["width"], second.params["fps"]) == (64, 48, 12)
    assert second.params["use_dynamic_cfg"] is True and second.params["num_frames"] == 49


def test_i2v_weights_take_their_trained_size_only(tmp_path: Path, registry) -> None:
    """5B-I2V's learned position embeddings fit one size: another is refused when queued, naming it."""
    from sdk.ml.cogvideox import write_twin

    twin = write_twin(tmp_path / "i2v", variant="5b-i2v")
    image = str(Path(__file__).parents[3] / "project_templates/image-to-video/sample.png")
    with Project.create(tmp_path / "P.vgen") as project:
        with pytest.raises(InvalidRequest) as err:
            queue_jobs(project, registry, "cogvideox.i2v", prompts=["a kite"], weights=str(twin), image=image,
                       params=dict(SMALL, width=[64]))
        assert "32×64" in err.value.user_message and "height 32 and width 48" in err.value.hint
        queue_jobs(project, registry, "cogvideox.i2v", prompts=["a kite"], weights=str(twin), image=image,
                   params={"num_frames": [9]})
        job = project.jobs()[0]
    assert (job.params["height"], job.params["width"], job.params["use_dynamic_cfg"]) == (32, 48, True)


def test_dynamic_cfg_is_on_for_the_5b_family_unless_turned_off(tmp_path: Path, registry) -> None:
    """"auto" (the default, what a form sends untouched) is the model's: on for 5B (rotary positions)."""
    from sdk.ml.cogvideox import write_twin

    twin_5b = write_twin(tmp_path / "5b", variant="5b")
    with Project.create(tmp_path / "P.vgen") as project:
        queue_jobs(project, registry, "cogvideox.t2v", prompts=["a kite"], weights=str(twin_5b),
                   params=dict(SMALL, use_dynamic_cfg=["auto", False]))
        values = sorted(j.params["use_dynamic_cfg"] for j in project.jobs())
    assert values == [False, True]


def test_a_commercial_safe_project_refuses_5b_weights_naming_their_licence(tmp_path: Path, registry,
                                                                          twin_2b: Path) -> None:
    from sdk import weights as w

    for wid in ("cogvideox-2b", "cogvideox-5b"):
        w.make_tiny(registry.weights[wid], tmp_path / wid, register=True)
    with Project.create(tmp_path / "Safe.vgen", template="commercial-safe") as project:
        assert project.meta("weights_policy") == {"commercial_only": True}
        image = str(Path(__file__).parents[3] / "project_templates/image-to-video/sample.png")
        # by id, by the folder it is installed in, and i2v's default weights (5B-I2V)
        for spec_id, weights in (("cogvideox.t2v", "cogvideox-5b"), ("cogvideox.t2v", str(tmp_path / "cogvideox-5b")),
                                 ("cogvideox.i2v", None)):
            with pytest.raises(InvalidRequest) as err:
                queue_jobs(project, registry, spec_id, prompts=["a kite"], weights=weights, params=SMALL,
                           image=image if spec_id.endswith("i2v") else None)
            assert "not for commercial use" in err.value.user_message and "CogVideoX LICENSE" in err.value.user_message
            assert "cogvideox-2b" in err.value.hint and err.value.field == "weights"
        # VGen's research-only weights too (ModelScope T2V's default: CC-BY-NC-4.0)
        with pytest.raises(InvalidRequest, match="not for commercial use: CC-BY-NC-4.0"):
            queue_jobs(project, registry, "modelscope_t2v.t2v", prompts=["a kite"], seeds="1")
        assert project.jobs() == []
        batch = queue_jobs(project, registry, "cogvideox.t2v", prompts=["a kite"], weights="cogvideox-2b",
                           params=SMALL)
        assert len(batch.job_ids) == 1
    # the same 5B weights queue in a project made without the template
    with Project.create(tmp_path / "Open.vgen") as project:
        assert len(queue_jobs(project, registry, "cogvideox.t2v", prompts=["a kite"], weights="cogvideox-5b",
                              params=SMALL).job_ids) == 1


def test_the_commercial_safe_template_suggests_cogvideox_2b_renders(tmp_path: Path, registry, capsys) -> None:
    from sdk import weights as w

    w.make_tiny(registry.weights["cogvideox-2b"], tmp_path / "2b", register=True)
    path = tmp_path / "Safe.vgen"
    assert vgen(["project", "new", str(path), "--template", "commercial-safe"]) == 0
    assert vgen(["queue", "suggested", str(path)]) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        jobs = project.jobs()
        assert project.meta("template")["name"] == "commercial-safe"
    assert len(jobs) == 3 and {j.spec_id for j in jobs} == {"cogvideox.t2v"}
    assert {j.weights for j in jobs} == {"cogvideox-2b"}
    assert all(j.params["num_frames"] == 49 and j.params["guidance_scale"] == 6.0 for j in jobs)



def test_long_prompts_get_no_clip_warning_and_the_preflight_sees_cogvideox_sizes(tmp_path: Path, registry,
                                                                                twin_2b: Path) -> None:
    """T5 reads 226 tokens, so the queue's 77-CLIP-token warning would be wrong here; the preflight plans with
    CogVideoX's own activation factor and its VAE's 8-frame decode, and picks a mode for the twin."""
    from sdk.ml.preflight import cfg_batched, denoiser_bytes_per_unit
    from sdk.ml.runtime import plan_runtime

    from plugins.cogvideox.params import CogVideoXParams

    long = "a paper boat drifting down a stream through a green forest, " * 8
    with Project.create(tmp_path / "P.vgen") as project:
        batch = queue_jobs(project, registry, "cogvideox.t2v", prompts=[long], weights=str(twin_2b), params=SMALL)
        params = CogVideoXParams.model_validate(project.jobs()[0].params)
    assert batch.warnings == ()
    assert denoiser_bytes_per_unit(params) == 6.0 and cfg_batched(params) and params.decode_chunk_size == 8
    plan = plan_runtime({"kind": "generate", "precision": "fp32", "memory_mode": "auto"}, params, twin_2b, "cpu",
                        None)
    assert plan.memory_mode == "none" and plan.estimate["weights_bytes"] > 0


def test_the_shared_model_table_agrees_with_the_weights_specs_and_params(registry) -> None:
    """sdk.ml.cogvideox.MODELS (for the exvideo plugin too) and the plugin's torch-free specs and defaults say the
    same repos, licences, commercial use, sizes, fps and dynamic CFG."""
    from sdk.ml.cogvideox import MODELS

    from plugins.cogvideox.params import DEFAULTS

    assert set(MODELS) == set(DEFAULTS) == {w for w in registry.weights if w.startswith("cogvideox")}
    for wid, m in MODELS.items():
        spec = registry.weights[wid]
        assert (m.repo_id, m.licence, m.commercial) == (spec.repo_id, spec.licence, spec.commercial)
        assert (m.height, m.width, m.fps, m.dynamic_cfg) == DEFAULTS[wid]
        assert (m.frames, m.steps, m.guidance) == (49, 50, 6.0)


def test_an_image_is_cropped_to_the_frame_aspect_and_a_short_source_is_refused(tmp_path: Path, twin_2b: Path) -> None:
    """i2v keeps the centre of an image at the frame's aspect ratio (diffusers would stretch it); v2v refuses a
    source shorter than num_frames, naming the count that fits, before any weights load."""
    import numpy as np
    from PIL import Image

    from sdk.context import JobContext, JobRequest
    from sdk.inputs import VideoInput
    from sdk.outputs import write_output
    from sdk.video import Video

    from plugins.cogvideox.pipeline import CogVideoXGenerator, _crop_to

    assert _crop_to(Image.new("RGB", (300, 300)), 480, 720).size == (300, 200)
    assert _crop_to(Image.new("RGB", (1000, 300)), 480, 720).size == (450, 300)
    assert _crop_to(Image.new("RGB", (72, 48)), 32, 48).size == (72, 48)

    frames = np.zeros((6, 32, 48, 3), np.uint8)
    paths = write_output(tmp_path / "src", Video(frames, fps=8), {"kind": "source"})
    source = VideoInput(path=paths["video"], num_frames=6, width=48, height=32, fps=8, frames_dir=paths["frames"])
    ctx = JobContext("v", lambda e: None, staging_dir=tmp_path / "s", device="cpu")
    req = JobRequest(job_id="v", kind="generate", spec_id="cogvideox.v2v", seed=1, inputs={"video": source},
                     params={"prompt": "x", "num_frames": 9, "height": 32, "width": 48}, weights=twin_2b)
    with pytest.raises(InvalidRequest) as err:
        CogVideoXGenerator().generate(ctx, req)
    assert "6 frames" in err.value.user_message and "num_frames to 1" in err.value.hint
    assert not ctx.models.keys  # refused before loading anything
