"""The VideoLCM generator: an LCM loop (1–8 steps, no guidance) on the shared TF-T2V UNet (worker side, torch).

``req.weights`` is one of two formats (detected):
- vgen: a folder with the UNet ``.pth`` (``videolcm_t2v_*.pth``, or the one ``vgen_studio.json`` names) beside
  ``open_clip_pytorch_model.bin`` and ``v2-1_512-ema-pruned.ckpt`` (or the ``.pth`` itself);
- student: a checkpoint folder written by ``videolcm.distill`` (a project Adapter): ``weights.safetensors`` (the
  student UNet, diffusers names) and ``meta.json`` with ``kind: "videolcm.student"``, the UNet config
  (``unet_config``) and the weights it was distilled from (``base_weights``: a path, absolute or relative to the
  folder; else ``base_weights_id``: an installed id), whose VAE and text encoder it uses.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest, WeightsMissing
from sdk.ml.checkpoints import FETCH_HINT, load_state_dict
from sdk.ml.concat_unet import load_concat_unet
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.ml.weights_layout import OPEN_CLIP_FILE, VAE_FILE, Weights, detect_vgen_folder
from sdk.video import Video

from plugins.videolcm.params import VideoLCMParams

PRESET = "tft2v"  # v-prediction, scaled_linear, zero-SNR
WEIGHTS_ID = "videolcm.videolcm_t2v"
STUDENT_KIND = "videolcm.student"
STUDENT_FILE = "weights.safetensors"


def detect_weights(path: Any) -> Weights:
    """Which format ``path`` holds (``vgen``, or ``student``: ``unet`` the student's file, ``root`` its base
    folder); :class:`WeightsMissing` names what is missing and the fix."""
    if path is not None and Path(path).is_dir() and (Path(path) / STUDENT_FILE).exists():
        return _student(Path(path))
    return detect_vgen_folder(path, what="VideoLCM", weights_id=WEIGHTS_ID, prefixes=("videolcm_t2v",))


def _student(root: Path) -> Weights:
    meta_file = root / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if meta.get("kind") != STUDENT_KIND:
        raise InvalidRequest(f"{str(root)!r} holds {STUDENT_FILE} but is not a VideoLCM student checkpoint "
                             f"(meta.json kind {meta.get('kind')!r}).",
                             hint="Give a checkpoint written by videolcm.distill, or VideoLCM VGen weights.", field="weights")
    base: Path | None = None
    if meta.get("base_weights"):
        cand = Path(meta["base_weights"])
        cand = cand if cand.is_absolute() else root / cand
        base = cand if cand.exists() else None
    if base is None and meta.get("base_weights_id"):
        from sdk import weights as w

        base, _ = w.resolve(meta["base_weights_id"], None)
    if base is None:
        raise WeightsMissing(f"The student checkpoint {str(root)!r} names no existing base weights "
                             f"({meta.get('base_weights')!r}); its VAE and text encoder come from there.",
                             hint="Install the teacher weights it was distilled from (" + FETCH_HINT + ")")
    base = base if base.is_dir() else base.parent
    missing = [n for n in (OPEN_CLIP_FILE, VAE_FILE) if not (base / n).exists()]
    if missing:
        raise WeightsMissing(f"The base weights {str(base)!r} of the student lack {', '.join(missing)}.", hint=FETCH_HINT)
    return Weights("student", base, root / STUDENT_FILE, meta.get("unet_config"))


def load_components(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE and text encoder, each cached on its own (:mod:`sdk.ml.components`); a student shares its base's
    VAE and text encoder with the teacher's jobs."""
    from sdk.ml import components

    assert w.unet is not None
    config = w.config()
    vgen_names = w.format == "vgen"  # a student holds diffusers names, unprefixed

    def load() -> torch.nn.Module:
        sd = load_state_dict(w.unet) if vgen_names else load_state_dict(w.unet, strip=())
        return load_concat_unet(sd, config, source=w.unet.name, vgen_names=vgen_names)

    # the same kind as TF-T2V's loader for VGen files: one file, one model, whichever method reads it
    unet = components.unet(ctx, w.unet, dtype, device, load,
                           kind="vgen-concat-unet" if vgen_names else "concat-unet-diffusers-names", config=config)
    return {"unet": unet, "vae": components.vae(ctx, w.vae, dtype, device),
            "text_encoder": components.text_encoder(ctx, w.open_clip, dtype, device),
            "attention": components.attention(unet)}


@torch.no_grad()
def lcm_sample(unet: torch.nn.Module, embeds: torch.Tensor, shape: tuple[int, ...], steps: int,
               gen: torch.Generator, ctx: JobContext | None = None, *, report: bool = True) -> torch.Tensor:
    """The LCM loop (scale_model_input → UNet, cond only → step); returns the last step's denoised latents.
    With ``ctx`` and ``report`` it checks cancel, reports progress and previews every step."""
    device, dtype = embeds.device, embeds.dtype
    scheduler = make_scheduler(PRESET, "lcm")
    timesteps = set_timesteps(scheduler, steps, device)
    latents = initial_latents(shape, gen, dtype, device=device) * scheduler.init_noise_sigma

    def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]

    def step_fn(pred: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return scheduler.step(pred, t, x, generator=gen, return_dict=False)  # (latents, denoised)

    return denoise(ctx if report else None, model_fn, scheduler, latents, timesteps, step_fn=step_fn)


class VideoLCMGenerator:
    """``generate(ctx, req) -> Video``; models come from ``ctx.models``."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs
        p = req.params if isinstance(req.params, VideoLCMParams) else VideoLCMParams.model_validate(dict(req.params))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        # 2. load components (cached across jobs)
        comps = load_components(ctx, weights, device, dtype)
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        factor = latent_factor(vae, p.height, p.width)
        ctx.log.info("VideoLCM: %s weights (%s), %d LCM steps, %s/%s", weights.format, weights.unet.name,
                     p.num_inference_steps, device, str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            # 3. encode prompt (+ positive suffix); no unconditional branch
            embeds = text.encode([p.prompt + p.positive_suffix]).to(dtype)
            # 4–6. LCM loop from seeded noise
            shape = (1, unet.latent_channels, p.num_frames, p.height // factor, p.width // factor)
            latents = lcm_sample(unet, embeds, shape, p.num_inference_steps, ctx.generator(req.seed), ctx)
            ctx.check_cancelled()
            # 7. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
