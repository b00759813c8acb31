"""HiGen's UNet (VGen's ``UNetSD_HiGen``, vgen-notes §8) on diffusers' ``UNet3DConditionModel`` (in 4, out 4).

What it adds to the ModelScope core, in VGen's order of use in ``forward``:

1. the time embedding (``time_embed``), repeated per frame, plus two per-frame cue embeddings:
   ``msim_embedding`` (motion: VGen's sinusoid of the motion value → Linear, SiLU, Linear; ``F − 1`` values are
   linearly interpolated to ``F``) and ``asim_embedding`` (appearance: each frame's vector of similarities to all
   frames → Linear, SiLU, Linear). The appearance width (32 in the released weights) is the frame count it takes;
2. the context: ``context_embedding`` maps the 77 text tokens to the width of the time embedding, then 16 learned
   tokens go through ``depth`` blocks whose attn1 *and* attn2 both attend to the mapped text (diffusers'
   ``BasicTransformerBlock`` with ``only_cross_attention``: pre-LayerNorm, GEGLU feed-forward, the same names as
   VGen's), then ``output_mapping`` back to the cross-attention width. The UNet's context is these 16 tokens;
3. ``img_embedding`` (zero-initialised 3×3 conv) of the spatial prior latent ``[B, 4, h, w]``, added after
   ``conv_in`` (``input_blocks.0.0``) and broadcast over the frames; no prior means zeros (the conv's bias is added,
   as VGen adds ``img_embedding(zeros)`` in stage 1);
4. "WoImg" temporal modules: every temporal conv and temporal transformer, ``transformer_in`` included, is the
   identity when the clip has one frame (VGen multiplies their update by 0; skipping it is exactly that).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from diffusers import UNet3DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.resnet import TemporalConvLayer
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel, \
    TransformerTemporalModelOutput
from diffusers.models.unets.unet_3d_condition import UNet3DConditionOutput

from sdk.errors import IncompatibleCheckpoint
from sdk.ml.convert import KeyMap, infer_unet3d_config

#: top-level VGen modules HiGen adds to the core (names kept on both sides)
BRANCHES = ("context_embedding", "img_embedding", "msim_embedding", "asim_embedding")
CONTEXT_HEADS = 8  # VGen hard-codes 8 heads in TextContextCrossTransformerMultiLayer
CORE = ("input_blocks.", "middle_block.", "output_blocks.", "out.", "time_embed.")


def vgen_sinusoid(values: torch.Tensor, dim: int) -> torch.Tensor:
    """VGen's ``sinusoidal_embedding`` (cos half, then sin half; ``10000^(−i/half)`` by ``pow``), float32."""
    half = dim // 2
    v = values.float()
    freqs = torch.pow(10000, -torch.arange(half, device=v.device).to(v).div(half))
    x = torch.outer(v, freqs)
    x = torch.cat([torch.cos(x), torch.sin(x)], dim=1)
    return torch.cat([x, torch.zeros_like(x[:, :1])], dim=1) if dim % 2 else x


class TextContextTransformer(torch.nn.Module):
    """VGen's ``TextContextCrossTransformerMultiLayer``: ``[B, 77, text_dim]`` → ``[B, num_tokens, out_dim]``."""

    def __init__(self, text_dim: int, width: int, out_dim: int, depth: int, num_tokens: int,
                 heads: int = CONTEXT_HEADS) -> None:
        super().__init__()
        self.context_transformer = torch.nn.ModuleList([
            BasicTransformerBlock(width, heads, width // heads, cross_attention_dim=width, activation_fn="geglu",
                                  only_cross_attention=True) for _ in range(depth)])
        self.input_mapping = torch.nn.Linear(text_dim, width)
        self.output_mapping = torch.nn.Linear(width, out_dim)
        self.tokens = torch.nn.Parameter(width ** -0.5 * torch.randn(1, num_tokens, width))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        text = self.input_mapping(text)
        out = self.tokens.expand(text.shape[0], -1, -1)
        for block in self.context_transformer:
            out = block(out, encoder_hidden_states=text)
        return self.output_mapping(out)


class _TemporalConvWoImg(TemporalConvLayer):
    """VGen's ``TemporalConvBlock_v2WoImg``: identity on a single frame."""

    def forward(self, hidden_states: torch.Tensor, num_frames: int = 1) -> torch.Tensor:  # type: ignore[override]
        return hidden_states if num_frames == 1 else super().forward(hidden_states, num_frames=num_frames)


class _TemporalTransformerWoImg(TransformerTemporalModel):
    """VGen's ``TemporalTransformerWoImg``: identity on a single frame."""

    def forward(self, hidden_states: torch.Tensor, *args: Any, num_frames: int = 1,  # type: ignore[override]
                return_dict: bool = True, **kwargs: Any):
        if num_frames == 1:
            return TransformerTemporalModelOutput(sample=hidden_states) if return_dict else (hidden_states,)
        return super().forward(hidden_states, *args, num_frames=num_frames, return_dict=return_dict, **kwargs)


class HiGenUNet(UNet3DConditionModel):
    """``forward(sample, timestep, encoder_hidden_states, spatial_prior=None, motion=None, appearance=None)``.

    ``sample`` ``[B, 4, F, h, w]``; ``encoder_hidden_states`` the 77 text tokens ``[B, 77, text_dim]``;
    ``spatial_prior`` ``[B or 1, 4, h, w]`` (None: zeros); ``motion`` ``[B or 1, M]`` motion values with M = F − 1
    (interpolated to F) or F (None: zeros); ``appearance`` ``[B or 1, F, appearance_dim]`` (None: ones).
    """

    def __init__(self, *, text_dim: int = 1024, num_context_tokens: int = 16, context_depth: int = 2,
                 context_heads: int = CONTEXT_HEADS, appearance_dim: int = 32, **unet_kwargs: Any) -> None:
        unet_kwargs.setdefault("in_channels", 4)
        super().__init__(**unet_kwargs)
        self.register_to_config(text_dim=int(text_dim), num_context_tokens=int(num_context_tokens),
                                context_depth=int(context_depth), context_heads=int(context_heads),
                                appearance_dim=int(appearance_dim))
        dim = int(self.config["block_out_channels"][0])
        embed = dim * 4  # diffusers' time_embed_dim, VGen's embed_dim
        self.context_embedding = TextContextTransformer(text_dim, embed, int(self.config["cross_attention_dim"]),
                                                        context_depth, num_context_tokens, context_heads)
        self.img_embedding = torch.nn.Conv2d(int(self.config["in_channels"]), dim, 3, padding=1)
        self.msim_embedding = torch.nn.Sequential(torch.nn.Linear(dim, embed), torch.nn.SiLU(),
                                                  torch.nn.Linear(embed, embed))
        self.asim_embedding = torch.nn.Sequential(torch.nn.Linear(appearance_dim, embed), torch.nn.SiLU(),
                                                  torch.nn.Linear(embed, embed))
        for m in (self.img_embedding, self.msim_embedding[-1], self.asim_embedding[-1]):  # zero-init, as VGen
            torch.nn.init.zeros_(m.weight)
            torch.nn.init.zeros_(m.bias)
        for m in self.modules():  # same parameters and names; only single-frame behaviour changes
            if type(m) is TemporalConvLayer:
                m.__class__ = _TemporalConvWoImg
            elif type(m) is TransformerTemporalModel:
                m.__class__ = _TemporalTransformerWoImg

    @property
    def latent_channels(self) -> int:
        return int(self.config["in_channels"])

    @property
    def appearance_dim(self) -> int:
        """Frames the appearance cue describes (its input width): the frame count stage 2 must have."""
        return int(self.config["appearance_dim"])

    # -- HiGen's extra embeddings -------------------------------------------------------------------------------
    def motion_embedding(self, motion: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor:
        """``[batch·frames, embed]`` from motion values ``[B or 1, M]`` (M = frames − 1 is interpolated)."""
        dim = int(self.config["block_out_channels"][0])
        if motion is None:
            motion = torch.zeros(1, max(frames - 1, 1), device=self.device)
        motion = motion.reshape(motion.shape[0], -1).to(self.device).expand(batch, -1)
        m = motion.shape[1]
        if m != frames and (frames == 1 or m != frames - 1):
            raise ValueError(f"motion has {m} values per sample; give {frames} or {frames - 1} for {frames} frames")
        emb = vgen_sinusoid(motion.flatten(), dim).view(batch, m, dim)
        if m != frames:
            emb = F.interpolate(emb.transpose(1, 2), size=frames, mode="linear").transpose(1, 2)
        return self.msim_embedding(emb.to(self.dtype)).flatten(0, 1)

    def appearance_embedding(self, appearance: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor:
        """``[batch·frames, embed]`` from per-frame similarity vectors ``[B or 1, frames, appearance_dim]``."""
        if appearance is None:
            appearance = torch.ones(1, frames, self.appearance_dim, device=self.device)
        if appearance.ndim != 3 or appearance.shape[1] != frames or appearance.shape[2] != self.appearance_dim:
            raise ValueError(f"appearance has shape {list(appearance.shape)}; it must be [B, {frames}, "
                             f"{self.appearance_dim}]")
        appearance = appearance.to(self.device, self.dtype).expand(batch, -1, -1)
        return self.asim_embedding(appearance).flatten(0, 1)

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,  # type: ignore[override]
                spatial_prior: torch.Tensor | None = None, motion: torch.Tensor | None = None,
                appearance: torch.Tensor | None = None, return_dict: bool = True, **kwargs: Any):
        b, c, f, h, w = sample.shape
        t = timestep if torch.is_tensor(timestep) else torch.tensor([timestep], device=sample.device)
        t = (t[None] if t.ndim == 0 else t).to(sample.device).expand(b)
        emb = self.time_embedding(self.time_proj(t).to(self.dtype)).repeat_interleave(f, dim=0)
        emb = emb + self.motion_embedding(motion, b, f) + self.appearance_embedding(appearance, b, f)
        context = self.context_embedding(encoder_hidden_states.to(self.dtype)).repeat_interleave(f, dim=0)

        x = sample.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        x = self.conv_in(x)
        prior = sample.new_zeros(1, c, h, w) if spatial_prior is None else spatial_prior.to(sample.dtype)
        x = x + self.img_embedding(prior).expand(b, -1, -1, -1).repeat_interleave(f, dim=0)
        x = self.transformer_in(x, num_frames=f, return_dict=False)[0]

        skips: tuple[torch.Tensor, ...] = (x,)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                x, res = block(hidden_states=x, temb=emb, encoder_hidden_states=context, num_frames=f)
            else:
                x, res = block(hidden_states=x, temb=emb, num_frames=f)
            skips += res
        x = self.mid_block(x, emb, encoder_hidden_states=context, num_frames=f)

        factor = 2 ** self.num_upsamplers
        pass_size = any(s % factor for s in (h, w))  # as diffusers: odd sizes pass each skip's size up
        for i, block in enumerate(self.up_blocks):
            res, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
            size = skips[-1].shape[2:] if pass_size and i < len(self.up_blocks) - 1 else None
            if getattr(block, "has_cross_attention", False):
                x = block(hidden_states=x, temb=emb, res_hidden_states_tuple=res, encoder_hidden_states=context,
                          upsample_size=size, num_frames=f)
            else:
                x = block(hidden_states=x, temb=emb, res_hidden_states_tuple=res, upsample_size=size, num_frames=f)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        out = x.reshape(b, f, *x.shape[1:]).permute(0, 2, 1, 3, 4)
        return UNet3DConditionOutput(sample=out) if return_dict else (out,)

    def unet_config(self) -> dict[str, Any]:
        """Constructor kwargs (JSON-able) that rebuild this model: ``HiGenUNet(**cfg)``."""
        import inspect

        keep = set(inspect.signature(UNet3DConditionModel.__init__).parameters) | {
            "text_dim", "num_context_tokens", "context_depth", "context_heads", "appearance_dim"}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(self.config).items()
                if k in keep and not k.startswith("_") and k != "self"}


# -- VGen names ---------------------------------------------------------------------------------------------------
def keymap(model: HiGenUNet) -> KeyMap:
    """VGen ↔ diffusers names: the core as ModelScope T2V; HiGen's branches keep VGen's names."""
    return KeyMap.for_model(model, passthrough=tuple(p + "." for p in BRANCHES))


def vgen_state_dict(model: HiGenUNet) -> dict[str, torch.Tensor]:
    """The model's weights with VGen's names and shapes (as ``cvpr2024.t2v.e003.non_ema_0725000.pth`` holds them)."""
    return keymap(model).diffusers_to_vgen(model.state_dict())


def infer_higen_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``HiGenUNet`` kwargs from the shapes of a VGen HiGen state dict (values: tensors or shapes). Raises
    :class:`IncompatibleCheckpoint` when a HiGen branch is missing (naming the key and the fix)."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in sd:
            raise IncompatibleCheckpoint(f"This is not a HiGen UNet: key {key!r} is missing.",
                                         hint="Use VGen's HiGen checkpoint (cvpr2024.t2v.e003.non_ema_0725000.pth "
                                              "from ModelScope iic/HiGen).")
        v = sd[key]
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    ctx = "context_embedding."
    width, text_dim = shape(ctx + "input_mapping.weight")
    cross = shape(ctx + "output_mapping.weight")[0]
    cfg = infer_unet3d_config({k: v for k, v in sd.items() if k.startswith(CORE)})
    cfg["cross_attention_dim"] = cross
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith(ctx + "context_transformer."))
    cfg.update(text_dim=text_dim, num_context_tokens=shape(ctx + "tokens")[1], context_depth=depth,
               context_heads=CONTEXT_HEADS, appearance_dim=shape("asim_embedding.0.weight")[1])
    for key in ("img_embedding.weight", "msim_embedding.0.weight"):
        shape(key)
    if width != 4 * cfg["block_out_channels"][0]:
        raise IncompatibleCheckpoint(f"context_embedding is {width} wide; HiGen's is 4 × the UNet width "
                                     f"({4 * cfg['block_out_channels'][0]}).",
                                     hint="This is not a VGen HiGen checkpoint.")
    return cfg


def load_higen_unet(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *,
                    source: str = "HiGen UNet checkpoint") -> HiGenUNet:
    """Build a :class:`HiGenUNet` (config inferred from shapes unless given) and strictly load the VGen state dict
    ``sd``: a key missing, unexpected or mis-shaped raises :class:`IncompatibleCheckpoint` naming it."""
    from sdk.ml.checkpoints import empty_model, load_into

    cfg = dict(config) if config else infer_higen_config(sd)
    model = empty_model(lambda: HiGenUNet(**cfg))
    load_into(model, keymap(model).vgen_to_diffusers(sd), source=source)
    return model.eval()


# -- tiny and real configs ----------------------------------------------------------------------------------------
def tiny_config(appearance_dim: int = 32) -> dict[str, Any]:
    """The tiny core of :data:`sdk.ml.tiny.UNET_TINY` (4 input channels) with HiGen's branches at tiny width."""
    from sdk.ml.tiny import TEXT_WIDTH, UNET_TINY

    return {**UNET_TINY, "in_channels": 4, "text_dim": TEXT_WIDTH, "num_context_tokens": 16, "context_depth": 2,
            "context_heads": CONTEXT_HEADS, "appearance_dim": appearance_dim}


def real_config() -> dict[str, Any]:
    """The released HiGen UNet (higen_train.yaml's ``UNet``: dim 320, mult 1-2-4-4, 2 res blocks, 16 tokens)."""
    return dict(in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
                up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3, attention_head_dim=64,
                cross_attention_dim=1024, norm_num_groups=32, norm_eps=1e-5, text_dim=1024, num_context_tokens=16,
                context_depth=2, context_heads=CONTEXT_HEADS, appearance_dim=32)


def tiny_higen_unet(seed: int = 0, *, appearance_dim: int = 32) -> HiGenUNet:
    """A tiny HiGen UNet with every parameter drawn from ``seed`` (zero-initialised branches included)."""
    from sdk.ml.tiny import randomize_

    return randomize_(HiGenUNet(**tiny_config(appearance_dim)), seed + 1).eval()


def appearance_matrix(frames: int, factor: float) -> torch.Tensor:
    """VGen's appearance cue for ``frames`` frames: the symmetric Toeplitz ``1 − factor·|i − j| / (F − 1)``,
    ``[1, F, F]`` (row i: frame i's similarity to every frame)."""
    if frames == 1:
        return torch.ones(1, 1, 1)
    i = torch.arange(frames, dtype=torch.float64)
    return (1 - factor * (i[:, None] - i[None, :]).abs() / (frames - 1)).float()[None]

