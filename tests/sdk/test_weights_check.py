"""Weights at the door: files and folders checked against what each generator reads (sdk.weights_check), on the
plugins' own tiny twins, on crafted wrong files, and on state dicts shaped like VGen's released UNets."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdk import weights as W
from sdk.errors import IncompatibleCheckpoint, WeightsMissing
from sdk.plugins import load_plugins
from sdk.weights_check import check_weights, weights_layouts
from tests.reference import manifest as _manifest

REPO = Path(__file__).resolve().parents[2]
REG = load_plugins()
TWINS = [(wid, fmt) for wid, spec in sorted(REG.weights.items()) for fmt in spec.formats]


def layouts(spec_id: str):
    return weights_layouts(REG, REG.spec(spec_id))


def readers(weights_id: str) -> list[str]:
    """The generators and trainers that read ``weights_id``."""
    spec = REG.weights[weights_id]
    return sorted(s.id for s in [*REG.generators.values(), *REG.trainers.values()]
                  if s.default_weights == weights_id or s.method == spec.method)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("twins")
    return {(wid, fmt): W.make_tiny(REG.weights[wid], root / f"{wid}-{fmt}", fmt) for wid, fmt in TWINS}


def copy_of(twins: dict, key: tuple[str, str], dest: Path) -> Path:
    shutil.copytree(twins[key], dest)
    return dest


@pytest.mark.parametrize(("weights_id", "fmt"), TWINS)
def test_every_tiny_twin_passes_for_every_generator_that_reads_it(twins, weights_id: str, fmt: str) -> None:
    for spec_id in readers(weights_id):
        assert check_weights(twins[weights_id, fmt], layouts(spec_id), what=spec_id) in ("vgen", "diffusers",
                                                                                          "checkpoint")


def test_weights_of_another_model_are_refused_naming_the_first_mismatch(twins) -> None:
    with pytest.raises(IncompatibleCheckpoint) as err:
        check_weights(twins["modelscope_t2v.v1_5", "vgen"], layouts("i2vgen_xl.i2v"), what="i2vgen_xl.i2v")
    assert "model_scope_v1-5_tiny.pth does not fit i2vgen_xl.i2v" in err.value.user_message
    assert "takes 4 input channels; i2vgen_xl.i2v takes 8" in err.value.user_message
    with pytest.raises(IncompatibleCheckpoint, match="takes 12 input channels; dreamvideo.compose takes 4"):
        check_weights(twins["tf_t2v.tft2v_t2v_16f", "vgen"], layouts("dreamvideo.compose"), what="dreamvideo.compose")
    with pytest.raises(IncompatibleCheckpoint, match="reads VGen-format weights only"):
        check_weights(twins["modelscope_t2v.ms_1_7b", "diffusers"], layouts("tf_t2v.t2v"), what="tf_t2v.t2v")
    with pytest.raises(IncompatibleCheckpoint, match="I2VGenXLPipeline"):
        check_weights(twins["i2vgen_xl.i2vgen_xl", "diffusers"], layouts("modelscope_t2v.t2v"), what="t2v")


def test_a_pth_of_wrong_shapes_or_of_another_network_is_refused(twins, tmp_path: Path) -> None:
    folder = copy_of(twins, ("modelscope_t2v.v1_5", "vgen"), tmp_path / "w")
    unet = folder / "model_scope_v1-5_tiny.pth"
    sd = torch.load(unet, weights_only=True)
    sd["state_dict"]["out.2.weight"] = torch.zeros(4, 16, 3, 3)  # the rest of the UNet is 32 wide
    torch.save(sd, unet)
    with pytest.raises(IncompatibleCheckpoint) as err:
        check_weights(folder, layouts("modelscope_t2v.t2v"), what="modelscope_t2v.t2v")
    assert "key 'out.2.weight' has shape [4, 16, 3, 3]" in err.value.user_message
    assert "[4, 32, 3, 3]" in err.value.user_message

    torch.save({"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}, unet)  # e.g. a classifier
    with pytest.raises(IncompatibleCheckpoint, match="key 'input_blocks.0.0.weight' is missing"):
        check_weights(folder, layouts("modelscope_t2v.t2v"), what="modelscope_t2v.t2v")


def test_a_folder_missing_parts_is_refused_naming_them(twins, tmp_path: Path) -> None:
    vgen = copy_of(twins, ("dreamvideo.modelscope_v1_5", "vgen"), tmp_path / "vgen")
    (vgen / "v2-1_512-ema-pruned.ckpt").unlink()
    with pytest.raises(WeightsMissing, match="lacks v2-1_512-ema-pruned.ckpt"):
        check_weights(vgen, layouts("dreamvideo.compose"), what="dreamvideo.compose")
    diffusers = copy_of(twins, ("modelscope_t2v.ms_1_7b", "diffusers"), tmp_path / "diffusers")
    shutil.rmtree(diffusers / "vae")
    with pytest.raises(WeightsMissing, match="lacks vae/"):
        check_weights(diffusers, layouts("modelscope_t2v.t2v"), what="modelscope_t2v.t2v")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsMissing, match="neither a diffusers pipeline"):
        check_weights(empty, layouts("tf_t2v.t2v"), what="tf_t2v.t2v")


def test_encoders_of_another_model_are_refused(twins, tmp_path: Path) -> None:
    folder = copy_of(twins, ("tf_t2v.tft2v_t2v_16f", "vgen"), tmp_path / "w")
    clip = torch.load(folder / "open_clip_pytorch_model.bin", weights_only=True)
    clip["ln_final.weight"] = torch.ones(32)
    torch.save(clip, folder / "open_clip_pytorch_model.bin")
    with pytest.raises(IncompatibleCheckpoint, match="text encoder is 32 wide but the UNet's cross-attention takes "
                                                     "64-wide"):
        check_weights(folder, layouts("tf_t2v.t2v"), what="tf_t2v.t2v")
    torch.save({k: v for k, v in clip.items() if not k.startswith("visual.")} | {"ln_final.weight": torch.ones(64)},
               folder / "open_clip_pytorch_model.bin")
    check_weights(folder, layouts("tf_t2v.t2v"), what="tf_t2v.t2v")  # TF-T2V's style image is optional
    dv = copy_of(twins, ("dreamvideo.modelscope_v1_5", "vgen"), tmp_path / "dv")
    shutil.copy(folder / "open_clip_pytorch_model.bin", dv / "open_clip_pytorch_model.bin")
    with pytest.raises(IncompatibleCheckpoint, match="lacks the image tower"):
        check_weights(dv, layouts("dreamvideo.compose"), what="dreamvideo.compose")


def test_a_pickle_that_runs_code_anywhere_in_the_folder_is_refused_unrun(twins, tmp_path: Path,
                                                                         code_checkpoint) -> None:
    folder = copy_of(twins, ("modelscope_t2v.ms_1_7b", "diffusers"), tmp_path / "w")
    marker = tmp_path / "pwned"
    code_checkpoint(folder / "text_encoder" / "pytorch_model.bin", marker)
    with pytest.raises(IncompatibleCheckpoint, match="would run code"):
        check_weights(folder, layouts("modelscope_t2v.t2v"), what="modelscope_t2v.t2v")
    with pytest.raises(IncompatibleCheckpoint, match="would run code"):
        check_weights(folder, [], what="user.x")  # even with nothing else to check against
    assert not marker.exists()


# -- shaped like the released weights (VGen's manifests; the values are one shared zero) --------------------------


def released_folder(folder: Path, params: dict, unet_file: str) -> Path:
    """A VGen folder whose files have the released shapes: every tensor a stride-0 view of one zero (a few KB)."""
    zero = torch.zeros(1)
    folder.mkdir()
    torch.save({"state_dict": {k: zero.expand(s) for k, s in params.items()}, "step": 1}, folder / unet_file)
    torch.save({k: zero.expand(s) for k, s in {"token_embedding.weight": (49408, 1024), "positional_embedding": (77, 1024),
                                               "ln_final.weight": (1024,), "visual.proj": (1280, 1024)}.items()},
               folder / "open_clip_pytorch_model.bin")
    torch.save({"state_dict": {f"first_stage_model.{k}": zero.expand(s) for k, s in {
        "encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_out.weight": (3, 128, 3, 3),
        "post_quant_conv.weight": (4, 4, 1, 1)}.items()}}, folder / "v2-1_512-ema-pruned.ckpt")
    return folder


@pytest.mark.parametrize(("manifest", "spec_id", "unet_file"), [
    ("t2v_modelscope_unet.json", "modelscope_t2v.t2v", "model_scope_v1-5_0632000.pth"),
    ("t2v_modelscope_unet.json", "dreamvideo.compose", "model_scope_v1-5_0632000.pth"),
    ("i2vgen_xl_unet.json", "i2vgen_xl.i2v", "i2vgen_xl_00854500.pth"),
    ("tft2v_t2v_unet.json", "tf_t2v.t2v", "tft2v_t2v_non_ema_512000.pth"),
    ("videolcm_t2v_unet.json", "videolcm.t2v", "videolcm_t2v_non_ema_544000.pth"),
])
def test_released_unet_shapes_pass_and_a_missing_tensor_is_named(tmp_path: Path, manifest: str, spec_id: str,
                                                                  unet_file: str) -> None:
    params = _manifest(manifest)["params"]
    folder = released_folder(tmp_path / "ok", params, unet_file)
    assert check_weights(folder, layouts(spec_id), what=spec_id) == "vgen"
    dropped = next(k for k in params if k.startswith("output_blocks.") and k.endswith(".bias"))
    bad = released_folder(tmp_path / "bad", {k: s for k, s in params.items() if k != dropped}, unet_file)
    with pytest.raises(IncompatibleCheckpoint, match="809 tensors under output_blocks.*; the released UNet holds 810"):
        check_weights(bad, layouts(spec_id), what=spec_id)


def test_released_weights_of_one_method_are_refused_by_another(tmp_path: Path) -> None:
    folder = released_folder(tmp_path / "i2v", _manifest("i2vgen_xl_unet.json")["params"], "i2vgen_xl_00854500.pth")
    with pytest.raises(IncompatibleCheckpoint, match="takes 8 input channels; modelscope_t2v.t2v takes 4"):
        check_weights(folder, layouts("modelscope_t2v.t2v"), what="modelscope_t2v.t2v")


def test_checking_a_folder_does_not_import_torch(twins) -> None:
    path = twins["i2vgen_xl.i2vgen_xl", "diffusers"]
    code = ("import sys; from sdk.plugins import load_plugins; "
            "from sdk.weights_check import check_weights, weights_layouts; reg = load_plugins(); "
            f"print(check_weights({str(path)!r}, weights_layouts(reg, reg.spec('i2vgen_xl.i2v')), what='i2v')); "
            "assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert out.returncode == 0 and "diffusers" in out.stdout, out.stderr
