"""Input images: VGen's fitting rule, any common format, and the OpenCLIP image embedding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.ml.image import center_crop_wide, clip_vision_from_openclip_state, open_image


def _striped(w: int, h: int) -> Image.Image:
    """Left third red, middle third green, right third blue."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 3, 0] = 255
    a[:, w // 3: 2 * w // 3, 1] = 255
    a[:, 2 * w // 3:, 2] = 255
    return Image.fromarray(a)


def test_fitting_scales_the_short_side_and_keeps_the_centre() -> None:
    out = center_crop_wide(_striped(300, 100), (64, 32))  # scaled to 96×32, then the centre 64 columns
    assert out.size == (64, 32)
    px = np.asarray(out).astype(int)
    assert (px[:, 16:48, 1] == 255).all() and (px[:, 16:48, [0, 2]] == 0).all(), "the middle stays in the middle"
    assert px[:, 0, 0] == pytest.approx(255, abs=1) and px[:, -1, 2] == pytest.approx(255, abs=1)
    assert center_crop_wide(_striped(100, 300), (32, 64)).size == (32, 64)  # portrait into a portrait frame
    tall = np.asarray(center_crop_wide(_striped(30, 300), (64, 32)))  # short side (width) scaled up to 64
    assert tall.shape == (32, 64, 3) and (tall[:, 30, 1] == 255).all()


@pytest.mark.parametrize("kind", ["jpeg", "webp", "rgba_png", "grey_png", "palette_gif", "grey16_png"])
def test_common_image_formats_open_as_rgb(kind: str, tmp_path: Path) -> None:
    img = _striped(90, 60)
    path = tmp_path / f"img.{kind.split('_')[-1]}"
    if kind == "rgba_png":
        rgba = img.convert("RGBA")
        rgba.putalpha(Image.new("L", img.size, 0))  # fully transparent: becomes white
        rgba.save(path)
    elif kind == "grey_png":
        img.convert("L").save(path)
    elif kind == "grey16_png":
        Image.fromarray((np.asarray(img.convert("L")).astype(np.uint16) * 257)).save(path)
    elif kind == "palette_gif":
        img.convert("P").save(path)
    else:
        img.save(path)
    out = open_image(path)
    assert out.mode == "RGB" and out.size == (90, 60)
    px = np.asarray(out).astype(int)
    if kind == "rgba_png":
        assert (px == 255).all()
    elif kind.startswith("grey"):
        assert (px[..., 0] == px[..., 1]).all() and px[:, 40, 0].mean() > 100  # green stripe is light grey
    else:
        assert px[30, 45, 1] > 200 and px[30, 45, 0] < 60


def test_unreadable_image_is_an_invalid_request(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(InvalidRequest) as info:
        open_image(bad)
    assert info.value.field == "image" and "PNG" in info.value.hint


def test_jpeg_input_generates(i2v_twins: dict[str, Path], sample_image: Path, tmp_path: Path) -> None:
    from plugins.i2vgen_xl.params import I2VParams
    from plugins.i2vgen_xl.pipeline import I2VGenerator
    from sdk.context import JobContext, JobRequest

    jpg = tmp_path / "sample.jpg"
    Image.open(sample_image).convert("CMYK").save(jpg)  # a CMYK JPEG, as print workflows write them
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s")
    p = I2VParams(prompt="a boat", num_frames=2, height=32, width=32, num_inference_steps=2)
    video = I2VGenerator().generate(ctx, JobRequest("j", "generate", "i2vgen_xl.i2v", p, seed=1,
                                                    inputs={"image": jpg}, weights=i2v_twins["vgen"]))
    assert video.frames.shape == (2, 32, 32, 3)


@pytest.mark.parametrize("head_width", [64, 80])
def test_openclip_vision_tower_equals_encode_image(head_width: int) -> None:
    import open_clip

    from sdk.ml.tiny import randomize_

    clip = open_clip.CLIP(embed_dim=48, vision_cfg=dict(layers=2, width=head_width * 2, head_width=head_width,
                                                        image_size=32, patch_size=8),
                          text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
    randomize_(clip, 0).eval()
    model = clip_vision_from_openclip_state(clip.state_dict(), head_width=head_width)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want, got = clip.encode_image(x), model(pixel_values=x).image_embeds
    assert got.shape == (2, 48)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
