"""Models that methods share, loaded once per worker: one cache entry per component, keyed by the files it is read
from, whatever method asks for it.

ModelScope T2V v1.5, DreamVideo, TF-T2V, VideoLCM and I2VGen-XL (VGen layout) all read the SD 2.1 VAE from
``v2-1_512-ema-pruned.ckpt`` and OpenCLIP ViT-H from ``open_clip_pytorch_model.bin``. Their ``load_components``
assemble the dict a generator uses from :func:`vae`, :func:`text_encoder`, :func:`image_encoder` and :func:`unet`;
each goes through ``ctx.models.get(key, load, role=...)`` with a key made of

- what is built: the role and the loader's variant (e.g. a text encoder cut to ``skip_last_layers``),
- the identity of every file read: device and inode (so hard links to one file — the same weights registered
  under two ids, :func:`sdk.weights.fetch` — are one file; the resolved path where the file system has no inode
  numbers), size and mtime (a replaced file is a new entry),
- the dtype and the device the model is placed on.

So two methods on the same files share one instance: the second pays no load. The role tells the job's memory mode
(:mod:`sdk.ml.memory`) what the model is: on the CPU, ``low``/``minimum`` free the *encoders* once the denoiser
starts, and only their entries are dropped; the UNet and VAE stay loaded for the next job.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from sdk.ml.device import configure_attention, place

DENOISER, VAE, ENCODER, OTHER = "denoiser", "vae", "encoder", "other"
ROLES = (DENOISER, VAE, ENCODER, OTHER)


# -- keys ---------------------------------------------------------------------------------------------------------
def file_identity(path: str | Path) -> str:
    """``dev:inode:size:mtime_ns`` of ``path`` (hard links share it), or ``resolved path:size:mtime_ns`` where the
    file system reports no inode numbers."""
    p = Path(path)
    st = p.stat()
    where = f"{st.st_dev}:{st.st_ino}" if st.st_ino else str(p.resolve())
    return f"{where}:{st.st_size}:{st.st_mtime_ns}"


def _name(dtype: torch.dtype | str) -> str:
    return str(dtype).removeprefix("torch.")


def component_key(role: str, variant: str, files: Iterable[str | Path], dtype: torch.dtype | str,
                  device: torch.device | str) -> tuple[str, tuple[str, ...]]:
    """``(cache key, file identities)`` of a component built by ``variant`` from ``files``, placed in ``dtype`` on
    ``device``. The key starts with the role and the first file's name, so ``cache.keys`` read well in logs."""
    files = [Path(f) for f in files]
    ids = tuple(file_identity(f) for f in files)
    digest = hashlib.sha1("|".join(ids).encode()).hexdigest()[:16]
    return f"{role}:{variant}:{files[0].name if files else ''}@{digest}|{_name(dtype)}|{torch.device(device)}", ids


def _config_digest(config: Any) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12] if config else "-"


def read_once(path: str | Path, **kwargs: Any) -> Callable[[], dict[str, torch.Tensor]]:
    """A callable that reads the state dict of ``path`` the first time it is called and returns the same dict
    after: give it as ``state=`` to several loaders of one file (OpenCLIP's text and vision towers) so that a job
    which misses both reads the file once; a job that hits both never reads it."""
    from sdk.ml.checkpoints import load_state_dict

    return functools.cache(lambda: load_state_dict(path, **kwargs))


def _get(ctx: Any, role: str, key: str, ids: tuple[str, ...], load: Callable[[], Any]) -> Any:
    return ctx.models.get(key, load, role=role, files=ids)


# -- components ---------------------------------------------------------------------------------------------------
def vae(ctx: Any, path: str | Path, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    """The VAE at ``path``: an LDM checkpoint (``v2-1_512-ema-pruned.ckpt``, keys ``first_stage_model.*``) or a
    diffusers ``vae/`` folder; cached per file, dtype and device (role ``vae``)."""
    from sdk.ml.checkpoints import find_weights_file
    from sdk.ml.vae import load_ldm_vae, load_vae_folder

    path = _existing(path, "VAE")
    if path.is_dir():
        files = [find_weights_file(path, ("diffusion_pytorch_model",)), path / "config.json"]
        key, ids = component_key(VAE, "diffusers", files, dtype, device)
        return _get(ctx, VAE, key, ids, lambda: place(load_vae_folder(path), device, dtype))
    key, ids = component_key(VAE, "ldm", [path], dtype, device)
    return _get(ctx, VAE, key, ids, lambda: place(load_ldm_vae(path), device, dtype))


def text_encoder(ctx: Any, path: str | Path, dtype: torch.dtype, device: torch.device, *,
                 tokenizer: str | Path | None = None, skip_last_layers: int = 0,
                 state: Callable[[], dict[str, torch.Tensor]] | None = None) -> Any:
    """A :class:`sdk.ml.text.TextEncoder`: from ``open_clip_pytorch_model.bin`` (penultimate layer, open_clip's
    tokenizer; ``state`` may give the file's state dict already read, see :func:`read_once`), or from a transformers
    ``text_encoder/`` folder with its ``tokenizer`` folder (``skip_last_layers`` as diffusers' ``clip_skip``).
    Cached per files, variant, dtype and device (role ``encoder``)."""
    from sdk.ml import text as t
    from sdk.ml.checkpoints import find_weights_file

    path = _existing(path, "text encoder")
    if path.is_dir():
        if tokenizer is None:
            raise ValueError("a text_encoder/ folder needs its tokenizer/ folder")
        tok = Path(tokenizer)
        files = [find_weights_file(path, ("model", "pytorch_model")), path / "config.json", *_tokenizer_files(tok)]
        key, ids = component_key(ENCODER, f"clip-text-skip{int(skip_last_layers)}", files, dtype, device)
        return _get(ctx, ENCODER, key, ids, lambda: place(
            t.load_diffusers_text_encoder(path, tok, skip_last_layers=skip_last_layers), device, dtype))

    def load() -> Any:
        if state is None:
            return t.load_openclip_text_encoder(path)
        return t.TextEncoder(t.clip_text_from_openclip_state(state(), source=path.name), t.openclip_tokenizer())

    key, ids = component_key(ENCODER, "openclip-text-penultimate", [path], dtype, device)
    return _get(ctx, ENCODER, key, ids, lambda: place(load(), device, dtype))


def image_encoder(ctx: Any, path: str | Path, dtype: torch.dtype, device: torch.device, *,
                  feature_extractor: str | Path | None = None, head_width: int | None = None,
                  state: Callable[[], dict[str, torch.Tensor]] | None = None) -> Any:
    """A :class:`sdk.ml.image.ImageEncoder`: the vision tower of ``open_clip_pytorch_model.bin`` (``head_width`` as
    :func:`sdk.ml.image.openclip_vision_config`; ``state`` as in :func:`text_encoder`), or a diffusers
    ``image_encoder/`` folder with its ``feature_extractor`` folder. Cached like the others (role ``encoder``)."""
    from sdk.ml import image as im
    from sdk.ml.checkpoints import find_weights_file

    path = _existing(path, "image encoder")
    if path.is_dir():
        fe = Path(feature_extractor) if feature_extractor else None
        pre = [fe / "preprocessor_config.json"] if fe is not None and (fe / "preprocessor_config.json").exists() else []
        files = [find_weights_file(path, ("model", "pytorch_model")), path / "config.json", *pre]
        key, ids = component_key(ENCODER, "clip-vision", files, dtype, device)
        return _get(ctx, ENCODER, key, ids, lambda: place(im.load_image_encoder_folder(path, fe), device, dtype))

    def load() -> Any:
        if state is None:
            return im.load_openclip_image_encoder(path, head_width=head_width)
        vision = im.clip_vision_from_openclip_state(state(), head_width=head_width, source=path.name)
        return im.ImageEncoder(vision, vision.config.image_size)

    key, ids = component_key(ENCODER, f"openclip-vision-h{head_width or 'auto'}", [path], dtype, device)
    return _get(ctx, ENCODER, key, ids, lambda: place(load(), device, dtype))


def unet(ctx: Any, files: str | Path | Iterable[str | Path], dtype: torch.dtype, device: torch.device,
         load: Callable[[], torch.nn.Module], *, kind: str, config: Any = None) -> torch.nn.Module:
    """The denoiser ``load()`` builds from ``files`` (the checkpoint first, then e.g. its ``config.json``), placed in
    ``dtype`` on ``device`` with the attention backend set (:func:`attention` tells which). ``kind`` names the
    model class and conversion (two loaders of one file must differ in it unless they build the same model) and
    ``config`` the constructor kwargs when given. Cached like the others (role ``denoiser``)."""
    files = [files] if isinstance(files, (str, Path)) else list(files)
    key, ids = component_key(DENOISER, f"{kind}-{_config_digest(config)}", files, dtype, device)

    def build() -> torch.nn.Module:
        model = place(load(), device, dtype)
        model._vgen_attention = configure_attention(model, device)
        return model

    return _get(ctx, DENOISER, key, ids, build)


def vgen_unet3d(ctx: Any, path: str | Path, dtype: torch.dtype, device: torch.device, *,
                config: dict[str, Any] | None = None) -> torch.nn.Module:
    """The ModelScope 3D UNet of a VGen ``.pth`` (ModelScope T2V v1.5 and DreamVideo read the same file), built with
    ``config`` or the config its shapes imply (:func:`sdk.ml.convert.load_vgen_unet`)."""
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.convert import load_vgen_unet

    path = _existing(path, "UNet")
    return unet(ctx, path, dtype, device, lambda: load_vgen_unet(load_state_dict(path), config, source=path.name),
                kind="vgen-unet3d", config=config)


def diffusers_unet(ctx: Any, folder: str | Path, dtype: torch.dtype, device: torch.device,
                   model_class: type) -> torch.nn.Module:
    """The denoiser of a diffusers pipeline's ``unet/`` ``folder`` (``config.json`` + weights) as ``model_class``."""
    from sdk.ml.checkpoints import find_weights_file
    from sdk.ml.weights_layout import load_diffusers_unet

    folder = _existing(folder, "UNet")
    files = [find_weights_file(folder, ("diffusion_pytorch_model",)), folder / "config.json"]
    return unet(ctx, files, dtype, device, lambda: load_diffusers_unet(folder.parent, model_class.from_config),
                kind=f"diffusers-{model_class.__name__}")


def attention(model: torch.nn.Module) -> str:
    """The attention backend :func:`unet` set on ``model`` (``sdpa`` or ``xformers``)."""
    return str(getattr(model, "_vgen_attention", "sdpa"))


def _existing(path: str | Path, what: str) -> Path:
    from sdk.ml.checkpoints import require_file

    return require_file(Path(path), f"{what} weights")


def _tokenizer_files(folder: Path) -> list[Path]:
    names = [n for n in ("vocab.json", "merges.txt") if (folder / n).exists()]
    return [folder / n for n in (names if len(names) == 2 else ["tokenizer.json"]) if (folder / n).exists()] or [folder]


def device_of(ctx: Any) -> torch.device:
    """The device a job's models go on (``ctx.device`` may be "auto")."""
    from sdk.ml.device import resolve_device

    return resolve_device(ctx.device)


def cached_model(ctx: Any, variant: str, file: Path, dtype: torch.dtype, load: Callable[[], torch.nn.Module]) -> Any:
    """``load()`` once per file, dtype and device in the worker's model cache (``ctx.models``; role "other"): a
    metric's model, or one a trainer shares with a metric (InstructVideo's reward and the HPSv2 metric)."""
    key, ids = component_key("metric", variant, [file], dtype, device_of(ctx))
    return ctx.models.get(key, load, role="other", files=ids)
