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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest, WeightsMissing
from sdk.ml.checkpoints import FETCH_HINT, load_state_dict, read_json
from sdk.ml.device import configure_attention, resolve_device, resolve_dtype
from sdk.ml.guidance import apply_cfg, uses_cfg
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.video import Video

from plugins.i2vgen_xl.params import I2VParams

OPEN_CLIP_FILE = "open_clip_pytorch_model.bin"
VAE_FILE = "v2-1_512-ema-pruned.ckpt"
KNOWN_NON_UNET = {OPEN_CLIP_FILE, VAE_FILE}
STUDIO_FILE = "vgen_studio.json"
PRESET = "vgen_t2v"  # v-prediction, cosine, zero terminal SNR
DIFFUSERS_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "image_encoder")
MAKE_TINY_HINT = ("Run `vgen models make-tiny i2vgen_xl.i2vgen_xl` for a tiny test copy, or "
                  "`vgen models fetch i2vgen_xl.i2vgen_xl` for the real weights.")


@dataclass
class Weights:
    format: str  # "diffusers" | "vgen"
    root: Path
    unet: Path | None = None  # vgen: the UNet .pth


def detect_weights(path: Path | None) -> Weights:
    """Which format ``path`` holds; :class:`WeightsMissing` names what is missing and the fix."""
    if path is None:
        raise WeightsMissing("No weights were given for I2VGen-XL and none are installed.", hint=MAKE_TINY_HINT)
    path = Path(path)
    if not path.exists():
        raise WeightsMissing(f"The weights folder {str(path)!r} does not exist.", hint=MAKE_TINY_HINT)
    if path.is_file():
        if path.suffix != ".pth":
            raise WeightsMissing(f"{str(path)!r} is not a weights folder nor a VGen UNet .pth.", hint=FETCH_HINT)
        return _vgen(path.parent, path)
    if (path / "model_index.json").exists() or (path / "unet").is_dir():
        missing = [p for p in DIFFUSERS_PARTS if not (path / p).is_dir()]
        if missing:
            raise WeightsMissing(f"The diffusers weights folder {str(path)!r} lacks {', '.join(missing)}/.",
                                 hint="The download is incomplete: " + FETCH_HINT)
        return Weights("diffusers", path)
    studio = _studio(path)
    if studio.get("unet"):
        return _vgen(path, path / studio["unet"])
    pths = sorted(p for p in path.glob("*.pth") if p.name not in KNOWN_NON_UNET)
    if not pths:
        raise WeightsMissing(f"{str(path)!r} holds neither a diffusers pipeline (model_index.json, unet/ …) nor VGen's "
                             f"i2vgen_xl_00854500.pth.", hint=FETCH_HINT)
    if len(pths) > 1:
        raise InvalidRequest(f"{str(path)!r} holds several UNet files ({', '.join(p.name for p in pths)}).",
                             hint=f"Name the one to use in {STUDIO_FILE} ({{\"unet\": \"file.pth\"}}), or point to the file.",
                             field="weights")
    return _vgen(path, pths[0])


def _vgen(root: Path, unet: Path) -> Weights:
    missing = [n for n in (unet.name, OPEN_CLIP_FILE, VAE_FILE) if not (root / n).exists()]
    if missing:
        raise WeightsMissing(f"The VGen weights folder {str(root)!r} lacks {', '.join(missing)}.", hint=FETCH_HINT)
    return Weights("vgen", root, unet)


def _studio(root: Path) -> dict[str, Any]:
    f = root / STUDIO_FILE
    return json.loads(f.read_text()) if f.exists() else {}


def load_components(w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE, text encoder and image encoder."""
    from sdk.ml.image import ImageEncoder, clip_vision_from_openclip_state, load_image_encoder_folder
    from sdk.ml.text import TextEncoder, clip_text_from_openclip_state, load_diffusers_text_encoder, openclip_tokenizer
    from sdk.ml.vae import load_ldm_vae, load_vae_folder

    studio = _studio(w.root)
    if w.format == "diffusers":
        from diffusers import I2VGenXLUNet

        from sdk.ml.checkpoints import empty_model, find_weights_file, load_into

        cfg = {k: v for k, v in read_json(w.root / "unet" / "config.json").items() if not k.startswith("_")}
        unet = empty_model(lambda: I2VGenXLUNet.from_config(cfg))
        load_into(unet, load_state_dict(find_weights_file(w.root / "unet", ("diffusion_pytorch_model",)), strip=()),
                  source="unet/ weights")
        vae = load_vae_folder(w.root / "vae")
        # I2VGenXLPipeline encodes prompts with clip_skip=1: the penultimate layer through the final LayerNorm.
        text = load_diffusers_text_encoder(w.root / "text_encoder", w.root / "tokenizer", skip_last_layers=1)
        fe = w.root / "feature_extractor"
        image = load_image_encoder_folder(w.root / "image_encoder", fe if fe.is_dir() else None)
    else:
        from plugins.i2vgen_xl.convert import load_vgen_i2v_unet

        assert w.unet is not None
        unet = load_vgen_i2v_unet(load_state_dict(w.unet), studio.get("unet_config"), source=w.unet.name)
        vae = load_ldm_vae(w.root / VAE_FILE)
        clip = load_state_dict(w.root / OPEN_CLIP_FILE, strip=("module.",))  # read once: text and vision towers
        text = TextEncoder(clip_text_from_openclip_state(clip, source=OPEN_CLIP_FILE), openclip_tokenizer())
        vision = clip_vision_from_openclip_state(clip, head_width=studio.get("image_encoder_head_width"),
                                                 source=OPEN_CLIP_FILE)
        image = ImageEncoder(vision, vision.config.image_size)
        del clip
    unet, vae, text, image = (_place(m, device, dtype) for m in (unet, vae, text, image))
    attention = configure_attention(unet, device)
    return {"unet": unet, "vae": vae, "text_encoder": text, "image_encoder": image, "attention": attention}


def _place(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    first = next(model.parameters())
    if first.device != device:
        model = model.to(device)
    if first.dtype != dtype:
        model = model.to(dtype)
    return model.eval()


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
        from sdk.ml.vae import decode_video, scale_factor, to_uint8

        # 1. check inputs (the image first: a bad file fails before any weights load)
        p = req.params if isinstance(req.params, I2VParams) else I2VParams.model_validate(dict(req.params))
        image = open_image(image_input(req))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        # 2. load components (cached across jobs)
        key = f"i2vgen_xl|{weights.root.resolve()}|{weights.unet.name if weights.unet else ''}|{device}|{dtype}"
        comps = ctx.models.get(key, lambda: load_components(weights, device, dtype))
        unet, vae, text, image_encoder = comps["unet"], comps["vae"], comps["text_encoder"], comps["image_encoder"]
        factor = scale_factor(vae)
        if p.height % factor or p.width % factor:
            raise InvalidRequest(f"Size {p.width}×{p.height} is not a multiple of {factor}.",
                                 hint=f"Use a width and height divisible by {factor}.", field="height")
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
            total = len(timesteps)

            # 6. initial latents: exactly diffusers' randn_tensor with a CPU generator
            gen = ctx.generator(req.seed)
            shape = (1, unet.config["in_channels"], p.num_frames, p.height // factor, p.width // factor)
            latents = torch.randn(shape, generator=gen, dtype=dtype).to(device) * scheduler.init_noise_sigma

            # 7. denoising loop
            for i, t in enumerate(timesteps):
                ctx.check_cancelled()
                model_in = torch.cat([latents] * batch) if do_cfg else latents
                model_in = scheduler.scale_model_input(model_in, t)
                pred = unet(model_in, t, encoder_hidden_states=embeds, fps=fps, image_latents=image_latents,
                            image_embeddings=image_embeds, return_dict=False)[0]
                if do_cfg:
                    pred = apply_cfg(pred, p.guidance_scale)
                latents = scheduler.step(pred, t, latents, return_dict=False)[0]
                ctx.progress(i + 1, total)
                ctx.preview(latents, i + 1, total)
            ctx.check_cancelled()

            # 8. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
