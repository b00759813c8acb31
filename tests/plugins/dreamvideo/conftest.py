from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SMALL = dict(height=32, width=32, sample_steps=2, sample_num_frames=2, lr_warmup_steps=0, train_batch_size=1)


@pytest.fixture(scope="session")
def dv_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plugins.dreamvideo.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("dv") / "tiny")


@pytest.fixture(scope="session")
def dv_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two 40×48 images with masks, a 6-frame video, a 1-frame video."""
    import imageio.v2 as imageio
    from PIL import Image

    root = tmp_path_factory.mktemp("dvdata")
    rng = np.random.default_rng(0)
    images, masks = [], []
    for i in range(2):
        img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"dog{i}.png")
        m = np.zeros((40, 48), np.uint8)
        m[8:32, 10:38] = 255
        Image.fromarray(m).save(root / f"dog{i}_mask.png")
        images.append(root / f"dog{i}.png")
        masks.append(root / f"dog{i}_mask.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / "small_mask.png")
    video = root / "turn.mp4"
    imageio.mimwrite(str(video), [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(6)], fps=8)
    still = root / "still.mp4"
    imageio.mimwrite(str(still), [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)], fps=8)
    return {"images": images, "masks": masks, "small_mask": root / "small_mask.png", "video": video, "still": still}


def write_trained_adapters(tmp: Path, latent_shape: tuple[int, ...] = (4, 2, 4, 4)) -> dict[str, Path]:
    """Identity and motion adapters with non-zero weights, as a project would hold them (tensors made directly); the
    motion adapter keeps one clip of training latents ``latent_shape`` ([4, F, h, w]) for inverse noise."""
    import torch
    from safetensors.torch import save_file

    from sdk.ml.convert import KeyMap
    from sdk.ml.tiny import TEXT_WIDTH, tiny_unet3d

    from plugins.dreamvideo.adapters import IDENTITY, MOTION, DreamVideoAdapters
    from plugins.dreamvideo.formats import TextualInversion, artifact_tensors

    unet = tiny_unet3d(0)
    ad = DreamVideoAdapters(unet, identity=True, motion=True, condition_dim=TEXT_WIDTH)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for kind in (IDENTITY, MOTION):
            for t in ad.parameters(kind):
                t.copy_(0.05 * torch.randn(t.shape, generator=g))
    km = KeyMap.for_model(unet)
    out = {}
    ti = TextualInversion({"*": torch.randn(1, TEXT_WIDTH, generator=g)}, {"*": 265})
    latents = [torch.randn(*latent_shape, generator=g)]
    for kind, extra in ((IDENTITY, dict(ti=ti)), (MOTION, dict(latents=latents))):
        folder = tmp / kind
        folder.mkdir(parents=True)
        save_file(artifact_tensors(km.diffusers_to_vgen(ad.state_dict(kind)), **extra), str(folder / "weights.safetensors"))
        out[kind] = folder
    return out
