"""SR600's two noise schedules and its two loops (vgen-notes §4.3, §9), on diffusers where it computes the same.

VGen's ``DiffusionDDIMSR`` holds two sigma-parameterised processes over 1000 steps, both v-prediction:

- ``reverse_diffusion`` (DDIM inversion): the Nichol cosine schedule (``squaredcos_cap_v2``), σ_t = √(1 − ᾱ_t);
- ``forward_diffusion`` (sampling): ``logsnr_cosine_interp``, logSNR cosine between −15 and 15 shifted by a scale
  interpolated from 2 (t = 0) to 4 (t = 999), σ_t = √sigmoid(−logSNR_t), in float32 as VGen builds it.

Both configs ask for zero terminal SNR, but VGen applies it only when the last σ is more than 1e-4 from 1, and
neither schedule's is (cosine: 1 − 1.2e-9; logsnr: 1.0 in float32), so both are used unchanged — and so here.

**Inversion** (:func:`ddim_invert`, VGen's ``ddim_reverse_sample_loop``): for t = 0, s, 2s, … < T (s = T // steps,
T = total_noise_levels: 700 // 30 = 23, 31 steps) predict x̂0 and ε at t from the model (v-prediction, no guidance)
and move to min(t + s, T − 1): x ← α x̂0 + σ ε. diffusers' ``DDIMInverseScheduler`` steps between other timestep
pairs (it evaluates the model at the target step), so this loop is ours.

**Sampling** (:func:`sample_sde`, VGen's ``sample`` with ``dpmpp_2m_sde``): ``steps + 1`` "trailing" times
``arange(t_max, t_min − 1, −(t_max − t_min + 1)/(steps + 1))`` (fractional), their σ by log-linear interpolation of
the k-diffusion σ = σ_t/α_t, a final 0, and the penultimate σ dropped (VGen's rule for this solver) → ``steps``
model calls. The model sees the VP sample at the integer time nearest each σ (VGen's ``_sigma_to_t`` then round) and
its x̂0 is formed with that integer step's α, σ — the "model-time mapping". The update itself is diffusers'
``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", solver_order=2, solver_type="midpoint")`` on
these σ, given x̂0 (``prediction_type="sample"``) and the step's noise (``variance_noise``): the same formula as
VGen's k-diffusion solver written in VP variables. VGen draws the noise from a Brownian tree (independent normal
increments per step); here each step's noise is a seeded N(0, I) draw, the same distribution.

VGen starts sampling from ``x = inverted · σ_k(t_max)`` in k-diffusion units, i.e. the model's first input is the
inverted latent times the VP σ at t_max (not the inverted latent itself): reproduced as is.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

NUM_TRAIN_TIMESTEPS = 1000
ModelFn = Callable[[torch.Tensor, int], torch.Tensor]  # (VP sample, integer t) -> v prediction


# -- schedules -----------------------------------------------------------------------------------------------------
def cosine_sigmas(n: int = NUM_TRAIN_TIMESTEPS, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """VP σ_t = √(1 − ᾱ_t) of the Nichol cosine schedule (betas capped at ``max_beta``), float64."""
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f((i + 1) / n) / f(i / n), max_beta) for i in range(n)], dtype=torch.float64)
    return torch.sqrt(1 - torch.cumprod(1 - betas, 0))


def logsnr_cosine_interp_sigmas(n: int = NUM_TRAIN_TIMESTEPS, scale_min: float = 2.0, scale_max: float = 4.0,
                                logsnr_min: float = -15.0, logsnr_max: float = 15.0) -> torch.Tensor:
    """VP σ_t of the ``logsnr_cosine_interp`` schedule, float32 (VGen builds it in float32)."""
    a_min, a_max = math.atan(math.exp(-0.5 * logsnr_min)), math.atan(math.exp(-0.5 * logsnr_max))
    u = torch.linspace(1, 0, n)  # 1 at t = 0 (logSNR max) … 0 at t = n − 1
    base = -2 * torch.log(torch.tan(a_min + u * (a_max - a_min)))
    shifted_min, shifted_max = base + 2 * math.log(1 / scale_min), base + 2 * math.log(1 / scale_max)
    return torch.sqrt(torch.sigmoid(-(u * shifted_min + (1 - u) * shifted_max)))


def _log_k_sigmas(vp: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(vp ** 2 / (1 - vp ** 2)).log()


def t_to_sigma(t: torch.Tensor, vp: torch.Tensor) -> torch.Tensor:
    """k-diffusion σ (= σ_t/α_t) at fractional times ``t``: linear interpolation of log σ between integer steps."""
    t = t.float()
    lo, hi, w = t.floor().long(), t.ceil().long(), t.frac()
    log_s = _log_k_sigmas(vp).to(t)
    out = (1 - w) * log_s[lo] + w * log_s[hi]
    out[torch.isnan(out) | torch.isinf(out)] = float("inf")
    return out.exp()


def sigma_to_t(sigma: torch.Tensor, vp: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`t_to_sigma` (fractional times), for finite σ."""
    log_s = _log_k_sigmas(vp).to(sigma)
    ls = sigma.log()
    d = ls - log_s[:, None]
    lo = d.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=log_s.shape[0] - 2)
    w = ((log_s[lo] - ls) / (log_s[lo] - log_s[lo + 1])).clamp(0, 1)
    return ((1 - w) * lo + w * (lo + 1)).view(sigma.shape)


def trailing_times(steps: int, t_max: int, t_min: int = 0) -> torch.Tensor:
    """VGen's "trailing" discretisation: ``steps`` fractional times from ``t_max`` down, stride (t_max − t_min + 1)/steps."""
    return torch.arange(t_max, t_min - 1, -((t_max - t_min + 1) / steps)).clamp_(t_min, t_max)


def sde_schedule(steps: int, t_max: int, vp: torch.Tensor, t_min: int = 0) -> tuple[torch.Tensor, list[int]]:
    """(k-diffusion σ of each step plus the final 0, the integer model time of each step) for ``steps`` model calls:
    ``steps + 1`` trailing times, then the penultimate σ dropped (VGen's rule for DPM-Solver++(2M) SDE)."""
    times = trailing_times(steps + 1, t_max, t_min).float()
    sigmas = torch.cat([t_to_sigma(times, vp), torch.zeros(1)])
    sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    model_t = [int(sigma_to_t(s.view(1), vp).round().long()) for s in sigmas[:-1]]
    return sigmas, model_t


# -- guidance --------------------------------------------------------------------------------------------------------
def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float, rescale: float) -> torch.Tensor:
    """u + s·(c − u), then (``rescale`` > 0) the std-matching rescale of arXiv:2305.08891 per sample (diffusers'
    ``rescale_noise_cfg``: the same formula VGen applies to its v output)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    out = uncond + scale * (cond - uncond)
    return rescale_noise_cfg(out, cond, guidance_rescale=rescale) if rescale > 0 else out


# -- the two loops ---------------------------------------------------------------------------------------------------
def ddim_invert(model: ModelFn, x0: torch.Tensor, vp: torch.Tensor, *, total_noise_levels: int = 700,
                steps: int = 30, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """VGen's deterministic DDIM inversion of ``x0`` (v-prediction) up to t = ``total_noise_levels`` − 1 on the VP
    σ table ``vp`` (the cosine schedule); float32 arithmetic, as VGen's tables are."""
    vp = vp.float()
    alpha = torch.sqrt(1 - vp ** 2)
    stride = total_noise_levels // steps
    times = list(range(0, total_noise_levels, stride))
    x = x0.float()
    for i, t in enumerate(times):
        v = model(x, t).float()
        a, s = alpha[t].to(x.device), vp[t].to(x.device)
        x0_hat = a * x - s * v
        eps = (x - a * x0_hat) / s
        nxt = min(t + stride, total_noise_levels - 1)
        x = alpha[nxt].to(x.device) * x0_hat + vp[nxt].to(x.device) * eps
        if on_step is not None:
            on_step(i + 1, len(times))
    return x


def make_sde_scheduler(vp: torch.Tensor):
    """diffusers' DPM-Solver++(2M) SDE (midpoint) taking x̂0 directly, its betas derived from ``vp`` (they only
    build it: :func:`sample_sde` sets VGen's σ per step)."""
    from diffusers import DPMSolverMultistepScheduler

    ac = (1 - vp.double() ** 2).clamp(min=2.0 ** -24)  # the last σ is 1.0: keep ᾱ > 0 as diffusers' zero-SNR does
    betas = (1 - torch.cat([ac[:1], ac[1:] / ac[:-1]])).clamp(max=0.999)
    return DPMSolverMultistepScheduler(
        num_train_timesteps=len(vp), trained_betas=betas.tolist(), algorithm_type="sde-dpmsolver++", solver_order=2,
        solver_type="midpoint", prediction_type="sample", final_sigmas_type="zero", lower_order_final=False,
        thresholding=False)


def sample_sde(model: ModelFn, start: torch.Tensor, vp: torch.Tensor, noises: Callable[[int], torch.Tensor], *,
               steps: int = 30, t_max: int = 699,
               on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """VGen's ``sample(solver='dpmpp_2m_sde', discretization='trailing')`` from ``start`` (the inverted latent) on the
    VP σ table ``vp`` (logsnr_cosine_interp). ``model(x, t)`` returns the (guided) v prediction at integer ``t``;
    ``noises(i)`` the N(0, I) noise of step ``i``. Returns x̂0 (float32)."""
    sigmas, model_t = sde_schedule(steps, t_max, vp)
    scheduler = make_sde_scheduler(vp)
    scheduler.set_timesteps(timesteps=model_t)
    scheduler.sigmas = sigmas.float()  # VGen's σ (fractional trailing times), not diffusers' interpolation
    scheduler.set_begin_index(0)
    vp32 = vp.float()
    alpha = torch.sqrt(1 - vp32 ** 2)
    s0 = sigmas[0]
    x = start.float() * (s0 / torch.sqrt(s0 ** 2 + 1))  # VGen's x = start·σ_k, seen by the model as x·c_in
    for i, t in enumerate(model_t):
        v = model(x, t).float()
        x0_hat = alpha[t].to(x.device) * x - vp32[t].to(x.device) * v
        x = scheduler.step(x0_hat, t, x, variance_noise=noises(i), return_dict=False)[0]
        if on_step is not None:
            on_step(i + 1, len(model_t), x0_hat)
    return x


def inversion_times(total_noise_levels: int, steps: int) -> Sequence[int]:
    """The model times of :func:`ddim_invert` (for logs and progress)."""
    return range(0, total_noise_levels, total_noise_levels // steps)
