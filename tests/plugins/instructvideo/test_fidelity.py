"""Fidelity on tiny weights: the merged-LoRA UNet equals the unmerged LoRA forward as VGen computes it, and the
sampling loop equals VGen's DDIM on the explicit step list (both re-derived here from VGen's code, vgen-notes §13)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugins.instructvideo.pipeline import (STEP_LISTS, build_lora_unet, find_base, find_released_lora, merged_unet,
                                            sample_ddim)
from sdk.ml.checkpoints import load_state_dict


class VGenLoRAAttention:
    """VGen's ``MemoryEfficientCrossAttention`` with ``use_lora``: q = to_q(x) + to_q_lora(x), k/v from the context
    likewise, plain softmax attention per head, then to_out(o) + to_out_lora(o). Reads the LoRA modules our
    :class:`LoRALayers` registers on each diffusers ``Attention`` (its hooks are switched off with scale 0)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        assert attention_mask is None and not attn.residual_connection and attn.rescale_output_factor == 1.0
        x = hidden_states
        c = x if encoder_hidden_states is None else encoder_hidden_states
        q = attn.to_q(x) + attn.to_q_lora(x)
        k = attn.to_k(c) + attn.to_k_lora(c)
        v = attn.to_v(c) + attn.to_v_lora(c)
        b, n, inner = q.shape
        h = attn.heads
        d = inner // h
        q, k, v = (t.reshape(b, -1, h, d).permute(0, 2, 1, 3) for t in (q, k, v))
        o = torch.softmax(q @ k.transpose(-1, -2) * d ** -0.5, dim=-1) @ v
        o = o.permute(0, 2, 1, 3).reshape(b, n, inner)
        return attn.to_out[0](o) + attn.to_out_lora(o)


def _inputs(unet, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 3, 8, 8, generator=g, dtype=torch.float64)
    ctx = torch.randn(2, 77, unet.config["cross_attention_dim"], generator=g, dtype=torch.float64)
    return x, torch.tensor([551, 551]), ctx


def _released(iv_weights: Path) -> tuple[Path, Path]:
    w = find_base(iv_weights)
    return w.unet, find_released_lora(w)


def test_released_checkpoint_loads_strictly_all_its_tensors(iv_weights: Path) -> None:
    from sdk.errors import IncompatibleCheckpoint

    _, lora = _released(iv_weights)
    sd = load_state_dict(lora)
    unet, layers = build_lora_unet(sd, source=lora.name)
    assert len(unet.state_dict()) == len(sd) and len(layers.keys()) == sum("_lora." in k for k in sd)
    missing = dict(sd)
    missing.pop(next(k for k in sd if k.endswith("attn2.to_v_lora.up_linear.weight")))
    with pytest.raises(IncompatibleCheckpoint, match="to_v_lora.up_linear.weight"):
        build_lora_unet(missing, source="broken.pth")


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_merged_unet_equals_vgens_unmerged_lora_forward(iv_weights: Path, scale: float) -> None:
    base, lora = _released(iv_weights)
    unet, layers = build_lora_unet({**load_state_dict(base), **load_state_dict(lora)}, source=lora.name)
    unet = unet.double()
    x, t, ctx = _inputs(unet)
    with torch.no_grad():
        for m in layers.modules():
            m.up_linear.weight.mul_(scale)  # VGen has no strength: scaling up is the same as s·up·down
        ours_hooks = unet(x, t, encoder_hidden_states=ctx).sample  # the trainer's path: LoRA through hooks
        layers.scale = 0.0
        unet.set_attn_processor(VGenLoRAAttention())
        vgen = unet(x, t, encoder_hidden_states=ctx).sample
        merged = merged_unet(base, lora, scale).double()
        out = merged(x, t, encoder_hidden_states=ctx).sample
        plain = merged_unet(base, None, 1.0).double()(x, t, encoder_hidden_states=ctx).sample
    # the merge runs in float32 as VGen's does (W += up·down on the loaded float32 weights): ~1e-7 apart
    assert torch.allclose(out, vgen, rtol=0, atol=1e-6), (out - vgen).abs().max()
    assert torch.allclose(ours_hooks, vgen, rtol=0, atol=1e-10), (ours_hooks - vgen).abs().max()
    assert (out - plain).abs().max() > 1e-3, "the LoRA must change the output"


def vgen_ddim(unet, noise: torch.Tensor, y: torch.Tensor, zero_y: torch.Tensor, steps: list[int],
              guide_scale: float) -> torch.Tensor:
    """VGen's ``DiffusionDDIM.ddim_sample_loop`` (eps, eta 0, linear_sd betas in float64): two UNet calls per step,
    u + s·(y − u), x̂0, ε re-derived from x̂0, ᾱ_prev = ᾱ[max(t − 1000/N, 0)]."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, 0)
    recip, recipm1 = (1 / alphas).sqrt(), (1 / alphas - 1).sqrt()
    stride = 1000 // len(steps)
    xt = noise
    for step in steps:
        t = torch.full((xt.shape[0],), step, dtype=torch.long)
        y_out = unet(xt, t, encoder_hidden_states=y).sample
        u_out = unet(xt, t, encoder_hidden_states=zero_y).sample
        out = u_out + guide_scale * (y_out - u_out)
        x0 = recip[step].to(xt) * xt - recipm1[step].to(xt) * out
        eps = (recip[step].to(xt) * xt - x0) / recipm1[step].to(xt)
        a_prev = alphas[max(step - stride, 0)].to(xt)
        xt = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return xt


@pytest.mark.parametrize("steps", [20, 50])
def test_sampling_loop_equals_vgens_ddim_on_the_explicit_list(iv_weights: Path, steps: int) -> None:
    base, lora = _released(iv_weights)
    unet = merged_unet(base, lora, 1.0)
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(1, 4, 2, 4, 4, generator=g)
    y = torch.randn(1, 77, unet.config["cross_attention_dim"], generator=g)
    zero_y = torch.randn(1, 77, unet.config["cross_attention_dim"], generator=g)
    with torch.no_grad():
        ours = sample_ddim(unet, torch.cat([zero_y, y]), noise, steps, 3.0, report=False)
        ref = vgen_ddim(unet, noise, y, zero_y, STEP_LISTS[steps], 3.0)
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-4), (ours - ref).abs().max()
