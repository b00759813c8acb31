"""OpenCLIP ViT-H-14 text features as VGen uses them (numerics §4, rules 8–11).

Feature = penultimate resblock → ``ln_final`` over all 77 tokens, pad id 0, no attention mask. It is held as a
transformers ``CLIPTextModel`` with (layers − 1) layers, so ``last_hidden_state`` *is* the feature.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from sdk.errors import IncompatibleCheckpoint
from sdk.ml.checkpoints import empty_model, find_weights_file, load_into, load_state_dict, read_json, require_file

CONTEXT_LENGTH = 77
OPEN_CLIP_HEAD_WIDTH = 64
_RES = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$")
_RES_NAMES = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
              "attn.out_proj": "self_attn.out_proj"}


class TextEncoder(torch.nn.Module):
    """``encode(prompts) -> [B, 77, W]`` (the UNet context). ``tokenize(prompts) -> LongTensor [B, 77]``."""

    def __init__(self, model: torch.nn.Module, tokenize: Callable[[list[str]], torch.Tensor]) -> None:
        super().__init__()
        self.model = model.eval()
        self.tokenize = tokenize

    @property
    def width(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenize(list(prompts)).to(self.model.device)
        return self.model(input_ids=ids).last_hidden_state


# -- open_clip checkpoint → CLIPTextModel -------------------------------------------------------------------------
def openclip_text_config(sd: Mapping[str, Any], *, penultimate: bool = True):
    """``CLIPTextConfig`` inferred from an open_clip CLIP state dict (heads = width // 64, exact GELU, eps 1e-5)."""
    from transformers import CLIPTextConfig

    if "token_embedding.weight" not in sd or "positional_embedding" not in sd:
        raise IncompatibleCheckpoint("This is not an open_clip CLIP checkpoint: 'token_embedding.weight' or "
                                     "'positional_embedding' is missing.",
                                     hint="Give open_clip_pytorch_model.bin of OpenCLIP ViT-H-14 (laion2b_s32b_b79k).")
    vocab, width = tuple(sd["token_embedding.weight"].shape)
    ctx = int(sd["positional_embedding"].shape[0])
    layers = 1 + max(int(m.group(1)) for k in sd if (m := _RES.match(k)))
    inter = int(sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0])
    return CLIPTextConfig(
        vocab_size=vocab, hidden_size=width, intermediate_size=inter, num_hidden_layers=layers - 1 if penultimate else layers,
        num_attention_heads=max(1, width // OPEN_CLIP_HEAD_WIDTH), max_position_embeddings=ctx, hidden_act="gelu",
        layer_norm_eps=1e-5, projection_dim=int(sd["text_projection"].shape[1]) if "text_projection" in sd else width,
        pad_token_id=0, bos_token_id=49406, eos_token_id=49407,
    ), layers


def openclip_to_clip_text(sd: Mapping[str, torch.Tensor], num_layers: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """Rename the first ``num_layers`` resblocks of an open_clip text tower to ``CLIPTextModel`` keys
    (``in_proj`` split into q|k|v row blocks); visual tower, text_projection, logit_scale are ignored."""
    out = {f"{prefix}embeddings.token_embedding.weight": sd["token_embedding.weight"],
           f"{prefix}embeddings.position_embedding.weight": sd["positional_embedding"],
           f"{prefix}final_layer_norm.weight": sd["ln_final.weight"],
           f"{prefix}final_layer_norm.bias": sd["ln_final.bias"]}
    for k, v in sd.items():
        m = _RES.match(k)
        if not m or int(m.group(1)) >= num_layers:
            continue
        i, rest = int(m.group(1)), m.group(2)
        base = f"{prefix}encoder.layers.{i}."
        if rest.startswith("attn.in_proj_"):
            kind = rest.rsplit("_", 1)[1]  # weight | bias
            for name, part in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                out[f"{base}self_attn.{name}.{kind}"] = part
            continue
        head, _, tail = rest.rpartition(".")
        if head not in _RES_NAMES:
            raise IncompatibleCheckpoint(f"Unknown open_clip text key {k!r}.", hint="Give an OpenCLIP ViT checkpoint.")
        out[f"{base}{_RES_NAMES[head]}.{tail}"] = v
    return out


def clip_text_from_openclip_state(sd: Mapping[str, torch.Tensor], *, source: str = "open_clip checkpoint"):
    from transformers import CLIPTextModel

    cfg, _ = openclip_text_config(sd)
    model = empty_model(lambda: CLIPTextModel(cfg))
    prefix = "text_model." if any(k.startswith("text_model.") for k in model.state_dict()) else ""
    mapped = openclip_to_clip_text(sd, cfg.num_hidden_layers, prefix)
    _fill_buffers(model, mapped)
    load_into(model, mapped, source=source)
    return model.eval()


def _fill_buffers(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> None:
    for name, buf in model.named_buffers():
        if name in model.state_dict() and name not in sd and name.endswith("position_ids"):
            sd[name] = buf


def openclip_tokenizer() -> Callable[[list[str]], torch.Tensor]:
    """open_clip's own ViT-H-14 tokenizer (BPE vocab ships inside the package): SOT…EOT, pad 0, 77 tokens."""
    import open_clip

    tok = open_clip.get_tokenizer("ViT-H-14")
    return lambda prompts: tok(prompts, context_length=CONTEXT_LENGTH).long()


def load_openclip_text_encoder(path: str | Path) -> TextEncoder:
    """From ``open_clip_pytorch_model.bin`` (a full CLIP state dict)."""
    path = require_file(Path(path), "OpenCLIP text encoder file")
    sd = load_state_dict(path, strip=("module.",))
    return TextEncoder(clip_text_from_openclip_state(sd, source=path.name), openclip_tokenizer())


# -- transformers CLIPTextModel folder (diffusers layout) ---------------------------------------------------------
def load_clip_text_folder(folder: str | Path, *, skip_last_layers: int = 0):
    """A ``CLIPTextModel`` from a transformers folder. ``skip_last_layers=1`` drops the last layer, so that
    ``last_hidden_state`` is the penultimate layer through ``final_layer_norm`` (diffusers' ``clip_skip=1``, as
    ``I2VGenXLPipeline`` encodes prompts with a full 24-layer OpenCLIP-H text encoder)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = require_file(Path(folder), "text encoder folder")
    cfg = CLIPTextConfig(**{k: v for k, v in read_json(folder / "config.json").items()
                            if k not in ("architectures", "transformers_version", "model_type")})
    keep = cfg.num_hidden_layers - int(skip_last_layers)
    if keep < 1:
        raise IncompatibleCheckpoint(f"The text encoder in {str(folder)!r} has only {cfg.num_hidden_layers} layers.",
                                     hint="Give the full OpenCLIP-H text encoder of the pipeline.")
    cfg.num_hidden_layers = keep
    model = empty_model(lambda: CLIPTextModel(cfg))
    own = model.state_dict()
    sd = load_state_dict(find_weights_file(folder, ("model", "pytorch_model")), strip=())
    if not any(k.startswith("text_model.") for k in own):
        sd = {k.removeprefix("text_model."): v for k, v in sd.items()}
    if skip_last_layers:
        dropped = re.compile(r"encoder\.layers\.(\d+)\.")
        sd = {k: v for k, v in sd.items() if not ((m := dropped.search(k)) and int(m.group(1)) >= keep)}
    sd = {k: v for k, v in sd.items() if k in own or not k.endswith("position_ids")}
    _fill_buffers(model, sd)
    load_into(model, sd, source=f"{folder.name}/ weights")
    return model.eval()


def clip_tokenizer_ids(folder: str | Path) -> Callable[[list[str]], torch.Tensor]:
    """Token ids exactly as open_clip makes them (the padding the model was trained with), from a transformers
    tokenizer folder: a ``CLIPTokenizer`` built from the BPE tables alone (``vocab.json`` + ``merges.txt``, or the
    ``model`` of ``tokenizer.json``), padded with ``<|endoftext|>`` and then every padded id set to 0, no attention mask
    (numerics rule 10). The folder's special-token files are not read: real folders (SD 2, text-to-video-ms-1.7b,
    i2vgen-xl) declare pad_token "!" (id 0), which pads alike but would also cut every "!" of a prompt off as a
    special token (numerics §4, pitfall 2)."""
    from transformers import CLIPTokenizer

    folder = require_file(Path(folder), "tokenizer folder")
    vocab, merges = _bpe_tables(folder)
    tok = CLIPTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>", model_max_length=CONTEXT_LENGTH)

    def tokenize(prompts: list[str]) -> torch.Tensor:
        enc = tok(prompts, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True, return_tensors="pt")
        return enc.input_ids.masked_fill(enc.attention_mask == 0, 0).long()

    return tokenize


def _bpe_tables(folder: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The CLIP BPE vocabulary and merges of a tokenizer folder (slow-tokenizer files first, then tokenizer.json)."""
    if (folder / "vocab.json").exists() and (folder / "merges.txt").exists():
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        merges = [tuple(ln.split()) for ln in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
                  if ln and not ln.startswith("#version")]
        return vocab, merges  # type: ignore[return-value]
    if (folder / "tokenizer.json").exists():
        model = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("model") or {}
        if model.get("type") == "BPE" and model.get("vocab") and model.get("merges") is not None:
            merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in model["merges"]]
            return dict(model["vocab"]), merges  # type: ignore[return-value]
    raise IncompatibleCheckpoint(f"The tokenizer folder {str(folder)!r} has neither vocab.json + merges.txt nor a BPE "
                                 "tokenizer.json.", hint="Give the pipeline's tokenizer/ folder as downloaded.")


def load_diffusers_text_encoder(text_encoder_dir: str | Path, tokenizer_dir: str | Path, *,
                                skip_last_layers: int = 0) -> TextEncoder:
    return TextEncoder(load_clip_text_folder(text_encoder_dir, skip_last_layers=skip_last_layers),
                       clip_tokenizer_ids(tokenizer_dir))


# -- tokenizer files from open_clip's bundled BPE ------------------------------------------------------------------
#: ``tokenizer/tokenizer_config.json`` of ali-vilab/text-to-video-ms-1.7b (SD 2's, without its name_or_path: 755 bytes)
HUB_TOKENIZER_CONFIG: dict[str, Any] = {
    "add_prefix_space": False,
    "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", "lstrip": False, "normalized": True,
                  "rstrip": False, "single_word": False},
    "do_lower_case": True,
    "eos_token": {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False, "normalized": True,
                  "rstrip": False, "single_word": False},
    "errors": "replace",
    "model_max_length": CONTEXT_LENGTH,
    "pad_token": "<|endoftext|>",
    "special_tokens_map_file": "./special_tokens_map.json",
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False, "normalized": True,
                  "rstrip": False, "single_word": False},
}
#: its ``special_tokens_map.json`` (460 bytes): pad_token "!" (id 0), which transformers reads over the config's
HUB_SPECIAL_TOKENS_MAP: dict[str, Any] = {
    "bos_token": {"content": "<|startoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                  "single_word": False},
    "eos_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                  "single_word": False},
    "pad_token": "!",
    "unk_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                  "single_word": False},
}


def write_clip_tokenizer_files(folder: str | Path) -> Path:
    """Write a diffusers ``tokenizer/`` folder equal to text-to-video-ms-1.7b's (SD 2's): ``vocab.json`` and
    ``merges.txt`` of the CLIP BPE (derived from open_clip's bundled file, written as transformers saves them) and
    the hub's ``tokenizer_config.json`` / ``special_tokens_map.json``, so that transformers (and diffusers' own
    pipelines) pad with "!" = id 0, like open_clip."""
    from open_clip.tokenizer import SimpleTokenizer

    st = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): int(v) for k, v in st.encoder.items()}
    merges = sorted(st.bpe_ranks.items(), key=lambda kv: kv[1])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def dump(obj: Any, **kw: Any) -> str:
        return json.dumps(obj, indent=2, ensure_ascii=False, **kw) + "\n"

    (folder / "vocab.json").write_text(dump(vocab, sort_keys=True), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for (a, b), _ in merges), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(dump(HUB_TOKENIZER_CONFIG), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(dump(HUB_SPECIAL_TOKENS_MAP), encoding="utf-8")
    return folder
