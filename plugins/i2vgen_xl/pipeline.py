"""The I2VGen-XL generator: our own denoising loop on diffusers' ``I2VGenXLUNet`` (worker side, torch).

``req.weights`` is a folder, in one of two formats (detected):
- diffusers (``ali-vilab/i2vgen-xl`` layout): model_index.json, unet/, vae/, text_encoder/, tokenizer/,
  image_encoder/, feature_extractor/ (scheduler/ is not read: the sampler is always VGen's v / cosine / zero-SNR);
- vgen: ``i2vgen_xl_00854500.pth`` (or the UNet ``.pth`` that ``vgen_studio.json`` names), ``open_clip_pytorch_model.bin``
  (text and vision towers) and ``v2-1_512-ema-pruned.ckpt``.
A file path is taken as a VGen UNet ``.pth`` with its encoders beside it.

Conditioning, as VGen's ``inference_i2vgen_entrance``: the image is fitted to the video size (short side scaled, centre
crop) and VAE-encoded into the first-frame latent, followed by F−1 constant frames k/(F−1) (the frame-position mask);
its CLIP ViT-H embedding comes from a centre square of the image; fps is a conditioning input. The unconditional
branch sees the negative prompt and a zero image embedding, and the same image latent.

The image latent is a posterior *sample* (VGen samples, diffusers' pipeline too), drawn from its own CPU generator
seeded with the job's seed: the same seed gives the same frames, and diffusers' ``I2VGenXLPipeline`` reproduces it
when the global RNG is seeded with that seed (its ``sample()`` takes no generator). Its noise repeats the first values
of the initial noise; the posterior's std is tiny, so nothing visible follows from that.

Weights from VGen ``.pth`` files get ``conv_in``'s concat slice doubled (see :mod:`plugins.i2vgen_xl.convert`);
diffusers folders are used as they are, so frames equal diffusers' own pipeline on them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.ml.weights_layout import Weights
from sdk.ml.weights_layout import detect_weights as detect_layout
from sdk.video import Video

from plugins.i2vgen_xl.params import I2VParams

PRESET = "vgen_t2v"  # v-prediction, cosine, zero terminal SNR
WEIGHTS_ID = "i2vgen_xl.i2vgen_xl"
DIFFUSERS_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "image_encoder")


def detect_weights(path: Path | None) -> Weights:
    """Which format ``path`` holds; :class:`WeightsMissing` names what is missing and the fix."""
    return detect_layout(path, what="I2VGen-XL", weights_id=WEIGHTS_ID, diffusers_parts=DIFFUSERS_PARTS,
                         vgen_unet="VGen's i2vgen_xl_00854500.pth")


def load_components(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE, text encoder and image encoder, each cached on its own (:mod:`sdk.ml.components`): a VGen folder's
    VAE and OpenCLIP towers are the ones the other VGen methods read from the same files."""
    from sdk.ml import components

    studio = w.studio()
    if w.format == "diffusers":
        from diffusers import I2VGenXLUNet

        unet = components.diffusers_unet(ctx, w.root / "unet", dtype, device, I2VGenXLUNet)
        # I2VGenXLPipeline encodes prompts with clip_skip=1: the penultimate layer through the final LayerNorm.
        text = components.text_encoder(ctx, w.root / "text_encoder", dtype, device, tokenizer=w.root / "tokenizer",
                                       skip_last_layers=1)
        fe = w.root / "feature_extractor"
        image = components.image_encoder(ctx, w.root / "image_encoder", dtype, device,
                                         feature_extractor=fe if fe.is_dir() else None)
    else:
        from plugins.i2vgen_xl.convert import load_vgen_i2v_unet

        assert w.unet is not None
        config = w.config()
        unet = components.unet(ctx, w.unet, dtype, device,
                               lambda: load_vgen_i2v_unet(load_state_dict(w.unet), config, source=w.unet.name),
                               kind="vgen-i2vgen-xl", config=config)
        clip = components.read_once(w.open_clip, strip=("module.",))  # read at most once: text and vision towers
        text = components.text_encoder(ctx, w.open_clip, dtype, device, state=clip)
        image = components.image_encoder(ctx, w.open_clip, dtype, device, state=clip,
                                         head_width=studio.get("image_encoder_head_width"))
    vae = components.vae(ctx, w.vae, dtype, device)
    return {"unet": unet, "vae": vae, "text_encoder": text, "image_encoder": image,
            "attention": components.attention(unet)}


def frame_position_latents(latent: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``[B,4,h,w]`` image latent → ``[B,4,F,h,w]``: frame 0 the latent, frame k (1…F−1) the constant k/(F−1)."""
    frames = [latent[:, :, None]]
    frames += [torch.ones_like(latent[:, :, None]) * (k / (num_frames - 1)) for k in range(1, num_frames)]
    return torch.cat(frames, dim=2)


def image_input(req: JobRequest) -> Path:
    """The job's image file; a missing one is an :class:`InvalidRequest` naming the ``image`` field."""
    value = req.inputs.get("image")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None or value == "":
        raise InvalidRequest("I2VGen-XL needs an image to animate.",
                             hint="Give one with --image FILE (PNG, JPEG, WebP …).", field="image")
    return Path(value)


class I2VGenerator:
    """``generate(ctx, req) -> Video``; models come from ``ctx.models`` (a second job on the same weights pays no load)."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.image import center_crop_wide, encode_image_latent, open_image, pil_to_tensor
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs (the image first: a bad file fails before any weights load)
        p = req.params if isinstance(req.params, I2VParams) else I2VParams.model_validate(dict(req.params))
        image = open_image(image_input(req))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        # 2. load components (cached across jobs)
        comps = load_components(ctx, weights, device, dtype)
        unet, vae, text, image_encoder = comps["unet"], comps["vae"], comps["text_encoder"], comps["image_encoder"]
        factor = latent_factor(vae, p.height, p.width)
        scheduler = make_scheduler(PRESET, p.scheduler)
        do_cfg = uses_cfg(p.guidance_scale)
        batch = 2 if do_cfg else 1
        ctx.log.info("I2VGen-XL: %s weights, scheduler %s, image %dx%d fitted to %dx%d, %s/%s", weights.format,
                     p.scheduler, image.width, image.height, p.width, p.height, device, str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            # 3. encode prompt (and negative prompt for guidance): batch [uncond, cond]
            embeds = text.encode([p.negative_prompt, p.prompt] if do_cfg else [p.prompt]).to(dtype)

            # 4. encode the image: CLIP embedding (zeros for uncond), first-frame latent + frame-position mask, fps
            clip_emb = image_encoder.embed(image, crop_width=p.width).to(device, dtype)[:, None]  # [1,1,E]
            image_embeds = torch.cat([torch.zeros_like(clip_emb), clip_emb]) if do_cfg else clip_emb
            pixels = pil_to_tensor(center_crop_wide(image, (p.width, p.height)))
            latent = encode_image_latent(vae, pixels, ctx.generator(req.seed)).to(dtype)
            image_latents = frame_position_latents(latent, p.num_frames).repeat(batch, 1, 1, 1, 1)
            fps = torch.tensor([p.target_fps] * batch, device=device)

            # 5. timesteps
            timesteps = set_timesteps(scheduler, p.num_inference_steps, device)

            # 6. initial latents: exactly diffusers' randn_tensor with a CPU generator
            shape = (1, unet.config["in_channels"], p.num_frames, p.height // factor, p.width // factor)
            latents = initial_latents(shape, ctx.generator(req.seed), dtype, device=device) * scheduler.init_noise_sigma

            # 7. denoising loop (the image latents, CLIP embedding and fps condition every step)
            def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return unet(model_in, t, encoder_hidden_states=embeds, fps=fps, image_latents=image_latents,
                            image_embeddings=image_embeds, return_dict=False)[0]

            latents = denoise(ctx, model_fn, scheduler, latents, timesteps, guidance_scale=p.guidance_scale)
            ctx.check_cancelled()

            # 8. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
