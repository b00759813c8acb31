"""VideoComposer's condition path equals VGen's, re-derived here from VGen's ``UNetSD_TFT2V.forward`` (read-only
source, never imported) on the tiny twin's VGen-named tensors: each condition's stem (conv, SiLU, pool to half the
video size, two stride-2 convs), its ``Transformer_v2`` over frames (pre-norm attention with the fused ``to_qkv``,
then an un-normed GELU feed-forward, both residual), the sum in VGen's order, the concat after the latent, and the
style image's 4 tokens after the text."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import UNet3DConditionModel

from plugins.videocomposer.tiny import T2V_FILE, make_tiny_weights
from plugins.videocomposer.unet import CompositionUNet, load_composition_unet
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.tiny import TEXT_WIDTH

FR, H, W = 4, 64, 48  # frames and video size (latent 8×6)
VGEN_ORDER = [("depth", "depth_embedding", "depth_embedding_after", 1),
              ("local_image", "local_image_embedding", "local_image_embedding_after", 3),
              ("motion", "motion_embedding", "motion_embedding_after", 2),
              ("sketch", "sketch_embedding", "sketch_embedding_after", 1),
              ("single_sketch", "single_sketch_embedding", "single_sketch_embedding_after", 1),
              ("masked", "masked_embedding", "mask_embedding_after", 4)]


@pytest.fixture(scope="module")
def vgen_sd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    folder = make_tiny_weights(tmp_path_factory.mktemp("vcomp") / "t2v", seed=5)
    return load_state_dict(folder / T2V_FILE)


@pytest.fixture(scope="module")
def unet(vgen_sd: dict[str, torch.Tensor]) -> CompositionUNet:
    return load_composition_unet(vgen_sd)


def vgen_branch(sd: dict[str, torch.Tensor], stem: str, after: str, x: torch.Tensor) -> torch.Tensor:
    """One condition as VGen computes it (eval mode: DropPath and dropout are identities)."""
    b, c, f, h_in, w_in = x.shape
    x = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h_in, w_in)  # 'b c f h w -> (b f) c h w'
    x = F.silu(F.conv2d(x, sd[f"{stem}.0.weight"], sd[f"{stem}.0.bias"], padding=1))
    x = F.adaptive_avg_pool2d(x, (h_in // 2, w_in // 2))  # config.resolution = the video size
    x = F.silu(F.conv2d(x, sd[f"{stem}.3.weight"], sd[f"{stem}.3.bias"], stride=2, padding=1))
    x = F.conv2d(x, sd[f"{stem}.5.weight"], sd[f"{stem}.5.bias"], stride=2, padding=1)
    ch, h, w = x.shape[1:]
    x = x.reshape(b, f, ch, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, f, ch)  # '(b f) c h w -> (b h w) f c'
    p = f"{after}.layers.0."
    # PreNormattention(Attention(heads=2, dim_head=concat_dim)): norm, fused qkv chunked in 3, softmax(qkᵀ·d^-½)v
    n = F.layer_norm(x, (ch,), sd[p + "0.norm.weight"], sd[p + "0.norm.bias"])
    q, k, v = F.linear(n, sd[p + "0.fn.to_qkv.weight"]).chunk(3, dim=-1)
    heads, d = 2, ch
    q, k, v = (t.reshape(t.shape[0], f, heads, d).transpose(1, 2) for t in (q, k, v))  # 'b n (h d) -> b h n d'
    attn = (torch.einsum("bhid,bhjd->bhij", q, k) * d ** -0.5).softmax(dim=-1)
    out = torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(x.shape[0], f, heads * d)
    x = F.linear(out, sd[p + "0.fn.to_out.0.weight"], sd[p + "0.fn.to_out.0.bias"]) + x
    # FeedForward(dim, mlp_dim): Linear → GELU → Dropout → Linear, residual, no norm
    hidden = F.gelu(F.linear(x, sd[p + "1.net.0.0.weight"], sd[p + "1.net.0.0.bias"]))
    x = F.linear(hidden, sd[p + "1.net.2.weight"], sd[p + "1.net.2.bias"]) + x
    return x.reshape(b, h, w, f, ch).permute(0, 4, 3, 1, 2)  # '(b h w) f c -> b c f h w'


def vgen_concat(sd: dict[str, torch.Tensor], conds: dict[str, torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
    concat = latent.new_zeros(latent.shape[0], 8, *latent.shape[2:])
    for name, stem, after, _ in VGEN_ORDER:
        if name in conds:
            concat = concat + vgen_branch(sd, stem, after, conds[name])
    return concat


def all_conditions(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.rand(1, c, FR, H, W, generator=g) * (10 if name == "depth" else 1)
            for name, _, _, c in VGEN_ORDER}


@pytest.mark.parametrize("subset", [("depth",), ("sketch",), ("local_image",), ("depth", "local_image", "masked"),
                                    tuple(n for n, *_ in VGEN_ORDER)])
def test_concat_channels_equal_vgens(vgen_sd: dict[str, torch.Tensor], unet: CompositionUNet,
                                     subset: tuple[str, ...]) -> None:
    conds = {k: v for k, v in all_conditions(1).items() if k in subset}
    latent = torch.randn(1, 4, FR, H // 8, W // 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = unet.encode_conditions(conds, latent)
    reference = vgen_concat(vgen_sd, conds, latent)
    assert reference.abs().max() > 1e-2  # the branches are live
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_the_whole_forward_concatenates_and_appends_as_vgen(vgen_sd: dict[str, torch.Tensor],
                                                           unet: CompositionUNet) -> None:
    """The composed UNet = the 3D-UNet core (whose equality with VGen's is numerics.md's) run on
    ``cat([x, concat])`` with context ``cat([text, pre_image_condition(image).view(-1, 4, ctx)])``."""
    g = torch.Generator().manual_seed(3)
    latent = torch.randn(2, 4, FR, H // 8, W // 8, generator=g)
    text = torch.randn(2, 77, TEXT_WIDTH, generator=g)
    image = torch.cat([torch.zeros(1, TEXT_WIDTH), torch.randn(1, TEXT_WIDTH, generator=g)])  # uncond: zeros
    conds = {k: v for k, v in all_conditions(4).items() if k in ("depth", "sketch", "local_image")}
    t = torch.tensor(321)
    p = "pre_image_condition."
    tokens = F.linear(F.silu(F.linear(image, vgen_sd[p + "0.weight"], vgen_sd[p + "0.bias"])),
                      vgen_sd[p + "2.weight"], vgen_sd[p + "2.bias"]).view(-1, 4, TEXT_WIDTH)
    with torch.no_grad():
        ours = unet(latent, t, text, image_embeds=image, conditions=conds, return_dict=False)[0]
        core_in = torch.cat([latent, vgen_concat(vgen_sd, conds, latent)], dim=1)
        reference = UNet3DConditionModel.forward(unet, core_in, t, encoder_hidden_states=torch.cat([text, tokens], 1),
                                                 return_dict=False)[0]
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
