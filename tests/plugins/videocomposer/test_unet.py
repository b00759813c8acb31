"""VideoComposer's UNet on its tiny twin: the real .pth round-trips through the loader, the conditions (any subset)
and the style image steer the output, and bad conditions are refused naming the fix."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import plugins.videocomposer as plugin
from plugins.videocomposer.tiny import LCM_FILE, T2V_FILE, make_tiny_lcm_weights, make_tiny_weights
from plugins.videocomposer.unet import RELEASED_CONDITIONS, CompositionUNet, load_composition_unet, \
    tiny_composition_unet
from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.tiny import TEXT_WIDTH
from sdk.ml.weights_layout import detect_vgen_folder
from sdk.plugins import PluginRegistry
from sdk.weights_check import check_weights, weights_layouts

F, H, W = 3, 64, 64  # frames and video size; the tiny VAE's latent grid is 8×8
LATENT = (1, 4, F, H // 8, W // 8)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_weights(tmp_path_factory.mktemp("vcomp") / "t2v", seed=2)


@pytest.fixture(scope="module")
def unet(twin: Path) -> CompositionUNet:
    w = detect_vgen_folder(twin, what="VideoComposer", weights_id="videocomposer.tft2v_vcomposer",
                           prefixes=("tft2v_vcomposer",))
    assert w.unet is not None and w.unet.name == T2V_FILE
    return load_composition_unet(load_state_dict(w.unet), source=w.unet.name)


def conditions(seed: int = 0) -> dict[str, torch.Tensor]:
    """Condition videos as VGen's entrance makes them (value ranges included), one of each released kind."""
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(1, 3, F, H, W, generator=g)  # frames in [0, 1]
    mask = (torch.rand(1, 1, 1, H, W, generator=g) > 0.5).float().expand(1, 1, F, H, W)
    sketch = torch.rand(1, 1, F, H, W, generator=g)
    return {"depth": 10 * torch.rand(1, 1, F, H, W, generator=g), "sketch": sketch,
            "single_sketch": sketch[:, :, :1].expand(1, 1, F, H, W),
            "motion": torch.randn(1, 2, F, H, W, generator=g),
            "masked": torch.cat([(video * 2 - 1) * (1 - mask), 1 - mask], dim=1),
            "local_image": video[:, :, :1].expand(1, 3, F, H, W)}


def run(unet: CompositionUNet, conds: dict | None = None, image: torch.Tensor | None = None,
        batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    sample = torch.randn(LATENT, generator=g).repeat(batch, 1, 1, 1, 1)
    text = torch.randn(1, 77, TEXT_WIDTH, generator=g).repeat(batch, 1, 1)
    with torch.no_grad():
        return unet(sample, torch.tensor(500), text, image_embeds=image, conditions=conds, return_dict=False)[0]


def test_the_tiny_twin_is_a_real_vgen_file_that_loads_back_exactly(twin: Path, unet: CompositionUNet) -> None:
    sd = torch.load(twin / T2V_FILE, map_location="cpu", weights_only=True)
    assert set(sd) == {"state_dict", "step"}
    keys = set(sd["state_dict"])
    assert "depth_embedding_after.layers.0.0.fn.to_qkv.weight" in keys and "mask_embedding_after.layers.0.1.net.2.bias" in keys
    assert not any("_after." in k and ".to_q." in k for k in keys)  # VGen's fused layout, not ours
    assert unet.conditions == RELEASED_CONDITIONS and not unet.training
    reference = tiny_composition_unet(2)
    for k, v in reference.state_dict().items():
        assert torch.equal(unet.state_dict()[k], v), k
    reg = PluginRegistry([("videocomposer", plugin)])
    assert check_weights(twin, weights_layouts(reg, reg.weights["videocomposer.tft2v_vcomposer"]),
                         what="videocomposer.tft2v_vcomposer") == "vgen"


def test_the_lcm_twin_holds_the_same_model_under_its_own_name(tmp_path: Path) -> None:
    folder = make_tiny_lcm_weights(tmp_path / "lcm", seed=2)
    w = detect_vgen_folder(folder, what="VideoComposer", weights_id="videocomposer.videolcm_vcomposer",
                           prefixes=("videolcm_vcomposer",))
    assert w.unet is not None and w.unet.name == LCM_FILE
    reg = PluginRegistry([("videocomposer", plugin)])
    assert check_weights(folder, weights_layouts(reg, reg.weights["videocomposer.videolcm_vcomposer"]),
                         what="videocomposer.videolcm_vcomposer") == "vgen"
    with pytest.raises(ValueError, match="'diffusers'"):
        make_tiny_lcm_weights(tmp_path / "x", "diffusers")


def test_conditions_and_the_style_image_steer_the_output(unet: CompositionUNet) -> None:
    conds = conditions()
    plain = run(unet)
    assert plain.shape == LATENT and torch.isfinite(plain).all()
    # no conditions is text-to-video: the concat channels are zero, as VGen's
    zeros = torch.zeros(1, 8, *LATENT[2:])
    g = torch.Generator().manual_seed(7)
    sample, text = torch.randn(LATENT, generator=g), torch.randn(1, 77, TEXT_WIDTH, generator=g)
    with torch.no_grad():
        direct = unet(torch.cat([sample, zeros], 1), torch.tensor(500), text, return_dict=False)[0]
    assert torch.equal(plain, direct)

    style = torch.randn(1, TEXT_WIDTH, generator=torch.Generator().manual_seed(3))
    subset = {k: conds[k] for k in ("depth", "local_image")}
    composed = run(unet, subset, style)
    assert composed.shape == LATENT
    assert not torch.allclose(composed, plain, atol=1e-4)
    assert not torch.allclose(composed, run(unet, subset), atol=1e-4), "the style image changes the output"
    for name in RELEASED_CONDITIONS:  # each condition alone changes it too
        assert not torch.allclose(run(unet, {name: conds[name]}), plain, atol=1e-4), name
    # a condition given as None is left out, as a partial_keys subset leaves it out
    assert torch.equal(run(unet, {**subset, "sketch": None}, style), composed)
    # other depth, other output
    assert not torch.allclose(run(unet, {**subset, "depth": conds["depth"].flip(-1)}, style), composed, atol=1e-4)


def test_one_condition_batch_serves_the_guidance_pair(unet: CompositionUNet) -> None:
    subset = {k: v for k, v in conditions().items() if k in ("depth", "masked")}
    shared = run(unet, subset, batch=2)
    repeated = run(unet, {k: v.repeat(2, 1, 1, 1, 1) for k, v in subset.items()}, batch=2)
    assert shared.shape == (2, *LATENT[1:])
    torch.testing.assert_close(shared, repeated)
    torch.testing.assert_close(shared[:1], run(unet, subset))


def test_a_condition_of_another_size_meets_the_latent_grid(unet: CompositionUNet) -> None:
    """VGen feeds conditions at the video size; any size is pooled onto the grid (VGen pools to a fixed size)."""
    depth = conditions()["depth"]
    half = torch.nn.functional.interpolate(depth[0].transpose(0, 1), scale_factor=0.5, mode="nearest")
    out = run(unet, {"depth": half.transpose(0, 1)[None]})
    assert out.shape == LATENT and torch.isfinite(out).all()


def test_bad_conditions_are_refused_naming_the_fix(unet: CompositionUNet) -> None:
    depth = conditions()["depth"]
    with pytest.raises(InvalidRequest, match="no 'canny' condition") as err:
        run(unet, {"canny": depth})
    assert "depth" in err.value.hint
    with pytest.raises(InvalidRequest, match=r"'depth' condition has shape \[1, 1, 2, 64, 64\].*\[1, 1, 3, H, W\]"):
        run(unet, {"depth": depth[:, :, :2]})
    with pytest.raises(InvalidRequest, match="'motion' condition has shape"):
        run(unet, {"motion": depth})  # 1 channel where motion vectors have 2


def test_a_checkpoint_missing_a_branch_tensor_is_refused_naming_it(twin: Path) -> None:
    sd = load_state_dict(twin / T2V_FILE)
    sd.pop("local_image_embedding_after.layers.0.1.net.2.bias")
    with pytest.raises(IncompatibleCheckpoint, match="local_image.*net.2.bias.*missing|ff.net.2.bias.*missing"):
        load_composition_unet(sd, source=T2V_FILE)


def test_the_worker_loads_the_unet_once_per_file(twin: Path, tmp_path: Path) -> None:
    from plugins.videocomposer.weights import detect_weights, load_unet
    from sdk.context import JobContext, ModelCache
    from sdk.errors import WeightsMissing

    cache = ModelCache()
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=cache)
    w = detect_weights(twin)
    first = load_unet(ctx, w, torch.device("cpu"), torch.float32)
    assert isinstance(first, CompositionUNet) and first.conditions == RELEASED_CONDITIONS
    assert load_unet(ctx, detect_weights(twin / T2V_FILE), torch.device("cpu"), torch.float32) is first
    assert (cache.misses, cache.hits) == (1, 1)
    with pytest.raises(WeightsMissing, match="videocomposer.videolcm_vcomposer"):
        detect_weights(None, lcm=True)
