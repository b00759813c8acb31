"""`vgen models fetch`: the same weights registered under two ids are downloaded and stored once (sdk.weights_fetch).

The hub is a local mirror folder (``VGEN_MODELS_MIRROR``, the product's offline source) holding the real plugins'
file names with tiny-twin contents; a second id's fetch must work with those files gone from the mirror.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdk import weights as W
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import WeightsMissing
from sdk.params import validate_params
from sdk.plugins import load_plugins

REPO = Path(__file__).resolve().parents[2]
ENCODERS = ("open_clip_pytorch_model.bin", "v2-1_512-ema-pruned.ckpt")


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv("VGEN_MODELS_DIR", str(root))
    return root


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "mirror"
    monkeypatch.setenv("VGEN_MODELS_MIRROR", str(root))
    return root


def _mirror_repo(mirror: Path, repo: str, files: dict[str, Path]) -> Path:
    """``<mirror>/modelscope/<repo>/`` holding ``files`` (name in the repo → tiny-twin file)."""
    base = mirror / "modelscope" / repo
    base.mkdir(parents=True)
    for name, src in files.items():
        shutil.copyfile(src, base / name)
    return base


def _render(spec_id: str, weights: Path, cache: ModelCache, tmp_path: Path) -> None:
    from sdk.specs import load_entry

    spec = load_plugins().spec(spec_id)
    params = validate_params(spec.params, {"prompt": "a fox", "num_frames": 2, "height": 32, "width": 32,
                                           "num_inference_steps": 2}, spec_id=spec_id)
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=cache)
    try:
        load_entry(spec.entry)().generate(ctx, JobRequest("j", "generate", spec_id, params, 1, weights=weights))
    finally:
        ctx.finish()


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "sdk.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_modelscope_v1_5_fetched_for_a_second_id_is_linked_not_downloaded(models: Path, mirror: Path,
                                                                           tmp_path: Path) -> None:
    from plugins.dreamvideo.tiny import UNET_FILE, make_tiny_weights

    twin = make_tiny_weights(tmp_path / "twin")
    spec = load_plugins().weights_spec("modelscope_t2v.v1_5")
    unet_name = next(f.path for f in spec.files if f.path.endswith(".pth"))
    _mirror_repo(mirror, "iic/dreamvideo-t2v", {unet_name: twin / UNET_FILE, **{n: twin / n for n in ENCODERS}})

    first = _cli("models", "fetch", "modelscope_t2v.v1_5")
    assert first.returncode == 0, first.stderr
    shutil.rmtree(mirror)  # the "hub" is gone: the second id must not need it
    second = _cli("models", "fetch", "dreamvideo.modelscope_v1_5")
    assert second.returncode == 0, second.stderr

    a, b = Path(W.installed("modelscope_t2v.v1_5")["path"]), Path(W.installed("dreamvideo.modelscope_v1_5")["path"])
    assert a != b and a.parent == b.parent == models
    names = {f.path for f in spec.files}
    assert {p.name for p in b.iterdir()} == names
    for name in names:  # one copy on disk: the second id's files are the first's
        assert os.path.samefile(a / name, b / name) and (b / name).stat().st_nlink == 2
    assert W.installed("dreamvideo.modelscope_v1_5")["sha256"] == W.installed("modelscope_t2v.v1_5")["sha256"]

    # one file, one model: a DreamVideo job after a ModelScope T2V job, each on its own id, loads nothing
    cache = ModelCache()
    _render("modelscope_t2v.t2v", a, cache, tmp_path)
    loads = cache.misses
    _render("dreamvideo.compose", b, cache, tmp_path)
    assert cache.misses == loads == 3

    # removing the first id with its files leaves the second whole
    assert W.remove("modelscope_t2v.v1_5", delete_files=True) and not a.exists()
    assert W.sha256_tree(b) == W.installed("dreamvideo.modelscope_v1_5")["sha256"]


def test_videolcm_after_tf_t2v_downloads_only_its_unet(models: Path, mirror: Path, tmp_path: Path) -> None:
    from plugins.tf_t2v.tiny import UNET_FILE as TF_FILE
    from plugins.tf_t2v.tiny import make_tiny_weights as tf_tiny
    from plugins.videolcm.tiny import UNET_FILE as LCM_FILE
    from plugins.videolcm.tiny import make_tiny_weights as lcm_tiny

    reg = load_plugins()
    tf_spec, lcm_spec = reg.weights_spec("tf_t2v.tft2v_t2v_16f"), reg.weights_spec("videolcm.videolcm_t2v")
    tf_unet = next(f.path for f in tf_spec.files if f.path.endswith(".pth"))
    lcm_unet = next(f.path for f in lcm_spec.files if f.path.endswith(".pth"))
    tf, lcm = tf_tiny(tmp_path / "tf"), lcm_tiny(tmp_path / "lcm")
    base = _mirror_repo(mirror, "iic/tf-t2v", {tf_unet: tf / TF_FILE, lcm_unet: lcm / LCM_FILE,
                                                **{n: tf / n for n in ENCODERS}})
    first = W.fetch(tf_spec)
    for name in ENCODERS:
        (base / name).unlink()  # only VideoLCM's own UNet is left to download

    second = W.fetch(lcm_spec)
    a, b = Path(first["path"]), Path(second["path"])
    assert {p.name for p in b.iterdir()} == {lcm_unet, *ENCODERS}
    assert all(os.path.samefile(a / n, b / n) for n in ENCODERS)
    assert second["origin"] == {"source": "modelscope", "repo_id": "iic/tf-t2v", "revision": None, "all_files": False}
    assert second["sha256"][lcm_unet] == W.sha256_tree(lcm / LCM_FILE)[LCM_FILE]


def test_a_file_neither_fetched_nor_in_the_mirror_fails_naming_it(models: Path, mirror: Path, tmp_path: Path) -> None:
    from plugins.tf_t2v.tiny import make_tiny_weights as tf_tiny

    tf = tf_tiny(tmp_path / "tf")
    _mirror_repo(mirror, "iic/tf-t2v", {n: tf / n for n in ENCODERS})
    spec = load_plugins().weights_spec("tf_t2v.tft2v_t2v_16f")
    with pytest.raises(WeightsMissing, match="lacks tft2v_t2v_non_ema_512000.pth") as err:
        W.fetch(spec)
    assert "VGEN_MODELS_MIRROR" in err.value.hint
    assert W.installed(spec.id) is None
