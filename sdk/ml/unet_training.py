"""How VGen trains its video UNet, on a diffusers ``UNet3DConditionModel``: dropout where VGen has it, and the
spatial / temporal split of its parameters (vgen-notes §2).

- **Dropout.** VGen's ``ResBlock`` applies ``Dropout(p)`` (p = the UNet config's ``dropout``, 0.1 in every released
  training config) between ``out_layers``' SiLU and its last conv; its temporal conv block has ``Dropout(0.1)`` before
  the 2nd, 3rd and 4th Conv3d. diffusers builds ``UNet3DConditionModel``'s resnets with ``dropout=0.0`` (its
  ``ResnetBlock2D.dropout`` sits at the same place), while its ``TemporalConvLayer``s already have 0.1. Attention and
  feed-forward dropout are 0 on both sides. :func:`vgen_dropout` sets the resnets to VGen's p for a training run;
  dropout acts in train mode only, so inference (eval mode) is unchanged.
- **Spatial parameters** are the 682 keys of VGen's ``data/stable_diffusion_image_key_temporal_attention_x1.json``
  (the SD-2D part of the UNet): everything except the time embedding, the first temporal transformer and the
  temporal convs / transformers. VGen scales their gradient (``grad_scale``) when it trains them.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator

import torch

#: VGen's ``UNet.dropout`` in its training configs (t2v_train, dreamvideo, videolcm_t2v_train)
VGEN_RESNET_DROPOUT = 0.1
#: the children of ``UNet3DConditionModel`` itself
UNET3D_PARTS = frozenset({"conv_in", "time_proj", "time_embedding", "transformer_in", "down_blocks", "mid_block",
                          "up_blocks", "conv_norm_out", "conv_act", "conv_out"})
_TEMPORAL = re.compile(r"^(time_embedding|transformer_in)\.|\.(temp_convs|temp_attentions)\.")


def resnet_dropouts(unet: torch.nn.Module) -> list[torch.nn.Dropout]:
    """The ``Dropout`` of every ``ResnetBlock2D`` in ``unet`` (the place of VGen's ``out_layers`` dropout)."""
    from diffusers.models.resnet import ResnetBlock2D

    return [m.dropout for m in unet.modules() if isinstance(m, ResnetBlock2D)]


@contextmanager
def vgen_dropout(*unets: torch.nn.Module, p: float = VGEN_RESNET_DROPOUT) -> Iterator[None]:
    """Within the block, every resnet of ``unets`` drops with probability ``p`` in train mode, as VGen's ResBlocks do;
    the previous probabilities come back afterwards (the UNets may be cached and shared with generators). Train /
    eval mode is the caller's: dropout only acts in train mode."""
    saved = [(d, d.p) for u in unets for d in resnet_dropouts(u)]
    try:
        for d, _ in saved:
            d.p = float(p)
        yield
    finally:
        for d, old in saved:
            d.p = old


def is_spatial_key(diffusers_key: str) -> bool:
    """True for the keys VGen counts as spatial (its SD-2D key list), in diffusers ``UNet3DConditionModel`` names."""
    return not _TEMPORAL.search(diffusers_key)


def spatial_parameters(unet: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """``(name, parameter)`` of the spatial part of a diffusers 3D UNet. A subclass's extra branches (e.g. TF-T2V's
    ``pre_image_condition``) are not in VGen's key list, so they are not spatial."""
    return [(k, p) for k, p in unet.named_parameters() if k.split(".", 1)[0] in UNET3D_PARTS and is_spatial_key(k)]


def scale_gradients(params: list[tuple[str, torch.nn.Parameter]] | list[torch.nn.Parameter],
                    factor: float) -> list[torch.utils.hooks.RemovableHandle]:
    """Multiply the gradient of each parameter by ``factor`` as it is computed (VGen's ``grad_scale`` hook);
    returns the handles (``.remove()`` undoes it)."""
    out = []
    for item in params:
        p = item[1] if isinstance(item, tuple) else item
        if p.requires_grad:
            out.append(p.register_hook(lambda g, f=float(factor): g * f))
    return out


def clip_pixels(frames: Any, fps: float, p: Any, gen: torch.Generator) -> torch.Tensor:
    """A training clip: ``p.num_frames`` frames of ``frames`` (uint8 ``[F, H, W, 3]`` at ``fps``) at ``p.sample_fps``
    from a random start drawn from ``gen`` (a clip shorter than the span repeats its last frame), resized to cover
    ``p.height`` × ``p.width`` (bilinear, antialiased) and centre-cropped: ``[3, F, H, W]`` in [-1, 1]."""
    stride = max(1, round(fps / p.sample_fps))
    span = (p.num_frames - 1) * stride + 1
    start = int(torch.randint(0, max(1, len(frames) - span + 1), (1,), generator=gen))
    idx = [min(start + i * stride, len(frames) - 1) for i in range(p.num_frames)]
    x = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1  # [F,3,H,W]
    h, w = x.shape[-2:]
    scale = max(p.height / h, p.width / w)
    x = torch.nn.functional.interpolate(x, size=(max(p.height, round(h * scale)), max(p.width, round(w * scale))),
                                        mode="bilinear", antialias=True, align_corners=False)
    top, left = (x.shape[-2] - p.height) // 2, (x.shape[-1] - p.width) // 2
    return x[:, :, top:top + p.height, left:left + p.width].permute(1, 0, 2, 3).contiguous()


@torch.no_grad()
def encode_latents(vae: torch.nn.Module, pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``[B, 3, F, H, W]`` pixels → latents ``[B, 4, F, h, w]`` as VGen trains on them: the posterior sampled (noise
    from ``gen``) and scaled by the VAE's ``scaling_factor``; in the VAE's dtype."""
    b, c, f, h, w = pixels.shape
    x = pixels.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(vae.device, vae.dtype)
    dist = vae.encode(x).latent_dist
    z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen).to(dist.mean)
    z = z * vae.config["scaling_factor"]
    return z.reshape(b, f, *z.shape[1:]).permute(0, 2, 1, 3, 4)
