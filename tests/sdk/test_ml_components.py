"""One model cache per component (sdk.ml.components): methods reading the same VAE and OpenCLIP files share one
loaded instance, through their real generators on tiny twins whose encoder files are hard links to one another's
(as `vgen models fetch` stores the same weights registered under two ids)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sdk.context import JobContext, JobRequest, ModelCache
from sdk.ml.weights_layout import OPEN_CLIP_FILE, VAE_FILE
from sdk.params import validate_params

SMALL = {"prompt": "a fox", "num_frames": 2, "height": 32, "width": 32, "num_inference_steps": 2}
CPU, F32 = torch.device("cpu"), torch.float32


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ModelScope T2V v1.5, TF-T2V and VideoLCM tiny VGen folders; the last two hold hard links to the first's
    encoder files (same seed, so the same tensors as their own would be)."""
    from plugins.modelscope_t2v.tiny import make_tiny_weights as ms_tiny
    from plugins.tf_t2v.tiny import make_tiny_weights as tf_tiny
    from plugins.videolcm.tiny import make_tiny_weights as lcm_tiny

    root = tmp_path_factory.mktemp("shared")
    out = {"ms": ms_tiny(root / "ms", "vgen"), "tf": tf_tiny(root / "tf"), "lcm": lcm_tiny(root / "lcm")}
    for name in ("tf", "lcm"):
        for f in (OPEN_CLIP_FILE, VAE_FILE):
            (out[name] / f).unlink()
            os.link(out["ms"] / f, out[name] / f)
    return out


def _render(spec_id: str, weights: Path, cache: ModelCache, tmp_path: Path) -> np.ndarray:
    from sdk.plugins import load_plugins
    from sdk.specs import load_entry

    spec = load_plugins().spec(spec_id)
    params = validate_params(spec.params, SMALL, spec_id=spec_id)
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=cache)
    try:
        return load_entry(spec.entry)().generate(ctx, JobRequest("j", "generate", spec_id, params, 3,
                                                                weights=weights)).frames
    finally:
        ctx.finish()


def _ctx(cache: ModelCache, tmp_path: Path) -> JobContext:
    return JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=cache)


def test_methods_on_the_same_files_load_the_vae_and_text_encoder_once(folders: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    cache = ModelCache()
    _render("modelscope_t2v.t2v", folders["ms"], cache, tmp_path)
    assert cache.misses_by_role == {"denoiser": 1, "vae": 1, "encoder": 1}
    _render("tf_t2v.t2v", folders["tf"], cache, tmp_path)
    _render("videolcm.t2v", folders["lcm"], cache, tmp_path)
    # each method's own UNet loaded; the VAE and the text encoder were read once for the three of them
    assert cache.misses_by_role == {"denoiser": 3, "vae": 1, "encoder": 1}
    assert cache.hits == 4


def test_the_shared_components_are_one_instance(folders: dict[str, Path], tmp_path: Path) -> None:
    from plugins.dreamvideo.pipeline import find_base, load_base
    from plugins.modelscope_t2v.pipeline import detect_weights as ms_weights
    from plugins.modelscope_t2v.pipeline import load_components as ms_load
    from plugins.tf_t2v.pipeline import detect_weights as tf_weights
    from plugins.tf_t2v.pipeline import load_components as tf_load

    cache = ModelCache()
    ctx = _ctx(cache, tmp_path)
    ms: dict[str, Any] = ms_load(ctx, ms_weights(folders["ms"]), CPU, F32)
    tf: dict[str, Any] = tf_load(ctx, tf_weights(folders["tf"]), CPU, F32)
    assert tf["vae"] is ms["vae"] and tf["text_encoder"] is ms["text_encoder"]
    assert tf["unet"] is not ms["unet"]
    # DreamVideo's base on the ModelScope v1.5 files is ModelScope T2V's UNet, VAE and text encoder: nothing loads
    loads = cache.misses
    base = load_base(ctx, find_base(folders["ms"]), CPU, F32)
    assert all(base[k] is ms[k] for k in ("unet", "vae", "text_encoder")) and cache.misses == loads
    # another dtype is another instance
    bf16 = ms_load(ctx, ms_weights(folders["ms"]), CPU, torch.bfloat16)
    assert bf16["vae"] is not ms["vae"] and next(bf16["vae"].parameters()).dtype == torch.bfloat16


def test_a_replaced_file_is_loaded_again(folders: dict[str, Path], tmp_path: Path) -> None:
    from sdk.ml import components

    cache = ModelCache()
    vae_file = folders["ms"] / VAE_FILE
    first = components.vae(_ctx(cache, tmp_path), vae_file, F32, CPU)
    assert components.vae(_ctx(cache, tmp_path), vae_file, F32, CPU) is first
    st = vae_file.stat()
    os.utime(vae_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # what copying new weights over does
    try:
        assert components.vae(_ctx(cache, tmp_path), vae_file, F32, CPU) is not first
        assert cache.misses_by_role == {"vae": 2}
    finally:
        os.utime(vae_file, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_trainer_gets_the_shared_components_as_loaded_after_a_light_job(folders: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    from plugins.dreamvideo.pipeline import find_base, load_base
    from plugins.modelscope_t2v.pipeline import detect_weights, load_components

    cache = ModelCache()
    light = JobContext("g", lambda e: None, staging_dir=tmp_path / "g", models=cache, memory_mode="low")
    vae = load_components(light, detect_weights(folders["ms"]), CPU, F32)["vae"]
    light.finish()
    assert vae._vgen_decode_chunk_cap == 2 and vae.use_tiling, "the generate job ran in low mode"
    train = JobContext("t", lambda e: None, staging_dir=tmp_path / "t", models=cache, kind="train")
    base = load_base(train, find_base(folders["ms"]), CPU, F32)
    assert base["vae"] is vae and vae._vgen_decode_chunk_cap is None and not vae.use_tiling
