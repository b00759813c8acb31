"""OpenCLIP text features: our CLIPTextModel conversion equals open_clip's own penultimate + ln_final."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdk.errors import IncompatibleCheckpoint
from sdk.ml.text import (clip_text_from_openclip_state, clip_tokenizer_ids, load_diffusers_text_encoder,
                         load_openclip_text_encoder, openclip_tokenizer, write_clip_tokenizer_files)
from sdk.ml.tiny import openclip_state_dict, tiny_openclip

PROMPTS = ["A panda eating bamboo, 4k!!", "", "Café crème — très bien; PANIC!!", "word " * 90]


@pytest.fixture(scope="module")
def clip():
    return tiny_openclip(seed=11)


def _reference(model, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's text tower run by hand: all but the last resblock, then ln_final (VGen's 'penultimate')."""
    with torch.no_grad():
        x = model.token_embedding(ids) + model.positional_embedding
        for block in model.transformer.resblocks[:-1]:
            x = block(x, attn_mask=model.attn_mask)
        return model.ln_final(x)


def test_openclip_checkpoint_matches_open_clip(clip, tmp_path: Path) -> None:
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(openclip_state_dict(clip), path)
    enc = load_openclip_text_encoder(path)
    cfg = enc.model.config
    assert cfg.num_hidden_layers == 2 and cfg.hidden_act == "gelu" and cfg.layer_norm_eps == 1e-5
    assert cfg.num_attention_heads == 1 and cfg.hidden_size == 64
    ids = enc.tokenize(PROMPTS)
    assert ids.shape == (4, 77) and ids[1, 2:].eq(0).all() and ids[3, -1] == 49407  # pad 0, truncation keeps EOT
    feats = enc.encode(PROMPTS)
    assert feats.shape == (4, 77, 64)
    assert (feats - _reference(clip, ids)).abs().max() < 1e-5


def test_diffusers_tokenizer_files_tokenize_like_open_clip(tmp_path: Path) -> None:
    folder = write_clip_tokenizer_files(tmp_path / "tokenizer")
    ours, theirs = clip_tokenizer_ids(folder)(PROMPTS), openclip_tokenizer()(PROMPTS)
    assert torch.equal(ours, theirs)


def test_diffusers_text_folder_equals_openclip(clip, tmp_path: Path) -> None:
    from plugins.modelscope_t2v.tiny import make_tiny_weights

    root = make_tiny_weights(tmp_path / "w", "diffusers", seed=0)
    enc = load_diffusers_text_encoder(root / "text_encoder", root / "tokenizer")
    ref_clip = tiny_openclip(seed=0)
    ids = enc.tokenize(PROMPTS)
    assert (enc.encode(PROMPTS) - _reference(ref_clip, ids)).abs().max() < 1e-5


def test_not_an_openclip_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleCheckpoint, match="token_embedding"):
        clip_text_from_openclip_state({"foo": torch.zeros(1)})


def test_sd2_style_tokenizer_config_does_not_mangle_exclamation_marks(tmp_path: Path) -> None:
    """Real SD-2/ms-1.7b tokenizer folders may save pad_token "!"; "!" in prompts must stay id 748."""
    import json

    folder = write_clip_tokenizer_files(tmp_path / "tokenizer")
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["pad_token"] = "!"
    cfg["added_tokens_decoder"] = {"0": {"content": "!", "special": True, "lstrip": False, "rstrip": False,
                                         "normalized": False, "single_word": False}}
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    ids = clip_tokenizer_ids(folder)(PROMPTS)
    assert torch.equal(ids, openclip_tokenizer()(PROMPTS))


def test_padding_rule_holds_for_every_tokenizer_folder_layout(tmp_path: Path) -> None:
    """docs/architecture.md: token ids are open_clip's (pad id 0, "!" a plain character) whatever the folder's
    special-token files say: the hub's SD-2 files (pad "!"), and a folder with only tokenizer.json."""
    from transformers import CLIPTokenizer

    hub = write_clip_tokenizer_files(tmp_path / "hub")
    theirs = openclip_tokenizer()(PROMPTS)
    assert torch.equal(clip_tokenizer_ids(hub)(PROMPTS), theirs)
    assert CLIPTokenizer.from_pretrained(str(hub)).pad_token == "!"  # what transformers itself reads there

    fast = tmp_path / "fast"
    CLIPTokenizer.from_pretrained(str(hub)).save_pretrained(str(fast))
    for name in ("vocab.json", "merges.txt"):
        (fast / name).unlink(missing_ok=True)
    assert (fast / "tokenizer.json").exists()
    assert torch.equal(clip_tokenizer_ids(fast)(PROMPTS), theirs)

    (tmp_path / "empty").mkdir()
    with pytest.raises(IncompatibleCheckpoint, match="neither vocab.json"):
        clip_tokenizer_ids(tmp_path / "empty")
