"""Round-trip gallery vectors on real chips: the batched computation gives the vectors of the
style-by-style one it replaced (2026-12-02)."""

from __future__ import annotations

import numpy as np

from forensics.fusion import unit_rows
from forensics.inversion.invert import load_inverter
from forensics.inversion.sketchify import STYLES, sketchify
from forensics.probes import sketch_vectors
from forensics.roundtrip import roundtrip_vectors
from forensics.whitening import load_whitening


def style_by_style(embedder, inverter, chips, whitening):
    """The round-trip vectors as first computed: each style's sketches through `sketch_vectors`
    (mirror-averaged), whitened, unit, summed over the styles, unit."""
    total = 0
    for style in STYLES:
        sketches = np.stack([sketchify(c, style, randomize=False) for c in chips])
        _, inv, _ = sketch_vectors(embedder, sketches, None, inverter)
        total = total + unit_rows(whitening.apply(inv))
    return unit_rows(total)


def test_batched_roundtrip_vectors_equal_the_style_by_style_ones(pipeline, data_dir):
    from forensics.datasets import read_manifest

    cufs = [r for r in read_manifest(data_dir, "cufs") if r["kind"] == "photo" and r["split"] == "test"][:3]
    lfw = read_manifest(data_dir, "lfw")[:2]
    chips = np.stack([pipeline.process_one(r["path"], kind="photo").chip for r in cufs + lfw])
    inverter = load_inverter()
    white = load_whitening(pipeline.embedder.info.key.slug)
    got = roundtrip_vectors(pipeline.embedder, inverter, chips, white, batch_size=3)  # two batches
    want = style_by_style(pipeline.embedder, inverter, chips, white)
    assert got.shape == (5, 128) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(got - want).max() < 1e-4
