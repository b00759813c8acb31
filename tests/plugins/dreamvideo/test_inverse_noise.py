"""DreamVideo inverse noise (``inverse_noise_strength`` > 0) against a plain-torch re-derivation of VGen's
``DiffusionDDIM.ddim_reverse_sample_loop`` as ``inference_dreamvideo_entrance`` calls it: ``model_kwargs={'y':
zero_y}`` (the empty prompt, no ``y_image``: the motion adapters run without their condition term), no guidance,
ᾱ in float64 with ᾱ = 0 after the last step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sdk.context import JobContext, JobRequest, ModelCache

from plugins.dreamvideo.adapters import IDENTITY, MOTION, DreamVideoAdapters
from plugins.dreamvideo.params import ComposeParams

from tests.plugins.dreamvideo.conftest import write_trained_adapters

STEPS = 5  # stride 200: t = 0, 200, …, 800; the last step maps to ᾱ = 0


def vgen_reverse_loop(unet: torch.nn.Module, x0: torch.Tensor, y: torch.Tensor, ddim_timesteps: int) -> torch.Tensor:
    """Written from VGen's source: betas linspace(√0.00085, √0.012)² (float64); per step t (0, s, 2s, …),
    x̂0 = √(1/ᾱ_t)·x − √(1/ᾱ_t − 1)·out, ε = (√(1/ᾱ_t)·x − x̂0)/√(1/ᾱ_t − 1), ᾱ_next = [ᾱ, 0][min(t + s, 1000)],
    x ← √ᾱ_next·x̂0 + √(1 − ᾱ_next)·ε; every table indexed in float64, then cast to x's dtype (``_i``)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.0120 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1 - betas, dim=0)
    sqrt_recip, sqrt_recipm1 = torch.sqrt(1.0 / ac), torch.sqrt(1.0 / ac - 1)
    ac_next_table = torch.cat([ac, ac.new_zeros([1])])
    stride = 1000 // ddim_timesteps
    xt = x0
    with torch.no_grad():
        for step in torch.arange(0, 1000, stride):
            t = torch.full((xt.size(0),), int(step), dtype=torch.long)
            out = unet(xt, t, encoder_hidden_states=y, return_dict=False)[0]

            def i(tab: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                return tab[idx].view(-1, 1, 1, 1, 1).to(xt)

            x0_hat = i(sqrt_recip, t) * xt - i(sqrt_recipm1, t) * out
            eps = (i(sqrt_recip, t) * xt - x0_hat) / i(sqrt_recipm1, t)
            alphas_next = i(ac_next_table, (t + stride).clamp(0, 1000))
            xt = torch.sqrt(alphas_next) * x0_hat + torch.sqrt(1 - alphas_next) * eps
    return xt


def _base_with_adapters(dv_weights: Path, adapters: dict[str, Path]):
    """A fresh base UNet (its own cache) with both adapter sets loaded from the files, as compose attaches them."""
    from plugins.dreamvideo.formats import read_adapter
    from plugins.dreamvideo.pipeline import _condition_dim, _load, find_base, load_base

    ctx = JobContext("ref", lambda e: None, staging_dir=dv_weights.parent / "ref", models=ModelCache())
    comps = load_base(ctx, find_base(dv_weights), torch.device("cpu"), torch.float32)
    motion = read_adapter(adapters[MOTION])
    ad = DreamVideoAdapters(comps["unet"], identity=True, motion=True, condition_dim=_condition_dim(motion))
    _load(ad, comps["unet"], IDENTITY, read_adapter(adapters[IDENTITY]))
    _load(ad, comps["unet"], MOTION, motion)
    return comps, ad, motion


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> dict[str, Path]:
    """Adapters whose motion latents are 3×5 (h·w = 15, odd), 2 frames."""
    return write_trained_adapters(tmp_path_factory.mktemp("odd"), latent_shape=(4, 2, 3, 5))


@pytest.mark.parametrize("latent_hw", [(4, 4), (3, 5)])
def test_inverse_noise_equals_vgens_reverse_loop(tmp_path, dv_weights, latent_hw) -> None:
    from plugins.dreamvideo.pipeline import _condition_dim, inverse_noise

    adapters = write_trained_adapters(tmp_path / "ad", latent_shape=(4, 2, *latent_hw))
    comps, ad, motion = _base_with_adapters(dv_weights, adapters)
    unet, text = comps["unet"], comps["text_encoder"]
    z = motion.latents[0][None].float()
    # what compose holds while guiding: the [uncond, cond] appearance condition of a batch of 2
    c = torch.randn(1, _condition_dim(motion), generator=torch.Generator().manual_seed(4))
    cond, lam = torch.cat([torch.zeros_like(c), c]), torch.tensor([1.0, 2.0])
    ad.set_condition(cond, lam)
    try:
        ours = inverse_noise(unet, ad, text, z, STEPS)
        assert ad.state.condition is cond and ad.state.lam is lam, "the sampling condition is put back"

        ad.set_condition(None)  # VGen: y_image absent → no condition term
        ref = vgen_reverse_loop(unet, z, text.encode([""]), STEPS)
    finally:
        ad.detach()
    rel = float((ours - ref).norm() / ref.norm())
    assert rel <= 1e-6, rel


def test_compose_with_inverse_noise_starts_from_the_inverted_latents(tmp_path, dv_weights, odd) -> None:
    """Strength 1: the initial latents are the inverted ones exactly; guided sampling (batch 2) on an odd-sized
    latent then runs as without inverse noise. The result equals the reference inversion sampled the same way."""
    from sdk.ml.vae import decode_video, to_uint8

    from plugins.dreamvideo.formats import read_adapter
    from plugins.dreamvideo.pipeline import (ComposeGenerator, _condition_dim, _vectors, encode_text, sample_ddim,
                                             with_placeholder)

    p = ComposeParams(prompt="a <dog> turning", num_frames=2, height=24, width=40, num_inference_steps=STEPS,
                      inverse_noise_strength=1.0)
    inputs = {"adapters": {"identity_adapter": {"path": str(odd[IDENTITY]), "meta": {"token": "<dog>"}},
                           "motion_adapter": {"path": str(odd[MOTION]), "meta": {}}}}
    ctx = JobContext("g", lambda e: None, staging_dir=tmp_path / "s")
    frames = ComposeGenerator().generate(ctx, JobRequest("g", "generate", "dreamvideo.compose", p, 3, inputs,
                                                         dv_weights)).frames
    assert frames.shape == (2, 24, 40, 3)

    comps, ad, motion = _base_with_adapters(dv_weights, odd)
    unet, text, vae = comps["unet"], comps["text_encoder"], comps["vae"]
    try:
        ad.set_condition(None)
        start = vgen_reverse_loop(unet, motion.latents[0][None].float(), text.encode([""]), STEPS)
        with torch.no_grad():
            vectors = _vectors(read_adapter(odd[IDENTITY]).embedding, text)
            embeds = encode_text(text, ["", with_placeholder(p.prompt, "<dog>")], vectors)
            ad.set_condition(torch.zeros(2, _condition_dim(motion)), torch.tensor([1.0, 1.0]))  # no image: zeros in both branches
            z = sample_ddim(unet, embeds, start, STEPS, p.guidance_scale)
            ref = to_uint8(decode_video(vae, z)[0])
    finally:
        ad.detach()
    assert np.abs(ref.astype(np.int16) - frames.astype(np.int16)).max() <= 1
