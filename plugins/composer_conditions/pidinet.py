"""PiDiNet (Su et al., 2021; MIT) in its "vanilla CNN" form, as VGen runs it for sketches (``pidinet_bsd(pretrained=
True, vanilla_cnn=True)``: the BSDS "table5" model, config ``carv4``, 60 channels, dilation 24, spatial attention).

The released ``table5_pidinet.pth`` holds pixel-difference convolutions (``{'state_dict': {'module.…': …}}``). Each
of its 16 depthwise layers is one of four kinds (``carv4``: central, angular, radial, vanilla, four times over); the
first three equal plain convolutions with rearranged kernels, which :func:`convert` computes once at load, so the
network below is ordinary convolutions: 3×3, or 5×5 for the radial layers. The output is the sigmoid of the fused
side outputs: an edge probability per pixel at the input size.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

#: the pixel-difference kind of layers 0 (the stem) … 15 in the "carv4" config
CARV4 = ("cd", "ad", "rd", "cv") * 4
#: names of the 15 blocks after the stem, in layer order (the first of stages 2-4 halves the size)
BLOCKS = ("block1_1", "block1_2", "block1_3", "block2_1", "block2_2", "block2_3", "block2_4",
          "block3_1", "block3_2", "block3_3", "block3_4", "block4_1", "block4_2", "block4_3", "block4_4")
#: ImageNet normalisation of the input frame in [0, 1] (VGen's cfg.sketch_mean / sketch_std)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: angular difference: each 3×3 tap minus its clockwise neighbour
_CLOCKWISE = [3, 0, 1, 6, 4, 2, 7, 8, 5]


def convert_kernel(kind: str, w: torch.Tensor) -> torch.Tensor:
    """The plain convolution kernel equal to a pixel-difference kernel ``w`` ``[O, I, 3, 3]`` of ``kind``."""
    o, i = w.shape[:2]
    flat = w.reshape(o, i, 9).clone()
    if kind == "cv":
        return w.clone()
    if kind == "cd":  # central difference: sum of (x_k - x_centre) w_k
        flat[:, :, 4] -= w.sum(dim=(2, 3))
        return flat.reshape(o, i, 3, 3)
    if kind == "ad":
        return (flat - flat[:, :, _CLOCKWISE]).reshape(o, i, 3, 3)
    if kind == "rd":  # radial difference: outer ring of a 5×5 minus the inner ring, the 8 non-centre taps
        big = torch.zeros(o, i, 25, dtype=w.dtype, device=w.device)
        big[:, :, [0, 2, 4, 10, 14, 20, 22, 24]] = flat[:, :, 1:]
        big[:, :, [6, 7, 8, 11, 13, 16, 17, 18]] = -flat[:, :, 1:]
        return big.reshape(o, i, 5, 5)
    raise ValueError(f"unknown pixel-difference kind {kind!r}")


def convert(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A released (pixel-difference) PiDiNet state dict, ``module.`` prefixes already stripped, as plain kernels."""
    layer = {"init_block.weight": 0} | {f"{b}.conv1.weight": i + 1 for i, b in enumerate(BLOCKS)}
    return {k: convert_kernel(CARV4[layer[k]], v) if k in layer else v for k, v in sd.items()}


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, down: bool) -> None:
        super().__init__()
        self.down = down
        if down:
            self.shortcut = nn.Conv2d(cin, cout, 1)
        self.conv1 = nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin, bias=False)
        self.conv2 = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.max_pool2d(x, 2, 2)
        y = self.conv2(F.relu(self.conv1(x)))
        return y + (self.shortcut(x) if self.down else x)


class _Dilation(nn.Module):  # CDCM: four dilated 3×3 convolutions summed
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1)
        for j, d in enumerate((5, 7, 9, 11), 1):
            setattr(self, f"conv2_{j}", nn.Conv2d(cout, cout, 3, dilation=d, padding=d, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(x))
        return sum(getattr(self, f"conv2_{j}")(x) for j in range(1, 5))


class _Attention(nn.Module):  # CSAM: a one-channel sigmoid gate
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, 4, 1)
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv2(self.conv1(F.relu(x))))


class _Reduce(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PiDiNet(nn.Module):
    """The converted "carv4" PiDiNet with ``width`` stem channels (60 released) and ``dil`` CDCM channels (24).
    ``forward(x)``: ImageNet-normalised ``[B, 3, H, W]`` → edge probability ``[B, 1, H, W]``."""

    def __init__(self, width: int = 60, dil: int = 24) -> None:
        super().__init__()
        self.init_block = nn.Conv2d(3, width, 3, padding=1, bias=False)  # "cd": 3×3
        widths = [width] * 3 + [2 * width] * 4 + [4 * width] * 8
        cin = width
        for i, (name, cout) in enumerate(zip(BLOCKS, widths)):
            kernel = 5 if CARV4[i + 1] == "rd" else 3
            setattr(self, name, _Block(cin, cout, kernel, down=name.endswith("_1") and name != "block1_1"))
            cin = cout
        stages = (width, 2 * width, 4 * width, 4 * width)
        self.dilations = nn.ModuleList(_Dilation(c, dil) for c in stages)
        self.attentions = nn.ModuleList(_Attention(dil) for _ in stages)
        self.conv_reduces = nn.ModuleList(_Reduce(dil) for _ in stages)
        self.classifier = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        x = self.init_block(x)
        stages = []
        for stage in ("block1", "block2", "block3", "block4"):
            for name in BLOCKS:
                if name.startswith(stage):
                    x = getattr(self, name)(x)
            stages.append(x)
        sides = [F.interpolate(self.conv_reduces[i](self.attentions[i](self.dilations[i](s))), (h, w),
                               mode="bilinear", align_corners=False) for i, s in enumerate(stages)]
        return torch.sigmoid(self.classifier(torch.cat(sides, dim=1)))

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "PiDiNet":
        """Built at the widths ``sd`` (converted) holds, its weights loaded strictly."""
        model = cls(int(sd["init_block.weight"].shape[0]), int(sd["dilations.0.conv1.weight"].shape[0]))
        model.load_state_dict(sd, strict=True)
        return model.eval().requires_grad_(False)
