"""Training losses for the sketch inverter, all on chips of RGB 0..255.

- ``pixel``: L1 between synthesized and true photo (in 0..1 units);
- ``identity``: 1 - cosine(dlib(synth), dlib(photo)) on dlib's 128-D descriptors: what the
  search will compare, so it is the loss that matters for recognition;
- ``identity_whitened`` (off by default): the same in the sketch search space that queries search
  in (`forensics.whitening`: unit descriptors, minus the mean, times the partial
  whitening matrix), so that the directions the search weighs more are weighed more in training;
- ``perceptual``: distance between dlib's intermediate feature maps of synth and photo, each
  map unit-normalised along channels per position (as LPIPS does), averaged over the 4 levels;
  dlib's face network stands in for the paper's VGG (no ImageNet weights are available offline)
  and is more face-specific anyway;
- ``tv``: total variation (mean absolute difference of neighbouring pixels, 0..1 units);
- ``adversarial`` (off by default): a conditional PatchGAN term; it needs the sketch and a
  discriminator with its own optimizer, so the training loop adds it
  (`forensics.training.adversarial`), not `InversionLoss`.

`InversionLoss` computes the photo side's dlib features without gradients, once per batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from forensics.inversion.options import known_options


@dataclass
class LossWeights:
    pixel: float = 1.0
    identity: float = 10.0
    perceptual: float = 1.0
    tv: float = 0.0
    perceptual_p: int = 2  # 1: L1, 2: squared L2 between normalised feature maps
    adversarial: float = 0.0  # conditional PatchGAN term (forensics.training.adversarial); applied by the trainer
    identity_whitened: float = 0.0  # identity term in the sketch search space (forensics/weights/whitening.json)

    @classmethod
    def from_dict(cls, d: dict | None) -> LossWeights:
        return cls(**known_options(cls, d, "loss"))

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_l1(synth: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    return (synth - photo).abs().mean() / 255.0


def total_variation(x: torch.Tensor) -> torch.Tensor:
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return (dh + dw) / 255.0


def identity_loss(desc_synth: torch.Tensor, desc_photo: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cosine similarity between descriptors (B, 128)."""
    return (1.0 - F.cosine_similarity(desc_synth.float(), desc_photo.float(), dim=1, eps=1e-8)).mean()


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f.float() / (f.float().pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-6)


def perceptual_loss(feats_synth: list[torch.Tensor], feats_photo: list[torch.Tensor], p: int = 2) -> torch.Tensor:
    total = 0.0
    for a, b in zip(feats_synth, feats_photo):
        d = _unit(a) - _unit(b)
        total = total + (d.abs().sum(1).mean() if p == 1 else d.pow(2).sum(1).mean())
    return total / len(feats_synth)


class InversionLoss(nn.Module):
    """Weighted sum of the losses above. ``dlib`` is the frozen `DlibResNet`.

    ``forward(synth, photo)`` returns (total, dict of the unweighted parts as floats tensors).
    """

    def __init__(self, dlib: nn.Module, weights: LossWeights | dict | None = None, whitening=None):
        super().__init__()
        self.dlib = dlib
        self.w = weights if isinstance(weights, LossWeights) else LossWeights.from_dict(weights)
        if self.w.identity_whitened:
            if whitening is None:
                from forensics.whitening import load_dlib_whitening

                whitening = load_dlib_whitening()
            if whitening is None:
                raise ValueError("loss.identity_whitened needs forensics/weights/whitening.json for dlib-resnet@v1")
            dev = next(dlib.parameters()).device
            self.register_buffer("w_mean", torch.as_tensor(whitening.mean, dtype=torch.float32, device=dev))
            self.register_buffer("w_matrix", torch.as_tensor(whitening.matrix, dtype=torch.float32, device=dev))
        self.dlib.requires_grad_(False)
        self.dlib.eval()

    def train(self, mode: bool = True):  # the loss network always stays in eval mode
        super().train(mode)
        self.dlib.eval()
        return self

    def whiten(self, desc: torch.Tensor) -> torch.Tensor:
        """Descriptors (B, 128) in the sketch search space (not re-normalised: cosine follows)."""
        return (F.normalize(desc.float(), dim=1) - self.w_mean) @ self.w_matrix

    def forward(self, synth: torch.Tensor, photo: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = self.w
        parts: dict[str, torch.Tensor] = {}
        total = synth.new_zeros((), dtype=torch.float32)
        if w.pixel:
            parts["pixel"] = pixel_l1(synth.float(), photo.float())
            total = total + w.pixel * parts["pixel"]
        if w.tv:
            parts["tv"] = total_variation(synth.float())
            total = total + w.tv * parts["tv"]
        if w.identity or w.perceptual or w.identity_whitened:
            with torch.no_grad():
                d_photo, f_photo = self.dlib.forward_features(photo)
            d_synth, f_synth = self.dlib.forward_features(synth)
            if w.identity:
                parts["identity"] = identity_loss(d_synth, d_photo)
                total = total + w.identity * parts["identity"]
            if w.identity_whitened:
                parts["identity_whitened"] = identity_loss(self.whiten(d_synth), self.whiten(d_photo))
                total = total + w.identity_whitened * parts["identity_whitened"]
            if w.perceptual:
                parts["perceptual"] = perceptual_loss(f_synth, f_photo, w.perceptual_p)
                total = total + w.perceptual * parts["perceptual"]
        return total, parts
