"""Sketch and single-sketch: PiDiNet's pixel-difference layers convert to plain kernels exactly (checked against the
definitions), the released files' keys load, and on a real clip the sketch is VGen's ``1 − cleaner(1 − pidinet(x))``
on the ImageNet-normalised frame; missing weights name the fetch command."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plugins import composer_conditions
from plugins.composer_conditions.frames import resize
from plugins.composer_conditions.pidinet import BLOCKS, CARV4, PiDiNet, convert, convert_kernel
from plugins.composer_conditions.simplify import SketchSimplifier
from plugins.composer_conditions.tiny import make_tiny_sketch, pidinet_released_state
from sdk import events as ev
from sdk import weights as w
from sdk.errors import WeightsMissing
from sdk.ml.checkpoints import load_state_dict
from sdk.plugins import PluginRegistry
from tests.plugins.composer_conditions.helpers import decoded_frames, extract, make_clip


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry([("composer_conditions", composer_conditions)])


def _difference_conv(kind: str, x: torch.Tensor, w3: torch.Tensor) -> torch.Tensor:
    """A depthwise pixel-difference convolution from its definition (Su et al., PiDiNet): the weighted sum of
    differences of pixel pairs — central: each neighbour minus the centre; angular: each neighbour minus the next
    one clockwise; radial: each outer-ring pixel of the 5×5 window minus the inner-ring pixel on its ray."""
    c = x.shape[1]
    if kind == "rd":
        patches = F.unfold(x, 5, padding=2).view(1, c, 25, -1)
        outer, inner = [0, 2, 4, 10, 14, 20, 22, 24], [6, 7, 8, 11, 13, 16, 17, 18]
        diff = patches[:, :, outer] - patches[:, :, inner]
        y = (w3.view(c, 9)[:, 1:].view(1, c, 8, 1) * diff).sum(2)
    else:
        patches = F.unfold(x, 3, padding=1).view(1, c, 9, -1)
        if kind == "cd":
            diff = patches - patches[:, :, 4:5]
        else:  # ad: neighbour k minus its clockwise neighbour
            diff = patches - patches[:, :, [1, 2, 5, 0, 4, 8, 3, 6, 7]]  # 0→1→2→5→8→7→6→3→0
        y = (w3.view(1, c, 9, 1) * diff).sum(2)
    return y.view(1, c, *x.shape[2:])


@pytest.mark.parametrize("kind", ["cd", "ad", "rd"])
def test_pixel_difference_layers_convert_to_equal_plain_convolutions(kind: str) -> None:
    torch.manual_seed(0)
    x, w3 = torch.randn(1, 5, 12, 10), torch.randn(5, 1, 3, 3)
    plain = convert_kernel(kind, w3)
    got = F.conv2d(x, plain, padding=plain.shape[-1] // 2, groups=5)
    torch.testing.assert_close(got, _difference_conv(kind, x, w3), rtol=1e-5, atol=1e-5)
    assert CARV4[:4] == ("cd", "ad", "rd", "cv")  # VGen's carv4: the stem is central, then a, r, v four times


def test_the_released_files_keys_and_shapes_load_at_real_size() -> None:
    # VGen's PiDiNet(60, dil=24, sa=True) and SketchSimplification hold these modules (tools/annotator/sketch)
    with torch.device("meta"):
        released = pidinet_released_state(60, 24)
        model = PiDiNet()
        simplifier = SketchSimplifier()
    assert len(released) == 83 and all(k.startswith("module.") for k in released)
    assert all(released[f"module.{b}.conv1.weight"].shape[-2:] == (3, 3) for b in BLOCKS)  # stored 3×3, all of them
    assert released["module.init_block.weight"].shape == (60, 3, 3, 3)
    assert released["module.block4_4.conv2.weight"].shape == (240, 240, 1, 1)
    assert released["module.dilations.3.conv1.weight"].shape == (24, 240, 1, 1)
    converted = convert({k.removeprefix("module."): v for k, v in released.items()})
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sum(v.numel() for v in released.values()) == 710_149  # the paper's "710K parameters"
    assert list(simplifier.state_dict()) == [f"layers.{2 * i}.{p}" for i in range(23) for p in ("weight", "bias")]
    assert simplifier.state_dict()["layers.16.weight"].shape == (1024, 512, 3, 3)
    assert simplifier.state_dict()["layers.18.weight"].shape == (1024, 1024, 3, 3)
    assert simplifier.state_dict()["layers.28.weight"].shape == (256, 256, 4, 4)  # a transposed 2× convolution


def test_sketch_is_vgens_pidinet_then_cleaner_on_a_real_clip(registry, tmp_path: Path) -> None:
    weights = make_tiny_sketch(tmp_path / "sketch-tiny")
    clip = make_clip(tmp_path / "clip.mp4")
    params = {"num_frames": 3, "sample_fps": 6, "width": 64, "height": 48}
    video, run = extract(registry.extractor("composer_conditions.sketch"), clip, tmp_path, params, weights=weights)
    assert video.frames.shape == (3, 48, 64, 3) and video.fps == 6
    assert (video.frames[..., 0] == video.frames[..., 2]).all()  # grey
    # the reference: VGen's computation on the same (tiny) weights and the same sampled frames
    pidinet = PiDiNet.from_state_dict(convert(load_state_dict(weights / "table5_pidinet.pth")))
    cleaner = SketchSimplifier.from_state_dict(load_state_dict(weights / "sketch_simplification_gan.pth"))
    src = decoded_frames(clip)[::4][:3]
    x = torch.from_numpy(np.stack([resize(f, 64, 48) for f in src])).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = 1.0 - cleaner(1.0 - pidinet((x - mean) / std))
    want_u8 = np.clip(np.rint(want[:, 0].numpy() * 255), 0, 255)
    assert np.abs(video.frames[..., 0].astype(float) - want_u8).max() <= 1
    assert len(run.of(ev.ProgressUpdated)) == 3
    single, _ = extract(registry.extractor("composer_conditions.single_sketch"), clip, tmp_path, params,
                        weights=weights)
    assert all(np.array_equal(f, video.frames[0]) for f in single.frames)  # the first frame's, repeated


def test_missing_sketch_weights_name_the_fetch_command_and_make_tiny_installs_them(registry, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n=4)
    spec = registry.extractor("composer_conditions.sketch")
    with pytest.raises(WeightsMissing, match="composer_conditions.sketch") as e:
        extract(spec, clip, tmp_path, {"num_frames": 2, "width": 32, "height": 24})
    assert "vgen models fetch composer_conditions.sketch" in e.value.hint
    w.make_tiny(registry.weights["composer_conditions.sketch"], tmp_path / "tiny", register=True)
    video, _ = extract(spec, clip, tmp_path, {"num_frames": 2, "width": 32, "height": 24})
    assert video.frames.shape == (2, 24, 32, 3)
    (tmp_path / "tiny" / "sketch_simplification_gan.pth").unlink()
    with pytest.raises(WeightsMissing, match="sketch_simplification_gan.pth is not in"):
        extract(spec, clip, tmp_path, {"num_frames": 2, "width": 32, "height": 24})
