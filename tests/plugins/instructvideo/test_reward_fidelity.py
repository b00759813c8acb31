"""The reward loss of one step equals VGen's computation re-derived here (vgen-notes §13) on the same tiny weights and
inputs: ``q_sample`` to t = 551, ``DiffusionDDIMReward.ddim_sample_loop_partial`` (12 of 20 steps, guidance 3, the
last step checkpointed with gradients) and ``DiffRewardModel.reward_scorer`` (decode every frame, [0, 1], Resize 224,
CLIP normalise, TSN frames given as fixed indices, HPSv2 logits' diagonal, exp(−λ|i − F//2|), 1 − mean)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from plugins.instructvideo.lora import LoRALayers
from plugins.instructvideo.pipeline import find_base
from plugins.instructvideo.trainer import edit, reward_loss

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def vgen_partial_loop(model, noise_x0, noise, y, zero_y, guide_scale=3.0, ddim_timesteps=20, starting_partial=0.6):
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, 0)
    sqrt_recip, sqrt_recipm1 = torch.sqrt(1.0 / alphas), torch.sqrt(1.0 / alphas - 1)

    def _i(table, t, x):
        return table[t].view((x.size(0),) + (1,) * (x.ndim - 1)).to(x)

    ddim_steps = (1 + torch.arange(0, 1000, 1000 // ddim_timesteps)).clamp(0, 999).flip(0)
    t_round = torch.full((noise_x0.shape[0],), int(ddim_steps[-int(starting_partial * ddim_timesteps)]))
    xt = _i(alphas.sqrt(), t_round, noise_x0) * noise_x0 + _i((1 - alphas).sqrt(), t_round, noise_x0) * noise
    stride = 1000 // ddim_timesteps

    def sample_gradient(xt, t):
        y_out = model(xt, t, y)
        u_out = model(xt, t, zero_y)
        out = u_out + guide_scale * (y_out - u_out)
        x0 = _i(sqrt_recip, t, xt) * xt - _i(sqrt_recipm1, t, xt) * out
        eps = (_i(sqrt_recip, t, xt) * xt - x0) / _i(sqrt_recipm1, t, xt)
        alphas_prev = _i(alphas, (t - stride).clamp(0), xt)
        return torch.sqrt(alphas_prev) * x0 + torch.sqrt(1 - alphas_prev) * eps

    steps = ddim_steps[-int(len(ddim_steps) * starting_partial):]
    for step in steps:
        t = torch.full((xt.shape[0],), int(step), dtype=torch.long)
        if step > steps[-1]:
            with torch.no_grad():
                xt = sample_gradient(xt, t)
        else:
            xt = checkpoint(sample_gradient, xt, t, use_reentrant=False)
    return xt


def vgen_reward_scorer(vae, clip, captions, denoised_x0, global_index, segments, lambda_tar=1.0):
    import open_clip

    video = 1.0 / 0.18215 * denoised_x0
    b, _, f = video.shape[:3]
    frames = vae.decode(video.permute(0, 2, 1, 3, 4).reshape(b * f, *video.shape[-3:])).sample
    frames = (frames * 0.5 + 0.5).clamp(0, 1)
    frames = F.interpolate(frames, size=(224, 224), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    frames = ((frames - mean) / std).reshape(b, f, 3, 224, 224)
    picked = frames[torch.arange(b).unsqueeze(-1), global_index].reshape(b * segments, 3, 224, 224)
    image_features, text_features = clip(picked, open_clip.tokenize(captions))[:2]
    logits = (image_features @ text_features.T).reshape(b, segments, b).permute(1, 0, 2)  # '(k s) x -> s k x'
    diag = torch.diagonal(logits, dim1=1, dim2=2)  # [s, k]
    coef = torch.exp(-torch.abs(global_index - f // 2) * lambda_tar)
    diag = torch.mean(coef.permute(1, 0) * diag, dim=0)
    return (1 - diag).mean()


@pytest.fixture(scope="module")
def models(iv_weights: Path):
    from sdk.ml.hps import load_hps
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.convert import load_vgen_unet
    from sdk.ml.vae import load_ldm_vae

    w = find_base(iv_weights)
    unet = load_vgen_unet(load_state_dict(w.unet)).eval()
    layers = LoRALayers(unet, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in layers.modules():
            m.up_linear.weight.copy_(0.05 * torch.randn(m.up_linear.weight.shape, generator=g))
    for p in unet.parameters():
        p.requires_grad_(False)
    for p in layers.parameters():
        p.requires_grad_(True)
    vae = load_ldm_vae(w.vae).eval().requires_grad_(False)
    scorer = load_hps(iv_weights).requires_grad_(False)
    return unet, layers, vae, scorer


def test_one_step_reward_loss_and_gradient_equal_vgens(models) -> None:
    unet, layers, vae, scorer = models
    g = torch.Generator().manual_seed(2)
    b, f, segments = 2, 4, 2
    z0 = torch.randn(b, 4, f, 4, 4, generator=g)
    noise = torch.randn(z0.shape, generator=g) + 0.1 * torch.randn(b, 4, f, 1, 1, generator=g)
    y = torch.randn(b, 77, unet.config["cross_attention_dim"], generator=g)
    zero_y = torch.randn(1, 77, unet.config["cross_attention_dim"], generator=g).expand(b, -1, -1)
    captions = ["a cat walking", "a dog running on grass"]
    indices = torch.tensor([[1, 2], [0, 3]])  # the TSN draw, fixed

    def call(x, t, ctx):
        return unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0]

    params = layers.parameters()
    ours_z = edit(call, z0, noise, y, zero_y)
    ours, reward = reward_loss(vae, scorer, ours_z, captions, indices, 1.0)
    ours_grad = torch.autograd.grad(ours, params)
    ref_z = vgen_partial_loop(call, z0, noise, y, zero_y)
    ref = vgen_reward_scorer(vae, scorer.clip, captions, ref_z, indices, segments)
    ref_grad = torch.autograd.grad(ref, params)

    assert torch.allclose(ours_z, ref_z, rtol=0, atol=1e-5), (ours_z - ref_z).abs().max()
    assert abs(float(ours.detach()) - float(ref.detach())) < 1e-6, (float(ours.detach()), float(ref.detach()))
    g_ours, g_ref = torch.cat([t.flatten() for t in ours_grad]), torch.cat([t.flatten() for t in ref_grad])
    assert g_ref.abs().max() > 0, "the reward reaches the LoRA"
    # float32 rounding apart (batched [uncond, cond] UNet calls, only the picked frames decoded): ~4e-6 of the largest
    assert (g_ours - g_ref).abs().max() <= 1e-4 * g_ref.abs().max(), (g_ours - g_ref).abs().max()
    assert reward.shape == (b,)
