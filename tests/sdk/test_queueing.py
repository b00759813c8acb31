"""Queue planning rules that every generator and trainer shares."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from sdk.errors import InvalidRequest
from sdk.hookspecs import hookimpl
from sdk.params import Params
from sdk.plugins import PluginRegistry
from sdk.project import Project
from sdk.queueing import plan_jobs
from sdk.specs import GeneratorSpec, TrainerSpec


class NoNegative(Params):
    prompt: str = Field(min_length=1)
    num_inference_steps: int = Field(4, ge=1, le=8)


class Caption(Params):
    prompt: str = ""
    max_train_steps: int = Field(10, ge=1)


class Plugin:
    @hookimpl
    def vgen_generators(self):
        return [GeneratorSpec(id="t.fast", title="fast", method="T", params=NoNegative, entry="x:y")]

    @hookimpl
    def vgen_trainers(self):
        return [TrainerSpec(id="t.train", title="train", method="T", params=Caption, entry="x:y",
                            inputs=("text", "motion"), required_inputs=())]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Q.vgen")
    yield p
    p.close()


def test_a_prompts_own_negative_is_dropped_where_the_generator_has_none(project: Project, tmp_path: Path) -> None:
    reg = PluginRegistry([("t", Plugin())])
    jobs = plan_jobs(project, reg, "t.fast", prompts=[("a fox", "blurry")], weights=str(tmp_path))
    assert [j.params["prompt"] for j in jobs] == ["a fox"] and "negative_prompt" not in jobs[0].params


def test_optional_inputs_of_a_trainer_may_be_left_out(project: Project, tmp_path: Path) -> None:
    reg = PluginRegistry([("t", Plugin())])
    (job,) = plan_jobs(project, reg, "t.train", kind="train", weights=str(tmp_path))
    assert job.kind == "train" and job.inputs == {} and job.prompt is None
    (job,) = plan_jobs(project, reg, "t.train", kind="train", prompts=["a caption"], weights=str(tmp_path))
    assert job.params["prompt"] == "a caption"
    with pytest.raises(InvalidRequest) as err:
        plan_jobs(project, reg, "t.train", kind="train", motion="nope", weights=str(tmp_path))
    assert err.value.field == "motion"
