"""VGen ``UNetSD_I2VGen`` state dicts ↔ diffusers ``I2VGenXLUNet`` (numerics §3, rules 5–6).

On top of the T2V renaming in :mod:`sdk.ml.convert`: the image-branch modules get diffusers names, the frame
transformer's fused ``to_qkv`` is split into q, k, v row blocks (and fused again when writing), and ``conv_in``'s
concat-channel slice is doubled on load, because VGen adds the image-branch output to its zero concat tensor twice
while diffusers concatenates it once. ×2 and ×½ are exact in floating point, so a round trip is lossless.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch

from sdk.ml.convert import KeyMap, infer_unet3d_config

PASSTHROUGH = ("context_embedding.", "fps_embedding.")
_TE = "image_latents_temporal_encoder."
_VTE = "local_temporal_encoder.layers.0."
QKV = _VTE + "0.fn.to_qkv.weight"
_SPLIT = tuple(_VTE + f"0.fn.to_{n}.weight" for n in "qkv")  # interim names of the split fused weight
_TE_NAMES = {"norm1.": "0.norm.", "attn1.to_q.weight": "0.fn.to_q.weight", "attn1.to_k.weight": "0.fn.to_k.weight",
             "attn1.to_v.weight": "0.fn.to_v.weight", "attn1.to_out.0.": "0.fn.to_out.0.",
             "ff.net.0.proj.": "1.net.0.0.", "ff.net.2.": "1.net.2."}
#: channels of ``conv_in`` that read the image branch (after the 4 noisy-latent channels)
CONCAT = slice(4, 8)


def i2v_rule(key: str) -> str | None:
    """VGen name of an ``I2VGenXLUNet`` image-branch key (None: not an image-branch key)."""
    if key.startswith("image_latents_proj_in."):
        return "local_image_concat." + key.removeprefix("image_latents_proj_in.")
    if key.startswith("image_latents_context_embedding."):
        return "local_image_embedding." + key.removeprefix("image_latents_context_embedding.")
    if key.startswith(_TE):
        rest = key.removeprefix(_TE)
        for d, v in _TE_NAMES.items():
            if rest.startswith(d):
                return _VTE + v + rest[len(d):]
    return None


def keymap(model: torch.nn.Module) -> KeyMap:
    return KeyMap.for_model(model, extra=(i2v_rule,), passthrough=PASSTHROUGH)


def vgen_to_diffusers(sd: Mapping[str, torch.Tensor], km: KeyMap) -> dict[str, torch.Tensor]:
    """Rename a VGen I2VGen-XL state dict for ``I2VGenXLUNet``: split ``to_qkv``, double ``conv_in``'s concat slice."""
    sd = dict(sd)
    if QKV in sd:
        for name, part in zip(_SPLIT, sd.pop(QKV).chunk(3, dim=0)):
            sd[name] = part
    out = km.vgen_to_diffusers(sd)
    w = out.get("conv_in.weight")
    if w is not None and w.ndim == 4 and w.shape[1] >= CONCAT.stop and not w.is_meta:
        w = w.clone()
        w[:, CONCAT] *= 2
        out["conv_in.weight"] = w
    return out


def diffusers_to_vgen(sd: Mapping[str, torch.Tensor], km: KeyMap) -> dict[str, torch.Tensor]:
    """The inverse: halve ``conv_in``'s concat slice, rename, fuse q, k, v into ``to_qkv``."""
    sd = dict(sd)
    w = sd["conv_in.weight"].clone()
    w[:, CONCAT] *= 0.5
    sd["conv_in.weight"] = w
    out = km.diffusers_to_vgen(sd)
    if all(n in out for n in _SPLIT):
        out[QKV] = torch.cat([out.pop(n) for n in _SPLIT], dim=0)
    return out


def infer_i2vgen_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``I2VGenXLUNet`` kwargs from a VGen I2VGen-XL state dict's shapes (``conv_in`` reads latent + concat)."""
    from diffusers import I2VGenXLUNet

    cfg = infer_unet3d_config(sd)
    cfg["in_channels"] = cfg["in_channels"] // 2
    allowed = set(inspect.signature(I2VGenXLUNet.__init__).parameters) - {"self"}
    return {k: v for k, v in cfg.items() if k in allowed}


def load_vgen_i2v_unet(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *,
                       source: str = "VGen I2VGen-XL checkpoint") -> torch.nn.Module:
    """Build an ``I2VGenXLUNet`` (config inferred from shapes unless given) and strictly load a VGen state dict."""
    from diffusers import I2VGenXLUNet

    from sdk.ml.checkpoints import empty_model, load_into

    cfg = dict(config) if config else infer_i2vgen_config(sd)
    model = empty_model(lambda: I2VGenXLUNet(**cfg))
    load_into(model, vgen_to_diffusers(sd, keymap(model)), source=source)
    return model.eval()
