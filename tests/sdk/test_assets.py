"""Importing images, masks and videos: validated, content-addressed, refused cleanly."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.project import Project
from sdk.store import assets as assets_mod


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Assets.vgen")
    yield p
    p.close()


def make_png(path: Path, size: tuple[int, int] = (64, 48), seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    data = rng.integers(0, 255, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(data[..., 0] if channels == 1 else data, mode).save(path)
    return path


def make_mp4(path: Path, frames: int = 6, size: tuple[int, int] = (32, 24)) -> Path:
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=8, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1)
    writer.send(None)
    rng = np.random.default_rng(1)
    for _ in range(frames):
        writer.send(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8).tobytes())
    writer.close()
    return path


def state(project: Project) -> tuple[Any, ...]:
    """Everything a refused import must leave unchanged: db counts and every file under the project."""
    files = sorted(str(p.relative_to(project.path)) for p in project.path.rglob("*")
                   if p.is_file() and not p.name.startswith("project.db"))
    return project.info(), files


def test_image_import_records_size_and_dedupes_by_content(project: Project, tmp_path: Path) -> None:
    src = make_png(tmp_path / "face.png", (40, 32))
    copy = tmp_path / "other-name.png"
    copy.write_bytes(src.read_bytes())

    first = project.import_asset(src, "image")
    again = project.import_asset(copy, "image")

    assert (first.width, first.height, first.kind, first.original_name) == (40, 32, "image", "face.png")
    assert again == first
    assert first.path.read_bytes() == src.read_bytes()
    assert first.path.parent.name == first.hash[:2] and first.path.suffix == ".png"
    assert project.info()["assets"] == 1
    assert project.asset(first.hash[:8]) == first
    assert not [p for p in (project.path / ".staging").iterdir()]  # no temp copies left


def test_video_import_counts_frames(project: Project, tmp_path: Path) -> None:
    rec = project.import_asset(make_mp4(tmp_path / "walk.mp4", frames=7), "video")
    assert (rec.kind, rec.num_frames, rec.fps, rec.width, rec.height) == ("video", 7, 8.0, 32, 24)
    assert rec.path.suffix == ".mp4" and rec.path.is_file()


def test_unknown_asset_prefix_is_refused(project: Project) -> None:
    with pytest.raises(InvalidRequest) as err:
        project.asset("abcdef")
    assert err.value.field == "asset"


def _text_as_png(d: Path) -> Path:
    p = d / "notes.png"
    p.write_text("these are my notes, not a picture\n" * 20)
    return p


def _truncated_png(d: Path) -> Path:
    good = make_png(d / "full.png", (128, 128))
    p = d / "cut.png"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return p


def _truncated_jpeg(d: Path) -> Path:
    good = d / "full.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(good)
    p = d / "cut.jpg"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return p


def _truncated_mp4(d: Path) -> Path:
    good = make_mp4(d / "full.mp4", frames=10)
    p = d / "cut.mp4"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return p


def _mp4_missing_tail(d: Path) -> Path:
    good = make_mp4(d / "full.mp4", frames=10)
    p = d / "tail.mp4"
    p.write_bytes(good.read_bytes()[:-200])
    return p


def _garbage_mp4(d: Path) -> Path:
    p = d / "noise.mp4"
    p.write_bytes(np.random.default_rng(3).integers(0, 255, 4096, dtype=np.uint8).tobytes())
    return p


def _empty(d: Path) -> Path:
    p = d / "empty.png"
    p.write_bytes(b"")
    return p


def _missing(d: Path) -> Path:
    return d / "does-not-exist.png"


def _huge_image(d: Path) -> Path:
    p = d / "panorama.png"
    Image.new("1", (8193, 2)).save(p)
    return p


def _video_as_image(d: Path) -> Path:
    return make_mp4(d / "clip.mp4")


def _image_as_video(d: Path) -> Path:
    return make_png(d / "still.png")


def _one_pixel(d: Path) -> Path:
    return make_png(d / "dot.png", (1, 1))


def _thin_image(d: Path) -> Path:
    return make_png(d / "strip.png", (512, 31))


def _one_frame_video(d: Path) -> Path:
    return make_mp4(d / "one.mp4", frames=1)


@pytest.mark.parametrize(("make", "kind", "problem"), [
    (_text_as_png, "image", "not an image"),
    (_truncated_png, "image", "truncated"),
    (_truncated_jpeg, "image", "truncated"),
    (_truncated_png, "mask", "truncated"),
    (_truncated_mp4, "video", "damaged"),
    (_mp4_missing_tail, "video", "damaged"),
    (_garbage_mp4, "video", "damaged"),
    (_empty, "image", "empty"),
    (_missing, "video", "does not exist"),
    (_huge_image, "image", "8192"),
    (_video_as_image, "image", "is a video"),
    (_image_as_video, "video", "not a video"),
    (_one_pixel, "image", "1x1 px; images need at least 32x32 px"),
    (_one_pixel, "mask", "1x1 px"),
    (_thin_image, "image", "512x31 px"),
    (_one_frame_video, "video", "only 1 frame; a motion needs at least 2"),
])
def test_bad_file_is_refused_naming_it_and_nothing_changes(project: Project, tmp_path: Path, make: Any,
                                                           kind: str, problem: str) -> None:
    project.import_asset(make_png(tmp_path / "ok.png"), "image")  # something already there
    src = make(tmp_path)
    before = state(project)

    with pytest.raises(InvalidRequest) as err:
        project.import_asset(src, kind)

    assert str(src) in err.value.user_message
    assert problem in err.value.user_message
    assert err.value.field == kind
    assert err.value.hint.startswith("Accepted")
    assert state(project) == before


def test_file_over_the_size_limit_is_refused(project: Project, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_png(tmp_path / "big.png")
    monkeypatch.setattr(assets_mod, "MAX_FILE_BYTES", src.stat().st_size - 1)
    with pytest.raises(InvalidRequest, match="too big"):
        project.import_asset(src, "image")
    assert project.info()["assets"] == 0


def test_video_over_the_frame_limit_is_refused(project: Project, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets_mod, "MAX_FRAMES", 5)
    with pytest.raises(InvalidRequest, match="more than 5 frames"):
        project.import_asset(make_mp4(tmp_path / "long.mp4", frames=8), "video")
    assert project.info()["assets"] == 0


def test_subject_with_one_bad_image_stores_nothing(project: Project, tmp_path: Path) -> None:
    good = [make_png(tmp_path / f"dog{i}.png", seed=i) for i in range(2)]
    before = state(project)
    with pytest.raises(InvalidRequest) as err:
        project.add_subject("Rex", [*good, _truncated_png(tmp_path)])
    assert "cut.png" in err.value.user_message
    assert state(project) == before
    assert project.subjects() == []


def test_mask_of_the_wrong_size_is_refused_naming_the_pair(project: Project, tmp_path: Path) -> None:
    img = make_png(tmp_path / "dog.png", (64, 48))
    mask = make_png(tmp_path / "dog-mask.png", (32, 32), mode="L")
    before = state(project)
    with pytest.raises(InvalidRequest) as err:
        project.add_subject("Rex", [img], masks=[mask])
    assert "dog-mask.png" in err.value.user_message and "dog.png" in err.value.user_message
    assert err.value.field == "masks"
    assert state(project) == before


def test_motion_with_a_corrupt_video_stores_nothing(project: Project, tmp_path: Path) -> None:
    good = make_mp4(tmp_path / "good.mp4")
    before = state(project)
    with pytest.raises(InvalidRequest, match="noise.mp4"):
        project.add_motion("jump", [good, _garbage_mp4(tmp_path)])
    assert state(project) == before


def test_tiny_subject_images_and_one_frame_motions_store_nothing(project: Project, tmp_path: Path) -> None:
    before = state(project)
    with pytest.raises(InvalidRequest, match="dot.png.*1x1 px") as err:
        project.add_subject("Rex", [make_png(tmp_path / "dog.png"), _one_pixel(tmp_path)])
    assert "at least 32×32 px" in err.value.hint
    with pytest.raises(InvalidRequest, match="one.mp4.*only 1 frame") as err:
        project.add_motion("jump", [make_mp4(tmp_path / "ok.mp4"), _one_frame_video(tmp_path)])
    assert "at least 2 frames" in err.value.hint
    assert state(project) == before
    assert project.import_asset(make_mp4(tmp_path / "two.mp4", frames=2), "video").num_frames == 2
    assert project.import_asset(make_png(tmp_path / "min.png", (32, 32)), "image").width == 32


def test_refused_import_leaves_no_temp_file(project: Project, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        project.import_asset(_truncated_mp4(tmp_path), "video")
    assert os.listdir(project.path / ".staging") == []
