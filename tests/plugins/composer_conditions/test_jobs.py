"""The extractors run as jobs (real worker process, SQLite, ffmpeg): a motion's conditions become condition assets
linked to it and to the extractor's version; a source that turns out not to decode fails its job with a clear
message and leaves nothing behind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.outputs import read_frames
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService
from sdk.testing.install import install_plugin, pythonpath_with
from tests.plugins.composer_conditions.helpers import make_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # an editable install made before composer_conditions joined pyproject.toml lacks its entry point: add it the way
    # a reinstall would (the worker finds plugins through the entry-point group)
    return install_plugin(tmp_path_factory.mktemp("site"), "vgen-cc-entry", {},
                          {"composer_conditions": "plugins.composer_conditions"})


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(site))
    monkeypatch.syspath_prepend(str(site))
    yield load_plugins(refresh=True)
    load_plugins(refresh=True)


@pytest.fixture
def project(tmp_path: Path):
    p = Project.create(tmp_path / "Compose.vgen")
    yield p
    p.close()


def test_conditions_of_a_motion_become_assets_linked_to_it(registry, project: Project, tmp_path: Path) -> None:
    motion = project.add_motion("walk", [make_clip(tmp_path / "walk.mp4")])
    small = {"num_frames": [4], "width": [64], "height": [48]}
    local = queue_jobs(project, registry, "composer_conditions.local_image", inputs={"video": "walk"},
                       params=small).job_ids[0]
    mask = queue_jobs(project, registry, "composer_conditions.mask", inputs={"video": "walk"},
                      params={**small, "family": ["rectangles"], "seed": [5]}).job_ids[0]

    stats = RenderService(project, registry=registry).run(until_empty=True)

    assert stats["succeeded"] == 2, [(j.spec_id, j.error_message) for j in project.jobs()]
    by_kind = {c.kind: c for c in project.conditions(source="walk")}
    assert set(by_kind) == {"local_image", "mask"}
    for kind, job in (("local_image", local), ("mask", mask)):
        cond = by_kind[kind]
        assert (cond.extractor, cond.extractor_version, cond.job_id) == (f"composer_conditions.{kind}", "1.0.0", job)
        assert cond.source == {"motion": "walk", "video": motion.videos[0].hash}
        assert (cond.num_frames, cond.width, cond.height) == (4, 64, 48) and cond.path.is_file()
    frames = read_frames(project.output(mask).dir)
    assert frames.shape == (4, 48, 64, 3) and set(np.unique(frames)) <= {0, 255} and frames.any()
    assert all(np.array_equal(f, frames[0]) for f in frames)


def test_a_source_that_does_not_decode_fails_its_job_and_leaves_nothing(registry, project: Project,
                                                                        tmp_path: Path) -> None:
    project.add_motion("walk", [make_clip(tmp_path / "walk.mp4")])
    job = queue_jobs(project, registry, "composer_conditions.local_image", inputs={"video": "walk"},
                     params={"num_frames": [2], "width": [32], "height": [24]}).job_ids[0]
    # the asset was fine when queued; it is damaged before the job runs (a bad disk, a hand edit)
    asset = project.motion("walk").videos[0].path
    asset.chmod(0o644)
    asset.write_bytes(b"\x00not a video" * 64)

    RenderService(project, registry=registry).run(until_empty=True)

    failed = project.job(job)
    assert failed.status is JobStatus.FAILED
    assert "Input 'video': cannot decode" in failed.error_message or "has no video frames" in failed.error_message
    assert project.conditions() == [] and project.outputs() == []
    staging = project.path / ".staging"
    assert not staging.exists() or not any(staging.rglob("*.mp4"))


def test_depth_sketch_and_motion_of_a_motion_on_the_tiny_twins(registry, project: Project, tmp_path: Path) -> None:
    from sdk import weights as w

    for weights_id in ("composer_conditions.midas_v3_dpt_large", "composer_conditions.sketch"):
        w.make_tiny(registry.weights[weights_id], tmp_path / weights_id, register=True)
    project.add_motion("walk", [make_clip(tmp_path / "walk.mp4")])
    small = {"num_frames": [4], "width": [64], "height": [64]}
    jobs = {kind: queue_jobs(project, registry, f"composer_conditions.{kind}", inputs={"video": "walk"},
                             params=small).job_ids[0] for kind in ("depth", "sketch", "motion")}

    stats = RenderService(project, registry=registry).run(until_empty=True)

    assert stats["succeeded"] == 3, [(j.spec_id, j.error_message) for j in project.jobs()]
    conds = {c.kind: c for c in project.conditions(source="walk")}
    assert set(conds) == {"depth", "sketch", "motion"}
    for kind, job in jobs.items():
        assert conds[kind].job_id == job and (conds[kind].num_frames, conds[kind].width) == (4, 64)
        assert any("stride 8 (sample_fps 3)" in line["message"] for line in project.logs(job))
