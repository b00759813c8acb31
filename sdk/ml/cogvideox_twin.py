"""Twins of CogVideoX snapshots: random weights in the hub's diffusers layout, loadable by diffusers' own
``from_pretrained`` (``model_index.json``, ``scheduler/``, ``text_encoder/`` (T5), ``tokenizer/``, ``transformer/``,
``vae/``).

``size="tiny"``: a few-kilobyte T5, a 2-block transformer and a 3-level VAE (16 latent channels, 4× time, 4×
space), built in memory, for tests. ``size="real"``: the released dimensions (T5-v1.1-XXL, the 2B/5B transformers,
the 3-D VAE) written tensor by tensor without building the models (meta tensors), for GPU checks and benchmarks;
never for CI. Random weights produce noise.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

VARIANTS = ("2b", "5b", "5b-i2v", "1.5-5b")
PIPELINE = {"2b": "CogVideoXPipeline", "5b": "CogVideoXPipeline", "5b-i2v": "CogVideoXImageToVideoPipeline",
            "1.5-5b": "CogVideoXPipeline"}
#: the hub's scheduler_config.json (CogVideoXDDIMScheduler; 2B shifts the SNR by 3, the 5B family by 1)
SCHEDULER = {"_class_name": "CogVideoXDDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "beta_start": 0.00085, "clip_sample": False, "clip_sample_range": 1.0, "num_train_timesteps": 1000,
             "prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "sample_max_value": 1.0,
             "set_alpha_to_one": True, "snr_shift_scale": 3.0, "steps_offset": 0, "timestep_spacing": "trailing",
             "trained_betas": None}
#: CogVideoX-2B's transformer/config.json on the hub, written out (diffusers' defaults are exactly these)
HUB_2B_TRANSFORMER: dict[str, Any] = {
    "num_attention_heads": 30, "attention_head_dim": 64, "in_channels": 16, "out_channels": 16,
    "flip_sin_to_cos": True, "freq_shift": 0, "time_embed_dim": 512, "text_embed_dim": 4096, "num_layers": 30,
    "dropout": 0.0, "attention_bias": True, "sample_width": 90, "sample_height": 60, "sample_frames": 49,
    "patch_size": 2, "temporal_compression_ratio": 4, "max_text_seq_length": 226, "activation_fn": "gelu-approximate",
    "timestep_activation_fn": "silu", "norm_elementwise_affine": True, "norm_eps": 1e-5,
    "spatial_interpolation_scale": 1.875, "temporal_interpolation_scale": 1.0,
    "use_rotary_positional_embeddings": False, "use_learned_positional_embeddings": False}
#: released transformer configs (what differs from diffusers' defaults, which are CogVideoX-2B's)
TRANSFORMER_REAL: dict[str, dict[str, Any]] = {
    "2b": {},
    "5b": {"num_attention_heads": 48, "num_layers": 42, "use_rotary_positional_embeddings": True},
    "5b-i2v": {"num_attention_heads": 48, "num_layers": 42, "in_channels": 32, "use_rotary_positional_embeddings": True,
               "use_learned_positional_embeddings": True},
    "1.5-5b": {"num_attention_heads": 48, "num_layers": 42, "use_rotary_positional_embeddings": True,
               "patch_size_t": 2, "patch_bias": False, "sample_height": 96, "sample_width": 170, "sample_frames": 81},
}
T5_REAL = {"d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_heads": 64, "num_layers": 24, "vocab_size": 32128,
           "feed_forward_proj": "gated-gelu", "relative_attention_num_buckets": 32,
           "relative_attention_max_distance": 128, "dense_act_fn": "gelu_new", "is_gated_act": True}
#: tiny sizes: 32×48 frames give 8×12 latents (the I2V twin's learned position embeddings are made for them)
TINY_HEIGHT, TINY_WIDTH, TINY_FRAMES = 32, 48, 9
#: what the twin's SentencePiece model is trained on (deterministic: one thread, fixed text)
_TOKENIZER_TEXT = ("a red kite over green hills", "a paper boat drifting down a stream", "a cat walks on a wall",
                   "the sample comes alive", "a golden retriever running along a beach at sunset",
                   "a steaming cup of coffee on a wooden table by a rainy window", "waves crash on black rocks")


def write_twin(folder: Path, *, variant: str = "2b", size: str = "tiny", seed: int = 0) -> Path:
    """Write the twin into ``folder`` (created) and return it; see the module docstring."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown CogVideoX twin variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if size not in ("tiny", "real"):
        raise ValueError(f"unknown twin size {size!r}; use 'tiny' or 'real'")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    sched = dict(SCHEDULER, snr_shift_scale=3.0 if variant == "2b" else 1.0)
    _json(out / "scheduler" / "scheduler_config.json", sched)
    _json(out / "model_index.json", {
        "_class_name": PIPELINE[variant], "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "CogVideoXDDIMScheduler"], "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5Tokenizer"], "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"]})
    (_tiny if size == "tiny" else _real)(out, variant, seed)
    (out / "vgen_studio.json").write_text(json.dumps(
        {"preset": f"cogvideox-{variant}", "twin": size, "seed": seed, "note": "Random weights: they produce noise."},
        indent=2))
    return out


def _json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _vae_config(variant: str, tiny: bool) -> dict[str, Any]:
    cfg: dict[str, Any] = {"scaling_factor": 1.15258426 if variant == "2b" else 0.7}
    if tiny:
        cfg.update(block_out_channels=(8, 16, 16), down_block_types=("CogVideoXDownBlock3D",) * 3,
                   up_block_types=("CogVideoXUpBlock3D",) * 3, layers_per_block=1, norm_num_groups=4,
                   # diffusers tiles at half these (24×20 px) and its tiled decode assembles exactly 32, 48 or 64 px
                   # only for these at the tiny VAE's 4× (the released 480×720 does the same at 8×)
                   sample_height=48, sample_width=40)
    return cfg


def _transformer_config(variant: str, tiny: bool) -> dict[str, Any]:
    cfg = dict(TRANSFORMER_REAL[variant])
    if tiny:
        lat_h, lat_w = TINY_HEIGHT // 4, TINY_WIDTH // 4
        cfg.update(num_attention_heads=2, attention_head_dim=16, num_layers=2, text_embed_dim=32, time_embed_dim=16,
                   sample_height=lat_h, sample_width=lat_w, sample_frames=TINY_FRAMES, max_text_seq_length=226)
        if variant == "1.5-5b":
            cfg["sample_frames"] = TINY_FRAMES + 4
    return cfg


def _tiny(out: Path, variant: str, seed: int) -> None:
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    tok = _write_tokenizer(out / "tokenizer")
    torch.manual_seed(seed)
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2,
                                 feed_forward_proj="gated-gelu", relative_attention_num_buckets=8,
                                 relative_attention_max_distance=16, pad_token_id=0, eos_token_id=1))
    t5.save_pretrained(out / "text_encoder")
    torch.manual_seed(seed + 1)
    transformer = CogVideoXTransformer3DModel(**_transformer_config(variant, True))
    _nonzero_(transformer, seed + 1)
    transformer.save_pretrained(out / "transformer")
    torch.manual_seed(seed + 2)
    AutoencoderKLCogVideoX(**_vae_config(variant, True)).save_pretrained(out / "vae")


def _write_tokenizer(folder: Path) -> Any:
    """The hub's tokenizer layout (``spiece.model``, ``tokenizer_config.json``, ``special_tokens_map.json``; no
    ``tokenizer.json``, as THUDM's repos), so transformers converts it from SentencePiece as it does the real one;
    a 48-piece unigram model trained here. Returns the loaded tokenizer."""
    import io

    import sentencepiece as spm
    from transformers import T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_TOKENIZER_TEXT * 10), model_writer=buf, vocab_size=48,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1,
                                   character_coverage=1.0, minloglevel=2)
    (folder / "spiece.model").write_bytes(buf.getvalue())
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    _json(folder / "special_tokens_map.json", special)
    _json(folder / "tokenizer_config.json", dict(special, model_max_length=226, extra_ids=0,
                                                 tokenizer_class="T5Tokenizer"))
    return T5Tokenizer.from_pretrained(folder)


def _nonzero_(model: torch.nn.Module, seed: int) -> None:
    """diffusers zero-initialises some output layers (adaptive norms, the final projection): give every parameter
    small random values so that a twin's frames depend on the prompt, the seed and every step."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def _real(out: Path, variant: str, seed: int) -> None:
    """Released dimensions, streamed: each model is built on the meta device for its tensor names and shapes, and
    random bf16 tensors are written shard by shard (no full model in memory)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    _write_tokenizer(out / "tokenizer")
    t5_config = T5Config(**T5_REAL)
    t5_config.save_pretrained(out / "text_encoder")
    with torch.device("meta"):
        t5 = T5EncoderModel(t5_config)
    _stream(t5, out / "text_encoder", "model", seed, torch.bfloat16)
    tcfg = _transformer_config(variant, False)
    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**tcfg)
    _json(out / "transformer" / "config.json", dict(transformer.config, _class_name="CogVideoXTransformer3DModel"))
    _stream(transformer, out / "transformer", "diffusion_pytorch_model", seed + 1, torch.bfloat16)
    with torch.device("meta"):
        vae = AutoencoderKLCogVideoX(**_vae_config(variant, False))
    _json(out / "vae" / "config.json", dict(vae.config, _class_name="AutoencoderKLCogVideoX"))
    _stream(vae, out / "vae", "diffusion_pytorch_model", seed + 2, torch.bfloat16)


def _stream(model: torch.nn.Module, folder: Path, stem: str, seed: int, dtype: torch.dtype,
            shard_bytes: int = 5 * 2**30) -> None:
    """Random tensors of ``model``'s state-dict shapes into ``stem``-named safetensors shards (+ an index when
    there is more than one), as the hub shards them."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    width = torch.tensor([], dtype=dtype).element_size()
    parts: list[tuple[Path, list[str]]] = []
    shard: dict[str, torch.Tensor] = {}
    size = total = 0

    def flush() -> None:
        path = folder / f".{stem}-part{len(parts) + 1}.safetensors"
        save_file(shard, str(path), metadata={"format": "pt"})
        parts.append((path, list(shard)))
        shard.clear()

    for name, t in model.state_dict().items():
        n = t.numel() * width
        if shard and size + n > shard_bytes:
            flush()
            size = 0
        shard[name] = (torch.randn(t.shape, generator=gen) * 0.02).to(dtype)
        size += n
        total += n
    flush()
    if len(parts) == 1:
        parts[0][0].rename(folder / f"{stem}.safetensors")
        return
    index: dict[str, str] = {}
    for i, (path, names) in enumerate(parts, 1):
        final = f"{stem}-{i:05d}-of-{len(parts):05d}.safetensors"
        path.rename(folder / final)
        index.update({k: final for k in names})
    _json(folder / f"{stem}.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": index})
