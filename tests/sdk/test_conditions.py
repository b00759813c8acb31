"""Condition extraction runs as a job (real worker, SQLite, ffmpeg): its video becomes a condition asset linked to
its source (a motion, an output, a file), listed by `vgen conditions list`, and a stranger's generator with a
ConditionRef input takes it — by condition id, or by the extract job's id (then it waits for it)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sdk.cli import main as vgen
from sdk.errors import InvalidRequest, UnsafeProject
from sdk.outputs import read_frames
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService
from tests.sdk.conditions_helpers import cond_site, moving_square_video, project, registry  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def _near_square_outline(edges: np.ndarray, top: int, left: int, side: int, tol: int = 2) -> bool:
    """Every edge pixel lies within ``tol`` px of the square's outline, and each side of it has edges."""
    ys, xs = np.nonzero(edges)
    if len(ys) == 0:
        return False
    bottom, right = top + side - 1, left + side - 1
    inside_band = ((ys >= top - tol) & (ys <= bottom + tol) & (xs >= left - tol) & (xs <= right + tol))
    far_inside = ((ys > top + tol) & (ys < bottom - tol) & (xs > left + tol) & (xs < right - tol))
    sides = [np.any(np.abs(ys - top) <= tol), np.any(np.abs(ys - bottom) <= tol),
             np.any(np.abs(xs - left) <= tol), np.any(np.abs(xs - right) <= tol)]
    return bool(inside_band.all() and not far_inside.any() and all(sides))


def test_canny_from_a_motion_becomes_a_condition_a_generator_takes(registry, project: Project, tmp_path: Path,
                                                                   capsys) -> None:
    clip = moving_square_video(tmp_path / "square.mp4")
    motion = project.add_motion("square run", [clip])
    extract = queue_jobs(project, registry, "classic_cv.canny", inputs={"video": "square run"}).job_ids[0]
    assert project.job(extract).inputs["video"] == {"motion": motion.id, "video": motion.videos[0].hash}
    # queued before the condition exists: it names the extract job, and waits for it
    follow = queue_jobs(project, registry, "condtest.follow", inputs={"edges": extract},
                        params={"num_frames": [6], "height": [48], "width": [48]}).job_ids[0]
    assert project.job(follow).depends_on == (extract,) and project.waiting_for(project.job(follow)) == [extract]

    stats = RenderService(project, registry=registry).run(until_empty=True)

    assert stats["succeeded"] == 2, [(j.spec_id, j.error_message) for j in project.jobs()]
    [cond] = project.conditions()
    assert (cond.kind, cond.extractor, cond.extractor_version, cond.job_id) == ("canny", "classic_cv.canny", "1.0.0",
                                                                                extract)
    assert cond.source == {"motion": "square run", "video": motion.videos[0].hash}
    assert cond.params["low_threshold"] == 100 and cond.params["high_threshold"] == 200
    assert cond.path.is_file() and cond.path.parent.parent.name == "assets" and cond.num_frames == 6
    assert project.asset(cond.asset_hash).kind == "video"
    assert project.condition(cond.id[:6]) == cond and project.condition_of_job(extract) == cond
    assert project.conditions(source="square run") == [cond] and project.conditions(source={"output": "x"}) == []
    # the extract job's output previews it; its lossless frames are the square's outline, frame by frame
    edges = read_frames(project.output(extract).dir)
    assert edges.shape == (6, 48, 48, 3) and set(np.unique(edges)) <= {0, 255}
    for t in range(6):
        assert _near_square_outline(edges[t, ..., 0], 16, 8 + 2 * t, 16), t
    # the generator got that condition: its frames are the condition's
    assert np.array_equal(read_frames(project.output(follow).dir), edges)
    assert any(f"condition {cond.id} canny from {{'motion': 'square run'" in line["message"]
               for line in project.logs(follow))
    meta = json.loads(project.output(follow).meta_path.read_text())
    assert meta["inputs"]["edges"]["condition"] == cond.id and meta["inputs"]["edges"]["sha256"] == cond.asset_hash

    # the condition by id (or prefix) is an input too, with nothing to wait for
    again = queue_jobs(project, registry, "condtest.follow", inputs={"edges": cond.id[:8]}).job_ids[0]
    assert project.job(again).inputs["edges"] == cond.id and project.job(again).depends_on == ()

    assert vgen(["conditions", "list", str(project.path)]) == 0
    out = capsys.readouterr().out
    assert cond.id in out and "canny" in out and "motion square run" in out and "48x48" in out
    assert vgen(["jobs", "show", str(project.path), extract]) == 0
    assert f"condition: {cond.id} canny from motion square run" in capsys.readouterr().out


def test_the_cli_extracts_from_an_output_and_from_a_file(registry, project: Project, tmp_path: Path,
                                                         capsys) -> None:
    path = str(project.path)
    square = queue_jobs(project, registry, "condtest.square").job_ids[0]
    assert vgen(["conditions", "extract", path, "--extractor", "classic_cv.canny", "--output", square,
                 "--param", "low_threshold=50", "--param", "num_frames=6"]) == 0
    from_output = capsys.readouterr().out.split(": ")[1].split()[0]
    clip = moving_square_video(tmp_path / "clip.mp4")
    assert vgen(["conditions", "extract", path, "--extractor", "classic_cv.canny", "--video", str(clip),
                 "--param", "height=24", "--param", "width=24", "--param", "frame_stride=2"]) == 0
    assert project.job(from_output).depends_on == (square,)
    # a source given twice, or thresholds the wrong way round, is refused before anything is queued
    assert vgen(["conditions", "extract", path, "--extractor", "classic_cv.canny", "--output", square,
                 "--video", str(clip)]) == 2
    assert vgen(["conditions", "extract", path, "--extractor", "classic_cv.canny", "--output", square,
                 "--param", "low_threshold=300"]) == 2
    assert "low_threshold 300 is above high_threshold 200" in capsys.readouterr().err
    assert len(project.jobs()) == 3

    assert vgen(["queue", "run", path]) == 0
    assert "(condition " in capsys.readouterr().err  # queue run says which condition an extract job made

    by_source = {next(iter(c.source)): c for c in project.conditions()}
    assert by_source["output"].source == {"output": square} and by_source["output"].num_frames == 6
    # the square's 4 frames, padded to 6 with empty ones (VGen pads condition videos with zeros); the log says so
    edges = read_frames(project.output(from_output).dir)
    assert edges[:4].any(axis=(1, 2, 3)).all() and not edges[4:].any()
    assert any("2 empty frame(s) added" in line["message"] for line in project.logs(from_output))
    asset = by_source["asset"]
    assert asset.source == {"asset": project.job(asset.job_id).inputs["video"]}
    assert (asset.num_frames, asset.width, asset.height) == (3, 24, 24)  # every 2nd of 6 frames, resized
    assert vgen(["conditions", "list", path, "--source", square]) == 0
    out = capsys.readouterr().out
    assert f"output of {square}" in out and "asset " not in out


def test_conditions_of_the_wrong_kind_or_from_failed_jobs_are_refused_at_queue_time(registry,
                                                                                    project: Project) -> None:
    square = queue_jobs(project, registry, "condtest.square").job_ids[0]
    extract = queue_jobs(project, registry, "classic_cv.canny", inputs={"video": square}).job_ids[0]
    with pytest.raises(InvalidRequest, match="is canny, not depth") as err:
        queue_jobs(project, registry, "condtest.depthy", inputs={"depth": extract})
    assert err.value.field == "depth"
    with pytest.raises(InvalidRequest, match="needs an edges"):
        queue_jobs(project, registry, "condtest.follow")
    with pytest.raises(InvalidRequest, match="No condition with id 'abcdef'") as err:
        queue_jobs(project, registry, "condtest.follow", inputs={"edges": "abcdef"})
    assert "vgen conditions list" in err.value.hint
    project.request_cancel(extract)
    with pytest.raises(InvalidRequest, match=f"extract job {extract} cancelled, so it made no condition"):
        queue_jobs(project, registry, "condtest.follow", inputs={"edges": extract})
    with pytest.raises(InvalidRequest, match="is not a video file, a video asset id, a job id or a motion name of this project"):
        queue_jobs(project, registry, "classic_cv.canny", inputs={"video": "no such motion"})


def test_invalid_condition_rows_are_flagged_never_used(project: Project, tmp_path: Path) -> None:
    clip = moving_square_video(tmp_path / "c.mp4")
    sha = project.import_asset(clip, "video").hash
    with sqlite3.connect(project.db_path) as con:
        con.execute("INSERT INTO conditions VALUES ('../../etc', 'canny', ?, 'x.y', '1', '{}', '{}', NULL, 1.0)",
                    (sha,))
        con.execute("INSERT INTO conditions VALUES ('0123456789ab', 'canny', ?, 'x.y', '1', '[1]', '{}', NULL, 1.0)",
                    (sha,))
    bad_id, bad_source = sorted(project.conditions(), key=lambda c: c.id)
    assert "id is str '../../etc'" in bad_id.problem and not bad_id.path.exists()
    assert "source is a JSON list" in bad_source.problem
    with pytest.raises(UnsafeProject, match="its row in project.db is invalid"):
        project.condition("0123456789ab")
