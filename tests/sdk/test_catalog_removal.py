"""Removing subjects and motions (refused or cascaded while queued jobs need them), and imports that name every
bad file."""
from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from sdk.errors import InvalidFiles, InvalidRequest
from sdk.project import Project
from sdk.records import JobStatus, NewJob


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Remove.vgen")
    yield p
    p.close()


def png(path: Path, seed: int = 0) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    return path


def mp4(path: Path, frames: int = 4) -> Path:
    w = imageio_ffmpeg.write_frames(str(path), (16, 16), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    w.send(None)
    for i in range(frames):
        w.send(np.full((16, 16, 3), i * 40, np.uint8).tobytes())
    w.close()
    return path


def job(spec: str = "dreamvideo.compose", seed: int = 0, params: dict | None = None, **inputs: object) -> NewJob:
    return NewJob(kind="generate", spec_id=spec, params=params or {}, seed=seed, prompt="a <rex>", inputs=dict(inputs))


def adapter(project: Project, tmp_path: Path, kind: str, **target: int) -> object:
    src = tmp_path / f"trained-{kind}-{sorted(target.items())}"
    src.mkdir()
    (src / "weights.safetensors").write_bytes(b"w")
    return project.add_adapter(kind, kind, src, step=100, **target)


def statuses(project: Project) -> dict[str, str]:
    return {j.id: j.status.value for j in project.jobs()}


def test_removing_a_subject_that_queued_jobs_need_is_refused_naming_them(project: Project, tmp_path: Path) -> None:
    rex = project.add_subject("Rex", [png(tmp_path / "a.png")])
    other = project.add_subject("Max", [png(tmp_path / "b.png", seed=1)])
    identity = adapter(project, tmp_path, "dreamvideo.identity", subject_id=rex.id)
    batch = project.add_jobs([job(subject=rex.id), job(params={"identity_adapter": identity.id[:8]}, subject=other.id),
                              job(subject=other.id)])
    needs_rex = list(batch.job_ids[:2])
    assert [j.id for j in project.jobs_using(subject="Rex")] == needs_rex

    with pytest.raises(InvalidRequest) as err:
        project.remove_subject("Rex")
    assert "used by 2 queued job(s)" in err.value.user_message
    assert all(i in err.value.user_message for i in needs_rex) and err.value.field == "subject"
    assert "cascade" in err.value.hint
    assert [s.name for s in project.subjects()] == ["Rex", "Max"] and identity.path.is_dir()  # nothing changed


def test_cascade_cancels_the_jobs_and_removes_images_and_adapters(project: Project, tmp_path: Path) -> None:
    shared = png(tmp_path / "shared.png")
    rex = project.add_subject("Rex", [shared, png(tmp_path / "own.png", seed=2)])
    max_ = project.add_subject("Max", [shared])
    identity = adapter(project, tmp_path, "dreamvideo.identity", subject_id=rex.id)
    batch = project.add_jobs([job(subject=rex.id), job(subject=max_.id)])
    waits = project.add_jobs([NewJob(kind="generate", spec_id="x.upscale", params={}, seed=0, prompt=None,
                                     depends_on=(batch.job_ids[0],))])

    assert project.remove_subject("Rex", cascade=True) == [batch.job_ids[0]]
    jobs = statuses(project)
    assert jobs[batch.job_ids[0]] == "CANCELLED" and jobs[waits.job_ids[0]] == "CANCELLED"  # and what waits for it
    assert jobs[batch.job_ids[1]] == "QUEUED"
    assert "Rex" in project.job(batch.job_ids[0]).error_message
    assert [s.name for s in project.subjects()] == ["Max"]
    assert project.adapters() == [] and not identity.path.exists()
    own, kept = rex.images[1].asset, rex.images[0].asset
    assert not own.path.exists() and kept.path.is_file()  # Max still uses the shared image
    assert project.integrity_check() == "ok"


def test_a_running_job_refuses_even_a_cascade(project: Project, tmp_path: Path) -> None:
    rex = project.add_subject("Rex", [png(tmp_path / "a.png")])
    batch = project.add_jobs([job(subject=rex.id)])
    assert project.claim_next_job().id == batch.job_ids[0]
    with pytest.raises(InvalidRequest, match="running job: " + batch.job_ids[0]):
        project.remove_subject("Rex", cascade=True)
    assert project.job(batch.job_ids[0]).status == JobStatus.RUNNING and project.subjects()


def test_remove_motion_checks_its_videos_and_adapters_too(project: Project, tmp_path: Path) -> None:
    squat = project.add_motion("squat", [mp4(tmp_path / "squat.mp4")])
    motion_adapter = adapter(project, tmp_path, "dreamvideo.motion", motion_id=squat.id)
    done = project.add_jobs([job(motion=squat.id)])
    project.request_cancel(done.job_ids[0])  # finished jobs never hold a removal back
    batch = project.add_jobs([job(params={"motion_adapter": motion_adapter.id}),
                              job(spec="classic_cv.flow", video={"motion": squat.id, "video": squat.videos[0].hash})])
    assert [j.id for j in project.jobs_using(motion=squat.id)] == list(batch.job_ids)
    with pytest.raises(InvalidRequest, match="motion 'squat' is used by 2 queued"):
        project.remove_motion("squat")
    assert project.remove_motion(squat.id, cascade=True) == list(batch.job_ids)
    assert project.motions() == [] and project.adapters() == []
    assert squat.videos[0].path.is_file()  # the cancelled flow job names the video's file: it stays for a retry
    with pytest.raises(InvalidRequest, match="Unknown motion"):
        project.remove_motion("squat")


def test_a_subject_with_some_bad_images_names_every_bad_one(project: Project, tmp_path: Path) -> None:
    good = [png(tmp_path / f"rex{i}.png", seed=i) for i in range(2)]
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    tiny = tmp_path / "dot.png"
    Image.new("RGB", (2, 2)).save(tiny)
    with pytest.raises(InvalidFiles) as err:
        project.add_subject("Rex", [good[0], text, good[1], tiny])
    assert set(err.value.problems) == {str(text), str(tiny)}
    assert "2 of the 4 files of subject 'Rex' cannot be used" in err.value.user_message
    assert "notes.png (it is not an image file" in err.value.user_message and "dot.png (it is 2x2 px" in err.value.user_message
    assert "the others are fine" in err.value.hint and err.value.field == "image"
    assert project.subjects() == [] and project.info()["assets"] == 0  # nothing stored
    assert len(project.add_subject("Rex", good).images) == 2  # the good ones go in on their own
