"""A contract suite every generator should pass. Subclass :class:`GeneratorContract` in a test module::

    class TestMyGenerator(GeneratorContract):
        spec = my_plugin.vgen_generators()[0]
        params = {"prompt": "a cat", "num_frames": 2, "height": 64, "width": 64, "num_inference_steps": 3}

        def make_weights(self, tmp_path):
            return my_plugin.tiny.make_tiny_weights(tmp_path / "w")

The generator runs in-process under a real :class:`sdk.context.JobContext`; the weights are written once per class
and the model cache is shared across the class's tests (so the cache itself is checked too).

A weight-free generator (``spec.default_weights`` None) needs no ``make_weights``: its jobs run with
``req.weights`` None and the two weights checks are skipped. Inputs that are files (an image, a video) are written by
``make_inputs(tmp_path)``, once per class.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from sdk import events as ev
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import CancelRequested, InvalidRequest, WeightsMissing
from sdk.outputs import check_video
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
    """Fill in ``spec``, ``params`` (small, fast values) and ``make_weights`` (not for a weight-free generator);
    optionally ``bad_params``, and ``inputs`` or ``make_inputs`` for the job's inputs (as the worker hands them:
    ``Path`` for an image, :class:`sdk.inputs.VideoInput` for a video …)."""

    spec: GeneratorSpec
    params: dict[str, Any] = {}
    #: one invalid value per entry; each must be refused with InvalidRequest naming the field
    bad_params: tuple[dict[str, Any], ...] = ({"num_frames": 0}, {"guidance_scale": float("nan")}, {"no_such_param": 1})
    inputs: dict[str, Any] = {}

    def make_weights(self, tmp_path: Path) -> Path | None:
        """The folder of a tiny twin written into ``tmp_path``; None (the default for a spec without
        ``default_weights``) for a generator that needs no weights."""
        if self.spec.default_weights is None:
            return None
        raise NotImplementedError("return the folder of a tiny twin written into tmp_path")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        """The job's inputs, by field name, as the plugin receives them (files written into ``tmp_path``).
        Default: ``inputs``."""
        return dict(self.inputs)

    # -- fixtures (once per class; class methods, as pytest wants class-scoped fixtures) --------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def weights(cls, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
        made = cls().make_weights(tmp_path_factory.mktemp("contract-weights"))
        return None if made is None else Path(made)

    @pytest.fixture(scope="class")
    @classmethod
    def job_inputs(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        return cls().make_inputs(tmp_path_factory.mktemp("contract-inputs"))

    @pytest.fixture(scope="class")
    @classmethod
    def cache(cls) -> ModelCache:
        return ModelCache()

    # -- helper ---------------------------------------------------------------------------------------------------
    def run_job(self, weights: Path | None, tmp_path: Path, *, seed: int = 0, cache: ModelCache | None = None,
                cancel_when: Callable[[list[ev.Event]], bool] | None = None, events: list[ev.Event] | None = None,
                inputs: dict[str, Any] | None = None, **overrides: Any) -> RunResult:
        events = [] if events is None else events
        flag = (lambda: cancel_when(events)) if cancel_when else (lambda: False)
        ctx = JobContext("contract-job", events.append, staging_dir=tmp_path / "staging", models=cache,
                         cancel_flag=flag)
        ctx.preview_interval_s = 0.0  # every step may preview in tests
        params = validate_params(self.spec.params, {**self.params, **overrides}, spec_id=self.spec.id)
        req = JobRequest("contract-job", "generate", self.spec.id, params, seed=seed,
                         inputs=dict(self.inputs if inputs is None else inputs), weights=weights)
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

    def test_generates_with_progress_and_previews(self, weights: Path | None, cache: ModelCache,
                                                  job_inputs: dict[str, Any], tmp_path: Path) -> None:
        res = self.run_job(weights, tmp_path, cache=cache, inputs=job_inputs)
        assert isinstance(res.video, Video)
        assert res.video.frames.dtype == np.uint8 and res.video.frames.ndim == 4
        # what the worker checks: the frames and size asked for, unless the spec says it changes them
        check_video(self.spec, validate_params(self.spec.params, self.params, spec_id=self.spec.id), res.video)
        steps = [e.step for e in res.progress]
        assert steps and steps == list(range(1, len(steps) + 1)), "a progress event per step, in order"
        assert len({e.total for e in res.progress}) == 1 and res.progress[-1].total == steps[-1]
        assert res.previews, "previews are emitted"
        assert res.previews[-1].step == steps[-1], "the last step always previews"
        for p in res.previews:
            assert p.frames.dtype == np.uint8 and p.frames.ndim == 4 and p.frames.shape[-1] == 3

    def test_cancel_is_honoured(self, weights: Path | None, cache: ModelCache, job_inputs: dict[str, Any],
                                tmp_path: Path) -> None:
        def after_first_step(events: list[ev.Event]) -> bool:
            return any(isinstance(e, ev.ProgressUpdated) for e in events)

        events_seen: list[ev.Event] = []
        with pytest.raises(CancelRequested):
            self.run_job(weights, tmp_path, cache=cache, cancel_when=after_first_step, events=events_seen,
                         inputs=job_inputs)
        progress = [e for e in events_seen if isinstance(e, ev.ProgressUpdated)]
        assert progress, "at least one step ran"
        assert len(progress) == 1, f"cancel must stop at the next step check, ran {len(progress)} of {progress[0].total}"

    def test_same_seed_same_frames(self, weights: Path | None, cache: ModelCache, job_inputs: dict[str, Any],
                                   tmp_path: Path) -> None:
        a = self.run_job(weights, tmp_path, seed=7, cache=cache, inputs=job_inputs).video
        b = self.run_job(weights, tmp_path, seed=7, cache=cache, inputs=job_inputs).video
        assert a is not None and b is not None
        assert np.array_equal(a.frames, b.frames), "same seed, params and weights must give bitwise-equal frames"

    def test_different_seed_different_frames(self, weights: Path | None, cache: ModelCache,
                                             job_inputs: dict[str, Any], tmp_path: Path) -> None:
        a = self.run_job(weights, tmp_path, seed=1, cache=cache, inputs=job_inputs).video
        b = self.run_job(weights, tmp_path, seed=2, cache=cache, inputs=job_inputs).video
        assert a is not None and b is not None
        assert not np.array_equal(a.frames, b.frames)

    def test_tiny_twin_loads_through_real_loader_and_is_cached(self, weights: Path | None,
                                                               job_inputs: dict[str, Any], tmp_path: Path) -> None:
        if weights is None:
            pytest.skip("a weight-free generator has no tiny twin to load")
        cache = ModelCache()
        self.run_job(weights, tmp_path, cache=cache, inputs=job_inputs)
        loads = cache.misses
        assert loads >= 1 and len(cache.keys) == loads, "the generator loads through ctx.models"
        self.run_job(weights, tmp_path, cache=cache, inputs=job_inputs)
        assert cache.misses == loads and cache.hits >= 1, "a second job on the same weights pays no load"

    def test_missing_weights_are_reported(self, weights: Path | None, job_inputs: dict[str, Any],
                                          tmp_path: Path) -> None:
        if weights is None:
            pytest.skip("a weight-free generator reads no weights")
        with pytest.raises(WeightsMissing) as info:
            self.run_job(tmp_path / "no-such-weights", tmp_path, cache=ModelCache(), inputs=job_inputs)
        assert info.value.hint, "the error says how to get the weights"
