"""compose vs the base generator, released adapter / embedding files, the real VGen manifests (meta device)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdk.context import JobContext, JobRequest

from plugins.dreamvideo.adapters import IDENTITY, MOTION, DreamVideoAdapters
from plugins.dreamvideo.formats import (read_adapter, read_text_embedding, write_released_adapter,
                                        write_text_embedding)
from plugins.dreamvideo.params import ComposeParams

from tests.plugins.dreamvideo.conftest import write_trained_adapters

MANIFESTS = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "vgen_unet_manifests"
GEN = dict(prompt="a dog running", num_frames=2, height=32, width=32, num_inference_steps=2, seed=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dv_weights) -> dict[str, Path]:
    """Identity and motion adapters with non-zero weights, as a project would hold them (tensors made directly)."""
    return write_trained_adapters(tmp_path_factory.mktemp("adapters"))


def _generate(gen, weights: Path, params, inputs=None, seed=7) -> np.ndarray:
    ctx = JobContext("g", lambda e: None, staging_dir=weights.parent / "staging")
    req = JobRequest("g", "generate", "x", params, seed, dict(inputs or {}), weights)
    return gen.generate(ctx, req).frames


def _adapters(trained, **over):
    ins = {"identity_adapter": {"path": str(trained[IDENTITY]), "meta": {"token": "<dog>"}},
           "motion_adapter": {"path": str(trained[MOTION]), "meta": {}}}
    ins.update(over)
    return {"adapters": ins}


def test_zero_strength_compose_equals_the_base_generator(dv_weights, trained) -> None:
    from plugins.dreamvideo.pipeline import ComposeGenerator
    from plugins.modelscope_t2v.params import T2VParams
    from plugins.modelscope_t2v.pipeline import T2VGenerator

    gen_args = {k: v for k, v in GEN.items() if k != "seed"}
    base = _generate(T2VGenerator(), dv_weights, T2VParams(**gen_args, offset_noise=0.1))
    off = _generate(ComposeGenerator(), dv_weights, ComposeParams(**gen_args, identity_strength=0, motion_strength=0),
                    _adapters(trained))
    assert np.array_equal(base, off)
    on = _generate(ComposeGenerator(), dv_weights, ComposeParams(**gen_args), _adapters(trained))
    assert not np.array_equal(base, on)
    # the subject's token uses the learned vector
    tok = _generate(ComposeGenerator(), dv_weights, ComposeParams(**{**gen_args, "prompt": "a <dog> running"},
                                                                   identity_strength=0, motion_strength=0),
                    _adapters(trained))
    assert not np.array_equal(base, tok)


def test_released_files_round_trip_and_compose_reads_them(tmp_path, dv_weights, trained) -> None:
    from plugins.dreamvideo.pipeline import ComposeGenerator

    ident = read_adapter(trained[IDENTITY])
    motion = read_adapter(trained[MOTION])
    a_path = write_released_adapter(tmp_path / "dog_adapter_00000500.pth", ident.adapters, 500)
    m_path = write_released_adapter(tmp_path / "turn_adapter_00001500.pth", motion.adapters, 1500)
    back = read_adapter(a_path)
    assert back.step == 500 and back.adapters.keys() == ident.adapters.keys()
    assert all(torch.equal(back.adapters[k], ident.adapters[k]) for k in back.adapters)
    # VGen writes string_to_param as an nn.ParameterDict: read with weights_only (that class allowed)
    vec = ident.embedding.string_to_param["*"]
    torch.save({"string_to_token": {"*": torch.tensor(265)},
                "string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(vec.clone())})},
               tmp_path / "text_embedding_of_dog_0003000.pth")
    ti = read_text_embedding(tmp_path / "text_embedding_of_dog_0003000.pth")
    assert ti.string_to_token == {"*": 265} and torch.equal(ti.string_to_param["*"], vec)
    ours = read_text_embedding(write_text_embedding(tmp_path / "te.pth", ti))
    assert torch.equal(ours.string_to_param["*"], vec)

    gen_args = {k: v for k, v in GEN.items() if k != "seed"}
    project_files = _generate(ComposeGenerator(), dv_weights, ComposeParams(**gen_args), _adapters(trained))
    released = _generate(ComposeGenerator(), dv_weights,
                         ComposeParams(**gen_args, text_embedding=str(tmp_path / "text_embedding_of_dog_0003000.pth")),
                         {"adapters": {"identity_adapter": {"path": str(a_path), "meta": {}},
                                       "motion_adapter": {"path": str(m_path), "meta": {}}}})
    assert np.array_equal(project_files, released)


def test_a_base_checkpoint_is_refused_as_adapter(dv_weights) -> None:
    from sdk.errors import IncompatibleCheckpoint

    with pytest.raises(IncompatibleCheckpoint, match="non-adapter keys"):
        read_adapter(dv_weights / "model_scope_v1-5_tiny.pth")


@pytest.mark.parametrize("name, identity, motion", [("dreamvideo_unet.json", True, True),
                                                    ("dreamvideo_subject_only_unet.json", True, False),
                                                    ("dreamvideo_motion_only_unet.json", False, True)])
def test_manifest_maps_exactly(name: str, identity: bool, motion: bool) -> None:
    if not (MANIFESTS / name).exists():
        pytest.skip(f"../shared/reference/vgen_unet_manifests/{name} is not available")
    from diffusers import UNet3DConditionModel

    from sdk.ml.convert import KeyMap, is_temporal_proj

    manifest = json.loads((MANIFESTS / name).read_text())["params"]
    with torch.device("meta"):
        unet = UNet3DConditionModel()
    ad = DreamVideoAdapters(unet, identity=identity, motion=motion, condition_dim=1024)
    km = KeyMap.for_model(unet)
    mapped = {}
    for k, t in unet.state_dict().items():
        shape = list(t.shape) + ([1] if is_temporal_proj(k) and t.ndim == 2 else [])
        mapped[km.to_vgen[k]] = shape
    assert mapped == {k: list(v) for k, v in manifest.items()}
    # and a released-style adapter dict loads into exactly these modules
    n = sum(t.numel() for kind in (IDENTITY, MOTION) for t in ad.parameters(kind))
    assert n == {True: {True: 90_375_616, False: 12_409_120}, False: {True: 77_966_496}}[identity][motion]
