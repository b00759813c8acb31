"""TF-T2V: registration, defaults of the released config, the real manifest, format detection."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import plugins.tf_t2v as plugin
from plugins.tf_t2v import vgen_generators, vgen_weights
from plugins.tf_t2v.params import DEFAULT_NEGATIVE, POSITIVE_SUFFIX
from sdk.errors import IncompatibleCheckpoint, WeightsMissing
from sdk.params import validate_params
from sdk.plugins import PluginRegistry
from tests.reference import manifest



def test_registers_without_error() -> None:
    reg = PluginRegistry([("tf_t2v", plugin)])
    assert reg.plugins["tf_t2v"].error is None
    spec = reg.generators["tf_t2v.t2v"]
    ids = {w.id for w in vgen_weights()}
    assert spec.default_weights in ids and "tf_t2v.tft2v_t2v_32f" in ids
    assert all(w.repo_id == "iic/tf-t2v" and "non-commercial" in w.licence for w in vgen_weights())


def test_defaults_are_the_released_config() -> None:
    p = validate_params(vgen_generators()[0].params, {"prompt": "a cat"})
    assert (p.num_frames, p.height, p.width, p.num_inference_steps, p.guidance_scale) == (16, 256, 448, 50, 9.0)
    assert p.negative_prompt == DEFAULT_NEGATIVE and p.positive_suffix == POSITIVE_SUFFIX
    assert validate_params(vgen_generators()[0].params, {"prompt": "a cat", "num_frames": 32}).num_frames == 32


def test_hook_and_params_modules_do_not_import_torch() -> None:
    code = ("import sys, plugins.tf_t2v, plugins.tf_t2v.params;"
            "bad=[m for m in ('torch','diffusers','transformers','open_clip') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_real_tft2v_manifest_loads_with_nothing_missing_or_unexpected() -> None:
    import torch

    from sdk.ml.checkpoints import check_compatible
    from sdk.ml.concat_unet import ConcatUNet, infer_concat_unet_config, keymap

    m = manifest("tft2v_t2v_unet.json")
    shapes = m["params"]
    cfg = infer_concat_unet_config(shapes)
    assert cfg["in_channels"] == 12 and cfg["num_image_tokens"] == 4 and cfg["image_embed_dim"] == 1024
    with torch.device("meta"):
        model = ConcatUNet(**cfg)
    mapped = keymap(model).vgen_to_diffusers({k: torch.empty(v, device="meta") for k, v in shapes.items()})
    check_compatible(model.state_dict(), mapped, source="tft2v_t2v_unet.json")
    assert sum(p.numel() for p in model.parameters()) == m["total_params"] == 1_416_504_900


def test_plain_t2v_checkpoint_is_refused_with_a_pointer() -> None:
    from sdk.ml.concat_unet import infer_concat_unet_config

    with pytest.raises(IncompatibleCheckpoint, match="modelscope_t2v"):
        infer_concat_unet_config(manifest("t2v_modelscope_unet.json")["params"])


def test_style_image_tokens_are_appended_after_the_text() -> None:
    import torch

    from sdk.ml.concat_unet import tiny_concat_unet

    unet = tiny_concat_unet(0)
    x, text = torch.randn(1, 4, 2, 8, 8), torch.randn(1, 77, 64)
    with torch.no_grad():
        plain = unet(x, 10, text, return_dict=False)[0]
        styled = unet(x, 10, text, image_embeds=torch.randn(1, 64), return_dict=False)[0]
        assert unet.image_tokens(torch.zeros(2, 64)).shape == (2, 4, 64)
    assert plain.shape == styled.shape == (1, 4, 2, 8, 8) and not torch.equal(plain, styled)


def test_format_detection(tmp_path: Path) -> None:
    from plugins.tf_t2v.pipeline import detect_weights
    from plugins.tf_t2v.tiny import make_tiny_weights

    with pytest.raises(WeightsMissing, match="make-tiny tf_t2v.tft2v_t2v_16f"):
        detect_weights(None)
    w = make_tiny_weights(tmp_path / "w")
    found = detect_weights(w)
    assert found.unet.name == "tft2v_t2v_non_ema_tiny.pth"
    assert detect_weights(found.unet).root == w  # the .pth path works too
    (w / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(WeightsMissing, match="open_clip_pytorch_model.bin"):
        detect_weights(w)
