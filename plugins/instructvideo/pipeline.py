"""``instructvideo.t2v``: ModelScope T2V v1.4 with InstructVideo's LoRA merged into the base (vgen-notes §13), and the
pieces the reward trainer shares (base loading, the guided DDIM loop on VGen's explicit step lists).

As VGen's ``inference_instructvideo_entrance``: the LoRA UNet (base + rank-4 LoRA on every attention) is loaded
strictly, then each LoRA pair is merged, ``W += s·up·down`` (s = ``lora_scale``; VGen: 1), and the plain UNet samples:
DDIM 20 or 50 on the explicit lists, eps / linear_sd, guidance u + 3·(c − u) with the empty prompt, 256×256, 16 frames.
The LoRA is the released fine-tuned checkpoint (``instructvideo-finetuned/ddim20_…pth``), a project adapter
(``instructvideo.lora``, from ``instructvideo.reward``) on the v1.4 base, or none (the v1.4 base alone).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import IncompatibleCheckpoint, WeightsMissing
from sdk.ml.checkpoints import FETCH_HINT
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.ml.weights_layout import Weights, detect_vgen_folder
from sdk.video import Video

from plugins.instructvideo.lora import LoRALayers, is_lora_key, merge_lora
from plugins.instructvideo.params import InstructVideoParams

PRESET = "modelscope"  # eps, linear_sd (= scaled_linear), no zero-SNR
WEIGHTS_ID = "instructvideo.modelscope_v1_4"
#: VGen's configs spell the DDIM timesteps out (``ddim_steps``); its loop computes the same 1 + k·1000/N list
STEP_LISTS: dict[int, list[int]] = {
    20: [951, 901, 851, 801, 751, 701, 651, 601, 551, 501, 451, 401, 351, 301, 251, 201, 151, 101, 51, 1],
    50: list(range(981, 0, -20)),
}
RELEASED_DIR = "instructvideo-finetuned"


# -- weights ------------------------------------------------------------------------------------------------------
def find_base(path: Path | None) -> Weights:
    return detect_vgen_folder(path, what="InstructVideo (ModelScope T2V v1.4)", weights_id=WEIGHTS_ID,
                              prefixes=("model_scope",))


def find_released_lora(w: Weights) -> Path:
    """The fine-tuned LoRA UNet: the file ``vgen_studio.json`` names (``"lora"``), else the one ``.pth`` in
    ``instructvideo-finetuned/``, else a ``ddim20_*.pth`` beside the base."""
    studio = w.studio()
    if studio.get("lora"):
        return w.root / studio["lora"]
    found = sorted((w.root / RELEASED_DIR).glob("*.pth")) if (w.root / RELEASED_DIR).is_dir() else []
    found = found or sorted(w.root.glob("ddim20_*.pth"))
    if not found:
        raise WeightsMissing(f"{str(w.root)!r} holds no released InstructVideo LoRA checkpoint "
                             f"({RELEASED_DIR}/ddim20_1102-18-52_non_ema_0620000.pth).",
                             hint=f"{FETCH_HINT} Or set lora=none to render the v1.4 base.")
    return found[0]


def adapter_file(path: Path) -> Path:
    """An adapter folder's ``weights.safetensors``, or the file itself (a released ``.pth`` / ``.safetensors``)."""
    path = Path(path)
    return path / "weights.safetensors" if path.is_dir() else path


def build_lora_unet(sd: dict[str, torch.Tensor], *, source: str) -> tuple[torch.nn.Module, LoRALayers]:
    """A diffusers UNet with LoRA modules attached, strictly loaded from a VGen state dict that holds the base and
    the LoRA tensors (2008 for the released UNet): a missing or unexpected key is an IncompatibleCheckpoint."""
    from diffusers import UNet3DConditionModel

    from sdk.ml.checkpoints import empty_model, load_into
    from sdk.ml.convert import KeyMap, infer_unet3d_config

    cfg = infer_unet3d_config({k: v for k, v in sd.items() if not is_lora_key(k)})
    unet = empty_model(lambda: UNet3DConditionModel(**cfg))
    layers = LoRALayers(unet)
    load_into(unet, KeyMap.for_model(unet).vgen_to_diffusers(sd), source=source)
    return unet.eval(), layers


def merged_unet(base: Path, lora: Path | None, scale: float) -> torch.nn.Module:
    """The plain UNet VGen samples with: the base (or the LoRA file's own base tensors, when it holds them) with the
    LoRA merged in at ``scale``; ``lora`` None: the base alone."""
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.convert import load_vgen_unet

    base_sd = load_state_dict(base)
    if lora is None:
        return load_vgen_unet(base_sd, source=base.name)
    lora_sd = load_state_dict(lora)
    if not any(is_lora_key(k) for k in lora_sd):
        raise IncompatibleCheckpoint(f"{lora.name} holds no LoRA tensors (…_lora.down_linear.weight).",
                                     hint="Give an instructvideo.lora adapter or the released ddim20_… checkpoint.")
    unet, layers = build_lora_unet({**base_sd, **lora_sd}, source=lora.name)
    tensors = layers.state_dict()
    layers.detach()
    merge_lora(unet, tensors, scale)
    return unet


def load_text_vae(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    from sdk.ml import components

    return (components.text_encoder(ctx, w.open_clip, dtype, device), components.vae(ctx, w.vae, dtype, device))


# -- sampling -----------------------------------------------------------------------------------------------------
def ddim_scheduler(steps: int, device: torch.device | str) -> tuple[Any, torch.Tensor]:
    """A DDIM scheduler on the preset's betas with VGen's explicit timestep list for ``steps`` (20 or 50)."""
    scheduler = make_scheduler(PRESET, "ddim")
    set_timesteps(scheduler, steps, device)
    if steps in STEP_LISTS:
        scheduler.timesteps = torch.tensor(STEP_LISTS[steps], dtype=torch.long, device=device)
    return scheduler, scheduler.timesteps


def sample_ddim(unet: torch.nn.Module, embeds: torch.Tensor, latents: torch.Tensor, steps: int, guidance_scale: float,
                ctx: JobContext | None = None, report: bool = True) -> torch.Tensor:
    """DDIM from pure noise on VGen's list; ``embeds`` is [uncond, cond] when guiding."""
    scheduler, timesteps = ddim_scheduler(steps, latents.device)

    def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]

    return denoise(ctx, model_fn, scheduler, latents * scheduler.init_noise_sigma, timesteps,
                   guidance_scale=guidance_scale, report=report)


# -- the generator ------------------------------------------------------------------------------------------------
class InstructVideoGenerator:
    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml import components
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs
        p = req.params if isinstance(req.params, InstructVideoParams) \
            else InstructVideoParams.model_validate(dict(req.params))
        w = find_base(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)
        adapter = req.inputs.get("adapter")
        if adapter is not None:
            lora, what = adapter_file(adapter.path), f"adapter {adapter.id or adapter.path}"
        elif p.lora == "released":
            lora, what = find_released_lora(w), "the released LoRA"
        else:
            lora, what = None, "no LoRA"
        if lora is not None and not lora.is_file():
            raise WeightsMissing(f"The LoRA file {str(lora)!r} does not exist.", hint=FETCH_HINT)

        # 2. load: the merged UNet is cached per (base, LoRA file, scale); encoders shared with the other methods
        assert w.unet is not None
        files = [w.unet] + ([lora] if lora is not None else [])
        scale = p.lora_scale if lora is not None else 0.0
        unet = components.unet(ctx, files, dtype, device, lambda: merged_unet(w.unet, lora, scale),
                               kind=f"instructvideo-merged-s{scale:g}")
        text, vae = load_text_vae(ctx, w, device, dtype)
        factor = latent_factor(vae, p.height, p.width)
        do_cfg = uses_cfg(p.guidance_scale)
        ctx.log.info("InstructVideo: %s (scale %g), DDIM %d, guidance %g, %s/%s", what, scale, p.num_inference_steps,
                     p.guidance_scale, device, str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            # 3. text: [uncond, cond]
            embeds = text.encode([p.negative_prompt, p.prompt] if do_cfg else [p.prompt]).to(dtype)
            # 4.–5. seeded noise, DDIM on the explicit list
            shape = (1, unet.config["in_channels"], p.num_frames, p.height // factor, p.width // factor)
            latents = initial_latents(shape, ctx.generator(req.seed), dtype, p.offset_noise, device)
            latents = sample_ddim(unet, embeds, latents, p.num_inference_steps, p.guidance_scale, ctx)
            ctx.check_cancelled()
            # 6. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
