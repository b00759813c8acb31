"""Deprecated: the old home of the concat-conditioned UNet and the VGen folder type. Kept for one release.

Use :mod:`sdk.ml.concat_unet` (``ConcatUNet``, ``load_concat_unet``, ``infer_concat_unet_config``,
``tiny_concat_unet``) and :mod:`sdk.ml.weights_layout` (``Weights``, ``detect_vgen_folder``); models shared between
methods load through :mod:`sdk.ml.components`.
"""
from __future__ import annotations

import warnings
from typing import Any

from sdk.ml.concat_unet import (CONCAT_DIM, IMAGE_BRANCH, ConcatUNet, infer_concat_unet_config, keymap,
                                load_concat_unet, tiny_concat_unet, vgen_state_dict, write_tiny_vgen_folder)
from sdk.ml.weights_layout import OPEN_CLIP_FILE, VAE_FILE, Weights, detect_vgen_folder

__all__ = ["CONCAT_DIM", "IMAGE_BRANCH", "OPEN_CLIP_FILE", "VAE_FILE", "TFT2VUNet", "VGenFolder", "detect_vgen_folder",
           "infer_tft2v_config", "keymap", "load_encoders", "load_tft2v_unet", "tiny_tft2v_unet", "vgen_state_dict",
           "write_tiny_vgen_folder", "ConcatUNet", "Weights", "infer_concat_unet_config", "load_concat_unet",
           "tiny_concat_unet"]

warnings.warn("sdk.ml.tft2v is deprecated: use sdk.ml.concat_unet (the UNet) and sdk.ml.weights_layout (Weights)",
              DeprecationWarning, stacklevel=2)

TFT2VUNet = ConcatUNet
VGenFolder = Weights  # fields: format, root, unet (was: root, unet)
infer_tft2v_config = infer_concat_unet_config
load_tft2v_unet = load_concat_unet
tiny_tft2v_unet = tiny_concat_unet


def load_encoders(folder: Weights) -> dict[str, Any]:
    """The SD 2.1 VAE and the OpenCLIP-H text encoder of a VGen folder, loaded afresh (not cached: generators use
    :func:`sdk.ml.components.vae` and :func:`sdk.ml.components.text_encoder`)."""
    from sdk.ml.text import load_openclip_text_encoder
    from sdk.ml.vae import load_ldm_vae

    return {"vae": load_ldm_vae(folder.vae), "text_encoder": load_openclip_text_encoder(folder.open_clip)}
