"""``dreamvideo.compose``: the ModelScope T2V v1.5 loop with a subject's identity adapter + embedding and/or a
motion adapter (vgen-notes §12). Also the pieces the trainers share: base loading, text encoding with a learned
token, the guided DDIM loop used for sample previews, DDIM inversion.

Base = eps / scaled_linear DDIM 50, guidance 9, 256×256, offset noise 0.1. With both strengths 0 the output equals
``modelscope_t2v.t2v`` (offset_noise 0.1) for the same seed, bit for bit: same noise draws, same loop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, preset_config, set_timesteps
from sdk.ml.weights_layout import Weights, detect_vgen_folder
from sdk.video import Video

from plugins.dreamvideo.adapters import IDENTITY, MOTION, DreamVideoAdapters
from plugins.dreamvideo.formats import AdapterFile, TextualInversion, read_adapter, read_text_embedding
from plugins.dreamvideo.params import PLACEHOLDER, ComposeParams

PRESET = "modelscope"  # eps, scaled_linear, no zero-SNR
WEIGHTS_ID = "dreamvideo.modelscope_v1_5"


# -- base model ---------------------------------------------------------------------------------------------------
def find_base(path: Path | None) -> Weights:
    return detect_vgen_folder(path, what="DreamVideo (ModelScope T2V v1.5)", weights_id=WEIGHTS_ID,
                              prefixes=("model_scope",))


def load_base(ctx: JobContext, folder: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE, text encoder, each cached on its own (:mod:`sdk.ml.components`): the same instances
    ``modelscope_t2v`` uses on the same files, and the trainers' frozen base. Adapters are attached per job."""
    from sdk.ml import components

    # requires_grad stays as loaded: it changes CPU kernels (bitwise equality with modelscope_t2v)
    unet = components.vgen_unet3d(ctx, folder.unet, dtype, device, config=folder.config())
    return {"unet": unet, "vae": components.vae(ctx, folder.vae, dtype, device),
            "text_encoder": components.text_encoder(ctx, folder.open_clip, dtype, device),
            "attention": components.attention(unet)}


def load_image_encoder(ctx: JobContext, folder: Weights, device: torch.device, dtype: torch.dtype):
    """The OpenCLIP ViT-H vision tower of the same ``open_clip_pytorch_model.bin`` (appearance guidance)."""
    from sdk.ml import components

    return components.image_encoder(ctx, folder.open_clip, dtype, device)


# -- text with a learned token ------------------------------------------------------------------------------------
def placeholder_id(text_encoder: Any) -> int:
    ids = text_encoder.tokenize([PLACEHOLDER])[0]
    if int(ids[2]) != int(ids[-1]) and int(ids[3]) != 0:
        raise InvalidRequest(f"The tokenizer splits {PLACEHOLDER!r} into several tokens.", hint="Use OpenCLIP's tokenizer.")
    return int(ids[1])


def encode_text(text_encoder: Any, prompts: list[str], vectors: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Penultimate OpenCLIP features ``[B, 77, D]``; token ids in ``vectors`` get the learned vector instead of their
    token embedding (before positional embeddings, as VGen's ``FrozenOpenCLIPCustomEmbedder``). Differentiable in
    the vectors (call under ``torch.no_grad`` when not training)."""
    model = text_encoder.model
    ids = text_encoder.tokenize(list(prompts)).to(model.device)
    handle = None
    if vectors:
        def hook(module: Any, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
            for tid, vec in vectors.items():
                out = torch.where((args[0] == tid)[..., None], vec.to(out.dtype).reshape(1, 1, -1), out)
            return out
        handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        return model(input_ids=ids).last_hidden_state
    finally:
        if handle is not None:
            handle.remove()


def with_placeholder(prompt: str, token: str | None) -> str:
    """The subject's token (``<dog2>``) → VGen's placeholder ``*`` (what the embedding was learned for)."""
    return prompt.replace(token, PLACEHOLDER) if token and token != PLACEHOLDER else prompt


# -- sampling -----------------------------------------------------------------------------------------------------
@torch.no_grad()
def sample_ddim(unet: torch.nn.Module, embeds: torch.Tensor, latents: torch.Tensor, steps: int, guidance_scale: float,
                ctx: JobContext | None = None, report: bool = True) -> torch.Tensor:
    """DDIM (VGen's timesteps) with guidance u + s·(c − u); ``embeds`` is [uncond, cond] when guiding."""
    scheduler = make_scheduler(PRESET, "ddim")
    timesteps = set_timesteps(scheduler, steps, latents.device)

    def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]

    return denoise(ctx, model_fn, scheduler, latents * scheduler.init_noise_sigma, timesteps,
                   guidance_scale=guidance_scale, report=report)


def vgen_alphas_cumprod() -> torch.Tensor:
    """ᾱ of the preset as VGen computes it: ``linspace(√β0, √β1, 1000)²`` in float64, cumulative product of 1 − β."""
    cfg = preset_config(PRESET)
    betas = torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, cfg["num_train_timesteps"],
                           dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0)


@torch.no_grad()
def ddim_invert(unet: torch.nn.Module, latents: torch.Tensor, embeds: torch.Tensor, steps: int = 50,
                ctx: JobContext | None = None) -> torch.Tensor:
    """VGen's ``ddim_reverse_sample_loop`` (eta 0, no guidance, ε-prediction) → the noise DDIM maps back to ``latents``.

    Timesteps t = 0, s, 2s, … below 1000 with s = 1000 // ``steps`` (``steps`` + 1 UNet calls when it does not divide
    1000, as VGen). Each step: x̂0 = (x − √(1−ᾱ_t)·ε̂)/√ᾱ_t, then x ← √ᾱ_next·x̂0 + √(1−ᾱ_next)·ε̂ with
    ᾱ_next = ᾱ[t + s], and ᾱ = 0 past the end: the last step returns the predicted noise itself (not ᾱ[999]).
    ᾱ and its square-root tables are VGen's float64 ones, cast when used to the working dtype (float32, or float64
    for float64 latents: VGen inverts outside autocast); the UNet runs in the latents' dtype. ``embeds`` [B, 77, D]
    is the text context as given."""
    alphas = vgen_alphas_cumprod()
    total = alphas.shape[0]
    # float64 tables first, cast when used: the rounding VGen's DiffusionDDIM has
    recip, recipm1 = (1 / alphas).sqrt(), (1 / alphas - 1).sqrt()
    nxt = torch.cat([alphas, alphas.new_zeros(1)])  # ᾱ past the last training step is 0
    work = torch.promote_types(latents.dtype, torch.float32)
    skip = max(1, total // steps)
    x = latents.to(work)
    b = x.shape[0]

    def at(table: torch.Tensor, i: int) -> torch.Tensor:
        return table[i].to(device=x.device, dtype=work)

    for t in range(0, total, skip):
        if ctx is not None:
            ctx.check_cancelled()
        eps_hat = unet(x.to(latents.dtype), torch.full((b,), t, device=x.device, dtype=torch.long),
                       encoder_hidden_states=embeds, return_dict=False)[0].to(work)
        x0 = at(recip, t) * x - at(recipm1, t) * eps_hat
        eps = (at(recip, t) * x - x0) / at(recipm1, t)  # VGen recovers ε from x̂0 (equal up to rounding)
        a_next = at(nxt, min(t + skip, total))
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return x.to(latents.dtype)


def inverse_noise(unet: torch.nn.Module, adapters: DreamVideoAdapters | None, text_encoder: Any, latents: torch.Tensor,
                  steps: int, ctx: JobContext | None = None) -> torch.Tensor:
    """DreamVideo's inverse noise as ``inference_dreamvideo_entrance`` computes it: DDIM inversion of the motion's
    training latents conditioned on the empty prompt only: no appearance image (the motion adapters run without
    their condition term, which is not the same as a zero image) and no guidance. Whatever condition the adapters
    hold for sampling is put back afterwards."""
    dtype = next(unet.parameters()).dtype
    saved = (adapters.state.condition, adapters.state.lam) if adapters is not None else None
    try:
        if adapters is not None:
            adapters.set_condition(None)
        with torch.inference_mode():
            empty = encode_text(text_encoder, [""]).to(dtype)
        return ddim_invert(unet, latents, empty.expand(latents.shape[0], -1, -1), steps, ctx)
    finally:
        if saved is not None:
            adapters.state.condition, adapters.state.lam = saved


# -- the generator ------------------------------------------------------------------------------------------------
def _adapter_input(req: JobRequest, name: str) -> dict[str, Any] | None:
    """What the service resolved for an adapter param: ``{"path", "id", "step", "meta"}`` or None."""
    return (req.inputs.get("adapters") or {}).get(name)


class ComposeGenerator:
    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs
        p = req.params if isinstance(req.params, ComposeParams) else ComposeParams.model_validate(dict(req.params))
        folder = find_base(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)
        comps = load_base(ctx, folder, device, dtype)
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        factor = latent_factor(vae, p.height, p.width)
        identity, motion, ti, token = self._adapters(req, p)

        adapters = None
        try:
            # 2. attach the adapters (hooks on the cached base UNet; removed again below)
            if identity is not None or motion is not None:
                cond_dim = _condition_dim(motion)
                adapters = DreamVideoAdapters(unet, identity=identity is not None, motion=motion is not None,
                                              condition_dim=cond_dim)
                _load(adapters, unet, IDENTITY, identity)
                _load(adapters, unet, MOTION, motion)
                adapters.set_scale(IDENTITY, p.identity_strength)
                adapters.set_scale(MOTION, p.motion_strength)
            ctx.log.info("DreamVideo compose: identity %s, motion %s, embedding %s", identity is not None,
                         motion is not None, ti is not None)

            with torch.inference_mode():
                # 3. text, with the subject's token → its learned vector
                vectors = _vectors(ti, text)
                prompt = with_placeholder(p.prompt, token) if ti else p.prompt
                do_cfg = uses_cfg(p.guidance_scale)
                embeds = encode_text(text, [p.negative_prompt, prompt] if do_cfg else [prompt], vectors).to(dtype)

                # 4. appearance guidance: the image's CLIP embedding (zeros without one, and in the uncond branch)
                if motion is not None:
                    adapters.set_condition(*self._appearance(ctx, req, p, folder, device, dtype, cond_dim, do_cfg))

                # 5. initial latents (+ inverse noise of the motion's training latents)
                shape = (1, unet.config["in_channels"], p.num_frames, p.height // factor, p.width // factor)
                latents = initial_latents(shape, ctx.generator(req.seed), dtype, p.offset_noise, device)
                if p.inverse_noise_strength > 0:
                    latents = self._inverse_noise(ctx, unet, adapters, text, motion, latents, p)

                # 6. denoising loop, 7. decode
                latents = sample_ddim(unet, embeds, latents, p.num_inference_steps, p.guidance_scale, ctx)
                ctx.check_cancelled()
                pixels = decode_video(vae, latents, p.decode_chunk_size)
        finally:
            if adapters is not None:
                adapters.detach()
        return Video(to_uint8(pixels[0]), fps=p.fps)

    # -- helpers ----------------------------------------------------------------------------------------------
    @staticmethod
    def _adapters(req: JobRequest, p: ComposeParams) -> tuple[AdapterFile | None, AdapterFile | None,
                                                               TextualInversion | None, str | None]:
        ident_in, motion_in = _adapter_input(req, "identity_adapter"), _adapter_input(req, "motion_adapter")
        identity = read_adapter(ident_in["path"], token_ids=ident_in.get("meta", {}).get("string_to_token")) \
            if ident_in else None
        motion = read_adapter(motion_in["path"]) if motion_in else None
        for f, kind, field in ((identity, "identity", "identity_adapter"), (motion, "motion", "motion_adapter")):
            if f is not None and f.adapters and f.kinds != {kind}:
                raise InvalidRequest(f"{field} holds {'/'.join(sorted(f.kinds))} adapters, not {kind} adapters.",
                                     hint=f"Pick a dreamvideo.{kind} Adapter for {field}.", field=field)
        ti = read_text_embedding(p.text_embedding) if p.text_embedding else (identity.embedding if identity else None)
        subject = req.inputs.get("subject")
        token = subject.token if subject is not None else (ident_in or {}).get("meta", {}).get("token")
        return identity, motion, ti, token

    @staticmethod
    def _appearance(ctx: JobContext, req: JobRequest, p: ComposeParams, folder: Weights, device: torch.device,
                    dtype: torch.dtype, cond_dim: int, do_cfg: bool) -> tuple[torch.Tensor, torch.Tensor]:
        image = req.inputs.get("image")
        if image is not None:
            from sdk.ml.image import open_image

            enc = load_image_encoder(ctx, folder, device, dtype)
            c = enc.embed(open_image(image, field="image")).to(device, dtype)
            if c.shape[-1] != cond_dim:
                raise InvalidRequest(f"The appearance embedding has {c.shape[-1]} features; the motion adapter takes "
                                     f"{cond_dim}.", hint="Use the base weights the adapter was trained on.", field="image")
        else:
            c = torch.zeros(1, cond_dim, device=device, dtype=dtype)
        if not do_cfg:
            return c, torch.tensor([p.appearance_guide_strength_cond])
        return (torch.cat([torch.zeros_like(c), c]),
                torch.tensor([p.appearance_guide_strength_uncond, p.appearance_guide_strength_cond]))

    @staticmethod
    def _inverse_noise(ctx: JobContext, unet: torch.nn.Module, adapters: DreamVideoAdapters | None, text: Any,
                       motion: AdapterFile | None, latents: torch.Tensor, p: ComposeParams) -> torch.Tensor:
        if motion is None or not motion.latents:
            raise InvalidRequest("inverse_noise_strength needs the training latents of a motion adapter.",
                                 hint="Pick a motion Adapter trained with save_latents=true, or set "
                                      "inverse_noise_strength=0.", field="inverse_noise_strength")
        z = motion.latents[0].to(latents.device, latents.dtype)
        z = z[None] if z.ndim == 4 else z
        if tuple(z.shape[2:]) != tuple(latents.shape[2:]):
            raise InvalidRequest(f"The motion's training latents are {tuple(z.shape[2:])} (frames, h, w); this video "
                                 f"needs {tuple(latents.shape[2:])}.",
                                 hint="Use the training's num_frames and size, or inverse_noise_strength=0.",
                                 field="inverse_noise_strength")
        ctx.log.info("inverse noise: DDIM inversion of the motion's training latents (%d steps)", p.num_inference_steps)
        inverted = inverse_noise(unet, adapters, text, z, p.num_inference_steps, ctx)
        s = p.inverse_noise_strength
        return s ** 0.5 * inverted + (1 - s) ** 0.5 * latents


def _condition_dim(motion: AdapterFile | None) -> int | None:
    if motion is None:
        return None
    for k, v in motion.adapters.items():
        if k.endswith("condition_linear.weight"):
            return int(v.shape[1])
    return None


def _vectors(ti: TextualInversion | None, text: Any) -> dict[int, torch.Tensor] | None:
    if ti is None:
        return None
    pid = placeholder_id(text)
    out = {}
    for s, v in ti.string_to_param.items():
        tid = ti.string_to_token.get(s, -1)
        tid = pid if s == PLACEHOLDER or tid < 0 else tid
        if v.numel() != text.width:
            raise InvalidRequest(f"The text embedding has {v.numel()} features; this text encoder has {text.width}.",
                                 hint="Use the embedding trained on these base weights.", field="text_embedding")
        out[tid] = v.reshape(-1)
    return out


def _load(adapters: DreamVideoAdapters, unet: torch.nn.Module, kind: str, f: AdapterFile | None) -> None:
    from sdk.ml.convert import KeyMap

    if f is None:
        return
    km = KeyMap.for_model(unet)
    sd = km.vgen_to_diffusers(f.adapters)
    adapters.load(kind, sd, source=f"the {kind} adapter")
