"""videolcm.distill: latent consistency distillation of a TF-T2V teacher into a few-step student (vgen-notes §11).

Student = a copy of the teacher's core (the style-image branch dropped, as VGen's non-strict load does); teacher =
frozen; target = EMA of the student (rate 0.95, every step). Per step, for clean latents z0:
  n ~ U{0..N-1}, t_n = (n+1)·skip − 1, t_{n−k} = max(t_n − skip, 0), x_t = add_noise(z0, ε, t_n);
  pred   = c_skip(t_n)·x_t + c_out(t_n)·x0̂_student(x_t, t_n)
  x_prev = DDIM step of the teacher, guided on x0 and ε: cond + w·(cond − uncond), from t_n to t_{n−k}
  target = c_skip(t_{n−k})·x_prev + c_out(t_{n−k})·x0̂_target(x_prev, t_{n−k})
  loss   = mean(√((pred − target)² + c²) − c)   (pseudo-Huber, c = 0.001)
:class:`DistillMethod` is that objective as a :class:`sdk.ml.training.TrainingMethod`; the shared loop runs it
(optimizer, schedule, mixed precision, samples, exact resume). Checkpoints (every ``checkpointing_steps`` and at the
end) hold the student UNet; ``training_state.pt`` adds the target weights to the loop's optimizer, LR schedule and RNG.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.device import resolve_device
from sdk.ml.image import read_video_frames
from sdk.ml.schedulers import make_scheduler
from sdk.ml.training import TrainingConfig, TrainingLoop, TrainingMethod
from sdk.ml.unet_training import clip_pixels, encode_latents
from sdk.ml.concat_unet import ConcatUNet, load_concat_unet
from sdk.ml.weights_layout import detect_vgen_folder

from plugins.videolcm.params import DistillParams
from plugins.videolcm.pipeline import PRESET, STUDENT_KIND, lcm_sample

SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0  # VGen writes t / 0.1
VIDEO_EXTS = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".gif")
ARTIFACT = "videolcm-student"


def boundary_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """c_skip = σd²/((t/0.1)² + σd²), c_out = (t/0.1)/√((t/0.1)² + σd²)."""
    s = t.double() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA ** 2 / (s ** 2 + SIGMA_DATA ** 2)
    c_out = s / (s ** 2 + SIGMA_DATA ** 2) ** 0.5
    return c_skip.float(), c_out.float()


def _bcast(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.reshape(-1, *([1] * (ndim - 1)))


class Distiller:
    """Teacher, student, EMA target and the DDIM solver; :meth:`loss` is one LCD objective evaluation."""

    def __init__(self, teacher: ConcatUNet, p: DistillParams, device: torch.device) -> None:
        self.p = p
        self.device = device
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        # VGen loads the teacher into the student non-strictly: the style-image branch is dropped
        self.student = copy.deepcopy(self.teacher)
        self.student.pre_image_condition = None
        self.student.register_to_config(num_image_tokens=0)
        self.student.requires_grad_(True).train()
        self.target = copy.deepcopy(self.student).eval().requires_grad_(False)
        alphas = make_scheduler(PRESET).alphas_cumprod.to(device=device, dtype=torch.float32)
        self.alphas_cumprod = alphas
        self.skip = 1000 // p.num_ddim_timesteps
        self.solver_timesteps = (torch.arange(1, p.num_ddim_timesteps + 1, device=device) * self.skip - 1).long()

    @contextmanager
    def vgen_training(self) -> Iterator[None]:
        """The models as VGen's ``train_videolcm_t2v`` holds them while training: all three in train mode (its
        teacher is never set to eval and its target gets ``.train()``; ``target_eval`` is its ``set_target_eval``),
        the resnets dropping with p 0.1 as its ResBlocks do. The shared teacher is put back in eval mode afterwards.
        The student's spatial gradient scale is :meth:`gradient_scales` (applied by the training loop)."""
        from sdk.ml.unet_training import vgen_dropout

        self.student.train()
        for m in (self.teacher, self.target):
            m.train(not self.p.target_eval)
        try:
            with vgen_dropout(self.teacher, self.student, self.target):
                yield
        finally:
            self.teacher.eval()
            self.target.eval()

    def gradient_scales(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        """VGen's ``grad_scale`` hook: the student's spatial (SD-2D) gradients times ``spatial_grad_scale``."""
        from sdk.ml.unet_training import spatial_parameters

        return [([q for _, q in spatial_parameters(self.student)], self.p.spatial_grad_scale)]

    # -- v-parameterisation ------------------------------------------------------------------------------------
    def _coeffs(self, t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.alphas_cumprod[t]
        return _bcast(a.sqrt(), ndim), _bcast((1 - a).sqrt(), ndim)

    def _x0_eps(self, v: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sa, sb = self._coeffs(t, x.ndim)
        return sa * x - sb * v, sa * v + sb * x

    def _consistency(self, model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        v = model(x, t, encoder_hidden_states=text, return_dict=False)[0]
        x0, _ = self._x0_eps(v, x, t)
        c_skip, c_out = boundary_scalings(t)
        return _bcast(c_skip, x.ndim) * x + _bcast(c_out, x.ndim) * x0

    # -- one objective evaluation --------------------------------------------------------------------------------
    def loss(self, z0: torch.Tensor, text: torch.Tensor, uncond: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``z0`` [B,4,F,h,w] clean latents, ``text``/``uncond`` [B,77,D]; draws n and ε from ``gen``."""
        b = z0.shape[0]
        index = torch.randint(0, self.p.num_ddim_timesteps, (b,), generator=gen).to(self.device)
        noise = torch.randn(z0.shape, generator=gen).to(self.device, z0.dtype)
        t_n = self.solver_timesteps[index]
        t_prev = (t_n - self.skip).clamp(min=0)
        sa, sb = self._coeffs(t_n, z0.ndim)
        x_t = sa * z0 + sb * noise

        pred = self._consistency(self.student, x_t, t_n, text)

        with torch.no_grad():
            v = self.teacher(torch.cat([x_t, x_t]), torch.cat([t_n, t_n]), encoder_hidden_states=torch.cat([uncond, text]),
                             return_dict=False)[0]
            x0, eps = self._x0_eps(v, torch.cat([x_t, x_t]), torch.cat([t_n, t_n]))
            (x0_u, x0_c), (eps_u, eps_c) = x0.chunk(2), eps.chunk(2)
            w = self.p.guidance_scale
            x0_g, eps_g = x0_c + w * (x0_c - x0_u), eps_c + w * (eps_c - eps_u)
            sa_prev, sb_prev = self._coeffs(t_prev, z0.ndim)
            x_prev = sa_prev * x0_g + sb_prev * eps_g  # DDIM (eta 0) from t_n to t_{n−k}
            target = self._consistency(self.target, x_prev, t_prev, text)

        if self.p.loss_type == "l2":
            return torch.nn.functional.mse_loss(pred.float(), target.float())
        c = self.p.huber_c
        return (torch.sqrt((pred.float() - target.float()) ** 2 + c ** 2) - c).mean()

    @torch.no_grad()
    def update_target(self) -> None:
        d = self.p.ema_decay
        for t, s in zip(self.target.parameters(), self.student.parameters()):
            t.mul_(d).add_(s.detach(), alpha=1 - d)


# -- data ---------------------------------------------------------------------------------------------------------
@dataclass
class Clip:
    path: Path
    caption: str


def collect_clips(req: JobRequest, p: DistillParams) -> list[Clip]:
    """The motion's videos (captioned by ``prompt``), or ``data_dir``'s video + same-name .txt pairs."""
    motion = req.inputs.get("motion")
    if motion is not None:
        return [Clip(Path(v), p.prompt) for v in motion.videos]
    if not p.data_dir:
        raise InvalidRequest("videolcm.distill has no training videos.",
                             hint="Give a motion (--motion NAME) or a folder of videos with same-name .txt captions "
                                  "(--param data_dir=PATH).", field="data_dir")
    folder = Path(p.data_dir).expanduser()
    if not folder.is_dir():
        raise InvalidRequest(f"data_dir {str(folder)!r} is not a folder.", hint="Give a folder of video + .txt pairs.",
                             field="data_dir")
    clips = []
    for v in sorted(folder.iterdir()):
        cap = v.with_suffix(".txt")
        if v.suffix.lower() in VIDEO_EXTS and cap.exists():
            clips.append(Clip(v, cap.read_text(encoding="utf-8").strip() or p.prompt))
    if not clips:
        raise InvalidRequest(f"data_dir {str(folder)!r} holds no video with a same-name .txt caption.",
                             hint="Put e.g. clip1.mp4 next to clip1.txt.", field="data_dir")
    return clips


# -- the trainer --------------------------------------------------------------------------------------------------
class DistillTrainer:
    """``train(ctx, req)``: ``req.weights`` is the TF-T2V teacher (a VGen folder)."""

    def train(self, ctx: JobContext, req: JobRequest) -> None:
        p = req.params if isinstance(req.params, DistillParams) else DistillParams.model_validate(dict(req.params))
        device = resolve_device(ctx.device)
        clips = collect_clips(req, p)
        teacher_dir = detect_vgen_folder(req.weights, what="the VideoLCM teacher (TF-T2V)",
                                         weights_id="tf_t2v.tft2v_t2v_16f", prefixes=("tft2v_t2v",))
        # the VAE and text encoder are the generators' (one cache per component, as loaded in fp32); the frozen
        # teacher is this trainer's own (it trains in train mode, as VGen's), and trainable copies are made below
        from sdk.ml import components

        teacher = ctx.models.get(f"videolcm.distill.teacher|{components.file_identity(teacher_dir.unet)}|{device}",
                                 lambda: _load_teacher(teacher_dir, device))
        vae = components.vae(ctx, teacher_dir.vae, torch.float32, device)
        text = components.text_encoder(ctx, teacher_dir.open_clip, torch.float32, device)
        dist = Distiller(teacher, p, device)
        method = DistillMethod(req, p, dist, clips, vae, text, teacher_dir.root)
        ctx.log.info("VideoLCM distillation: %d clip(s), skip %d, w %.1f", len(clips), dist.skip, p.guidance_scale)
        with dist.vgen_training():
            TrainingLoop(ctx, method, TrainingConfig.from_params(p)).run()


class DistillMethod(TrainingMethod):
    """Latent consistency distillation as a :class:`sdk.ml.training.TrainingMethod`: batches of the clips' latents
    (posterior-sampled) with their captions, :meth:`Distiller.loss`, the EMA target after each step (saved in the
    training state); a checkpoint is the student UNet."""

    artifact = ARTIFACT
    kind = STUDENT_KIND

    def __init__(self, req: JobRequest, p: DistillParams, dist: Distiller, clips: list[Clip], vae: torch.nn.Module,
                 text: Any, teacher_root: Path) -> None:
        self.p, self.dist, self.clips, self.vae, self.device = p, dist, clips, vae, dist.device
        self.generator = torch.Generator("cpu").manual_seed(p.seed)
        with torch.no_grad():
            captions = sorted({c.caption for c in clips} | {p.prompt})
            # clones: inference-mode tensors cannot take part in the student's autograd graph
            self.embeds = {c: e.clone().to(self.device) for c, e in zip(captions, text.encode(captions))}
            self.uncond = text.encode([p.negative_prompt]).clone().to(self.device)
        self.videos: dict[Path, tuple[np.ndarray, float]] = {}
        self._meta = {"base_weights": str(Path(teacher_root).resolve()), "base_weights_id": req.weights_id,
                      "unet_config": dist.student.unet_config(), "prompt": p.prompt, "format": "student",
                      "trainer": "videolcm.distill", "params": p.model_dump(mode="json")}

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.dist.student.parameters())

    def train_modules(self) -> tuple[torch.nn.Module, ...]:
        return (self.dist.student,)

    def gradient_scales(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        return self.dist.gradient_scales()

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``train_batch_size`` random clips: latents [B,4,F,h,w], captions and negative prompts [B,77,D]."""
        p, gen = self.p, self.generator
        batch = [self.clips[int(i)] for i in torch.randint(0, len(self.clips), (p.train_batch_size,), generator=gen)]
        pixels = []
        for c in batch:
            if c.path not in self.videos:
                self.videos[c.path] = read_video_frames(c.path)
            pixels.append(clip_pixels(*self.videos[c.path], p, gen))
        z0 = encode_latents(self.vae, torch.stack(pixels), gen).to(self.device)
        cond = torch.stack([self.embeds[c.caption] for c in batch]).to(self.device)
        return z0, cond, self.uncond.expand(len(batch), -1, -1).to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], step: int) -> torch.Tensor:
        return self.dist.loss(*batch, self.generator)

    def after_step(self, step: int) -> None:
        self.dist.update_target()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.dist.student.state_dict()

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        from sdk.ml.checkpoints import load_into

        load_into(self.dist.student, tensors, source="the checkpoint's weights.safetensors")

    def extra_state(self) -> dict[str, Any]:
        return {"target": {k: v.detach().cpu() for k, v in self.dist.target.state_dict().items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        from sdk.ml.checkpoints import load_into

        load_into(self.dist.target, state["target"], source="the checkpoint's training_state.pt")

    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def sample(self, step: int) -> np.ndarray:
        """A few-step LCM video of ``prompt`` by the student (its own generator)."""
        from sdk.ml.vae import decode_video, scale_factor, to_uint8

        p, student = self.p, self.dist.student
        f = scale_factor(self.vae)
        z = lcm_sample(student, self.embeds[p.prompt][None].to(next(student.parameters()).device),
                       (1, 4, p.num_frames, p.height // f, p.width // f), p.sample_steps,
                       torch.Generator("cpu").manual_seed(p.seed), None, report=False)
        return to_uint8(decode_video(self.vae, z.to(self.vae.device))[0])


def _load_teacher(folder: Any, device: torch.device) -> ConcatUNet:
    teacher = load_concat_unet(load_state_dict(folder.unet), folder.config(), source=folder.unet.name)
    return teacher.to(device).eval().requires_grad_(False)
