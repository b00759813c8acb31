"""CogVideoX (THUDM) for the ``cogvideox`` and ``exvideo`` plugins: model defaults, a pipeline built from cached
components, one render loop with previews / progress / cancel, and latent → RGB previews for its 16-channel VAE.

The pipeline *is* diffusers' own ``CogVideoXPipeline`` / ``CogVideoXImageToVideoPipeline`` /
``CogVideoXVideoToVideoPipeline`` (so frames match ``from_pretrained(folder)`` exactly), but its transformer, VAE
and T5 encoder come from ``ctx.models`` with the roles ``denoiser`` / ``vae`` / ``encoder``: the worker's memory
modes (:mod:`sdk.ml.memory`) and precision (quantization of the denoiser) apply to them generically, and two jobs
on the same files share one instance whatever kind they are.

Weights folders are diffusers' hub layout (``model_index.json``, ``scheduler/``, ``text_encoder/``, ``tokenizer/``,
``transformer/``, ``vae/``); :func:`write_twin` writes one at tiny or real size (:mod:`sdk.ml.cogvideox_twin`).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from sdk.errors import InvalidRequest, WeightsMissing
from sdk.ml.cogvideox_models import (APACHE, COG_LICENCE, EXVIDEO_GENERATOR, EXVIDEO_WEIGHTS, KINDS,  # noqa: F401
                                     MAX_FRAMES, MODELS, CogModel, check_frames, frames_problem)


# -- components ---------------------------------------------------------------------------------------------------
_PIPELINES = {"t2v": "CogVideoXPipeline", "i2v": "CogVideoXImageToVideoPipeline",
              "v2v": "CogVideoXVideoToVideoPipeline"}


@functools.cache
def _pipeline_class(kind: str) -> type:
    """diffusers' pipeline for ``kind``, with its execution device pinned to where the job runs: under the memory
    modes a component may sit on the CPU between calls, and the latents must still be made on the device."""
    import diffusers

    base = getattr(diffusers, _PIPELINES[kind])
    return type(base.__name__, (base,), {
        "_execution_device": property(
            lambda self: getattr(self, "_vgen_device", None) or base._execution_device.fget(self)),
        "__doc__": base.__doc__})


def _files(folder: Path) -> list[Path]:
    """The files a component is read from: weights first (sorted), then the configs and a tokenizer's SentencePiece
    model (cache-key identity)."""
    weights = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    return weights + sorted(p for p in folder.iterdir() if p.suffix in (".json", ".model"))


_LAYOUT_HINT = ("Give the folder of a diffusers CogVideoX snapshot (model_index.json, scheduler/, text_encoder/, "
                "tokenizer/, transformer/, vae/), e.g. `vgen models fetch cogvideox-2b`.")


def _require(folder: Path, sub: str) -> Path:
    path = folder / sub
    if not path.is_dir():
        raise WeightsMissing(f"The CogVideoX weights folder {folder} has no {sub}/ folder.", hint=_LAYOUT_HINT)
    return path


def _component(ctx: Any, role: str, variant: str, folder: Path, dtype: torch.dtype, device: torch.device,
               load: Callable[[], Any]) -> Any:
    from sdk.ml.components import component_key

    key, ids = component_key(role, variant, _files(folder), dtype, device)
    return ctx.models.get(key, load, role=role, files=ids)


def load_pipeline(ctx: Any, folder: str | Path, kind: str, *, transformer_patch: Callable[[Any], Any] | None = None,
                  patch_id: str = "") -> Any:
    """A diffusers CogVideoX pipeline of ``kind`` (``t2v``/``i2v``/``v2v``) over the snapshot in ``folder``; its
    transformer, VAE and text encoder come from ``ctx.models`` (roles denoiser / vae / encoder) in the job's dtype
    on its device. ``transformer_patch(transformer)`` (a LoRA fuse, say) runs on a freshly loaded transformer (on
    the CPU, in the job's dtype, before it is placed and before any quantization), and may return a replacement;
    ``patch_id`` keeps the patched one apart in the cache."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Tokenizer

    from sdk.ml.device import place, resolve_device, resolve_dtype

    if kind not in KINDS:
        raise ValueError(f"unknown CogVideoX kind {kind!r}; use one of {', '.join(KINDS)}")
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise WeightsMissing(f"{folder} is not a CogVideoX snapshot: it has no model_index.json.", hint=_LAYOUT_HINT)
    device = resolve_device(ctx.device)
    dtype = resolve_dtype(ctx.dtype, device)
    tdir, vdir, edir, kdir = (_require(folder, s) for s in ("transformer", "vae", "text_encoder", "tokenizer"))

    def load_transformer() -> Any:
        model = CogVideoXTransformer3DModel.from_pretrained(tdir, torch_dtype=dtype)
        if transformer_patch is not None:
            model = transformer_patch(model) or model
        _install_cancel_checks(model)  # before place(): the CPU fast path fingerprints the module's hooks
        model = place(model, device, dtype)
        model._vgen_attention = "sdpa"  # CogVideoX's own processor (rotary embeddings): never swapped for xformers
        return model

    variant = "cogvideox-transformer" + (f"+{patch_id}" if patch_id else "")
    transformer = _component(ctx, "denoiser", variant, tdir, dtype, device, load_transformer)
    vae = _component(ctx, "vae", "cogvideox-vae", vdir, dtype, device,
                     lambda: place(AutoencoderKLCogVideoX.from_pretrained(vdir, torch_dtype=dtype), device, dtype))
    text_encoder = _component(ctx, "encoder", "t5-encoder", edir, dtype, device, lambda: _load_t5(edir, dtype, device))
    tokenizer = _component(ctx, "other", "t5-tokenizer", kdir, dtype, torch.device("cpu"),
                           lambda: T5Tokenizer.from_pretrained(kdir))
    scheduler = _scheduler(folder)
    pipe = _pipeline_class(kind)(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                                 scheduler=scheduler)
    pipe._vgen_device = device
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_t5(folder: Path, dtype: torch.dtype, device: torch.device) -> Any:
    """T5-XXL as transformers loads it: in fp16 its ``wo`` projections stay fp32 (``_keep_in_fp32_modules``;
    T5 v1.1 overflows to inf in fp16 there), so it is moved, not cast (:func:`sdk.ml.device.place` casts every
    tensor)."""
    from transformers import T5EncoderModel

    return T5EncoderModel.from_pretrained(folder, dtype=dtype).to(device).eval()


def _install_cancel_checks(model: Any) -> None:
    """Forward pre-hooks on the transformer and each of its blocks that call the running job's cancel check
    (``model._vgen_cancel``, set by :func:`render` for the length of a render): a cancel stops within a step.
    Installed once per loaded transformer, so the module's hooks never change between jobs; skipped while
    ``torch.compile`` traces (the CPU fast path), where the per-step check in :func:`render` still applies."""
    def check(*_: Any) -> None:
        fn = getattr(model, "_vgen_cancel", None)
        if fn is not None and not torch.compiler.is_compiling():
            fn()

    model._vgen_cancel = None
    model.register_forward_pre_hook(check)
    for block in getattr(model, "transformer_blocks", []):
        block.register_forward_pre_hook(check)


def _scheduler(folder: Path) -> Any:
    import diffusers

    sdir = _require(folder, "scheduler")
    config = json.loads((sdir / "scheduler_config.json").read_text())
    cls = getattr(diffusers, str(config.get("_class_name", "CogVideoXDDIMScheduler")), None)
    if cls is None or not str(config.get("_class_name", "")).startswith("CogVideoX"):
        cls = diffusers.CogVideoXDDIMScheduler
    return cls.from_pretrained(sdir)


# -- previews -----------------------------------------------------------------------------------------------------
def fit_images(n: int = 12, size: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` smooth random colour fields ``[n,3,size,size]`` in [−1, 1] (bilinear up from 4×4 random colours):
    texture within each image, since the VAE's group norms erase a flat colour's level."""
    gen = torch.Generator().manual_seed(seed)
    grid = torch.rand(n, 3, 4, 4, generator=gen) * 2 - 1
    return torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=True)


@torch.inference_mode()
def fit_latent_rgb(vae: Any, *, images: torch.Tensor | None = None) -> torch.Tensor:
    """A ``[17,3]`` latent → RGB map (16 channel weights + a bias row) fitted by least squares on ``vae`` itself:
    :func:`fit_images` are encoded as one-frame videos (posterior mode × scaling factor, as the pipeline's latents
    are) and the map is what best sends each latent pixel to its area-averaged colour in [−1, 1]. No published
    factors exist for CogVideoX's 16-channel VAE; this costs one small encode per VAE and is stored on it."""
    cached = getattr(vae, "_vgen_latent_rgb", None)
    if cached is not None and images is None:
        return cached
    x = (fit_images() if images is None else images).float()
    param = next(vae.parameters())
    dev = param.device if param.device.type != "meta" else torch.device("cpu")
    post = vae.encode(x.unsqueeze(2).to(dev, param.dtype)).latent_dist
    lat = post.mode().float().cpu() * float(vae.config.scaling_factor)  # [N,16,1,h,w]
    n, c, _, h, w = lat.shape
    target = torch.nn.functional.interpolate(x, size=(h, w), mode="area")  # [N,3,h,w]
    a = torch.cat([lat[:, :, 0].permute(0, 2, 3, 1).reshape(-1, c), torch.ones(n * h * w, 1)], 1)
    y = target.permute(0, 2, 3, 1).reshape(-1, 3)
    factors = torch.linalg.solve(a.T @ a + 1e-3 * torch.eye(c + 1), a.T @ y)  # ridge: [c+1, 3]
    if images is None:
        vae._vgen_latent_rgb = factors
    return factors


@torch.inference_mode()
def latents_to_rgb(latents: Any, factors: torch.Tensor | None = None) -> np.ndarray:
    """CogVideoX latents ``[B,F,16,h,w]`` (the pipeline's layout; first batch item) or ``[F,16,h,w]`` → uint8
    ``[F,h,w,3]``. ``factors`` is a ``[17,3]`` map from :func:`fit_latent_rgb`; without one, the channels' mean
    is shown in grey (shapes and motion, no colour)."""
    x = latents if isinstance(latents, torch.Tensor) else torch.as_tensor(np.asarray(latents))
    if x.ndim == 5:
        x = x[0]
    if x.ndim != 4:
        raise ValueError(f"expected CogVideoX latents [B,F,C,h,w] or [F,C,h,w], got {tuple(x.shape)}")
    x = x.detach().float().cpu()
    if factors is None or factors.shape[0] != x.shape[1] + 1:
        grey = x.mean(1, keepdim=True).clamp(-1, 1)
        rgb = grey.expand(-1, 3, -1, -1).permute(0, 2, 3, 1)
    else:
        f = factors.float().cpu()
        rgb = torch.einsum("fchw,cr->fhwr", x, f[:-1]) + f[-1]
    return rgb.add(1.0).mul(127.5).clamp(0, 255).to(torch.uint8).numpy()


# -- rendering ----------------------------------------------------------------------------------------------------
def _pil_frames(frames: Any) -> list[Any]:
    from PIL import Image

    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    return [Image.fromarray(f.astype(np.uint8)).convert("RGB") for f in arr]


def render(ctx: Any, pipe: Any, *, prompt: str, negative_prompt: str, frames: int, height: int, width: int,
           steps: int, guidance: float, dynamic_cfg: bool, seed: int, image: Any = None, video: Any = None,
           strength: float | None = None) -> np.ndarray:
    """Run ``pipe`` (from :func:`load_pipeline`) once: uint8 frames ``[F,H,W,3]``. ``image`` (uint8 ``[H,W,3]`` or
    a PIL image) for image-to-video, ``video`` (uint8 ``[F,H,W,3]`` or PIL frames) and ``strength`` for
    video-to-video. The seed means ``torch.Generator("cpu").manual_seed(seed)``, as in diffusers. Sends progress
    and a preview after every step and stops within a step when the job is cancelled (a check before each
    transformer block)."""
    kind = next(k for k, name in _PIPELINES.items() if type(pipe).__name__ == name)
    kwargs: dict[str, Any] = dict(
        prompt=prompt, negative_prompt=negative_prompt or None, height=height, width=width,
        num_inference_steps=steps, guidance_scale=guidance, use_dynamic_cfg=dynamic_cfg,
        generator=ctx.generator(seed), output_type="np")
    if kind == "i2v":
        if image is None:
            raise InvalidRequest("Image-to-video needs an image.", hint="Give --image FILE.", field="image")
        kwargs.update(image=image if hasattr(image, "convert") else _pil_frames(image)[0], num_frames=frames)
    elif kind == "v2v":
        if video is None:
            raise InvalidRequest("Video-to-video needs a source video.", hint="Give --input video=FILE.", field="video")
        clip = video if isinstance(video, list) else _pil_frames(video)
        kwargs.update(video=clip[:frames], strength=0.8 if strength is None else float(strength))
    else:
        kwargs.update(num_frames=frames)
    factors = fit_latent_rgb(pipe.vae)

    def on_step(p: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        total = int(getattr(p, "_num_timesteps", steps) or steps)
        ctx.progress(i + 1, total)
        ctx.preview(latents_to_rgb(tensors["latents"], factors), i + 1, total)
        ctx.check_cancelled()
        return {}

    transformer = pipe.transformer
    if not hasattr(transformer, "_vgen_cancel"):  # a transformer not loaded by load_pipeline
        _install_cancel_checks(transformer)
    transformer._vgen_cancel = ctx.check_cancelled
    try:
        ctx.check_cancelled()
        with torch.inference_mode():
            out = pipe(callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"], **kwargs)
    finally:
        transformer._vgen_cancel = None
    return to_uint8(out.frames[0])


def to_uint8(frames: Any) -> np.ndarray:
    """diffusers' ``output_type="np"`` frames (float in [0, 1]) → uint8, rounded as PIL output would be."""
    arr = np.asarray(frames, dtype=np.float32)
    return (arr * 255.0).round().clip(0, 255).astype(np.uint8)


def write_twin(folder: str | Path, *, variant: str = "2b", size: str = "tiny", seed: int = 0) -> Path:
    """A CogVideoX snapshot of random weights in the hub's diffusers layout (loadable by diffusers'
    ``from_pretrained``): ``variant`` 2b / 5b / 5b-i2v / 1.5-5b, ``size`` tiny (tests) or real (GPU checks)."""
    from sdk.ml.cogvideox_twin import write_twin as _write

    return _write(Path(folder), variant=variant, size=size, seed=seed)
