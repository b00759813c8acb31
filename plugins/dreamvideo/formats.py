"""DreamVideo files: the released formats and the project Adapters (vgen-notes §12, §15).

- Released adapter files ``*_adapter_%08d.pth``: ``{'state_dict': {VGen adapter keys only}, 'step'}`` (or the raw
  dict), keys ``…transformer_blocks.0.{attn_adapter,cross_attn_adapter,ff_adapter}.{down,up,condition}_linear.*``.
- Released textual-inversion files ``text_embedding_of_*_%07d.pth``: ``{'string_to_token': {'*': tensor(265)},
  'string_to_param': ParameterDict({'*': [1, 1024]})}``.
- Project Adapters (``weights.safetensors`` written by our trainers): the VGen adapter keys, plus
  ``string_to_param.<placeholder>`` (the embedding, in identity adapters and embeddings) and
  ``training_latents.<i>`` (motion adapters with ``save_latents``). One folder is a complete subject or motion.
All loading goes through :mod:`sdk.ml.checkpoints` (safetensors, or ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from sdk.errors import IncompatibleCheckpoint
from sdk.ml.checkpoints import load_state_dict, load_torch_file, require_file, strip_prefixes, unwrap

EMBED_PREFIX = "string_to_param."
LATENTS_PREFIX = "training_latents."
ADAPTER_NAMES = ("attn_adapter", "cross_attn_adapter", "ff_adapter")


@dataclass
class TextualInversion:
    """Placeholder string → learned vector [1, D], and → the token id it replaces."""

    string_to_param: dict[str, torch.Tensor] = field(default_factory=dict)
    string_to_token: dict[str, int] = field(default_factory=dict)

    def vectors(self) -> dict[int, torch.Tensor]:
        return {self.string_to_token[s]: v.reshape(-1) for s, v in self.string_to_param.items()}


@dataclass
class AdapterFile:
    """A loaded adapter file or project Adapter: VGen-named adapter tensors, embedding, training latents."""

    adapters: dict[str, torch.Tensor]
    embedding: TextualInversion | None = None
    latents: list[torch.Tensor] = field(default_factory=list)
    step: int = 0

    @property
    def kinds(self) -> set[str]:
        """"identity" (spatial cross-attention adapters) and/or "motion" (temporal adapters)."""
        out = set()
        for k in self.adapters:
            out.add("motion" if is_temporal_adapter_key(k) else "identity")
        return out


def is_adapter_key(key: str) -> bool:
    return any(f".{n}." in key for n in ADAPTER_NAMES)


def is_temporal_adapter_key(vgen_key: str) -> bool:
    """Temporal transformers are sub-module 2 of a block (``input_blocks.0.1`` is the init temporal block)."""
    parts = vgen_key.split(".")
    if parts[0] == "input_blocks" and parts[1] == "0":
        return True
    return parts[2] == "2" if parts[0] in ("input_blocks", "output_blocks") else parts[1] == "2"


def read_adapter(path: str | Path, *, token_ids: Mapping[str, int] | None = None) -> AdapterFile:
    """A released ``.pth`` adapter, or a project Adapter (its folder or ``weights.safetensors``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "weights.safetensors"
    require_file(path, "adapter file")
    step = 0
    if path.suffix == ".safetensors":
        sd = load_state_dict(path)
    else:
        raw = load_torch_file(path)
        sd = strip_prefixes(unwrap(raw, path))
        step = int(raw["step"]) if isinstance(raw, dict) and isinstance(raw.get("step"), int) else 0
    adapters = {k: v for k, v in sd.items() if is_adapter_key(k)}
    other = [k for k in sd if not is_adapter_key(k) and not k.startswith((EMBED_PREFIX, LATENTS_PREFIX))]
    if other:
        raise IncompatibleCheckpoint(
            f"{path.name} is not a DreamVideo adapter file: it holds {len(other)} non-adapter keys (e.g. {other[0]!r}).",
            hint="Give an adapter file (*_adapter_*.pth) or an Adapter of a DreamVideo trainer; base weights go in "
                 "--weights.")
    emb = {k[len(EMBED_PREFIX):]: v for k, v in sd.items() if k.startswith(EMBED_PREFIX)}
    ti = None
    if emb:
        ti = TextualInversion(emb, {s: int((token_ids or {}).get(s, -1)) for s in emb})
    latents = [sd[k] for k in sorted((k for k in sd if k.startswith(LATENTS_PREFIX)), key=lambda k: int(k.split(".")[1]))]
    if not adapters and ti is None:
        raise IncompatibleCheckpoint(f"{path.name} holds no DreamVideo adapter keys.",
                                     hint="Give an adapter file (*_adapter_*.pth) or an Adapter of a DreamVideo trainer.")
    return AdapterFile(adapters, ti, latents, step)


def write_released_adapter(path: str | Path, adapters: Mapping[str, torch.Tensor], step: int) -> Path:
    """``{'state_dict': adapters, 'step': step}`` as the released ``*_adapter_%08d.pth`` files."""
    path = Path(path)
    torch.save({"state_dict": {k: v.detach().cpu().contiguous() for k, v in adapters.items()}, "step": int(step)}, path)
    return path


def read_text_embedding(path: str | Path) -> TextualInversion:
    """A textual-inversion file: released ``{string_to_token, string_to_param}`` (.pt/.pth/.bin, weights-only load;
    ``ParameterDict`` allowed) or a project embedding/identity Adapter (``string_to_param.*`` safetensors)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".safetensors":
        f = read_adapter(path)
        if f.embedding is None:
            raise IncompatibleCheckpoint(f"{path.name} holds no text embedding.",
                                         hint="Give a dreamvideo.subject_step1 Adapter or a text_embedding_of_*.pth.")
        return f.embedding
    raw = load_torch_file(require_file(path, "text embedding file"), allow=(torch.nn.ParameterDict,))
    if not isinstance(raw, dict) or "string_to_param" not in raw or "string_to_token" not in raw:
        raise IncompatibleCheckpoint(f"{path.name} is not a textual-inversion file: it lacks string_to_token / "
                                     "string_to_param.", hint="Give a text_embedding_of_*.pth from DreamVideo step 1.")
    params = {str(s): v.detach().clone().reshape(1, -1) for s, v in dict(raw["string_to_param"]).items()}
    tokens = {str(s): int(t) for s, t in dict(raw["string_to_token"]).items()}
    if set(params) != set(tokens) or not params:
        raise IncompatibleCheckpoint(f"{path.name}: string_to_token and string_to_param name different strings.",
                                     hint="The file is damaged; use the one step 1 wrote.")
    return TextualInversion(params, tokens)


def write_text_embedding(path: str | Path, ti: TextualInversion) -> Path:
    """The released format (plain dicts of tensors, so any ``weights_only`` loader reads it)."""
    path = Path(path)
    torch.save({"string_to_token": {s: torch.tensor(t) for s, t in ti.string_to_token.items()},
                "string_to_param": {s: v.detach().cpu() for s, v in ti.string_to_param.items()}}, path)
    return path


def artifact_tensors(adapters: Mapping[str, torch.Tensor] | None = None, ti: TextualInversion | None = None,
                     latents: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """What a trainer hands to ``ctx.save_artifact`` (see the module docstring)."""
    out = dict(adapters or {})
    for s, v in (ti.string_to_param.items() if ti else ()):
        out[EMBED_PREFIX + s] = v.detach().reshape(1, -1)
    for i, z in enumerate(latents or ()):
        out[f"{LATENTS_PREFIX}{i}"] = z.detach()
    return out
