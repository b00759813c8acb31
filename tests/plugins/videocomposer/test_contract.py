"""Both VideoComposer generators pass the generator contract on their tiny twins, with every released condition,
the masked video's reference and a style image given (conditions read from extract-output files)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from plugins.videocomposer import vgen_generators
from sdk.testing.contract import GeneratorContract

SMALL = {"prompt": "a red panda surfing", "num_frames": 3, "height": 32, "width": 48, "num_inference_steps": 2,
         "conditions": "depth+local_image+motion+sketch+single_sketch+mask"}


def composition_inputs(tmp_path: Path) -> dict[str, Any]:
    from plugins.videocomposer.tiny import write_tiny_conditions

    inputs = write_tiny_conditions(tmp_path / "conditions", SMALL["num_frames"], SMALL["height"], SMALL["width"])
    inputs.pop("canny")  # the released weights (and their tiny twins) hold no canny branch
    style = tmp_path / "style.png"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(style)
    return {**inputs, "style_image": style}


class TestComposerT2V(GeneratorContract):
    spec = vgen_generators()[0]
    params = SMALL
    bad_params = GeneratorContract.bad_params + ({"conditions": "depth+depth"}, {"conditions": "colour"})

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.videocomposer.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "t2v")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        return composition_inputs(tmp_path)


class TestComposerLCM(GeneratorContract):
    spec = vgen_generators()[1]
    params = SMALL
    bad_params = ({"num_frames": 0}, {"num_inference_steps": 9}, {"no_such_param": 1}, {"conditions": "y+depth"})

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.videocomposer.tiny import make_tiny_lcm_weights

        return make_tiny_lcm_weights(tmp_path / "lcm")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        return composition_inputs(tmp_path)


@pytest.mark.parametrize(("frames", "height", "width"), [(16, 256, 448), (32, 256, 448), (16, 512, 896)])
def test_the_released_unet_takes_the_generators_tensors_at_the_released_sizes(frames: int, height: int,
                                                                              width: int) -> None:
    """Real size on the meta device (no memory): every condition branch the generators fill, the concat channels on
    the latent grid, the style tokens after the text, the [uncond, cond] batch sharing batch-1 conditions."""
    import torch

    from plugins.videocomposer.conditions import CHANNELS
    from plugins.videocomposer.params import BRANCH_OF
    from plugins.videocomposer.unet import CompositionUNet, infer_composition_config
    from tests.plugins.videocomposer.test_plugin import manifest

    with torch.device("meta"):
        unet = CompositionUNet(**infer_composition_config(manifest("videocomposer_unet.json")["params"]))
        conds = {BRANCH_OF[k]: torch.empty(1, c, frames, height, width) for k, c in CHANNELS.items() if k != "canny"}
        x = torch.empty(2, 4, frames, height // 8, width // 8)
        assert unet.encode_conditions(conds, x).shape == (2, 8, frames, height // 8, width // 8)
        out = unet(x, torch.tensor(981), torch.empty(2, 77, 1024), image_embeds=torch.empty(2, 1024),
                   conditions=conds, return_dict=False)[0]
    assert out.shape == x.shape
