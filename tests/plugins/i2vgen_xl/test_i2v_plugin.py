"""The plugin registers cleanly through the entry-point group and its hook module stays torch-free."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points

import plugins.i2vgen_xl as plugin
from plugins.i2vgen_xl import vgen_generators, vgen_weights
from plugins.i2vgen_xl.params import VGEN_NEGATIVE_PROMPT
from sdk.params import validate_params
from sdk.plugins import PluginRegistry


def test_registers_without_error() -> None:
    reg = PluginRegistry([("i2vgen_xl", plugin)])
    assert reg.plugins["i2vgen_xl"].error is None
    spec = reg.generators["i2vgen_xl.i2v"]
    assert spec.takes_text and [(f.name, f.required) for f in spec.fields] == [("image", True)]
    assert spec.default_weights == "i2vgen_xl.i2vgen_xl"
    weights = {w.id: w for w in vgen_weights()}
    assert spec.default_weights in weights
    assert all(re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", i) for i in weights)
    assert all(w.tiny == "plugins.i2vgen_xl.tiny:make_tiny_weights" and "non-commercial" in w.licence
               for w in weights.values())
    vgen = next(w for w in weights.values() if w.formats == ("vgen",))
    assert (vgen.repo_id, vgen.revision) == ("damo/I2VGen-XL", "v1.0.0")
    assert {f.path for f in vgen.files} == {"i2vgen_xl_00854500.pth", "open_clip_pytorch_model.bin",
                                            "v2-1_512-ema-pruned.ckpt"}


def test_entry_point_is_declared() -> None:
    eps = {e.name: e.value for e in entry_points(group="vgen_studio")}
    assert eps.get("i2vgen_xl") == "plugins.i2vgen_xl"


def test_params_defaults_are_vgens() -> None:
    p = validate_params(vgen_generators()[0].params, {"prompt": "a cat"})
    assert (p.width, p.height, p.num_frames, p.num_inference_steps, p.guidance_scale) == (1280, 704, 16, 50, 9.0)
    assert (p.target_fps, p.scheduler, p.negative_prompt) == (16, "ddim", VGEN_NEGATIVE_PROMPT)
    assert p.negative_prompt.startswith("Distorted, discontinuous, Ugly, blurry")


def test_hook_and_params_modules_do_not_import_torch() -> None:
    code = ("import sys, plugins.i2vgen_xl, plugins.i2vgen_xl.params;"
            "bad=[m for m in ('torch','diffusers','transformers','open_clip') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
