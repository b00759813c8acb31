"""Where a method's weights are: :class:`Weights`, the one type every built-in generator and trainer detects.

Three formats:

- ``diffusers``: a pipeline folder (model_index.json, unet/, vae/, text_encoder/ …);
- ``vgen``: a UNet ``.pth`` (or the one ``vgen_studio.json`` names) beside ``open_clip_pytorch_model.bin`` and
  ``v2-1_512-ema-pruned.ckpt``; a file path is taken as the UNet ``.pth`` with its encoders beside it;
- ``student`` (any checkpoint whose UNet file lives apart from its encoders, e.g. a VideoLCM student): ``unet`` is
  that file, ``root`` the VGen folder holding the VAE and text encoder, ``unet_config`` the UNet's constructor kwargs.

:func:`detect_weights` tells diffusers from VGen folders (ModelScope T2V, I2VGen-XL); :func:`detect_vgen_folder`
finds the VGen UNet of VGen-only methods (TF-T2V, VideoLCM, DreamVideo), choosing by file-name prefix where several
methods' checkpoints share one folder (``iic/tf-t2v``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from sdk.errors import InvalidRequest, WeightsMissing
from sdk.ml.checkpoints import FETCH_HINT, load_state_dict, read_json

OPEN_CLIP_FILE = "open_clip_pytorch_model.bin"
VAE_FILE = "v2-1_512-ema-pruned.ckpt"
KNOWN_NON_UNET = {OPEN_CLIP_FILE, VAE_FILE}
STUDIO_FILE = "vgen_studio.json"


@dataclass
class Weights:
    """Detected weights: ``format`` (``diffusers`` | ``vgen`` | ``student``), ``root`` (the pipeline folder, or the
    VGen folder holding the encoders), ``unet`` (vgen/student: the UNet file) and ``unet_config`` (the UNet's
    constructor kwargs when they are not in ``vgen_studio.json``: a student's, from its ``meta.json``)."""

    format: str
    root: Path
    unet: Path | None = None
    unet_config: dict[str, Any] | None = None

    @property
    def open_clip(self) -> Path:
        """The OpenCLIP ViT-H checkpoint (text and vision towers) of a VGen folder."""
        return self.root / OPEN_CLIP_FILE

    @property
    def vae(self) -> Path:
        """The VAE: ``vae/`` of a diffusers folder, else the SD 2.1 LDM checkpoint of the VGen folder."""
        return self.root / "vae" if self.format == "diffusers" else self.root / VAE_FILE

    def studio(self) -> dict[str, Any]:
        """``vgen_studio.json`` beside the weights (preset, UNet file and config of tiny twins), or {}."""
        return read_studio(self.root)

    def config(self) -> dict[str, Any] | None:
        """The UNet's constructor kwargs if known (``unet_config``, else ``vgen_studio.json``'s), else None: the
        loader infers them from the checkpoint's shapes."""
        return self.unet_config if self.unet_config is not None else self.studio().get("unet_config")

    def cache_key(self, method: str, device: torch.device, dtype: torch.dtype) -> str:
        """A key for a plugin that caches its own dict of components (built-in plugins cache per component:
        :mod:`sdk.ml.components`)."""
        return f"{method}|{self.root.resolve()}|{self.unet.name if self.unet else ''}|{device}|{dtype}"


def read_studio(root: Path) -> dict[str, Any]:
    f = root / STUDIO_FILE
    return json.loads(f.read_text()) if f.exists() else {}


def detect_weights(path: Path | None, *, what: str, weights_id: str, diffusers_parts: Iterable[str],
                   vgen_unet: str = "a VGen UNet .pth") -> Weights:
    """Which format ``path`` holds.

    Parameters: ``what`` the method's name in messages; ``weights_id`` its installable id (named in the hint);
    ``diffusers_parts`` the sub-folders a diffusers folder must have; ``vgen_unet`` how messages name the UNet file.
    Raises :class:`WeightsMissing` naming what is missing and the fix, :class:`InvalidRequest` when several UNet
    files leave the choice open."""
    path, unet = locate(path, what=what, weights_id=weights_id)
    if unet is not None:
        return _vgen(path, unet)
    if (path / "model_index.json").exists() or (path / "unet").is_dir():
        missing = [p for p in diffusers_parts if not (path / p).is_dir()]
        if missing:
            raise WeightsMissing(f"The diffusers weights folder {str(path)!r} lacks {', '.join(missing)}/.",
                                 hint="The download is incomplete: " + FETCH_HINT)
        return Weights("diffusers", path)
    studio = read_studio(path)
    if studio.get("unet"):
        return _vgen(path, path / studio["unet"])
    pths = sorted(p for p in path.glob("*.pth") if p.name not in KNOWN_NON_UNET)
    if not pths:
        raise WeightsMissing(f"{str(path)!r} holds neither a diffusers pipeline (model_index.json, unet/ …) nor "
                             f"{vgen_unet}.", hint=FETCH_HINT)
    if len(pths) > 1:
        raise InvalidRequest(f"{str(path)!r} holds several UNet files ({', '.join(p.name for p in pths)}).",
                             hint=f"Name the one to use in {STUDIO_FILE} ({{\"unet\": \"file.pth\"}}), or point to the file.",
                             field="weights")
    return _vgen(path, pths[0])


def locate(path: Path | str | None, *, what: str, weights_id: str) -> tuple[Path, Path | None]:
    """``path`` checked to exist: (the folder, None), or (its folder, the file) for a VGen UNet ``.pth``.

    Raises :class:`WeightsMissing` for no path (naming ``vgen models make-tiny/fetch weights_id``), a path that does
    not exist, or a file that is not a ``.pth``."""
    if path is None:
        raise WeightsMissing(f"No weights were given for {what} and none are installed.",
                             hint=f"Run `vgen models make-tiny {weights_id}` for a tiny test copy, or "
                                  f"`vgen models fetch {weights_id}` for the real weights.")
    path = Path(path)
    if not path.exists():
        raise WeightsMissing(f"The weights folder {str(path)!r} does not exist.", hint=FETCH_HINT)
    if path.is_file():
        if path.suffix != ".pth":
            raise WeightsMissing(f"{str(path)!r} is not a weights folder nor a VGen UNet .pth.", hint=FETCH_HINT)
        return path.parent, path
    return path, None


def require_vgen_files(root: Path, unet: Path) -> None:
    """Raises :class:`WeightsMissing` naming whichever of the UNet and the two encoder files ``root`` lacks."""
    missing = [n for n in (unet.name, OPEN_CLIP_FILE, VAE_FILE) if not (root / n).exists()]
    if missing:
        raise WeightsMissing(f"The VGen weights folder {str(root)!r} lacks {', '.join(missing)}.", hint=FETCH_HINT)


def _vgen(root: Path, unet: Path) -> Weights:
    require_vgen_files(root, unet)
    return Weights("vgen", root, unet)


def detect_vgen_folder(path: Path | str | None, *, what: str, weights_id: str, prefixes: Iterable[str] = ()) -> Weights:
    """Find the UNet ``.pth`` and its encoders in ``path`` (a folder, or the ``.pth`` itself).

    Several ``.pth`` files: the one ``vgen_studio.json`` names, else the only one whose name starts with one of
    ``prefixes`` (the real checkpoints of several methods share ``iic/tf-t2v``). Raises :class:`WeightsMissing`
    or :class:`InvalidRequest` naming the fix."""
    path, unet = locate(path, what=what, weights_id=weights_id)
    if unet is not None:
        return _vgen(path, unet)
    studio = read_studio(path)
    if studio.get("unet"):
        return _vgen(path, path / studio["unet"])
    pths = sorted(p for p in path.glob("*.pth") if p.name not in KNOWN_NON_UNET)
    prefixes = tuple(prefixes)
    if len(pths) > 1 and prefixes:
        pths = [p for p in pths if p.name.lower().startswith(prefixes)] or pths
    if not pths:
        raise WeightsMissing(f"{str(path)!r} holds no VGen UNet .pth for {what}.", hint=FETCH_HINT)
    if len(pths) > 1:
        raise InvalidRequest(f"{str(path)!r} holds several UNet files ({', '.join(p.name for p in pths)}).",
                             hint=f"Name the one to use in {STUDIO_FILE} ({{\"unet\": \"file.pth\"}}), or point to the file.",
                             field="weights")
    return _vgen(path, pths[0])


def load_diffusers_unet(root: Path, from_config: Callable[[dict[str, Any]], torch.nn.Module]) -> torch.nn.Module:
    """The UNet of a diffusers folder: ``unet/config.json`` → ``from_config`` (meta-initialised), then its weights."""
    from sdk.ml.checkpoints import empty_model, find_weights_file, load_into

    cfg = {k: v for k, v in read_json(root / "unet" / "config.json").items() if not k.startswith("_")}
    unet = empty_model(lambda: from_config(cfg))
    load_into(unet, load_state_dict(find_weights_file(root / "unet", ("diffusion_pytorch_model",)), strip=()),
              source="unet/ weights")
    return unet
