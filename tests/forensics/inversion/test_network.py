"""The sketch-inversion network: output shape and range, other input sizes, config validation."""

from __future__ import annotations

import pytest
import torch

from forensics.inversion.network import InverterConfig, SketchInverter

@pytest.mark.parametrize("cfg", [{}, {"skips": True}, {"upsample": "deconv", "norm": "batch"}, {"base": 4, "n_res": 1, "norm": "none"}])
def test_network_shape_and_range(cfg):
    torch.manual_seed(0)
    m = SketchInverter(cfg).eval()
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 3, 150, 150)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 255.0
    if not cfg:  # the paper-sized network stays small
        assert sum(p.numel() for p in m.parameters()) * 4 < 10 * 2**20


def test_network_other_sizes_and_config_validation(tiny_inverter):
    m = SketchInverter(tiny_inverter)
    assert m(torch.rand(1, 3, 37, 150) * 255).shape == (1, 3, 37, 150)
    with pytest.raises(ValueError):
        InverterConfig.from_dict({"upsample": "bogus"})
    with pytest.raises(ValueError):
        InverterConfig.from_dict({"nope": 1})
