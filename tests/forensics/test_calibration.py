"""FPIR calibration on synthetic scores (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.calibration import fit_calibration


def test_fpir_grows_with_gallery_size_and_falls_with_score():
    rng = np.random.default_rng(0)
    cal = fit_calibration(rng.normal(0.5, 0.1, 200_000), "e", "raw", 100, 2000, "synthetic")
    assert cal.p_nonmated(0.5) == pytest.approx(0.5, abs=0.01)
    assert cal.fpir(0.8, 10) < cal.fpir(0.8, 1000) < 1
    assert cal.fpir(0.9, 100) < cal.fpir(0.7, 100)
    # beyond every observed impostor score: bounded by 1/n, not zero
    assert cal.p_nonmated(0.999) == pytest.approx(1 / 200_000)
    assert cal.fpir(0.5, 1) == pytest.approx(cal.p_nonmated(0.5), rel=1e-6)
