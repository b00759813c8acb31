"""sdk.ml.training: the one training loop, on a tiny real torch model (an MLP with dropout) under a real JobContext."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sdk import events as ev
from sdk.context import JobContext
from sdk.errors import CancelRequested, InvalidRequest
from sdk.ml.training import (LR_SCHEDULERS, TrainingConfig, TrainingLoop, TrainingMethod, gradient_checkpointing,
                             scaled_gradients)

W_TRUE = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


class Regression(TrainingMethod):
    """Fit y = x·w with a 2-layer MLP. Random draws: the data from ``generator``, dropout from torch's global RNG.
    ``nan_at``: steps whose loss is NaN; ``nan_grad_at``: steps whose loss is finite but whose gradient is NaN.
    ``data``: a fixed dataset walked in order instead of random draws."""

    artifact = "toy"
    kind = "test.toy"

    def __init__(self, *, batch_size: int = 16, dropout: float = 0.2, nan_at: tuple[int, ...] = (),
                 nan_grad_at: tuple[int, ...] = (), data: torch.Tensor | None = None, groups: bool = False,
                 device: str = "cpu") -> None:
        torch.manual_seed(123)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(dropout), torch.nn.Tanh(),
                                         torch.nn.Linear(16, 1)).to(device)
        self.device = device
        self.generator = torch.Generator().manual_seed(7)
        self.batch_size, self.nan_at, self.nan_grad_at, self.data, self.groups = batch_size, nan_at, nan_grad_at, data, groups
        self.calls = 0
        self.dtypes: list[torch.dtype] = []

    def parameters(self):
        if self.groups:
            return [{"params": list(self.model[0].parameters()), "lr": 1e-2}, {"params": list(self.model[3].parameters())}]
        return list(self.model.parameters())

    def train_modules(self):
        return (self.model,)

    def batch(self, step: int):
        if self.data is not None:
            x = self.data[self.calls * self.batch_size:(self.calls + 1) * self.batch_size]
            self.calls += 1
        else:
            x = torch.randn(self.batch_size, 4, generator=self.generator)
        return x.to(self.device), (x @ W_TRUE).to(self.device)

    def loss(self, batch, step: int) -> torch.Tensor:
        x, y = batch
        out = self.model(x)
        self.dtypes.append(out.dtype)
        loss = F.mse_loss(out.float(), y)
        if step in self.nan_at:
            loss = loss * float("nan")
        if step in self.nan_grad_at:
            w = self.model[0].weight
            loss = loss + torch.sqrt(w - w).sum()  # 0 forward, 0·∞ = NaN backward
        return loss

    def state_dict(self):
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, tensors) -> None:
        self.model.load_state_dict(tensors)  # copies into the parameters (on their device)

    def meta(self):
        return {"trainer": "test.toy"}

    def sample(self, step: int) -> np.ndarray:
        # draws from both RNGs on purpose: the loop must put them back (resume stays exact)
        torch.rand(3)
        torch.rand(3, generator=self.generator)
        with torch.no_grad():
            v = self.model(torch.ones(1, 4, device=self.device)).item()
        return np.full((1, 4, 4, 3), int(min(255, abs(v) * 10)), np.uint8)


class Run:
    """A real JobContext collecting events, with a snapshot of the trainable weights at every progress event."""

    def __init__(self, tmp: Path, method: TrainingMethod, name: str = "job", cancel_after: int | None = None,
                 resume: Path | None = None, resume_step: int = 0) -> None:
        self.method = method
        self.events: list[ev.Event] = []
        self.snapshots: list[dict[str, torch.Tensor]] = []

        def emit(e: ev.Event) -> None:
            self.events.append(e)
            if isinstance(e, ev.ProgressUpdated):
                self.snapshots.append(method.state_dict())

        flag = (lambda: len(self.progress) >= cancel_after) if cancel_after else (lambda: False)
        self.ctx = JobContext(name, emit, staging_dir=tmp / name, kind="train", cancel_flag=flag, resume_from=resume,
                              resume_step=resume_step)

    def __call__(self, optimizer: torch.optim.Optimizer | None = None, **config) -> TrainingLoop:
        cfg = TrainingConfig(**{"max_train_steps": 6, "learning_rate": 5e-2, "checkpointing_steps": 3,
                                "validation_steps": 2, **config})
        self.loop = TrainingLoop(self.ctx, self.method, cfg, optimizer=optimizer)
        self.loop.run()
        return self.loop

    @property
    def progress(self) -> list[ev.ProgressUpdated]:
        return [e for e in self.events if isinstance(e, ev.ProgressUpdated)]

    @property
    def saved(self) -> list[ev.ArtifactSaved]:
        return [e for e in self.events if isinstance(e, ev.ArtifactSaved)]

    @property
    def logs(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, ev.LogRecord)]


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def _weights(folder: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "weights.safetensors"))


def test_progress_samples_and_checkpoints_become_adapter_artifacts(tmp_path: Path) -> None:
    run = Run(tmp_path, Regression())
    run()
    assert [e.step for e in run.progress] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(e.metrics["loss"]) and e.metrics["lr"] == 5e-2 for e in run.progress)
    assert run.progress[-1].metrics["loss"] < run.progress[0].metrics["loss"]
    assert [e.step for e in run.events if isinstance(e, ev.PreviewReady)] == [2, 4, 6]
    assert [e.step for e in run.saved] == [3, 6]
    folder = Path(run.saved[-1].path)
    assert _equal(_weights(folder), run.method.state_dict())
    state = torch.load(folder / "training_state.pt", weights_only=True)  # no pickled code
    assert state["step"] == 6 and {"optimizer", "lr_scheduler", "rng", "torch_rng"} <= set(state)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["kind"] == "test.toy" and meta["trainer"] == "test.toy" and meta["step"] == 6
    assert meta["loss"] == pytest.approx(run.progress[-1].metrics["loss"])


def test_resume_from_a_checkpoint_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """Dropout (global RNG), data (the method's generator) and samples drawing from both: all put back."""
    full = Run(tmp_path, Regression(), "full")
    full()
    at3 = Path(full.saved[0].path)
    resumed = Run(tmp_path, Regression(), "resumed", resume=at3, resume_step=3)
    resumed()
    assert [e.step for e in resumed.progress] == [4, 5, 6]
    assert any("resumed from" in m and "step 3" in m for m in resumed.logs)
    assert _equal(_weights(resumed.saved[-1].path), _weights(full.saved[-1].path))
    a = torch.load(Path(full.saved[-1].path) / "training_state.pt", weights_only=True)
    b = torch.load(Path(resumed.saved[-1].path) / "training_state.pt", weights_only=True)
    for i, st in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][i][k]) for k, v in st.items())
    assert torch.equal(a["rng"], b["rng"]) and torch.equal(a["torch_rng"], b["torch_rng"])
    assert [e.metrics for e in resumed.progress] == [e.metrics for e in full.progress[3:]]


def test_gradient_accumulation_equals_one_large_batch(tmp_path: Path) -> None:
    data = torch.randn(3 * 8, 4, generator=torch.Generator().manual_seed(0))
    small = Run(tmp_path, Regression(batch_size=2, dropout=0.0, data=data), "small")
    small(max_train_steps=3, gradient_accumulation_steps=4)
    large = Run(tmp_path, Regression(batch_size=8, dropout=0.0, data=data), "large")
    large(max_train_steps=3)
    assert small.method.calls == 12 and large.method.calls == 3
    for a, b in zip(small.snapshots, large.snapshots):
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    for a, b in zip(small.progress, large.progress):
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], rel=1e-5)


def test_gradient_clipping_bounds_the_update(tmp_path: Path) -> None:
    """With plain SGD at lr 1 the update is the (clipped) gradient: its norm is max_grad_norm when clipping is on."""
    def first_update(max_grad_norm: float | None) -> float:
        method = Regression(dropout=0.0)
        before = method.state_dict()
        run = Run(tmp_path, method, f"clip-{max_grad_norm}")
        run(torch.optim.SGD(method.parameters(), lr=1.0), max_train_steps=1, max_grad_norm=max_grad_norm)
        return float(torch.cat([(run.snapshots[0][k] - before[k]).flatten() for k in before]).norm())

    assert first_update(None) > 1.0
    assert first_update(0.05) == pytest.approx(0.05, rel=1e-4)


@pytest.mark.parametrize("name", LR_SCHEDULERS)
def test_lr_schedules_are_diffusers_get_scheduler_stepped_once_per_optimizer_step(tmp_path: Path, name: str) -> None:
    from diffusers.optimization import get_scheduler

    method = Regression(dropout=0.0)
    before = method.state_dict()
    run = Run(tmp_path, method, name)
    run(max_train_steps=8, lr_scheduler=name, lr_warmup_steps=3, gradient_accumulation_steps=2)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=5e-2)
    ref = get_scheduler(name, ref_opt, num_warmup_steps=3, num_training_steps=8)
    expected = []
    for _ in range(8):
        ref_opt.step()
        ref.step()
        expected.append(ref.get_last_lr()[0])
    assert [e.metrics["lr"] for e in run.progress] == expected
    # the schedule drives the optimizer: a warm-up's first step runs at lr 0 and leaves the weights where they were
    assert _equal(run.snapshots[0], before) == (name in ("constant_with_warmup", "linear", "cosine"))


def test_param_groups_keep_their_own_learning_rate(tmp_path: Path) -> None:
    """A method's param groups (e.g. LoRA matrices beside an embedding): a group's own lr wins over learning_rate."""
    loop = Run(tmp_path, Regression(groups=True))(max_train_steps=2)
    assert [g["lr"] for g in loop.optimizer.param_groups] == [1e-2, 5e-2]


def test_gradient_scales_apply_while_training_only(tmp_path: Path) -> None:
    def updates(scale: float) -> tuple[dict[str, torch.Tensor], Regression]:
        method = Regression(dropout=0.0)
        method.gradient_scales = lambda: [(list(method.model[0].parameters()), scale)]
        before = method.state_dict()
        run = Run(tmp_path, method, f"scale-{scale}")
        run(torch.optim.SGD(method.parameters(), lr=1.0), max_train_steps=1)
        return {k: run.snapshots[0][k] - before[k] for k in before}, method

    half, method = updates(0.5)
    full, _ = updates(1.0)
    for k in full:
        torch.testing.assert_close(half[k], full[k] * (0.5 if k.startswith("0.") else 1.0))
    # the hooks are gone after the run
    w = method.model[0].weight
    w.grad = None
    (w.sum() * 2).backward()
    assert torch.equal(w.grad, torch.full_like(w, 2.0))
    with scaled_gradients([([w], 0.25)]):
        w.grad = None
        (w.sum() * 2).backward()
    assert torch.equal(w.grad, torch.full_like(w, 0.5))


def test_a_non_finite_loss_or_gradient_skips_the_update_and_training_goes_on(tmp_path: Path) -> None:
    run = Run(tmp_path, Regression(dropout=0.0, nan_at=(3,), nan_grad_at=(5,)))
    run(lr_scheduler="linear")
    steps = run.progress
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6]
    assert math.isnan(steps[2].metrics["loss"]) and math.isfinite(steps[4].metrics["loss"])
    assert [e.metrics.get("skipped", 0) for e in steps] == [0, 0, 1, 1, 2, 2]
    assert _equal(run.snapshots[2], run.snapshots[1]) and _equal(run.snapshots[4], run.snapshots[3])
    assert not _equal(run.snapshots[3], run.snapshots[2])
    assert steps[2].metrics["lr"] == steps[1].metrics["lr"], "a skipped step does not advance the schedule"
    assert all(torch.isfinite(v).all() for v in run.snapshots[-1].values())
    assert any("step 3: the loss was nan" in m for m in run.logs)
    assert [e.step for e in run.saved] == [3, 6]


def test_non_finite_steps_in_a_row_fail_the_job_naming_the_steps(tmp_path: Path) -> None:
    run = Run(tmp_path, Regression(dropout=0.0, nan_at=(2, 3, 4, 5, 6)))
    with pytest.raises(InvalidRequest) as info:
        run(max_nonfinite_steps=3)
    assert "stopped at step 4" in info.value.user_message and "steps 2–4" in info.value.user_message
    assert info.value.field == "learning_rate" and "learning_rate" in info.value.hint
    assert [e.step for e in run.progress] == [1, 2, 3]
    assert all(torch.isfinite(v).all() for v in run.method.state_dict().values())


def test_cancel_stops_before_the_next_micro_batch(tmp_path: Path) -> None:
    run = Run(tmp_path, Regression(), cancel_after=1)
    with pytest.raises(CancelRequested):
        run(gradient_accumulation_steps=3)
    assert [e.step for e in run.progress] == [1]
    assert run.method.generator is not None and not run.saved


@pytest.mark.parametrize("mixed_precision, dtype", [("no", torch.float32), ("bf16", torch.bfloat16),
                                                    ("fp16", torch.float32)])
def test_mixed_precision_autocasts_the_loss_on_cpu(tmp_path: Path, mixed_precision: str, dtype: torch.dtype) -> None:
    """bf16 autocasts on a CPU (the weights and their gradients stay float32); fp16 needs CUDA and says so."""
    run = Run(tmp_path, Regression(dropout=0.0), mixed_precision)
    loop = run(max_train_steps=4, mixed_precision=mixed_precision, learning_rate=5e-2)
    assert set(run.method.dtypes) == {dtype}
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in loop.params)
    assert run.progress[-1].metrics["loss"] < run.progress[0].metrics["loss"]
    assert any("does not apply on cpu" in m for m in run.logs) == (mixed_precision == "fp16")


def test_config_from_params_refuses_unknown_names() -> None:
    from sdk.params import TrainParams

    cfg = TrainingConfig.from_params(TrainParams(max_train_steps=5, lr_scheduler="cosine"))
    assert (cfg.max_train_steps, cfg.lr_scheduler, cfg.max_grad_norm) == (5, "cosine", None)
    with pytest.raises(InvalidRequest) as info:
        TrainingConfig.from_params(TrainParams(), lr_scheduler="polynomial_decay")
    assert info.value.field == "lr_scheduler" and "cosine" in info.value.hint


def test_gradient_checkpointing_keeps_gradients_and_saves_less() -> None:
    """The same gradients (dropout replayed) with fewer tensors kept for backward; the forward comes back after."""
    torch.manual_seed(0)
    block = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Dropout(0.3), torch.nn.GELU())
                                  for _ in range(4)])
    x = torch.randn(8, 32)

    def grads() -> tuple[list[torch.Tensor], int]:
        saved = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal saved
            saved += 1
            return t

        block.zero_grad()
        torch.manual_seed(1)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = block(x).square().mean()
        loss.backward()
        return [p.grad.clone() for p in block.parameters()], saved

    plain, n_plain = grads()
    with gradient_checkpointing(block):
        ckpt, n_ckpt = grads()
    assert all(torch.equal(a, b) for a, b in zip(plain, ckpt))
    assert n_ckpt < n_plain
    assert "forward" not in block.__dict__


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_grad_scaler_and_exact_resume_on_cuda(tmp_path: Path) -> None:
    """fp16 autocast with a GradScaler; dropout draws from the CUDA RNG, which the checkpoint carries too."""
    full = Run(tmp_path, Regression(device="cuda"), "full")
    full(mixed_precision="fp16")
    assert set(full.method.dtypes) == {torch.float16}
    assert all(math.isfinite(e.metrics["loss"]) for e in full.progress)
    state = torch.load(Path(full.saved[0].path) / "training_state.pt", weights_only=True)
    assert {"grad_scaler", "cuda_rng"} <= set(state)
    resumed = Run(tmp_path, Regression(device="cuda"), "resumed", resume=Path(full.saved[0].path), resume_step=3)
    resumed(mixed_precision="fp16")
    assert [e.step for e in resumed.progress] == [4, 5, 6]
    assert _equal(_weights(resumed.saved[-1].path), _weights(full.saved[-1].path))
    # NaN gradients at a finite loss are GradScaler overflows; at any scale they fail the job after MAX_SCALER_OVERFLOWS
    from sdk.ml.training import MAX_SCALER_OVERFLOWS

    nan = Run(tmp_path, Regression(device="cuda", nan_grad_at=tuple(range(1, 100))), "nan")
    with pytest.raises(InvalidRequest, match=f"stopped at step {MAX_SCALER_OVERFLOWS}: the fp16 gradient"):
        nan(mixed_precision="fp16", max_train_steps=60)
