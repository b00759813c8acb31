"""``instructvideo.reward``: InstructVideo's reward fine-tuning as editing (vgen-notes §13), on the shared loop.

Per step, as VGen's ``t2v_instructvideo_entrance`` with ``DiffRewardModel`` (HPSv2):

1. a real clip (``num_frames`` at ``sample_fps``, random start) is VAE-encoded (posterior sampled) → z0;
2. noised to t = ``STEP_LISTS[N][−n]`` with n = int(``starting_partial``·N) (20 steps × 0.6 → t = 551) with temporal
   offset noise ``ε + 0.1·N(0,1)[b,c,f]``: x_t = √ᾱ_t·z0 + √(1−ᾱ_t)·ε;
3. the last n DDIM steps of the list (551, 501, …, 1) with guidance u + 3·(c − u) (uncond ""): all but the final step
   without gradients, the final one with gradients under gradient checkpointing (truncated backprop, 1 step);
4. the result decoded; per video, ``segments`` segments of F/segments frames, one random frame from each (TSN); HPSv2
   score of each frame against the clip's caption, weighted by exp(−λ·|i − F/2|); reward = mean over segments;
5. loss = mean over the batch of (1 − reward).

Only the LoRA (:mod:`plugins.instructvideo.lora`, attached through hooks to the cached, frozen v1.4 base) trains;
AdamW lr 1e-5. The UNet runs in train mode (VGen's ResBlock dropout 0.1), as VGen's ``model.train()`` does. Only the
frames the reward reads are decoded: VGen decodes all F and then picks, but its VAE decodes each frame on its own,
so the picked frames' values and gradients are the same. Every random draw comes from one generator seeded with
``seed`` (clip, start, posterior, noise, TSN frames), so resume is exact.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest, WeightsMissing
from sdk.ml.checkpoints import FETCH_HINT
from sdk.ml.device import resolve_device
from sdk.ml.training import TrainingConfig, TrainingLoop, TrainingMethod
from sdk.ml.unet_training import clip_pixels, encode_latents

from plugins.instructvideo.lora import LoRALayers
from plugins.instructvideo.params import LORA_KIND, RewardParams, captioned_clips
from plugins.instructvideo.pipeline import STEP_LISTS, find_base, load_text_vae, sample_ddim

HPS_WEIGHTS_ID = "vgen_metrics.hpsv2"
UNet = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# -- the maths (also what the fidelity test checks) ---------------------------------------------------------------
def vgen_alphas() -> torch.Tensor:
    """ᾱ of linear_sd as VGen computes it (float64)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0)


def editing_steps(ddim_steps: int, starting_partial: float) -> list[int]:
    """The timesteps the editing runs: the last int(partial·N) of VGen's list (20, 0.6 → 551 … 1)."""
    n = int(starting_partial * ddim_steps)
    if n < 1:
        raise InvalidRequest(f"starting_partial {starting_partial} of {ddim_steps} DDIM steps runs no step.",
                             hint="Raise starting_partial (InstructVideo: 0.6).", field="starting_partial")
    return STEP_LISTS[ddim_steps][-n:]


def ddim_step(unet: UNet, xt: torch.Tensor, t: int, y: torch.Tensor, zero_y: torch.Tensor, guidance: float,
              stride: int, alphas: torch.Tensor) -> torch.Tensor:
    """One DDIM step (eta 0) as VGen's ``ddim_sample_gradient``: guided ε, x̂0, ε re-derived from x̂0, ᾱ_prev =
    ᾱ[max(t − stride, 0)]."""
    b = xt.shape[0]
    tt = torch.full((2 * b,), t, dtype=torch.long, device=xt.device)
    u, c = unet(torch.cat([xt, xt]), tt, torch.cat([zero_y, y])).chunk(2)
    out = u + guidance * (c - u)
    # VGen's tables are float64 (√(1/ᾱ), √(1/ᾱ − 1)) and cast to the latents' dtype when used
    recip, recipm1 = (1 / alphas[t]).sqrt().to(xt), (1 / alphas[t] - 1).sqrt().to(xt)
    x0 = recip * xt - recipm1 * out
    eps = (recip * xt - x0) / recipm1
    a_prev = alphas[max(t - stride, 0)].to(xt)
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps


def edit(unet: UNet, z0: torch.Tensor, noise: torch.Tensor, y: torch.Tensor, zero_y: torch.Tensor, *,
         ddim_steps: int = 20, starting_partial: float = 0.6, guidance: float = 3.0) -> torch.Tensor:
    """Noise ``z0`` to the first editing step and denoise to t = 0; gradients flow through the final step only
    (checkpointed: its activations are recomputed in backward)."""
    from torch.utils.checkpoint import checkpoint

    alphas = vgen_alphas()
    steps = editing_steps(ddim_steps, starting_partial)
    stride = 1000 // ddim_steps
    a = alphas[steps[0]]
    xt = a.sqrt().to(z0) * z0 + (1 - a).sqrt().to(z0) * noise  # q_sample
    for t in steps[:-1]:
        with torch.no_grad():
            xt = ddim_step(unet, xt, t, y, zero_y, guidance, stride, alphas)
    return checkpoint(ddim_step, unet, xt, steps[-1], y, zero_y, guidance, stride, alphas, use_reentrant=False)


def tsn_indices(batch: int, num_frames: int, segments: int, gen: torch.Generator) -> torch.Tensor:
    """One random frame per segment (TSN): ``[B, S]`` global frame indices."""
    span = num_frames // segments
    local = torch.randint(span, (batch, segments), generator=gen)
    return local + torch.arange(segments)[None] * span


def reward_loss(vae: torch.nn.Module, scorer: Any, z: torch.Tensor, captions: Sequence[str], indices: torch.Tensor,
                lambda_tar: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, reward [B])``: decode the frames ``indices`` [B, S] picks from ``z`` [B,4,F,h,w], map to [0, 1], HPSv2
    against each video's caption, weight by exp(−λ·|i − F//2|), mean over segments; loss = mean(1 − reward)."""
    from sdk.ml.hps import preprocess_frames

    b, _, f = z.shape[:3]
    s = indices.shape[1]
    picked = z.permute(0, 2, 1, 3, 4)[torch.arange(b)[:, None], indices.to(z.device)]  # [B,S,4,h,w]
    p = next(vae.parameters())
    x = (picked.reshape(b * s, *picked.shape[2:]) / vae.config["scaling_factor"]).to(p.dtype)
    frames01 = (vae.decode(x).sample.float() * 0.5 + 0.5).clamp(0, 1)
    size = getattr(scorer, "image_size", 224)
    scores = scorer.score(preprocess_frames(frames01, size), [c for c in captions for _ in range(s)]).reshape(b, s)
    coef = torch.exp(-(indices.to(scores.device) - f // 2).abs().to(scores.dtype) * lambda_tar)
    reward = (coef * scores).mean(dim=1)
    return (1 - reward).mean(), reward


# -- data ---------------------------------------------------------------------------------------------------------
@dataclass
class Clip:
    frames: np.ndarray  # uint8 [N,H,W,3]
    fps: float
    caption: str


def collect_clips(req: JobRequest, p: RewardParams) -> list[Clip]:
    """The motion's videos (captioned by ``prompt``) or ``data_dir``'s video + same-name .txt pairs, decoded once."""
    from sdk.ml.image import read_video_frames

    motion = req.inputs.get("motion")
    if motion is not None:
        if not p.prompt.strip():
            raise InvalidRequest(f"Motion {motion.name!r} has no caption for the reward.",
                                 hint="Give the caption of its videos with --param prompt=TEXT.", field="prompt")
        pairs = [(Path(v), p.prompt) for v in motion.videos]
    elif p.data_dir:
        pairs = captioned_clips(Path(p.data_dir).expanduser())
    else:
        raise InvalidRequest("instructvideo.reward has no training clips.",
                             hint="Give a motion (--motion NAME, captioned by --param prompt=TEXT) or a folder of "
                                  "videos with same-name .txt captions (--param data_dir=PATH).", field="data_dir")
    clips = []
    for path, caption in pairs:
        frames, fps = read_video_frames(path, what="training video")
        clips.append(Clip(frames, fps, caption))
    if not clips:
        raise InvalidRequest("instructvideo.reward found no clips.", hint="Add videos to the motion or data_dir.",
                             field="data_dir")
    return clips


def find_hps(req: JobRequest, p: RewardParams, base_root: Path) -> Path:
    """``hps_weights``, else HPS_v2.pt beside the base weights, else the installed ``vgen_metrics.hpsv2`` weights."""
    from sdk.ml.hps import HPS_FILE

    if p.hps_weights:
        return Path(p.hps_weights).expanduser()
    for name in HPS_FILE:
        if (base_root / name).is_file():
            return base_root / name
    from sdk.weights import installed

    entry = installed(HPS_WEIGHTS_ID)
    if entry and entry.get("path"):
        return Path(entry["path"])
    raise WeightsMissing("The HPSv2 reward model (HPS_v2.pt) is not installed.",
                         hint=f"{FETCH_HINT.replace('<id>', HPS_WEIGHTS_ID)} Or give --param hps_weights=PATH.")


# -- the method ---------------------------------------------------------------------------------------------------
class RewardTrainer(TrainingMethod):
    artifact = "instructvideo-lora"
    kind = LORA_KIND

    def train(self, ctx: JobContext, req: JobRequest) -> None:
        from sdk.ml import components
        from sdk.ml.unet_training import vgen_dropout

        from sdk.ml.hps import load_hps

        p = req.params if isinstance(req.params, RewardParams) else RewardParams.model_validate(dict(req.params))
        self.ctx, self.req, self.p = ctx, req, p
        self.device = device = resolve_device(ctx.device)
        self.folder = w = find_base(req.weights)
        self.clips = collect_clips(req, p)
        self.unet = components.vgen_unet3d(ctx, w.unet, torch.float32, device, config=w.config())
        self.text, self.vae = load_text_vae(ctx, w, device, torch.float32)
        hps_file = find_hps(req, p, w.root)
        # cached as the HPSv2 metric caches it: one scorer for the reward and the metric
        self.scorer = components.cached_model(ctx, "hpsv2", hps_file, torch.float32, lambda: load_hps(hps_file, device, torch.float32))
        self.generator = torch.Generator("cpu").manual_seed(p.seed)
        self.frozen = (self.unet, self.vae, self.scorer)  # cached and shared: no gradient may land on them
        for m in self.frozen:
            m.requires_grad_(False)
        with torch.no_grad():
            captions = sorted({c.caption for c in self.clips})
            self.embeds = {c: e.clone() for c, e in zip([""] + captions, self.text.encode([""] + captions).float())}
        # the LoRA's down-projections drawn from `seed`, not from whatever the global RNG holds after loading
        self.lora = LoRALayers(self.unet, generator=torch.Generator("cpu").manual_seed(p.seed))
        for t in self.lora.parameters():
            t.requires_grad_(True)
        from sdk.ml.convert import KeyMap

        self.keymap = KeyMap.for_model(self.unet)
        try:
            with ExitStack() as stack:
                stack.enter_context(vgen_dropout(self.unet))
                TrainingLoop(ctx, self, TrainingConfig.from_params(p)).run()
        finally:
            self.lora.detach()
            for m in self.frozen:  # back as loaded (requires_grad changes CPU kernels: bitwise equal renders)
                m.eval().requires_grad_(True)

    # -- TrainingMethod ------------------------------------------------------------------------------------------
    def parameters(self) -> list[torch.nn.Parameter]:
        return self.lora.parameters()

    def train_modules(self) -> tuple[torch.nn.Module, ...]:
        return (self.unet,)

    def batch(self, step: int) -> dict[str, Any]:
        p, gen = self.p, self.generator
        n = len(self.clips)
        picks = [self.clips[int(torch.randint(0, n, (1,), generator=gen))] for _ in range(p.train_batch_size)]
        pixels = torch.stack([clip_pixels(c.frames, c.fps, p, gen) for c in picks])
        z0 = encode_latents(self.vae, pixels, gen).float().to(self.device)
        noise = torch.randn(z0.shape, generator=gen)
        if p.noise_offset > 0:
            noise = noise + p.noise_offset * torch.randn(z0.shape[:3] + (1, 1), generator=gen)
        captions = [c.caption for c in picks]
        return {"z0": z0, "noise": noise.to(z0), "captions": captions,
                "indices": tsn_indices(len(picks), p.num_frames, p.segments, gen)}

    def loss(self, batch: dict[str, Any], step: int) -> torch.Tensor:
        p = self.p
        y = torch.stack([self.embeds[c] for c in batch["captions"]]).to(self.device)
        zero_y = self.embeds[""][None].expand_as(y).to(self.device)

        def unet(x: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
            return self.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0]

        z = edit(unet, batch["z0"], batch["noise"], y, zero_y, ddim_steps=p.ddim_steps,
                 starting_partial=p.starting_partial, guidance=p.guidance_scale)
        loss, _ = reward_loss(self.vae, self.scorer, z, batch["captions"], batch["indices"], p.lambda_tar)
        return loss

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA tensors under VGen's names (``…attn1.to_q_lora.down_linear.weight``), as its LoRA UNet has them."""
        return self.keymap.diffusers_to_vgen(self.lora.state_dict())

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.lora.load(self.keymap.vgen_to_diffusers(tensors), source="the checkpoint")

    def meta(self) -> dict[str, Any]:
        motion = self.req.inputs.get("motion")
        return {"trainer": self.req.spec_id, "format": "instructvideo-lora", "rank": self.lora.rank,
                "base_weights_id": self.req.weights_id, "base_weights": str(self.folder.root.resolve()),
                "motion": motion.name if motion else None, "captions": sorted({c.caption for c in self.clips}),
                "params": self.p.model_dump(mode="json")}

    def sample(self, step: int) -> np.ndarray:
        """A short video from noise with the current LoRA (hooks, unmerged), the first clip's caption, its own seed."""
        from sdk.ml.guidance import uses_cfg
        from sdk.ml.sampling import initial_latents
        from sdk.ml.vae import decode_video, scale_factor, to_uint8

        p = self.p
        caption = self.clips[0].caption
        guided = uses_cfg(p.guidance_scale)
        embeds = torch.stack([self.embeds[""], self.embeds[caption]] if guided else [self.embeds[caption]])
        f = scale_factor(self.vae)
        shape = (1, 4, p.sample_num_frames, p.height // f, p.width // f)
        z = initial_latents(shape, torch.Generator("cpu").manual_seed(p.seed), torch.float32).to(self.device)
        z = sample_ddim(self.unet, embeds.to(self.device), z, p.sample_steps, p.guidance_scale, self.ctx, report=False)
        return to_uint8(decode_video(self.vae, z)[0])
