"""VGen/ModelScope UNet key names ↔ diffusers ``UNet3DConditionModel`` names (vgen-notes §16).

The mapping is written once, as ``diffusers key → VGen key`` (:func:`diffusers_to_vgen_key`); the reverse table is
built by enumerating the target model's own keys (:class:`KeyMap`). Loading a VGen state dict is then rename +
reshape + strict load; writing a VGen-format file is the forward direction. Later methods extend the mapping with
``extra`` rules (functions ``diffusers_key -> vgen_key | None`` consulted first) and ``passthrough`` prefixes
(keys that keep their names, e.g. I2VGen-XL's ``context_embedding.``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from sdk.errors import IncompatibleCheckpoint

Rule = Callable[[str], "str | None"]

RESNET_NAMES = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TOP_LEVEL = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "transformer_in": "input_blocks.0.1",
             "conv_norm_out": "out.0", "conv_out": "out.2"}
_BLOCK = re.compile(r"^(down|up)_blocks\.(\d+)\.(resnets|temp_convs|attentions|temp_attentions|downsamplers|upsamplers)"
                    r"\.(\d+)\.(.+)$")
_MID = re.compile(r"^mid_block\.(resnets|temp_convs|attentions|temp_attentions)\.(\d+)\.(.+)$")
_TEMPORAL_PROJ = re.compile(r"^(transformer_in|.*temp_attentions\.\d+)\.proj_(in|out)\.weight$")


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{RESNET_NAMES.get(head, head)}.{tail}"


def diffusers_to_vgen_key(key: str, *, layers_per_block: int, up_has_attention: Sequence[bool]) -> str | None:
    """VGen name of a diffusers ``UNet3DConditionModel`` key (None if it has no VGen counterpart)."""
    for d, v in TOP_LEVEL.items():
        if key.startswith(d + "."):
            return v + key[len(d):]
    L = layers_per_block
    m = _BLOCK.match(key)
    if m:
        kind, b, part, layer, rest = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
        if kind == "down":
            if part == "downsamplers":
                return f"input_blocks.{1 + b * (L + 1) + L}.op.{rest.removeprefix('conv.')}"
            prefix = f"input_blocks.{1 + b * (L + 1) + layer}"
        else:
            if part == "upsamplers":
                sub = 3 if up_has_attention[b] else 1
                return f"output_blocks.{b * (L + 1) + L}.{sub}.{rest}"
            prefix = f"output_blocks.{b * (L + 1) + layer}"
        return _sub(prefix, part, rest)
    m = _MID.match(key)
    if m:
        part, i, rest = m.group(1), int(m.group(2)), m.group(3)
        idx = {"resnets": (0, 3), "temp_convs": (0, 3), "attentions": (1,), "temp_attentions": (2,)}[part][i]
        if part == "resnets":
            return f"middle_block.{idx}.{_resnet(rest)}"
        if part == "temp_convs":
            return f"middle_block.{idx}.temopral_conv.{rest}"
        return f"middle_block.{idx}.{rest}"
    return None


def _sub(prefix: str, part: str, rest: str) -> str:
    if part == "resnets":
        return f"{prefix}.0.{_resnet(rest)}"
    if part == "temp_convs":
        return f"{prefix}.0.temopral_conv.{rest}"
    return f"{prefix}.{1 if part == 'attentions' else 2}.{rest}"


def is_temporal_proj(diffusers_key: str) -> bool:
    """Temporal transformer ``proj_in``/``proj_out``: Conv1d ``[o,i,1]`` in VGen, Linear ``[o,i]`` in diffusers."""
    return bool(_TEMPORAL_PROJ.match(diffusers_key))


def _config_of(model_or_config: Any) -> Mapping[str, Any]:
    cfg = getattr(model_or_config, "config", model_or_config)
    return cfg


@dataclass
class KeyMap:
    """Both directions of the VGen ↔ diffusers key mapping for one target model.

    ``diffusers_keys`` are the target model's ``state_dict()`` keys; ``extra`` rules run before the built-in ones;
    ``passthrough`` prefixes keep their names on both sides."""

    diffusers_keys: Sequence[str]
    layers_per_block: int
    up_has_attention: Sequence[bool]
    extra: Sequence[Rule] = ()
    passthrough: Sequence[str] = ()
    to_vgen: dict[str, str] = field(init=False)
    to_diffusers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.to_vgen = {}
        for dk in self.diffusers_keys:
            vk = self._map(dk)
            if vk is not None:
                self.to_vgen[dk] = vk
        self.to_diffusers = {v: k for k, v in self.to_vgen.items()}

    def _map(self, dk: str) -> str | None:
        for rule in self.extra:
            vk = rule(dk)
            if vk is not None:
                return vk
        if any(dk.startswith(p) for p in self.passthrough):
            return dk
        return diffusers_to_vgen_key(dk, layers_per_block=self.layers_per_block, up_has_attention=self.up_has_attention)

    @classmethod
    def for_model(cls, model: torch.nn.Module, *, extra: Sequence[Rule] = (), passthrough: Sequence[str] = ()) -> "KeyMap":
        cfg = _config_of(model)
        up_attn = [t.startswith("CrossAttn") for t in cfg["up_block_types"]]
        return cls(list(model.state_dict()), int(cfg["layers_per_block"]), up_attn, extra, passthrough)

    def vgen_to_diffusers(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename + reshape a VGen state dict; unknown keys pass unchanged (a strict load then names them)."""
        out: dict[str, torch.Tensor] = {}
        for vk, t in sd.items():
            dk = self.to_diffusers.get(vk, vk)
            if is_temporal_proj(dk) and t.ndim == 3 and t.shape[-1] == 1:
                t = t.squeeze(-1)
            out[dk] = t
        return out

    def diffusers_to_vgen(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The forward direction: write a diffusers state dict with VGen names and shapes."""
        out: dict[str, torch.Tensor] = {}
        for dk, t in sd.items():
            if dk not in self.to_vgen:
                raise IncompatibleCheckpoint(f"diffusers key {dk!r} has no VGen name.",
                                             hint="This model has parts VGen's format cannot hold.")
            if is_temporal_proj(dk) and t.ndim == 2:
                t = t.unsqueeze(-1)
            out[self.to_vgen[dk]] = t
        return out


def infer_unet3d_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``UNet3DConditionModel`` kwargs from the shapes of a VGen T2V state dict (values: tensors or shapes).

    VGen hard-codes ``GroupNorm(32)`` and 8 heads in ``input_blocks.0.1`` (so attention_head_dim = inner/8)."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in sd:
            raise IncompatibleCheckpoint(f"This is not a VGen/ModelScope UNet state dict: key {key!r} is missing.",
                                         hint="Give the UNet .pth (e.g. model_scope_v1-5_0632000.pth).")
        v = sd[key]
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    conv_in = shape("input_blocks.0.0.weight")
    head_dim = shape("input_blocks.0.1.proj_in.weight")[0] // 8
    n_in = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("input_blocks."))
    levels = 1 + len({k.split(".")[1] for k in sd if k.startswith("input_blocks.") and ".op." in k})
    L = n_in // levels - 1
    channels, attn = [], []
    for b in range(levels):
        first = 1 + b * (L + 1)
        channels.append(shape(f"input_blocks.{first}.0.out_layers.3.weight")[0])
        attn.append(f"input_blocks.{first}.1.norm.weight" in sd)
    xattn = next((shape(k)[1] for k in sd if k.endswith("attn2.to_k.weight") and not k.startswith("input_blocks.0.")), 1024)
    return dict(
        in_channels=conv_in[1], out_channels=shape("out.2.weight")[0], block_out_channels=tuple(channels),
        layers_per_block=L, attention_head_dim=head_dim, cross_attention_dim=xattn, norm_num_groups=32, norm_eps=1e-5,
        down_block_types=tuple("CrossAttnDownBlock3D" if a else "DownBlock3D" for a in attn),
        up_block_types=tuple("CrossAttnUpBlock3D" if a else "UpBlock3D" for a in reversed(attn)),
    )


def load_vgen_unet(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *,
                   source: str = "VGen UNet checkpoint", extra: Iterable[Rule] = ()) -> torch.nn.Module:
    """Build a ``UNet3DConditionModel`` (config inferred from shapes unless given) and strictly load a VGen state dict."""
    from diffusers import UNet3DConditionModel

    from sdk.ml.checkpoints import empty_model, load_into

    cfg = dict(config) if config else infer_unet3d_config(sd)
    model = empty_model(lambda: UNet3DConditionModel(**cfg))
    km = KeyMap.for_model(model, extra=tuple(extra))
    load_into(model, km.vgen_to_diffusers(sd), source=source)
    return model.eval()
