"""sdk.outputs: self-describing outputs (real ffmpeg, real files)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.outputs import build_meta, export, read_frames, read_meta_from_mp4, write_mp4, write_output
from sdk.video import Video

PROMPT = "café — 東京 \"quoted\" a=b; #tag \\ back\nslash"


def make_video(n: int = 16, w: int = 64, h: int = 48, fps: int = 8) -> Video:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 2 % 256], -1)
    frames = np.repeat(base[None].astype(np.uint8), n, axis=0)
    for i in range(n):  # a moving bright square so consecutive frames differ
        frames[i, (i * 2) % h : (i * 2) % h + 6, (i * 3) % w : (i * 3) % w + 6] = (255, 40 * (i % 6), 0)
    return Video(frames=frames, fps=fps)


def make_meta(prompt: str = PROMPT, **extra) -> dict:
    return build_meta(
        job_id="job-1", kind="generate", spec_id="modelscope_t2v.t2v", spec_version="0.1.0",
        params={"num_frames": 16, "width": 64, "height": 48, "fps": 8, "guidance_scale": 9.0},
        seed=1234, prompt=prompt, inputs={"image": "ab" * 32}, weights="modelscope_t2v.base",
        weights_hashes={"unet/model.safetensors": "cd" * 32}, timings={"load": 1.5, "generate": 3.25},
        extra=extra or None,
    )


def probe(path: Path) -> dict:
    reader = imageio_ffmpeg.read_frames(str(path))
    info = next(reader)
    n = sum(1 for _ in reader)
    return {**info, "n": n}


def ffmpeg_errors(path: Path) -> str:
    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(path),
                           "-f", "null", "-"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Video, dict, dict]:
    out = tmp_path_factory.mktemp("out") / "job-1"
    video, meta = make_video(), make_meta()
    paths = write_output(out, video, meta)
    return out, video, meta, paths


def test_write_output_layout(written):
    out, video, meta, paths = written
    assert set(paths) == {"frames", "thumb", "video", "meta"}
    assert sorted(p.name for p in out.iterdir()) == ["frames", "meta.json", "thumb.png", "video.mp4"]
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"{i:06d}.png" for i in range(16)]
    assert json.loads((out / "meta.json").read_text(encoding="utf-8")) == meta
    with Image.open(out / "thumb.png") as im:
        assert max(im.size) <= 256 and im.size == (64, 48)


def test_mp4_is_h264_yuv420p_and_decodes_cleanly(written):
    out, video, _, _ = written
    info = probe(out / "video.mp4")
    assert info["codec"] == "h264"
    assert info["pix_fmt"].startswith("yuv420p")
    assert tuple(info["size"]) == (64, 48)
    assert info["fps"] == pytest.approx(8.0)
    assert info["n"] == 16
    assert ffmpeg_errors(out / "video.mp4") == ""


def test_meta_round_trips_through_mp4_comment(written):
    out, _, meta, _ = written
    got = read_meta_from_mp4(out / "video.mp4")
    assert got == meta
    assert got["prompt"] == PROMPT
    assert got["schema"] == "vgen-studio.output/1"


def test_png_frames_are_exact(written):
    out, video, _, _ = written
    assert np.array_equal(read_frames(out), video.frames)


def test_read_frames_falls_back_to_mp4(tmp_path, written):
    out, video, _, _ = written
    only_mp4 = tmp_path / "o"
    only_mp4.mkdir()
    (only_mp4 / "video.mp4").write_bytes((out / "video.mp4").read_bytes())
    frames = read_frames(only_mp4)
    assert frames.shape == video.frames.shape and frames.dtype == np.uint8
    assert np.abs(frames.astype(int) - video.frames.astype(int)).mean() < 5  # lossy but close


@pytest.mark.parametrize("fmt", ["mp4", "gif", "webp", "png"])
def test_export_formats(tmp_path, written, fmt):
    out, video, _, _ = written
    dest = tmp_path / ("frames_png" if fmt == "png" else f"clip.{fmt}")
    assert export(out, dest, fmt) == dest
    if fmt == "mp4":
        assert dest.read_bytes() == (out / "video.mp4").read_bytes()
        assert probe(dest)["n"] == 16
    elif fmt == "png":
        names = sorted(p.name for p in dest.iterdir())
        assert names == [f"{i:06d}.png" for i in range(16)]
        got = np.stack([np.asarray(Image.open(dest / n).convert("RGB")) for n in names])
        assert np.array_equal(got, video.frames)
    else:
        with Image.open(dest) as im:
            assert im.format == fmt.upper()
            assert im.n_frames == 16
            assert im.size == (64, 48)
            assert im.info.get("loop") == 0
            im.seek(1)
            im.load()
            assert abs(im.info["duration"] - 125) <= 5  # GIF stores centiseconds


def test_export_refuses_overwrite_and_unknown_format(tmp_path, written):
    out = written[0]
    dest = tmp_path / "a.gif"
    export(out, dest, "gif")
    with pytest.raises(InvalidRequest) as err:
        export(out, dest, "gif")
    assert err.value.field == "dest"
    export(out, dest, "GIF", overwrite=True)
    png_dir = tmp_path / "png"
    export(out, png_dir, "png")
    with pytest.raises(InvalidRequest):
        export(out, png_dir, "png")
    export(out, png_dir, "png", overwrite=True)
    with pytest.raises(InvalidRequest) as err:
        export(out, tmp_path / "a.avi", "avi")
    assert err.value.field == "format"
    for choice in ("mp4", "gif", "webp", "png"):
        assert choice in err.value.hint


def test_odd_size_makes_valid_yuv420p(tmp_path):
    video = make_video(n=5, w=33, h=17)
    meta = make_meta()
    meta["params"].update(width=33, height=17)
    out = tmp_path / "odd"
    write_output(out, video, meta)
    info = probe(out / "video.mp4")
    assert info["codec"] == "h264" and info["pix_fmt"].startswith("yuv420p")
    assert tuple(info["size"]) == (34, 18) and info["n"] == 5
    assert ffmpeg_errors(out / "video.mp4") == ""
    assert np.array_equal(read_frames(out), video.frames)  # frames/ keeps the exact size
    shutil.rmtree(out / "frames")
    assert read_frames(out).shape == (5, 17, 33, 3)  # mp4 fallback crops the padding


def test_long_recipe_round_trips(tmp_path):
    video = make_video(n=3)
    for n in (20_000, 150_000):  # the second is too big for one command-line argument
        meta = make_meta(notes=["東京 " + "x" * 50] * (n // 50))
        mp4 = write_mp4(tmp_path / f"long{n}.mp4", video, meta)
        assert read_meta_from_mp4(mp4) == meta
        assert probe(mp4)["n"] == 3


def test_read_meta_refuses_foreign_video(tmp_path):
    mp4 = write_mp4(tmp_path / "plain.mp4", make_video(n=2))
    with pytest.raises(InvalidRequest) as err:
        read_meta_from_mp4(mp4)
    assert "recipe" in err.value.user_message
    with pytest.raises(InvalidRequest):
        read_meta_from_mp4(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(InvalidRequest):
        read_meta_from_mp4(junk)


def test_build_meta_keys_and_json_check():
    meta = make_meta()
    assert list(meta) == ["schema", "app_version", "created_at", "job_id", "kind", "spec_id", "spec_version",
                          "params", "seed", "prompt", "inputs", "weights", "weights_hashes", "timings", "options",
                          "extra"]
    assert meta["extra"] == {} and meta["seed"] == 1234
    with pytest.raises(InvalidRequest) as err:
        build_meta(job_id="j", kind="generate", spec_id="a.b", spec_version="1", params={"x": object()}, seed=0,
                   prompt=None, inputs={}, weights=None, weights_hashes={}, timings={})
    assert err.value.field == "params"


# -- starring, and deleting with an undo (sdk.store.trash) ---------------------------------------------------------
def render_output(project, seed: int = 1, depends_on: tuple[str, ...] = ()) -> str:
    """One job through the real publish path: queued, claimed, written to its staging folder, finished."""
    from sdk.records import NewJob

    job_id = project.add_jobs([NewJob(kind="generate", spec_id="modelscope_t2v.t2v", params={"num_frames": 4},
                                      seed=seed, prompt=f"a fox {seed}")]).job_ids[0]
    claimed = project.claim_next_job()
    assert claimed is not None and claimed.id == job_id
    write_output(project.staging_dir(job_id), make_video(n=4, w=16, h=16), make_meta(prompt=f"a fox {seed}"))
    project.finish_job(job_id, project.staging_dir(job_id))
    return job_id


@pytest.fixture
def project(tmp_path):
    from sdk.project import Project

    p = Project.create(tmp_path / "Gallery.vgen")
    yield p
    p.close()


def test_a_star_is_kept_with_the_project(project):
    from sdk.project import Project

    a, b = render_output(project, 1), render_output(project, 2)
    assert project.star_outputs([b]) == 1 and project.star_outputs([b]) == 0  # starring twice changes nothing
    project.close()
    with Project.open(project.path) as again:
        assert {o.job_id: o.starred for o in again.outputs()} == {a: False, b: True}
        assert again.star_outputs(b, starred=False) == 1 and not again.output(b).starred
        with pytest.raises(InvalidRequest, match="no output"):
            again.star_outputs(["0" * 12])


def test_a_deleted_output_leaves_the_gallery_and_an_undo_brings_it_back_whole(project):
    from sdk.records import JobStatus

    keep, gone = render_output(project, 1), render_output(project, 2)
    project.star_outputs(gone)
    frames_before = read_frames(project.output(gone).dir)
    assert project.delete_outputs([gone]) == [gone]

    assert [o.job_id for o in project.outputs()] == [keep]
    with pytest.raises(InvalidRequest, match="was deleted"):
        project.output(gone)
    assert not (project.path / "outputs" / gone).exists() and (project.path / ".trash" / gone / "video.mp4").is_file()
    assert project.job(gone).status is JobStatus.SUCCEEDED  # the job stays in the queue's history
    with pytest.raises(InvalidRequest, match="no output"):
        project.delete_outputs([gone])  # already deleted

    assert project.restore_outputs([gone]) == [gone]
    back = project.output(gone)
    assert back.starred and back.video_path.is_file() and np.array_equal(read_frames(back.dir), frames_before)
    assert [o.job_id for o in project.outputs()] == [keep, gone]
    assert not (project.path / ".trash" / gone).exists()
    with pytest.raises(InvalidRequest, match="not in the trash"):
        project.restore_outputs([gone])


def test_purge_makes_a_delete_final_and_keeps_recent_ones_for_their_undo(project):
    first, second = render_output(project, 1), render_output(project, 2)
    project.delete_outputs([first])
    project.delete_outputs([second])
    assert project.purge_trash(older_than=3600) == 0, "both deletes are still undoable"
    assert project.purge_trash([first]) == 1
    assert not (project.path / ".trash" / first).exists()
    with pytest.raises(InvalidRequest, match="not in the trash"):
        project.restore_outputs([first])
    assert project.job(first).id == first  # the job is still listed
    (project.path / ".trash" / "leftover").mkdir()  # something a crash left: tidied by a full purge
    assert project.purge_trash() == 1
    assert sorted(p.name for p in (project.path / ".trash").iterdir()) == []
    assert project.outputs() == [] and project.info()["outputs"] == 0


def test_an_output_a_queued_job_takes_cannot_be_deleted(project):
    from sdk.records import NewJob

    source = render_output(project, 1)
    taker = project.add_jobs([NewJob(kind="generate", spec_id="tint.chain", params={}, seed=0,
                                     inputs={"source": {"output": source}}, depends_on=(source,))]).job_ids[0]
    with pytest.raises(InvalidRequest, match=f"{taker} \\(takes the output of {source}\\)") as err:
        project.delete_outputs([source])
    assert "Cancel those jobs first" in err.value.hint
    assert project.output(source).video_path.is_file()  # nothing changed
    project.request_cancel(taker)
    assert project.delete_outputs([source]) == [source]


def test_a_trash_folder_that_is_a_link_is_refused(project, tmp_path):
    from sdk.errors import UnsafeProject
    from sdk.project import Project

    job = render_output(project, 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project.path / ".trash").symlink_to(elsewhere)
    with pytest.raises(UnsafeProject, match="symbolic link"):
        project.delete_outputs([job])
    assert [o.job_id for o in project.outputs()] == [job] and project.output(job).video_path.is_file()
    assert list(elsewhere.iterdir()) == []
    project.close()
    with pytest.raises(UnsafeProject, match=".trash"):
        Project.open(project.path)
