"""The plugin registers cleanly and its hook module stays torch-free."""
from __future__ import annotations

import subprocess
import sys

from plugins.modelscope_t2v import vgen_generators, vgen_weights
from sdk.params import validate_params
from sdk.plugins import PluginRegistry
import plugins.modelscope_t2v as plugin


def test_registers_without_error() -> None:
    reg = PluginRegistry([("modelscope_t2v", plugin)])
    assert reg.plugins["modelscope_t2v"].error is None
    spec = reg.generators["modelscope_t2v.t2v"]
    assert spec.default_weights in {w.id for w in vgen_weights()}
    assert all(w.tiny == "plugins.modelscope_t2v.tiny:make_tiny_weights" for w in vgen_weights())


def test_params_defaults() -> None:
    p = validate_params(vgen_generators()[0].params, {"prompt": "a cat"})
    assert (p.num_frames, p.height, p.width, p.num_inference_steps, p.guidance_scale, p.fps) == (16, 256, 256, 50, 9.0, 8)
    assert (p.scheduler, p.preset, p.offset_noise, p.negative_prompt) == ("ddim", "auto", 0.0, "")


def test_hook_and_params_modules_do_not_import_torch() -> None:
    code = ("import sys, plugins.modelscope_t2v, plugins.modelscope_t2v.params;"
            "bad=[m for m in ('torch','diffusers','transformers','open_clip') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
