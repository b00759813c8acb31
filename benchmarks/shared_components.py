"""What the per-component model cache saves a second method on the same files (sdk.ml.components).

Writes real-size SD 2.1 VAE (``v2-1_512-ema-pruned.ckpt``, LDM keys) and OpenCLIP ViT-H-14 text tower
(``open_clip_pytorch_model.bin``) files with random values, in two id folders whose files are hard links to each
other (as ``vgen models fetch`` stores one repository's files under two ids), then loads VAE + text encoder for
"method A" from the first folder and for "method B" from the second through one ``ModelCache``.

    nice -n 10 python benchmarks/shared_components.py [--dir /tmp/shared-bench]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def write_files(root: Path) -> Path:
    import torch

    from sdk.ml.vae import LDM_PREFIX, SCALING_FACTOR, diffusers_to_ldm_vae

    a = root / "id_a"
    a.mkdir(parents=True, exist_ok=True)
    if not (a / "v2-1_512-ema-pruned.ckpt").exists():
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            sample_size=512, scaling_factor=SCALING_FACTOR)
        torch.save({"state_dict": {LDM_PREFIX + k: v for k, v in diffusers_to_ldm_vae(vae).items()}},
                   a / "v2-1_512-ema-pruned.ckpt")
    if not (a / "open_clip_pytorch_model.bin").exists():
        width, layers, vocab, ctx = 1024, 24, 49408, 77  # ViT-H-14's text tower
        g = torch.Generator().manual_seed(0)

        def r(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=g) * 0.02

        sd = {"token_embedding.weight": r(vocab, width), "positional_embedding": r(ctx, width),
              "ln_final.weight": torch.ones(width), "ln_final.bias": torch.zeros(width),
              "text_projection": r(width, width), "logit_scale": torch.tensor(4.6)}
        for i in range(layers):
            p = f"transformer.resblocks.{i}."
            sd.update({p + "ln_1.weight": torch.ones(width), p + "ln_1.bias": torch.zeros(width),
                       p + "ln_2.weight": torch.ones(width), p + "ln_2.bias": torch.zeros(width),
                       p + "attn.in_proj_weight": r(3 * width, width), p + "attn.in_proj_bias": torch.zeros(3 * width),
                       p + "attn.out_proj.weight": r(width, width), p + "attn.out_proj.bias": torch.zeros(width),
                       p + "mlp.c_fc.weight": r(4 * width, width), p + "mlp.c_fc.bias": torch.zeros(4 * width),
                       p + "mlp.c_proj.weight": r(width, 4 * width), p + "mlp.c_proj.bias": torch.zeros(width)})
        torch.save(sd, a / "open_clip_pytorch_model.bin")
    b = root / "id_b"
    b.mkdir(exist_ok=True)
    for f in ("v2-1_512-ema-pruned.ckpt", "open_clip_pytorch_model.bin"):
        if not (b / f).exists():
            os.link(a / f, b / f)
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    import torch

    from sdk.context import JobContext, ModelCache
    from sdk.ml import components

    root = write_files(a.dir or Path(tempfile.mkdtemp(prefix="shared-bench-")))
    cache = ModelCache()
    cpu, f32 = torch.device("cpu"), torch.float32
    times = {}
    for method, folder in (("A", root / "id_a"), ("B", root / "id_b")):
        ctx = JobContext(method, lambda e: None, staging_dir=root / "staging", models=cache)
        t0 = time.perf_counter()
        components.vae(ctx, folder / "v2-1_512-ema-pruned.ckpt", f32, cpu)
        components.text_encoder(ctx, folder / "open_clip_pytorch_model.bin", f32, cpu)
        times[method] = time.perf_counter() - t0
    held = sum(cache.sizes.values())
    print(f"method A (loads): {times['A']:.2f} s; method B on the same files (hits): {times['B']*1000:.1f} ms")
    print(f"loads avoided: {cache.hits} of {cache.hits + cache.misses}; seconds saved: {sum(cache.load_seconds.values()):.2f}")
    print(f"memory held once instead of twice: {held / 2**20:.0f} MB")
    for k, s in cache.load_seconds.items():
        print(f"  {k}: loaded in {s:.2f} s, {cache.sizes[k] / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
