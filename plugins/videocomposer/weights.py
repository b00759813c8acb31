"""Where VideoComposer's weights are and how the worker loads its UNet (worker side, torch).

A VGen folder holds the composition UNet ``.pth`` (``tft2v_vcomposer_*.pth`` or ``videolcm_vcomposer_*.pth``, or the
one ``vgen_studio.json`` names) beside ``open_clip_pytorch_model.bin`` and ``v2-1_512-ema-pruned.ckpt``; a path to the
``.pth`` itself works too. The UNet is cached per file like every other component (:mod:`sdk.ml.components`), so the
VAE and the OpenCLIP encoders are shared with TF-T2V and VideoLCM jobs on the same ``iic/tf-t2v`` files.
"""
from __future__ import annotations

from typing import Any

import torch

from sdk.ml.checkpoints import load_state_dict
from sdk.ml.weights_layout import Weights, detect_vgen_folder

from plugins.videocomposer.unet import CompositionUNet, load_composition_unet

T2V_WEIGHTS = "videocomposer.tft2v_vcomposer"
LCM_WEIGHTS = "videocomposer.videolcm_vcomposer"
KIND = "vgen-composition-unet"


def detect_weights(path: Any, *, lcm: bool = False) -> Weights:
    """The VGen folder at ``path`` (``lcm``: prefer ``videolcm_vcomposer*`` files where several UNets share it).
    Raises :class:`~sdk.errors.WeightsMissing` naming the missing file and the fix."""
    prefixes = ("videolcm_vcomposer",) if lcm else ("tft2v_vcomposer",)
    return detect_vgen_folder(path, what="VideoComposer", weights_id=LCM_WEIGHTS if lcm else T2V_WEIGHTS,
                              prefixes=prefixes)


def load_unet(ctx: Any, w: Weights, device: torch.device, dtype: torch.dtype) -> CompositionUNet:
    """The composition UNet of ``w`` in ``dtype`` on ``device``, eval mode, from ``ctx.models`` (a second job on the
    same file pays no load). Its config comes from ``vgen_studio.json`` when given, else from the file's shapes."""
    from sdk.ml import components

    assert w.unet is not None
    unet_file, config = w.unet, w.config()
    return components.unet(ctx, unet_file, dtype, device,
                           lambda: load_composition_unet(load_state_dict(unet_file), config, source=unet_file.name),
                           kind=KIND, config=config)
