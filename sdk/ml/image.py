"""Input images and the OpenCLIP ViT-H-14 image embedding as VGen uses them (vgen-notes §3.1, §3.2).

- :func:`open_image` reads any image PIL reads (PNG, JPEG, WebP, BMP, TIFF, GIF; RGBA, greyscale, palette, CMYK)
  as RGB, with EXIF orientation applied and transparency composited onto white.
- :func:`center_crop_wide` is VGen's ``CenterCropWide``: scale so the short side fits (BOX filter), centre crop.
- :class:`ImageEncoder` holds a transformers ``CLIPVisionModelWithProjection``; ``encode`` gives the pooled,
  projected, un-normalised embedding (``open_clip``'s ``encode_image``; diffusers' ``image_embeds``). It is read
  from an open_clip checkpoint's ``visual.*`` keys or from a diffusers ``image_encoder/`` folder.
- :func:`encode_image_latent` runs the VAE encoder (posterior sample, as VGen, from a seeded CPU generator).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.ml.checkpoints import empty_model, find_weights_file, load_into, load_state_dict, read_json, require_file

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: open_clip head width by vision width (it is not in the weights): ViT-H-14 uses 80, the B/L ViTs 64.
OPEN_CLIP_VISION_HEAD_WIDTH = {1280: 80}
_RES = re.compile(r"^visual\.transformer\.resblocks\.(\d+)\.(.+)$")
_RES_NAMES = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
              "attn.out_proj": "self_attn.out_proj"}
IMAGE_HINT = "Use a PNG, JPEG, WebP, BMP or TIFF image file."


# -- image files ------------------------------------------------------------------------------------------------------
def open_image(path: str | Path, *, field: str = "image"):
    """Read an image file as an RGB ``PIL.Image``; unreadable files raise :class:`InvalidRequest` naming ``field``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InvalidRequest(f"The image {str(path)!r} does not exist.", hint="Pick an existing image file.", field=field)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(f"{path.name} is not a readable image ({str(exc)[:120]}).", hint=IMAGE_HINT,
                             field=field) from None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels become white, not whatever colour happens to be stored under alpha 0.
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray((arr / peak * 255).round().clip(0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def center_crop_wide(image, size: tuple[int, int]):
    """VGen's ``CenterCropWide((W, H))``: scale the image so its short side (relative to the target) fits with a BOX
    filter, then crop the centre ``W×H``. (The scaled size never falls below the target, so no border appears.)"""
    from PIL import Image

    tw, th = int(size[0]), int(size[1])
    scale = min(image.width / tw, image.height / th)
    nw, nh = max(tw, round(image.width // scale)), max(th, round(image.height // scale))
    image = image.resize((nw, nh), resample=Image.BOX)
    x1, y1 = (nw - tw) // 2, (nh - th) // 2
    return image.crop((x1, y1, x1 + tw, y1 + th))


def pil_to_tensor(image, *, normalize: bool = True) -> torch.Tensor:
    """RGB ``PIL.Image`` → float ``[1,3,H,W]`` in [-1, 1] (``normalize``) or [0, 1]."""
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return x * 2 - 1 if normalize else x


def clip_pixel_values(image, size: int, mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD, *,
                      crop_width: int | None = None) -> torch.Tensor:
    """The CLIP input for the image embedding, as I2VGen-XL prepares it: centre-crop-wide to a square of side
    ``crop_width`` (the video width; defaults to the short side), bilinear resize to ``size``, CLIP mean/std."""
    from PIL import Image

    side = crop_width or min(image.size)
    square = center_crop_wide(image, (side, side)).resize((size, size), Image.BILINEAR)
    x = pil_to_tensor(square, normalize=False)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


# -- the image encoder -------------------------------------------------------------------------------------------------
class ImageEncoder(torch.nn.Module):
    """``encode(pixel_values) -> [B, E]`` (pooled, projected, not normalised). ``image_size``, ``mean``, ``std``
    say how to prepare the pixels (:func:`clip_pixel_values`)."""

    def __init__(self, model: torch.nn.Module, image_size: int, mean: tuple[float, ...] = CLIP_MEAN,
                 std: tuple[float, ...] = CLIP_STD) -> None:
        super().__init__()
        self.model = model.eval()
        self.image_size = int(image_size)
        self.mean, self.std = tuple(mean), tuple(std)

    @property
    def width(self) -> int:
        return int(self.model.config.projection_dim)

    @torch.inference_mode()
    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        p = next(self.model.parameters())
        return self.model(pixel_values=pixel_values.to(p.device, p.dtype)).image_embeds

    def embed(self, image, *, crop_width: int | None = None) -> torch.Tensor:
        """A PIL image → ``[1, E]``."""
        return self.encode(clip_pixel_values(image, self.image_size, self.mean, self.std, crop_width=crop_width))


def openclip_vision_config(sd: Mapping[str, Any], *, head_width: int | None = None):
    """``CLIPVisionConfig`` from an open_clip state dict's ``visual.*`` shapes (exact GELU, LN eps 1e-5).
    The head count is not in the weights: ``head_width`` (default: 80 for width 1280 = ViT-H-14, else 64)."""
    from transformers import CLIPVisionConfig

    def shape(key: str) -> tuple[int, ...]:
        if key not in sd:
            raise IncompatibleCheckpoint(f"This open_clip checkpoint has no vision tower: key {key!r} is missing.",
                                         hint="Give open_clip_pytorch_model.bin of OpenCLIP ViT-H-14 (laion2b_s32b_b79k).")
        v = sd[key]
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    width, _, patch, _ = shape("visual.conv1.weight")
    grid = round((shape("visual.positional_embedding")[0] - 1) ** 0.5)
    layers = 1 + max(int(m.group(1)) for k in sd if (m := _RES.match(k)))
    hw = head_width or OPEN_CLIP_VISION_HEAD_WIDTH.get(width, 64)
    return CLIPVisionConfig(
        hidden_size=width, intermediate_size=shape("visual.transformer.resblocks.0.mlp.c_fc.weight")[0],
        num_hidden_layers=layers, num_attention_heads=max(1, width // hw), image_size=grid * patch, patch_size=patch,
        projection_dim=shape("visual.proj")[1], hidden_act="gelu", layer_norm_eps=1e-5, num_channels=3,
    )


def openclip_to_clip_vision(sd: Mapping[str, torch.Tensor], prefix: str = "vision_model.") -> dict[str, torch.Tensor]:
    """Rename an open_clip ``visual.*`` tower to ``CLIPVisionModelWithProjection`` keys (``in_proj`` split into
    q|k|v row blocks; ``proj`` transposed into ``visual_projection``)."""
    out = {f"{prefix}embeddings.class_embedding": sd["visual.class_embedding"],
           f"{prefix}embeddings.position_embedding.weight": sd["visual.positional_embedding"],
           f"{prefix}embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
           f"{prefix}pre_layrnorm.weight": sd["visual.ln_pre.weight"], f"{prefix}pre_layrnorm.bias": sd["visual.ln_pre.bias"],
           f"{prefix}post_layernorm.weight": sd["visual.ln_post.weight"],
           f"{prefix}post_layernorm.bias": sd["visual.ln_post.bias"],
           "visual_projection.weight": sd["visual.proj"].t().contiguous()}
    for k, v in sd.items():
        m = _RES.match(k)
        if not m:
            continue
        base = f"{prefix}encoder.layers.{int(m.group(1))}."
        rest = m.group(2)
        if rest.startswith("attn.in_proj_"):
            kind = rest.rsplit("_", 1)[1]
            for name, part in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                out[f"{base}self_attn.{name}.{kind}"] = part
            continue
        head, _, tail = rest.rpartition(".")
        if head not in _RES_NAMES:
            raise IncompatibleCheckpoint(f"Unknown open_clip vision key {k!r}.", hint="Give an OpenCLIP ViT checkpoint.")
        out[f"{base}{_RES_NAMES[head]}.{tail}"] = v
    return out


def _fill_position_ids(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    own = model.state_dict()
    for name, buf in model.named_buffers():
        if name in own and name not in sd and name.endswith("position_ids"):
            sd[name] = buf
    return {k: v for k, v in sd.items() if k in own or not k.endswith("position_ids")}


def clip_vision_from_openclip_state(sd: Mapping[str, torch.Tensor], *, head_width: int | None = None,
                                    source: str = "open_clip checkpoint"):
    """A ``CLIPVisionModelWithProjection`` holding an open_clip vision tower."""
    from transformers import CLIPVisionModelWithProjection

    cfg = openclip_vision_config(sd, head_width=head_width)
    model = empty_model(lambda: CLIPVisionModelWithProjection(cfg))
    load_into(model, _fill_position_ids(model, openclip_to_clip_vision(sd)), source=source)
    return model.eval()


def load_openclip_image_encoder(path: str | Path, *, head_width: int | None = None) -> ImageEncoder:
    """From ``open_clip_pytorch_model.bin`` (a full CLIP state dict; the ``visual.*`` keys are used)."""
    path = require_file(Path(path), "OpenCLIP image encoder file")
    sd = load_state_dict(path, strip=("module.",))
    model = clip_vision_from_openclip_state(sd, head_width=head_width, source=path.name)
    return ImageEncoder(model, model.config.image_size)


def load_image_encoder_folder(folder: str | Path, feature_extractor: str | Path | None = None) -> ImageEncoder:
    """From a diffusers ``image_encoder/`` folder (``CLIPVisionModelWithProjection``) and, when given, the
    ``feature_extractor/`` folder (its ``image_mean``/``image_std`` and crop size)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = require_file(Path(folder), "image encoder folder")
    cfg = CLIPVisionConfig(**{k: v for k, v in read_json(folder / "config.json").items()
                              if k not in ("architectures", "transformers_version", "model_type")})
    model = empty_model(lambda: CLIPVisionModelWithProjection(cfg))
    sd = load_state_dict(find_weights_file(folder, ("model", "pytorch_model")), strip=())
    load_into(model, _fill_position_ids(model, dict(sd)), source=f"{folder.name}/ weights")
    size, mean, std = cfg.image_size, CLIP_MEAN, CLIP_STD
    fe = Path(feature_extractor) / "preprocessor_config.json" if feature_extractor else None
    if fe is not None and fe.exists():
        pre = read_json(fe)
        crop = pre.get("crop_size", size)
        size = int(crop.get("height", size)) if isinstance(crop, dict) else int(crop)
        mean, std = tuple(pre.get("image_mean", mean)), tuple(pre.get("image_std", std))
    return ImageEncoder(model.eval(), size, mean, std)


def write_image_encoder_folder(model: torch.nn.Module, folder: str | Path, *, feature_extractor: str | Path | None = None) -> Path:
    """Save a ``CLIPVisionModelWithProjection`` as a diffusers ``image_encoder/`` folder (config + safetensors) and,
    when asked, a ``feature_extractor/`` ``CLIPImageProcessor`` config for its image size."""
    import json

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.pop("transformers_version", None)
    cfg["architectures"] = ["CLIPVisionModelWithProjection"]
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    if feature_extractor is not None:
        fe = Path(feature_extractor)
        fe.mkdir(parents=True, exist_ok=True)
        size = int(model.config.image_size)
        (fe / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "CLIPImageProcessor", "crop_size": {"height": size, "width": size},
            "size": {"shortest_edge": size}, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "do_rescale": True, "do_convert_rgb": True, "rescale_factor": 1 / 255, "resample": 3,
            "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}, indent=2))
    return folder


# -- VAE encoding -------------------------------------------------------------------------------------------------------
@torch.inference_mode()
def encode_image_latent(vae: torch.nn.Module, pixels: torch.Tensor, generator: torch.Generator | None = None, *,
                        sample: bool = True) -> torch.Tensor:
    """``[B,3,H,W]`` pixels in [-1, 1] → scaled latents ``[B,4,H/8,W/8]`` (× ``scaling_factor``).

    ``sample`` draws from the posterior as VGen does, its noise from ``generator`` (a CPU generator, so a seed
    means the same on every device; without one the global RNG is used, as diffusers' pipelines do); otherwise
    the posterior mean."""
    p = next(vae.parameters())
    # offloaded (memory modes): the VAE is on the CPU until encode() moves it to the hook's execution device
    device = getattr(getattr(vae, "_hf_hook", None), "execution_device", None) or p.device
    dist = vae.encode(pixels.to(device, p.dtype)).latent_dist
    if sample:
        noise = torch.randn(dist.mean.shape, generator=generator, dtype=dist.mean.dtype).to(dist.mean.device)
        latent = dist.mean + dist.std * noise
    else:
        latent = dist.mode()
    return latent * vae.config["scaling_factor"]


def read_video_frames(path: Path, *, what: str = "training video") -> tuple[np.ndarray, float]:
    """All frames (uint8 [F,H,W,3]) and the frame rate of a video (imageio-ffmpeg).

    Raises :class:`InvalidRequest` (field ``motion``) naming ``what`` when the file cannot be decoded."""
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(str(path))
        fps = float(reader.get_meta_data().get("fps") or 8.0)
        frames = np.stack([np.asarray(f)[..., :3] for f in reader])
        reader.close()
    except (OSError, ValueError, RuntimeError, IndexError) as exc:
        raise InvalidRequest(f"Cannot read {what} {Path(path).name}: {exc}", hint="Re-encode it as H.264 .mp4.",
                             field="motion") from None
    return frames, fps
