"""A contract suite every trainer should pass. Subclass :class:`TrainerContract` in a test module::

    class TestMyTrainer(TrainerContract):
        spec = next(s for s in my_plugin.vgen_trainers() if s.id == "my_plugin.motion")
        params = {"height": 32, "width": 32, "lr_warmup_steps": 0}  # small, fast values

        def make_weights(self, tmp_path):
            return my_plugin.tiny.make_tiny_weights(tmp_path / "w")

        def make_inputs(self, tmp_path):
            return {"motion": MotionInput("walk", [write_a_clip(tmp_path / "walk.mp4")])}

The trainer runs in-process under a real :class:`sdk.context.JobContext` for ``steps`` steps with a checkpoint at
``checkpoint_at`` (and at the end). It must report a loss every step, save checkpoints that become Adapters, stop at
a cancel within a step, resume from a checkpoint to the same result as an uninterrupted run, and skip non-finite
steps and then fail clearly. Trainers built on :mod:`sdk.ml.training` get all of this from the loop; the suite
checks that the method feeds it right (every random draw from its generator, checkpoints that load back).
"""
from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from sdk import events as ev
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import CancelRequested, InvalidRequest
from sdk.params import validate_params
from sdk.specs import TrainerSpec, load_entry


class TrainRun:
    """The events of one training job and, when it raised, the exception."""

    def __init__(self, events: list[ev.Event], error: BaseException | None = None) -> None:
        self.events = events
        self.error = error

    @property
    def progress(self) -> list[ev.ProgressUpdated]:
        return [e for e in self.events if isinstance(e, ev.ProgressUpdated)]

    @property
    def saved(self) -> list[ev.ArtifactSaved]:
        return [e for e in self.events if isinstance(e, ev.ArtifactSaved)]

    @property
    def previews(self) -> list[ev.PreviewReady]:
        return [e for e in self.events if isinstance(e, ev.PreviewReady)]

    @property
    def logs(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, ev.LogRecord)]


def poison_weights(weights: Path, dest: Path) -> Path:
    """A copy of the weights folder (or file) ``weights`` at ``dest`` with every floating-point tensor set to NaN:
    torch checkpoints (``.pth .pt .bin .ckpt``, loaded with ``weights_only=True``) and ``.safetensors`` files; other
    files (configs, tokenizers) are copied as they are. A real fault: a corrupt or diverged checkpoint."""
    import torch
    from safetensors.torch import load_file, save_file

    def nan(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return torch.full_like(obj, float("nan")) if obj.is_floating_point() else obj
        if isinstance(obj, dict):
            return {k: nan(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(nan(v) for v in obj)
        return obj

    if weights.is_dir():
        shutil.copytree(weights, dest)
        files = [p for p in dest.rglob("*") if p.is_file()]
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(weights, dest)
        files = [dest]
    for f in files:
        if f.suffix == ".safetensors":
            save_file(nan(load_file(str(f))), str(f))
        elif f.suffix in (".pth", ".pt", ".bin", ".ckpt"):
            torch.save(nan(torch.load(f, map_location="cpu", weights_only=True)), f)
    return dest


class TrainerContract:
    """Fill in ``spec``, ``params`` (small, fast values) and ``make_weights``; ``make_inputs`` when the trainer takes
    inputs (a subject, a motion …). ``steps`` / ``checkpoint_at`` size the runs."""

    spec: TrainerSpec
    params: dict[str, Any] = {}
    steps: int = 3
    checkpoint_at: int = 2

    def make_weights(self, tmp_path: Path) -> Path | None:  # pragma: no cover - must be overridden
        raise NotImplementedError("return the folder of a tiny twin written into tmp_path (None: no weights)")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        """The job's resolved inputs (``JobRequest.inputs``), files written into ``tmp_path``."""
        return {}

    def make_nan_weights(self, weights: Path | None, tmp_path: Path) -> Path | None:
        """Weights that make every loss non-finite (default: :func:`poison_weights`)."""
        if weights is None:
            pytest.skip("no weights to poison: override make_nan_weights")
        return poison_weights(Path(weights), tmp_path / "nan-weights")

    # -- fixtures -------------------------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    def weights(self, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
        w = self.make_weights(tmp_path_factory.mktemp("trainer-weights"))
        return None if w is None else Path(w)

    @pytest.fixture(scope="class")
    def inputs(self, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        return self.make_inputs(tmp_path_factory.mktemp("trainer-inputs"))

    @pytest.fixture(scope="class")
    def cache(self) -> ModelCache:
        return ModelCache()

    @pytest.fixture(scope="class")
    def first_run(self, weights: Path | None, inputs: dict[str, Any], cache: ModelCache,
                  tmp_path_factory: pytest.TempPathFactory) -> TrainRun:
        """An uninterrupted run of ``steps`` steps (shared by the tests that only read it)."""
        return self.run_job(weights, inputs, tmp_path_factory.mktemp("first-run"), cache=cache)

    # -- helper ---------------------------------------------------------------------------------------------------
    def run_job(self, weights: Path | None, inputs: dict[str, Any], tmp_path: Path, *, cache: ModelCache | None = None,
                cancel_when: Callable[[list[ev.Event]], bool] | None = None, resume_from: Path | None = None,
                resume_step: int = 0, expect: type[BaseException] | None = None, **overrides: Any) -> TrainRun:
        """Run the trainer once; ``expect``: the exception it must raise (kept in the result)."""
        events: list[ev.Event] = []
        flag = (lambda: cancel_when(events)) if cancel_when else (lambda: False)
        ctx = JobContext("contract-train", events.append, staging_dir=tmp_path / "staging", models=cache, kind="train",
                         cancel_flag=flag, resume_from=resume_from, resume_step=resume_step)
        values = {**self.params, "max_train_steps": self.steps, "checkpointing_steps": self.checkpoint_at,
                  "validation_steps": self.steps, **overrides}
        params = validate_params(self.spec.params, values, spec_id=self.spec.id)
        req = JobRequest("contract-train", "train", self.spec.id, params, seed=int(getattr(params, "seed", 0)),
                         inputs=dict(inputs), weights=weights)
        trainer = load_entry(self.spec.entry)()
        if expect is None:
            trainer.train(ctx, req)
            return TrainRun(events)
        with pytest.raises(expect) as info:
            trainer.train(ctx, req)
        return TrainRun(events, info.value)

    # -- the contract ---------------------------------------------------------------------------------------------
    def test_spec_is_well_formed(self) -> None:
        assert "." in self.spec.id, "ids are '<plugin>.<name>'"
        assert callable(getattr(load_entry(self.spec.entry), "train", None)), "the entry class has train(ctx, req)"
        validate_params(self.spec.params, {**self.params, "max_train_steps": self.steps}, spec_id=self.spec.id)

    def test_every_step_reports_its_loss_and_learning_rate(self, first_run: TrainRun) -> None:
        assert [e.step for e in first_run.progress] == list(range(1, self.steps + 1)), "a progress event per step"
        assert {e.total for e in first_run.progress} == {self.steps}
        for e in first_run.progress:
            assert math.isfinite(e.metrics.get("loss", math.nan)), f"step {e.step}: a finite loss metric"
            assert e.metrics.get("lr", -1.0) >= 0.0, f"step {e.step}: the learning rate"

    def test_checkpoints_become_adapters(self, first_run: TrainRun) -> None:
        import torch
        from safetensors.torch import load_file

        saved = first_run.saved
        expected = sorted({self.checkpoint_at * k for k in range(1, self.steps // self.checkpoint_at + 1)} | {self.steps})
        assert [e.step for e in saved] == expected, "a checkpoint every checkpointing_steps and at the end"
        plugin = self.spec.id.split(".")[0]
        for e in saved:
            folder = Path(e.path)
            assert load_file(str(folder / "weights.safetensors")), "weights.safetensors holds the trained tensors"
            state = torch.load(folder / "training_state.pt", map_location="cpu", weights_only=True)
            assert state["step"] == e.step and {"optimizer", "lr_scheduler", "torch_rng"} <= set(state)
            meta = json.loads((folder / "meta.json").read_text())
            assert meta["step"] == e.step and meta == e.meta
            assert str(meta.get("kind", "")).startswith(plugin + "."), "an Adapter kind '<plugin>.<what>'"

    def test_samples_are_video_previews(self, first_run: TrainRun) -> None:
        """A trainer that samples sends uint8 videos at validation steps (here: the last one)."""
        for e in first_run.previews:
            assert e.step == self.steps and e.frames.dtype.name == "uint8" and e.frames.ndim == 4

    def test_cancel_stops_within_a_step(self, weights: Path | None, inputs: dict[str, Any], cache: ModelCache,
                                        tmp_path: Path) -> None:
        def after_first_step(events: list[ev.Event]) -> bool:
            return any(isinstance(e, ev.ProgressUpdated) for e in events)

        run = self.run_job(weights, inputs, tmp_path, cache=cache, cancel_when=after_first_step, expect=CancelRequested)
        assert [e.step for e in run.progress] == [1], "no step starts after a cancel"
        assert not run.saved, "a cancelled step saves nothing"

    def test_resume_continues_at_the_saved_step_and_ends_equal(self, weights: Path | None, inputs: dict[str, Any],
                                                               cache: ModelCache, first_run: TrainRun,
                                                               tmp_path: Path) -> None:
        from safetensors.torch import load_file

        at = next(e for e in first_run.saved if e.step == self.checkpoint_at)
        run = self.run_job(weights, inputs, tmp_path, cache=cache, resume_from=Path(at.path), resume_step=at.step)
        assert [e.step for e in run.progress] == list(range(self.checkpoint_at + 1, self.steps + 1))
        a = load_file(str(Path(first_run.saved[-1].path) / "weights.safetensors"))
        b = load_file(str(Path(run.saved[-1].path) / "weights.safetensors"))
        assert set(a) == set(b)
        different = [k for k in a if not a[k].equal(b[k])]
        assert not different, f"a resumed run must end bitwise equal to an uninterrupted one; differs in {different[:5]}"

    def test_non_finite_losses_are_skipped_then_fail_naming_the_step(self, weights: Path | None,
                                                                    inputs: dict[str, Any], tmp_path: Path) -> None:
        bad = self.make_nan_weights(weights, tmp_path)
        run = self.run_job(bad, inputs, tmp_path, cache=ModelCache(), expect=InvalidRequest,
                           max_train_steps=max(self.steps, 4))
        message = run.error.user_message  # type: ignore[union-attr]
        assert re.search(r"\bstep \d+", message), f"the error names the step: {message!r}"
        assert "not finite" in message or "nan" in message.lower()
        assert run.progress, "steps before the limit are skipped, not fatal"
        assert all(e.metrics.get("skipped", 0) >= 1 for e in run.progress)
