"""The inverter's training losses on dlib's ResNet: gradients, basic properties, the whitened term."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from forensics.inversion.network import SketchInverter
from forensics.training.losses import InversionLoss, identity_loss, perceptual_loss, total_variation


def test_identity_loss_gradient_flows_to_generator(dlib_resnet, tiny_inverter):
    dlib = dlib_resnet
    torch.manual_seed(0)
    gen = SketchInverter(tiny_inverter)
    loss_fn = InversionLoss(dlib, {"pixel": 0.0, "identity": 1.0, "perceptual": 0.0, "tv": 0.0})
    sketch, photo = torch.rand(2, 3, 150, 150) * 255, torch.rand(2, 3, 150, 150) * 255
    total, parts = loss_fn(gen(sketch), photo)
    total.backward()
    assert set(parts) == {"identity"} and 0.0 <= float(parts["identity"].detach()) <= 2.0
    grads = [p.grad for p in gen.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in dlib.parameters())  # the loss network stays frozen


def test_loss_parts_basic_properties(dlib_resnet):
    dlib = dlib_resnet
    d = torch.randn(3, 128)
    assert float(identity_loss(d, d)) == pytest.approx(0.0, abs=1e-6)
    assert float(identity_loss(d, -d)) == pytest.approx(2.0, abs=1e-6)
    assert float(total_variation(torch.full((1, 3, 8, 8), 7.0))) == 0.0
    x = torch.rand(2, 3, 150, 150) * 255
    _, f = dlib.forward_features(x)
    assert float(perceptual_loss(f, f)) == pytest.approx(0.0, abs=1e-6)
    total, parts = InversionLoss(dlib)(x, x)
    assert float(total) == pytest.approx(0.0, abs=1e-4) and {"pixel", "identity", "perceptual"} <= set(parts)


def test_identity_loss_in_the_sketch_search_space(dlib_resnet, tiny_inverter):
    """loss.identity_whitened: 1 - cosine after the shipped whitening; zero on identical chips,
    gradients reach the generator, and it differs from the raw-space identity term."""
    from forensics.whitening import load_whitening

    dlib = dlib_resnet
    w = load_whitening("dlib-resnet@v1/128")
    loss_fn = InversionLoss(dlib, {"pixel": 0.0, "identity": 0.0, "perceptual": 0.0, "identity_whitened": 1.0})
    x = torch.rand(2, 3, 150, 150) * 255
    total, parts = loss_fn(x, x)
    assert set(parts) == {"identity_whitened"} and float(total) == pytest.approx(0.0, abs=1e-5)
    d = dlib(x)
    np.testing.assert_allclose(F.normalize(loss_fn.whiten(d), dim=1).numpy(), w.apply(d.numpy()), atol=1e-5)
    torch.manual_seed(0)
    gen = SketchInverter(tiny_inverter)
    photo = torch.rand(2, 3, 150, 150) * 255
    total, parts = loss_fn(gen(x), photo)
    total.backward()
    assert sum(float(p.grad.abs().sum()) for p in gen.parameters()) > 0
    raw = InversionLoss(dlib, {"pixel": 0.0, "identity": 1.0, "perceptual": 0.0})(gen(x).detach(), photo)[0]
    assert float(raw) != pytest.approx(float(total.detach()), rel=1e-3)
