"""Weights at the door: a weights file or folder is checked against what a generator reads before it is registered
or queued — reading headers only (:mod:`sdk.inspect_weights`), never running code, never importing torch.

Three checks, in order; the first problem found is named:

1. Every checkpoint file in the folder (two levels deep) is readable: no pickle that would run code, no truncated
   safetensors or zip, no legacy pickle.
2. The folder has the parts the generator's loader needs, in one of the formats it reads: a diffusers pipeline of
   the right ``_class_name`` with each component's config and weights, or a VGen folder (the UNet ``.pth`` the
   loader would pick, ``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt``), or a checkpoint folder
   (``meta.json`` kind + ``*.safetensors``).
3. Keys and shapes fit the generator's :class:`~sdk.specs.WeightsLayout`: the UNet's top-level key prefixes and its
   first conv's input channels; shapes consistent with each other and across files (UNet width, cross-attention
   width = text-encoder width, latent channels = VAE latent channels); for UNets of the released width, the tensor
   count under each prefix equals the released UNet's. The loader stays the final, exact check.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from sdk.errors import IncompatibleCheckpoint, InvalidRequest, WeightsMissing
from sdk.inspect_weights import TensorInfo, read_tensors
from sdk.specs import WeightsLayout, WeightsSpec

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry

CHECKPOINT_SUFFIXES = (".pth", ".ckpt", ".bin", ".safetensors", ".pt")
# the same names as sdk.ml.weights_layout (which imports torch)
OPEN_CLIP_FILE = "open_clip_pytorch_model.bin"
VAE_FILE = "v2-1_512-ema-pruned.ckpt"
STUDIO_FILE = "vgen_studio.json"
UNET_CORE = ("input_blocks", "middle_block", "output_blocks", "out", "time_embed")
DIFFUSERS_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
MAX_DEPTH = 2
FIX_HINT = ("Create a tiny test copy with `vgen models make-tiny ID DIR`, or download the real weights with "
            "`vgen models fetch ID`.")
_XATTN_VGEN = re.compile(r"^(input_blocks\.[1-9]\d*|middle_block|output_blocks\.\d+)\.1\.transformer_blocks\.\d+"
                         r"\.attn2\.to_k\.weight$")
_XATTN_DIFFUSERS = re.compile(r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.attentions\.\d+\.transformer_blocks"
                              r"\.\d+\.attn2\.to_k\.weight$")
_cache: dict[tuple[str, int, int], dict[str, TensorInfo]] = {}


def weights_layouts(registry: "PluginRegistry", spec: Any) -> list[WeightsLayout]:
    """What the weights of ``spec`` (a GeneratorSpec, TrainerSpec or WeightsSpec) may look like: the layout of its
    default weights (or its own), then those of every WeightsSpec of the same method."""
    own = [spec] if isinstance(spec, WeightsSpec) else [registry.weights[d] for d in [spec.default_weights]
                                                        if d in registry.weights]
    specs = own + [w for w in registry.weights.values() if w.method == spec.method]
    return list(dict.fromkeys(w.layout for w in specs if w.layout is not None))


def tensors(path: Path) -> dict[str, TensorInfo]:
    """:func:`sdk.inspect_weights.read_tensors`, remembered per (file, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _cache:
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = read_tensors(path)
    return _cache[key]


def checkpoint_files(path: Path) -> list[Path]:
    """The checkpoint files at ``path``: the file itself, or those in the folder up to two levels deep."""
    if path.is_file():
        return [path]
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        for p in sorted(folder.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir() and depth < MAX_DEPTH:
                walk(p, depth + 1)
            elif p.is_file() and p.name.lower().endswith(CHECKPOINT_SUFFIXES):
                found.append(p)
    walk(path, 1)
    return found


def check_weights(path: str | Path, layouts: Iterable[WeightsLayout], *, what: str) -> str:
    """Check ``path`` (a weights folder or file) for a generator whose weights have one of ``layouts``.

    ``what`` names the generator in messages. With no layouts only the files' integrity is checked. Returns the
    format found: ``"diffusers"``, ``"vgen"``, ``"checkpoint"`` or ``"files"``. Raises
    :class:`IncompatibleCheckpoint` (wrong model, code in a pickle, damaged file), :class:`WeightsMissing` (a part is
    missing) or :class:`InvalidRequest` naming the first problem.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsMissing(f"No weights at {path}: the path does not exist.", hint="Check the path.")
    for f in checkpoint_files(path):
        tensors(f)
    layouts = list(dict.fromkeys(layouts))
    if not layouts:
        return "files"
    errors: list[Exception] = []
    for layout in layouts:
        try:
            return _check(path, layout, what)
        except (IncompatibleCheckpoint, WeightsMissing, InvalidRequest) as exc:
            errors.append(exc)
    raise errors[0]


def _check(path: Path, layout: WeightsLayout, what: str) -> str:
    if path.is_file():
        if path.suffix.lower() != ".pth":
            raise WeightsMissing(f"{path} is neither a weights folder nor a VGen UNet .pth.",
                                 hint="Give the weights folder, or the UNet .pth with its encoder files beside it.")
        _check_vgen(path.parent, path, layout, what)
        return "vgen"
    if (path / "model_index.json").exists() or (path / "unet").is_dir():
        _check_diffusers(path, layout, what)
        return "diffusers"
    if (path / "meta.json").is_file() and any(path.glob("*.safetensors")):
        _check_checkpoint_folder(path, layout, what)
        return "checkpoint"
    _check_vgen(path, None, layout, what)
    return "vgen"


def _misfit(source: str, what: str, problem: str, hint: str = "") -> IncompatibleCheckpoint:
    return IncompatibleCheckpoint(f"{source} does not fit {what}: {problem}.",
                                  hint=hint or f"The file is for another model or version; pick weights made for {what}.")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IncompatibleCheckpoint(f"{path} is not valid JSON ({exc}).",
                                     hint="Download or copy the weights folder again.") from None
    if not isinstance(data, dict):
        raise IncompatibleCheckpoint(f"{path} does not hold a JSON object.", hint="Download or copy it again.")
    return data


def _strip(sd: Mapping[str, TensorInfo], prefixes: Sequence[str]) -> dict[str, TensorInfo]:
    out = {}
    for k, v in sd.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return out


def _shape(sd: Mapping[str, TensorInfo], key: str, source: str, what: str, missing: str) -> tuple[int, ...]:
    if key not in sd:
        raise _misfit(source, what, f"key {key!r} is missing ({missing})")
    return sd[key].shape


def _expect(sd: Mapping[str, TensorInfo], key: str, want: tuple[int, ...], source: str, what: str) -> None:
    got = sd[key].shape
    if got != want:
        raise _misfit(source, what, f"key {key!r} has shape {list(got)} but the rest of the file implies {list(want)}")


def _cross_width(sd: Mapping[str, TensorInfo], pattern: re.Pattern[str], source: str, what: str) -> int:
    keys = sorted(k for k in sd if pattern.match(k))
    if not keys:
        raise _misfit(source, what, "it has no text cross-attention (no spatial attn2.to_k weights)")
    width = sd[keys[0]].shape[-1]
    for k in keys:
        if len(sd[k].shape) != 2 or sd[k].shape[-1] != width:
            raise _misfit(source, what, f"key {k!r} has shape {list(sd[k].shape)}; the other cross-attentions "
                                        f"take {width}-wide text features")
    return width


# -- VGen folder ---------------------------------------------------------------------------------------------------
def _pick_unet(root: Path, layout: WeightsLayout, what: str) -> Path:
    studio = _read_json(root / STUDIO_FILE) if (root / STUDIO_FILE).is_file() else {}
    if studio.get("unet"):
        return root / str(studio["unet"])
    pths = sorted(p for p in root.glob("*.pth") if p.name not in (OPEN_CLIP_FILE, VAE_FILE))
    if len(pths) > 1 and layout.unet_files:
        pths = [p for p in pths if p.name.lower().startswith(layout.unet_files)] or pths
    if not pths:
        raise WeightsMissing(f"{root} holds neither a diffusers pipeline (model_index.json, unet/ …) nor a VGen UNet "
                             f".pth for {what}.", hint=FIX_HINT)
    if len(pths) > 1:
        raise InvalidRequest(f"{root} holds several UNet files ({', '.join(p.name for p in pths)}).",
                             hint=f"Name the one to use in {STUDIO_FILE} ({{\"unet\": \"file.pth\"}}), or point to "
                                  "the file.", field="weights")
    return pths[0]


def _check_vgen(root: Path, unet: Path | None, layout: WeightsLayout, what: str) -> None:
    unet = unet or _pick_unet(root, layout, what)
    missing = [n for n in (unet.name, OPEN_CLIP_FILE, VAE_FILE) if not (root / n).is_file()]
    if missing:
        raise WeightsMissing(f"The VGen weights folder {root} lacks {', '.join(missing)}.", hint=FIX_HINT)
    for f in (unet, root / OPEN_CLIP_FILE, root / VAE_FILE):
        tensors(f)  # files beside a given .pth were not scanned yet
    latent, context = _check_vgen_unet(_strip(tensors(unet), ("module.", "model.diffusion_model.")), unet.name,
                                       layout, what)
    _check_open_clip(_strip(tensors(root / OPEN_CLIP_FILE), ("module.",)), context, layout, what)
    vae = tensors(root / VAE_FILE)
    _check_ldm_vae({k[len("first_stage_model."):]: v for k, v in vae.items() if k.startswith("first_stage_model.")}
                   or vae, latent, what)


def _check_vgen_unet(sd: dict[str, TensorInfo], source: str, layout: WeightsLayout, what: str) -> tuple[int, int]:
    """(latent channels, cross-attention width) of a VGen UNet state dict that fits ``layout``."""
    kind = "it is not a VGen/ModelScope UNet"
    conv_in = _shape(sd, "input_blocks.0.0.weight", source, what, kind)
    out = _shape(sd, "out.2.weight", source, what, kind)
    temb = _shape(sd, "time_embed.0.weight", source, what, kind)
    if len(conv_in) != 4:
        raise _misfit(source, what, f"key 'input_blocks.0.0.weight' has shape {list(conv_in)}; {kind}")
    width, channels = conv_in[0], conv_in[1]
    if channels != layout.unet_in_channels:
        raise _misfit(source, what, f"its first conv (input_blocks.0.0.weight) takes {channels} input channels; "
                                    f"{what} takes {layout.unet_in_channels}")
    prefixes = Counter(k.split(".", 1)[0] for k in sd)
    for p in UNET_CORE + layout.unet_extra:
        if p not in prefixes:
            raise _misfit(source, what, f"it has no {p}.* keys")
    allowed = set(UNET_CORE) | set(layout.unet_extra) | set(layout.unet_optional)
    extra = next((k for k in sd if k.split(".", 1)[0] not in allowed), None)
    if extra is not None:
        raise _misfit(source, what, f"unexpected key {extra!r}")
    if len(out) != 4:
        raise _misfit(source, what, f"key 'out.2.weight' has shape {list(out)}; {kind}")
    _expect(sd, "out.2.weight", (out[0], width, 3, 3), source, what)
    _expect(sd, "time_embed.0.weight", (temb[0], width), source, what)
    context = _cross_width(sd, _XATTN_VGEN, source, what)
    if width == layout.released_width and layout.released:
        for p, n in layout.released:
            if (prefixes.get(p, 0) or p not in layout.unet_optional) and prefixes.get(p, 0) != n:
                raise _misfit(source, what, f"it holds {prefixes.get(p, 0)} tensors under {p}.*; the released "
                                            f"UNet holds {n}")
    return out[0], context


def _check_open_clip(sd: dict[str, TensorInfo], context: int, layout: WeightsLayout, what: str) -> None:
    kind = "it is not an OpenCLIP model"
    for key in ("token_embedding.weight", "positional_embedding", "ln_final.weight"):
        _shape(sd, key, OPEN_CLIP_FILE, what, kind)
    width = sd["ln_final.weight"].shape[0]
    if width != context:
        raise _misfit(OPEN_CLIP_FILE, what, f"its text encoder is {width} wide but the UNet's cross-attention takes "
                                            f"{context}-wide text features",
                      hint="The UNet and the OpenCLIP file come from different models; keep a release's files together.")
    if layout.clip_visual and not any(k.startswith("visual.") for k in sd):
        raise _misfit(OPEN_CLIP_FILE, what, f"it lacks the image tower (visual.*) that {what} uses",
                      hint="Use the full open_clip_pytorch_model.bin of OpenCLIP ViT-H-14 (text and image towers).")


def _check_ldm_vae(sd: dict[str, TensorInfo], latent: int, what: str) -> None:
    for key in ("encoder.conv_in.weight", "decoder.conv_out.weight", "post_quant_conv.weight"):
        _shape(sd, key, VAE_FILE, what, "it is not a Stable Diffusion VAE (keys first_stage_model.*)")
    if sd["post_quant_conv.weight"].shape[0] != latent:
        raise _misfit(VAE_FILE, what, f"its latents have {sd['post_quant_conv.weight'].shape[0]} channels but the "
                                      f"UNet's have {latent}")


# -- diffusers folder ----------------------------------------------------------------------------------------------
def _component_weights(folder: Path, stems: Sequence[str], what: str) -> dict[str, TensorInfo]:
    for stem in stems:
        for name in (f"{stem}.safetensors", f"{stem}.safetensors.index.json", f"{stem}.bin", f"{stem}.bin.index.json"):
            f = folder / name
            if not f.is_file():
                continue
            if not name.endswith(".index.json"):
                return tensors(f)
            out: dict[str, TensorInfo] = {}
            for shard in dict.fromkeys(_read_json(f).get("weight_map", {}).values()):
                if not (folder / str(shard)).is_file():
                    raise WeightsMissing(f"{folder.name}/{shard} named in {name} is missing.", hint=FIX_HINT)
                out.update(tensors(folder / str(shard)))
            return out
    raise WeightsMissing(f"The diffusers weights folder {folder.parent} has no weights file in {folder.name}/ "
                         f"(looked for {', '.join(stems)}.safetensors/.bin).", hint=FIX_HINT)


def _check_diffusers(path: Path, layout: WeightsLayout, what: str) -> None:
    if not layout.diffusers_pipeline:
        raise IncompatibleCheckpoint(f"{path} is a diffusers folder, but {what} reads VGen-format weights only.",
                                     hint=f"Give the folder with the VGen UNet .pth, {OPEN_CLIP_FILE} and {VAE_FILE}.")
    index = _read_json(path / "model_index.json") if (path / "model_index.json").is_file() else {}
    cls = index.get("_class_name")
    if index and cls != layout.diffusers_pipeline:
        raise _misfit(f"The diffusers folder {path}", what, f"its model_index.json names {cls}; {what} reads "
                                                            f"{layout.diffusers_pipeline} folders")
    parts = [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[1]]
    missing = [p for p in (parts or DIFFUSERS_PARTS) if not (path / p).is_dir()]
    if missing:
        raise WeightsMissing(f"The diffusers weights folder {path} lacks {', '.join(p + '/' for p in missing)}.",
                             hint="The download is incomplete: " + FIX_HINT)
    configs = {p: _read_json(path / p / "config.json") for p in ("unet", "vae", "text_encoder", "image_encoder")
               if (path / p).is_dir()}
    if (path / "scheduler").is_dir() and not (path / "scheduler" / "scheduler_config.json").is_file():
        raise WeightsMissing(f"The diffusers weights folder {path} lacks scheduler/scheduler_config.json.",
                             hint=FIX_HINT)
    sds = {p: _component_weights(path / p, ("diffusion_pytorch_model",) if p in ("unet", "vae") else
                                 ("model", "pytorch_model"), what) for p in configs}
    unet, cfg = sds.get("unet", {}), configs.get("unet", {})
    if "unet" in sds:
        _check_diffusers_unet(unet, cfg, "unet/ weights", what)
        text = configs.get("text_encoder", {}).get("hidden_size")
        if text is not None and text != cfg.get("cross_attention_dim"):
            raise _misfit("text_encoder/", what, f"its hidden size {text} differs from the UNet's cross-attention "
                                                 f"width {cfg.get('cross_attention_dim')}")
        latent = configs.get("vae", {}).get("latent_channels")
        if latent is not None and latent != cfg.get("out_channels"):
            raise _misfit("vae/", what, f"its latents have {latent} channels but the UNet's have "
                                        f"{cfg.get('out_channels')}")


def _check_diffusers_unet(sd: dict[str, TensorInfo], cfg: Mapping[str, Any], source: str, what: str) -> None:
    try:
        width, out_ch, xattn = int(cfg["block_out_channels"][0]), int(cfg["out_channels"]), cfg["cross_attention_dim"]
    except (KeyError, TypeError, ValueError, IndexError):
        raise _misfit(source, what, "its config.json lacks block_out_channels, out_channels or "
                                    "cross_attention_dim") from None
    conv_in = _shape(sd, "conv_in.weight", source, what, "it is not a diffusers UNet")
    _shape(sd, "conv_out.weight", source, what, "it is not a diffusers UNet")
    if len(conv_in) != 4 or conv_in[0] != width:
        raise _misfit(source, what, f"key 'conv_in.weight' has shape {list(conv_in)} but config.json says the UNet "
                                    f"is {width} wide")
    _expect(sd, "conv_out.weight", (out_ch, width, 3, 3), source, what)
    got = _cross_width(sd, _XATTN_DIFFUSERS, source, what)
    if got != xattn:
        raise _misfit(source, what, f"its cross-attention takes {got}-wide features but config.json says {xattn}")


# -- checkpoint folder (a trained UNet with meta.json) ---------------------------------------------------------------
def _check_checkpoint_folder(path: Path, layout: WeightsLayout, what: str) -> None:
    meta = _read_json(path / "meta.json")
    kind = meta.get("kind")
    if kind not in layout.checkpoint_kinds:
        raise _misfit(f"The checkpoint folder {path}", what, f"its meta.json kind is {kind!r}; {what} reads "
                                                             + (", ".join(layout.checkpoint_kinds) or "no checkpoint folders"))
    files = sorted(path.glob("*.safetensors"))
    if len(files) != 1:
        raise InvalidRequest(f"The checkpoint folder {path} holds {len(files)} .safetensors files; it needs one.",
                             hint="Give the folder a trainer wrote, unchanged.", field="weights")
    cfg = meta.get("unet_config")
    if not isinstance(cfg, dict):
        raise _misfit(f"The checkpoint folder {path}", what, "its meta.json has no unet_config")
    sd = tensors(files[0])
    _check_diffusers_unet(sd, cfg, files[0].name, what)
    channels = sd["conv_in.weight"].shape[1]
    if channels != layout.unet_in_channels:
        raise _misfit(files[0].name, what, f"its first conv takes {channels} input channels; {what} takes "
                                           f"{layout.unet_in_channels}")
