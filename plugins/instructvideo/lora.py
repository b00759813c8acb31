"""InstructVideo's LoRA on a diffusers ``UNet3DConditionModel``, in VGen's layout (vgen-notes §13).

Every attention of the UNet (spatial attn1 + attn2, temporal attn1 + attn2, ``transformer_in`` included) gets four
:class:`LoRA` modules, one per projection: ``to_q_lora``, ``to_k_lora``, ``to_v_lora``, ``to_out_lora``. Each is
``up(down(x))`` with ``down`` = Linear(in → rank, no bias, N(0, (1/rank)²)) and ``up`` = Linear(rank → out, no bias,
zero), added to the output of the projection it sits beside, with the projection's own input: ``q = W_q·x +
s·up(down(x))``, ``k``/``v`` from the context, ``out = W_o·o + s·up(down(o))`` (s = ``scale``, VGen: 1).

The modules are registered on diffusers' ``Attention`` itself, so the UNet's state dict holds them under the names
the generic VGen ↔ diffusers :class:`sdk.ml.convert.KeyMap` maps to VGen's
(``input_blocks.1.1.transformer_blocks.0.attn1.to_q_lora.down_linear.weight``). They act through forward hooks on
the projections; no diffusers class is patched and :meth:`LoRALayers.detach` gives the base UNet back. Inference
merges them instead (:func:`merge_lora`: ``W += s·up·down``), which is what VGen's inference does.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
from torch import nn

RANK = 4
#: projection attribute on diffusers' Attention → (LoRA attribute, VGen's name of the projection weight)
PROJECTIONS = {"to_q": "to_q_lora", "to_k": "to_k_lora", "to_v": "to_v_lora", "to_out": "to_out_lora"}
LORA_MARK = "_lora."


class LoRA(nn.Module):
    """``up(down(x))``: VGen's ``LoRA`` (network_alpha None, so no alpha/rank factor)."""

    def __init__(self, in_dim: int, out_dim: int, rank: int = RANK, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.down_linear = nn.Linear(in_dim, rank, bias=False)
        self.up_linear = nn.Linear(rank, out_dim, bias=False)
        with torch.no_grad():
            if not self.down_linear.weight.is_meta:
                self.down_linear.weight.normal_(0.0, 1.0 / rank, generator=generator)
                self.up_linear.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_linear(self.down_linear(x))


def attentions(unet: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every diffusers ``Attention`` of the UNet with its name (spatial, temporal, ``transformer_in``, mid block)."""
    from diffusers.models.attention_processor import Attention

    for name, m in unet.named_modules():
        if isinstance(m, Attention):
            yield name, m


def _linear(attn: nn.Module, proj: str) -> nn.Linear:
    lin = getattr(attn, proj)
    return lin[0] if isinstance(lin, nn.ModuleList) else lin


class LoRALayers:
    """The LoRA modules attached to one UNet: hooks, parameters, state dict (diffusers names), detach."""

    def __init__(self, unet: nn.Module, *, rank: int = RANK, scale: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        self.unet, self.rank, self.scale = unet, rank, float(scale)
        self._handles: list[Any] = []
        self._names: list[tuple[nn.Module, str]] = []
        p = next(unet.parameters())
        device = "meta" if p.is_meta else p.device
        for _, attn in attentions(unet):
            for proj, attr in PROJECTIONS.items():
                lin = _linear(attn, proj)
                lora = LoRA(lin.in_features, lin.out_features, rank, generator)
                lora = lora.to(device=device, dtype=p.dtype) if device != "meta" else lora.to_empty(device="meta")
                setattr(attn, attr, lora)
                self._names.append((attn, attr))
                self._handles.append(lin.register_forward_hook(self._hook(lora)))

    def _hook(self, lora: LoRA) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            if self.scale == 0.0:
                return output
            delta = lora(args[0])
            return output + (delta if self.scale == 1.0 else self.scale * delta)
        return hook

    def modules(self) -> list[LoRA]:
        return [getattr(attn, attr) for attn, attr in self._names]

    def parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules() for p in m.parameters()]

    def keys(self) -> list[str]:
        """diffusers state-dict keys of the LoRA tensors."""
        return [k for k in self.unet.state_dict() if LORA_MARK in k]

    def state_dict(self) -> dict[str, torch.Tensor]:
        sd = self.unet.state_dict()
        return {k: sd[k].detach().clone() for k in self.keys()}

    def load(self, sd: Mapping[str, torch.Tensor], *, source: str = "LoRA file") -> None:
        """Strictly load the LoRA tensors (diffusers names); the error names the first missing/unexpected key."""
        from sdk.ml.checkpoints import check_compatible

        named = dict(self.unet.named_parameters())
        expected = {k: named[k] for k in self.keys()}
        check_compatible(expected, sd, source=source, target="the LoRA of this UNet")
        with torch.no_grad():
            for k, t in expected.items():
                t.copy_(sd[k].to(t.dtype))

    def detach(self) -> None:
        """Remove hooks and LoRA modules: the UNet is the base model again."""
        for h in self._handles:
            h.remove()
        for attn, attr in self._names:
            if hasattr(attn, attr):
                delattr(attn, attr)
        self._handles.clear()
        self._names.clear()


def is_lora_key(key: str) -> bool:
    return LORA_MARK in key and (key.endswith("down_linear.weight") or key.endswith("up_linear.weight"))


def base_key(lora_down_key: str) -> str:
    """``…attn1.to_q_lora.down_linear.weight`` → ``…attn1.to_q.weight``; ``to_out_lora`` → ``to_out.0`` (diffusers and
    VGen name the output projection alike: a Sequential / ModuleList whose item 0 is the Linear)."""
    head = lora_down_key.removesuffix(".down_linear.weight")
    attn, _, attr = head.rpartition(".")
    proj = attr.removesuffix("_lora")
    return f"{attn}.{proj}.0.weight" if proj == "to_out" else f"{attn}.{proj}.weight"


@torch.no_grad()
def merge_lora(unet: nn.Module, lora: Mapping[str, torch.Tensor], scale: float = 1.0) -> int:
    """``W += scale · up @ down`` for every LoRA pair in ``lora`` (diffusers names), in float32; returns the number of
    projections merged. Raises IncompatibleCheckpoint for a pair whose projection the UNet lacks or whose shapes do
    not fit."""
    from sdk.errors import IncompatibleCheckpoint

    params = dict(unet.named_parameters())
    merged = 0
    for key, down in lora.items():
        if not key.endswith("down_linear.weight"):
            continue
        up = lora[key.replace("down_linear", "up_linear")]
        target = base_key(key)
        w = params.get(target)
        if w is None or tuple(w.shape) != (up.shape[0], down.shape[1]):
            raise IncompatibleCheckpoint(
                f"LoRA tensor {key!r} does not fit this UNet ({target!r} "
                f"{'is missing' if w is None else 'has shape ' + str(list(w.shape))}).",
                hint="Use a LoRA trained on these base weights (instructvideo.reward on the same weights id).")
        if scale != 0.0:
            delta = up.to(w.device, torch.float32) @ down.to(w.device, torch.float32)
            w.copy_((w.float() + scale * delta).to(w.dtype))
        merged += 1
    return merged
