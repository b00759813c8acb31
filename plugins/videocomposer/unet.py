"""VideoComposer's composition-enabled UNet (vgen-notes §7): VGen's ``UNetSD_TFT2V`` / ``UNetSD_VideoLCM`` built with
``video_compositions = [text, mask, depthmap, sketch, motion, image, local_image, single_sketch]``.

It is the shared :class:`~sdk.ml.concat_unet.ConcatUNet` (12-channel ``conv_in``, optional style-image tokens) whose
8 concat channels, zero in text-to-video mode, are filled by one small encoder per condition (VGen's STC encoder):

- a 2D stem per frame: conv 3×3 → 32, SiLU, average-pool to half the video size, conv 3×3 stride 2, SiLU,
  conv 3×3 stride 2 → 8 channels on the latent grid;
- a one-layer pre-norm transformer over the frames at each latent pixel (2 heads of 8, GELU feed-forward 8→32→8):
  diffusers' ``I2VGenXLTransformerTemporalEncoder`` computes exactly VGen's ``Transformer_v2`` of depth 1.

The encoders' outputs are summed (in VGen's order) into the concat tensor; a condition left out adds nothing, which is
how VGen's ``partial_keys`` select a subset. The style image is the ``pre_image_condition`` branch of ``ConcatUNet``.

Conditions are ``[B, C, F, H, W]`` tensors at the video's resolution (VGen's value ranges: depth in [0, 10], sketches
and the local image in [0, 1], the masked video as ``[RGB·(1−m) in [−1, 1], 1−m]``). VGen pools to a fixed
``config.resolution / 2``; here the pool size follows the sample's latent grid (×4), which is the same size whenever
VGen runs at all and lets a condition of any size meet the grid.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from diffusers.models.unets.unet_i2vgen_xl import I2VGenXLTransformerTemporalEncoder

from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.ml.concat_unet import IMAGE_BRANCH, ConcatUNet, infer_concat_unet_config
from sdk.ml.convert import KeyMap

#: input channels of each condition's stem (the arguments of VGen's UNet forward)
CONDITION_CHANNELS: dict[str, int] = {"depth": 1, "local_image": 3, "motion": 2, "canny": 1, "sketch": 1,
                                      "single_sketch": 1, "masked": 4}
#: the order VGen adds them to the concat tensor (the order of the float sums)
ORDER = tuple(CONDITION_CHANNELS)
#: the conditions the released vcomposer checkpoints hold (canny is supported by the class, not released)
RELEASED_CONDITIONS = ("depth", "local_image", "motion", "sketch", "single_sketch", "masked")
TEMPORAL_HEADS = 2  # VGen hard-codes 2 heads of concat_dim channels


def vgen_prefixes(condition: str) -> tuple[str, str]:
    """VGen's module names of a condition's stem and its frame transformer (the masked video's second one is
    ``mask_embedding_after``)."""
    if condition == "masked":
        return "masked_embedding", "mask_embedding_after"
    return f"{condition}_embedding", f"{condition}_embedding_after"


class ConditionEncoder(torch.nn.Module):
    """One condition's branch: ``[B, C, F, H, W]`` → ``[B, out, F, h, w]`` on the latent grid ``(h, w)``."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int) -> None:
        super().__init__()
        self.conv_in = torch.nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.down_1 = torch.nn.Conv2d(hidden, hidden, 3, stride=2, padding=1)
        self.down_2 = torch.nn.Conv2d(hidden, out_channels, 3, stride=2, padding=1)
        self.temporal = I2VGenXLTransformerTemporalEncoder(out_channels, TEMPORAL_HEADS, out_channels,
                                                           activation_fn="gelu", ff_inner_dim=4 * out_channels)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        b, c, f, _, _ = x.shape
        h, w = grid
        x = x.transpose(1, 2).reshape(b * f, c, *x.shape[-2:]).to(self.conv_in.weight.dtype)
        x = F.silu(self.conv_in(x))
        # two stride-2 convs follow, so pooling to 4× the latent grid lands them on it (VGen: resolution / 2)
        x = F.adaptive_avg_pool2d(x, (4 * h, 4 * w))
        x = self.down_2(F.silu(self.down_1(x)))
        ch = x.shape[1]
        # attention over the frames of each latent pixel: (b f) c h w → (b h w) f c
        x = x.reshape(b, f, ch, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, f, ch)
        x = self.temporal(x)
        return x.reshape(b, h, w, f, ch).permute(0, 4, 3, 1, 2)


class CompositionUNet(ConcatUNet):
    """``ConcatUNet`` plus one :class:`ConditionEncoder` per name in ``conditions`` (``condition_hidden``: the stems'
    width, 4 × ``concat_dim`` in VGen).

    ``forward(sample, timestep, encoder_hidden_states, image_embeds=None, conditions=None)``: ``conditions`` maps a
    condition name (:data:`CONDITION_CHANNELS`) to ``[B or 1, C, F, H, W]``; a batch of 1 is encoded once and shared
    by every sample of the batch (the cond/uncond pair of classifier-free guidance sees the same conditions).
    """

    def __init__(self, *, conditions: tuple[str, ...] | list[str] = RELEASED_CONDITIONS,
                 condition_hidden: int | None = None, **concat_unet_kwargs: Any) -> None:
        super().__init__(**concat_unet_kwargs)
        unknown = [c for c in conditions if c not in CONDITION_CHANNELS]
        if unknown:
            raise ValueError(f"unknown conditions {unknown}; known: {', '.join(ORDER)}")
        concat = int(self.config["concat_dim"])
        hidden = int(condition_hidden or 4 * concat)
        names = [c for c in ORDER if c in conditions]
        self.register_to_config(conditions=names, condition_hidden=hidden)
        self.condition_encoders = torch.nn.ModuleDict(
            {c: ConditionEncoder(CONDITION_CHANNELS[c], concat, hidden) for c in names})

    @property
    def conditions(self) -> tuple[str, ...]:
        """The conditions these weights can take."""
        return tuple(self.condition_encoders)

    def encode_conditions(self, conditions: Mapping[str, torch.Tensor | None], sample: torch.Tensor) -> torch.Tensor:
        """The concat tensor ``[B, concat_dim, F, h, w]`` for ``sample`` (``[B, 4, F, h, w]``): the sum of the given
        conditions' encodings, zeros for none. Raises :class:`InvalidRequest` for a condition these weights lack or
        a tensor of the wrong shape."""
        b, _, f, h, w = sample.shape
        concat = sample.new_zeros(b, int(self.config["concat_dim"]), f, h, w)
        given = {k: v for k, v in conditions.items() if v is not None}
        missing = [k for k in given if k not in self.condition_encoders]
        if missing:
            raise InvalidRequest(f"These weights take no {', '.join(map(repr, missing))} condition.",
                                 hint=f"Give only {', '.join(self.conditions) or 'no conditions'}.", field="conditions")
        for name in self.conditions:  # VGen's order
            x = given.get(name)
            if x is None:
                continue
            want = CONDITION_CHANNELS[name]
            if x.ndim != 5 or x.shape[1] != want or x.shape[2] != f or x.shape[0] not in (1, b):
                batch = "1" if b == 1 else f"{b} or 1"
                raise InvalidRequest(f"The {name!r} condition has shape {list(x.shape)}; it must be [{batch}, {want}, "
                                     f"{f}, H, W] (batch, channels, frames, height, width).",
                                     hint=f"Give {f} frames of the condition video.", field="conditions")
            concat = concat + self.condition_encoders[name](x, (h, w)).to(concat.dtype)
        return concat

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,  # type: ignore[override]
                image_embeds: torch.Tensor | None = None, conditions: Mapping[str, torch.Tensor | None] | None = None,
                return_dict: bool = True, **kwargs: Any):
        if sample.shape[1] == self.latent_channels:
            sample = torch.cat([sample, self.encode_conditions(conditions or {}, sample)], dim=1)
        elif any(v is not None for v in (conditions or {}).values()):
            raise ValueError("give the 4-channel latent with conditions; the concat channels are computed from them")
        return super().forward(sample, timestep, encoder_hidden_states, image_embeds=image_embeds,
                               return_dict=return_dict, **kwargs)

    def unet_config(self) -> dict[str, Any]:
        """Constructor kwargs (JSON-able) that rebuild this model: ``CompositionUNet(**cfg)``."""
        return {**super().unet_config(), "conditions": list(self.config["conditions"]),
                "condition_hidden": int(self.config["condition_hidden"])}


# -- VGen names ---------------------------------------------------------------------------------------------------
_ENC = "condition_encoders."
_STEM = {"conv_in.": "0.", "down_1.": "3.", "down_2.": "5."}
_TEMPORAL = {"norm1.": "0.norm.", "attn1.to_q.": "0.fn.to_q.", "attn1.to_k.": "0.fn.to_k.",
             "attn1.to_v.": "0.fn.to_v.", "attn1.to_out.0.": "0.fn.to_out.0.", "ff.net.0.proj.": "1.net.0.0.",
             "ff.net.2.": "1.net.2."}
_QKV = "layers.0.0.fn.to_qkv.weight"  # VGen fuses q, k, v row blocks (q first)


def condition_rule(key: str) -> str | None:
    """VGen name of a condition-encoder key (to_q/to_k/to_v get interim names; the state-dict helpers fuse them
    into VGen's ``to_qkv``); None for any other key."""
    if not key.startswith(_ENC):
        return None
    name, rest = key[len(_ENC):].split(".", 1)
    stem, after = vgen_prefixes(name)
    for ours, theirs in _STEM.items():
        if rest.startswith(ours):
            return f"{stem}.{theirs}{rest[len(ours):]}"
    rest = rest.removeprefix("temporal.")
    for ours, theirs in _TEMPORAL.items():
        if rest.startswith(ours):
            return f"{after}.layers.0.{theirs}{rest[len(ours):]}"
    return None


def keymap(model: CompositionUNet) -> KeyMap:
    """VGen ↔ diffusers names: the core as ModelScope T2V, ``pre_image_condition.*`` unchanged, the encoders as
    :func:`condition_rule`."""
    return KeyMap.for_model(model, extra=(condition_rule,), passthrough=(IMAGE_BRANCH,))


def _split_qkv(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(sd)
    for key in [k for k in sd if k.endswith("_after." + _QKV)]:
        for part, t in zip("qkv", out.pop(key).chunk(3, dim=0)):
            out[key.replace("to_qkv", f"to_{part}")] = t
    return out


def _fuse_qkv(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(sd)
    for key in [k for k in sd if k.endswith("_after.layers.0.0.fn.to_q.weight")]:
        out[key.replace("to_q", "to_qkv")] = torch.cat([out.pop(key.replace("to_q", f"to_{p}")) for p in "qkv"])
    return out


def vgen_to_diffusers(sd: Mapping[str, torch.Tensor], km: KeyMap) -> dict[str, torch.Tensor]:
    """Rename (and reshape) a VGen state dict for :class:`CompositionUNet`, splitting each fused ``to_qkv``."""
    return km.vgen_to_diffusers(_split_qkv(sd))


def vgen_state_dict(model: CompositionUNet) -> dict[str, torch.Tensor]:
    """The model's weights with VGen's names and shapes, as the released ``.pth`` files hold them."""
    return _fuse_qkv(keymap(model).diffusers_to_vgen(model.state_dict()))


# -- config and loading -------------------------------------------------------------------------------------------
def infer_composition_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``CompositionUNet`` kwargs from the shapes of a VGen vcomposer state dict (values: tensors or shapes);
    the conditions are those whose branches it holds. Raises :class:`IncompatibleCheckpoint` for a branch whose
    input channels are not VGen's."""
    def shape(key: str) -> tuple[int, ...]:
        v = sd[key]
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    cfg = infer_concat_unet_config(sd)
    conditions, hidden = [], None
    for name in ORDER:
        key = vgen_prefixes(name)[0] + ".0.weight"
        if key not in sd:
            continue
        out_ch, in_ch = shape(key)[:2]
        if in_ch != CONDITION_CHANNELS[name]:
            raise IncompatibleCheckpoint(f"Key {key!r} takes {in_ch} input channels; VGen's {name} condition has "
                                         f"{CONDITION_CHANNELS[name]}.",
                                         hint="This is not a VGen VideoComposer checkpoint; pick the released "
                                              "tft2v_vcomposer / videolcm_vcomposer .pth.")
        conditions.append(name)
        hidden = out_ch
    cfg["conditions"] = conditions
    if hidden is not None:
        cfg["condition_hidden"] = hidden
    return cfg


def load_composition_unet(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *,
                          source: str = "VideoComposer UNet checkpoint") -> CompositionUNet:
    """Build a :class:`CompositionUNet` (config inferred from shapes unless given) and strictly load the VGen state
    dict ``sd``: a key missing, unexpected or mis-shaped raises :class:`IncompatibleCheckpoint` naming it."""
    from sdk.ml.checkpoints import empty_model, load_into

    cfg = dict(config) if config else infer_composition_config(sd)
    model = empty_model(lambda: CompositionUNet(**cfg))
    load_into(model, vgen_to_diffusers(sd, keymap(model)), source=source)
    return model.eval()


def tiny_composition_unet(seed: int = 0, *, num_image_tokens: int = 4,
                          conditions: tuple[str, ...] = RELEASED_CONDITIONS) -> CompositionUNet:
    """The tiny core of :data:`sdk.ml.tiny.UNET_TINY` (12 input channels, style-image branch) with VGen's condition
    encoders at their real (already small) widths; every parameter drawn from ``seed``."""
    from sdk.ml.tiny import TEXT_WIDTH, UNET_TINY, randomize_

    cfg = {k: v for k, v in UNET_TINY.items() if k != "in_channels"}
    model = CompositionUNet(conditions=conditions, num_image_tokens=num_image_tokens, image_embed_dim=TEXT_WIDTH, **cfg)
    return randomize_(model, seed + 1).eval()
