"""Tiny twins of the annotator weights, in VGen's own file formats (random values, real classes, tiny widths):
``table5_pidinet.pth`` as the released pixel-difference ``{'state_dict': {'module.…'}}``,
``sketch_simplification_gan.pth`` and ``midas_v3_dpt_large.pth`` as plain state dicts of VGen's key names."""
from __future__ import annotations

from pathlib import Path

import torch

from sdk.errors import InvalidRequest

from plugins.composer_conditions.weights import MIDAS_FILE, PIDINET_FILE, SIMPLIFY_FILE


def pidinet_released_state(width: int = 4, dil: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A PiDiNet state dict as the released file holds it (every depthwise layer 3×3, pixel-difference form,
    ``module.`` prefixed), random."""
    from plugins.composer_conditions.pidinet import BLOCKS, PiDiNet

    torch.manual_seed(seed)
    model = PiDiNet(width, dil)
    layers = {"init_block.weight"} | {f"{b}.conv1.weight" for b in BLOCKS}
    out = {}
    for k, v in model.state_dict().items():
        if k in layers and v.shape[-1] == 5:
            v = torch.randn(*v.shape[:2], 3, 3) * 0.2
        out[f"module.{k}"] = v.clone()
    return out


def make_tiny_sketch(dest: Path, fmt: str = "vgen") -> Path:
    """``table5_pidinet.pth`` and ``sketch_simplification_gan.pth`` at tiny widths in ``dest``."""
    from plugins.composer_conditions.simplify import SketchSimplifier

    if fmt != "vgen":
        raise InvalidRequest(f"The sketch annotators come only as VGen .pth files, not {fmt!r}.", hint="Use vgen.",
                             field="format")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 1, "state_dict": pidinet_released_state()}, dest / PIDINET_FILE)
    torch.manual_seed(1)
    widths = (4, 8, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 1)
    simplifier = SketchSimplifier(widths)
    torch.save(simplifier.state_dict(), dest / SIMPLIFY_FILE)
    return dest


def make_tiny_depth(dest: Path, fmt: str = "vgen") -> Path:
    """A tiny MiDaS: VGen's ``midas_v3_dpt_large.pth`` key names (``fmt="vgen"``) or a transformers DPT folder
    (``fmt="transformers"``)."""
    from plugins.composer_conditions.midas import tiny_dpt, to_vgen

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model = tiny_dpt()
    if fmt == "vgen":
        torch.save(to_vgen(model.state_dict()), dest / MIDAS_FILE)
    elif fmt == "transformers":
        model.save_pretrained(dest)
    else:
        raise InvalidRequest(f"MiDaS has no {fmt!r} format.", hint="Use format=vgen (VGen's .pth) or format=transformers (a DPT-Large folder).", field="format")
    return dest
