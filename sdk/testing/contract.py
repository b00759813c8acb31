"""A contract suite every generator should pass. Subclass :class:`GeneratorContract` in a test module::

    class TestMyGenerator(GeneratorContract):
        spec = my_plugin.vgen_generators()[0]
        params = {"prompt": "a cat", "num_frames": 2, "height": 64, "width": 64, "num_inference_steps": 3}

        def make_weights(self, tmp_path):
            return my_plugin.tiny.make_tiny_weights(tmp_path / "w")

The generator runs in-process under a real :class:`sdk.context.JobContext`; the weights are written once per class
and the model cache is shared across the class's tests (so the cache itself is checked too).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from sdk import events as ev
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import CancelRequested, InvalidRequest, WeightsMissing
from sdk.params import validate_params
from sdk.specs import GeneratorSpec, load_entry
from sdk.video import Video


class RunResult:
    def __init__(self, video: Video | None, events: list[ev.Event]) -> None:
        self.video = video
        self.events = events

    @property
    def progress(self) -> list[ev.ProgressUpdated]:
        return [e for e in self.events if isinstance(e, ev.ProgressUpdated)]

    @property
    def previews(self) -> list[ev.PreviewReady]:
        return [e for e in self.events if isinstance(e, ev.PreviewReady)]


class GeneratorContract:
    """Fill in ``spec``, ``params`` (small, fast values) and ``make_weights``; optionally ``bad_params``."""

    spec: GeneratorSpec
    params: dict[str, Any] = {}
    #: one invalid value per entry; each must be refused with InvalidRequest naming the field
    bad_params: tuple[dict[str, Any], ...] = ({"num_frames": 0}, {"guidance_scale": float("nan")}, {"no_such_param": 1})
    inputs: dict[str, Any] = {}

    def make_weights(self, tmp_path: Path) -> Path:  # pragma: no cover - must be overridden
        raise NotImplementedError("return the folder of a tiny twin written into tmp_path")

    # -- fixtures -------------------------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    def weights(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return Path(self.make_weights(tmp_path_factory.mktemp("contract-weights")))

    @pytest.fixture(scope="class")
    def cache(self) -> ModelCache:
        return ModelCache()

    # -- helper ---------------------------------------------------------------------------------------------------
    def run_job(self, weights: Path | None, tmp_path: Path, *, seed: int = 0, cache: ModelCache | None = None,
                cancel_when: Callable[[list[ev.Event]], bool] | None = None, events: list[ev.Event] | None = None,
                **overrides: Any) -> RunResult:
        events = [] if events is None else events
        flag = (lambda: cancel_when(events)) if cancel_when else (lambda: False)
        ctx = JobContext("contract-job", events.append, staging_dir=tmp_path / "staging", models=cache,
                         cancel_flag=flag)
        ctx.preview_interval_s = 0.0  # every step may preview in tests
        params = validate_params(self.spec.params, {**self.params, **overrides}, spec_id=self.spec.id)
        req = JobRequest("contract-job", "generate", self.spec.id, params, seed=seed, inputs=dict(self.inputs),
                         weights=weights)
        generator = load_entry(self.spec.entry)()
        video = generator.generate(ctx, req)
        return RunResult(video, events)

    # -- the contract ---------------------------------------------------------------------------------------------
    def test_spec_is_well_formed(self) -> None:
        assert "." in self.spec.id, "ids are '<plugin>.<name>'"
        assert callable(getattr(load_entry(self.spec.entry), "generate", None))
        validate_params(self.spec.params, self.params, spec_id=self.spec.id)

    def test_bad_params_are_refused(self) -> None:
        for bad in self.bad_params:
            with pytest.raises(InvalidRequest) as info:
                validate_params(self.spec.params, {**self.params, **bad}, spec_id=self.spec.id)
            assert info.value.field == next(iter(bad)), f"{bad}: the error must name the field"

    def test_generates_with_progress_and_previews(self, weights: Path, cache: ModelCache, tmp_path: Path) -> None:
        res = self.run_job(weights, tmp_path, cache=cache)
        assert isinstance(res.video, Video)
        assert res.video.frames.dtype == np.uint8 and res.video.frames.ndim == 4
        steps = [e.step for e in res.progress]
        assert steps and steps == list(range(1, len(steps) + 1)), "a progress event per step, in order"
        assert len({e.total for e in res.progress}) == 1 and res.progress[-1].total == steps[-1]
        assert res.previews, "previews are emitted"
        assert res.previews[-1].step == steps[-1], "the last step always previews"
        for p in res.previews:
            assert p.frames.dtype == np.uint8 and p.frames.ndim == 4 and p.frames.shape[-1] == 3

    def test_cancel_is_honoured(self, weights: Path, cache: ModelCache, tmp_path: Path) -> None:
        def after_first_step(events: list[ev.Event]) -> bool:
            return any(isinstance(e, ev.ProgressUpdated) for e in events)

        events_seen: list[ev.Event] = []
        with pytest.raises(CancelRequested):
            self.run_job(weights, tmp_path, cache=cache, cancel_when=after_first_step, events=events_seen)
        progress = [e for e in events_seen if isinstance(e, ev.ProgressUpdated)]
        assert progress, "at least one step ran"
        assert len(progress) == 1, f"cancel must stop at the next step check, ran {len(progress)} of {progress[0].total}"

    def test_same_seed_same_frames(self, weights: Path, cache: ModelCache, tmp_path: Path) -> None:
        a = self.run_job(weights, tmp_path, seed=7, cache=cache).video
        b = self.run_job(weights, tmp_path, seed=7, cache=cache).video
        assert a is not None and b is not None
        assert np.array_equal(a.frames, b.frames), "same seed, params and weights must give bitwise-equal frames"

    def test_different_seed_different_frames(self, weights: Path, cache: ModelCache, tmp_path: Path) -> None:
        a = self.run_job(weights, tmp_path, seed=1, cache=cache).video
        b = self.run_job(weights, tmp_path, seed=2, cache=cache).video
        assert a is not None and b is not None
        assert not np.array_equal(a.frames, b.frames)

    def test_tiny_twin_loads_through_real_loader_and_is_cached(self, weights: Path, tmp_path: Path) -> None:
        cache = ModelCache()
        self.run_job(weights, tmp_path, cache=cache)
        loads = cache.misses
        assert loads >= 1 and len(cache.keys) == loads, "the generator loads through ctx.models"
        self.run_job(weights, tmp_path, cache=cache)
        assert cache.misses == loads and cache.hits >= 1, "a second job on the same weights pays no load"

    def test_missing_weights_are_reported(self, tmp_path: Path) -> None:
        with pytest.raises(WeightsMissing) as info:
            self.run_job(tmp_path / "no-such-weights", tmp_path, cache=ModelCache())
        assert info.value.hint, "the error says how to get the weights"
