"""CLIP-T, CLIP-I, DINO-I and CLIP temporal consistency as VGen's ``metric/cal_metric_DreamVideo.py`` computes them
(vgen-notes §14), for one output:

- every frame is used (no subsampling); each frame's feature is L2-normalised;
- CLIP-T = text feature (normalised) · the mean of the frames' normalised features (the mean is NOT re-normalised);
- CLIP-I / DINO-I = the same with each subject image's normalised feature in place of the text, averaged over the
  subject's images;
- temporal = the mean over consecutive frame pairs of the cosine similarity of their CLIP features (1.0 for a
  one-frame video: nothing to be inconsistent with).

Preprocessing as the originals: OpenAI CLIP's (PIL: shorter side to 224 bicubic, centre crop 224, CLIP mean/std) and
DINO's (PIL: Resize 256 bicubic, centre crop 224, ImageNet mean/std), each frame as an RGB PIL image. The OpenAI
CLIP ViT-B/32 comes in open_clip's layout (``open_clip_pytorch_model.bin``, QuickGELU as OpenAI trained it); VGen
runs ``clip.load`` (fp16 on CUDA); these run in float32.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from sdk.ml.clip_models import CLIP_MEAN, CLIP_STD, build_clip, find_file, load_state, tokenizer
from plugins.vgen_metrics.dino import DINO_FILE, IMAGENET_MEAN, IMAGENET_STD, load_dino

CLIP_FILE = "open_clip_pytorch_model.bin"


def clip_transform(size: int = 224) -> Callable[[Any], torch.Tensor]:
    import torchvision.transforms as T

    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size), T.ToTensor(),
                      T.Normalize(CLIP_MEAN, CLIP_STD)])


def dino_transform() -> Callable[[Any], torch.Tensor]:
    import torchvision.transforms as T

    return T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class OpenAIClip(torch.nn.Module):
    """OpenAI CLIP ViT-B/32 (open_clip layout): normalised image and text features."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        self.clip = clip
        self._tokenize = tokenizer(int(clip.context_length))
        size = clip.visual.image_size
        self.transform = clip_transform(int(size[0] if isinstance(size, (tuple, list)) else size))

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        p = next(self.clip.parameters())
        return self.clip.encode_image(images.to(p.device, p.dtype), normalize=True).float()

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        p = next(self.clip.parameters())
        return self.clip.encode_text(self._tokenize(list(texts)).to(p.device), normalize=True).float()


def load_openai_clip(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
                     ) -> OpenAIClip:
    """From ``open_clip_pytorch_model.bin`` (hub repo ``timm/vit_base_patch32_clip_224.openai``) or a folder."""
    file = find_file(path, CLIP_FILE, "CLIP ViT-B/32")
    clip = build_clip(load_state(file, "CLIP ViT-B/32"), quick_gelu=True, vision_head_width=64, text_head_width=64,
                      what=f"CLIP ViT-B/32 ({file.name})")
    return OpenAIClip(clip).to(device=device, dtype=dtype).eval()


class DinoEncoder(torch.nn.Module):
    def __init__(self, vit: torch.nn.Module) -> None:
        super().__init__()
        self.vit = vit
        self.transform = dino_transform()

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        p = next(self.vit.parameters())
        f = self.vit(images.to(p.device, p.dtype)).float()
        return f / f.norm(dim=-1, keepdim=True)


@torch.no_grad()
def encode_images(model: Any, images: Sequence[np.ndarray], batch: int, progress: Any = None) -> torch.Tensor:
    """Normalised features ``[N, D]`` of uint8 RGB images, each through the model's own PIL preprocessing."""
    from PIL import Image

    feats = []
    for start in range(0, len(images), batch):
        x = torch.stack([model.transform(Image.fromarray(im)) for im in images[start:start + batch]])
        feats.append(model.image_features(x).cpu())
        if progress is not None:
            progress(min(start + batch, len(images)), len(images))
    return torch.cat(feats)


def frame_mean(frame_feats: torch.Tensor) -> torch.Tensor:
    """The mean of per-frame normalised features, not re-normalised (as VGen's script)."""
    return frame_feats.mean(dim=0)


def temporal_consistency(frame_feats: torch.Tensor) -> float:
    if frame_feats.shape[0] < 2:
        return 1.0
    return float((frame_feats[:-1] * frame_feats[1:]).sum(-1).mean())


def reference_score(frame_feats: torch.Tensor, ref_feats: torch.Tensor) -> float:
    """mean over reference images of ref · frame mean."""
    return float((ref_feats @ frame_mean(frame_feats)).mean())


# -- the metrics (worker side) --------------------------------------------------------------------------------------
def _frames_u8(video: Any) -> np.ndarray:
    from sdk.video import read_video_input

    return read_video_input(video, field="output")[0]


def _progress(ctx: Any) -> Callable[[int, int], None]:
    def progress(step: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.progress(step, total)
    return progress


def _clip(ctx: Any, req: Any) -> OpenAIClip:
    from sdk.ml.components import cached_model as cached, device_of

    file = find_file(req.weights, CLIP_FILE, "CLIP ViT-B/32")
    return cached(ctx, "clip_vit_b32", file, torch.float32, lambda: load_openai_clip(file, device_of(ctx)))


def _subject(video: Any) -> list[np.ndarray]:
    from sdk.errors import InvalidRequest

    from plugins.vgen_metrics.frames import read_rgb, subject_images

    files = subject_images(video)
    if not files:
        raise InvalidRequest(f"Output {video.job_id} came with no subject images.",
                             hint="Score outputs of jobs that took a subject.", field="output")
    return [read_rgb(f) for f in files]


class ClipT:
    def score(self, ctx: Any, req: Any) -> dict[str, float]:
        from plugins.vgen_metrics.frames import output_prompt

        video = req.inputs["output"]
        prompt = output_prompt(video)
        model = _clip(ctx, req)
        frames = encode_images(model, list(_frames_u8(video)), req.params.batch_size, _progress(ctx))
        with torch.no_grad():
            text = model.text_features([prompt]).cpu()[0]
        return {"clip_t": float(text @ frame_mean(frames))}


class ClipI:
    def score(self, ctx: Any, req: Any) -> dict[str, float]:
        video = req.inputs["output"]
        refs = _subject(video)
        model = _clip(ctx, req)
        frames = encode_images(model, list(_frames_u8(video)), req.params.batch_size, _progress(ctx))
        return {"clip_i": reference_score(frames, encode_images(model, refs, req.params.batch_size)),
                "subject_images": float(len(refs))}


class DinoI:
    def score(self, ctx: Any, req: Any) -> dict[str, float]:
        from sdk.ml.components import cached_model as cached, device_of

        video = req.inputs["output"]
        refs = _subject(video)
        file = find_file(req.weights, DINO_FILE, "DINO")
        model = cached(ctx, "dino_vits16", file, torch.float32,
                       lambda: DinoEncoder(load_dino(file, device_of(ctx))))
        frames = encode_images(model, list(_frames_u8(video)), req.params.batch_size, _progress(ctx))
        return {"dino_i": reference_score(frames, encode_images(model, refs, req.params.batch_size)),
                "subject_images": float(len(refs))}


class Temporal:
    def score(self, ctx: Any, req: Any) -> dict[str, float]:
        video = req.inputs["output"]
        model = _clip(ctx, req)
        frames = encode_images(model, list(_frames_u8(video)), req.params.batch_size, _progress(ctx))
        return {"temporal": temporal_consistency(frames)}
