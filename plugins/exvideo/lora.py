"""The ExVideo-CogVideoX LoRA (ECNU-CILab/ExVideo-CogVideoX-LoRA-129f-v1): read, map exactly, fuse.

On-disk format (as DiffSynth-Studio reads it since commit 2e487a2c, through its PEFT-style loader): one safetensors
file of pairs ``<module>.lora_A[.default].weight`` (``[rank, in]``) and ``<module>.lora_B[.default].weight``
(``[out, rank]``), where ``<module>`` is a Linear layer of DiffSynth's own CogVideoX DiT (``CogDiT``), named in
DiffSynth's scheme, not diffusers': ``blocks.N.attn1.to_out`` is diffusers' ``transformer_blocks.N.attn1.to_out.0``,
``blocks.N.ff.0`` is ``ff.net.0.proj`` and so on (:data:`BLOCK_LINEARS`, :data:`TOP_LINEARS`; the renames are the
ones of CogDiT's state-dict converter). DiffSynth adds ``alpha · B·A`` to each weight with the user's ``alpha``
(default 1): no ``lora_alpha / rank`` factor is stored or applied, so :func:`fuse` does the same with ``scale``.

Every key must map onto a Linear of the diffusers ``CogVideoXTransformer3DModel`` it is fused into, with matching
shapes, in complete A/B pairs, and every transformer block must carry the same set of adapted layers: anything else
is refused with :class:`IncompatibleCheckpoint` naming the first few offending keys. Only safetensors is read.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.errors import IncompatibleCheckpoint, InvalidRequest

RELEASED_FILE = "ExVideo-CogVideoX-LoRA-129f-v1.safetensors"

#: DiffSynth CogDiT block Linear → diffusers CogVideoXBlock Linear (suffix after the block index)
BLOCK_LINEARS: dict[str, str] = {
    "norm1.linear": "norm1.linear",
    "attn1.to_q": "attn1.to_q",
    "attn1.to_k": "attn1.to_k",
    "attn1.to_v": "attn1.to_v",
    "attn1.to_out": "attn1.to_out.0",
    "norm2.linear": "norm2.linear",
    "ff.0": "ff.net.0.proj",
    "ff.2": "ff.net.2",
}
#: DiffSynth CogDiT top-level Linear → diffusers name
TOP_LINEARS: dict[str, str] = {
    "context_embedder": "patch_embed.text_proj",
    "time_embedder.timestep_embedder.0": "time_embedding.linear_1",
    "time_embedder.timestep_embedder.2": "time_embedding.linear_2",
    "norm_out.linear": "norm_out.linear",
    "proj_out": "proj_out",
}
#: the layers the twin writer adapts in every block (the attention projections)
TWIN_TARGETS: tuple[str, ...] = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out")

_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<half>[AB])(?:\.(?P<adapter>[A-Za-z0-9_]+))?\.weight$")
_SHOW = 3  # offending keys named in a refusal


def diffusers_name(module: str) -> str | None:
    """The diffusers Linear name of DiffSynth CogDiT module ``module`` (``blocks.3.attn1.to_out`` →
    ``transformer_blocks.3.attn1.to_out.0``); None when it is no Linear of CogDiT."""
    if module in TOP_LINEARS:
        return TOP_LINEARS[module]
    m = re.match(r"^blocks\.(\d+)\.(.+)$", module)
    if m and m.group(2) in BLOCK_LINEARS:
        return f"transformer_blocks.{int(m.group(1))}.{BLOCK_LINEARS[m.group(2)]}"
    return None


def diffsynth_name(diffusers: str) -> str:
    """The inverse of :func:`diffusers_name` (for the twin writer)."""
    for k, v in TOP_LINEARS.items():
        if v == diffusers:
            return k
    m = re.match(r"^transformer_blocks\.(\d+)\.(.+)$", diffusers)
    inverse = {v: k for k, v in BLOCK_LINEARS.items()}
    if not m or m.group(2) not in inverse:
        raise KeyError(diffusers)
    return f"blocks.{m.group(1)}.{inverse[m.group(2)]}"


@dataclass(frozen=True)
class LoraPair:
    """One adapted Linear: its diffusers name and the two factors (``down``: A ``[r, in]``; ``up``: B ``[out, r]``)."""

    target: str
    down: Any
    up: Any


def lora_file(path: str | Path) -> Path:
    """The LoRA safetensors at ``path``: the file itself, or the released file (or the only ``.safetensors``) in a
    folder. InvalidRequest for anything else (never unpickles)."""
    p = Path(path)
    if p.is_dir():
        named = p / RELEASED_FILE
        found = [named] if named.is_file() else sorted(p.glob("*.safetensors"))
        if len(found) != 1:
            raise InvalidRequest(f"{p} holds {len(found)} .safetensors files; the ExVideo LoRA folder holds one "
                                 f"({RELEASED_FILE}).", hint="Point lora at the file itself.", field="lora")
        p = found[0]
    if p.suffix.lower() != ".safetensors" or not p.is_file():
        raise InvalidRequest(f"lora {str(p)!r} is not a .safetensors file.",
                             hint=f"Give the released {RELEASED_FILE} (safetensors only: other formats can run code "
                                  "when loaded).", field="lora")
    return p


def read_lora(path: str | Path) -> dict[str, Any]:
    """The tensors of the LoRA file at ``path`` (safetensors only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = lora_file(path)
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        raise IncompatibleCheckpoint(f"{p.name} is not a readable safetensors file: {exc}.",
                                     hint=f"Download {RELEASED_FILE} again.") from None


def lora_identity(path: str | Path, scale: float) -> str:
    """A short id of the LoRA file (device, inode, size, mtime) and the scale: the ``patch_id`` of a fused
    transformer in the model cache."""
    from sdk.ml.components import file_identity

    ident = file_identity(lora_file(path))
    return f"exvideo-lora@{hashlib.sha1(ident.encode()).hexdigest()[:12]}x{scale:g}"


def _refuse(what: str, keys: list[str], hint: str) -> IncompatibleCheckpoint:
    shown = ", ".join(keys[:_SHOW]) + (f" (and {len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")
    return IncompatibleCheckpoint(f"The ExVideo LoRA does not fit this CogVideoX transformer: {what}: {shown}.",
                                  hint=hint)


def plan(state: dict[str, Any], transformer: Any) -> list[LoraPair]:
    """Map every key of ``state`` onto a Linear of the diffusers ``transformer``; IncompatibleCheckpoint naming the
    first offending keys when one is unknown, unpaired, the wrong shape, or when blocks differ in what they adapt."""
    import torch

    linears = {n: m for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)}
    halves: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        m = _KEY.match(key)
        target = diffusers_name(m.group("module")) if m else None
        if m is None or target is None or target not in linears or tensor.dim() != 2:
            unknown.append(key)
            continue
        pair = halves.setdefault(target, {})
        if m.group("half") in pair:
            unknown.append(key)  # the same half twice (e.g. with and without the adapter name)
            continue
        pair[m.group("half")] = (key, tensor)
    hint = (f"Use the released {RELEASED_FILE} (ECNU-CILab/ExVideo-CogVideoX-LoRA-129f-v1) with the CogVideoX-5B "
            "weights (cogvideox-5b): it adapts CogVideoX-5B's transformer only.")
    if unknown:
        raise _refuse("keys that match no Linear layer of the transformer", sorted(unknown), hint)
    if not halves:
        raise _refuse("the file holds no LoRA pairs", ["(empty)"], hint)
    missing = sorted(f"{diffsynth_name(t)}.lora_{'B' if 'A' in p else 'A'}.default.weight"
                     for t, p in halves.items() if len(p) != 2)
    if missing:
        raise _refuse("missing halves of LoRA pairs", missing, hint)
    wrong: list[str] = []
    pairs: list[LoraPair] = []
    for target, p in sorted(halves.items()):
        (ka, a), (kb, b) = p["A"], p["B"]
        weight = linears[target].weight
        if a.shape[0] != b.shape[1] or b.shape[0] != weight.shape[0] or a.shape[1] != weight.shape[1]:
            wrong.append(f"{ka} {tuple(a.shape)} / {kb} {tuple(b.shape)} vs weight {tuple(weight.shape)}")
            continue
        pairs.append(LoraPair(target, a, b))
    if wrong:
        raise _refuse("shapes that do not match the transformer's layers", wrong, hint)
    per_block: dict[int, set[str]] = {}
    for pr in pairs:
        m = re.match(r"^transformer_blocks\.(\d+)\.(.+)$", pr.target)
        if m:
            per_block.setdefault(int(m.group(1)), set()).add(m.group(2))
    n_blocks = len(getattr(transformer, "transformer_blocks", ()))
    if per_block:
        every = set().union(*per_block.values())
        absent = sorted(f"{diffsynth_name(f'transformer_blocks.{i}.{s}')}.lora_A.default.weight"
                        for i in range(n_blocks) for s in every if s not in per_block.get(i, set()))
        if absent:
            raise _refuse("blocks lack layers that the other blocks adapt (missing keys)", absent, hint)
    return pairs


def fuse(transformer: Any, pairs: list[LoraPair], scale: float = 1.0) -> int:
    """``W += scale · B·A`` for every pair, computed in float32 and cast back to the weight's dtype; returns the
    number of layers changed. Scale 0 leaves the weights as they are."""
    import torch

    if scale == 0:
        return 0
    modules = dict(transformer.named_modules())
    with torch.no_grad():
        for pr in pairs:
            weight = modules[pr.target].weight
            delta = pr.up.to(weight.device, torch.float32) @ pr.down.to(weight.device, torch.float32)
            weight.copy_((weight.float() + scale * delta).to(weight.dtype))
    return len(pairs)


def fuse_file(transformer: Any, path: str | Path, scale: float = 1.0) -> int:
    """Read, check and fuse the LoRA at ``path`` into ``transformer`` (see :func:`plan`, :func:`fuse`)."""
    return fuse(transformer, plan(read_lora(path), transformer), scale)


# -- twin ---------------------------------------------------------------------------------------------------------
def write_lora_twin(dest: str | Path, transformer: Any, *, rank: int = 2, seed: int = 0,
                    targets: tuple[str, ...] = TWIN_TARGETS, adapter: str | None = "default",
                    std: float = 0.05) -> Path:
    """Write a LoRA in the released format for ``transformer`` (a diffusers CogVideoX transformer, e.g. the tiny
    5B twin's) to ``dest`` (a folder: the file is named :data:`RELEASED_FILE`; or a ``.safetensors`` path): keys
    ``blocks.N.<target>.lora_{A,B}.<adapter>.weight`` in DiffSynth's names, float32, ``rank`` tiny. Both factors
    are random (a trained LoRA's are), so fusing it changes the output."""
    import torch
    from safetensors.torch import save_file

    dest = Path(dest)
    out = dest if dest.suffix == ".safetensors" else dest / RELEASED_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    modules = dict(transformer.named_modules())
    infix = f".{adapter}" if adapter else ""
    tensors: dict[str, torch.Tensor] = {}
    for i in range(len(transformer.transformer_blocks)):
        for t in targets:
            w = modules[f"transformer_blocks.{i}.{BLOCK_LINEARS[t]}"].weight
            name = f"blocks.{i}.{t}"
            tensors[f"{name}.lora_A{infix}.weight"] = torch.randn(rank, w.shape[1], generator=gen) * std
            tensors[f"{name}.lora_B{infix}.weight"] = torch.randn(w.shape[0], rank, generator=gen) * std
    save_file(tensors, str(out))
    return out
