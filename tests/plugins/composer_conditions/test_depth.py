"""Depth: VGen's midas_v3_dpt_large.pth maps onto transformers' DPT (every real-size key, both ways), the mapped model
computes VGen's MiDaS forward (re-derived here from VGen's module code on the tiny twin's VGen tensors), and on a
real clip the condition is VGen's depth/20 clamped to [0, 10]; the hub's folder format gives the same."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import DPTConfig, DPTForDepthEstimation

from plugins import composer_conditions
from plugins.composer_conditions.encoding import DEPTH_LEVELS
from plugins.composer_conditions.frames import resize
from plugins.composer_conditions.midas import config_of, from_vgen, load_dpt, predict_depth, to_vgen
from plugins.composer_conditions.tiny import make_tiny_depth
from sdk.errors import WeightsMissing
from sdk.ml.checkpoints import load_state_dict
from sdk.plugins import PluginRegistry
from tests.plugins.composer_conditions.helpers import decoded_frames, extract, make_clip


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry([("composer_conditions", composer_conditions)])


def vgen_midas_keys(dim: int = 1024, layers: int = 24, necks=(256, 512, 1024, 1024), fusion: int = 256,
                    grid: int = 24, patch: int = 16) -> dict[str, tuple[int, ...]]:
    """Every key and shape of VGen's ``MiDaS`` (tools/annotator/depth: midas_v3), written out from its modules."""
    keys: dict[str, tuple[int, ...]] = {"patch_embedding.weight": (dim, 3, patch, patch), "patch_embedding.bias": (dim,),
                                        "cls_embedding": (1, 1, dim), "pos_embedding": (1, grid * grid + 1, dim)}
    for i in range(layers):
        b = f"blocks.{i}"
        keys |= {f"{b}.norm1.weight": (dim,), f"{b}.norm1.bias": (dim,), f"{b}.attn.to_qkv.weight": (3 * dim, dim),
                 f"{b}.attn.to_qkv.bias": (3 * dim,), f"{b}.attn.proj.weight": (dim, dim), f"{b}.attn.proj.bias": (dim,),
                 f"{b}.norm2.weight": (dim,), f"{b}.norm2.bias": (dim,), f"{b}.mlp.0.weight": (4 * dim, dim),
                 f"{b}.mlp.0.bias": (4 * dim,), f"{b}.mlp.2.weight": (dim, 4 * dim), f"{b}.mlp.2.bias": (dim,)}
    for j in range(1, 5):
        n = necks[j - 1]
        keys |= {f"fc{j}.0.weight": (dim, 2 * dim), f"fc{j}.0.bias": (dim,), f"conv{j}.0.weight": (n, dim, 1, 1),
                 f"conv{j}.0.bias": (n,)}
        resize_key = {1: ((n, n, 4, 4)), 2: (n, n, 2, 2), 4: (n, n, 3, 3)}
        last = 1 if j == 3 else 2
        if j in resize_key:
            keys |= {f"conv{j}.1.weight": resize_key[j], f"conv{j}.1.bias": (n,)}
        keys[f"conv{j}.{last}.weight"] = (fusion, n, 3, 3)
        for r in (1, 2):
            for c in (1, 3):
                keys |= {f"fusion{j}.layer{r}.residual.{c}.weight": (fusion, fusion, 3, 3),
                         f"fusion{j}.layer{r}.residual.{c}.bias": (fusion,)}
        keys |= {f"fusion{j}.conv_out.weight": (fusion, fusion, 1, 1), f"fusion{j}.conv_out.bias": (fusion,)}
    keys |= {"head.0.weight": (fusion // 2, fusion, 3, 3), "head.0.bias": (fusion // 2,),
             "head.2.weight": (32, fusion // 2, 3, 3), "head.2.bias": (32,), "head.4.weight": (32, 1, 1, 1),
             "head.4.bias": (1,)}
    return keys


def test_every_real_size_key_of_vgens_midas_maps_both_ways() -> None:
    want = vgen_midas_keys()
    # 4 embedding tensors, 12 per ViT block, 15 per neck stage (+2 for the three resizing ones), 6 in the head
    assert len(want) == 4 + 24 * 12 + 4 * 15 + 3 * 2 + 6 == 364
    large = DPTConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      image_size=384, neck_hidden_sizes=[256, 512, 1024, 1024], backbone_out_indices=[5, 11, 17, 23],
                      layer_norm_eps=1e-5)  # Intel/dpt-large's config (eps: VGen's LayerNorm default)
    with torch.device("meta"):
        model = DPTForDepthEstimation(large)
    got = {k: tuple(v.shape) for k, v in to_vgen(model.state_dict()).items()}
    assert got == want  # nothing missing, nothing extra, every shape
    vg = {k: torch.empty(s, device="meta") for k, s in want.items()}
    cfg = config_of(vg)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.image_size,
            cfg.backbone_out_indices, cfg.neck_hidden_sizes) == (1024, 24, 16, 384, [5, 11, 17, 23],
                                                                 [256, 512, 1024, 1024])
    mapped = from_vgen(vg, cfg)
    assert set(mapped) == set(model.state_dict())
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _vgen_midas_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, heads: int) -> torch.Tensor:
    """VGen's MiDaS.forward (tools/annotator/depth) re-derived with functional ops on VGen's own tensors."""
    def conv(name: str, h: torch.Tensor, **kw) -> torch.Tensor:
        return F.conv2d(h, sd[f"{name}.weight"], sd[f"{name}.bias"] if f"{name}.bias" in sd else None, **kw)

    def convt(name: str, h: torch.Tensor, stride: int) -> torch.Tensor:
        return F.conv_transpose2d(h, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=stride)

    def lin(name: str, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, sd[f"{name}.weight"], sd[f"{name}.bias"])

    b, _, h, w = x.shape
    p = sd["patch_embedding.weight"].shape[-1]
    hp, wp, dim = h // p, w // p, sd["cls_embedding"].shape[-1]
    grid = round((sd["pos_embedding"].shape[1] - 1) ** 0.5)
    pos = sd["pos_embedding"][:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, size=(hp, wp), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    pos = torch.cat([sd["pos_embedding"][:, :1], pos.reshape(1, hp * wp, dim)], 1)
    t = conv("patch_embedding", x, stride=p).flatten(2).permute(0, 2, 1)
    t = torch.cat([sd["cls_embedding"].repeat(b, 1, 1), t], 1) + pos
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    feats = []
    for i in range(layers):
        n = f"blocks.{i}"
        y = F.layer_norm(t, (dim,), sd[f"{n}.norm1.weight"], sd[f"{n}.norm1.bias"], eps=1e-5)
        q, k, v = lin(f"{n}.attn.to_qkv", y).view(b, -1, heads * 3, dim // heads).chunk(3, dim=2)
        attn = torch.einsum("binc,bjnc->bnij", q, k) / (dim // heads) ** 0.5
        y = torch.einsum("bnij,bjnc->binc", attn.softmax(-1), v).reshape(b, -1, dim)
        t = t + lin(f"{n}.attn.proj", y)
        y = F.layer_norm(t, (dim,), sd[f"{n}.norm2.weight"], sd[f"{n}.norm2.bias"], eps=1e-5)
        t = t + lin(f"{n}.mlp.2", F.gelu(lin(f"{n}.mlp.0", y)))
        if (i + 1) % (layers // 4) == 0:
            feats.append(t)
    outs = []
    for j, f in enumerate(feats, 1):
        f = F.gelu(lin(f"fc{j}.0", torch.cat([f[:, 1:], f[:, :1].expand_as(f[:, 1:])], -1)))
        f = f.permute(0, 2, 1).unflatten(2, (hp, wp))
        f = conv(f"conv{j}.0", f)
        if j == 1:
            f = conv("conv1.2", convt("conv1.1", f, 4), padding=1)
        elif j == 2:
            f = conv("conv2.2", convt("conv2.1", f, 2), padding=1)
        elif j == 3:
            f = conv("conv3.1", f, padding=1)
        else:
            f = conv("conv4.2", conv("conv4.1", f, stride=2, padding=1), padding=1)
        outs.append(f)

    def res(name: str, h: torch.Tensor) -> torch.Tensor:
        return h + conv(f"{name}.residual.3", F.relu(conv(f"{name}.residual.1", F.relu(h), padding=1)), padding=1)

    def fuse(j: int, a: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        a = res(f"fusion{j}.layer2", a if skip is None else a + res(f"fusion{j}.layer1", skip))
        return conv(f"fusion{j}.conv_out", F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=True))

    y = fuse(1, fuse(2, fuse(3, fuse(4, outs[3]), outs[2]), outs[1]), outs[0])
    y = conv("head.0", y, padding=1)
    y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
    y = F.relu(conv("head.2", y, padding=1))
    return F.relu(F.conv_transpose2d(y, sd["head.4.weight"], sd["head.4.bias"]))[:, 0]


def test_the_mapped_model_computes_vgens_midas_forward(tmp_path: Path) -> None:
    weights = make_tiny_depth(tmp_path / "midas-tiny", "vgen")
    vg = load_state_dict(weights / "midas_v3_dpt_large.pth")
    assert set(vg) == set(vgen_midas_keys(128, 4, (16, 32, 64, 64), 32, 4))  # VGen's key names, tiny widths
    model = load_dpt(weights / "midas_v3_dpt_large.pth")
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 96) * 2 - 1  # non-square, as VGen's 448×256
    with torch.no_grad():
        ours = predict_depth(model, x)
        ref = _vgen_midas_forward(vg, x, heads=model.config.num_attention_heads)
    assert ours.shape == (2, 64, 96) and ref.abs().max() > 1
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-3)


def test_depth_on_a_real_clip_is_vgens_scaled_depth_in_both_formats(registry, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    spec = registry.extractor("composer_conditions.depth")
    params = {"num_frames": 3, "sample_fps": 6, "width": 96, "height": 64, "batch_size": 2}
    vgen_dir = make_tiny_depth(tmp_path / "vgen", "vgen")
    video, run = extract(spec, clip, tmp_path, params, weights=vgen_dir)
    assert video.frames.shape == (3, 64, 96, 3) and (video.frames[..., 0] == video.frames[..., 1]).all()
    src = np.stack([resize(f, 96, 64) for f in decoded_frames(clip)[::4][:3]])
    x = torch.from_numpy(src).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        depth = (predict_depth(load_dpt(vgen_dir), (x - 0.5) / 0.5) / 20).clamp(0, 10)
    want = np.clip(np.rint(depth.numpy() * DEPTH_LEVELS), 0, 255)
    assert np.abs(video.frames[..., 0].astype(float) - want).max() <= 1
    assert video.frames.std() > 1  # not a constant picture
    hub, _ = extract(spec, clip, tmp_path, params, weights=make_tiny_depth(tmp_path / "hub", "transformers"))
    assert np.abs(hub.frames.astype(int) - video.frames.astype(int)).max() <= 1  # the same model, the hub's format


def test_missing_depth_weights_name_the_fetch_command(registry, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n=4)
    with pytest.raises(WeightsMissing) as e:
        extract(registry.extractor("composer_conditions.depth"), clip, tmp_path, {"num_frames": 1, "width": 32,
                                                                                  "height": 32})
    assert "vgen models fetch composer_conditions.midas_v3_dpt_large" in e.value.hint
