"""The ModelScope T2V generator: our own denoising loop on diffusers/transformers models (worker side, torch).

``req.weights`` is a folder, in one of two formats (detected):
- diffusers (``text-to-video-ms-1.7b`` layout): model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/;
- vgen: a UNet ``*.pth`` (any .pth other than the encoders; or the one ``vgen_studio.json`` names),
  ``open_clip_pytorch_model.bin`` and ``v2-1_512-ema-pruned.ckpt``.
A file path is taken as a VGen UNet ``.pth`` with its encoders beside it.
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
from sdk.ml.schedulers import (make_scheduler, preset_from_filename, preset_from_scheduler_config, set_timesteps)
from sdk.video import Video

from plugins.modelscope_t2v.params import T2VParams

OPEN_CLIP_FILE = "open_clip_pytorch_model.bin"
VAE_FILE = "v2-1_512-ema-pruned.ckpt"
KNOWN_NON_UNET = {OPEN_CLIP_FILE, VAE_FILE}
STUDIO_FILE = "vgen_studio.json"


@dataclass
class Weights:
    format: str  # "diffusers" | "vgen"
    root: Path
    unet: Path | None = None  # vgen: the UNet .pth


def detect_weights(path: Path | None) -> Weights:
    """Which format ``path`` holds; :class:`WeightsMissing` names what is missing and the fix."""
    if path is None:
        raise WeightsMissing("No weights were given for ModelScope T2V and none are installed.",
                             hint="Run `vgen models make-tiny modelscope_t2v.ms_1_7b` for a tiny test copy, or "
                                  "`vgen models fetch modelscope_t2v.ms_1_7b` for the real weights.")
    path = Path(path)
    if not path.exists():
        raise WeightsMissing(f"The weights folder {str(path)!r} does not exist.", hint=FETCH_HINT)
    if path.is_file():
        if path.suffix != ".pth":
            raise WeightsMissing(f"{str(path)!r} is not a weights folder nor a VGen UNet .pth.", hint=FETCH_HINT)
        return _vgen(path.parent, path)
    if (path / "model_index.json").exists() or (path / "unet").is_dir():
        missing = [p for p in ("unet", "vae", "text_encoder", "tokenizer") if not (path / p).is_dir()]
        if missing:
            raise WeightsMissing(f"The diffusers weights folder {str(path)!r} lacks {', '.join(missing)}/.",
                                 hint="The download is incomplete: " + FETCH_HINT)
        return Weights("diffusers", path)
    studio = _studio(path)
    if studio.get("unet"):
        return _vgen(path, path / studio["unet"])
    pths = sorted(p for p in path.glob("*.pth") if p.name not in KNOWN_NON_UNET)
    if not pths:
        raise WeightsMissing(f"{str(path)!r} holds neither a diffusers pipeline (model_index.json, unet/ …) nor a VGen "
                             f"UNet .pth.", hint=FETCH_HINT)
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
    """UNet, VAE, text encoder and the preset the weights were trained with."""
    from sdk.ml.convert import load_vgen_unet
    from sdk.ml.text import load_diffusers_text_encoder, load_openclip_text_encoder
    from sdk.ml.vae import load_ldm_vae, load_vae_folder

    studio = _studio(w.root)
    if w.format == "diffusers":
        from diffusers import UNet3DConditionModel

        from sdk.ml.checkpoints import empty_model, find_weights_file, load_into

        cfg = {k: v for k, v in read_json(w.root / "unet" / "config.json").items() if not k.startswith("_")}
        unet = empty_model(lambda: UNet3DConditionModel.from_config(cfg))
        load_into(unet, load_state_dict(find_weights_file(w.root / "unet", ("diffusion_pytorch_model",)), strip=()),
                  source="unet/ weights")
        vae = load_vae_folder(w.root / "vae")
        text = load_diffusers_text_encoder(w.root / "text_encoder", w.root / "tokenizer")
        sched = w.root / "scheduler" / "scheduler_config.json"
        preset = studio.get("preset") or (preset_from_scheduler_config(read_json(sched)) if sched.exists() else "modelscope")
    else:
        assert w.unet is not None
        unet = load_vgen_unet(load_state_dict(w.unet), studio.get("unet_config"), source=w.unet.name)
        vae = load_ldm_vae(w.root / VAE_FILE)
        text = load_openclip_text_encoder(w.root / OPEN_CLIP_FILE)
        preset = studio.get("preset") or preset_from_filename(w.unet.name)
    unet, vae, text = (_place(m, device, dtype) for m in (unet, vae, text))
    attention = configure_attention(unet, device)
    return {"unet": unet, "vae": vae, "text_encoder": text, "preset": preset, "attention": attention}


def _place(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    first = next(model.parameters())
    if first.device != device:
        model = model.to(device)
    if first.dtype != dtype:
        model = model.to(dtype)
    return model.eval()


class T2VGenerator:
    """``generate(ctx, req) -> Video``; models come from ``ctx.models`` (a second job on the same weights pays no load)."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, scale_factor, to_uint8

        # 1. check inputs
        p = req.params if isinstance(req.params, T2VParams) else T2VParams.model_validate(dict(req.params))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        # 2. load components (cached across jobs)
        key = f"modelscope_t2v|{weights.root.resolve()}|{weights.unet.name if weights.unet else ''}|{device}|{dtype}"
        comps = ctx.models.get(key, lambda: load_components(weights, device, dtype))
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        factor = scale_factor(vae)
        if p.height % factor or p.width % factor:
            raise InvalidRequest(f"Size {p.width}×{p.height} is not a multiple of {factor}.",
                                 hint=f"Use a width and height divisible by {factor}.", field="height")
        preset = comps["preset"] if p.preset == "auto" else p.preset
        scheduler = make_scheduler(preset, p.scheduler)
        do_cfg = uses_cfg(p.guidance_scale)
        ctx.log.info("ModelScope T2V: %s weights, preset %s, scheduler %s, %s/%s", weights.format, preset, p.scheduler,
                     device, str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            # 3. encode prompt (and negative prompt for guidance): batch [uncond, cond]
            embeds = text.encode([p.negative_prompt, p.prompt] if do_cfg else [p.prompt]).to(dtype)

            # 4. timesteps
            timesteps = set_timesteps(scheduler, p.num_inference_steps, device)
            total = len(timesteps)

            # 5. initial latents: exactly diffusers' randn_tensor with a CPU generator
            gen = ctx.generator(req.seed)
            shape = (1, unet.config["in_channels"], p.num_frames, p.height // factor, p.width // factor)
            latents = torch.randn(shape, generator=gen, dtype=dtype).to(device)
            if p.offset_noise > 0:
                latents = latents + p.offset_noise * torch.randn(shape[:3] + (1, 1), generator=gen, dtype=dtype).to(device)
            latents = latents * scheduler.init_noise_sigma

            # 6. denoising loop
            for i, t in enumerate(timesteps):
                ctx.check_cancelled()
                model_in = torch.cat([latents, latents]) if do_cfg else latents
                model_in = scheduler.scale_model_input(model_in, t)
                pred = unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]
                if do_cfg:
                    pred = apply_cfg(pred, p.guidance_scale)
                latents = scheduler.step(pred, t, latents, return_dict=False)[0]
                ctx.progress(i + 1, total)
                ctx.preview(latents, i + 1, total)
            ctx.check_cancelled()

            # 7. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
