"""Chaining (sdk.chain): a generator with an ``output_action`` ("Upscale") queued on earlier jobs' outputs — after
each job of a batch (``queue add --then``), on one job (``vgen jobs upscale``), or as a plain ``--input video=JOB``.
The follow-up waits for its source, takes its prompt and seed, is refused for a source that failed, was cancelled or
lost its output, is cancelled with its source, and its output's meta.json names its source. Runs through the real
worker on the small installed ``tint`` plugin (``tint.upscale`` doubles a video's size), so renders take a second."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from pydantic import BaseModel

from sdk.chain import action_spec, follow_up_spec, output_actions, queue_follow_up, source_of
from sdk.cli import main as vgen
from sdk.errors import InvalidRequest
from sdk.outputs import read_frames, read_output_meta
from sdk.plugins import PluginRegistry
from sdk.project import Project
from sdk.queueing import plan_jobs, queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService
from tests.sdk.typed_plugin import tint_registry  # noqa: F401 - a fixture

TINT = "tint.upscale"  # sr600.upscale offers Upscale too: the tests name the test plugin's


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Chain.vgen")
    yield p
    p.close()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "teal.png"
    Image.new("RGB", (40, 40), (20, 160, 150)).save(path)
    return path


def paint(project: Project, registry, picture: Path, prompts=("a teal wave",), seeds="7", **kw) -> list[str]:
    return list(queue_jobs(project, registry, "tint.paint", prompts=list(prompts), seeds=seeds,
                           inputs={"image": str(picture)}, **kw).job_ids)


def run(project: Project, registry) -> dict:
    return RenderService(project, registry=registry).run(until_empty=True)


def test_then_gives_every_job_of_a_grid_a_follow_up_that_runs_after_it_and_links_back(
        tint_registry, project: Project, picture: Path, capsys) -> None:  # noqa: F811 - the fixture
    code = vgen(["queue", "add", str(project.path), "--generator", "tint.paint", "--prompt", "a teal wave",
                 "--prompt", "a red sky", "--seeds", "1,2", "--image", str(picture), "--then", "tint.upscale",
                 "--then-param", "scale=3"])
    assert code == 0, capsys.readouterr().err
    jobs = project.jobs()
    sources, follow = jobs[:4], jobs[4:]
    assert [j.spec_id for j in sources] == ["tint.paint"] * 4 and [j.spec_id for j in follow] == ["tint.upscale"] * 4
    assert len({j.batch_id for j in jobs}) == 1, "one batch: the grid and its follow-ups"
    for src, up in zip(sources, follow):
        assert up.depends_on == (src.id,) and up.inputs == {"video": {"output": src.id}}
        assert (up.prompt, up.seed, up.params["scale"]) == (src.prompt, src.seed, 3), "its source's prompt and seed"
        assert project.waiting_for(up) == [src.id]
    assert {(j.prompt, j.seed) for j in sources} == {(p, s) for p in ("a teal wave", "a red sky") for s in (1, 2)}

    stats = run(project, tint_registry)

    assert stats["succeeded"] == 8, [j.error_message for j in project.jobs()]
    for src, up in zip(sources, follow):
        src, up = project.job(src.id), project.job(up.id)
        assert up.started_at >= src.finished_at, "a follow-up starts once its source is done"
        small, big = read_frames(project.output(src.id).dir), read_frames(project.output(up.id).dir)
        assert small.shape == (4, 32, 32, 3) and big.shape == (4, 96, 96, 3)
        assert (big[:, ::3, ::3] == small).all()
        meta = read_output_meta(project.output(up.id).dir)
        out = project.output(src.id)
        assert meta["source"] == {"job_id": src.id, "input": "video", "spec_id": "tint.paint", "prompt": src.prompt,
                                  "seed": src.seed, "output_id": out.id, "output": f"outputs/{src.id}/video.mp4"}
        assert meta["prompt"] == src.prompt
        assert "source" not in read_output_meta(out.dir), "a job made from a prompt alone has no source"

    capsys.readouterr()
    assert vgen(["jobs", "show", str(project.path), follow[0].id]) == 0
    shown = capsys.readouterr().out
    assert f"source: {sources[0].id} (tint.paint, SUCCEEDED)" in shown
    assert vgen(["jobs", "show", str(project.path), sources[0].id, "--json"]) == 0
    derived = json.loads(capsys.readouterr().out)["derived"]
    assert derived == [{"job_id": follow[0].id, "spec_id": "tint.upscale", "status": "SUCCEEDED",
                        "output": str(project.output(follow[0].id).video_path)}]


def test_jobs_upscale_queues_the_upscaler_on_a_done_job_as_queue_add_input_would(
        tint_registry, project: Project, picture: Path, capsys) -> None:  # noqa: F811
    [done] = paint(project, tint_registry, picture, prompts=("a calm lake",), seeds="5")
    assert run(project, tint_registry)["succeeded"] == 1
    capsys.readouterr()
    assert vgen(["jobs", "upscale", str(project.path), done[:8], "--generator", TINT]) == 0, capsys.readouterr().err
    assert f"tint.upscale on the output of {done}" in capsys.readouterr().out
    up = project.jobs()[-1]
    assert (up.spec_id, up.inputs, up.depends_on, up.prompt, up.seed) == (
        "tint.upscale", {"video": {"output": done}}, (done,), "a calm lake", 5)
    # the plain form: the same job (its seed is the default unless given), the prompt filled in from the source
    [plain] = queue_jobs(project, tint_registry, "tint.upscale", inputs={"video": done}, seeds="5").job_ids
    same = project.job(plain)
    assert (same.inputs, same.prompt, same.params) == (up.inputs, up.prompt, up.params)
    assert run(project, tint_registry)["succeeded"] == 2
    assert read_frames(project.output(up.id).dir).shape == (4, 64, 64, 3)
    assert read_output_meta(project.output(up.id).dir)["source"]["job_id"] == done


def test_sources_with_different_prompts_give_each_follow_up_its_own(tint_registry, project: Project,  # noqa: F811
                                                                    picture: Path) -> None:
    a, b = paint(project, tint_registry, picture, prompts=("a fox", "a boat"), seeds="1")
    ids = queue_jobs(project, tint_registry, "tint.upscale", inputs={"video": [a, b]}).job_ids
    assert [(project.job(i).prompt, project.job(i).depends_on) for i in ids] == [("a fox", (a,)), ("a boat", (b,))]
    # a prompt given wins over the source's
    [given] = queue_jobs(project, tint_registry, "tint.upscale", prompts=["sharper"], inputs={"video": [a]}).job_ids
    assert project.job(given).prompt == "sharper"


def test_follow_ups_of_failed_cancelled_or_deleted_sources_are_refused(tint_registry, project: Project,  # noqa: F811
                                                                       picture: Path, capsys) -> None:
    done, cancelled = paint(project, tint_registry, picture, seeds="1,2")
    project.request_cancel(cancelled)
    assert run(project, tint_registry)["succeeded"] == 1
    [failed] = queue_follow_up(project, tint_registry, done, generator=TINT, params={"fail": [True]}).job_ids
    assert run(project, tint_registry)["failed"] == 1
    for job, status in ((failed, "failed"), (cancelled, "cancelled")):
        capsys.readouterr()
        assert vgen(["jobs", "upscale", str(project.path), job, "--generator", TINT]) == 2
        err = capsys.readouterr().err
        assert f"job {job} {status}, so it has no output" in err and "vgen queue retry" in err
    project.delete_outputs([done])  # in the trash: undoable, but nothing to upscale
    with pytest.raises(InvalidRequest, match=f"job {done} has no output any more") as info:
        queue_follow_up(project, tint_registry, done, generator=TINT)
    assert info.value.field == "video"
    project.restore_outputs([done])
    queue_follow_up(project, tint_registry, done, generator=TINT)
    with pytest.raises(InvalidRequest, match="No job with id 'ffffffff'"):
        queue_follow_up(project, tint_registry, "ffffffff", generator=TINT)


def test_a_then_generator_that_does_not_work_on_outputs_is_refused_naming_the_flag(
        tint_registry, project: Project, picture: Path, capsys) -> None:  # noqa: F811
    before = len(project.jobs())
    for then, what in (("tint.chain", "does not work on another job's output"), ("sr9.nothing", "no such generator")):
        code = vgen(["queue", "add", str(project.path), "--generator", "tint.paint", "--prompt", "x",
                     "--image", str(picture), "--then", then])
        err = capsys.readouterr().err
        assert code == 2 and f"--then {then}: " in err and what in err and "tint.upscale" in err, err
    with pytest.raises(InvalidRequest, match="--then tint.upscale: .*scale") as info:
        plan_jobs(project, tint_registry, "tint.paint", prompts=["x"], inputs={"image": str(picture)},
                  then="tint.upscale", then_params={"scale": [9]})
    assert "--then-param" in (info.value.hint or "") or info.value.field == "scale"
    assert len(project.jobs()) == before
    with pytest.raises(InvalidRequest):  # a refused batch leaves nothing behind: its image was not kept
        project.asset(hashlib.sha256(picture.read_bytes()).hexdigest())


def test_no_generator_offering_upscale_is_an_error_that_names_the_fix(project: Project) -> None:
    with pytest.raises(InvalidRequest, match="No installed generator offers 'Upscale'") as info:
        action_spec(PluginRegistry())
    assert "Install or enable a plugin" in info.value.hint
    with pytest.raises(InvalidRequest, match="--generator nope.x: there is no such generator"):
        action_spec(PluginRegistry(), generator_id="nope.x")


def test_cancelling_a_source_cancels_its_follow_ups_queued_or_running(tint_registry, project: Project,  # noqa: F811
                                                                      picture: Path) -> None:
    ids = list(queue_jobs(project, tint_registry, "tint.paint", prompts=["a"], seeds="1,2",
                          inputs={"image": str(picture)}, then="tint.upscale").job_ids)
    first, second, up1, up2 = ids
    assert project.request_cancel(second).status is JobStatus.CANCELLED
    assert project.job(up2).status is JobStatus.CANCELLED and project.job(up1).status is JobStatus.QUEUED
    # a running source: cancelled by the service; its follow-up is cancelled when the queue reaches it
    assert project.claim_next_job().id == first
    assert project.request_cancel(first).cancel_requested
    project.mark_cancelled(first)
    assert project.claim_next_job() is None
    up = project.job(up1)
    assert up.status is JobStatus.CANCELLED and f"Job {first}" in up.error_message and "cancelled" in up.error_message
    # a follow-up of a follow-up is cancelled with the first source too
    a, b = paint(project, tint_registry, picture, prompts=("b",), seeds="3")[0], None
    b = queue_follow_up(project, tint_registry, a, generator=TINT).job_ids[0]
    c = queue_follow_up(project, tint_registry, b, generator=TINT).job_ids[0]
    project.request_cancel(a)
    assert project.job(b).status is project.job(c).status is JobStatus.CANCELLED


def test_output_actions_come_from_specs_and_a_spec_without_a_source_input_is_refused(tint_registry) -> None:  # noqa
    assert sorted(output_actions(tint_registry)["Upscale"]) == ["sr600.upscale", "tint.upscale"]
    with pytest.raises(InvalidRequest, match="Several installed generators offer 'Upscale'") as info:
        action_spec(tint_registry)  # two offer it and none was named: no silent pick
    assert "--generator" in info.value.hint
    assert follow_up_spec(tint_registry, "tint.upscale").resizes

    from sdk.hookspecs import hookimpl
    from sdk.inputs import ImageRef
    from sdk.specs import GeneratorSpec

    class P(BaseModel):
        prompt: str = ""

    class Broken:
        @hookimpl
        def vgen_generators(self):
            return [GeneratorSpec(id="bad.up", title="x", method="x", params=P, entry="x:y", output_action="Upscale",
                                  inputs=("text", ImageRef("image")))]

    info = PluginRegistry([("bad", Broken())]).plugins["bad"]
    assert "output_action 'Upscale' needs an input that takes an earlier job's output" in info.error


def test_an_upscale_of_a_queued_job_waits_for_it(tint_registry, project: Project, picture: Path,  # noqa: F811
                                                 capsys) -> None:
    [a] = paint(project, tint_registry, picture)
    capsys.readouterr()
    assert vgen(["jobs", "upscale", str(project.path), a, "--param", "scale=1", "--generator", TINT]) == 0
    assert f"on the output of {a}, which it waits for" in capsys.readouterr().out
    up = project.jobs()[-1]
    assert project.waiting_for(up) == [a] and up.params["scale"] == 1
    assert project.claim_next_job().id == a and project.claim_next_job() is None, "not while its source runs"
    spec = tint_registry.generators["tint.upscale"]
    assert source_of(up) == source_of(up, spec) == a
    assert source_of(project.job(a)) is None


def test_a_templates_suggested_job_with_then_queues_the_grid_and_its_follow_ups(tint_registry, tmp_path: Path,  # noqa
                                                                               picture: Path, capsys) -> None:
    from sdk.suggested import queue_suggested, suggested_request

    folder = tmp_path / "small-then-big"
    folder.mkdir()
    (folder / "template.json").write_text(json.dumps({
        "title": "Small, then big", "prompts": [{"text": "a fox"}, {"text": "a boat"}],
        "jobs": [{"generator": "tint.paint", "all_prompts": True, "seeds": "4", "inputs": {"image": str(picture)},
                  "then": "tint.upscale", "then_params": {"scale": 3}},
                 {"extract": ["depth"], "motion": "sailboat"}]}))
    with Project.create(tmp_path / "T.vgen", template=folder) as p:
        capsys.readouterr()
        assert vgen(["queue", "suggested", str(p.path), "--list"]) == 0
        assert '1: {"extract": ["depth"]' in capsys.readouterr().out
        [batch] = queue_suggested(p, tint_registry, 0)
        jobs = [p.job(i) for i in batch.job_ids]
        assert [(j.spec_id, j.prompt, j.seed) for j in jobs] == [
            ("tint.paint", "a fox", 4), ("tint.paint", "a boat", 4), ("tint.upscale", "a fox", 4),
            ("tint.upscale", "a boat", 4)]
        assert [j.depends_on for j in jobs[2:]] == [(jobs[0].id,), (jobs[1].id,)] and jobs[2].params["scale"] == 3
        with pytest.raises(InvalidRequest, match="cannot be queued here: its keys extract are not known"):
            queue_suggested(p, tint_registry, 1)
    with Project.create(tmp_path / "I.vgen", template="image-to-video") as p:
        spec_id, request = suggested_request(p, p.meta("suggested_jobs")[0])
        assert spec_id == "i2vgen_xl.i2v" and Path(request["inputs"]["image"]).is_file()
        with pytest.raises(InvalidRequest, match="not a file of a built-in template"):
            suggested_request(p, {"generator": "i2vgen_xl.i2v", "image": "../demo/template.json"})
