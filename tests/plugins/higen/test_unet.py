"""HiGen's UNet and weights: the released manifest maps exactly (meta device), the tiny twin is a real VGen file that
loads back exactly and passes the weights check, the real-size twin's plan is the released layout, the cues steer
the output, WoImg modules vanish at one frame, and a wrong frame count is refused naming num_frames."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import plugins.higen as plugin
from plugins.higen.tiny import UNET_FILE, make_tiny_weights
from plugins.higen.unet import HiGenUNet, appearance_matrix, infer_higen_config, keymap, load_higen_unet, \
    real_config, tiny_higen_unet, vgen_state_dict
from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.tiny import TEXT_WIDTH
from sdk.plugins import PluginRegistry
from sdk.weights_check import check_weights, weights_layouts
from tests.reference import manifest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_weights(tmp_path_factory.mktemp("higen") / "w", seed=3, num_frames=4)


def test_registers_with_the_released_files_and_licence() -> None:
    reg = PluginRegistry([("higen", plugin)])
    assert reg.plugins["higen"].error is None
    spec, w = reg.generators["higen.t2v"], reg.weights["higen.t2v"]
    assert spec.default_weights == "higen.t2v" and w.source == "modelscope" and w.repo_id == "iic/HiGen"
    assert "non-commercial" in w.licence and w.tiny and w.layout is not None
    assert [f.path for f in w.files] == ["cvpr2024.t2v.e003.non_ema_0725000.pth", "open_clip_pytorch_model.bin",
                                         "v2-1_512-ema-pruned.ckpt"]


def test_hook_and_params_modules_do_not_import_torch() -> None:
    code = ("import sys, plugins.higen, plugins.higen.params;"
            "bad=[m for m in ('torch','diffusers','transformers','open_clip') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_released_manifest_maps_every_key_and_shape() -> None:
    """All 1535 tensors of VGen's UNetSD_HiGen land on a parameter of the same shape, nothing missing or unexpected,
    and writing the model back gives exactly the manifest (meta device: no memory)."""
    from sdk.ml.checkpoints import check_compatible

    m = manifest("higen_unet.json")
    shapes = m["params"]
    assert len(shapes) == m["num_tensors"] == 1535
    cfg = infer_higen_config(shapes)
    assert cfg == real_config()
    with torch.device("meta"):
        model = HiGenUNet(**cfg)
    mapped = keymap(model).vgen_to_diffusers({k: torch.empty(v, device="meta") for k, v in shapes.items()})
    assert len(mapped) == len(model.state_dict()) == 1535
    check_compatible(model.state_dict(), mapped, source="higen_unet.json")
    assert sum(p.numel() for p in model.parameters()) == m["total_params"] == 1_483_201_924
    assert {k: list(v.shape) for k, v in vgen_state_dict(model).items()} == shapes


def test_the_released_unet_takes_both_stages_tensors_at_the_released_size() -> None:
    """Real size on the meta device: stage 1 (one frame, 16 context tokens from 77 text tokens) and stage 2
    (32 frames, 31 motion values, the 32×32 appearance matrix, the key frame as prior) on the [uncond, cond] batch."""
    with torch.device("meta"):
        unet = HiGenUNet(**real_config())
        text = torch.empty(2, 77, 1024)
        assert unet.context_embedding(text).shape == (2, 16, 1024)
        key = unet(torch.empty(2, 4, 1, 32, 56), torch.tensor(981), text, spatial_prior=torch.empty(1, 4, 32, 56),
                   motion=torch.empty(1, 1), appearance=torch.empty(1, 1, 32), return_dict=False)[0]
        video = unet(torch.empty(2, 4, 32, 32, 56), torch.tensor(981), text, spatial_prior=torch.empty(1, 4, 32, 56),
                     motion=torch.empty(1, 31), appearance=torch.empty(1, 32, 32), return_dict=False)[0]
    assert key.shape == (2, 4, 1, 32, 56) and video.shape == (2, 4, 32, 32, 56)


def test_real_size_twin_plan_is_the_released_layout() -> None:
    """``vgen models make-tiny higen.t2v DIR --size real`` writes this plan (streamed; not written here: 6 GB)."""
    from sdk.ml.twins import meta_model, plan_from_shapes

    unet = meta_model(lambda: HiGenUNet(**real_config()))
    plan = plan_from_shapes(vgen_state_dict(unet), 1)
    assert {k: list(e.shape) for k, e in plan.items()} == manifest("higen_unet.json")["params"]


def test_the_tiny_twin_is_a_real_vgen_file_that_loads_back_exactly(twin: Path) -> None:
    sd = torch.load(twin / UNET_FILE, map_location="cpu", weights_only=True)
    assert set(sd) == {"state_dict", "step"}
    keys = set(sd["state_dict"])
    assert {"context_embedding.tokens", "img_embedding.weight", "msim_embedding.2.bias",
            "asim_embedding.0.weight"} <= keys
    unet = load_higen_unet(load_state_dict(twin / UNET_FILE))
    assert unet.appearance_dim == 4 and not unet.training
    for k, v in tiny_higen_unet(3, appearance_dim=4).state_dict().items():
        assert torch.equal(unet.state_dict()[k], v), k
    reg = PluginRegistry([("higen", plugin)])
    assert check_weights(twin, weights_layouts(reg, reg.weights["higen.t2v"]), what="higen.t2v") == "vgen"


def test_released_shapes_pass_the_door_check_and_a_missing_branch_is_named(tmp_path: Path) -> None:
    from tests.plugins.videocomposer.test_plugin import released_folder

    reg = PluginRegistry([("higen", plugin)])
    layouts = weights_layouts(reg, reg.weights["higen.t2v"])
    params = manifest("higen_unet.json")["params"]
    name = "cvpr2024.t2v.e003.non_ema_0725000.pth"
    assert check_weights(released_folder(tmp_path / "ok", params, name), layouts, what="higen.t2v") == "vgen"
    dropped = {k: s for k, s in params.items() if k != "context_embedding.tokens"}
    with pytest.raises(IncompatibleCheckpoint, match="44 tensors under context_embedding.*the released UNet holds 45"):
        check_weights(released_folder(tmp_path / "bad", dropped, name), layouts, what="higen.t2v")
    with pytest.raises(IncompatibleCheckpoint, match="context_embedding.tokens"):
        infer_higen_config(dropped)
    plain = manifest("t2v_modelscope_unet.json")["params"]  # the same core without HiGen's branches
    with pytest.raises(IncompatibleCheckpoint, match="no context_embedding"):
        check_weights(released_folder(tmp_path / "t2v", plain, name), layouts, what="higen.t2v")


def run(unet: HiGenUNet, frames: int, **kw: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 4, frames, 4, 6, generator=g)
    text = torch.randn(1, 77, TEXT_WIDTH, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor(500), text, return_dict=False, **kw)[0]


def test_each_cue_and_the_prior_steer_the_output() -> None:
    unet = tiny_higen_unet(1, appearance_dim=4)
    base = dict(spatial_prior=torch.zeros(1, 4, 4, 6), motion=torch.full((1, 3), 500.0),
                appearance=appearance_matrix(4, 1.0))
    ref = run(unet, 4, **base)
    for change in (dict(motion=torch.full((1, 3), 100.0)), dict(appearance=appearance_matrix(4, 0.0)),
                   dict(spatial_prior=torch.ones(1, 4, 4, 6))):
        assert (run(unet, 4, **{**base, **change}) - ref).abs().max() > 1e-3, change
    # F − 1 equal motion values interpolate to F equal values: same as giving F of them
    torch.testing.assert_close(run(unet, 4, **{**base, "motion": torch.full((1, 4), 500.0)}), ref)


def test_temporal_modules_vanish_on_one_frame() -> None:
    """At F = 1 the temporal convs and transformers (transformer_in too) are identities: scaling their weights
    changes nothing; at F = 2 it does."""
    unet = tiny_higen_unet(2, appearance_dim=4)
    kw = dict(motion=torch.zeros(1, 1), appearance=torch.ones(1, 1, 4))
    one = run(unet, 1, **kw)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "temp_" in name or name.startswith("transformer_in"):
                p.mul_(3.0)
    torch.testing.assert_close(run(unet, 1, **kw), one, rtol=0, atol=0)
    kw2 = dict(motion=torch.zeros(1, 1), appearance=torch.ones(1, 2, 4))
    assert (run(unet, 2, **kw2) - run(tiny_higen_unet(2, appearance_dim=4), 2, **kw2)).abs().max() > 1e-3


def test_appearance_matrix_is_vgens_toeplitz() -> None:
    """VGen builds it from two linspaces; ours is the closed form."""
    for frames, a in ((32, 1.0), (32, 0.4), (5, 1.5)):
        sim = torch.cat([torch.linspace(1.0 - a, 1.0, frames)[:-1], torch.linspace(1.0, 1.0 - a, frames)])
        vgen = torch.stack([sim[i:i + frames] for i in range(len(sim) - frames, -1, -1)])
        torch.testing.assert_close(appearance_matrix(frames, a)[0], vgen, rtol=0, atol=1e-6)


def test_a_frame_count_the_weights_cannot_take_is_refused_naming_num_frames(twin: Path, tmp_path: Path) -> None:
    from plugins.higen.params import HiGenParams
    from plugins.higen.pipeline import HiGenGenerator
    from sdk.context import JobContext, JobRequest, ModelCache

    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=ModelCache())
    params = HiGenParams(prompt="a cat", num_frames=32, height=32, width=48, num_inference_steps=1)
    with pytest.raises(InvalidRequest) as info:
        HiGenGenerator().generate(ctx, JobRequest("j", "generate", "higen.t2v", params, seed=0, weights=twin))
    assert info.value.field == "num_frames" and "num_frames=4" in info.value.hint
    assert "num_frames is 32" in info.value.user_message


def test_the_streamed_twin_writer_makes_a_folder_the_loader_and_the_door_check_take(tmp_path: Path) -> None:
    """The writer behind ``vgen models make-tiny higen.t2v DIR --size real``, run at tiny dimensions."""
    from plugins.higen.pipeline import detect_weights
    from plugins.higen.tiny import UNET_FILE_REAL, write_streamed
    from plugins.higen.unet import tiny_config
    from sdk.ml.tiny import OPENCLIP_TINY, VAE_TINY

    folder = write_streamed(tmp_path / "streamed", seed=2,
                            dims={"unet": tiny_config(4), "openclip": OPENCLIP_TINY, "vae": VAE_TINY})
    w = detect_weights(folder)
    assert w.unet is not None and w.unet.name == UNET_FILE_REAL
    unet = load_higen_unet(load_state_dict(w.unet))
    assert unet.appearance_dim == 4 and unet.config["block_out_channels"] == (32, 64)
    reg = PluginRegistry([("higen", plugin)])
    assert check_weights(folder, weights_layouts(reg, reg.weights["higen.t2v"]), what="higen.t2v") == "vgen"


def test_defaults_are_the_released_config_and_other_frame_counts_warn_at_queue_time() -> None:
    from plugins.higen.params import HiGenParams

    p = HiGenParams(prompt="a cat")
    assert (p.num_frames, p.height, p.width, p.num_inference_steps, p.guidance_scale) == (32, 256, 448, 50, 12.0)
    assert (p.motion_factor, p.appearance_factor, p.offset_noise, p.negative_prompt, p.fps) == (500, 1.0, 0.1, "", 8)
    assert p.queue_warnings() == []
    assert "take exactly 32" in HiGenParams(prompt="a cat", num_frames=16).queue_warnings()[0]
