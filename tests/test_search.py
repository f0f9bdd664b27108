"""Ranking and score calibration on synthetic vectors (fast, no ML)."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.calibration import fit_calibration
from forensics.query import SubjectFilters
from forensics.search import rank_subjects, rank_subjects_batch
from gallery.db import open_gallery
from gallery.index import VectorIndex
from gallery.records import FaceSpec, ImageSpec


@pytest.fixture()
def repo_index(tmp_path):
    rng = np.random.default_rng(1)
    g = open_gallery(tmp_path / "g.db")
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", 16, "0" * 64)
    centers = rng.standard_normal((30, 16))
    for s in range(30):
        for j in range(3):
            v = centers[s] + 0.2 * rng.standard_normal(16)
            repo.add_enrollment({"external_id": f"S{s:02d}", "sex": "F" if s % 2 else "M", "birth_year": 1950 + s},
                                ImageSpec(sha256=f"{s:02d}{j:02d}".ljust(64, "a")), [FaceSpec([0, 0, 1, 1], None, 1.0, None, v, emb)])
    index = VectorIndex.from_repository(repo)
    return repo, index, emb, centers


def test_best_image_per_subject_and_order(repo_index):
    repo, index, emb, centers = repo_index
    ranked = rank_subjects(repo, index, centers[7][None], top=5, embedder_key=emb.key)
    assert ranked[0].external_id == "S07"
    assert len({r.external_id for r in ranked}) == 5
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))
    q = centers[7] / np.linalg.norm(centers[7])
    vecs = index.reconstruct(np.asarray(sorted(repo.embedding_owners(index.ids().tolist())), dtype=np.int64))
    assert ranked[0].score == pytest.approx(float(np.max(vecs @ q)), abs=1e-5)


def test_filters_never_lose_candidates(repo_index):
    repo, index, emb, centers = repo_index
    only_f = SubjectFilters(sex="F", born_between=(1960, 1979))
    ranked = rank_subjects(repo, index, centers[0][None], top=10, embedder_key=emb.key, subject_filter=only_f)
    expected = {f"S{s:02d}" for s in range(30) if s % 2 and 10 <= s <= 29}
    assert {r.external_id for r in ranked} == expected  # all 10 that pass, though far from the probe


def test_fusion_is_the_weighted_mean_of_per_probe_bests(repo_index):
    repo, index, emb, centers = repo_index
    probes = np.stack([centers[3], centers[4]])
    ranked = rank_subjects(repo, index, probes, top=30, embedder_key=emb.key, weights=np.array([0.25, 0.75]))
    for r in ranked:
        assert r.score == pytest.approx(0.25 * r.per_probe[0] + 0.75 * r.per_probe[1], abs=1e-6)


def test_batch_ranking_matches(repo_index):
    repo, index, emb, centers = repo_index
    owner_of = {i: o.external_id for i, o in repo.embedding_owners(index.ids().tolist()).items()}
    lists = rank_subjects_batch(index, owner_of, centers[:5].astype(np.float32), top=3, embedder_key=emb.key)
    for s, lst in enumerate(lists):
        single = rank_subjects(repo, index, centers[s][None], top=3, embedder_key=emb.key)
        assert [x for x, _ in lst] == [r.external_id for r in single]


def test_fpir_grows_with_gallery_size_and_falls_with_score():
    rng = np.random.default_rng(0)
    cal = fit_calibration(rng.normal(0.5, 0.1, 200_000), "e", "raw", 100, 2000, "synthetic")
    assert cal.p_nonmated(0.5) == pytest.approx(0.5, abs=0.01)
    assert cal.fpir(0.8, 10) < cal.fpir(0.8, 1000) < 1
    assert cal.fpir(0.9, 100) < cal.fpir(0.7, 100)
    # beyond every observed impostor score: bounded by 1/n, not zero
    assert cal.p_nonmated(0.999) == pytest.approx(1 / 200_000)
    assert cal.fpir(0.5, 1) == pytest.approx(cal.p_nonmated(0.5), rel=1e-6)
