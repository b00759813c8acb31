"""Re-queueing (sdk.requeue): one implementation behind Project.requeue, `vgen jobs requeue` and the GUI. A job comes
back from its row, or from an output's meta.json / MP4 comment in another project; overrides are validated like
any request. Runs on a small installed plugin with typed inputs (no weights), so the renders take a second."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sdk.cli import main as vgen
from sdk.errors import InvalidRequest
from sdk.options import OPTION_KEYS
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService
from tests.sdk.typed_plugin import tint_registry  # noqa: F401 - a fixture

SAME = ("spec_id", "kind", "params", "prompt", "seed", "inputs", "weights", "depends_on")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Paint.vgen")
    yield p
    p.close()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "teal.png"
    Image.new("RGB", (40, 40), (20, 160, 150)).save(path)
    return path


def same_recipe(a, b) -> None:
    for key in SAME:
        assert getattr(a, key) == getattr(b, key), key
    assert {k: a.options[k] for k in OPTION_KEYS} == {k: b.options[k] for k in OPTION_KEYS}


def paint(project: Project, registry, picture: Path, **kw):
    kw.setdefault("prompts", [("a teal wave", "blurry, dark")])
    return queue_jobs(project, registry, "tint.paint", seeds=kw.pop("seeds", "7"), inputs={"image": str(picture),
                      **kw.pop("inputs", {})}, options={"precision": "fp32", "memory_mode": "low"}, **kw)


def test_a_requeued_job_has_exactly_its_params_inputs_options_seed_and_prompt(tint_registry, project: Project,
                                                                              picture: Path) -> None:
    project.add_subject("Kit", [picture])
    first = project.job(paint(project, tint_registry, picture, params={"strength": [0.5]},
                              inputs={"subject": "Kit", "look": "latest"}).job_ids[0])
    assert first.params["prompt"] == "a teal wave" and first.params["negative_prompt"] == "blurry, dark"

    batch = project.requeue(first.id, registry=tint_registry)

    assert len(batch.job_ids) == 1, "the prompt is queued once, not once from params and once from the recipe"
    again = project.job(batch.job_ids[0])
    assert again.id != first.id and again.status is JobStatus.QUEUED
    same_recipe(again, first)
    # a job that takes another job's output waits for the same job again
    chained = project.job(queue_jobs(project, tint_registry, "tint.chain", inputs={"source": first.id}).job_ids[0])
    chained_again = project.job(project.requeue(chained, registry=tint_registry).job_ids[0])
    same_recipe(chained_again, chained)
    assert chained_again.depends_on == (first.id,) and project.waiting_for(chained_again) == [first.id]


def test_an_output_file_from_another_project_queues_its_recipe(tint_registry, project: Project, picture: Path,
                                                               tmp_path: Path) -> None:
    job_id = paint(project, tint_registry, picture).job_ids[0]
    assert RenderService(project, registry=tint_registry).run(until_empty=True)["succeeded"] == 1
    out = project.output(job_id)
    original = project.job(job_id)

    # in the project that made it: the job's row (its output folder, meta.json or MP4 all lead to it)
    for source in (out.dir, out.meta_path, out.video_path, out):
        twin = project.job(project.requeue(source, registry=tint_registry).job_ids[0])
        same_recipe(twin, original)

    # elsewhere: the recipe in the file; the image is named when it is not there, and found once it is
    with Project.create(tmp_path / "Other.vgen") as other:
        with pytest.raises(InvalidRequest, match="The image this output was made from is not in this project") as err:
            other.requeue(out.video_path, registry=tint_registry)
        assert err.value.field == "image" and "--input image=" in err.value.hint
        other.import_asset(picture, "image")
        for source in (out.video_path, out.meta_path):
            twin = other.job(other.requeue(source, registry=tint_registry).job_ids[0])
            assert twin.params == original.params and twin.prompt == original.prompt == "a teal wave"
            assert twin.params["negative_prompt"] == "blurry, dark" and twin.seed == 7
            assert twin.inputs == original.inputs and twin.weights is None
            assert {k: twin.options[k] for k in OPTION_KEYS} == {"precision": "fp32", "memory_mode": "low"}
        with pytest.raises(InvalidRequest, match="carries no VGen Studio recipe"):
            other.requeue(picture, registry=tint_registry)
        with pytest.raises(InvalidRequest, match="neither a job of this project nor an output file"):
            other.requeue("abc123", registry=tint_registry)


def test_overrides_are_validated_like_any_request(tint_registry, project: Project, picture: Path) -> None:
    first = project.job(paint(project, tint_registry, picture).job_ids[0])

    batch = project.requeue(first, registry=tint_registry, strength=[0.25, 0.75], seeds="1-2", precision="bf16",
                            prompt="a teal sky")
    jobs = [project.job(j) for j in batch.job_ids]
    assert len(jobs) == 4, "2 strengths × 2 seeds; the precision replaces the job's, it is not a second axis"
    assert sorted((j.params["strength"], j.seed) for j in jobs) == [(0.25, 1), (0.25, 2), (0.75, 1), (0.75, 2)]
    assert {j.options["precision"] for j in jobs} == {"bf16"} and {j.options["memory_mode"] for j in jobs} == {"low"}
    assert {j.prompt for j in jobs} == {"a teal sky"} and {j.params["negative_prompt"] for j in jobs} == {"blurry, dark"}

    n = len(project.jobs())
    with pytest.raises(InvalidRequest, match="strength") as err:
        project.requeue(first, registry=tint_registry, strength=2.0)
    assert err.value.field == "strength"
    with pytest.raises(InvalidRequest, match="guidance") as err:
        project.requeue(first, registry=tint_registry, guidance=3)
    with pytest.raises(InvalidRequest, match="Seed range .3-1. runs backwards"):
        project.requeue(first, registry=tint_registry, seeds="3-1")
    assert len(project.jobs()) == n, "a refused re-queue queues nothing"


def test_the_output_of_a_job_that_failed_is_refused_when_requeued(tint_registry, project: Project,
                                                                  picture: Path) -> None:
    source = paint(project, tint_registry, picture).job_ids[0]
    chained = queue_jobs(project, tint_registry, "tint.chain", inputs={"source": source}).job_ids[0]
    project.request_cancel(source)
    with pytest.raises(InvalidRequest, match="cancelled, so it has no output") as err:
        project.requeue(chained, registry=tint_registry)
    assert err.value.field == "source"


def test_vgen_jobs_requeue(tint_registry, project: Project, picture: Path, capsys: pytest.CaptureFixture) -> None:
    first = project.job(paint(project, tint_registry, picture).job_ids[0])
    path = str(project.path)

    assert vgen(["jobs", "requeue", path, first.id[:6], "--param", "strength=0.5", "--seeds", "3,4"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Queued 2 job(s) in batch")
    new = [project.job(j) for j in printed.split(":", 1)[1].split()]
    assert [(j.seed, j.params["strength"], j.prompt) for j in new] == [(3, 0.5, "a teal wave"), (4, 0.5, "a teal wave")]
    assert all(j.inputs == first.inputs for j in new)

    assert vgen(["jobs", "requeue", path, first.id, "--param", "strenght=0.5"]) != 0
    err = capsys.readouterr().err
    assert "strenght" in err


def test_open_or_create_and_the_names_a_script_imports(tmp_path: Path) -> None:
    import sdk
    from sdk import export, outputs

    assert export is outputs.export and "export" in sdk.__all__
    with sdk.Project.open_or_create(tmp_path / "Birds.vgen", template="demo") as p:
        assert len(p.prompts()) == 3
        p.add_prompt("a heron")
    with sdk.Project.open_or_create(tmp_path / "Birds.vgen", template="demo") as p:
        assert len(p.prompts()) == 4, "the second run opens the project; the template is not applied again"
    (tmp_path / "Notes").mkdir()
    (tmp_path / "Notes" / "todo.txt").write_text("x")
    with pytest.raises(InvalidRequest, match="not an empty folder"):
        sdk.Project.open_or_create(tmp_path / "Notes")
