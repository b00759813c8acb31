"""The CogVideoX generators render what diffusers' own pipelines render: on the tiny twins, each generator's frames
(through ``generate`` with the worker's model cache) equal those of ``CogVideoX*Pipeline.from_pretrained(folder)``
itself, same seed, within 1/255 — t2v on 2B and on 5B (rotary positions, dynamic CFG), i2v on 5B-I2V, v2v on 2B —
and previews and progress arrive once per step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk import events as ev
from sdk.context import JobContext, JobRequest, ModelCache

H, W, F, STEPS = 32, 48, 9, 3


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sdk.ml.cogvideox import write_twin

    root = tmp_path_factory.mktemp("cogvideox-twins")
    return {v: write_twin(root / v, variant=v, seed=3) for v in ("2b", "5b", "5b-i2v")}


def _inputs(tmp_path: Path) -> tuple[np.ndarray, np.ndarray, Path, object]:
    """A first frame (PNG) and a source video as a project output (lossless PNG frames + mp4)."""
    from PIL import Image

    from sdk.inputs import VideoInput
    from sdk.outputs import write_output
    from sdk.video import Video

    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([xx * 5 % 256, yy * 7 % 256, (xx + yy) * 3 % 256], -1).astype(np.uint8)
    video = np.stack([np.roll(image, 2 * i, axis=1) for i in range(F)])
    Image.fromarray(image).save(tmp_path / "first.png")
    paths = write_output(tmp_path / "src", Video(video, fps=8), {"kind": "source"})
    source = VideoInput(path=paths["video"], num_frames=F, width=W, height=H, fps=8, frames_dir=paths["frames"])
    return image, video, tmp_path / "first.png", source


def _ours(tmp_path: Path, spec_id: str, weights: Path, params: dict, inputs: dict) -> tuple[np.ndarray, list]:
    from plugins.cogvideox.pipeline import CogVideoXGenerator

    events: list[ev.Event] = []
    ctx = JobContext("fid", events.append, staging_dir=tmp_path / "staging", models=ModelCache(), device="cpu")
    ctx.preview_interval_s = 0.0
    req = JobRequest(job_id="fid", kind="generate", spec_id=spec_id, params=params, seed=11, inputs=inputs,
                     weights=weights)
    out = CogVideoXGenerator().generate(ctx, req)
    ctx.finish()
    return out.frames, events


def _theirs(kind: str, weights: Path, **kwargs) -> np.ndarray:
    import diffusers
    import torch

    cls = {"t2v": diffusers.CogVideoXPipeline, "i2v": diffusers.CogVideoXImageToVideoPipeline,
           "v2v": diffusers.CogVideoXVideoToVideoPipeline}[kind]
    pipe = cls.from_pretrained(weights)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(prompt="a red kite over green hills", negative_prompt="blurry", height=H, width=W,
                  num_inference_steps=STEPS, guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(11),
                  output_type="np", **kwargs).frames[0]
    return (np.asarray(frames) * 255.0).round().clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("spec_id, variant", [("cogvideox.t2v", "2b"), ("cogvideox.t2v", "5b"),
                                              ("cogvideox.i2v", "5b-i2v"), ("cogvideox.v2v", "2b")])
def test_frames_equal_diffusers_own_pipeline(tmp_path: Path, twins: dict[str, Path], spec_id: str,
                                             variant: str) -> None:
    from PIL import Image

    image, video, png, source = _inputs(tmp_path)
    weights = twins[variant]
    dynamic = variant != "2b"
    params = {"prompt": "a red kite over green hills", "negative_prompt": "blurry", "num_frames": F, "height": H,
              "width": W, "num_inference_steps": STEPS, "guidance_scale": 6.0, "use_dynamic_cfg": dynamic}
    kind = spec_id.split(".")[1]
    inputs: dict = {}
    extra: dict = {"use_dynamic_cfg": dynamic}
    if kind == "i2v":
        inputs["image"] = str(png)
        extra.update(image=Image.fromarray(image), num_frames=F)
    elif kind == "v2v":
        params["strength"] = 0.7
        inputs["video"] = source
        extra.update(video=[Image.fromarray(f) for f in video], strength=0.7)
    else:
        extra["num_frames"] = F
    ours, events = _ours(tmp_path, spec_id, weights, params, inputs)
    theirs = _theirs(kind, weights, **extra)
    assert ours.shape == theirs.shape == (F, H, W, 3)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    assert ours.std() > 1.0  # not a blank clip

    steps = int(STEPS * 0.7) if kind == "v2v" else STEPS
    progress = [e for e in events if isinstance(e, ev.ProgressUpdated)]
    assert [(e.step, e.total) for e in progress] == [(i, steps) for i in range(1, steps + 1)]
    previews = [e for e in events if isinstance(e, ev.PreviewReady)]
    assert len(previews) == steps
    # 3 latent frames (9 frames, 4× in time) at the latent size (the tiny VAE: 4× in space)
    assert previews[-1].frames.shape == (3, H // 4, W // 4, 3) and previews[-1].frames.dtype == np.uint8


def test_the_preview_map_is_fitted_to_the_vae(twins: dict[str, Path]) -> None:
    """The 16→RGB preview map is a least-squares fit on the VAE's own encodings of smooth colour fields, made once
    per VAE: on those fields its previews are closer to the true colours than any single flat colour (the tiny
    random VAE keeps little colour, so the margin is small; scripts/gpu_check.py reports the real VAE's fit)."""
    import torch
    from diffusers import AutoencoderKLCogVideoX

    from sdk.ml.cogvideox import fit_images, fit_latent_rgb, latents_to_rgb

    vae = AutoencoderKLCogVideoX.from_pretrained(twins["2b"] / "vae")
    factors = fit_latent_rgb(vae)
    assert factors.shape == (17, 3)
    assert fit_latent_rgb(vae) is factors  # fitted once per VAE
    x = fit_images()
    with torch.no_grad():
        lat = vae.encode(x.unsqueeze(2)).latent_dist.mode() * vae.config.scaling_factor  # [N,16,1,h,w]
    want = ((torch.nn.functional.interpolate(x, size=lat.shape[-2:], mode="area") + 1) * 127.5).permute(0, 2, 3, 1)
    shown = np.concatenate([latents_to_rgb(lat[i:i + 1].permute(0, 2, 1, 3, 4), factors) for i in range(len(x))])
    assert shown.shape == (len(x), *lat.shape[-2:], 3) and shown.dtype == np.uint8
    fitted = np.square(shown.astype(float) - want.numpy()).mean()
    flat = np.square(want.numpy() - want.numpy().mean((0, 1, 2))).mean()
    assert fitted < 0.97 * flat, (fitted, flat)


def test_a_cancel_stops_the_render_within_a_step(tmp_path: Path, twins: dict[str, Path]) -> None:
    """Cancel is checked before every transformer block: asked for during step 2, the render stops inside that
    step (step 2 never reports), and the cached transformer is left checking no job."""
    from sdk.errors import CancelRequested
    from sdk.ml import cogvideox as cog

    events: list[ev.Event] = []
    asked = {"checks": 0}

    def cancel() -> bool:
        done = sum(isinstance(e, ev.ProgressUpdated) for e in events)
        if done >= 1:  # step 1 finished: its own end-of-step check, then step 2's transformer, then its block 0
            asked["checks"] += 1
        return asked["checks"] >= 3

    ctx = JobContext("c", events.append, staging_dir=tmp_path / "s", models=ModelCache(), device="cpu",
                     cancel_flag=cancel)
    pipe = cog.load_pipeline(ctx, twins["2b"], "t2v")
    with pytest.raises(CancelRequested) as err:
        cog.render(ctx, pipe, prompt="a kite", negative_prompt="", frames=F, height=H, width=W, steps=STEPS,
                   guidance=6.0, dynamic_cfg=False, seed=1)
    assert [e.step for e in events if isinstance(e, ev.ProgressUpdated)] == [1]
    assert asked["checks"] == 3
    # raised from inside the transformer's forward (before its first block), not between steps
    assert any(e.name == "forward" and str(e.path).endswith("cogvideox_transformer_3d.py") for e in err.traceback)
    assert pipe.transformer._vgen_cancel is None  # the cached transformer no longer reports to this job
