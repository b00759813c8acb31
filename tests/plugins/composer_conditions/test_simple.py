"""The local-image and mask extractors on a real clip: VGen's sampling (stride from the source fps, resize without
crop, zero padding), VGen's mask families seeded, a user's mask, progress/previews/cancel, and a clear error for a
file that is no video."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from plugins import composer_conditions
from plugins.composer_conditions.frames import resize, stride_for
from plugins.composer_conditions.masks import irregular, random_mask, rectangles, uncrop
from sdk import events as ev
from sdk.errors import CancelRequested, InvalidRequest
from sdk.plugins import PluginRegistry
from tests.plugins.composer_conditions.helpers import clip_frames, extract, make_clip

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    reg = PluginRegistry([("composer_conditions", composer_conditions)])
    assert reg.plugins["composer_conditions"].error is None
    return reg


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")  # 24 frames at 24 fps, 64×48


def test_the_plugin_is_registered_through_the_entry_point_group(registry: PluginRegistry) -> None:
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["entry-points"]["vgen_studio"]["composer_conditions"] == "plugins.composer_conditions"
    local, mask = registry.extractor("composer_conditions.local_image"), registry.extractor("composer_conditions.mask")
    assert (local.condition, mask.condition) == ("local_image", "mask")
    assert [(f.name, f.kind, f.required) for f in mask.fields] == [("video", "video", True),
                                                                    ("mask_image", "image", False)]
    assert local.fields[0].accept_motions and local.fields[0].accept_outputs
    # VGen's defaults: 16 frames sampled at 3 fps, 448×256
    p = local.params()
    assert (p.num_frames, p.sample_fps, p.width, p.height, p.start_frame) == (16, 3, 448, 256, 0)
    assert any(dep.startswith("av>=") for dep in project["dependencies"])  # PyAV: motion vectors
    # listing the plugin imports no torch, PyAV or OpenCV (they load in the worker, when a job runs)
    code = ("import sys, plugins.composer_conditions as c; c.vgen_condition_extractors(); c.vgen_weights(); "
            "print(sorted(m for m in ('torch', 'av', 'cv2', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_local_image_is_the_first_frame_sampled_as_vgen_does(registry, clip: Path, tmp_path: Path) -> None:
    spec = registry.extractor("composer_conditions.local_image")
    video, run = extract(spec, clip, tmp_path, {"num_frames": 5, "sample_fps": 6, "width": 32, "height": 24})
    assert video.frames.shape == (5, 24, 32, 3) and video.fps == 6
    # every frame is the source's first frame, resized by PIL bilinear without a crop (VGen's data.Resize)
    src = clip_frames()
    want = resize(src[0], 32, 24)
    assert all(np.abs(f.astype(int) - want).mean() < 4 for f in video.frames)  # H.264 round trip
    assert all(np.array_equal(f, video.frames[0]) for f in video.frames)
    # progress per frame, previews, and the sampling in the job log (stride round(24 / 6) = 4)
    assert [e.step for e in run.of(ev.ProgressUpdated)] == [1, 2, 3, 4, 5]
    assert run.of(ev.PreviewReady)[-1].frames.shape == (5, 24, 32, 3)
    assert any("stride 4 (sample_fps 6)" in m for m in run.logs)


def test_sampling_strides_from_the_source_fps_and_pads_with_empty_frames(registry, clip: Path,
                                                                        tmp_path: Path) -> None:
    assert (stride_for(24, 3), stride_for(30, 3), stride_for(25, 3), stride_for(2, 3)) == (8, 10, 8, 1)
    spec = registry.extractor("composer_conditions.local_image")
    # 24 frames, stride 8 from frame 16: frames 16 only… then nothing: the rest padded, and the log says so
    video, run = extract(spec, clip, tmp_path, {"num_frames": 4, "start_frame": 16, "width": 64, "height": 48})
    src = clip_frames()
    assert np.abs(video.frames[0].astype(int) - src[16]).mean() < 4  # the square moved 32 px: frame 16
    assert any("1 frame(s) with stride 8: 3 empty frame(s) added" in m for m in run.logs)
    with pytest.raises(InvalidRequest, match="start_frame 30 is past the end"):
        extract(spec, clip, tmp_path, {"start_frame": 30})


def test_vgen_mask_families_are_seeded_and_shaped_as_vgen_draws_them() -> None:
    rng = np.random.RandomState
    # the same seed, the same mask; another seed, another
    assert np.array_equal(irregular(rng(3)), irregular(rng(3))) and not np.array_equal(irregular(rng(3)),
                                                                                      irregular(rng(4)))
    for seed in range(6):
        box = rectangles(rng(seed))
        n, labels = cv2.connectedComponents(box.astype(np.uint8))
        assert 1 <= n - 1 <= 4 and box.shape == (512, 512)  # 1-4 boxes …
        assert not box[:10].any() and not box[-10:].any() and not box[:, :10].any() and not box[:, -10:].any()
        half = uncrop(rng(seed))
        assert half.mean() == 0.5 and (half[:256].all() or half[256:].all() or half[:, :256].all()
                                       or half[:, 256:].all())  # … exactly one half
        stroke = irregular(rng(seed))
        assert 0 < stroke.mean() < 1 and set(np.unique(stroke)) == {0.0, 1.0}
    # resized to the video without interpolation (nearest), binary; "random" picks a family and says which
    m, family = random_mask("random", 7, 48, 32)
    assert m.shape == (32, 48) and set(np.unique(m)) <= {0.0, 1.0} and family in ("irregular", "rectangles", "uncrop")
    picked = {random_mask("random", s, 8, 8)[1] for s in range(40)}
    assert picked == {"irregular", "rectangles", "uncrop"}
    np.testing.assert_array_equal(random_mask("uncrop", 5, 64, 48)[0],
                                  cv2.resize(uncrop(rng(5)), (64, 48), interpolation=cv2.INTER_NEAREST))


def test_mask_extractor_repeats_one_mask_and_takes_a_users_drawing(registry, clip: Path, tmp_path: Path) -> None:
    spec = registry.extractor("composer_conditions.mask")
    video, run = extract(spec, clip, tmp_path, {"num_frames": 3, "width": 64, "height": 48, "family": "uncrop",
                                                "seed": 2})
    want, _ = random_mask("uncrop", 2, 64, 48)
    assert video.frames.shape == (3, 48, 64, 3)
    for f in video.frames:
        np.testing.assert_array_equal(f[..., 0], (want * 255).astype(np.uint8))
    assert any("uncrop family, seed 2: 50.0% of the frame" in m for m in run.logs)
    # a user's drawing: white where generated (alpha-transparent counts as kept), resized to the frames
    drawing = np.zeros((96, 128, 4), np.uint8)
    drawing[..., 3] = 255
    drawing[:48, :, :3] = 255
    drawing[:48, :64, 3] = 0  # transparent: kept
    path = tmp_path / "mask.png"
    Image.fromarray(drawing, "RGBA").save(path)
    video, run = extract(spec, clip, tmp_path, {"num_frames": 2, "width": 64, "height": 48}, mask_image=path)
    got = video.frames[0, ..., 0]
    assert got[:24, 32:].min() == 255 and got[:24, :32].max() == 0 and got[24:].max() == 0
    black = tmp_path / "black.png"
    Image.new("L", (8, 8)).save(black)
    with pytest.raises(InvalidRequest, match="black everywhere, so it masks nothing"):
        extract(spec, clip, tmp_path, {"num_frames": 2}, mask_image=black)


def test_cancel_stops_between_frames(registry, clip: Path, tmp_path: Path) -> None:
    spec = registry.extractor("composer_conditions.local_image")
    with pytest.raises(CancelRequested):
        extract(spec, clip, tmp_path, {"num_frames": 8, "width": 32, "height": 24}, cancel_after=3)


@pytest.mark.parametrize("content", [b"", b"this is not a video at all" * 40, "truncated"])
def test_a_file_that_is_no_video_is_refused_with_a_clear_error(registry, clip: Path, tmp_path: Path,
                                                               content: bytes | str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(clip.read_bytes()[:600] if content == "truncated" else content)
    for extractor in ("composer_conditions.local_image", "composer_conditions.mask"):
        with pytest.raises(InvalidRequest, match=r"Input 'video': (cannot decode bad.mp4|bad.mp4 has no video)") as e:
            extract(registry.extractor(extractor), bad, tmp_path)
        assert e.value.field == "video" and "ffmpeg" in e.value.hint or "truncated" in e.value.hint
