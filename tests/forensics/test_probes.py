"""Probe building for every mode (fast: a stand-in embedder and inverter, real probe rules)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import forensics.inversion.invert as invert_mod
from forensics.errors import ForensicsError
from forensics.fusion import FUSION_WEIGHT_INVERTED, FusionOffsets, unit_rows
from forensics.inversion.invert import invert_chips, load_inverter
from forensics.probes import (INDEX_PLAIN, INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW, INDEX_WHITENED, ROUNDTRIP_WEIGHT,
                              ProbeModels, build_probes, mirrored, sketch_vectors)
from forensics.whitening import fit_whitening

D = 8
rng = np.random.default_rng(3)
BASIS = rng.standard_normal((3, D)).astype(np.float32)


class Embedder:
    """Descriptor = unit(mean colour per third of the chip's columns @ BASIS): mirroring changes it."""

    info = SimpleNamespace(key="stand-in@1/8", dim=D)

    def embed(self, chips):
        thirds = np.stack([c.astype(np.float32).reshape(c.shape[0], 3, -1, 3).mean(axis=(0, 2, 3)) for c in chips])
        return unit_rows(thirds.astype(np.float32) @ BASIS)


@pytest.fixture()
def stand_in_inverter(monkeypatch):
    """The inverter replaced by a cheap deterministic stand-in (255 - chip)."""
    monkeypatch.setattr(invert_mod, "invert_chips", lambda inv, chips: 255 - chips)


def records(n):
    chips = [rng.integers(0, 255, (6, 6, 3)).astype(np.uint8) for _ in range(n)]
    return [SimpleNamespace(chip=c, embedding=SimpleNamespace(vector=Embedder().embed(c[None])[0])) for c in chips]


def mirror_mean(e, chips):
    return unit_rows(unit_rows(e.embed(chips)) + unit_rows(e.embed(mirrored(chips))))


@pytest.mark.usefixtures("stand_in_inverter")
def test_photo_probe_is_the_stored_kind_of_vector():
    recs = records(1)
    (s,) = build_probes(ProbeModels(Embedder()), "raw", recs, kind="photo").sets
    (p,) = s.probes
    assert (p.label, p.kind, p.index, p.weight) == ("photo", "photo", INDEX_PLAIN, 1.0)
    np.testing.assert_allclose(p.vector, recs[0].embedding.vector, atol=1e-6)


@pytest.mark.usefixtures("stand_in_inverter")
def test_sketch_probes_are_mirror_averaged_and_whitened():
    e, recs = Embedder(), records(2)
    w = fit_whitening(unit_rows(rng.standard_normal((200, D))), "stand-in@1/8")
    (s,) = build_probes(ProbeModels(e, whitening=w), "raw", recs).sets
    assert [p.index for p in s.probes] == [INDEX_WHITENED] * 2 and [p.weight for p in s.probes] == [0.5, 0.5]
    assert [p.label for p in s.probes] == ["sketch 1", "sketch 2"]
    chips = np.stack([r.chip for r in recs])
    np.testing.assert_allclose(np.stack([p.vector for p in s.probes]), unit_rows(w.apply(mirror_mean(e, chips))),
                               atol=1e-5)


@pytest.mark.usefixtures("stand_in_inverter")
def test_fusion_moves_each_probe_by_its_offset_and_weights_them():
    e, recs = Embedder(), records(1)
    shift, zero = np.full(D, 0.3, np.float32), np.zeros(D, np.float32)
    models = ProbeModels(e, inverter=object(), offsets=FusionOffsets("stand-in@1/8", "sha", shift, zero, 10))
    (s,) = build_probes(models, "fusion", recs).sets
    assert [(p.kind, p.index) for p in s.probes] == [("drawn", INDEX_PLAIN), ("synthesized", INDEX_PLAIN)]
    assert [p.weight for p in s.probes] == [1 - FUSION_WEIGHT_INVERTED, FUSION_WEIGHT_INVERTED]
    chips = np.stack([r.chip for r in recs])
    np.testing.assert_allclose(s.probes[0].vector, unit_rows(mirror_mean(e, chips) + shift)[0], atol=1e-5)
    np.testing.assert_allclose(s.probes[1].vector, mirror_mean(e, 255 - chips)[0], atol=1e-5)


@pytest.mark.usefixtures("stand_in_inverter")
def test_roundtrip_adds_the_synthesized_photo_against_roundtrip_vectors():
    e, recs = Embedder(), records(2)
    (s,) = build_probes(ProbeModels(e, inverter=object()), "roundtrip", recs).sets
    assert len(s.probes) == 6 and s.weights.sum() == pytest.approx(1.0)
    rt = [p for p in s.probes if p.kind == "synthesized vs round-trip"]
    assert [p.index for p in rt] == [INDEX_ROUNDTRIP_RAW] * 2
    assert sum(p.weight for p in rt) == pytest.approx(ROUNDTRIP_WEIGHT)
    w = fit_whitening(unit_rows(rng.standard_normal((200, D))), "stand-in@1/8")
    (s,) = build_probes(ProbeModels(e, inverter=object(), whitening=w), "roundtrip", recs[:1]).sets
    assert s.probes[-1].index == INDEX_ROUNDTRIP


@pytest.mark.usefixtures("stand_in_inverter")
def test_ungrouped_records_give_one_set_each():
    sets = build_probes(ProbeModels(Embedder(), inverter=object()), "inverted", records(3), grouped=False).sets
    assert len(sets) == 3 and all(len(s.probes) == 1 and s.probes[0].label == "sketch 1" for s in sets)


@pytest.mark.usefixtures("stand_in_inverter")
def test_modes_that_need_the_inverter_say_so():
    with pytest.raises(ForensicsError, match="inversion"):
        build_probes(ProbeModels(Embedder()), "fusion", records(1))
    with pytest.raises(ForensicsError, match="--mode must be one of"):
        build_probes(ProbeModels(Embedder()), "best", records(1))


# -- mirror averaging with the real inverter --------------------------------------------------


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
