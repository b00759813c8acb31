"""What queueing refuses (malformed seeds, control characters, huge prompts, tiny images, bad weights) — leaving no
trace — and what it warns about (prompts the text encoder cuts, DDIM step counts that differ from VGen's)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import Field

from sdk.errors import DiskFull, IncompatibleCheckpoint, InvalidRequest, WeightsMissing
from sdk.hookspecs import hookimpl
from sdk.params import GenerateParams, Params
from sdk.plugins import PluginRegistry
from sdk.project import Project
from sdk.queueing import plan_jobs, queue_jobs
from sdk.specs import GeneratorSpec


class Sampled(GenerateParams):
    scheduler: str = Field("ddim", pattern="^(ddim|euler)$")


class Checked(Params):
    """A third-party model with its own queue-time advice."""

    prompt: str = Field(min_length=1)
    strength: float = Field(0.5, ge=0.0, le=1.0)

    def queue_warnings(self) -> list[str]:
        return ["strength above 0.9 burns the colours"] if self.strength > 0.9 else []


class Plugin:
    @hookimpl
    def vgen_generators(self):
        return [GeneratorSpec(id="t.t2v", title="t2v", method="T", params=Sampled, entry="x:y"),
                GeneratorSpec(id="t.i2v", title="i2v", method="T", params=Sampled, entry="x:y",
                              inputs=("text", "image")),
                GeneratorSpec(id="t.own", title="own", method="T", params=Checked, entry="x:y")]


@pytest.fixture
def registry() -> PluginRegistry:
    return PluginRegistry([("t", Plugin())])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Q.vgen")
    yield p
    p.close()


@pytest.fixture
def weights(tmp_path: Path) -> str:
    """A folder is enough for generators that declare no weights layout (nothing in it to inspect)."""
    (tmp_path / "w").mkdir()
    return str(tmp_path / "w")


def png(path: Path, size: tuple[int, int]) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def traces(project: Project) -> tuple[int, int, list[Path]]:
    """Jobs, asset rows and asset files: all stay 0 when a batch is refused."""
    info = project.info()
    return sum(info["jobs"].values()), info["assets"], [p for p in (project.path / "assets").rglob("*") if p.is_file()]


@pytest.mark.parametrize("seeds", ["1,,2", "1,", ",", "1-", "a", "3-1", "1-x"])
def test_malformed_seed_lists_are_refused(project, registry, weights, seeds: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        queue_jobs(project, registry, "t.t2v", prompts=["a fox"], seeds=seeds, weights=weights)
    assert err.value.field == "seed" and repr(seeds.split(",")[0] or seeds)[1:-1] in err.value.user_message
    assert "1,2,5-8" in err.value.hint or "Write" in err.value.hint
    assert traces(project) == (0, 0, [])


@pytest.mark.parametrize(("field", "request_"), [
    ("prompt", dict(prompts=["a fox\x00 in the snow"])),
    ("prompt", dict(prompts=["\x1b[2Jcleared"])),
    ("negative_prompt", dict(prompts=[("a fox", "blurry\x07")])),
    ("negative_prompt", dict(prompts=["a fox"], params={"negative_prompt": "bad\x9b31m"})),
])
def test_control_characters_in_prompts_are_refused(project, registry, weights, field: str, request_: dict) -> None:
    with pytest.raises(InvalidRequest) as err:
        queue_jobs(project, registry, "t.t2v", weights=weights, **request_)
    assert err.value.field == field and "control character" in err.value.user_message
    assert "\x00" not in err.value.user_message and "\x1b" not in err.value.user_message  # shown escaped
    assert traces(project) == (0, 0, [])


def test_a_long_prompt_is_queued_with_a_warning_showing_the_cut(project, registry, weights) -> None:
    prompt = "a red fox " + " ".join(f"detail{i}" for i in range(40)) + " and the final word elephant"
    batch = queue_jobs(project, registry, "t.t2v", prompts=[prompt], seeds="1-3", weights=weights)
    assert len(batch.job_ids) == 3 and project.job(batch.job_ids[0]).prompt == prompt  # kept whole
    [warning] = batch.warnings  # once, not once per seed
    assert warning.startswith('The prompt "a red fox detail0 detail1 detail2 detail…" is ')
    assert "the text encoder reads 77" in warning and "elephant" not in warning.split("from:")[0]
    assert warning.split("from: ")[1].startswith('"detail')


def test_a_prompt_beyond_the_cap_is_refused_with_a_short_message(project, registry, weights) -> None:
    with pytest.raises(InvalidRequest) as err:
        queue_jobs(project, registry, "t.t2v", prompts=["fox " * 25_000], weights=weights)
    assert err.value.field == "prompt" and "100,000 characters" in err.value.user_message
    assert len(str(err.value)) < 500
    batch = queue_jobs(project, registry, "t.t2v", prompts=["fox " * 2_000], weights=weights)  # 8,000: accepted
    assert len(batch.job_ids) == 1 and "CLIP tokens" in batch.warnings[0]


def test_step_counts_that_do_not_divide_1000_warn_that_vgen_would_differ(project, registry, weights) -> None:
    batch = queue_jobs(project, registry, "t.t2v", prompts=["a fox"], weights=weights,
                       params={"num_inference_steps": [30, 50]})
    assert len(batch.warnings) == 1 and batch.warnings[0].startswith(
        "30 steps: VGen's own scripts would take 31 steps for this count; the output will differ slightly")
    assert queue_jobs(project, registry, "t.t2v", prompts=["a fox"], weights=weights,
                      params={"num_inference_steps": 30, "scheduler": "euler"}).warnings == ()
    assert queue_jobs(project, registry, "t.t2v", prompts=["a fox"], weights=weights).warnings == ()  # 50


def test_a_params_models_own_queue_warnings_are_shown(project, registry, weights) -> None:
    plan = plan_jobs(project, registry, "t.own", prompts=["a fox"], params={"strength": [0.5, 0.95]}, weights=weights)
    assert len(plan) == 2 and plan.warnings == ["strength above 0.9 burns the colours"]


def test_a_batch_refused_for_its_weights_leaves_no_asset(project, registry, tmp_path) -> None:
    image = png(tmp_path / "in.png", (64, 48))
    with pytest.raises(WeightsMissing):
        queue_jobs(project, registry, "t.i2v", prompts=["a fox"], image=image, weights="user.not-installed")
    assert traces(project) == (0, 0, [])


def test_an_image_imported_for_a_batch_that_cannot_be_added_is_removed(project, registry, weights, tmp_path,
                                                                      monkeypatch) -> None:
    image, kept = png(tmp_path / "in.png", (64, 48)), png(tmp_path / "subject.png", (40, 40))
    project.add_subject("rex", [kept])

    def disk_full(jobs):
        raise DiskFull("disk full (0 MB free at the project)")

    monkeypatch.setattr(project, "add_jobs", disk_full)  # the fault: the transaction that adds the batch fails
    for img in (image, kept):
        with pytest.raises(DiskFull):
            queue_jobs(project, registry, "t.i2v", prompts=["a fox"], image=img, weights=weights)
    jobs, assets, files = traces(project)
    assert (jobs, assets, len(files)) == (0, 1, 1)  # the subject's image stays, the batch's own is gone
    assert project.subject("rex").images[0].asset.path.is_file()


def test_a_1x1_image_is_refused_as_an_input(project, registry, weights, tmp_path) -> None:
    with pytest.raises(InvalidRequest) as err:
        queue_jobs(project, registry, "t.i2v", prompts=["a fox"], image=png(tmp_path / "dot.png", (1, 1)),
                   weights=weights)
    assert err.value.field == "image" and "1x1 px" in err.value.user_message and "32×32" in err.value.hint
    assert traces(project) == (0, 0, [])


def test_weights_that_would_run_code_are_refused_at_queue_time(project, registry, tmp_path, code_checkpoint) -> None:
    marker = tmp_path / "pwned"
    evil = code_checkpoint(tmp_path / "finetune.pth", marker)
    with pytest.raises(IncompatibleCheckpoint, match="would run code"):
        queue_jobs(project, registry, "t.t2v", prompts=["a fox"], weights=str(evil))
    assert not marker.exists() and traces(project) == (0, 0, [])
