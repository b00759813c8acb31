"""VideoComposer: registration, both released manifests map exactly, released shapes pass the door check."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import plugins.videocomposer as plugin
from sdk.errors import IncompatibleCheckpoint
from sdk.plugins import PluginRegistry
from sdk.weights_check import check_weights, weights_layouts
from tests.reference import manifest

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = ("videocomposer_unet.json", "videolcm_vcomposer_unet.json")
RELEASED = ["depth", "local_image", "motion", "sketch", "single_sketch", "masked"]


def test_registers_its_weights_without_error() -> None:
    reg = PluginRegistry([("videocomposer", plugin)])
    assert reg.plugins["videocomposer"].error is None
    assert set(reg.weights) == {"videocomposer.tft2v_vcomposer", "videocomposer.tft2v_vcomposer_896x512",
                                "videocomposer.videolcm_vcomposer"}
    for w in reg.weights.values():
        assert w.repo_id == "iic/tf-t2v" and "non-commercial" in w.licence and w.tiny and w.layout is not None
        assert {"open_clip_pytorch_model.bin", "v2-1_512-ema-pruned.ckpt"} <= {f.path for f in w.files}


def test_hook_module_does_not_import_torch() -> None:
    code = ("import sys, plugins.videocomposer;"
            "bad=[m for m in ('torch','diffusers','transformers','open_clip') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.mark.parametrize("name", MANIFESTS)
def test_released_manifest_maps_every_key_and_shape(name: str) -> None:
    """Every key of VGen's UNetSD_TFT2V / UNetSD_VideoLCM (vcomposer configs) lands on a parameter of the same shape,
    nothing missing or unexpected, and writing the model back gives exactly the manifest (meta device: no memory)."""
    import torch

    from plugins.videocomposer.unet import CompositionUNet, infer_composition_config, keymap, vgen_state_dict, \
        vgen_to_diffusers
    from sdk.ml.checkpoints import check_compatible

    m = manifest(name)
    shapes = m["params"]
    assert len(shapes) == m["num_tensors"] == 1574
    cfg = infer_composition_config(shapes)
    assert cfg["conditions"] == RELEASED and cfg["condition_hidden"] == 32
    assert cfg["in_channels"] == 12 and cfg["concat_dim"] == 8 and cfg["num_image_tokens"] == 4
    with torch.device("meta"):
        model = CompositionUNet(**cfg)
    mapped = vgen_to_diffusers({k: torch.empty(v, device="meta") for k, v in shapes.items()}, keymap(model))
    assert len(mapped) == len(model.state_dict())
    check_compatible(model.state_dict(), mapped, source=name)
    assert sum(p.numel() for p in model.parameters()) == m["total_params"] == 1_416_584_436
    assert {k: list(v.shape) for k, v in vgen_state_dict(model).items()} == shapes


def test_a_branch_with_foreign_channels_is_refused() -> None:
    from plugins.videocomposer.unet import infer_composition_config

    shapes = dict(manifest(MANIFESTS[0])["params"])
    shapes["depth_embedding.0.weight"] = [32, 3, 3, 3]
    with pytest.raises(IncompatibleCheckpoint, match=r"depth_embedding\.0\.weight.*3 input channels.*has 1"):
        infer_composition_config(shapes)


def released_folder(folder: Path, params: dict, unet_file: str) -> Path:
    """A VGen folder with the released UNet's shapes: every tensor a stride-0 view of one zero (a few KB)."""
    import torch

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


@pytest.mark.parametrize(("name", "weights_id", "unet_file"), [
    ("videocomposer_unet.json", "videocomposer.tft2v_vcomposer", "tft2v_vcomposer_non_ema_254000.pth"),
    ("videolcm_vcomposer_unet.json", "videocomposer.videolcm_vcomposer", "videolcm_vcomposer_non_ema_914000.pth"),
])
def test_released_shapes_pass_the_door_check_and_a_missing_branch_tensor_is_named(
        tmp_path: Path, name: str, weights_id: str, unet_file: str) -> None:
    reg = PluginRegistry([("videocomposer", plugin)])
    layouts = weights_layouts(reg, reg.weights[weights_id])
    params = manifest(name)["params"]
    assert check_weights(released_folder(tmp_path / "ok", params, unet_file), layouts, what=weights_id) == "vgen"
    dropped = {k: s for k, s in params.items() if k != "sketch_embedding_after.layers.0.0.norm.bias"}
    with pytest.raises(IncompatibleCheckpoint, match="8 tensors under sketch_embedding_after.*; the released UNet holds 9"):
        check_weights(released_folder(tmp_path / "bad", dropped, unet_file), layouts, what=weights_id)
    plain = manifest("tft2v_t2v_unet.json")["params"]  # TF-T2V's t2v UNet has no condition branches
    with pytest.raises(IncompatibleCheckpoint, match="no depth_embedding"):
        check_weights(released_folder(tmp_path / "t2v", plain, unet_file), layouts, what=weights_id)
