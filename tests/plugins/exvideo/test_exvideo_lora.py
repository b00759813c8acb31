"""The ExVideo-CogVideoX LoRA's key mapping onto diffusers' CogVideoXTransformer3DModel: every key of a file in the
released format is used, nothing unknown or missing is accepted, and fusing changes what the transformer predicts."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sdk.errors import IncompatibleCheckpoint, InvalidRequest

from plugins.exvideo import lora as L


def tiny_transformer(layers: int = 2, seed: int = 0):
    from diffusers import CogVideoXTransformer3DModel

    torch.manual_seed(seed)
    # the 5B family's shape at tiny size: rotary position embeddings, no learned ones
    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=16,
        text_embed_dim=16, num_layers=layers, sample_width=8, sample_height=8, sample_frames=9,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False).eval()


def predict(model) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 4, 8, 8, generator=gen)
    text = torch.randn(1, 5, 16, generator=gen)
    with torch.no_grad():
        return model(x, text, torch.tensor([500]), return_dict=False)[0]


@pytest.fixture()
def released(tmp_path: Path) -> tuple[Path, object]:
    model = tiny_transformer()
    return L.write_lora_twin(tmp_path / "lora", model, rank=2, seed=4), model


def test_every_key_of_a_released_format_file_maps_onto_a_linear(released) -> None:
    path, model = released
    assert path.name == L.RELEASED_FILE
    state = load_file(str(path))
    # DiffSynth's names, PEFT-style pairs with the adapter name
    assert "blocks.0.attn1.to_out.lora_A.default.weight" in state
    assert "blocks.1.attn1.to_q.lora_B.default.weight" in state
    pairs = L.plan(state, model)
    assert len(pairs) * 2 == len(state)  # all keys used
    targets = {p.target for p in pairs}
    assert "transformer_blocks.0.attn1.to_out.0" in targets and "transformer_blocks.1.attn1.to_v" in targets
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert targets <= linears


def test_the_name_tables_cover_every_linear_of_the_transformer_exactly() -> None:
    model = tiny_transformer(layers=1)
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    mapped = set(L.TOP_LINEARS.values()) | {f"transformer_blocks.0.{v}" for v in L.BLOCK_LINEARS.values()}
    assert mapped == linears
    for name in linears:
        assert L.diffusers_name(L.diffsynth_name(name)) == name


def test_keys_without_the_adapter_name_map_too(tmp_path: Path) -> None:
    model = tiny_transformer()
    path = L.write_lora_twin(tmp_path / "plain.safetensors", model, adapter=None)
    assert "blocks.0.attn1.to_q.lora_A.weight" in load_file(str(path))
    assert len(L.plan(load_file(str(path)), model)) == 8


def _refusal(state: dict, model) -> str:
    with pytest.raises(IncompatibleCheckpoint) as info:
        L.plan(state, model)
    return str(info.value)


def test_an_extra_key_is_refused_and_named(released) -> None:
    path, model = released
    state = load_file(str(path))
    state["blocks.0.attn1.rotary.lora_A.default.weight"] = torch.zeros(2, 16)
    msg = _refusal(state, model)
    assert "blocks.0.attn1.rotary.lora_A.default.weight" in msg and "cogvideox-5b" in msg


def test_a_missing_half_is_refused_and_named(released) -> None:
    path, model = released
    state = load_file(str(path))
    del state["blocks.1.attn1.to_k.lora_B.default.weight"]
    assert "blocks.1.attn1.to_k.lora_B.default.weight" in _refusal(state, model)


def test_a_block_missing_a_pair_the_others_have_is_refused(released) -> None:
    path, model = released
    state = load_file(str(path))
    del state["blocks.1.attn1.to_v.lora_A.default.weight"], state["blocks.1.attn1.to_v.lora_B.default.weight"]
    assert "blocks.1.attn1.to_v" in _refusal(state, model)


def test_a_lora_for_another_model_is_refused(tmp_path: Path) -> None:
    # a LoRA written for a wider model (another CogVideoX size), and one for a deeper one
    wide = L.write_lora_twin(tmp_path / "wide.safetensors", tiny_transformer_wide())
    assert "shapes" in _refusal(load_file(str(wide)), tiny_transformer())
    deep = L.write_lora_twin(tmp_path / "deep.safetensors", tiny_transformer(layers=3))
    assert "blocks.2." in _refusal(load_file(str(deep)), tiny_transformer())
    # an SD-style (UNet) LoRA
    unet = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 4)}
    assert "lora_unet_down" in _refusal(unet, tiny_transformer())


def tiny_transformer_wide():
    from diffusers import CogVideoXTransformer3DModel

    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16,
        text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8, sample_frames=9,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False)


def test_only_safetensors_is_read(tmp_path: Path) -> None:
    pickle = tmp_path / "lora.pth"
    torch.save({"a": torch.zeros(1)}, pickle)
    with pytest.raises(InvalidRequest, match="safetensors"):
        L.read_lora(pickle)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(IncompatibleCheckpoint, match="junk.safetensors"):
        L.read_lora(junk)


def test_fusing_changes_the_output_and_scale_zero_does_not(released) -> None:
    path, model = released
    before = predict(model)
    weight = model.transformer_blocks[0].attn1.to_q.weight.clone()
    assert L.fuse_file(model, path, scale=0.0) == 0
    assert torch.equal(predict(model), before)
    assert L.fuse_file(model, path, scale=1.0) == 8
    assert (predict(model) - before).abs().max() > 1e-4
    # exactly W + B·A (DiffSynth applies no alpha/rank factor)
    state = load_file(str(path))
    expected = weight + state["blocks.0.attn1.to_q.lora_B.default.weight"] @ state[
        "blocks.0.attn1.to_q.lora_A.default.weight"]
    torch.testing.assert_close(model.transformer_blocks[0].attn1.to_q.weight, expected)


def test_bf16_weights_are_fused_in_float32_then_cast(released) -> None:
    path, model = released
    model = model.to(torch.bfloat16)
    ref = model.transformer_blocks[0].attn1.to_k.weight.float().clone()
    L.fuse_file(model, path, scale=0.5)
    state = load_file(str(path))
    delta = state["blocks.0.attn1.to_k.lora_B.default.weight"] @ state["blocks.0.attn1.to_k.lora_A.default.weight"]
    got = model.transformer_blocks[0].attn1.to_k.weight
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, (ref + 0.5 * delta).to(torch.bfloat16))


def test_the_identity_changes_with_the_file_and_the_scale(released, tmp_path: Path) -> None:
    path, model = released
    a = L.lora_identity(path, 1.0)
    assert a != L.lora_identity(path, 0.5)
    assert L.lora_identity(path.parent, 1.0) == a  # the folder resolves to its file
    other = L.write_lora_twin(tmp_path / "other", model, seed=9)
    assert L.lora_identity(other, 1.0) != a


def test_the_tiny_weights_fit_the_tiny_cogvideox_5b_twin_key_for_key(tmp_path: Path) -> None:
    from diffusers import CogVideoXTransformer3DModel

    from sdk.ml.cogvideox import write_twin

    from plugins.exvideo.tiny import make_tiny_weights

    folder = make_tiny_weights(tmp_path / "lora")
    state = load_file(str(folder / L.RELEASED_FILE))
    base = CogVideoXTransformer3DModel.from_pretrained(write_twin(tmp_path / "cog5b", variant="5b") / "transformer")
    assert len(L.plan(state, base)) * 2 == len(state) == 2 * 4 * len(base.transformer_blocks)


def test_a_base_other_than_cogvideox_5b_t2v_is_refused(tmp_path: Path) -> None:
    from sdk.ml.cogvideox import write_twin

    from plugins.exvideo.pipeline import check_base

    check_base(write_twin(tmp_path / "5b", variant="5b"))
    for variant in ("2b", "5b-i2v", "1.5-5b"):
        with pytest.raises(IncompatibleCheckpoint, match="cogvideox-5b"):
            check_base(write_twin(tmp_path / variant, variant=variant))
