"""DreamVideo adapters on a diffusers ``UNet3DConditionModel`` (vgen-notes §12).

``Adapter``: down Linear(d → d/2) → GELU → up Linear(d/2 → d) (zero-initialised), optional ``condition_linear``
(appearance embedding → d) whose output, scaled by λ, is added to the adapter input. Placement is "parallel": the
adapter replaces the identity residual of its sub-layer, ``h ← sublayer(LN(h)) + h + up(gelu(down(h + λ·W_c·c)))``.

The adapters are registered on the ``BasicTransformerBlock`` itself as ``attn_adapter`` / ``cross_attn_adapter`` /
``ff_adapter`` (VGen's names), so the UNet's state dict holds them under the keys the generic VGen ↔ diffusers
:class:`sdk.ml.convert.KeyMap` already maps (``input_blocks.1.1.transformer_blocks.0.cross_attn_adapter.…``). They
act through hooks (a pre-hook on the norm captures ``h``, a forward hook on the sub-layer adds the adapter's
delta), so no diffusers class is patched and :meth:`DreamVideoAdapters.detach` leaves the base UNet as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

IDENTITY = "identity"
MOTION = "motion"
#: sub-layer → (norm whose input is h, adapter attribute name)
SPATIAL_SLOTS = {"attn2": ("norm2", "cross_attn_adapter")}
TEMPORAL_SLOTS = {"attn1": ("norm1", "attn_adapter"), "attn2": ("norm2", "cross_attn_adapter"),
                  "ff": ("norm3", "ff_adapter")}


class Adapter(nn.Module):
    def __init__(self, dim: int, condition_dim: int | None = None) -> None:
        super().__init__()
        self.down_linear = nn.Linear(dim, dim // 2)
        self.act = nn.GELU()
        self.up_linear = nn.Linear(dim // 2, dim)
        nn.init.zeros_(self.up_linear.weight)
        nn.init.zeros_(self.up_linear.bias)
        self.condition_linear = nn.Linear(condition_dim, dim) if condition_dim else None

    def delta(self, h: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``up(gelu(down(h + condition)))``; ``condition`` is already projected and scaled, broadcastable to h."""
        x = h if condition is None else h + condition
        return self.up_linear(self.act(self.down_linear(x)))


@dataclass
class AdapterState:
    """What the hooks read during one UNet call. ``condition`` [B, C] (appearance embeddings of the batch) and
    ``lam`` [B] (λ per batch element, e.g. cond/uncond strengths); ``scale`` per adapter set (0 skips it)."""

    scale: dict[str, float] = field(default_factory=lambda: {IDENTITY: 1.0, MOTION: 1.0})
    condition: torch.Tensor | None = None
    lam: torch.Tensor | None = None


@dataclass
class _Slot:
    kind: str
    block: nn.Module
    adapter: Adapter
    temporal: bool
    h: torch.Tensor | None = None


class DreamVideoAdapters:
    """The adapters attached to one UNet: hooks, parameters, state dicts (diffusers names), detach."""

    def __init__(self, unet: nn.Module, *, identity: bool, motion: bool, condition_dim: int | None) -> None:
        self.unet = unet
        self.state = AdapterState()
        self.slots: list[_Slot] = []
        self._handles: list[Any] = []
        self._names: list[tuple[nn.Module, str]] = []
        p = next(unet.parameters())
        for block, temporal in _transformer_blocks(unet):
            if temporal and not motion or not temporal and not identity:
                continue
            dim = block.norm1.normalized_shape[0]
            for sub, (norm, attr) in (TEMPORAL_SLOTS if temporal else SPATIAL_SLOTS).items():
                adapter = Adapter(dim, condition_dim if temporal else None).to(p.device, p.dtype)
                setattr(block, attr, adapter)
                self._names.append((block, attr))
                slot = _Slot(MOTION if temporal else IDENTITY, block, adapter, temporal)
                self.slots.append(slot)
                self._handles.append(getattr(block, norm).register_forward_pre_hook(_capture(slot)))
                self._handles.append(getattr(block, sub).register_forward_hook(_add_delta(slot, self.state)))

    # -- parameters and weights ------------------------------------------------------------------------------
    def modules(self, kind: str) -> Iterator[Adapter]:
        return (s.adapter for s in self.slots if s.kind == kind)

    def parameters(self, kind: str) -> list[nn.Parameter]:
        return [p for a in self.modules(kind) for p in a.parameters()]

    def keys(self, kind: str) -> list[str]:
        """diffusers state-dict keys of one adapter set."""
        ids = {id(p) for p in self.parameters(kind)}
        return [k for k, p in self.unet.named_parameters() if id(p) in ids]

    def state_dict(self, kind: str) -> dict[str, torch.Tensor]:
        named = dict(self.unet.named_parameters())
        return {k: named[k].detach().clone() for k in self.keys(kind)}

    def load(self, kind: str, sd: dict[str, torch.Tensor], *, source: str = "adapter file") -> None:
        """Strictly load one adapter set (diffusers names); the error names the first missing/unexpected key."""
        from sdk.ml.checkpoints import check_compatible

        named = dict(self.unet.named_parameters())
        expected = {k: named[k] for k in self.keys(kind)}
        check_compatible(expected, sd, source=source, target=f"the {kind} adapters of this UNet")
        with torch.no_grad():
            for k, t in expected.items():
                t.copy_(sd[k].to(t.dtype))

    # -- per-call conditioning -------------------------------------------------------------------------------
    def set_condition(self, condition: torch.Tensor | None, lam: torch.Tensor | float | None = None) -> None:
        self.state.condition = condition
        if lam is not None and not torch.is_tensor(lam):
            lam = torch.full((condition.shape[0],) if condition is not None else (1,), float(lam))
        self.state.lam = lam

    def set_scale(self, kind: str, scale: float) -> None:
        self.state.scale[kind] = float(scale)

    def detach(self) -> None:
        """Remove hooks and adapter modules: the UNet is the base model again."""
        for h in self._handles:
            h.remove()
        for block, attr in self._names:
            if hasattr(block, attr):
                delattr(block, attr)
        self._handles.clear()
        self._names.clear()
        self.slots.clear()


def _transformer_blocks(unet: nn.Module) -> Iterator[tuple[nn.Module, bool]]:
    """Every ``BasicTransformerBlock`` with whether it is temporal (inside a ``TransformerTemporalModel``)."""
    from diffusers.models.attention import BasicTransformerBlock
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

    temporal_ids = {id(b) for m in unet.modules() if isinstance(m, TransformerTemporalModel)
                    for b in m.modules() if isinstance(b, BasicTransformerBlock)}
    for m in unet.modules():
        if isinstance(m, BasicTransformerBlock):
            yield m, id(m) in temporal_ids


def _capture(slot: _Slot):
    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        slot.h = args[0]
    return hook


def _add_delta(slot: _Slot, state: AdapterState):
    def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        h, slot.h = slot.h, None
        scale = state.scale.get(slot.kind, 1.0)
        if scale == 0.0 or h is None:
            return output
        c = None
        if slot.adapter.condition_linear is not None and state.condition is not None:
            c = slot.adapter.condition_linear(state.condition.to(h.dtype))  # [B, d]
            if state.lam is not None:
                c = c * state.lam.to(c)[:, None]
            # temporal hidden states are [(B·h·w), F, d], B-major: repeat each sample over its positions
            if h.shape[0] % c.shape[0]:
                raise RuntimeError(f"The adapters hold a condition for a batch of {c.shape[0]}, but the UNet runs "
                                   f"{h.shape[0]} rows: set_condition() must match the batch of every call.")
            c = c.repeat_interleave(h.shape[0] // c.shape[0], dim=0)[:, None, :]
        delta = slot.adapter.delta(h, c)
        return output + (delta if scale == 1.0 else scale * delta)
    return hook
