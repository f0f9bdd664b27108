"""The one ranking path on synthetic vectors (fast, no ML): best image per subject, filters,
weighted fusion, batching, deterministic ties; on both stores (FAISS beside SQLite, pgvector in
PostgreSQL) where it searches a gallery's own index."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.errors import ForensicsError
from forensics.probes import INDEX_PLAIN, Probe, ProbeSet
from forensics.filters import SubjectFilters
from forensics.ranking import OwnerLookup, rank, to_candidates
from forensics.stores import open_indexes
from gallery.db import open_gallery
from gallery.index import VectorIndex
from gallery.records import FaceSpec, ImageSpec


@pytest.fixture()
def gallery(gallery_url):
    """30 subjects, 3 noisy images each around a centre; odd subjects F, born 1950 + s; its plain
    index from the store of its backend."""
    rng = np.random.default_rng(1)
    g = open_gallery(gallery_url, create=True)
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", 16, "0" * 64)
    centers = rng.standard_normal((30, 16))
    for s in range(30):
        for j in range(3):
            v = centers[s] + 0.2 * rng.standard_normal(16)
            repo.add_enrollment({"external_id": f"S{s:02d}", "sex": "F" if s % 2 else "M", "birth_year": 1950 + s},
                                ImageSpec(sha256=f"{s:02d}{j:02d}".ljust(64, "a")),
                                [FaceSpec([0, 0, 1, 1], None, 1.0, None, v, emb)])
    yield repo, {INDEX_PLAIN: open_indexes(g).plain()}, emb, centers
    g.close()


def probe_set(*vectors, weights=None) -> ProbeSet:
    weights = weights or [1 / len(vectors)] * len(vectors)
    return ProbeSet([Probe(f"p{i}", "drawn", INDEX_PLAIN, (v / np.linalg.norm(v)).astype(np.float32), w)
                     for i, (v, w) in enumerate(zip(vectors, weights))])


def test_best_image_per_subject_and_order(gallery):
    repo, indexes, emb, centers = gallery
    (ranked,) = rank([probe_set(centers[7])], indexes, OwnerLookup(repo), top=5, embedder_key=emb.key)
    assert ranked[0].external_id == "S07"
    assert len({r.external_id for r in ranked}) == 5
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))
    q = centers[7] / np.linalg.norm(centers[7])
    ids = indexes[INDEX_PLAIN].ids()
    own = [i for i, o in repo.embedding_owners(ids.tolist()).items() if o.external_id == "S07"]
    best = float(np.max(indexes[INDEX_PLAIN].reconstruct(np.asarray(own)) @ q))
    assert ranked[0].score == pytest.approx(best, abs=1e-6)


def test_filters_never_lose_candidates(gallery):
    repo, indexes, emb, centers = gallery
    only_f = SubjectFilters(sex="F", born_between=(1960, 1979))
    (ranked,) = rank([probe_set(centers[0])], indexes, OwnerLookup(repo), top=10, subject_filter=only_f)
    expected = {f"S{s:02d}" for s in range(30) if s % 2 and 10 <= s <= 29}
    assert {r.external_id for r in ranked} == expected  # all 10 that pass, though far from the probe


def test_fusion_is_the_weighted_mean_of_per_probe_bests(gallery):
    repo, indexes, emb, centers = gallery
    (ranked,) = rank([probe_set(centers[3], centers[4], weights=[0.25, 0.75])], indexes, OwnerLookup(repo), top=30)
    assert len(ranked) == 30
    for r in ranked:
        assert r.score == pytest.approx(0.25 * r.per_probe[0] + 0.75 * r.per_probe[1], abs=1e-6)
    cands = to_candidates(ranked, probe_set(centers[3], centers[4], weights=[0.25, 0.75]))
    assert [p["label"] for p in cands[0].detail["probes"]] == ["p0", "p1"]
    assert [p["weight"] for p in cands[0].detail["probes"]] == [0.25, 0.75]


def test_many_probe_sets_at_once_equal_one_at_a_time(gallery):
    """Evaluation ranks a batch of probe sets in one call; a query ranks one: same lists, same scores."""
    repo, indexes, emb, centers = gallery
    sets = [probe_set(centers[s], centers[(s + 1) % 30]) for s in range(25)]  # >20 rows: FAISS's BLAS path
    batch = rank(sets, indexes, OwnerLookup(repo), top=3)
    for s, got in zip(sets, batch):
        (single,) = rank([s], indexes, OwnerLookup(repo), top=3)
        assert [(r.external_id, r.score) for r in got] == [(r.external_id, r.score) for r in single]


def test_ties_are_broken_by_subject_id(tmp_path):
    g = open_gallery(tmp_path / "t.db")
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", 4, "0" * 64)
    v = np.array([1, 0, 0, 0], np.float32)
    for sid in ("C", "A", "B"):  # three subjects with the same vector
        repo.add_enrollment({"external_id": sid}, ImageSpec(sha256=sid.lower() * 64),
                            [FaceSpec([0, 0, 1, 1], None, 1.0, None, v, emb)])
    (ranked,) = rank([probe_set(v)], {INDEX_PLAIN: VectorIndex.from_repository(repo)}, OwnerLookup(repo), top=3)
    assert [r.external_id for r in ranked] == ["A", "B", "C"]


def test_bad_requests_are_clear_errors(gallery):
    repo, indexes, emb, centers = gallery
    with pytest.raises(ForensicsError, match="at least 1"):
        rank([probe_set(centers[0])], indexes, OwnerLookup(repo), top=0)
    other = ProbeSet([Probe("p", "drawn", "whitened", centers[0].astype(np.float32), 1.0)])
    with pytest.raises(ForensicsError, match="whitened"):
        rank([other], indexes, OwnerLookup(repo), top=3)


def test_filters_lose_no_candidate_on_an_approximate_index(gallery):
    """An IVF index visits only some lists: a filter keeping few subjects must still find them all."""
    repo, _, emb, centers = gallery
    ivf = VectorIndex.build(*repo.iter_embeddings(emb), emb.key, "ivf", nlist=2, nprobe=1)
    only = SubjectFilters(sex="F", born_between=(1951, 1955))  # S01, S03, S05
    (ranked,) = rank([probe_set(centers[20])], {INDEX_PLAIN: ivf}, OwnerLookup(repo), top=5, subject_filter=only)
    assert {r.external_id for r in ranked} == {"S01", "S03", "S05"}


def test_an_id_missing_from_one_index_is_left_out_not_a_crash(gallery):
    repo, indexes, emb, centers = gallery
    ids, vecs = repo.iter_embeddings(emb)
    partial = VectorIndex.build(ids[3:], vecs[3:], emb.key)  # a derived index built before 3 faces came
    both = ProbeSet([Probe("a", "drawn", INDEX_PLAIN, centers[0].astype(np.float32) / np.linalg.norm(centers[0]), .5),
                     Probe("b", "synthesized", "other", centers[0].astype(np.float32) / np.linalg.norm(centers[0]), .5)])
    (ranked,) = rank([both], {**indexes, "other": partial}, OwnerLookup(repo), top=30)
    assert ranked and all(r.owner.embedding_id not in set(ids[:3].tolist()) for r in ranked)
