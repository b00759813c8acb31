"""The sketch-simplification net of Simo-Serra et al. (2016; the GAN-trained model), as VGen runs it after PiDiNet
(``sketch_simplification_gan``): a fully convolutional encoder-decoder on one grey channel, dark lines on white,
normalised by the training set's mean 0.9664 and std 0.0858, ending in a sigmoid.

VGen's file ``sketch_simplification_gan.pth`` is a plain state dict of ``layers.<i>.weight/bias`` (an
``nn.Sequential`` whose even indices are the convolutions, each followed by a ReLU, the last by the sigmoid); the
widths are read from the file, so the tiny twin is the same network, narrower.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

MEAN, STD = 0.9664114577640158, 0.0858381272736797
#: (kind, kernel, stride, padding) of each convolution; "up" are the three 2× transposed convolutions
LAYOUT = (("conv", 5, 2, 2),) + (("conv", 3, 1, 1),) * 2 + (("conv", 3, 2, 1),) + (("conv", 3, 1, 1),) * 2 + (
    ("conv", 3, 2, 1),) + (("conv", 3, 1, 1),) * 7 + (("up", 4, 2, 1),) + (("conv", 3, 1, 1),) * 2 + (
    ("up", 4, 2, 1),) + (("conv", 3, 1, 1),) * 2 + (("up", 4, 2, 1),) + (("conv", 3, 1, 1),) * 2
#: output channels of each convolution in the released model
WIDTHS = (48, 128, 128, 128, 256, 256, 256, 512, 1024, 1024, 1024, 1024, 512, 256, 256, 256, 128, 128, 128, 48, 48,
          24, 1)


class SketchSimplifier(nn.Module):
    """``forward(x)``: grey ``[B, 1, H, W]`` in [0, 1] (H, W multiples of 8), dark lines on light → the simplified
    sketch in [0, 1], same polarity."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for (kind, k, s, p), cout in zip(LAYOUT, widths, strict=True):
            conv = nn.ConvTranspose2d if kind == "up" else nn.Conv2d
            layers += [conv(cin, cout, k, s, p), nn.ReLU(inplace=True)]
            cin = cout
        layers[-1] = nn.Sigmoid()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - MEAN) / STD)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "SketchSimplifier":
        """Built at the widths ``sd`` holds, its weights loaded strictly."""
        widths = []
        for i, (kind, *_rest) in enumerate(LAYOUT):
            w = sd[f"layers.{2 * i}.weight"]
            widths.append(int(w.shape[1] if kind == "up" else w.shape[0]))
        model = cls(tuple(widths))
        model.load_state_dict(sd, strict=True)
        return model.eval().requires_grad_(False)
