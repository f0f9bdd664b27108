"""Optional adversarial loss for the sketch inverter: a conditional PatchGAN (pix2pix).

Isola et al. 2017 ("Image-to-image translation with conditional adversarial networks"): the
discriminator sees the sketch and a photo side by side (6 channels) and scores overlapping
patches (here a 70x70 receptive field on the 150x150 chip, a 16x16 grid of scores) as real or
synthesized. It pushes the inverter towards photo-like local texture, which the pixel and
identity losses alone leave blurry. Least-squares GAN objective (Mao et al. 2017), which trains
more stably than the log loss:

- discriminator: ½·mean((D(s, photo) − 1)²) + ½·mean(D(s, synth)²)
- inverter (generator): mean((D(s, synth) − 1)²), weighted by ``loss.adversarial``

Off by default (``loss.adversarial = 0``); `forensics.training.trainer` creates the
discriminator and its optimizer only when the weight is positive, and checkpoints both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from forensics.inversion.options import known_options


@dataclass
class DiscriminatorConfig:
    base: int = 64  # channels of the first layer (pix2pix: 64 → 128 → 256 → 512)
    n_layers: int = 3  # stride-2 layers; 3 gives a 70x70 receptive field
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    start_step: int = 0  # generator steps before the adversarial term is switched on
    # spectral normalisation of every convolution (Miyato et al. 2018), instead of instance norm: caps
    # how fast the discriminator can win (the first, plain one of the GAN trials separated real from synthesized
    # pairs within ~1,000 steps, after which its term gave the inverter little to follow)
    spectral_norm: bool = False

    @classmethod
    def from_dict(cls, d: dict | None) -> DiscriminatorConfig:
        d = known_options(cls, d, "discriminator")
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(d["betas"])
        return d


class PatchDiscriminator(nn.Module):
    """(sketch, photo) chips, each (B, 3, H, W) 0..255 → (B, 1, h, w) patch scores (unbounded)."""

    def __init__(self, config: DiscriminatorConfig | dict | None = None):
        super().__init__()
        cfg = config if isinstance(config, DiscriminatorConfig) else DiscriminatorConfig.from_dict(config)
        self.config = cfg
        sn = nn.utils.parametrizations.spectral_norm if cfg.spectral_norm else (lambda m: m)
        c, layers = cfg.base, [sn(nn.Conv2d(6, cfg.base, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        for i in range(1, cfg.n_layers + 1):
            c_out = cfg.base * min(2**i, 8)
            stride = 2 if i < cfg.n_layers else 1
            layers.append(sn(nn.Conv2d(c, c_out, 4, stride, 1)))
            if not cfg.spectral_norm:
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c = c_out
        layers.append(sn(nn.Conv2d(c, 1, 4, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, sketch: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
        x = torch.cat([sketch, photo], dim=1) / 127.5 - 1.0
        return self.net(x)


def generator_loss(disc: PatchDiscriminator, sketch: torch.Tensor, synth: torch.Tensor) -> torch.Tensor:
    """The inverter's LSGAN term: its synthesized photos should be scored as real (1)."""
    return (disc(sketch, synth).float() - 1.0).pow(2).mean()


def discriminator_loss(disc: PatchDiscriminator, sketch: torch.Tensor, synth: torch.Tensor,
                       photo: torch.Tensor) -> torch.Tensor:
    """The discriminator's LSGAN loss: true pairs → 1, synthesized ones → 0 (no gradient to the inverter)."""
    real = (disc(sketch, photo).float() - 1.0).pow(2).mean()
    fake = disc(sketch, synth.detach()).float().pow(2).mean()
    return 0.5 * (real + fake)
