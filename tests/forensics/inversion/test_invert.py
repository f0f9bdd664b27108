"""Verified loading of exported inverter weights."""

from __future__ import annotations

import json

import pytest
import torch

from forensics.errors import ModelWeightsError
from forensics.inversion.invert import load_inverter, sidecar_path
from forensics.inversion.network import SketchInverter
from forensics.training.checkpoints import export_weights
from forensics.training.config import load_config


def test_load_inverter_rejects_missing_and_mismatched(tmp_path, tiny_inverter):
    with pytest.raises(ModelWeightsError, match="not found"):
        load_inverter(tmp_path / "none.pt")
    m = SketchInverter(tiny_inverter)
    cfg = load_config(None, {"name": "x", "model": tiny_inverter})
    path = tmp_path / "inv.pt"
    export_weights(m.state_dict(), path, cfg, 7, {"rank1_inv": 0.1})
    loaded = load_inverter(path)
    assert loaded.info.sha256 == json.loads(sidecar_path(path).read_text())["sha256"]
    x = torch.rand(1, 3, 150, 150) * 255
    with torch.no_grad():  # fp16 export: close to the fp32 model
        assert float((loaded(x) - m.eval()(x)).abs().max()) < 3.0
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelWeightsError, match="SHA-256"):
        load_inverter(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelWeightsError, match="sidecar"):
        load_inverter(path)
