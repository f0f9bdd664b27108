"""Convolutional Sketch Inversion (Güçlütürk, Güçlü, van Lier & van Gerven, ECCV 2016 workshops).

The paper's network (after Johnson et al.'s fast style transfer): a 9x9 convolution to 32
channels, two stride-2 3x3 convolutions to 64 and 128, five residual blocks of 128 channels,
two x2 upsampling stages back to 64 and 32 channels, and a 9x9 convolution to RGB with tanh.
Every convolution but the last is followed by normalisation and ReLU.

Configurable departures from the paper (`InverterConfig`):

- ``norm="instance"`` (default; the paper used batch norm): instance norm is what later
  image-to-image generators settled on, and it makes the output independent of the batch;
- ``upsample="resize"`` (default; the paper used fractionally-strided convolutions):
  nearest-neighbour x2 then a 3x3 convolution, which avoids checkerboard artefacts
  (Odena et al. 2016); ``"deconv"`` gives the paper's transposed convolutions;
- ``skips=True``: U-Net-style skip connections: the encoder's 64- and 32-channel maps are
  concatenated to the decoder's at the same resolution.

Input: float (B, 3, 150, 150) RGB sketch chip, 0..255. Output: float (B, 3, 150, 150) RGB
0..255 (tanh, scaled). 150 is not divisible by 4: the input is reflect-padded to 152 and the
output cropped back to 150.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from forensics.inversion.options import known_options

CHIP = 150
_PAD = 1  # 150 + 2 = 152, divisible by 4


@dataclass
class InverterConfig:
    base: int = 32  # channels of the first layer (paper: 32 → 64 → 128)
    n_res: int = 5  # residual blocks (paper: 5)
    norm: str = "instance"  # instance | batch | none
    upsample: str = "resize"  # resize | deconv
    skips: bool = False  # U-Net-style skip connections

    @classmethod
    def from_dict(cls, d: dict | None) -> InverterConfig:
        cfg = cls(**known_options(cls, d, "sketch-inverter model"))
        if cfg.norm not in ("instance", "batch", "none"):
            raise ValueError(f"norm must be instance, batch or none, not {cfg.norm!r}")
        if cfg.upsample not in ("resize", "deconv"):
            raise ValueError(f"upsample must be resize or deconv, not {cfg.upsample!r}")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(c)
    return nn.Identity()


class ConvLayer(nn.Sequential):
    """Reflection-padded convolution, then normalisation and ReLU (unless ``act=False``)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, norm: str = "instance", act: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(k // 2), nn.Conv2d(c_in, c_out, k, stride)]
        if act:
            layers += [_norm(norm, c_out), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with normalisation; ReLU after the first only (Johnson et al.)."""

    def __init__(self, c: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(norm, c), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(norm, c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpLayer(nn.Module):
    """x2 upsampling: nearest-neighbour + 3x3 conv ("resize"), or a transposed conv ("deconv")."""

    def __init__(self, c_in: int, c_out: int, mode: str, norm: str):
        super().__init__()
        self.mode = mode
        if mode == "resize":
            self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3))
        else:
            self.conv = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
        self.post = nn.Sequential(_norm(norm, c_out), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "resize":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.post(self.conv(x))


class SketchInverter(nn.Module):
    """Sketch chip (B,3,150,150, 0..255) → photo-like chip (B,3,150,150, 0..255)."""

    def __init__(self, config: InverterConfig | dict | None = None):
        super().__init__()
        cfg = config if isinstance(config, InverterConfig) else InverterConfig.from_dict(config)
        self.config = cfg
        b, n = cfg.base, cfg.norm
        self.enc1 = ConvLayer(3, b, 9, 1, n)  # 152
        self.enc2 = ConvLayer(b, 2 * b, 3, 2, n)  # 76
        self.enc3 = ConvLayer(2 * b, 4 * b, 3, 2, n)  # 38
        self.res = nn.Sequential(*[ResidualBlock(4 * b, n) for _ in range(cfg.n_res)])
        s = 2 if cfg.skips else 1
        self.up1 = UpLayer(4 * b, 2 * b, cfg.upsample, n)  # 76
        self.up2 = UpLayer(2 * b * s, b, cfg.upsample, n)  # 152
        self.out = ConvLayer(b * s, 3, 9, 1, n, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) RGB tensor, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4  # 150 → 152: one pixel each side (an extra one at the end if odd)
        x = x / 127.5 - 1.0
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="reflect")
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        y = self.res(self.enc3(e2))
        y = self.up1(y)
        if self.config.skips:
            y = torch.cat([y, e2], 1)
        y = self.up2(y)
        if self.config.skips:
            y = torch.cat([y, e1], 1)
        y = torch.tanh(self.out(y).float())  # fp32 output under bf16 autocast (0..255 needs > 8 bits)
        y = y[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return (y + 1.0) * 127.5


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
