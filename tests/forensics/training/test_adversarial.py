"""The conditional PatchGAN discriminator: shapes, which side each loss trains, that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensics.training.adversarial import PatchDiscriminator, discriminator_loss, generator_loss


def test_patch_discriminator_shape_and_losses():
    torch.manual_seed(0)
    d = PatchDiscriminator({"base": 8})
    sketch, photo = torch.rand(2, 3, 150, 150) * 255, torch.rand(2, 3, 150, 150) * 255
    out = d(sketch, photo)
    assert out.shape == (2, 1, 16, 16)  # 70x70 patches on a 150x150 chip
    synth = (photo + 1).requires_grad_(True)
    g = generator_loss(d, sketch, synth)
    g.backward()
    assert synth.grad is not None and synth.grad.abs().sum() > 0  # the term reaches the inverter's output
    synth.grad = None
    ld = discriminator_loss(d, sketch, synth, photo)
    ld.backward()
    assert synth.grad is None  # the discriminator's loss never trains the inverter
    assert all(p.grad is not None for p in d.parameters())
    with pytest.raises(ValueError, match="unknown discriminator options"):
        PatchDiscriminator({"bass": 8})


@pytest.mark.slow
def test_discriminator_learns_to_tell_pairs_apart(face_like):
    """A few LSGAN steps separate true photos from a constant grey 'synthesis'."""
    torch.manual_seed(0)
    d = PatchDiscriminator({"base": 8, "n_layers": 2})
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    photo = torch.from_numpy(face_like(rng, 4)).permute(0, 3, 1, 2).float()
    sketch, synth = 255 - photo.mean(1, keepdim=True).repeat(1, 3, 1, 1), torch.full_like(photo, 128.0)
    for _ in range(60):
        opt.zero_grad()
        discriminator_loss(d, sketch, synth, photo).backward()
        opt.step()
    with torch.no_grad():
        assert d(sketch, photo).mean() - d(sketch, synth).mean() > 0.6  # targets 1 and 0


@pytest.mark.slow
def test_spectral_norm_discriminator_has_unit_spectral_norms_and_still_learns(face_like):
    """With spectral_norm every convolution's weight (as used) has largest singular value ~1 and no
    instance norm is left; the discriminator still separates true pairs from a grey 'synthesis'."""
    torch.manual_seed(0)
    d = PatchDiscriminator({"base": 8, "n_layers": 2, "spectral_norm": True})
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in d.modules())
    rng = np.random.default_rng(0)
    photo = torch.from_numpy(face_like(rng, 4)).permute(0, 3, 1, 2).float()
    sketch, synth = 255 - photo.mean(1, keepdim=True).repeat(1, 3, 1, 1), torch.full_like(photo, 128.0)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = discriminator_loss(d, sketch, synth, photo)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    with torch.no_grad():
        for m in convs:  # the power iteration has run once per training forward
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
            assert 0.95 < float(sigma) < 1.05, float(sigma)
    assert losses[-1] < 0.5 * losses[0]
