"""SR600 against VGen's own computations, re-derived here from its code (tools/modules/unet/unet_sr600.py,
tools/modules/diffusions/diffusion_gauss.py, schedules.py) on tiny random weights:

(a) the UNet's forward at a 90-row latent equals a forward that applies VGen's geometry by hand (convs padded
    (2, 1), nearest ×2 then one row cropped top and bottom, the first two decoder layers' gains and spectral damping);
(b) the DDIM inversion equals VGen's ``ddim_reverse_sample_loop`` (float64);
(c) the DPM-Solver++(2M) SDE sampling equals VGen's ``sample(solver='dpmpp_2m_sde', discretization='trailing')``
    with its k-diffusion solver (float64), given the same noise tensor at each step.

The relative errors are printed (``-s``) for the report.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from plugins.sr600 import schedule as sch
from plugins.sr600.unet import tiny_sr600_unet


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


# -- (a) the UNet geometry ----------------------------------------------------------------------------------------
def vgen_fourier(x: torch.Tensor, scale: float) -> torch.Tensor:
    """VGen's Fourier_filter(threshold=1): the centre 2×2 of the shifted 2-D spectrum times ``scale``."""
    freq = torch.fft.fftshift(torch.fft.fftn(x.float(), dim=(-2, -1)), dim=(-2, -1))
    mask = torch.ones_like(freq.real)
    h, w = freq.shape[-2:]
    mask[..., h // 2 - 1:h // 2 + 1, w // 2 - 1:w // 2 + 1] = scale
    return torch.fft.ifftn(torch.fft.ifftshift(freq * mask, dim=(-2, -1)), dim=(-2, -1)).real.to(x.dtype)


def reference_forward(unet, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """VGen's UNetSD_SR600.forward over the same parameters, block by block, with its geometry written out."""
    b, _, f, h, w = x.shape
    emb = unet.time_embedding(unet.time_proj(t.expand(b)).to(x.dtype)).repeat_interleave(f, 0)
    ctx = context.repeat_interleave(f, 0)
    hs = x.permute(0, 2, 1, 3, 4).reshape(b * f, -1, h, w)
    hs = unet.conv_in(hs)
    hs = unet.transformer_in(hs, num_frames=f).sample
    skips = [hs]
    for block in unet.down_blocks:
        attns = getattr(block, "attentions", None)
        for i, (res, tconv) in enumerate(zip(block.resnets, block.temp_convs)):
            hs = tconv(res(hs, emb), num_frames=f)
            if attns is not None:
                hs = attns[i](hs, encoder_hidden_states=ctx).sample
                hs = block.temp_attentions[i](hs, num_frames=f).sample
            skips.append(hs)
        if block.downsamplers is not None:
            conv = block.downsamplers[0].conv
            hs = F.conv2d(hs, conv.weight, conv.bias, stride=2, padding=(2, 1))  # VGen: Downsample(padding=(2, 1))
            skips.append(hs)
    mid = unet.mid_block
    hs = mid.temp_convs[0](mid.resnets[0](hs, emb), num_frames=f)
    hs = mid.attentions[0](hs, encoder_hidden_states=ctx).sample
    hs = mid.temp_attentions[0](hs, num_frames=f).sample
    hs = mid.temp_convs[1](mid.resnets[1](hs, emb), num_frames=f)
    k = 0  # VGen's output block index
    for block in unet.up_blocks:
        attns = getattr(block, "attentions", None)
        for i, (res, tconv) in enumerate(zip(block.resnets, block.temp_convs)):
            skip = skips.pop()
            if k in (0, 1):  # b_num 0: ×1.1, s 0.6; b_num 1: ×1.2, s 0.4
                c = hs.shape[1]
                hs = hs.clone()
                hs[:, :c // 2] = hs[:, :c // 2] * (1.1, 1.2)[k]
                skip = vgen_fourier(skip, (0.6, 0.4)[k])
            hs = tconv(res.forward(torch.cat([hs, skip], 1), emb), num_frames=f)  # .forward: not through our hooks
            if attns is not None:
                hs = attns[i](hs, encoder_hidden_states=ctx).sample
                hs = block.temp_attentions[i](hs, num_frames=f).sample
            k += 1
        if block.upsamplers is not None:
            hs = F.interpolate(hs, scale_factor=2, mode="nearest")[..., 1:-1, :]  # UpsampleSR600
            hs = block.upsamplers[0].conv(hs)
    hs = unet.conv_out(unet.conv_act(unet.conv_norm_out(hs)))
    return hs.reshape(b, f, *hs.shape[1:]).permute(0, 2, 1, 3, 4)


def test_unet_forward_at_90_rows_equals_vgens_geometry_by_hand() -> None:
    torch.manual_seed(0)
    unet = tiny_sr600_unet(3).double()
    shapes: list[tuple[int, int]] = []
    hooks = [b.downsamplers[0].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[-2:])))
             for b in unet.down_blocks if b.downsamplers is not None]
    hooks += [b.upsamplers[0].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[-2:])))
              for b in unet.up_blocks if b.upsamplers is not None]
    x = torch.randn(1, 4, 2, 90, 16, dtype=torch.float64)
    t = torch.tensor([421])
    context = torch.randn(1, 77, 64, dtype=torch.float64)
    with torch.no_grad():
        ours = unet(x, t, encoder_hidden_states=context, return_dict=False)[0]
        ref = reference_forward(unet, x, t, context)
    for h in hooks:
        h.remove()
    # vgen-notes §9: 90 → 46 → 24 → 13, then 26→24, 48→46, 92→90 (the width halves and doubles as usual)
    assert [s[0] for s in shapes] == [46, 24, 13, 24, 46, 90]
    assert ours.shape == x.shape
    err = rel(ours, ref)
    print(f"\n[fidelity] UNet forward at 90×16 latents: max rel error {err:.2e}")
    assert err < 1e-10


def test_without_the_sr600_geometry_the_90_row_latent_does_not_fit() -> None:
    """The plain diffusers geometry rounds 90 → 45 → 23 → 12 and back to 96: the padding and crop are what make 720p
    work (and the skip re-weighting is what makes the output VGen's)."""
    from diffusers import UNet3DConditionModel

    from plugins.sr600.unet import tiny_config

    sr = tiny_sr600_unet(3)
    plain = UNet3DConditionModel(**tiny_config())
    plain.load_state_dict(sr.state_dict())
    x, t, ctx = torch.randn(1, 4, 2, 90, 16), torch.tensor([10]), torch.randn(1, 77, 64)
    with torch.no_grad():
        a = sr(x, t, encoder_hidden_states=ctx, return_dict=False)[0]
        b = plain(x, t, encoder_hidden_states=ctx, return_dict=False)[0]
    assert a.shape == b.shape == x.shape  # diffusers interpolates to the skip's size: it runs, but computes otherwise
    assert rel(a, b) > 1e-2


# -- schedules (VGen's schedules.py re-derived) -----------------------------------------------------------------------
def vgen_cosine_sigmas() -> torch.Tensor:
    betas = []
    for step in range(1000):
        fn = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas.append(min(1.0 - fn((step + 1) / 1000) / fn(step / 1000), 0.999))
    return torch.sqrt(1 - torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), dim=0)).float()


def vgen_logsnr_sigmas() -> torch.Tensor:
    t = torch.linspace(1, 0, 1000)
    t_min, t_max = math.atan(math.exp(7.5)), math.atan(math.exp(-7.5))
    base = -2 * torch.log(torch.tan(t_min + t * (t_max - t_min)))
    logsnr = t * (base + 2 * math.log(1 / 2)) + (1 - t) * (base + 2 * math.log(1 / 4))
    return torch.sqrt(torch.sigmoid(-logsnr)).float()


def test_schedules_are_vgens_and_zero_snr_leaves_them_unchanged() -> None:
    cos, logsnr = vgen_cosine_sigmas(), vgen_logsnr_sigmas()
    assert torch.equal(sch.cosine_sigmas().float(), cos)
    assert torch.equal(sch.logsnr_cosine_interp_sigmas(), logsnr)
    # VGen rescales to zero terminal SNR only when the last σ is more than 1e-4 from 1: neither is
    assert abs(float(cos.max()) - 1) < 1e-4 and abs(float(logsnr.max()) - 1) < 1e-4
    sigmas, model_t = sch.sde_schedule(30, 699, logsnr)
    assert len(model_t) == 30 and model_t[0] == 699 and model_t[-1] == 44 and float(sigmas[-1]) == 0.0
    assert list(sch.inversion_times(700, 30)) == list(range(0, 700, 23)) and len(sch.inversion_times(700, 30)) == 31


# -- (b) inversion --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    unet = tiny_sr600_unet(5).double()
    torch.manual_seed(1)
    cond, uncond = torch.randn(1, 77, 64, dtype=torch.float64), torch.randn(1, 77, 64, dtype=torch.float64)

    def v(x: torch.Tensor, t: int, context: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return unet(x.double(), torch.tensor([int(t)]), encoder_hidden_states=context, return_dict=False)[0]

    return v, cond, uncond


def test_ddim_inversion_equals_vgens_loop(model) -> None:
    v, _, uncond = model
    x0 = torch.randn(1, 4, 3, 10, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sig = vgen_cosine_sigmas().double()
    alp = torch.sqrt(1 - sig ** 2)
    T, N = 700, 30
    stride = T // N
    x = x0.clone()
    for step in torch.arange(0, T, stride):  # VGen: ddim_reverse_sample_loop → ddim_reverse_sample → denoise
        t = int(step)
        out = v(x, t, uncond)
        x0_hat = alp[t] * x - sig[t] * out
        eps = (x - alp[t] * x0_hat) / sig[t]
        s = min(max(t + stride, 0), T - 1)
        x = alp[s] * x0_hat + sig[s] * eps
    ours = sch.ddim_invert(lambda xx, t: v(xx, t, uncond), x0, sch.cosine_sigmas(), total_noise_levels=T, steps=N)
    err = rel(ours, x)
    print(f"\n[fidelity] DDIM inversion 0→699 (31 steps): max rel error {err:.2e}")
    assert err < 1e-5


# -- (c) DPM-Solver++(2M) SDE -----------------------------------------------------------------------------------------
def vgen_t_to_sigma(t: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
    t = t.float()
    lo, hi, w = t.floor().long(), t.ceil().long(), t.frac()
    log_s = torch.sqrt(sig ** 2 / (1 - sig ** 2)).log().to(t)
    out = (1 - w) * log_s[lo] + w * log_s[hi]
    out[torch.isnan(out) | torch.isinf(out)] = float("inf")
    return out.exp()


def vgen_sigma_to_t(sigma: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
    log_sigmas = torch.sqrt(sig ** 2 / (1 - sig ** 2)).log().to(sigma)
    log_sigma = sigma.log()
    dists = log_sigma - log_sigmas[:, None]
    low = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=log_sigmas.shape[0] - 2)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = ((lo - log_sigma) / (lo - hi)).clamp(0, 1)
    return ((1 - w) * low + w * (low + 1)).view(sigma.shape)


def vgen_sample(v, cond, uncond, start: torch.Tensor, noises: list[torch.Tensor], *, steps: int, t_max: int,
                scale: float, rescale: float) -> torch.Tensor:
    sig32 = vgen_logsnr_sigmas()
    sig, alp = sig32.double(), torch.sqrt(1 - sig32 ** 2).double()
    n = steps + 1  # discard_penultimate_step
    times = torch.arange(t_max, -1, -((t_max + 1) / n)).clamp_(0, t_max).float()
    sigmas = torch.cat([vgen_t_to_sigma(times, sig32), torch.zeros(1)])
    sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])

    def model_fn(xt: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = int(vgen_sigma_to_t(sigma.float().view(()), sig32).round().long())
        y, u = v(xt, t, cond), v(xt, t, uncond)
        out = u + scale * (y - u)
        ratio = (y.flatten(1).std(dim=1) / (out.flatten(1).std(dim=1) + 1e-12)).view(-1, 1, 1, 1, 1)
        out = out * (rescale * ratio + (1 - rescale))
        return alp[t] * xt - sig[t] * out

    s = sigmas.double()
    x = start * s[0]
    old, h_last = None, None
    for i in range(len(s) - 1):
        denoised = model_fn(x / (s[i] ** 2 + 1) ** 0.5, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            tt, ss = -s[i].log(), -s[i + 1].log()
            h = ss - tt
            x = s[i + 1] / s[i] * (-h).exp() * x + (-2 * h).expm1().neg() * denoised
            if old is not None:
                x = x + 0.5 * (-2 * h).expm1().neg() * (h / h_last) * (denoised - old)
            x = x + noises[i] * s[i + 1] * (-2 * h).expm1().neg().sqrt()
        old, h_last = denoised, h
    return x


def test_dpmpp_2m_sde_sampling_equals_vgens_solver_given_the_same_noise(model) -> None:
    v, cond, uncond = model
    g = torch.Generator().manual_seed(4)
    start = torch.randn(1, 4, 3, 10, 16, dtype=torch.float64, generator=g)
    noises = [torch.randn(start.shape, dtype=torch.float64, generator=g) for _ in range(30)]
    ref = vgen_sample(v, cond, uncond, start, noises, steps=30, t_max=699, scale=9.0, rescale=0.3)

    def guided(x: torch.Tensor, t: int) -> torch.Tensor:
        return sch.guide(v(x, t, cond), v(x, t, uncond), 9.0, 0.3)

    ours = sch.sample_sde(guided, start, sch.logsnr_cosine_interp_sigmas(), lambda i: noises[i], steps=30, t_max=699)
    err = rel(ours, ref)
    print(f"\n[fidelity] DPM++ 2M SDE, 30 steps from t=699, CFG 9 + rescale 0.3: max rel error {err:.2e}")
    assert err < 1e-4
