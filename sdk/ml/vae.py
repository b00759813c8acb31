"""The SD 2.1 VAE (``AutoencoderKL``, scaling 0.18215) from a diffusers folder or the LDM checkpoint
``v2-1_512-ema-pruned.ckpt`` (keys ``first_stage_model.*``), and chunked video decoding."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.ml.checkpoints import (empty_model, find_weights_file, load_into, load_state_dict, read_json, require_file,
                                select_prefix)

SCALING_FACTOR = 0.18215
LDM_PREFIX = "first_stage_model."
_RESNET = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "conv_shortcut": "nin_shortcut"}
_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def diffusers_to_ldm_vae_key(key: str, num_up_blocks: int) -> str:
    """LDM (``ldm.modules.diffusionmodules.model``) name of a diffusers ``AutoencoderKL`` key."""
    k = key.replace("conv_norm_out", "norm_out")
    m = re.match(r"^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)$", k)
    if m:
        side, kind, b, part, j, rest = m.groups()
        b = int(b) if kind == "down" else num_up_blocks - 1 - int(b)
        if part == "resnets":
            head, _, tail = rest.partition(".")
            return f"{side}.{kind}.{b}.block.{j}.{_RESNET[head]}.{tail}"
        return f"{side}.{kind}.{b}.{'downsample' if kind == 'down' else 'upsample'}.{rest}"
    m = re.match(r"^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", k)
    if m:
        side, part, j, rest = m.groups()
        if part == "resnets":
            head, _, tail = rest.partition(".")
            return f"{side}.mid.block_{int(j) + 1}.{_RESNET[head]}.{tail}"
        head, _, tail = rest.rpartition(".")
        return f"{side}.mid.attn_1.{_ATTN[head]}.{tail}"
    return k


def _is_attn_linear(key: str) -> bool:
    return bool(re.search(r"mid_block\.attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$", key))


def ldm_to_diffusers_vae(sd: Mapping[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename an LDM VAE state dict for ``model``; the attention 1×1 convs become Linear weights."""
    n_up = len(model.config["up_block_types"])
    table = {diffusers_to_ldm_vae_key(k, n_up): k for k in model.state_dict()}
    out = {}
    for lk, t in sd.items():
        dk = table.get(lk, lk)
        if _is_attn_linear(dk) and t.ndim == 4:
            t = t[:, :, 0, 0]
        out[dk] = t
    return out


def diffusers_to_ldm_vae(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    n_up = len(model.config["up_block_types"])
    return {diffusers_to_ldm_vae_key(k, n_up): (v[:, :, None, None] if _is_attn_linear(k) else v)
            for k, v in model.state_dict().items()}


def infer_ldm_vae_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``AutoencoderKL`` kwargs from an LDM VAE state dict's shapes (LDM hard-codes GroupNorm(32))."""
    try:
        levels = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.down."))
        layers = 1 + max(int(k.split(".")[4]) for k in sd if k.startswith("encoder.down.0.block."))
        channels = tuple(int(sd[f"encoder.down.{i}.block.0.conv2.weight"].shape[0]) for i in range(levels))
        latent = int(sd["post_quant_conv.weight"].shape[0])
        in_ch = int(sd["encoder.conv_in.weight"].shape[1])
        out_ch = int(sd["decoder.conv_out.weight"].shape[0])
    except (KeyError, ValueError) as exc:
        raise IncompatibleCheckpoint(f"This is not a Stable Diffusion VAE checkpoint (no {exc} key).",
                                     hint="Give v2-1_512-ema-pruned.ckpt (keys first_stage_model.*).") from None
    return dict(in_channels=in_ch, out_channels=out_ch, block_out_channels=channels, layers_per_block=layers,
                down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
                latent_channels=latent, norm_num_groups=32, sample_size=512, scaling_factor=SCALING_FACTOR)


def load_ldm_vae(path: str | Path) -> torch.nn.Module:
    """From an LDM checkpoint holding ``first_stage_model.*`` (or a bare VAE state dict)."""
    from diffusers import AutoencoderKL

    path = require_file(Path(path), "VAE checkpoint")
    full = load_state_dict(path, strip=())
    sd = select_prefix(full, LDM_PREFIX) or full
    cfg = infer_ldm_vae_config(sd)
    model = empty_model(lambda: AutoencoderKL(**cfg))
    load_into(model, ldm_to_diffusers_vae(sd, model), source=path.name)
    return model.eval()


def load_vae_folder(folder: str | Path) -> torch.nn.Module:
    """From a diffusers ``vae/`` folder (config.json + diffusion_pytorch_model.safetensors/.bin)."""
    from diffusers import AutoencoderKL

    folder = require_file(Path(folder), "VAE folder")
    cfg = {k: v for k, v in read_json(folder / "config.json").items() if not k.startswith("_")}
    model = empty_model(lambda: AutoencoderKL.from_config(cfg))
    load_into(model, load_state_dict(find_weights_file(folder, ("diffusion_pytorch_model",)), strip=()),
              source=f"{folder.name}/ weights")
    return model.eval()


def scale_factor(vae: torch.nn.Module) -> int:
    return 2 ** (len(vae.config["block_out_channels"]) - 1)


def latent_factor(vae: torch.nn.Module, height: int, width: int) -> int:
    """The VAE's scale factor, checked against the requested video size.

    Raises :class:`InvalidRequest` (field ``height``) when ``height`` or ``width`` is not a multiple of it."""
    factor = scale_factor(vae)
    if height % factor or width % factor:
        raise InvalidRequest(f"Size {width}×{height} is not a multiple of {factor}.",
                             hint=f"Use a width and height divisible by {factor}.", field="height")
    return factor


#: VAEs at least this big (the SD VAE: 84 M) decode in channels-last layout on the CPU; tiny test twins stay as built
FAST_DECODE_MIN_PARAMS = 10_000_000


def _fast_cpu_decode(vae: torch.nn.Module) -> bool:
    from sdk.ml.accel import mode, param_count

    p = next(vae.parameters())
    return p.device.type == "cpu" and mode() != "off" and param_count(vae) >= FAST_DECODE_MIN_PARAMS


@torch.inference_mode()
def decode_video(vae: torch.nn.Module, latents: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Latents ``[B,C,F,h,w]`` → float pixels ``[B,F,3,H,W]`` in [-1, 1], decoding ``chunk`` frames at a time
    (at most what the job's memory mode allows: :mod:`sdk.ml.memory` sets ``vae._vgen_decode_chunk_cap``; peak
    memory grows with it, the time barely does). Decodes in the VAE's dtype; a real-size VAE on the CPU runs in
    channels-last layout (oneDNN's fast convolutions: 1.1 → 2.4 TFLOP/s in bf16 with AMX, ~+10 % in fp32)."""
    b, c, f, h, w = latents.shape
    x = (latents / vae.config["scaling_factor"]).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    x = x.to(vae.dtype)
    fast = _fast_cpu_decode(vae)
    if fast:
        from sdk.ml.accel import channels_last_

        channels_last_(vae)
    step = chunk if chunk and chunk > 0 else b * f
    cap = getattr(vae, "_vgen_decode_chunk_cap", None)
    step = min(step, cap) if cap else step
    parts = []
    for i in range(0, b * f, step):
        xi = x[i:i + step]
        if fast:
            xi = xi.contiguous(memory_format=torch.channels_last)
        parts.append(vae.decode(xi).sample.float())  # each chunk to fp32 at once: only one chunk in the VAE dtype
    img = torch.cat(parts)
    return img.reshape(b, f, *img.shape[1:])


def to_uint8(pixels: torch.Tensor) -> Any:
    """[-1,1] float ``[F,3,H,W]`` → uint8 ``[F,H,W,3]`` numpy (rounded like diffusers' ``numpy_to_pil``)."""
    x = (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    return (x * 255).round().to(torch.uint8).cpu().numpy()
