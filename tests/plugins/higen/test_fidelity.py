"""HiGen equals VGen, re-derived here from VGen's read-only source (``unet_higen.py``, ``diffusion_gauss.py``,
``schedules.py``, ``inference_higen_entrance.py``; never imported) on the tiny twin's VGen-named tensors.

UNet (``UNetSD_HiGen.forward``): what HiGen adds is computed here functionally from the VGen tensors —
``sinusoidal_embedding`` (pow form), ``time_embed`` repeated per frame plus ``get_motion_embedding`` (F − 1 values
interpolated linearly to F; a single value at F = 1) plus ``get_appearance_embedding``; the 16-token
``TextContextCrossTransformerMultiLayer`` (input_mapping, tokens, blocks whose attn1 and attn2 both attend to the
mapped text, pre-LayerNorm, GEGLU, output_mapping); ``img_embedding(spat_prior)`` added after ``input_blocks.0.0``;
the WoImg temporal modules' ``x_in + 0·x`` at F = 1 — and injected into a plain diffusers 3D-UNet core holding the
same core tensors (the core's equality with VGen's is the ModelScope numerics').

Sampling (``inference_higen_entrance``): VGen's noise order from one seed (key-frame noise, video noise, offset
noise ×0.1), ``DiffusionDDIM.ddim_sample_loop`` (float64 zero-SNR ``linear_sd`` betas, VGen's timestep list,
v-prediction, eta 0) with two batch-1 model calls per step (y_words / zero_y of ""), guidance ``u + 12·(y − u)``;
stage 1 with a zero prior, ``motion_cond=[0]`` and ones; stage 2 with the stage-1 latent, 31→F−1 copies of the
motion factor (long) and the appearance Toeplitz matrix built from VGen's two linspaces.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import UNet3DConditionModel
from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

from plugins.higen.params import HiGenParams
from plugins.higen.pipeline import HiGenGenerator, sample_stages
from plugins.higen.tiny import UNET_FILE, make_tiny_weights
from plugins.higen.unet import BRANCHES, HiGenUNet, load_higen_unet
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.tiny import TEXT_WIDTH
from tests.reference import vgen_ddim_loop

FR, H, W, SEED, STEPS = 4, 32, 48, 11, 20  # divides 1000: VGen's own timestep list
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_weights(tmp_path_factory.mktemp("higen-fid") / "w", seed=5, num_frames=FR)


@pytest.fixture(scope="module")
def vgen_sd(folder: Path) -> dict[str, torch.Tensor]:
    return load_state_dict(folder / UNET_FILE)


@pytest.fixture(scope="module")
def unet(vgen_sd: dict[str, torch.Tensor]) -> HiGenUNet:
    return load_higen_unet(vgen_sd)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


# -- VGen's pieces, from the VGen-named tensors ------------------------------------------------------------------
def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    t = t.float()
    x = torch.outer(t, torch.pow(10000, -torch.arange(half).to(t).div(half)))
    return torch.cat([torch.cos(x), torch.sin(x)], dim=1)


def mlp(sd: dict[str, torch.Tensor], p: str, x: torch.Tensor) -> torch.Tensor:
    return F.linear(F.silu(F.linear(x, sd[p + "0.weight"], sd[p + "0.bias"])), sd[p + "2.weight"], sd[p + "2.bias"])


def vgen_embeddings(sd: dict[str, torch.Tensor], t: torch.Tensor, batch: int, f: int, motion_cond: torch.Tensor,
                    appearance_cond: torch.Tensor) -> torch.Tensor:
    dim = sd["time_embed.0.weight"].shape[1]
    e = mlp(sd, "time_embed.", sinusoid(t, dim)).repeat_interleave(f, dim=0)
    if f > 1:
        if motion_cond.size(1) != f:
            m = sinusoid(motion_cond.flatten(0, 1), dim).view(batch, f - 1, dim)
            m = F.interpolate(m.transpose(1, 2), size=f, mode="linear").transpose(1, 2)
        else:
            m = sinusoid(motion_cond.flatten(0, 1), dim).view(batch, f, dim)
        m = mlp(sd, "msim_embedding.", m).flatten(0, 1)
    else:
        m = mlp(sd, "msim_embedding.", sinusoid(motion_cond, dim))
    return e + m + mlp(sd, "asim_embedding.", appearance_cond).flatten(0, 1)


def attention(x: torch.Tensor, ctx: torch.Tensor, sd: dict[str, torch.Tensor], p: str, heads: int) -> torch.Tensor:
    q, k, v = (F.linear(s, sd[p + n]) for s, n in ((x, "to_q.weight"), (ctx, "to_k.weight"), (ctx, "to_v.weight")))
    b, n, inner = q.shape
    d = inner // heads
    q, k, v = (z.reshape(b, -1, heads, d).transpose(1, 2) for z in (q, k, v))
    out = (torch.einsum("bhid,bhjd->bhij", q, k) * d ** -0.5).softmax(-1) @ v
    return F.linear(out.transpose(1, 2).reshape(b, n, inner), sd[p + "to_out.0.weight"], sd[p + "to_out.0.bias"])


def vgen_context(sd: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    p = "context_embedding."
    x = F.linear(y, sd[p + "input_mapping.weight"], sd[p + "input_mapping.bias"])
    out = sd[p + "tokens"].repeat(x.size(0), 1, 1)
    width = out.shape[-1]
    i = 0
    while f"{p}context_transformer.{i}.norm1.weight" in sd:
        b = f"{p}context_transformer.{i}."

        def ln(z: torch.Tensor, n: str) -> torch.Tensor:
            return F.layer_norm(z, (width,), sd[b + n + ".weight"], sd[b + n + ".bias"])

        out = attention(ln(out, "norm1"), x, sd, b + "attn1.", 8) + out  # disable_self_attn: attends to the text
        out = attention(ln(out, "norm2"), x, sd, b + "attn2.", 8) + out
        h, gate = F.linear(ln(out, "norm3"), sd[b + "ff.net.0.proj.weight"], sd[b + "ff.net.0.proj.bias"]).chunk(2, -1)
        out = F.linear(h * F.gelu(gate), sd[b + "ff.net.2.weight"], sd[b + "ff.net.2.bias"]) + out
        i += 1
    return F.linear(out, sd[p + "output_mapping.weight"], sd[p + "output_mapping.bias"])


def plain_core(unet: HiGenUNet) -> UNet3DConditionModel:
    """A plain diffusers 3D UNet holding the same core tensors (HiGen's branches left out)."""
    import inspect

    keep = set(inspect.signature(UNet3DConditionModel.__init__).parameters)
    core = UNet3DConditionModel(**{k: v for k, v in unet.config.items() if k in keep and k != "self"})
    core.load_state_dict({k: v for k, v in unet.state_dict().items() if not k.startswith(BRANCHES)})
    return core.eval()


def vgen_forward(core: UNet3DConditionModel, sd: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor,
                 y: torch.Tensor, spat_prior: torch.Tensor, motion_cond: torch.Tensor,
                 appearance_cond: torch.Tensor) -> torch.Tensor:
    """``UNetSD_HiGen.forward`` for one sample (VGen calls it once per guidance branch)."""
    b, _, f = x.shape[:3]
    emb = vgen_embeddings(sd, t.expand(b), b, f, motion_cond, appearance_cond)
    img = F.conv2d(spat_prior, sd["img_embedding.weight"], sd["img_embedding.bias"], padding=1)
    hooks = [core.conv_in.register_forward_hook(lambda m, a, out: out + img.repeat_interleave(f, dim=0))]
    for m in core.modules():
        if isinstance(m, ResnetBlock2D):  # every resblock gets VGen's per-frame embedding
            hooks.append(m.register_forward_pre_hook(lambda m, a: (a[0], emb) + tuple(a[2:])))
        elif f == 1 and isinstance(m, TemporalConvLayer):  # WoImg: identity + 0·update
            hooks.append(m.register_forward_hook(lambda m, a, out: a[0] + 0.0 * (out - a[0])))
        elif f == 1 and isinstance(m, TransformerTemporalModel):
            hooks.append(m.register_forward_hook(lambda m, a, out: (a[0] + 0.0 * (out[0] - a[0]),)))
    try:
        return core(x, t, encoder_hidden_states=vgen_context(sd, y), return_dict=False)[0]
    finally:
        for h in hooks:
            h.remove()


# -- the UNet --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["spatial", "temporal"])
def test_unet_forward_equals_vgens(vgen_sd: dict[str, torch.Tensor], unet: HiGenUNet, stage: str) -> None:
    g = torch.Generator().manual_seed(3)
    f = 1 if stage == "spatial" else FR
    x = torch.randn(1, 4, f, H // 8, W // 8, generator=g)
    y = torch.randn(1, 77, TEXT_WIDTH, generator=g)
    prior = torch.zeros(1, 4, H // 8, W // 8) if f == 1 else torch.randn(1, 4, H // 8, W // 8, generator=g)
    motion = torch.tensor([0], dtype=torch.long) if f == 1 else torch.tensor([[500] * (f - 1)], dtype=torch.long)
    appearance = torch.ones(1, 1, FR) if f == 1 else appearance_vgen(FR, 0.7)[None]
    t = torch.tensor([641])
    core = plain_core(unet)
    with torch.no_grad():
        ours = unet(x, t, y, spatial_prior=prior, motion=motion, appearance=appearance, return_dict=False)[0]
        ref = vgen_forward(core, vgen_sd, x, t, y, prior, motion, appearance)
        # the branches are live: without them (a plain core) the output differs
        assert rel(core(x, t, encoder_hidden_states=y[:, :16], return_dict=False)[0], ref) > 1e-2
    RESULTS[f"unet_{stage}"] = rel(ours, ref)
    print(f"HiGen UNet {stage} stage: max rel error {RESULTS[f'unet_{stage}']:.2e}")
    assert RESULTS[f"unet_{stage}"] < 1e-4


# -- the two stages --------------------------------------------------------------------------------------------
def appearance_vgen(frames: int, a: float) -> torch.Tensor:
    sim = torch.cat([torch.linspace(1.0 - a, 1.0, frames)[:-1], torch.linspace(1.0, 1.0 - a, frames)])
    return torch.stack([sim[i:i + frames] for i in range(len(sim) - frames, -1, -1)])


def test_both_stages_equal_vgens_ddim_loops(folder: Path, unet: HiGenUNet, tmp_path: Path) -> None:
    from sdk.ml import components
    from sdk.ml.vae import decode_video, to_uint8

    prompt, motion_factor, appearance_factor = "a lighthouse in a storm", 300.0, 0.8
    params = HiGenParams(prompt=prompt, num_frames=FR, height=H, width=W, num_inference_steps=STEPS,
                         motion_factor=motion_factor, appearance_factor=appearance_factor)
    ctx = JobContext("ref", lambda e: None, staging_dir=tmp_path / "ref", models=ModelCache())
    text = components.text_encoder(ctx, folder / "open_clip_pytorch_model.bin", torch.float32, torch.device("cpu"))
    vae = components.vae(ctx, folder / "v2-1_512-ema-pruned.ckpt", torch.float32, torch.device("cpu"))
    with torch.no_grad():
        y_words, zero_y = text.encode([prompt]), text.encode([""])
        ours_key, ours = sample_stages(None, unet, torch.cat([zero_y, y_words]), params,
                                       torch.Generator().manual_seed(SEED), (H // 8, W // 8))

        def model(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, spat_prior: torch.Tensor,
                  motion_cond: torch.Tensor, appearance_cond: torch.Tensor) -> torch.Tensor:
            return unet(x, t, y, spatial_prior=spat_prior, motion=motion_cond, appearance=appearance_cond,
                        return_dict=False)[0]

        g = torch.Generator().manual_seed(SEED)  # VGen: setup_seed, then three draws in this order
        spat_noise = torch.randn(1, 4, 1, H // 8, W // 8, generator=g)
        spat_prior = torch.zeros_like(spat_noise).squeeze(2)
        cues = {"spat_prior": spat_prior, "motion_cond": torch.tensor([0], dtype=torch.long),
                "appearance_cond": torch.ones(1, 1, FR)}
        key = vgen_ddim_loop(model, spat_noise, [{"y": y_words, **cues}, {"y": zero_y, **cues}], STEPS, 12.0)
        temp_noise = torch.randn(1, 4, FR, H // 8, W // 8, generator=g)
        temp_noise = temp_noise + 0.1 * torch.randn(1, 4, FR, 1, 1, generator=g)
        cues = {"spat_prior": key.squeeze(2),
                "motion_cond": torch.tensor([[int(motion_factor)] * (FR - 1)], dtype=torch.long),
                "appearance_cond": appearance_vgen(FR, appearance_factor)[None]}
        video = vgen_ddim_loop(model, temp_noise, [{"y": y_words, **cues}, {"y": zero_y, **cues}], STEPS, 12.0)
    RESULTS["stage1"], RESULTS["stage2"] = rel(ours_key, key), rel(ours, video)
    print(f"HiGen stage 1 (key frame) latents: max rel error {RESULTS['stage1']:.2e}; "
          f"stage 2 (video) latents: max rel error {RESULTS['stage2']:.2e}")
    assert RESULTS["stage1"] < 1e-4 and RESULTS["stage2"] < 1e-4

    # the generator's frames are VGen's decoded latents
    req = JobRequest("j", "generate", "higen.t2v", params, seed=SEED, weights=folder)
    gen_ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "job", models=ModelCache())
    frames = HiGenGenerator().generate(gen_ctx, req).frames
    reference = to_uint8(decode_video(vae, video, 2)[0])
    assert frames.shape == (FR, H, W, 3)
    assert np.abs(frames.astype(int) - reference.astype(int)).max() <= 1
