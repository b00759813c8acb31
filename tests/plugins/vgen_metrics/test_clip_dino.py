"""CLIP-T, CLIP-I, DINO-I and temporal consistency on fixed frames and tiny weights, against a re-computation that
follows VGen's metric script (vgen-notes §14) with plain torch ops from the state dicts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from sdk.errors import IncompatibleCheckpoint

from plugins.vgen_metrics.clip_metrics import (
    DinoEncoder, encode_images, frame_mean, load_openai_clip, reference_score, temporal_consistency)
from plugins.vgen_metrics.dino import load_dino
from plugins.vgen_metrics.tiny import make_tiny_clip, make_tiny_dino
from tests.plugins.vgen_metrics.reference import clip_image, clip_text, dino_cls, unit

CLIP_NORM = T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("w")
    return make_tiny_clip(root / "clip"), make_tiny_dino(root / "dino")


def _frames(n=5, h=72, w=128):
    """A moving gradient with noise: consecutive frames alike but not equal; not square (crops matter)."""
    g = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for t in range(n):
        img = np.stack([(xx * 2 + t * 9) % 256, (yy * 3 + t * 5) % 256, (xx + yy + t * 20) % 256], -1)
        out.append(np.clip(img + g.integers(-20, 20, img.shape), 0, 255).astype(np.uint8))
    return out


def _subject():
    g = np.random.default_rng(4)
    return [g.integers(0, 256, (90, 60, 3)).astype(np.uint8), g.integers(0, 256, (50, 80, 3)).astype(np.uint8)]


def _clip_pre(img):  # the clip package's preprocessing: PIL bicubic resize of the shorter side, centre crop
    return CLIP_NORM(T.ToTensor()(T.CenterCrop(224)(T.Resize(224, T.InterpolationMode.BICUBIC)(Image.fromarray(img)))))


def _dino_pre(img):  # the DreamVideo script's DINO preprocessing
    t = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                   T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    return t(Image.fromarray(img))


def test_clip_metrics_equal_vgen_recomputation(weights):
    import open_clip

    clip_dir, _ = weights
    sd = torch.load(clip_dir / "open_clip_pytorch_model.bin", weights_only=True)
    frames, refs, prompt = _frames(), _subject(), "a dog on a skateboard"
    ref_f = unit(clip_image(sd, torch.stack([_clip_pre(f) for f in frames]), head_width=64, quick=True))
    ref_r = unit(clip_image(sd, torch.stack([_clip_pre(r) for r in refs]), head_width=64, quick=True))
    ref_t = unit(clip_text(sd, open_clip.tokenize([prompt]), head_width=64, quick=True))[0]
    mean = ref_f.mean(0)  # NOT re-normalised
    want_t = float(ref_t @ mean)
    want_i = float(np.mean([float(r @ mean) for r in ref_r]))
    want_temporal = float(np.mean([float(ref_f[i] @ ref_f[i + 1]) for i in range(len(frames) - 1)]))

    model = load_openai_clip(clip_dir)
    feats = encode_images(model, frames, batch=2)
    with torch.no_grad():
        text = model.text_features([prompt])[0]
    assert float(text @ frame_mean(feats)) == pytest.approx(want_t, abs=1e-5)
    assert reference_score(feats, encode_images(model, refs, batch=3)) == pytest.approx(want_i, abs=1e-5)
    assert temporal_consistency(feats) == pytest.approx(want_temporal, abs=1e-5)
    assert temporal_consistency(feats[:1]) == 1.0  # a single frame has nothing to differ from
    assert model.clip.visual.transformer.resblocks[0].mlp.gelu.__class__.__name__ == "QuickGELU"  # OpenAI's act.


def test_dino_i_equals_vgen_recomputation(weights):
    _, dino_dir = weights
    sd = torch.load(dino_dir / "dino_deitsmall16_pretrain.pth", weights_only=True)
    frames, refs = _frames(), _subject()
    f = unit(dino_cls(sd, torch.stack([_dino_pre(x) for x in frames])))
    r = unit(dino_cls(sd, torch.stack([_dino_pre(x) for x in refs])))
    want = float(np.mean([float(ri @ f.mean(0)) for ri in r]))
    model = DinoEncoder(load_dino(dino_dir))
    got = reference_score(encode_images(model, frames, batch=4), encode_images(model, refs, batch=4))
    assert got == pytest.approx(want, abs=1e-5)


def test_wrong_or_unsafe_checkpoints_are_refused(weights, tmp_path):
    clip_dir, dino_dir = weights
    with pytest.raises(IncompatibleCheckpoint, match="not a DINO"):
        load_dino(clip_dir / "open_clip_pytorch_model.bin")
    with pytest.raises(IncompatibleCheckpoint, match="not an OpenCLIP"):
        load_openai_clip(dino_dir / "dino_deitsmall16_pretrain.pth")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "open_clip_pytorch_model.bin")  # would run code when unpickled
    with pytest.raises(IncompatibleCheckpoint, match="cannot be read safely"):
        load_openai_clip(tmp_path)
