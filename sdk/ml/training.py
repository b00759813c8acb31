"""One training loop for every trainer (DESIGN §4): a method supplies what trains and its loss; the loop owns the rest.

:class:`TrainingLoop` owns the optimizer (AdamW, or one given), the LR schedule (diffusers' ``get_scheduler``: constant,
constant_with_warmup, linear, cosine), gradient accumulation, mixed precision (``no|fp16|bf16``: autocast, plus a
GradScaler for fp16 on CUDA), optional gradient clipping and per-parameter gradient scales, a non-finite guard, cancel
checks, progress (loss, lr), sample previews every ``validation_steps``, checkpoints every ``checkpointing_steps`` and
at the end (through ``ctx.save_artifact``: they become project Adapters) and exact resume from ``ctx.resume_from``.

A method is a :class:`TrainingMethod`: what trains (:meth:`~TrainingMethod.parameters`), one micro-batch
(:meth:`~TrainingMethod.batch`), its loss (:meth:`~TrainingMethod.loss`), what a checkpoint holds
(:meth:`~TrainingMethod.state_dict` / :meth:`~TrainingMethod.load_state_dict`, :meth:`~TrainingMethod.meta`) and,
optionally, a sample video, an after-step update (an EMA) and extra training state. Wrap the loop in whatever the
method's models need while training (e.g. :func:`sdk.ml.unet_training.vgen_dropout`).

Exact resume: a resumed job ends bitwise equal to an uninterrupted one (same device) when every random draw of the
method comes from :attr:`TrainingMethod.generator` or torch's global RNG (dropout): the loop seeds the latter with
``seed``, saves both (and CUDA's) in ``training_state.pt`` and puts them back around samples.
"""
from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from sdk.context import JobContext
from sdk.errors import InvalidRequest

#: the LR schedules (diffusers' names; computed by ``diffusers.optimization.get_scheduler``)
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
MIXED_PRECISION = ("no", "fp16", "bf16")
#: fp16 GradScaler overflows in a row that fail the job: the scale has then fallen by 2**40 from 65536, so the
#: gradient is NaN at any scale (a real overflow is gone after a few halvings)
MAX_SCALER_OVERFLOWS = 40


@dataclass
class TrainingConfig:
    """The loop's settings; names as diffusers' training scripts. Build it with :meth:`from_params`."""

    max_train_steps: int
    learning_rate: float
    gradient_accumulation_steps: int = 1
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    adam_weight_decay: float = 1e-2  # diffusers' scripts and torch's AdamW; both VGen ports set 0
    mixed_precision: str = "no"
    max_grad_norm: float | None = None  # None: no clipping (VGen's trainers do not clip)
    checkpointing_steps: int = 50
    validation_steps: int = 50
    seed: int = 0
    #: this many non-finite steps in a row fail the job (fewer are skipped and counted)
    max_nonfinite_steps: int = 3

    @classmethod
    def from_params(cls, params: Any, **overrides: Any) -> "TrainingConfig":
        """The fields of ``params`` (a :class:`sdk.params.TrainParams` or any object) that have a setting's name,
        then ``overrides``. Raises InvalidRequest for an unknown ``lr_scheduler`` or ``mixed_precision``."""
        values = {f.name: getattr(params, f.name) for f in fields(cls) if hasattr(params, f.name)}
        cfg = cls(**{**values, **overrides})
        if cfg.lr_scheduler not in LR_SCHEDULERS:
            raise InvalidRequest(f"lr_scheduler {cfg.lr_scheduler!r} is not known.",
                                 hint=f"Use one of {', '.join(LR_SCHEDULERS)}.", field="lr_scheduler")
        if cfg.mixed_precision not in MIXED_PRECISION:
            raise InvalidRequest(f"mixed_precision {cfg.mixed_precision!r} is not known.",
                                 hint=f"Use one of {', '.join(MIXED_PRECISION)}.", field="mixed_precision")
        return cfg


class TrainingMethod:
    """What a method gives :class:`TrainingLoop`. Override :meth:`parameters`, :meth:`batch`, :meth:`loss`,
    :meth:`state_dict` and :meth:`load_state_dict`; the rest is optional.

    Attributes:
        artifact: checkpoint folder name (``<artifact>-<step>``), as ``ctx.save_artifact``'s ``name``.
        kind: the Adapter kind a checkpoint becomes (``"<plugin>.<what>"``).
        generator: the CPU ``torch.Generator`` every data / noise draw uses (seed it from ``seed``); the loop
            saves and restores it, so a resumed job draws what an uninterrupted one would. None: no own RNG.
    """

    artifact: str = "checkpoint"
    kind: str | None = None
    generator: torch.Generator | None = None

    def parameters(self) -> Sequence[torch.nn.Parameter] | Sequence[dict[str, Any]]:
        """The trainable tensors, or optimizer param groups (dicts with ``params`` and e.g. their own ``lr``,
        ``weight_decay``: LoRA matrices beside a text embedding)."""
        raise NotImplementedError

    def batch(self, step: int) -> Any:
        """One micro-batch for ``step`` (called ``gradient_accumulation_steps`` times per step, each right before
        its :meth:`loss`). Runs outside autocast and without gradients to the trainable tensors needed."""
        return None

    def loss(self, batch: Any, step: int) -> torch.Tensor:
        """The scalar loss of ``batch`` (a tensor with a graph to :meth:`parameters`). Runs under autocast when
        mixed precision is on, with :meth:`train_modules` in train mode. A reward through a sampling chain goes
        here too; wrap its UNet calls in :func:`gradient_checkpointing` to keep memory flat in the chain length."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors of a checkpoint (``weights.safetensors``), in the method's released format."""
        raise NotImplementedError

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Put a checkpoint's tensors back into the trainable tensors, in place (the optimizer holds them).
        Raises :class:`sdk.errors.IncompatibleCheckpoint` when they do not fit."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        """Extra ``meta.json`` fields of a checkpoint (trainer id, base weights, params …); the loop adds
        ``loss``, ``step``, ``name`` and ``kind``."""
        return {}

    def train_modules(self) -> Sequence[torch.nn.Module]:
        """Modules put in train mode for each optimisation step and in eval mode between steps (samples)."""
        return ()

    def gradient_scales(self) -> Sequence[tuple[Sequence[torch.nn.Parameter], float]]:
        """``(parameters, factor)`` pairs: their gradients are multiplied by ``factor`` as they are computed (VGen's
        ``grad_scale`` hooks), while the loop runs."""
        return ()

    def after_step(self, step: int) -> None:
        """After each optimizer step (not after a skipped one): e.g. an EMA update of a target network."""

    def sample(self, step: int) -> np.ndarray | None:
        """A preview video with the current weights, uint8 ``[F,H,W,3]``, or None. Runs without gradients, the
        train modules in eval mode; its random draws do not move the training RNG (the loop restores it)."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """More training state for ``training_state.pt`` (tensors, numbers, strings, lists, dicts only)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`extra_state` saved (``state`` is the whole ``training_state.pt``)."""


@dataclass
class TrainingResult:
    """What a finished run did: the last step, its loss, and how many steps were skipped as non-finite."""

    step: int
    loss: float
    skipped_steps: int


def make_optimizer(params: Any, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW over ``params`` (tensors or param groups) with the config's learning rate, betas, ε and weight decay."""
    return torch.optim.AdamW(params, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                             eps=config.adam_epsilon, weight_decay=config.adam_weight_decay)


def make_lr_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig) -> Any:
    """diffusers' ``get_scheduler(lr_scheduler, …)`` over ``max_train_steps`` optimizer steps."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps,
                         num_training_steps=config.max_train_steps)


@contextmanager
def scaled_gradients(scales: Sequence[tuple[Sequence[torch.nn.Parameter], float]]) -> Iterator[None]:
    """Within the block, each ``(parameters, factor)``'s gradients are multiplied by ``factor`` (hooks, removed after)."""
    from sdk.ml.unet_training import scale_gradients

    handles = [h for params, factor in scales if factor != 1.0 for h in scale_gradients(list(params), factor)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def gradient_checkpointing(*modules: torch.nn.Module) -> Iterator[None]:
    """Within the block, each module's forward (when gradients are on) keeps only its inputs and recomputes the rest
    in backward (``torch.utils.checkpoint``, non-reentrant; the RNG is replayed, so dropout masks are equal). Memory
    then grows with the number of calls, not their activations: a reward through an N-step sampling chain."""
    from torch.utils.checkpoint import checkpoint

    def wrap(forward: Any) -> Any:
        def checkpointed(*args: Any, **kwargs: Any) -> Any:
            if not torch.is_grad_enabled():
                return forward(*args, **kwargs)
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return checkpointed

    saved = [(m, m.__dict__.get("forward")) for m in modules]
    try:
        for m, _ in saved:
            m.forward = wrap(m.forward)
        yield
    finally:
        for m, own in saved:
            if own is None:
                del m.forward
            else:
                m.forward = own


class TrainingLoop:
    """``TrainingLoop(ctx, method, config).run()`` trains ``method`` for ``config.max_train_steps`` steps.

    Args:
        ctx: the job's context (progress, cancel, samples, checkpoints, ``resume_from``).
        method: what trains and its loss.
        config: the settings (:meth:`TrainingConfig.from_params`).
        optimizer: another optimizer over the method's parameters (default :func:`make_optimizer`).
    """

    def __init__(self, ctx: JobContext, method: TrainingMethod, config: TrainingConfig, *,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        self.ctx, self.method, self.config = ctx, method, config
        self.optimizer = optimizer if optimizer is not None else make_optimizer(list(method.parameters()), config)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.scheduler = make_lr_scheduler(self.optimizer, config)
        self.device = self.params[0].device if self.params else torch.device("cpu")
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.skipped = 0  # non-finite steps skipped in this run
        self._in_a_row: list[int] = []
        self._overflows: list[int] = []  # fp16 GradScaler overflows in a row

    # -- the loop ----------------------------------------------------------------------------------------------------
    def run(self) -> TrainingResult:
        """Train from the start, or from ``ctx.resume_from``'s step; returns the last step and its loss.

        Raises:
            CancelRequested: a cancel was asked for (checked before every micro-batch).
            InvalidRequest: ``max_nonfinite_steps`` steps in a row had a non-finite loss or gradient.
        """
        ctx, cfg, m = self.ctx, self.config, self.method
        torch.manual_seed(cfg.seed)  # dropout; a resumed run gets the saved state back below
        start = self._resume(Path(ctx.resume_from)) if ctx.resume_from is not None else 0
        ctx.log.info("%s: steps %d→%d, %d trainable parameters, mixed precision %s", m.kind or m.artifact, start,
                     cfg.max_train_steps, sum(p.numel() for p in self.params),
                     str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "no")
        loss = math.nan
        with scaled_gradients(m.gradient_scales()):
            for step in range(start + 1, cfg.max_train_steps + 1):
                loss = self.step(step)
                metrics = {"loss": loss, "lr": self.scheduler.get_last_lr()[0]}
                if self.skipped:
                    metrics["skipped"] = self.skipped
                ctx.progress(step, cfg.max_train_steps, **metrics)
                last = step == cfg.max_train_steps
                if step % cfg.validation_steps == 0 or last:
                    self._sample(step)
                if step % cfg.checkpointing_steps == 0 or last:
                    self.save(step, loss)
        return TrainingResult(cfg.max_train_steps, loss, self.skipped)

    def step(self, step: int) -> float:
        """One optimisation step (``gradient_accumulation_steps`` micro-batches); returns its mean loss. A non-finite
        loss or gradient skips the update (optimizer, schedule, :meth:`TrainingMethod.after_step`)."""
        cfg, m, opt = self.config, self.method, self.optimizer
        n = cfg.gradient_accumulation_steps
        opt.zero_grad(set_to_none=True)
        _set_mode(m.train_modules(), True)
        total = 0.0
        try:
            for _ in range(n):
                self.ctx.check_cancelled()
                batch = m.batch(step)
                with self._autocast():
                    loss = m.loss(batch, step)
                if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                    raise TypeError(f"{type(m).__name__}.loss must return a scalar tensor, not {loss!r:.80}")
                part = loss.float() / n
                (self.scaler.scale(part) if self.scaler.is_enabled() else part).backward()
                total += float(part.detach())
        finally:
            _set_mode(m.train_modules(), False)
        if self.scaler.is_enabled():
            self.scaler.unscale_(opt)
        grads = [p.grad for p in self.params if p.grad is not None]
        if cfg.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        else:
            norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        finite_grads = bool(torch.isfinite(norm))
        # with fp16 an overflow is the GradScaler's business: it skips the update and lowers the scale, while the
        # schedule and after_step go on (as VGen's scaler loop does); anything else non-finite is our skip
        if not math.isfinite(total) or (not finite_grads and not self.scaler.is_enabled()):
            self._skip(step, total)
            if self.scaler.is_enabled():
                self.scaler.update()
            return total
        self._in_a_row.clear()
        if self.scaler.is_enabled():
            self._overflows = [] if finite_grads else self._overflows + [step]
            if len(self._overflows) >= MAX_SCALER_OVERFLOWS:
                self._fail(step, self._overflows, "the fp16 gradient was not finite at any loss scale")
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        self.scheduler.step()
        m.after_step(step)
        return total

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def save(self, step: int, loss: float) -> Path:
        """A checkpoint of ``step`` through ``ctx.save_artifact``: the method's tensors, ``training_state.pt``
        (optimizer, LR schedule, RNG states, the method's extra state; ``weights_only``-loadable) and its meta."""
        m = self.method
        state: dict[str, Any] = {"step": step, "optimizer": self.optimizer.state_dict(),
                                 "lr_scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state()}
        if m.generator is not None:
            state["rng"] = m.generator.get_state()
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        if self.scaler.is_enabled():
            state["grad_scaler"] = self.scaler.state_dict()
        state.update(m.extra_state())
        meta = {**m.meta(), "loss": loss if math.isfinite(loss) else None}
        return self.ctx.save_artifact(m.artifact, m.state_dict(), step=step, meta=meta, state=state, kind=m.kind)

    def _resume(self, folder: Path) -> int:
        from sdk.ml.checkpoints import load_state_dict

        self.method.load_state_dict(load_state_dict(folder / "weights.safetensors", strip=()))
        state_file = folder / "training_state.pt"
        if not state_file.exists():
            self.ctx.log.info("resumed from %s at step %d without its training state: the optimizer starts afresh",
                              folder.name, self.ctx.resume_step)
            return self.ctx.resume_step
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["lr_scheduler"])
        if self.method.generator is not None and "rng" in state:
            self.method.generator.set_state(state["rng"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if "grad_scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["grad_scaler"])
        self.method.load_extra_state(state)
        step = int(state.get("step", self.ctx.resume_step))
        self.ctx.log.info("resumed from %s at step %d", folder.name, step)
        return step

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _sample(self, step: int) -> None:
        gen = self.method.generator
        saved = (torch.get_rng_state(), gen.get_state() if gen is not None else None,
                 torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None)
        try:
            with torch.no_grad():
                frames = self.method.sample(step)
        finally:  # a sample never moves the training RNG: resume stays exact
            torch.set_rng_state(saved[0])
            if gen is not None:
                gen.set_state(saved[1])
            if saved[2] is not None:
                torch.cuda.set_rng_state_all(saved[2])
        if frames is not None:
            self.ctx.sample(frames, step, self.config.max_train_steps)

    def _skip(self, step: int, loss: float) -> None:
        self.skipped += 1
        self._in_a_row.append(step)
        what = f"the loss was {loss}" if not math.isfinite(loss) else "the gradient was not finite"
        self.ctx.log.warning("step %d: %s; its update is skipped (%d skipped so far)", step, what, self.skipped)
        if len(self._in_a_row) >= self.config.max_nonfinite_steps:
            self._fail(step, self._in_a_row, what)

    def _fail(self, step: int, steps: list[int], what: str) -> None:
        raise InvalidRequest(
            f"Training stopped at step {step}: {what} for {len(steps)} steps in a row (steps {steps[0]}–{step}).",
            hint=f"Lower learning_rate (now {self.config.learning_rate:g}), set max_grad_norm, use "
                 "mixed_precision=bf16 or no instead of fp16, or check the weights and inputs for NaN values.",
            field="learning_rate")

    def _amp_dtype(self) -> torch.dtype | None:
        mp, kind = self.config.mixed_precision, self.device.type
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mp)
        if dtype is None:
            return None
        if kind == "cuda" or (dtype == torch.bfloat16 and kind == "cpu"):
            return dtype
        self.ctx.log.info("mixed_precision=%s does not apply on %s; training in float32", mp, kind)
        return None

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def _set_mode(modules: Sequence[torch.nn.Module], train: bool) -> None:
    for mod in modules:
        mod.train(train)


__all__ = ["LR_SCHEDULERS", "MIXED_PRECISION", "TrainingConfig", "TrainingLoop", "TrainingMethod", "TrainingResult",
           "gradient_checkpointing", "make_lr_scheduler", "make_optimizer", "scaled_gradients"]
