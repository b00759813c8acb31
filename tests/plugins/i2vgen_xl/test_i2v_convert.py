"""VGen I2VGen-XL ↔ diffusers I2VGenXLUNet: the real manifest maps fully; the tiny files hold VGen's halved branch."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from plugins.i2vgen_xl.convert import CONCAT, QKV, diffusers_to_vgen, infer_i2vgen_config, keymap, load_vgen_i2v_unet
from sdk.errors import IncompatibleCheckpoint
from sdk.ml.checkpoints import check_compatible, load_state_dict

REPO = Path(__file__).resolve().parents[3]


def _manifest(name: str) -> Path:
    roots = [Path(os.environ["VGEN_SHARED"]) if os.environ.get("VGEN_SHARED") else None, REPO.parent / "shared"]
    for root in filter(None, roots):
        path = root / "reference" / "vgen_unet_manifests" / name
        if path.exists():
            return path
    pytest.skip(f"manifest {name} not found (set VGEN_SHARED to the shared folder holding reference/vgen_unet_manifests)")


def test_real_i2vgen_manifest_maps_fully_into_default_unet() -> None:
    from diffusers import I2VGenXLUNet

    shapes = json.loads(_manifest("i2vgen_xl_unet.json").read_text())["params"]
    assert len(shapes) == 1509
    cfg = infer_i2vgen_config(shapes)
    with torch.device("meta"):
        model = I2VGenXLUNet()
        inferred = I2VGenXLUNet(**cfg)
    assert cfg["in_channels"] == 4 and cfg["block_out_channels"] == (320, 640, 1280, 1280)
    assert {k: tuple(v.shape) for k, v in inferred.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in model.state_dict().items()}
    km = keymap(model)
    from plugins.i2vgen_xl.convert import vgen_to_diffusers

    mapped = vgen_to_diffusers({k: torch.empty(v, device="meta") for k, v in shapes.items()}, km)
    expected = model.state_dict()
    assert len(mapped) == len(expected) == 1511
    check_compatible(expected, mapped, source="manifest")  # nothing missing, nothing unexpected, shapes equal
    back = diffusers_to_vgen({k: torch.empty(tuple(v.shape), device="meta") for k, v in expected.items()}, km)
    assert {k: list(v.shape) for k, v in back.items()} == shapes


def test_vgen_file_holds_half_the_branch_and_loads_back_exactly(i2v_twins: dict[str, Path]) -> None:
    from diffusers import I2VGenXLUNet

    from sdk.ml.checkpoints import find_weights_file

    vgen_sd = load_state_dict(i2v_twins["vgen"] / "i2vgen_xl_tiny.pth")
    diff_sd = load_state_dict(find_weights_file(i2v_twins["diffusers"] / "unet", ("diffusion_pytorch_model",)), strip=())
    w_vgen, w_diff = vgen_sd["input_blocks.0.0.weight"], diff_sd["conv_in.weight"]
    assert torch.equal(w_vgen[:, CONCAT] * 2, w_diff[:, CONCAT]), "VGen adds the branch twice: its file holds half"
    assert torch.equal(w_vgen[:, :4], w_diff[:, :4])
    assert QKV in vgen_sd and vgen_sd[QKV].shape == (24, 4), "the frame transformer's q, k, v are fused, as in VGen"
    unet = load_vgen_i2v_unet(vgen_sd)
    assert isinstance(unet, I2VGenXLUNet) and not unet.training
    loaded = unet.state_dict()
    assert set(loaded) == set(diff_sd)
    assert all(torch.equal(loaded[k], diff_sd[k]) for k in diff_sd)


def test_incompatible_checkpoint_names_the_first_bad_key(i2v_twins: dict[str, Path]) -> None:
    sd = load_state_dict(i2v_twins["vgen"] / "i2vgen_xl_tiny.pth")
    missing = dict(sd)
    missing.pop("local_image_embedding.3.bias")
    with pytest.raises(IncompatibleCheckpoint, match=r"image_latents_context_embedding\.3\.bias.*missing"):
        load_vgen_i2v_unet(missing)
    extra = dict(sd, **{"local_image_concat.9.weight": torch.zeros(1)})
    with pytest.raises(IncompatibleCheckpoint, match=r"unexpected key 'local_image_concat\.9\.weight'"):
        load_vgen_i2v_unet(extra)
    with pytest.raises(IncompatibleCheckpoint, match="not a VGen"):
        load_vgen_i2v_unet({"foo.weight": torch.zeros(1)})
