"""The concat-conditioned 3D UNet (vgen-notes §7, §10, §11) that TF-T2V, VideoLCM, VideoComposer and HiGen share:
the ModelScope 3D-UNet core whose ``conv_in`` takes the 4 latent channels plus ``concat_dim`` condition channels
(8 for the released t2v checkpoints: STC-encoder features, all zero in text-to-video mode) and, optionally, the
``pre_image_condition`` branch that turns a CLIP image embedding (a style image) into extra context tokens appended
after the 77 text tokens. VideoLCM's t2v UNet is the same class without the image branch.

Also here: its VGen ↔ diffusers key map, the config inferred from a checkpoint's shapes, and its tiny twin (a complete
tiny VGen folder). Where the weights are is :class:`sdk.ml.weights_layout.Weights`.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Mapping

import torch
from diffusers import UNet3DConditionModel

from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.ml.convert import KeyMap, infer_unet3d_config
from sdk.ml.weights_layout import STUDIO_FILE

IMAGE_BRANCH = "pre_image_condition."
CONCAT_DIM = 8  # STC-encoder channels concatenated to the latent (zeros in t2v mode)


class ConcatUNet(UNet3DConditionModel):
    """``UNet3DConditionModel(in_channels=4 + 8)`` plus the optional style-image token branch.

    ``forward(sample, timestep, encoder_hidden_states, image_embeds=None)``: a 4-channel ``sample`` gets the 8 zero
    condition channels appended (VGen concatenates ``[x, concat]``); ``image_embeds`` ``[B, D]`` (CLIP image
    embedding; zeros for the unconditional branch) become ``num_image_tokens`` context tokens after the text.
    """

    def __init__(self, *, num_image_tokens: int = 0, image_embed_dim: int = 1024, image_hidden_dim: int | None = None,
                 concat_dim: int = CONCAT_DIM, **unet_kwargs: Any) -> None:
        unet_kwargs.setdefault("in_channels", 4 + concat_dim)
        super().__init__(**unet_kwargs)
        ctx = int(self.config["cross_attention_dim"])
        hidden = int(image_hidden_dim or ctx)
        self.register_to_config(num_image_tokens=int(num_image_tokens), image_embed_dim=int(image_embed_dim),
                                image_hidden_dim=hidden, concat_dim=int(concat_dim))
        self.pre_image_condition = (torch.nn.Sequential(torch.nn.Linear(image_embed_dim, hidden), torch.nn.SiLU(),
                                                        torch.nn.Linear(hidden, num_image_tokens * ctx))
                                    if num_image_tokens > 0 else None)

    @property
    def latent_channels(self) -> int:
        return int(self.config["in_channels"]) - int(self.config["concat_dim"])

    def image_tokens(self, image_embeds: torch.Tensor) -> torch.Tensor:
        if self.pre_image_condition is None:
            raise InvalidRequest("These weights have no style-image branch (pre_image_condition).",
                                 hint="Use TF-T2V weights for a style image, or leave the image out.", field="image")
        n, ctx = int(self.config["num_image_tokens"]), int(self.config["cross_attention_dim"])
        return self.pre_image_condition(image_embeds.to(self.dtype)).view(image_embeds.shape[0], n, ctx)

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,
                image_embeds: torch.Tensor | None = None, return_dict: bool = True, **kwargs: Any):  # type: ignore[override]
        concat = int(self.config["concat_dim"])
        if concat and sample.shape[1] == self.latent_channels:
            b, _, f, h, w = sample.shape
            sample = torch.cat([sample, sample.new_zeros(b, concat, f, h, w)], dim=1)
        if image_embeds is not None:
            encoder_hidden_states = torch.cat([encoder_hidden_states, self.image_tokens(image_embeds)], dim=1)
        return super().forward(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=return_dict,
                               **kwargs)

    def unet_config(self) -> dict[str, Any]:
        """Constructor kwargs (JSON-able) that rebuild this model: ``ConcatUNet(**cfg)``."""
        keep = set(inspect.signature(UNet3DConditionModel.__init__).parameters) | {
            "num_image_tokens", "image_embed_dim", "image_hidden_dim", "concat_dim"}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(self.config).items()
                if k in keep and not k.startswith("_") and k != "self"}


def keymap(model: ConcatUNet) -> KeyMap:
    """VGen ↔ diffusers names: the core as ModelScope T2V; ``pre_image_condition.*`` keeps its names."""
    return KeyMap.for_model(model, passthrough=(IMAGE_BRANCH,))


def infer_concat_unet_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``ConcatUNet`` kwargs from the shapes of a VGen TF-T2V/VideoLCM state dict (values: tensors or shapes)."""
    def shape(key: str) -> tuple[int, ...]:
        v = sd[key]
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    cfg = infer_unet3d_config(sd)
    if cfg["in_channels"] <= 4:
        raise IncompatibleCheckpoint(
            f"This UNet has a {cfg['in_channels']}-channel input conv; TF-T2V and VideoLCM have 12 (latent + 8).",
            hint="This looks like a plain T2V checkpoint: use the modelscope_t2v generator for it.")
    cfg["concat_dim"] = cfg.pop("in_channels") - cfg["out_channels"]
    cfg["in_channels"] = cfg["out_channels"] + cfg["concat_dim"]
    if IMAGE_BRANCH + "0.weight" in sd:
        hidden, embed = shape(IMAGE_BRANCH + "0.weight")
        cfg.update(num_image_tokens=shape(IMAGE_BRANCH + "2.weight")[0] // cfg["cross_attention_dim"],
                   image_embed_dim=embed, image_hidden_dim=hidden)
    return cfg


def load_concat_unet(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *,
                    source: str = "concat UNet checkpoint", vgen_names: bool = True) -> ConcatUNet:
    """Build a :class:`ConcatUNet` (config inferred from shapes unless given) and strictly load ``sd``
    (VGen names, or diffusers names with ``vgen_names=False``)."""
    from sdk.ml.checkpoints import empty_model, load_into

    cfg = dict(config) if config else infer_concat_unet_config(sd)
    model = empty_model(lambda: ConcatUNet(**cfg))
    load_into(model, keymap(model).vgen_to_diffusers(sd) if vgen_names else sd, source=source)
    return model.eval()


def vgen_state_dict(model: ConcatUNet) -> dict[str, torch.Tensor]:
    """The model's weights with VGen names and shapes (as the released ``.pth`` files hold them)."""
    return keymap(model).diffusers_to_vgen(model.state_dict())


# -- tiny twin ----------------------------------------------------------------------------------------------------
def tiny_concat_unet(seed: int = 0, *, num_image_tokens: int = 4) -> ConcatUNet:
    """The tiny core of :data:`sdk.ml.tiny.UNET_TINY` with 12 input channels (and the image branch if asked)."""
    from sdk.ml.tiny import TEXT_WIDTH, UNET_TINY, randomize_

    cfg = {k: v for k, v in UNET_TINY.items() if k != "in_channels"}
    model = ConcatUNet(num_image_tokens=num_image_tokens, image_embed_dim=TEXT_WIDTH, **cfg)
    return randomize_(model, seed + 1).eval()


def write_tiny_vgen_folder(dir: Path, unet_file: str, *, seed: int = 0, num_image_tokens: int = 4,
                           preset: str = "tft2v") -> Path:
    """A complete tiny VGen folder: ``unet_file`` (VGen names, ``{'state_dict', 'step'}``), the open_clip ``.bin``,
    the LDM VAE ``.ckpt`` and ``vgen_studio.json``. Tiny random weights produce noise."""
    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_vae, write_vgen_encoders

    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet = tiny_concat_unet(seed, num_image_tokens=num_image_tokens)
    torch.save({"state_dict": vgen_state_dict(unet), "step": 0}, out / unet_file)
    write_vgen_encoders(out, openclip_state_dict(tiny_openclip(seed)), tiny_vae(seed))
    note = {"tiny": True, "seed": seed, "preset": preset, "unet": unet_file,
            "note": "Tiny random weights: they produce noise."}
    (out / STUDIO_FILE).write_text(json.dumps(note, indent=2))
    return out
