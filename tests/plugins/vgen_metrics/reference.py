"""Plain-torch re-computations of the metrics' models, written from the checkpoints' state dicts (no open_clip or
timm model classes): what the plugin's numbers are checked against."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _ln(x, sd, p, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)


def _attention(x, sd, p, heads, mask=None):
    n, t, w = x.shape
    q, k, v = (x @ sd[p + ".in_proj_weight"].T + sd[p + ".in_proj_bias"]).split(w, dim=-1)
    q, k, v = (z.reshape(n, t, heads, w // heads).transpose(1, 2) for z in (q, k, v))
    a = (q @ k.transpose(-1, -2)) / (w // heads) ** 0.5
    if mask is not None:
        a = a + mask
    y = (a.softmax(-1) @ v).transpose(1, 2).reshape(n, t, w)
    return y @ sd[p + ".out_proj.weight"].T + sd[p + ".out_proj.bias"]


def _act(x, quick):
    return x * torch.sigmoid(1.702 * x) if quick else F.gelu(x)


def _blocks(x, sd, prefix, heads, quick, mask=None):
    i = 0
    while f"{prefix}{i}.ln_1.weight" in sd:
        p = f"{prefix}{i}"
        x = x + _attention(_ln(x, sd, p + ".ln_1"), sd, p + ".attn", heads, mask)
        h = _ln(x, sd, p + ".ln_2") @ sd[p + ".mlp.c_fc.weight"].T + sd[p + ".mlp.c_fc.bias"]
        x = x + _act(h, quick) @ sd[p + ".mlp.c_proj.weight"].T + sd[p + ".mlp.c_proj.bias"]
        i += 1
    return x


def clip_image(sd, images, *, head_width, quick):
    """OpenCLIP ViT image features (not normalised) of CLIP-normalised ``images``."""
    w = sd["visual.conv1.weight"]
    x = F.conv2d(images, w, stride=w.shape[-1]).flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + sd["visual.positional_embedding"]
    x = _ln(x, sd, "visual.ln_pre")
    x = _blocks(x, sd, "visual.transformer.resblocks.", w.shape[0] // head_width, quick)
    return _ln(x[:, 0], sd, "visual.ln_post") @ sd["visual.proj"]


def clip_text(sd, tokens, *, head_width, quick):
    """OpenCLIP text features (not normalised) of token ids ``[N, 77]`` (pooled at the end-of-text token)."""
    x = sd["token_embedding.weight"][tokens] + sd["positional_embedding"]
    t = x.shape[1]
    mask = torch.full((t, t), float("-inf")).triu(1)
    x = _blocks(x, sd, "transformer.resblocks.", x.shape[-1] // head_width, quick, mask)
    x = _ln(x, sd, "ln_final")
    return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ sd["text_projection"]


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def dino_cls(sd, images):
    """DINO ViT CLS feature (after the final LayerNorm, eps 1e-6) of ImageNet-normalised ``images``."""
    w = sd["patch_embed.proj.weight"]
    x = F.conv2d(images, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_token"].expand(x.shape[0], 1, -1), x], dim=1) + sd["pos_embed"]
    heads = w.shape[0] // 64
    i = 0
    while f"blocks.{i}.norm1.weight" in sd:
        p = f"blocks.{i}"
        h = _ln(x, sd, p + ".norm1", 1e-6)
        n, t, d = h.shape
        q, k, v = (h @ sd[p + ".attn.qkv.weight"].T + sd[p + ".attn.qkv.bias"]).reshape(n, t, 3, heads, d // heads
                                                                                        ).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-1, -2)) * (d // heads) ** -0.5).softmax(-1)
        y = (a @ v).transpose(1, 2).reshape(n, t, d)
        x = x + y @ sd[p + ".attn.proj.weight"].T + sd[p + ".attn.proj.bias"]
        h = F.gelu(_ln(x, sd, p + ".norm2", 1e-6) @ sd[p + ".mlp.fc1.weight"].T + sd[p + ".mlp.fc1.bias"])
        x = x + h @ sd[p + ".mlp.fc2.weight"].T + sd[p + ".mlp.fc2.bias"]
        i += 1
    return _ln(x, sd, "norm", 1e-6)[:, 0]
