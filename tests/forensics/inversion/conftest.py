"""Fixtures of the sketch-inversion tests: a crude synthetic portrait to sketch."""

from __future__ import annotations

import numpy as np
import pytest


def draw_toy_face(h: int = 150, w: int = 150, seed: int = 0) -> np.ndarray:
    """A crude colour 'portrait': plain blue backdrop, dark hair, skin ellipse, eyes, mouth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (70, 110, 200)  # backdrop
    cy, cx = 0.5 * h, 0.5 * w

    def ellipse(y0, x0, ry, rx):
        return ((yy - y0) / ry) ** 2 + ((xx - x0) / rx) ** 2 <= 1.0

    img[ellipse(cy - 0.05 * h, cx, 0.38 * h, 0.3 * w)] = (40, 30, 25)  # hair
    img[ellipse(cy + 0.03 * h, cx, 0.3 * h, 0.22 * w)] = (225, 180, 150)  # face
    for dx in (-0.09, 0.09):
        img[ellipse(cy - 0.05 * h, cx + dx * w, 0.025 * h, 0.045 * w)] = (30, 25, 25)  # eyes
    img[ellipse(cy + 0.17 * h, cx, 0.02 * h, 0.08 * w)] = (150, 60, 60)  # mouth
    img[int(0.9 * h) :, int(0.2 * w) : int(0.8 * w)] = (60, 60, 70)  # shoulders
    img += rng.normal(0.0, 3.0, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def toy_face():
    """`toy_face(h=150, w=150, seed=0)`: a crude colour portrait, uint8 (h, w, 3)."""
    return draw_toy_face


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return draw_toy_face()
