"""VGen ↔ diffusers UNet key mapping: the real manifest maps fully; the tiny twin round-trips."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from sdk.errors import IncompatibleCheckpoint
from sdk.ml.checkpoints import check_compatible
from sdk.ml.convert import KeyMap, diffusers_to_vgen_key, infer_unet3d_config, load_vgen_unet

REPO = Path(__file__).resolve().parents[2]


def _manifest(name: str) -> Path:
    roots = [Path(os.environ["VGEN_SHARED"]) if os.environ.get("VGEN_SHARED") else None, REPO.parent / "shared"]
    for root in filter(None, roots):
        path = root / "reference" / "vgen_unet_manifests" / name
        if path.exists():
            return path
    pytest.skip(f"manifest {name} not found (set VGEN_SHARED to the shared folder holding reference/vgen_unet_manifests)")


def test_real_t2v_manifest_maps_fully_into_default_unet3d() -> None:
    from diffusers import UNet3DConditionModel

    shapes = json.loads(_manifest("t2v_modelscope_unet.json").read_text())["params"]
    assert len(shapes) == 1480
    with torch.device("meta"):
        model = UNet3DConditionModel()
    cfg = infer_unet3d_config(shapes)
    assert cfg["block_out_channels"] == (320, 640, 1280, 1280) and cfg["attention_head_dim"] == 64
    assert cfg["layers_per_block"] == 2 and cfg["cross_attention_dim"] == 1024
    for key in ("block_out_channels", "layers_per_block", "attention_head_dim", "cross_attention_dim",
                "down_block_types", "up_block_types", "in_channels", "out_channels", "norm_num_groups"):
        norm = (lambda v: tuple(v) if isinstance(v, (list, tuple)) else v)
        assert norm(cfg[key]) == norm(model.config[key]), key
    sd = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    km = KeyMap.for_model(model)
    mapped = km.vgen_to_diffusers(sd)
    expected = model.state_dict()
    assert set(mapped) == set(expected)
    check_compatible(expected, mapped, source="manifest")  # shapes equal, nothing missing/unexpected
    back = km.diffusers_to_vgen({k: torch.empty(tuple(v.shape), device="meta") for k, v in expected.items()})
    assert {k: list(v.shape) for k, v in back.items()} == shapes


def test_key_rules_on_known_names() -> None:
    kw = dict(layers_per_block=2, up_has_attention=[False, True, True, True])
    assert diffusers_to_vgen_key("down_blocks.1.temp_attentions.0.proj_in.weight", **kw) == "input_blocks.4.2.proj_in.weight"
    assert diffusers_to_vgen_key("down_blocks.2.downsamplers.0.conv.weight", **kw) == "input_blocks.9.op.weight"
    assert diffusers_to_vgen_key("down_blocks.3.resnets.1.norm1.bias", **kw) == "input_blocks.11.0.in_layers.0.bias"
    assert diffusers_to_vgen_key("up_blocks.0.upsamplers.0.conv.weight", **kw) == "output_blocks.2.1.conv.weight"
    assert diffusers_to_vgen_key("up_blocks.2.upsamplers.0.conv.bias", **kw) == "output_blocks.8.3.conv.bias"
    assert diffusers_to_vgen_key("mid_block.temp_convs.1.conv4.3.weight", **kw) == "middle_block.3.temopral_conv.conv4.3.weight"
    assert diffusers_to_vgen_key("up_blocks.3.resnets.2.conv_shortcut.weight", **kw) == "output_blocks.11.0.skip_connection.weight"
    assert diffusers_to_vgen_key("time_embedding.linear_2.bias", **kw) == "time_embed.2.bias"


def test_extra_rules_and_passthrough_extend_the_map() -> None:
    from sdk.ml.tiny import tiny_unet3d

    unet = tiny_unet3d()
    km = KeyMap.for_model(unet, extra=[lambda k: "custom." + k if k.startswith("conv_out.") else None])
    assert km.to_vgen["conv_out.weight"] == "custom.conv_out.weight"


def test_tiny_unet_roundtrip_and_errors() -> None:
    from sdk.ml.tiny import tiny_unet3d

    unet = tiny_unet3d(seed=4)
    vgen_sd = KeyMap.for_model(unet).diffusers_to_vgen(unet.state_dict())
    assert any(v.ndim == 3 for k, v in vgen_sd.items() if k.endswith("proj_in.weight"))  # Conv1d layout
    loaded = load_vgen_unet(vgen_sd)
    for k, v in unet.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert not loaded.training

    bad = dict(vgen_sd)
    bad["input_blocks.1.0.in_layers.2.weight"] = torch.zeros(32, 32, 3, 1)
    with pytest.raises(IncompatibleCheckpoint, match=r"in_layers\.2\.weight|conv1\.weight") as info:
        load_vgen_unet(bad)
    assert "[32, 32, 3, 1]" in str(info.value) and "[32, 32, 3, 3]" in str(info.value)

    extra = dict(vgen_sd, **{"input_blocks.1.0.adapter.weight": torch.zeros(1)})
    with pytest.raises(IncompatibleCheckpoint, match="unexpected key 'input_blocks.1.0.adapter.weight'"):
        load_vgen_unet(extra)
    missing = {k: v for k, v in vgen_sd.items() if k != "out.2.bias"}
    with pytest.raises(IncompatibleCheckpoint, match="conv_out.bias"):
        load_vgen_unet(missing)
