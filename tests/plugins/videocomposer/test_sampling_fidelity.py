"""The generators' frames equal VGen's own sampling loops, re-derived here from the read-only VGen source (never
imported) on the same tiny weights and the same condition videos:

- ``inference_tft2v_vcomposer_entrance``: the condition tensors built as VGen builds them (zero padding;
  ``make_masked_images`` on [−1, 1] frames; the first frame repeated for ``local_image`` and ``single_sketch``), ``DiffusionDDIM.ddim_sample_loop`` (float64 zero-SNR
  ``linear_sd`` schedule, VGen's timestep list, v-prediction, eta 0) with two model calls per step whose kwargs
  differ only in ``y`` (negative prompt) and ``image`` (zeros), guidance ``u + 9·(y − u)``;
- ``inference_videolcm_vcomposer_entrance``: diffusers' ``LCMScheduler`` built with VGen's arguments, the conditional
  kwargs only.

The UNet's own forward equals VGen's (test_fidelity.py), so these tests cover what the generators add around it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from plugins.videocomposer.params import ComposerLCMParams, ComposerT2VParams, DEFAULT_NEGATIVE, LCM_SUFFIX, \
    T2V_SUFFIX
from plugins.videocomposer.pipeline import ComposerLCMGenerator, ComposerT2VGenerator
from plugins.videocomposer.tiny import LCM_FILE, T2V_FILE, make_tiny_lcm_weights, make_tiny_weights, \
    write_tiny_conditions
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.inputs import VideoInput
from sdk.outputs import write_output
from sdk.video import Video
from tests.reference import vgen_ddim_loop

F_, H, W, SEED = 3, 32, 48, 11
SUBSET = ("depth", "local_image", "motion", "sketch", "single_sketch", "mask")
VIDEO_FRAMES, VIDEO_FPS, SAMPLE_FPS = 5, 9, 3  # stride 3: frames 0 and 3 of 5, then a zero frame


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("vcomp-media")
    inputs = write_tiny_conditions(root / "cond", F_, H, W, seed=3)
    inputs.pop("canny")
    from plugins.videocomposer.tiny import tiny_condition_frames

    long = tiny_condition_frames(VIDEO_FRAMES, H, W, seed=4)["video"]
    paths = write_output(root / "long", Video(long, fps=VIDEO_FPS), {"tiny": True})
    inputs["video"] = VideoInput(path=paths["video"], num_frames=VIDEO_FRAMES, width=W, height=H, fps=VIDEO_FPS,
                                 frames_dir=paths["frames"])
    style = root / "style.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(style)
    inputs["style_image"] = style
    return inputs


def pngs(cond: Any) -> np.ndarray:
    """The lossless frames of an extract output, as uint8 [F, H, W, 3]."""
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(cond.frames_dir).glob("*.png"))])


def sampled_video(frames: np.ndarray, fps: float, sample_fps: int, max_frames: int) -> torch.Tensor:
    """The reference video under the mask, ``[max_frames, 3, H, W]`` in [0, 1], zero-padded as VGen's
    ``load_video_frames``; sampled as the condition extractors sample (stride ``round(fps / sample_fps)`` from the
    start frame itself: the documented difference from VGen's random start and skipped first frame)."""
    picked = frames[::round(fps / sample_fps)][:max_frames]
    video = torch.zeros(max_frames, 3, H, W)
    video[:len(picked)] = torch.from_numpy(picked.astype(np.float32) / 255).permute(0, 3, 1, 2)
    return video


def vgen_conditions(media: dict[str, Any]) -> dict[str, torch.Tensor]:
    """VGen's model kwargs for the condition keys, ``[1, C, F, H, W]`` (the encoding contract turned back)."""
    def grey(name: str) -> torch.Tensor:
        return torch.from_numpy(pngs(media[name])[..., 0].astype(np.float32) / 255)[None, None]

    local = torch.from_numpy(pngs(media["local_image"]).astype(np.float32) / 255).permute(3, 0, 1, 2)[None]
    motion = torch.from_numpy((pngs(media["motion"])[..., :2].astype(np.float32) - 128) / 2).permute(3, 0, 1, 2)[None]
    misc = sampled_video(pngs(media["video"]), VIDEO_FPS, SAMPLE_FPS, F_)
    mask = torch.from_numpy((pngs(media["mask"])[..., 0] >= 128).astype(np.float32))[:, None]  # [F, 1, H, W]
    imgs = misc * 2 - 1
    masked = torch.stack([torch.cat([imgs[i] * (1 - mask[i]), 1 - mask[i]], dim=0) for i in range(F_)])
    return {"depth": grey("depth") * 10, "local_image": local[:, :, :1].repeat(1, 1, F_, 1, 1), "motion": motion,
            "sketch": grey("sketch"), "single_sketch": grey("single_sketch")[:, :, :1].repeat(1, 1, F_, 1, 1),
            "masked": masked.permute(1, 0, 2, 3)[None]}


def components(folder: Path) -> tuple[Any, Any, Any, Any, JobContext]:
    from sdk.ml import components as comp
    from sdk.ml.checkpoints import load_state_dict

    from plugins.videocomposer.unet import load_composition_unet

    ctx = JobContext("ref", lambda e: None, staging_dir=folder / "ref-staging", models=ModelCache())
    name = T2V_FILE if (folder / T2V_FILE).exists() else LCM_FILE
    unet = load_composition_unet(load_state_dict(folder / name))
    dev, dt = torch.device("cpu"), torch.float32
    text = comp.text_encoder(ctx, folder / "open_clip_pytorch_model.bin", dt, dev)
    vae = comp.vae(ctx, folder / "v2-1_512-ema-pruned.ckpt", dt, dev)
    image = comp.image_encoder(ctx, folder / "open_clip_pytorch_model.bin", dt, dev)
    return unet, text, vae, image, ctx


def vgen_style(image_encoder: Any, path: Path) -> torch.Tensor:
    """VGen's ``vit_transforms``: Resize(resolution), Resize(vit_resolution), ToTensor, Normalize(vit mean/std)."""
    side = image_encoder.image_size
    im = Image.open(path).convert("RGB").resize((W, H), Image.BILINEAR).resize((side, side), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1)[None]
    x = (x - torch.tensor(image_encoder.mean).view(1, 3, 1, 1)) / torch.tensor(image_encoder.std).view(1, 3, 1, 1)
    return image_encoder.encode(x)


def run(generator: Any, params: Any, inputs: dict[str, Any], weights: Path, tmp_path: Path, cache: ModelCache
        ) -> np.ndarray:
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "staging", models=cache)
    req = JobRequest("j", "generate", "videocomposer.x", params, seed=SEED, inputs=inputs, weights=weights)
    return generator.generate(ctx, req).frames


def decode(vae: Any, latents: torch.Tensor) -> np.ndarray:
    from sdk.ml.vae import decode_video, to_uint8

    return to_uint8(decode_video(vae, latents, 8)[0])


def test_t2v_frames_equal_vgens_ddim_loop_with_conditions_and_style(media: dict[str, Any], tmp_path: Path) -> None:
    weights = make_tiny_weights(tmp_path / "t2v", seed=2)
    params = ComposerT2VParams(prompt="a boat on a lake", num_frames=F_, height=H, width=W, num_inference_steps=2,
                               conditions="+".join(SUBSET), sample_fps=SAMPLE_FPS)
    ours = run(ComposerT2VGenerator(), params, media, weights, tmp_path, ModelCache())

    unet, text, vae, image_encoder, _ = components(weights)
    with torch.no_grad():
        y_words = text.encode(["a boat on a lake" + T2V_SUFFIX])
        zero_y = text.encode([DEFAULT_NEGATIVE])
        y_visual0 = vgen_style(image_encoder, media["style_image"])
        conds = vgen_conditions(media)
        full = [{"y": y_words, "image": y_visual0, **conds},  # VGen's full_model_kwargs: only y and image differ
                {"y": zero_y, "image": torch.zeros_like(y_visual0), **conds}]

        def model(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, image: torch.Tensor, **c: torch.Tensor):
            return unet(x, t, y, image_embeds=image, conditions=c, return_dict=False)[0]

        noise = torch.randn(1, 4, F_, H // 8, W // 8, generator=torch.Generator().manual_seed(SEED))
        reference = decode(vae, vgen_ddim_loop(model, noise, full, 2, 9.0))
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    # the conditions and the style image reach the UNet: without them the frames differ
    bare = run(ComposerT2VGenerator(), params.model_copy(update={"conditions": "none"}),
               {"video": media["video"]}, weights, tmp_path, ModelCache())
    assert np.abs(bare.astype(int) - ours.astype(int)).max() > 8


def test_lcm_frames_equal_vgens_lcm_loop_on_the_conditional_kwargs(media: dict[str, Any], tmp_path: Path) -> None:
    from diffusers import LCMScheduler

    weights = make_tiny_lcm_weights(tmp_path / "lcm", seed=2)
    chosen = ("depth", "sketch", "local_image")
    inputs = {k: media[k] for k in chosen}
    params = ComposerLCMParams(prompt="a boat on a lake", num_frames=F_, height=H, width=W, num_inference_steps=4)
    ours = run(ComposerLCMGenerator(), params, inputs, weights, tmp_path, ModelCache())

    unet, text, vae, _, _ = components(weights)
    conds = {k: v for k, v in vgen_conditions(media).items() if k in chosen}
    diffusion = LCMScheduler(prediction_type="v_prediction", beta_schedule="scaled_linear", clip_sample=False,
                             timestep_spacing="linspace", rescale_betas_zero_snr=True)  # VGen's construction
    diffusion.set_timesteps(4, device="cpu")
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        y_words = text.encode(["a boat on a lake" + LCM_SUFFIX])
        latents = torch.randn(1, 4, F_, H // 8, W // 8, generator=gen)
        for t in diffusion.timesteps:
            x_in = diffusion.scale_model_input(latents, t)
            pred = unet(x_in, t.repeat(1).to(latents.dtype), y_words, conditions=conds, return_dict=False)[0]
            latents = diffusion.step(pred, t, latents, generator=gen, return_dict=False)[0]
        reference = decode(vae, latents)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
