"""VGen's training dropout and spatial/temporal parameter split on a diffusers UNet3DConditionModel
(sdk.ml.unet_training), each checked against a plain-torch re-derivation written from VGen's ``ResBlock`` /
``TemporalConvBlock_v2`` (tools/modules/unet/util.py) and its spatial key list."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sdk.ml.tiny import tiny_unet3d
from sdk.ml.unet_training import (VGEN_RESNET_DROPOUT, resnet_dropouts, scale_gradients, spatial_parameters,
                                  vgen_dropout)


def vgen_resblock(resnet, temp_conv, x: torch.Tensor, emb: torch.Tensor, frames: int, p: float) -> torch.Tensor:
    """VGen's ResBlock (use_scale_shift_norm False) then its temporal conv block, in train mode, on the weights of a
    diffusers resnet + TemporalConvLayer: in_layers GN→SiLU→Conv; + emb_layers(SiLU→Linear); out_layers
    GN→SiLU→Dropout(p)→Conv; + skip; then [GN→SiLU→Conv3d] and 3 × [GN→SiLU→Dropout(0.1)→Conv3d], residual."""
    def gn(m, t):
        return F.group_norm(t, m.num_groups, m.weight, m.bias, m.eps)

    h = resnet.conv1(F.silu(gn(resnet.norm1, x)))
    h = h + resnet.time_emb_proj(F.silu(emb))[:, :, None, None]
    h = resnet.conv2(F.dropout(F.silu(gn(resnet.norm2, h)), p=p, training=True))
    skip = resnet.conv_shortcut(x) if resnet.conv_shortcut is not None else x
    h = skip + h
    bf, c, hh, ww = h.shape
    v = h.view(bf // frames, frames, c, hh, ww).permute(0, 2, 1, 3, 4)  # '(b f) c h w -> b c f h w'
    identity = v
    v = temp_conv.conv1[2](F.silu(gn(temp_conv.conv1[0], v)))
    for block in (temp_conv.conv2, temp_conv.conv3, temp_conv.conv4):
        v = block[3](F.dropout(F.silu(gn(block[0], v)), p=0.1, training=True))
    v = identity + v
    return v.permute(0, 2, 1, 3, 4).reshape(bf, c, hh, ww)


def _inputs(unet, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    resnet, temp = unet.down_blocks[1].resnets[0], unet.down_blocks[1].temp_convs[0]  # 32 → 64 channels: a skip conv
    x = torch.randn(2 * 3, resnet.in_channels, 5, 6, generator=g)
    emb = torch.randn(2 * 3, resnet.time_emb_proj.in_features, generator=g)
    return resnet, temp, x, emb


def test_train_mode_resnets_drop_where_vgens_resblocks_do() -> None:
    unet = tiny_unet3d(0).train()
    resnet, temp, x, emb = _inputs(unet)

    def ours() -> torch.Tensor:
        torch.manual_seed(11)
        with torch.no_grad():
            return temp(resnet(x, emb), num_frames=3)

    def vgen() -> torch.Tensor:
        torch.manual_seed(11)
        with torch.no_grad():
            return vgen_resblock(resnet, temp, x, emb, 3, VGEN_RESNET_DROPOUT)

    before = ours()  # diffusers as built: no resnet dropout
    assert float((before - vgen()).abs().max()) > 1e-3, "without the fix the resnets do not drop"
    with vgen_dropout(unet):
        assert {d.p for d in resnet_dropouts(unet)} == {VGEN_RESNET_DROPOUT}
        after, ref = ours(), vgen()
    assert float((after - ref).abs().max()) <= 1e-6
    assert {d.p for d in resnet_dropouts(unet)} == {0.0}, "the previous probability comes back"


def test_eval_mode_output_is_unchanged() -> None:
    unet = tiny_unet3d(0).eval()
    g = torch.Generator().manual_seed(1)
    sample, text = torch.randn(1, 4, 3, 8, 8, generator=g), torch.randn(1, 77, 64, generator=g)
    with torch.no_grad():
        before = unet(sample, 500, encoder_hidden_states=text).sample
        with vgen_dropout(unet):
            during = unet(sample, 500, encoder_hidden_states=text).sample
    assert torch.equal(before, during)


def test_spatial_parameters_are_vgens_sd_key_list() -> None:
    """VGen's data/stable_diffusion_image_key_temporal_attention_x1.json: 682 keys, 863,860,164 parameters of the
    1,411,233,860 of the full T2V UNet (vgen-notes §2); the time embedding and every temporal part are left out."""
    from diffusers import UNet3DConditionModel

    from sdk.ml.convert import KeyMap
    from sdk.ml.concat_unet import ConcatUNet as TFT2VUNet

    with torch.device("meta"):
        full = UNet3DConditionModel()
    spatial = spatial_parameters(full)
    assert len(spatial) == 682 and sum(p.numel() for _, p in spatial) == 863_860_164
    vgen = {KeyMap.for_model(full).to_vgen[k] for k, _ in spatial}
    assert "input_blocks.0.0.weight" in vgen and "out.2.weight" in vgen and "input_blocks.1.1.proj_in.weight" in vgen
    assert not any(k.startswith("time_embed") or ".temopral_conv." in k or k.startswith("input_blocks.0.1.")
                   or k.startswith("input_blocks.1.2.") for k in vgen)
    with torch.device("meta"):
        tf = TFT2VUNet(num_image_tokens=4, image_embed_dim=32, block_out_channels=(32, 64), layers_per_block=1,
                       down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                       up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), attention_head_dim=8,
                       cross_attention_dim=64)
    assert not any(k.startswith("pre_image_condition.") for k, _ in spatial_parameters(tf))


def test_scale_gradients_scales_only_the_spatial_gradients() -> None:
    unet = tiny_unet3d(0).eval()
    g = torch.Generator().manual_seed(2)
    sample, text = torch.randn(1, 4, 2, 8, 8, generator=g), torch.randn(1, 77, 64, generator=g)

    def grads() -> dict[str, torch.Tensor]:
        unet.zero_grad(set_to_none=True)
        unet(sample, 300, encoder_hidden_states=text).sample.square().mean().backward()
        return {k: p.grad.clone() for k, p in unet.named_parameters() if p.grad is not None}

    plain = grads()
    handles = scale_gradients(spatial_parameters(unet), 0.5)
    scaled = grads()
    for h in handles:
        h.remove()
    names = {k for k, _ in spatial_parameters(unet)}
    assert names and set(plain) - names
    for k, gk in plain.items():
        assert torch.allclose(scaled[k], gk * 0.5 if k in names else gk, rtol=0, atol=0), k
