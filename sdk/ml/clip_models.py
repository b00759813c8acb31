"""Build open_clip ``CLIP`` models from checkpoints safely (no code runs) and infer their size from the tensors.

OpenCLIP checkpoints hold no config; the architecture is the state dict's shapes plus the recipe's fixed choices,
which the caller names: the attention head width of each tower (ViT-H-14: vision 80, text 64; OpenAI ViT-B/32: 64
and 64) and the activation (OpenAI's weights were trained with QuickGELU, the LAION/HPS ones with exact GELU).
Tiny twins follow the same rules at tiny widths, so the same code loads both.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from sdk.errors import IncompatibleCheckpoint, WeightsMissing

#: open_clip's (= OpenAI CLIP's) image normalisation
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def find_file(path: str | Path, names: str | tuple[str, ...], what: str) -> Path:
    """``path`` itself when it is a file, else the first of ``names`` in the folder (WeightsMissing otherwise)."""
    p = Path(path)
    names = (names,) if isinstance(names, str) else names
    if p.is_file():
        return p
    for name in names:
        if (p / name).is_file():
            return p / name
    name = " or ".join(names)
    raise WeightsMissing(f"{what}: {name} is not in {p}.",
                         hint=f"Fetch the weights (`vgen models fetch ID`) or make a tiny copy with "
                              f"`vgen models make-tiny ID DIR`; the folder must hold {name}.")


def load_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A plain state dict from a ``.bin``/``.pt``/``.pth`` read with ``weights_only=True`` (or safetensors): a
    ``{"state_dict": …}`` wrapper is unwrapped and DistributedDataParallel's ``module.`` prefix dropped."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: Any = load_file(str(path))
    else:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # an unpickling refusal or a damaged file: say which file and why
            raise IncompatibleCheckpoint(f"{what}: {path} cannot be read safely ({type(exc).__name__}: "
                                         f"{str(exc)[:200]}).", hint="Give the plain state-dict checkpoint (a "
                                         "TorchScript or pickled model would run code and is refused).") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        raise IncompatibleCheckpoint(f"{what}: {path} holds no state dict.", hint="Give the original checkpoint.")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def _layers(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd if (m := pat.match(k))}
    return max(found) + 1 if found else 0


def clip_config(sd: Mapping[str, torch.Tensor], *, vision_head_width: int, text_head_width: int,
                what: str) -> dict[str, Any]:
    """``open_clip.CLIP`` keyword arguments for an OpenCLIP ViT state dict (IncompatibleCheckpoint otherwise)."""
    need = ("visual.conv1.weight", "visual.positional_embedding", "visual.proj", "token_embedding.weight",
            "positional_embedding", "text_projection")
    missing = [k for k in need if k not in sd]
    if missing:
        raise IncompatibleCheckpoint(f"{what}: not an OpenCLIP ViT checkpoint (no {missing[0]!r}).",
                                     hint="Give the open_clip state dict (keys visual.*, transformer.*, "
                                          "token_embedding.weight …).")
    width, _, patch, _ = sd["visual.conv1.weight"].shape
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = sd["token_embedding.weight"].shape[1]
    v_mlp = sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width
    t_mlp = sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / text_width
    if width % vision_head_width or text_width % text_head_width:
        raise IncompatibleCheckpoint(f"{what}: widths {width}/{text_width} do not split into heads of "
                                     f"{vision_head_width}/{text_head_width}.", hint="Give the expected model.")
    return dict(
        embed_dim=int(sd["text_projection"].shape[1]),
        vision_cfg=dict(layers=_layers(sd, "visual.transformer.resblocks."), width=int(width),
                        head_width=vision_head_width, mlp_ratio=v_mlp, patch_size=int(patch),
                        image_size=int(grid * patch)),
        text_cfg=dict(context_length=int(sd["positional_embedding"].shape[0]),
                      vocab_size=int(sd["token_embedding.weight"].shape[0]), width=int(text_width),
                      heads=int(text_width // text_head_width), layers=_layers(sd, "transformer.resblocks."),
                      mlp_ratio=t_mlp),
    )


def build_clip(sd: Mapping[str, torch.Tensor], *, quick_gelu: bool, vision_head_width: int, text_head_width: int,
               what: str) -> torch.nn.Module:
    """An ``open_clip.CLIP`` of the checkpoint's size with its weights (strict), in eval mode, frozen."""
    import open_clip

    cfg = clip_config(sd, vision_head_width=vision_head_width, text_head_width=text_head_width, what=what)
    model = open_clip.CLIP(**cfg, quick_gelu=quick_gelu)
    missing, unexpected = model.load_state_dict(dict(sd), strict=False)
    missing = [k for k in missing if k != "logit_bias"]
    if missing or unexpected:
        raise IncompatibleCheckpoint(f"{what}: the checkpoint does not fit OpenCLIP {cfg['vision_cfg']} "
                                     f"(missing {missing[:3]}, unexpected {unexpected[:3]}).",
                                     hint="Give the original checkpoint of this model.")
    model.eval().requires_grad_(False)
    return model


def tokenizer(context_length: int = 77):
    """open_clip's CLIP BPE tokenizer (bundled in the package; the same for OpenAI CLIP and OpenCLIP-H)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)
