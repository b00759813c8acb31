"""precision=int8 end to end: queued through the CLI and the real queue, rendered by the real worker process on the
tiny ModelScope T2V twin, recorded in the output; refused at queue time where no quantization library can load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdk.outputs import read_frames
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"num_frames": [3], "height": [32], "width": [32], "num_inference_steps": [2]}

#: makes torchao and optimum(-quanto) unimportable in a child process, as on a machine without them: ``import``
#: fails and ``importlib.util.find_spec`` answers None
BLOCK = """import sys
for name in ("torchao", "optimum", "optimum.quanto"):
    sys.modules[name] = None
"""

#: asks for int8 where nothing can quantize; prints the error's type and field, then whether torch got imported
PROBE = """import sys
from sdk.options import validate_options
try:
    validate_options({"precision": "int8"})
except Exception as e:
    print(type(e).__name__, getattr(e, "field", ""))
print("torch" in sys.modules)
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Quant.vgen")
    yield p
    p.close()


def _cli(args: list[str], tmp_path: Path, *, block: bool) -> subprocess.CompletedProcess:
    path = [str(ROOT)]
    if block:
        site = tmp_path / "blocked"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCK)
        path.insert(0, str(site))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)


def test_int8_without_torchao_or_quanto_is_refused_at_queue_time(project: Project, tiny_t2v_weights: Path,
                                                                 tmp_path: Path) -> None:
    add = ["-m", "sdk.cli", "queue", "add", str(project.path), "--generator", "modelscope_t2v.t2v", "--prompt", "a fox",
           "--weights", str(tiny_t2v_weights), "--precision", "int8"]
    refused = _cli(add, tmp_path, block=True)
    assert refused.returncode == 2, refused.stderr
    assert "precision 'int8'" in refused.stderr and "pip install torchao" in refused.stderr
    assert project.jobs() == []
    # the check itself imports no torch
    probe = _cli(["-c", PROBE], tmp_path, block=True)
    assert probe.stdout.split() == ["InvalidRequest", "precision", "False"], probe.stderr
    # with torchao importable the same request is queued
    ok = _cli(add, tmp_path, block=False)
    assert ok.returncode == 0, ok.stderr
    assert [j.options["precision"] for j in project.jobs()] == ["int8"]


@pytest.mark.slow
def test_int8_renders_in_the_worker_in_light_modes_and_records_its_recipe(project: Project,
                                                                         tiny_t2v_weights: Path) -> None:
    registry = load_plugins()
    common = dict(prompts=["a red fox in snow"], seeds="1", params=PARAMS, weights=str(tiny_t2v_weights))
    queue_jobs(project, registry, "modelscope_t2v.t2v", options={"precision": "bf16", "memory_mode": "none"}, **common)
    queue_jobs(project, registry, "modelscope_t2v.t2v",
               options={"precision": "int8", "memory_mode": ["none", "low", "none"]}, **common)
    service = RenderService(project)
    stats = service.run(until_empty=True)
    assert stats == {"succeeded": 4, "failed": 0, "cancelled": 0}
    assert service.executor.starts == 1
    jobs = project.jobs()
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * 4
    metas = [json.loads((project.output(j.id).dir / "meta.json").read_text()) for j in jobs]
    frames = [read_frames(project.output(j.id).dir) for j in jobs]
    assert metas[0]["runtime"]["quantization"] == "none" and "quantized" not in metas[0]["runtime"]
    for meta in metas[1:]:
        rt = meta["runtime"]
        assert meta["options"]["precision"] == "int8"
        assert rt["quantization"] == "int8" and rt["compute_dtype"] == "bfloat16" == rt["unet_dtype"]
        assert rt["quantized"]["backend"] == "torchao" and rt["quantized"]["layers"] > 0
    assert [m["runtime"]["memory_mode"] for m in metas] == ["none", "none", "low", "none"]
    assert metas[2]["runtime"]["encoders_freed"]
    # the last int8 job reused the cached quantized denoiser: the same frames as the first
    assert np.array_equal(frames[1], frames[3])
    mse = np.mean((frames[0].astype(float) - frames[1].astype(float)) ** 2)
    assert 10 * np.log10(255.0 ** 2 / max(mse, 1e-12)) > 25, "int8 frames drifted from bf16"
