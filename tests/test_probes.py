"""Sketch probe vectors: mirror-averaged raw and inverted descriptors."""

from __future__ import annotations

import numpy as np

from forensics.inversion.invert import invert_chips, load_inverter
from forensics.probes import mirrored, sketch_vectors


class ColumnEmbedder:
    """A stand-in descriptor that sees left and right differently: mean of each column's red."""

    def embed(self, chips: np.ndarray) -> np.ndarray:
        v = chips[..., 0].mean(axis=1).astype(np.float32)  # (n, width)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_mirror_average_is_the_normalised_mean_of_both_descriptors():
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    emb = ColumnEmbedder()
    plain, none, _ = sketch_vectors(emb, chips, mirror=False)
    assert none is None
    np.testing.assert_allclose(plain, emb.embed(chips))
    raw, _, _ = sketch_vectors(emb, chips)
    both = emb.embed(chips) + emb.embed(mirrored(chips))
    np.testing.assert_allclose(raw, both / np.linalg.norm(both, axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(raw, sketch_vectors(emb, mirrored(chips))[0], rtol=1e-6)  # mirror-invariant
    assert not np.allclose(raw, plain)


def test_inverted_vectors_average_the_inversions_of_the_sketch_and_its_mirror(pipeline, data_dir):
    from forensics.datasets import read_manifest

    rows = [r for r in read_manifest(data_dir, "cufs") if r["kind"] == "sketch" and r["split"] == "test"][:2]
    recs = [pipeline.process_one(r["path"], kind="sketch") for r in rows]
    chips = np.stack([r.chip for r in recs])
    inverter = load_inverter()
    raw, inv, synth = sketch_vectors(pipeline.embedder, chips, np.stack([r.embedding.vector for r in recs]), inverter)
    np.testing.assert_array_equal(synth, invert_chips(inverter, chips))
    a = pipeline.embedder.embed(synth)
    b = pipeline.embedder.embed(invert_chips(inverter, mirrored(chips)))
    np.testing.assert_allclose(inv, (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True), atol=1e-6)
    assert raw.shape == inv.shape == (2, 128)
