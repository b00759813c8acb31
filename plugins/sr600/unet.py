"""The SR600 UNet (vgen-notes §9) on diffusers' ``UNet3DConditionModel`` (worker side, torch).

VGen's ``UNetSD_SR600`` is the ModelScope/T2V 3D-UNet core (same 1480 tensors, same names) with three differences
in its forward pass, all reproduced here without renaming a single parameter:

- every downsampling conv pads (2, 1) instead of (1, 1): two rows top and bottom, one column left and right, so an
  even height ``h`` becomes ``h/2 + 1`` (720p's 90 latent rows: 90 → 46 → 24 → 13);
- every upsampler takes nearest ×2 and then drops the first and last row before its conv (13 → 26 → 24,
  24 → 48 → 46, 46 → 92 → 90), so each level meets its skip connection again;
- the first two decoder layers (VGen's ``output_blocks`` 0 and 1) scale the first half of the backbone channels by
  1.1 and 1.2 and damp the centre (lowest frequencies) of the skip features' 2-D spectrum to 0.6 and 0.4 (a
  FreeU-style re-weighting; diffusers' own FreeU applies one pair per whole up block, so it is not used).

A height works when the three levels meet again: latent rows ≡ 2 (mod 8) (90 for 720p; 10, 18, 26 … at test
sizes) and latent columns a multiple of 8 (the width keeps the usual stride-2 geometry);
:func:`plugins.sr600.params.check_frame_size` refuses other sizes when a job is queued. ``x_lr`` (VGen's unused
low-resolution input) and fps conditioning do not exist.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from diffusers import UNet3DConditionModel
from diffusers.utils.torch_utils import fourier_filter

from sdk.errors import IncompatibleCheckpoint
from sdk.ml.convert import KeyMap, infer_unet3d_config


#: VGen's downsample conv padding (rows, columns)
DOWN_PADDING = (2, 1)
#: (backbone gain on the first half of the channels, centre-of-spectrum scale of the skip) of decoder layers 0, 1
SKIP_REWEIGHT = ((1.1, 0.6), (1.2, 0.4))


class CroppingUpsample(torch.nn.Module):
    """Nearest ×2, drop the first and last row, then the 3×3 conv. Holds the diffusers upsampler's ``conv`` under
    the same name, so the state dict is unchanged."""

    def __init__(self, conv: torch.nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        # diffusers passes the skip's size when the input is not a power-of-two multiple; the crop decides it here
        x = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
        return self.conv(x[..., 1:-1, :])


def _reweight_hook(half: int, gain: float, scale: float):
    """Forward pre-hook for a decoder resnet whose input is ``cat([backbone (2·half channels), skip])``."""
    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x, *rest = args
        c = 2 * half
        backbone, skip = x[:, :c], x[:, c:]
        backbone = torch.cat([backbone[:, :half] * gain, backbone[:, half:]], dim=1)
        return (torch.cat([backbone, fourier_filter(skip, threshold=1, scale=scale)], dim=1), *rest)

    return hook


class SR600UNet(UNet3DConditionModel):
    """``UNet3DConditionModel`` with VGen's SR600 geometry and decoder re-weighting (see the module docstring).
    Built with the same kwargs as ``UNet3DConditionModel``; its state dict has the same keys."""

    def __init__(self, **unet_kwargs: Any) -> None:
        super().__init__(**unet_kwargs)
        for block in self.down_blocks:
            for down in block.downsamplers or []:
                down.conv.padding = DOWN_PADDING  # Conv2d reads .padding on every call
        for block in self.up_blocks:
            if block.upsamplers is not None:
                block.upsamplers = torch.nn.ModuleList(CroppingUpsample(u.conv) for u in block.upsamplers)
        # VGen's output blocks 0 and 1 are the first two layers of diffusers' first up block (layers_per_block ≥ 1);
        # their backbone input is the block's width (the middle block's output, then the block's own)
        width = int(self.config["block_out_channels"][-1])
        first = self.up_blocks[0]
        for layer, (gain, scale) in enumerate(SKIP_REWEIGHT[:len(first.resnets)]):
            first.resnets[layer].register_forward_pre_hook(_reweight_hook(width // 2, gain, scale))

    def unet_config(self) -> dict[str, Any]:
        """Constructor kwargs (JSON-able) that rebuild this model: ``SR600UNet(**cfg)``."""
        keep = set(inspect.signature(UNet3DConditionModel.__init__).parameters)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(self.config).items()
                if k in keep and not k.startswith("_") and k != "self"}


def keymap(model: UNet3DConditionModel) -> KeyMap:
    """VGen ↔ diffusers names: exactly ModelScope T2V's (``UNetSD_SR600`` has the same tensors)."""
    return KeyMap.for_model(model)


def infer_sr600_config(sd: Mapping[str, Any]) -> dict[str, Any]:
    """``SR600UNet`` kwargs from the shapes of a VGen SR600 state dict (values: tensors or shapes)."""
    cfg = infer_unet3d_config(sd)
    if cfg["in_channels"] != 4:
        raise IncompatibleCheckpoint(
            f"This UNet's first conv takes {cfg['in_channels']} channels; SR600's takes the 4 latent channels.",
            hint="Give sr_step_110000_ema.pth (the SR600 UNet), not a TF-T2V/I2VGen checkpoint.")
    return cfg


def load_sr600_unet(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *,
                    source: str = "SR600 UNet checkpoint") -> SR600UNet:
    """Build an :class:`SR600UNet` (config from ``config`` or the shapes) and strictly load a VGen state dict."""
    from sdk.ml.checkpoints import empty_model, load_into

    cfg = dict(config) if config else infer_sr600_config(sd)
    cfg = {k: v for k, v in cfg.items() if k in inspect.signature(UNet3DConditionModel.__init__).parameters}
    model = empty_model(lambda: SR600UNet(**cfg))
    load_into(model, keymap(model).vgen_to_diffusers(sd), source=source)
    return model.eval()


def vgen_state_dict(model: SR600UNet) -> dict[str, torch.Tensor]:
    """The model's weights with VGen names and shapes (as ``sr_step_110000_ema.pth`` holds them)."""
    return keymap(model).diffusers_to_vgen(model.state_dict())


def tiny_config() -> dict[str, Any]:
    """:data:`sdk.ml.tiny.UNET_TINY` widened to the real model's four levels (three padded downsamples, three
    cropping upsamplers, attention on the top three), so the tiny twin exercises the whole SR600 geometry."""
    from sdk.ml.tiny import UNET_TINY

    return dict(UNET_TINY, block_out_channels=(32, 32, 64, 64),
                down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
                up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3)


def tiny_sr600_unet(seed: int = 0) -> SR600UNet:
    """The tiny SR600 UNet (:func:`tiny_config`), every parameter seeded."""
    from sdk.ml.tiny import randomize_

    return randomize_(SR600UNet(**tiny_config()), seed + 1).eval()
