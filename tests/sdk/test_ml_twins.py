"""Random-weight twins written tensor by tensor: the real-size plans have the released models' keys and shapes
(checked on the meta device, nothing allocated), and the streamed writer gives loadable folders (shards + index,
VGen .pth) in which both formats hold the same weights. Real-size files are never written here."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from sdk.ml.process_memory import reset_peak, rss
from sdk.ml.twins import Entry, meta_model, random_entry, write_safetensors, write_torch_file

REPO = Path(__file__).resolve().parents[2]


def _ctx(tmp: Path):
    """A job context of its own (and so a model cache of its own: each load really reads its folder)."""
    from sdk.context import JobContext, ModelCache

    return JobContext("twin", lambda e: None, staging_dir=tmp / "staging", models=ModelCache())


def _manifest(name: str) -> dict[str, list[int]]:
    roots = [Path(os.environ["VGEN_SHARED"]) if os.environ.get("VGEN_SHARED") else None, REPO.parent / "shared"]
    for root in filter(None, roots):
        path = root / "reference" / "vgen_unet_manifests" / name
        if path.exists():
            return json.loads(path.read_text())["params"]
    pytest.skip(f"manifest {name} not found (set VGEN_SHARED to the shared folder holding reference/vgen_unet_manifests)")


def _numel(plan: dict[str, Entry]) -> int:
    return sum(torch.Size(e.shape).numel() for e in plan.values())


def test_real_size_unet_plans_are_the_released_models() -> None:
    from diffusers import I2VGenXLUNet, UNet3DConditionModel

    from plugins.i2vgen_xl import tiny as i2v
    from plugins.modelscope_t2v import tiny as t2v

    unet = meta_model(UNet3DConditionModel)
    assert _numel(t2v.diffusers_unet_plan(unet, 0)) == 1_411_233_860  # ModelScope T2V (vgen-notes, SUMMARY.json)
    vgen = t2v.vgen_unet_plan(unet, 0)
    assert _numel(vgen) == 1_411_233_860
    i2v_unet = meta_model(I2VGenXLUNet)
    i2v_vgen = i2v.vgen_unet_plan(i2v_unet, 0)
    assert _numel(i2v.diffusers_unet_plan(i2v_unet, 0)) == _numel(i2v_vgen) == 1_420_469_224
    # the VGen .pth twins hold exactly the released checkpoints' keys and shapes
    assert {k: list(e.shape) for k, e in vgen.items()} == _manifest("t2v_modelscope_unet.json")
    assert {k: list(e.shape) for k, e in i2v_vgen.items()} == _manifest("i2vgen_xl_unet.json")


def test_real_size_encoder_and_vae_plans() -> None:
    from sdk.ml.tiny import OPENCLIP_REAL, VAE_REAL, clip_text_twin, clip_vision_twin, openclip_shapes, vae_twin

    shapes = openclip_shapes(OPENCLIP_REAL)
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 986_109_441  # open_clip_pytorch_model.bin
    cfg, text = clip_text_twin(OPENCLIP_REAL, 0, penultimate=True)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.hidden_act) == (23, 1024, "gelu")
    assert _numel(text) == 340_387_840  # ModelScope's 23-layer text encoder
    assert clip_text_twin(OPENCLIP_REAL, 0, penultimate=False)[0].num_hidden_layers == 24  # I2VGen-XL's
    vcfg, vision = clip_vision_twin(OPENCLIP_REAL, 0)
    assert (vcfg.hidden_size, vcfg.num_hidden_layers, vcfg.num_attention_heads, vcfg.image_size) == (1280, 32, 16, 224)
    assert _numel(vision) == 632_076_800
    _, vae = vae_twin(VAE_REAL, 0, ldm=False)
    _, ldm = vae_twin(VAE_REAL, 0, ldm=True)
    assert _numel(vae) == _numel(ldm) == 83_653_863
    assert all(k.startswith("first_stage_model.") for k in ldm)


def _assert_same_models(a: dict, b: dict, names: tuple[str, ...]) -> None:
    for name in names:
        sa, sb = a[name].state_dict(), b[name].state_dict()
        assert sa.keys() == sb.keys(), name
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name


def test_streamed_t2v_twin_loads_in_both_formats(tmp_path: Path) -> None:
    from diffusers import UNet3DConditionModel

    from plugins.modelscope_t2v.pipeline import detect_weights, load_components
    from plugins.modelscope_t2v.tiny import write_streamed
    from sdk.ml.tiny import OPENCLIP_TINY, UNET_TINY, VAE_TINY

    dims = dict(unet=UNET_TINY, vae=VAE_TINY, openclip=OPENCLIP_TINY)
    d = write_streamed(tmp_path / "d", "diffusers", seed=3, dims=dims, max_shard_bytes=2_000_000)
    v = write_streamed(tmp_path / "v", "vgen", seed=3, dims=dims)
    index = json.loads((d / "unet" / "diffusion_pytorch_model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in (d / "unet").glob("diffusion_pytorch_model-*-of-*.safetensors"))
    assert len(shards) >= 2 and sorted(set(index["weight_map"].values())) == shards
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in meta_model(
        lambda: UNet3DConditionModel(**UNET_TINY)).state_dict().values())
    cpu = torch.device("cpu")
    a = load_components(_ctx(tmp_path), detect_weights(d), cpu, torch.float32)
    b = load_components(_ctx(tmp_path), detect_weights(v), cpu, torch.float32)
    _assert_same_models(a, b, ("unet", "vae", "text_encoder"))
    # stock diffusers reads the sharded folder too
    stock = UNet3DConditionModel.from_pretrained(d / "unet")
    assert all(torch.equal(stock.state_dict()[k], t) for k, t in a["unet"].state_dict().items())


def test_streamed_i2v_twin_loads_in_both_formats(tmp_path: Path) -> None:
    from plugins.i2vgen_xl.pipeline import detect_weights, load_components
    from plugins.i2vgen_xl.tiny import TINY_DIMS, write_streamed

    d = write_streamed(tmp_path / "d", "diffusers", seed=5, dims=TINY_DIMS, max_shard_bytes=2_000_000)
    v = write_streamed(tmp_path / "v", "vgen", seed=5, dims=TINY_DIMS)
    assert (d / "unet" / "diffusion_pytorch_model.safetensors.index.json").exists()
    assert (d / "feature_extractor" / "preprocessor_config.json").exists()
    cpu = torch.device("cpu")
    a = load_components(_ctx(tmp_path), detect_weights(d), cpu, torch.float32)
    b = load_components(_ctx(tmp_path), detect_weights(v), cpu, torch.float32)  # conv_in doubled back, to_qkv split back
    _assert_same_models(a, b, ("unet", "vae", "text_encoder", "image_encoder"))


def test_unknown_size_is_refused(tmp_path: Path) -> None:
    from plugins.modelscope_t2v.tiny import make_tiny_weights

    with pytest.raises(ValueError, match="'huge'"):
        make_tiny_weights(tmp_path, "diffusers", size="huge")


def test_cli_size_real_is_refused_where_there_is_no_real_twin(tmp_path: Path) -> None:
    """`vgen models make-tiny ID DIR --size real` names the field and the weights that have one, writing nothing."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "sdk.cli", "models", "make-tiny", "tf_t2v.tft2v_t2v_16f",
                          str(tmp_path / "w"), "--size", "real"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "real-size twin" in out.stderr and "modelscope-t2v / i2vgen-xl" in out.stderr, out.stderr
    assert not (tmp_path / "w").exists()


def test_writers_hold_one_tensor_at_a_time(tmp_path: Path) -> None:
    plan = {f"layer.{i}.weight": random_entry(f"layer.{i}.weight", (1024, 2048), 0) for i in range(24)}  # 8 MB each
    total = 24 * 1024 * 2048 * 4
    for write, name in ((write_safetensors, "x.safetensors"), (write_torch_file, "x.pth")):
        reset_peak()
        before = rss()["rss"]
        write(tmp_path / name, plan)
        grown = rss()["peak"] - before
        assert grown < total / 3, f"{name}: peak grew {grown / 2**20:.0f} MB for a {total / 2**20:.0f} MB file"
    from safetensors.torch import load_file

    st = load_file(str(tmp_path / "x.safetensors"))
    pt = torch.load(tmp_path / "x.pth", weights_only=True)
    assert all(torch.equal(st[k], pt[k]) for k in plan)
    assert torch.equal(st["layer.3.weight"], random_entry("layer.3.weight", (1024, 2048), 0).make())
