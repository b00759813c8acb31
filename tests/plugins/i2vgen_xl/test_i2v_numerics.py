"""I2VGen-XL: both tiny formats agree (the doubled image branch), the image conditions the video, and our loop
equals diffusers' I2VGenXLPipeline on the same components and seed."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from plugins.i2vgen_xl.params import I2VParams
from plugins.i2vgen_xl.pipeline import I2VGenerator, detect_weights, load_components
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import InvalidRequest, WeightsMissing

SMALL = dict(prompt="a boat drifting on a lake", negative_prompt="blurry", num_frames=3, height=32, width=48,
             num_inference_steps=4, guidance_scale=7.5, target_fps=16)
CACHE = ModelCache()  # shared: each twin loads once per module


def _generate(weights: Path, image: Path, tmp_path: Path, seed: int = 5, **over) -> np.ndarray:
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=CACHE)
    req = JobRequest("j", "generate", "i2vgen_xl.i2v", I2VParams(**{**SMALL, **over}), seed=seed,
                     inputs={"image": image}, weights=weights)
    return I2VGenerator().generate(ctx, req).frames


def test_both_formats_give_the_same_frames(i2v_twins: dict[str, Path], sample_image: Path, tmp_path: Path) -> None:
    """The VGen file holds half the image branch in conv_in (VGen adds it twice); the loader doubles it back."""
    a = _generate(i2v_twins["diffusers"], sample_image, tmp_path)
    b = _generate(i2v_twins["vgen"], sample_image, tmp_path)
    assert a.shape == (3, 32, 48, 3)
    assert np.array_equal(a, b)


def test_the_image_and_its_branch_condition_the_video(i2v_twins: dict[str, Path], sample_image: Path,
                                                      tmp_path: Path) -> None:
    from PIL import Image

    base = _generate(i2v_twins["vgen"], sample_image, tmp_path)
    other = tmp_path / "flipped.png"
    Image.open(sample_image).transpose(Image.FLIP_LEFT_RIGHT).save(other)
    assert not np.array_equal(base, _generate(i2v_twins["vgen"], other, tmp_path))
    # without the doubling the branch would be at half strength: the frames must differ from the fixed ones
    misses = CACHE.misses
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=CACHE)
    comps = load_components(ctx, detect_weights(i2v_twins["vgen"]), torch.device("cpu"), torch.float32)
    assert CACHE.misses == misses, "the components the job ran with"
    w = comps["unet"].conv_in.weight
    saved = w.detach().clone()
    try:
        with torch.no_grad():
            w[:, 4:8] *= 0.5
        assert not np.array_equal(base, _generate(i2v_twins["vgen"], sample_image, tmp_path))
    finally:
        with torch.no_grad():
            w.copy_(saved)


def test_options_run(i2v_twins: dict[str, Path], sample_image: Path, tmp_path: Path) -> None:
    base = _generate(i2v_twins["vgen"], sample_image, tmp_path)
    for over in ({"guidance_scale": 1.0}, {"target_fps": 8}, {"scheduler": "euler"}, {"num_frames": 1}):
        out = _generate(i2v_twins["vgen"], sample_image, tmp_path, **over)
        assert out.shape[1:] == base.shape[1:] and not np.array_equal(out[:1], base[:1]), over


def test_format_detection_and_errors(i2v_twins: dict[str, Path], sample_image: Path, tmp_path: Path) -> None:
    assert detect_weights(i2v_twins["diffusers"]).format == "diffusers"
    w = detect_weights(i2v_twins["vgen"])
    assert w.format == "vgen" and w.unet is not None and detect_weights(w.unet).format == "vgen"
    with pytest.raises(WeightsMissing, match="make-tiny"):
        detect_weights(None)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "i2vgen_xl_00854500.pth").write_bytes((i2v_twins["vgen"] / "i2vgen_xl_tiny.pth").read_bytes())
    with pytest.raises(WeightsMissing, match="open_clip_pytorch_model.bin"):
        detect_weights(partial)
    with pytest.raises(InvalidRequest) as info:
        _generate(i2v_twins["vgen"], tmp_path / "no-such.png", tmp_path)
    assert info.value.field == "image"


def test_matches_diffusers_i2vgen_xl_pipeline(i2v_twins: dict[str, Path], sample_image: Path, tmp_path: Path) -> None:
    """diffusers loads the same tiny folder itself; same seed, same DDIM config: frames equal within 1/255.

    Workarounds (feasibility §1): transformers 5 has no ``text_encoder.text_model`` (aliased for clip_skip=1), and
    the pipeline's VAE ``sample()`` takes no generator (the global RNG is seeded with the job seed, which is what our
    posterior generator uses). Its tokenizer pads with id 0 as open_clip does (pad token "!", id 0)."""
    from diffusers import I2VGenXLPipeline
    from transformers import CLIPTokenizer

    from sdk.ml.image import open_image
    from sdk.ml.schedulers import make_scheduler

    folder = i2v_twins["diffusers"]
    ours = _generate(folder, sample_image, tmp_path, seed=5)
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    pipe = I2VGenXLPipeline.from_pretrained(str(folder))
    vocab = json.loads((folder / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    merges = [tuple(ln.split()) for ln in (folder / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()
              if ln and not ln.startswith("#")]
    pipe.tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, pad_token="!", model_max_length=77)
    pipe.scheduler = make_scheduler("vgen_t2v")  # the folder's own config, as our loop uses it
    te = pipe.text_encoder
    if not hasattr(te, "text_model"):
        object.__setattr__(te, "text_model", te)
    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(5)
    ref = pipe(prompt=SMALL["prompt"], negative_prompt=SMALL["negative_prompt"], image=open_image(sample_image),
               height=SMALL["height"], width=SMALL["width"], num_frames=SMALL["num_frames"],
               num_inference_steps=SMALL["num_inference_steps"], guidance_scale=SMALL["guidance_scale"],
               target_fps=SMALL["target_fps"], generator=torch.Generator("cpu").manual_seed(5),
               output_type="np").frames[0]
    ref_u8 = (np.clip(ref, 0, 1) * 255).round().astype(np.int16)
    assert ref_u8.shape == ours.shape
    assert np.abs(ref_u8 - ours.astype(np.int16)).max() <= 1
