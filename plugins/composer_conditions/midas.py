"""MiDaS v3 DPT-Large as transformers' ``DPTForDepthEstimation``, from VGen's ``midas_v3_dpt_large.pth`` (by a key
mapping) or from a DPT folder in transformers' format (the hub's DPT-Large).

VGen's ``tools/annotator/depth`` re-implements DPT-Large (ViT-L/16 at 384, readout "project", reassemble factors 4,
2, 1, ½, fusion width 256) with its own module names; transformers' DPT computes the same function (see
``../shared/reference/numerics.md`` for the method) once the names are mapped and three facts are kept:

- the ViT's fused ``attn.to_qkv`` holds query, key and value stacked along the output dimension (in that order);
- VGen's last head layer is a 1×1 ``ConvTranspose2d(32, 1)``: transformers' ``Conv2d(32, 1, 1)`` with the weight's
  two first axes swapped;
- VGen's LayerNorms use PyTorch's default eps 1e-5 (the config here; the hub's DPT-Large says 1e-12), and it has no
  final LayerNorm after the ViT (transformers' ``dpt.layernorm`` does not reach the depth head: set to identity).

Fusion stages are numbered the other way round: VGen's ``fusion4`` (the coarsest) is transformers' fusion layer 0.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

#: (transformers suffix, VGen suffix) inside one ViT block
_BLOCK = (("layernorm_before", "norm1"), ("layernorm_after", "norm2"), ("attention.output.dense", "attn.proj"),
          ("intermediate.dense", "mlp.0"), ("output.dense", "mlp.2"))


def _pairs(num_layers: int) -> list[tuple[str, str]]:
    """(transformers module, VGen module) of every mapped module but the fused qkv and the head's last conv."""
    pairs = [("dpt.embeddings.patch_embeddings.projection", "patch_embedding")]
    for i in range(num_layers):
        pairs += [(f"dpt.encoder.layer.{i}.{hf}", f"blocks.{i}.{vg}") for hf, vg in _BLOCK]
    resize = {0: "1", 1: "1", 3: "1"}  # stage 3 (factor 1) has no resize layer
    neck = {0: "2", 1: "2", 2: "1", 3: "2"}  # index of the 3×3 neck conv in VGen's conv{j+1} Sequential
    for j in range(4):
        pairs += [(f"neck.reassemble_stage.readout_projects.{j}.0", f"fc{j + 1}.0"),
                  (f"neck.reassemble_stage.layers.{j}.projection", f"conv{j + 1}.0"),
                  (f"neck.convs.{j}", f"conv{j + 1}.{neck[j]}")]
        if j in resize:
            pairs.append((f"neck.reassemble_stage.layers.{j}.resize", f"conv{j + 1}.{resize[j]}"))
        f, v = f"neck.fusion_stage.layers.{j}", f"fusion{4 - j}"
        pairs += [(f"{f}.projection", f"{v}.conv_out")]
        for r in (1, 2):
            pairs += [(f"{f}.residual_layer{r}.convolution1", f"{v}.layer{r}.residual.1"),
                      (f"{f}.residual_layer{r}.convolution2", f"{v}.layer{r}.residual.3")]
    pairs += [("head.head.0", "head.0"), ("head.head.2", "head.2")]
    return pairs


def to_vgen(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' DPT state dict → VGen's ``midas_v3_dpt_large.pth`` key names and layouts."""
    layers = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("dpt.encoder.layer."))
    out = {"cls_embedding": sd["dpt.embeddings.cls_token"], "pos_embedding": sd["dpt.embeddings.position_embeddings"],
           "head.4.weight": sd["head.head.4.weight"].transpose(0, 1), "head.4.bias": sd["head.head.4.bias"]}
    for hf, vg in _pairs(layers):
        for p in ("weight", "bias"):
            if f"{hf}.{p}" in sd:
                out[f"{vg}.{p}"] = sd[f"{hf}.{p}"]
    for i in range(layers):
        a = f"dpt.encoder.layer.{i}.attention.attention"
        for p in ("weight", "bias"):
            out[f"blocks.{i}.attn.to_qkv.{p}"] = torch.cat([sd[f"{a}.{n}.{p}"] for n in ("query", "key", "value")])
    return out


def config_of(vg: Mapping[str, torch.Tensor], *, head_dim: int = 64) -> Any:
    """The ``DPTConfig`` of a VGen MiDaS state dict, read from its shapes (the head count is not in the file: VGen's
    ViT-L has 16 heads of 64, so ``hidden / 64``)."""
    from transformers import DPTConfig

    hidden = int(vg["cls_embedding"].shape[-1])
    layers = 1 + max(int(k.split(".")[1]) for k in vg if k.startswith("blocks."))
    patch = int(vg["patch_embedding.weight"].shape[-1])
    grid = round((vg["pos_embedding"].shape[1] - 1) ** 0.5)
    return DPTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // head_dim),
                     intermediate_size=int(vg["blocks.0.mlp.0.weight"].shape[0]), image_size=grid * patch,
                     patch_size=patch, layer_norm_eps=1e-5, hidden_act="gelu", qkv_bias=True,
                     backbone_out_indices=[(s + 1) * layers // 4 - 1 for s in range(4)],
                     neck_hidden_sizes=[int(vg[f"conv{j}.0.weight"].shape[0]) for j in range(1, 5)],
                     fusion_hidden_size=int(vg["fusion1.conv_out.weight"].shape[0]), readout_type="project",
                     reassemble_factors=[4, 2, 1, 0.5])


def from_vgen(vg: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """VGen's MiDaS state dict → transformers' DPT state dict (the unused final LayerNorm as identity). Raises
    KeyError naming a VGen key the file lacks."""
    layers = config.num_hidden_layers
    hidden = config.hidden_size
    out = {"dpt.embeddings.cls_token": vg["cls_embedding"], "dpt.embeddings.position_embeddings": vg["pos_embedding"],
           "head.head.4.weight": vg["head.4.weight"].transpose(0, 1), "head.head.4.bias": vg["head.4.bias"],
           "dpt.layernorm.weight": torch.ones(hidden, dtype=vg["cls_embedding"].dtype, device=vg["cls_embedding"].device),
           "dpt.layernorm.bias": torch.zeros(hidden, dtype=vg["cls_embedding"].dtype, device=vg["cls_embedding"].device)}
    for hf, v in _pairs(layers):
        for p in ("weight", "bias"):
            if f"{v}.{p}" in vg:
                out[f"{hf}.{p}"] = vg[f"{v}.{p}"]
    for i in range(layers):
        a = f"dpt.encoder.layer.{i}.attention.attention"
        for p in ("weight", "bias"):
            for n, part in zip(("query", "key", "value"), vg[f"blocks.{i}.attn.to_qkv.{p}"].chunk(3, dim=0)):
                out[f"{a}.{n}.{p}"] = part
    return out


def load_dpt(path: Any) -> torch.nn.Module:
    """``DPTForDepthEstimation`` in eval mode from VGen's ``.pth`` (a file, or a folder holding it) or a transformers
    DPT folder (``config.json``). Raises IncompatibleCheckpoint when the file is not MiDaS."""
    from pathlib import Path

    from transformers import DPTForDepthEstimation

    from sdk.errors import IncompatibleCheckpoint
    from sdk.ml.checkpoints import load_state_dict

    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        return DPTForDepthEstimation.from_pretrained(str(path)).eval().requires_grad_(False)
    if path.is_dir():
        from plugins.composer_conditions.weights import DEPTH_ID, MIDAS_FILE, find_file

        path = find_file(path, MIDAS_FILE, DEPTH_ID)
    vg = load_state_dict(path)
    if "cls_embedding" not in vg or "fusion1.conv_out.weight" not in vg:
        raise IncompatibleCheckpoint(f"{path.name} is not VGen's MiDaS DPT-Large (no cls_embedding / fusion1 keys).",
                                     hint="Give midas_v3_dpt_large.pth or a DPT-Large folder (config.json).")
    config = config_of(vg)
    model = DPTForDepthEstimation(config)
    try:
        model.load_state_dict(from_vgen(vg, config), strict=True)
    except (KeyError, RuntimeError) as exc:
        raise IncompatibleCheckpoint(f"{path.name} does not map onto DPT: {str(exc)[:300]}",
                                     hint="Give VGen's midas_v3_dpt_large.pth unchanged.") from None
    return model.eval().requires_grad_(False)


def tiny_dpt(seed: int = 0) -> torch.nn.Module:
    """A tiny DPT (random) with VGen's structure: 4 ViT layers of width 128 (2 heads), necks 16-64, fusion 32."""
    from transformers import DPTConfig, DPTForDepthEstimation

    torch.manual_seed(seed)
    config = DPTConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=2, intermediate_size=256,
                       image_size=64, patch_size=16, layer_norm_eps=1e-5, backbone_out_indices=[0, 1, 2, 3],
                       neck_hidden_sizes=[16, 32, 64, 64], fusion_hidden_size=32, readout_type="project")
    model = DPTForDepthEstimation(config)
    with torch.no_grad():  # a depth range like MiDaS's (inverse depth in the hundreds), so VGen's /20 and clamp show
        for conv in list(model.neck.modules()) + list(model.head.modules()):
            if isinstance(conv, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.kaiming_normal_(conv.weight)  # keeps the signal alive through the random neck
        model.head.head[4].weight.normal_(0, 40.0)
        model.head.head[4].bias.fill_(120.0)
    return model.eval()





def predict_depth(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """MiDaS's inverse depth ``[B, H, W]`` of ``pixels`` ``[B, 3, H, W]`` in [−1, 1] (H, W multiples of 32).

    ``DPTForDepthEstimation.forward`` reshapes the ViT tokens to a square grid unless its config has a backbone
    config, so a 448×256 frame (VGen's size) goes through its parts here, with the real patch grid."""
    cfg = model.config
    out = model.dpt(pixel_values=pixels, output_hidden_states=True)
    states = [h for i, h in enumerate(out.hidden_states[1:]) if i in cfg.backbone_out_indices]
    grid_h, grid_w = pixels.shape[2] // cfg.patch_size, pixels.shape[3] // cfg.patch_size
    return model.head(model.neck(states, grid_h, grid_w))
