"""Shared ML building blocks (torch, diffusers, transformers, open_clip). Imported only in the worker and tests.

- :mod:`sdk.ml.checkpoints` — safe loading of .safetensors/.pth/.bin/.ckpt, strict loading with clear errors
- :mod:`sdk.ml.convert` — VGen/ModelScope UNet key names ↔ diffusers ``UNet3DConditionModel``
- :mod:`sdk.ml.text` — OpenCLIP ViT-H-14 penultimate text features as a transformers ``CLIPTextModel``
- :mod:`sdk.ml.vae` — the SD 2.1 VAE from a diffusers folder or the LDM checkpoint
- :mod:`sdk.ml.image` — input images (any common format, VGen's centre-crop-wide fit), the OpenCLIP ViT-H image
  embedding from open_clip or diffusers ``image_encoder/`` weights, VAE encoding of an image
- :mod:`sdk.ml.schedulers` — scheduler presets per checkpoint family
- :mod:`sdk.ml.device` — device and precision choice, ``place`` (cast tensor by tensor, then :mod:`sdk.ml.accel`)
- :mod:`sdk.ml.accel` — the CPU fast path every plugin gets through ``place`` (channels-last, compile + freezing),
  the worker's environment (malloc tuning)
- :mod:`sdk.ml.memory` — memory modes per component role; :mod:`sdk.ml.preflight` — will it fit
- :mod:`sdk.ml.process_memory` — RSS figures, giving back the pages of memory-mapped weights, malloc trim
- :mod:`sdk.ml.tiny`, :mod:`sdk.ml.twins` — random-weight twins: tiny in memory, any size (real) streamed to disk
- :mod:`sdk.ml.preview`, :mod:`sdk.ml.guidance`
"""
from __future__ import annotations
