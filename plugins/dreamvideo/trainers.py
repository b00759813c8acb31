"""The DreamVideo trainers (vgen-notes §12): subject step 1 (textual inversion), subject step 2 (identity adapter),
motion (motion adapter with appearance guidance).

Each is a :class:`sdk.ml.training.TrainingMethod` run by the shared loop (AdamW, weight decay 0, warm-up 10 then
constant, no gradient clipping, progress, samples every ``validation_steps``, checkpoints that become project Adapters,
exact resume). The method: the base UNet in train mode with VGen's dropout (resnets and temporal convs, p 0.1),
eps-prediction MSE on ``x_t = add_noise(z0, ε + offset·N(0,1)[b,c,f], t)``, t ~ U{0..999}, optionally masked, every
draw from one generator seeded with ``seed``. Only the embedding / adapter parameters train; the base weights stay
bitwise equal (they are frozen and shared with the generators' cache).
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.device import resolve_device
from sdk.ml.image import read_video_frames
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import initial_latents
from sdk.ml.schedulers import make_scheduler
from sdk.ml.training import TrainingConfig, TrainingLoop, TrainingMethod, TrainingResult
from sdk.ml.unet_training import vgen_dropout

from plugins.dreamvideo.adapters import IDENTITY, MOTION, DreamVideoAdapters
from plugins.dreamvideo.formats import TextualInversion, artifact_tensors, read_adapter, read_text_embedding
from plugins.dreamvideo.params import (EMBEDDING_KIND, IDENTITY_KIND, MOTION_KIND, PLACEHOLDER, MotionParams,
                                       SubjectStep1Params, SubjectStep2Params)
from plugins.dreamvideo.pipeline import (PRESET, encode_text, find_base, load_base, load_image_encoder, placeholder_id,
                                         sample_ddim)

MIN_SUBJECT_IMAGES = 2


@dataclass
class Example:
    """One training item: posterior of its latents [4, F, h, w] (mean, std), optional mask [1, 1, h, w]."""

    mean: torch.Tensor
    std: torch.Tensor
    mask: torch.Tensor | None = None
    frames: np.ndarray | None = None  # motion: the clip's frames (appearance images)
    fps: float = 8.0


# -- data ----------------------------------------------------------------------------------------------------------
def subject_examples(req: JobRequest, p: Any, vae: torch.nn.Module, use_masks: bool) -> list[Example]:
    """The subject's images as 1-frame videos (centre-crop-wide to width×height); masks cropped alike, binarised at
    latent size. Raises InvalidRequest for too few images or a mask whose size differs from its image."""
    from PIL import Image

    from sdk.ml.image import center_crop_wide, open_image, pil_to_tensor

    subject = req.inputs.get("subject")
    if subject is None:
        raise InvalidRequest(f"{req.spec_id} needs a subject.", hint="Give it with --subject NAME.", field="subject")
    n = len(subject.images)
    if n < MIN_SUBJECT_IMAGES:
        raise InvalidRequest(f"Subject {subject.name!r} has {n} image{'s' if n != 1 else ''}; DreamVideo needs at least "
                             f"{MIN_SUBJECT_IMAGES}.", hint="Add 3–5 photos of the subject from different views.",
                             field="subject")
    masks = list(subject.masks) + [None] * (n - len(subject.masks))
    out = []
    for img_path, mask_path in zip(subject.images, masks):
        img = open_image(img_path, field="subject")
        x = pil_to_tensor(center_crop_wide(img, (p.width, p.height)))[:, :, None]  # [1,3,1,H,W]
        mean, std = _posterior(vae, x)
        mask = None
        if use_masks and mask_path is not None:
            m = open_image(mask_path, field="subject")
            if m.size != img.size:
                raise InvalidRequest(f"Subject {subject.name!r}: the mask of {Path(img_path).name} is {m.size[0]}×"
                                     f"{m.size[1]}, the image {img.size[0]}×{img.size[1]}.",
                                     hint="Give a mask of the same size as its image.", field="subject")
            m = center_crop_wide(m.convert("L"), (p.width, p.height)).resize(
                (mean.shape[-1], mean.shape[-2]), Image.NEAREST)
            mask = (torch.from_numpy(np.asarray(m, dtype=np.float32) / 255.0) > 0.5).float()[None, None]
        out.append(Example(mean[0], std[0], mask))
    return out


def motion_examples(req: JobRequest, p: MotionParams, vae: torch.nn.Module) -> list[Example]:
    """Every frame of each video encoded once (posterior); clips are drawn from them per step."""
    from PIL import Image

    from sdk.ml.image import center_crop_wide, pil_to_tensor

    motion = req.inputs.get("motion")
    if motion is None or not motion.videos:
        raise InvalidRequest("dreamvideo.motion needs a motion with at least one video.", hint="Give it with --motion NAME.",
                             field="motion")
    out = []
    for path in motion.videos:
        frames, fps = read_video_frames(Path(path), what="motion video")
        if len(frames) < 2:
            raise InvalidRequest(f"Motion {motion.name!r}: {Path(path).name} has {len(frames)} frame; a motion needs "
                                 "videos of at least 2 frames.", hint="Use a clip of the movement (a few seconds).",
                                 field="motion")
        px = torch.cat([pil_to_tensor(center_crop_wide(Image.fromarray(f), (p.width, p.height))) for f in frames])
        mean, std = _posterior(vae, px.permute(1, 0, 2, 3)[None])
        out.append(Example(mean[0], std[0], None, frames, fps))
    return out


@torch.no_grad()
def _posterior(vae: torch.nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B,3,F,H,W] → scaled posterior mean and std [B,4,F,h,w] (VGen samples the posterior each step)."""
    b, c, f, h, w = pixels.shape
    x = pixels.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    p = next(vae.parameters())
    dist = vae.encode(x.to(p.device, p.dtype)).latent_dist
    s = vae.config["scaling_factor"]

    def fold(t: torch.Tensor) -> torch.Tensor:
        return (t * s).reshape(b, f, *t.shape[1:]).permute(0, 2, 1, 3, 4).float()

    return fold(dist.mean), fold(dist.std)


def diffusion_loss(unet: torch.nn.Module, z0: torch.Tensor, text: torch.Tensor, gen: torch.Generator,
                   alphas: torch.Tensor, noise_offset: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """eps-MSE at t ~ U{0..999} with offset noise; masked: mean over all elements of mask·(ε̂ − ε)²."""
    b = z0.shape[0]
    t = torch.randint(0, 1000, (b,), generator=gen)
    noise = torch.randn(z0.shape, generator=gen)
    if noise_offset > 0:
        noise = noise + noise_offset * torch.randn(z0.shape[:3] + (1, 1), generator=gen)
    noise = noise.to(z0)
    a = alphas[t].to(z0).reshape(b, 1, 1, 1, 1)
    x_t = a.sqrt() * z0 + (1 - a).sqrt() * noise
    pred = unet(x_t, t.to(z0.device), encoder_hidden_states=text, return_dict=False)[0]
    err = (pred.float() - noise.float()) ** 2
    if mask is not None:
        err = err * mask.to(err)
    return err.mean()


# -- the method ---------------------------------------------------------------------------------------------------
class _Trainer(TrainingMethod):
    """The part the three trainers share, on :class:`sdk.ml.training.TrainingLoop`; subclasses say what trains
    (:meth:`setup`, :meth:`parameters`), how a batch is drawn (:meth:`draw`), its loss (:meth:`objective`) and what a
    checkpoint holds (:meth:`state_dict`, :meth:`load_state_dict`). Every random draw comes from one generator."""

    params_cls: type = SubjectStep1Params
    artifact = "dreamvideo"
    kind = ""

    def train(self, ctx: JobContext, req: JobRequest) -> None:
        self.prepare(ctx, req)
        try:
            self.setup()
            self.run()
        finally:
            self.close()

    def prepare(self, ctx: JobContext, req: JobRequest) -> None:
        """Load the (cached, frozen) base; :meth:`setup` then adds what trains."""
        p = req.params if isinstance(req.params, self.params_cls) else self.params_cls.model_validate(dict(req.params))
        device = resolve_device(ctx.device)
        folder = find_base(req.weights)
        self.comps = comps = load_base(ctx, folder, device, torch.float32)
        self.ctx, self.req, self.p, self.device, self.folder = ctx, req, p, device, folder
        self.unet, self.vae, self.text = comps["unet"], comps["vae"], comps["text_encoder"]
        self.alphas = make_scheduler(PRESET).alphas_cumprod.float()
        self.generator = torch.Generator("cpu").manual_seed(p.seed)
        self.adapters: DreamVideoAdapters | None = None
        for m in (self.unet, self.vae, self.text):
            m.requires_grad_(False)  # frozen; only the embedding / adapters train
        # VGen trains with model.train(): its ResBlocks drop (p 0.1) as well as its temporal convs
        self._dropout = ExitStack()
        self._dropout.enter_context(vgen_dropout(self.unet))

    def close(self) -> None:
        """The cached base models go back to what they were (no adapters, eval mode, as loaded)."""
        if self.adapters is not None:
            self.adapters.detach()
        self._dropout.close()
        for m in (self.unet, self.vae, self.text):
            m.eval().requires_grad_(True)

    def run(self) -> TrainingResult:
        """Train (or resume) through the shared loop; the base UNet is in train mode during each step only."""
        return TrainingLoop(self.ctx, self, TrainingConfig.from_params(self.p)).run()

    def new_adapters(self, **kw: Any) -> DreamVideoAdapters:
        """Adapters on the base UNet, their down-projections drawn from ``seed`` (not from whatever the global RNG
        holds: a cold model cache draws while loading, a warm one does not, and both must train the same)."""
        torch.manual_seed(self.p.seed)
        return DreamVideoAdapters(self.unet, **kw)

    # -- TrainingMethod ------------------------------------------------------------------------------------------
    def train_modules(self) -> tuple[torch.nn.Module, ...]:
        return (self.unet,)

    def batch(self, step: int) -> Any:
        return self.draw(self.generator)

    def loss(self, batch: Any, step: int) -> torch.Tensor:
        return self.objective(batch, self.generator)

    def meta(self) -> dict[str, Any]:
        subject, motion = self.req.inputs.get("subject"), self.req.inputs.get("motion")
        return {"trainer": self.req.spec_id, "format": "dreamvideo", "base_weights_id": self.req.weights_id,
                "base_weights": str(self.folder.root.resolve()), "subject": subject.name if subject else None,
                "token": subject.token if subject else None, "motion": motion.name if motion else None,
                "string_to_token": {PLACEHOLDER: placeholder_id(self.text)}, "params": self.p.model_dump(mode="json"),
                **self.extra_meta()}

    def sample(self, step: int) -> np.ndarray:
        """A short video with the current weights (its own generator: the training RNG does not move)."""
        from sdk.ml.vae import decode_video, scale_factor, to_uint8

        p = self.p
        f = scale_factor(self.vae)
        guided = uses_cfg(p.sample_guidance_scale)  # guidance ≤ 1: one batch, the prompt alone (no empty prompt)
        prompts = ["", self.sample_prompt()] if guided else [self.sample_prompt()]
        embeds = encode_text(self.text, prompts, self.vectors())
        self.before_sample(guided)
        shape = (1, 4, p.sample_num_frames, p.height // f, p.width // f)
        z = initial_latents(shape, torch.Generator("cpu").manual_seed(p.seed), torch.float32, p.noise_offset)
        z = sample_ddim(self.unet, embeds, z.to(self.device), p.sample_steps, p.sample_guidance_scale, self.ctx, report=False)
        return to_uint8(decode_video(self.vae, z)[0])

    # -- to override ---------------------------------------------------------------------------------------------
    def setup(self) -> None: ...
    def draw(self, gen: torch.Generator) -> Any: raise NotImplementedError
    def objective(self, batch: Any, gen: torch.Generator) -> torch.Tensor: raise NotImplementedError
    def extra_meta(self) -> dict[str, Any]: return {}
    def vectors(self) -> dict[int, torch.Tensor] | None: return None
    def sample_prompt(self) -> str: return self.p.caption
    def before_sample(self, guided: bool) -> None: ...


class _SubjectTrainer(_Trainer):
    def _subject_batch(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, len(self.examples), (self.p.train_batch_size,), generator=gen)
        ex = [self.examples[int(i)] for i in idx]
        z = torch.stack([e.mean + e.std * torch.randn(e.mean.shape, generator=gen) for e in ex]).to(self.device)
        masks = [e.mask for e in ex]
        if all(m is None for m in masks):
            return z, None
        m = torch.stack([mm if mm is not None else torch.ones_like(next(x for x in masks if x is not None))
                         for mm in masks])
        return z, m.to(self.device)

    def draw(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._subject_batch(gen)

    def objective(self, batch: tuple[torch.Tensor, torch.Tensor | None], gen: torch.Generator) -> torch.Tensor:
        z, mask = batch
        text = encode_text(self.text, [self.p.caption] * z.shape[0], self.vectors())
        return diffusion_loss(self.unet, z, text, gen, self.alphas, self.p.noise_offset, mask)


class SubjectStep1Trainer(_SubjectTrainer):
    """``dreamvideo.subject_step1``: one vector for the placeholder, initialised from a word's token embedding."""

    params_cls = SubjectStep1Params
    artifact = "dreamvideo-embedding"
    kind = EMBEDDING_KIND

    def setup(self) -> None:
        p, subject = self.p, self.req.inputs.get("subject")
        self.examples = subject_examples(self.req, p, self.vae, p.use_masks)
        word = p.initializer_token or subject.name
        ids = self.text.tokenize([word])[0]
        if int(ids[2]) != 49407:
            self.ctx.log.info("initializer %r is several tokens; starting from the first", word)
        table = self.text.model.get_input_embeddings().weight
        self.pid = placeholder_id(self.text)
        self.embedding = torch.nn.Parameter(table[int(ids[1])].detach().clone().float()[None])

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.embedding]

    def vectors(self) -> dict[int, torch.Tensor]:
        return {self.pid: self.embedding[0]}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return artifact_tensors(ti=TextualInversion({PLACEHOLDER: self.embedding}, {PLACEHOLDER: self.pid}))

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.embedding.copy_(sd[f"string_to_param.{PLACEHOLDER}"].reshape(self.embedding.shape))


class SubjectStep2Trainer(_SubjectTrainer):
    """``dreamvideo.subject_step2``: the identity adapters; the step-1 embedding frozen (and kept in the Adapter)."""

    params_cls = SubjectStep2Params
    artifact = "dreamvideo-identity"
    kind = IDENTITY_KIND

    def setup(self) -> None:
        self.examples = subject_examples(self.req, self.p, self.vae, self.p.use_masks)
        emb = (self.req.inputs.get("adapters") or {}).get("embedding")
        if emb is None:
            subject = self.req.inputs.get("subject")
            raise InvalidRequest(f"Subject {subject.name!r} has no text embedding yet.",
                                 hint="Run dreamvideo.subject_step1 first (or dreamvideo.subject, which runs both), or "
                                      "give --param embedding=ADAPTER_ID.", field="embedding")
        self.ti = read_text_embedding(emb["path"])
        self.pid = placeholder_id(self.text)
        vec = next(iter(self.ti.string_to_param.values()))
        self.ti = TextualInversion({PLACEHOLDER: vec.detach().float().reshape(1, -1)}, {PLACEHOLDER: self.pid})
        self.embedding_id = emb.get("id")
        self.adapters = self.new_adapters(identity=True, motion=False, condition_dim=None)
        for t in self.adapters.parameters(IDENTITY):
            t.requires_grad_(True)
        from sdk.ml.convert import KeyMap

        self.keymap = KeyMap.for_model(self.unet)

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.adapters.parameters(IDENTITY)

    def vectors(self) -> dict[int, torch.Tensor]:
        return {self.pid: self.ti.string_to_param[PLACEHOLDER][0].to(self.device)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        sd = self.keymap.diffusers_to_vgen(self.adapters.state_dict(IDENTITY))
        return artifact_tensors(sd, self.ti)

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        f = read_adapter_tensors(sd)
        self.adapters.load(IDENTITY, self.keymap.vgen_to_diffusers(f), source="the checkpoint")

    def extra_meta(self) -> dict[str, Any]:
        return {"embedding_adapter": self.embedding_id}


class MotionTrainer(_Trainer):
    """``dreamvideo.motion``: temporal adapters conditioned on a random frame's CLIP embedding (dropped p=0.5)."""

    params_cls = MotionParams
    artifact = "dreamvideo-motion"
    kind = MOTION_KIND

    def setup(self) -> None:
        p = self.p
        self.examples = motion_examples(self.req, p, self.vae)
        self.image_encoder = load_image_encoder(self.ctx, self.folder, self.device, torch.float32)
        self.cond_dim = self.image_encoder.width
        self.adapters = self.new_adapters(identity=False, motion=True, condition_dim=self.cond_dim)
        for t in self.adapters.parameters(MOTION):
            t.requires_grad_(True)
        from sdk.ml.convert import KeyMap

        self.keymap = KeyMap.for_model(self.unet)
        with torch.no_grad():
            self.text_embeds = {c: encode_text(self.text, [c]).clone() for c in {p.prompt, ""}}
        self._clip_cache: dict[tuple[int, int], torch.Tensor] = {}
        # the first clip of each video, from frame 0: what inverse noise inverts at compose time
        self.latents = [self._clip(i, 0)[0] for i in range(len(self.examples))] if p.save_latents else []

    def _indices(self, ex: Example, start: int) -> list[int]:
        stride = max(1, round(ex.fps / self.p.sample_fps))
        n = ex.mean.shape[1]
        return [min(start + i * stride, n - 1) for i in range(self.p.num_frames)]

    def _clip(self, i: int, start: int) -> tuple[torch.Tensor, list[int]]:
        ex = self.examples[i]
        idx = self._indices(ex, start)
        return ex.mean[:, idx], idx

    def _appearance(self, i: int, frame: int) -> torch.Tensor:
        from PIL import Image

        if (i, frame) not in self._clip_cache:
            img = Image.fromarray(self.examples[i].frames[frame])
            self._clip_cache[(i, frame)] = self.image_encoder.embed(img, crop_width=self.p.width).clone().float()
        return self._clip_cache[(i, frame)]

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.adapters.parameters(MOTION)

    def draw(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clips (posterior-sampled latents), their appearance conditions and captions, each dropped as VGen does."""
        p = self.p
        zs, conds, texts = [], [], []
        for _ in range(p.train_batch_size):
            i = int(torch.randint(0, len(self.examples), (1,), generator=gen))
            ex = self.examples[i]
            stride = max(1, round(ex.fps / p.sample_fps))
            span = (p.num_frames - 1) * stride + 1
            start = int(torch.randint(0, max(1, ex.mean.shape[1] - span + 1), (1,), generator=gen))
            idx = self._indices(ex, start)
            zs.append(ex.mean[:, idx] + ex.std[:, idx] * torch.randn(ex.mean[:, idx].shape, generator=gen))
            frame = idx[int(torch.randint(0, len(idx), (1,), generator=gen))]
            drop_image = float(torch.rand(1, generator=gen)) < p.p_image_zero
            c = self._appearance(i, frame)
            conds.append(torch.zeros_like(c) if drop_image else c)
            drop_text = float(torch.rand(1, generator=gen)) < p.p_zero
            texts.append(self.text_embeds["" if drop_text else p.prompt])
        return torch.stack(zs), torch.cat(conds), torch.cat(texts)

    def objective(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        z, cond, text = batch
        self.adapters.set_condition(cond.to(self.device), 1.0)
        return diffusion_loss(self.unet, z.to(self.device), text, gen, self.alphas, self.p.noise_offset)

    def before_sample(self, guided: bool) -> None:
        c = self._appearance(0, 0).to(self.device)
        self.adapters.set_condition(torch.cat([torch.zeros_like(c), c]) if guided else c, 1.0)

    def sample_prompt(self) -> str:
        return self.p.prompt

    def state_dict(self) -> dict[str, torch.Tensor]:
        return artifact_tensors(self.keymap.diffusers_to_vgen(self.adapters.state_dict(MOTION)), latents=self.latents)

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.adapters.load(MOTION, self.keymap.vgen_to_diffusers(read_adapter_tensors(sd)), source="the checkpoint")

    def extra_meta(self) -> dict[str, Any]:
        return {"condition_dim": self.cond_dim}


def read_adapter_tensors(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from plugins.dreamvideo.formats import is_adapter_key

    return {k: v for k, v in sd.items() if is_adapter_key(k)}


__all__ = ["SubjectStep1Trainer", "SubjectStep2Trainer", "MotionTrainer", "read_adapter"]
