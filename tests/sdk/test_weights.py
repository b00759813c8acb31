"""sdk.weights: the global models directory and registry (real files, real hub client offline)."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
import torch

from sdk import weights as W
from sdk.errors import IncompatibleCheckpoint, InvalidRequest, VGenError, WeightsMissing
from sdk.specs import WeightsFile, WeightsSpec


def write_tiny(dir: Path, format: str = "diffusers", seed: int = 0) -> Path:
    """A tiny-twin builder as a plugin would ship one (two small files in the given format)."""
    dir = Path(dir)
    if format == "diffusers":
        (dir / "unet").mkdir(parents=True, exist_ok=True)
        (dir / "model_index.json").write_text(json.dumps({"_class_name": "TinyPipeline", "seed": seed}))
        (dir / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(bytes(range(64)))
    else:
        (dir / "model.pth").write_bytes(b"tiny-vgen-checkpoint")
    return dir


TINY_SPEC = WeightsSpec(
    id="tinyplug.base", title="Tiny", method="t2v", formats=("diffusers", "vgen"),
    source="none", tiny=f"{__name__}:write_tiny", licence="research only",
)


@pytest.fixture(autouse=True)
def models(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv("VGEN_MODELS_DIR", str(root))
    return root


def make_diffusers_folder(path: Path) -> Path:
    (path / "vae").mkdir(parents=True)
    (path / "model_index.json").write_text('{"_class_name": "TextToVideoSDPipeline"}')
    (path / "vae" / "config.json").write_text('{"latent_channels": 4}')
    (path / ".cache").mkdir()
    (path / ".cache" / "junk").write_text("ignored")
    return path


def test_models_dir_follows_env(models, monkeypatch):
    assert W.models_dir() == models
    monkeypatch.delenv("VGEN_MODELS_DIR")
    assert W.models_dir().name == "models" and "vgen-studio" in str(W.models_dir())


def test_import_lists_with_sha256_and_survives_reread(tmp_path, models):
    src = make_diffusers_folder(tmp_path / "ms")
    entry = W.import_weights("user.ms", src)
    assert entry["format"] == "diffusers" and entry["source"] == "imported"
    assert entry["path"] == str(src.absolute())
    expected = hashlib.sha256((src / "vae" / "config.json").read_bytes()).hexdigest()
    assert entry["sha256"] == {"model_index.json": entry["sha256"]["model_index.json"], "vae/config.json": expected}
    assert [e["id"] for e in W.list_installed()] == ["user.ms"]
    # the registry is plain JSON on disk; a fresh read sees the same entry
    data = json.loads((models / "registry.json").read_text(encoding="utf-8"))
    assert data["weights"] == [entry]
    assert W.installed("user.ms") == entry
    assert W.installed("nope.nope") is None
    assert not list(models.glob(".registry-*"))  # no temporary files left behind
    # a second import keeps the first
    ckpt = tmp_path / "v.pth"
    torch.save({"w": torch.zeros(2)}, ckpt)
    assert W.import_weights("user.i2v", ckpt)["format"] == "vgen"
    assert [e["id"] for e in W.list_installed()] == ["user.i2v", "user.ms"]


def test_import_copy_and_validation(tmp_path, models):
    src = make_diffusers_folder(tmp_path / "ms")
    entry = W.import_weights("user.copy", src, copy=True)
    assert Path(entry["path"]) == models / "user.copy"
    assert (models / "user.copy" / "vae" / "config.json").is_file()
    assert W.import_weights("user.copy", src, copy=True)["sha256"] == entry["sha256"]  # re-import replaces
    with pytest.raises(InvalidRequest, match="does not exist"):
        W.import_weights("user.y", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRequest, match="empty"):
        W.import_weights("user.y", tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    with pytest.raises(InvalidRequest, match="does not look like"):
        W.import_weights("user.y", tmp_path / "notes")
    with pytest.raises(InvalidRequest) as err:
        W.import_weights("../evil", src)
    assert err.value.field == "weights_id"


def test_resolve_by_id_path_and_default(tmp_path):
    src = make_diffusers_folder(tmp_path / "ms")
    W.import_weights("user.ms", src)
    assert W.resolve("user.ms", None) == (src.absolute(), "user.ms")
    assert W.resolve(None, "user.ms") == (src.absolute(), "user.ms")
    assert W.resolve(str(src), "other.id") == (src.absolute(), None)
    with pytest.raises(WeightsMissing, match="path does not exist"):
        W.resolve(str(tmp_path / "gone"), None)
    with pytest.raises(WeightsMissing):
        W.resolve(None, None)


def test_resolve_missing_id_names_id_and_fixes():
    with pytest.raises(WeightsMissing) as err:
        W.resolve(None, "dreamvideo.base")
    text = str(err.value)
    assert "dreamvideo.base" in err.value.user_message
    for fix in ("vgen models fetch dreamvideo.base", "vgen models import dreamvideo.base PATH",
                "vgen models make-tiny dreamvideo.base DIR", "licence"):
        assert fix in text


def test_hash_weights_uses_registry_cache_and_fingerprints(tmp_path):
    src = make_diffusers_folder(tmp_path / "ms")
    entry = W.import_weights("user.m", src)
    (src / "vae" / "config.json").write_text("changed after import")
    assert W.hash_weights(src) == entry["sha256"]  # cached in the registry entry
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "small.bin").write_bytes(b"abc")
    with open(plain / "large.bin", "wb") as f:  # sparse: > 64 MB on paper, nothing on disk
        f.truncate(W.FINGERPRINT_LIMIT + 10)
    got = W.hash_weights(plain)
    assert got["small.bin"] == hashlib.sha256(b"abc").hexdigest()
    assert got["large.bin"].startswith(f"size:{W.FINGERPRINT_LIMIT + 10},mtime_ns:")
    assert W.hash_weights(plain) == got  # stable


def test_make_tiny_and_register(tmp_path):
    path = W.make_tiny(TINY_SPEC, tmp_path / "tiny", "diffusers")
    assert (path / "model_index.json").is_file()
    assert W.installed("tinyplug.base") is None
    path = W.make_tiny(TINY_SPEC, tmp_path / "tiny_vgen", "vgen", register=True)
    entry = W.installed("tinyplug.base")
    assert entry["source"] == "tiny" and entry["format"] == "vgen" and list(entry["sha256"]) == ["model.pth"]
    assert W.resolve(None, "tinyplug.base") == (path, "tinyplug.base")


def test_make_tiny_unknown_format_lists_formats(tmp_path):
    with pytest.raises(InvalidRequest) as err:
        W.make_tiny(TINY_SPEC, tmp_path / "t", "onnx")
    assert err.value.field == "format"
    assert "diffusers" in err.value.hint and "vgen" in err.value.hint
    no_tiny = WeightsSpec(id="p.real", title="Real", method="t2v")
    with pytest.raises(InvalidRequest, match="no tiny twin"):
        W.make_tiny(no_tiny, tmp_path / "t", "diffusers")


def test_fetch_offline_fails_fast(tmp_path, models):
    spec = WeightsSpec(id="nohub.base", title="x", method="t2v", source="huggingface",
                       repo_id="vgen-studio-test/does-not-exist", files=(WeightsFile("model_index.json"),),
                       licence="research/non-commercial")
    start = time.monotonic()
    with pytest.raises(WeightsMissing) as err:
        W.fetch(spec)
    assert time.monotonic() - start < 30
    assert "Could not download nohub.base from huggingface" in err.value.user_message
    assert "vgen models import nohub.base PATH" in err.value.hint
    assert W.installed("nohub.base") is None
    assert not (models / "nohub.base").exists()


def test_fetch_without_source_or_client(tmp_path):
    with pytest.raises(InvalidRequest, match="no download source"):
        W.fetch(TINY_SPEC)
    try:
        import modelscope  # noqa: F401
    except ImportError:
        spec = WeightsSpec(id="ms.base", title="x", method="t2v", source="modelscope", repo_id="iic/x")
        with pytest.raises(VGenError) as err:
            W.fetch(spec, dest=tmp_path / "d")
        assert "pip install vgen-studio[modelscope]" in err.value.hint


def test_corrupt_registry_is_reported(models):
    models.mkdir(parents=True)
    (models / "registry.json").write_text("{not json")
    with pytest.raises(VGenError, match="registry"):
        W.list_installed()


def test_remove_only_deletes_inside_models_dir(tmp_path, models):
    src = make_diffusers_folder(tmp_path / "ms")
    W.import_weights("user.ref", src)
    W.import_weights("user.acopy", src, copy=True)
    assert W.remove("user.ref", delete_files=True) and src.exists()
    assert W.remove("user.acopy", delete_files=True) and not (models / "user.acopy").exists()
    assert not W.remove("user.acopy")
    assert W.list_installed() == []


# -- ids and the door (real plugins, their tiny twins) ----------------------------------------------------------------
def test_import_under_a_known_weights_id_checks_the_files_fit_its_generators(tiny_t2v_weights):
    entry = W.import_weights("modelscope_t2v.ms_1_7b", tiny_t2v_weights)
    assert entry["format"] == "diffusers" and W.installed("modelscope_t2v.ms_1_7b") == entry
    with pytest.raises(IncompatibleCheckpoint) as err:  # a ModelScope diffusers folder is not TF-T2V weights
        W.import_weights("tf_t2v.tft2v_t2v_16f", tiny_t2v_weights)
    assert "reads VGen-format weights only" in err.value.user_message
    assert W.installed("tf_t2v.tft2v_t2v_16f") is None


def test_generator_and_unknown_ids_are_refused_with_the_ids_to_use(tiny_t2v_weights):
    with pytest.raises(InvalidRequest) as err:
        W.import_weights("modelscope_t2v.t2v", tiny_t2v_weights)
    assert "is a generator id, not a weights id" in err.value.user_message and err.value.field == "weights_id"
    assert "modelscope_t2v.ms_1_7b" in err.value.hint and "user.t2v" in err.value.hint
    with pytest.raises(InvalidRequest) as err:
        W.import_weights("my.weights", tiny_t2v_weights)
    assert "Unknown weights id 'my.weights'" in err.value.user_message and "user." in err.value.hint
    with pytest.raises(InvalidRequest):
        W.import_weights("user.", tiny_t2v_weights)
    assert W.list_installed() == []


def test_user_ids_are_checked_against_the_generator_at_queue_time(tiny_t2v_weights, tmp_path):
    from sdk.plugins import load_plugins
    from sdk.project import Project
    from sdk.queueing import queue_jobs

    assert W.import_weights("user.my-t2v", tiny_t2v_weights)["format"] == "diffusers"
    with Project.create(tmp_path / "P.vgen") as project:
        batch = queue_jobs(project, load_plugins(), "modelscope_t2v.t2v", prompts=["a fox"], weights="user.my-t2v")
        assert project.job(batch.job_ids[0]).weights == "user.my-t2v"
        with pytest.raises(IncompatibleCheckpoint, match="tf_t2v.t2v reads VGen-format weights only"):
            queue_jobs(project, load_plugins(), "tf_t2v.t2v", prompts=["a fox"], weights="user.my-t2v")
        assert len(project.jobs()) == 1


def test_files_that_would_run_code_or_are_damaged_are_never_registered(tmp_path, code_checkpoint):
    marker = tmp_path / "pwned"
    evil = code_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(IncompatibleCheckpoint, match="would run code"):
        W.import_weights("user.evil", evil)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(64, 64)}, str(tmp_path / "cut.safetensors"))
    data = (tmp_path / "cut.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(IncompatibleCheckpoint, match="truncated"):
        W.import_weights("user.cut", tmp_path / "cut.safetensors")
    assert not marker.exists() and W.list_installed() == []
