"""gallery/subjects.py: upsert, list, get and remove (purge) subjects."""

from __future__ import annotations

import pytest

from gallery import EnrollmentError, SubjectNotFoundError, VectorIndex, check_consistency


def test_upsert_creates_then_merges(repo):
    s = repo.upsert_subject("U-1", name="Jane Roe", sex="F", birth_year=1980, meta={"county": "X"})
    assert (s.external_id, s.name, s.sex, s.birth_year, s.meta) == ("U-1", "Jane Roe", "F", 1980, {"county": "X"})
    assert (s.n_images, s.n_faces, s.n_embeddings) == (0, 0, 0)
    # fields not given are kept; meta is merged
    s2 = repo.upsert_subject("U-1", meta={"alias": "JR"}, birth_year=1981)
    assert s2.id == s.id and s2.name == "Jane Roe" and s2.birth_year == 1981
    assert s2.meta == {"county": "X", "alias": "JR"}
    with pytest.raises(EnrollmentError):
        repo.upsert_subject("")


def test_list_and_get_with_counts(repo, emb, enroll, sha):
    enroll(repo, emb, "L-2", n_images=2, n_faces=2)
    enroll(repo, emb, "L-1")
    repo.upsert_subject("L-3")
    listed = repo.list_subjects(limit=10)
    assert [x.external_id for x in listed] == ["L-1", "L-2", "L-3"]
    assert [(x.n_images, x.n_faces, x.n_embeddings) for x in listed] == [(1, 1, 1), (2, 4, 4), (0, 0, 0)]
    assert [x.external_id for x in repo.list_subjects(limit=1, offset=1)] == ["L-2"]
    assert repo.list_subjects(offset=5) == []
    got = repo.get_subject("L-2")
    assert [i.sha256 for i in got.images] == [sha("L-2/0"), sha("L-2/1")]
    assert (got.n_images, got.n_faces, got.n_embeddings) == (2, 4, 4)
    assert listed[1].images == ()  # a listing leaves the images out
    assert repo.get_subject("nobody") is None


def test_remove_subject_purges_db_and_index(gal, repo, emb, enroll, fill, sha):
    fill(repo, emb, 5)
    enroll(repo, emb, "GONE", n_images=2, n_faces=2, name="Gone Person")
    vi = VectorIndex.from_repository(repo)
    fp_before = repo.gallery_fingerprint()
    gone_ids = repo.get_subject("GONE")
    uid = repo.save_query(
        mode="sketch",
        embedder=emb,
        candidates=[{"rank": 1, "score": 0.9, "subject_external_id": "GONE",
                     "subject_name": "Gone Person", "image_sha256": sha("GONE/0")}],
    )
    assert repo.get_query(uid).candidates[0].subject_id == gone_ids.id

    removed = repo.remove_subject("GONE")
    assert removed.external_id == "GONE" and removed.subject_id == gone_ids.id
    assert len(removed.embedding_ids) == 4 and removed.n_faces == 4
    assert set(removed.image_sha256s) == {sha("GONE/0"), sha("GONE/1")}
    assert repo.get_subject("GONE") is None
    assert repo.count_subjects() == 5 and repo.count_images() == 5
    assert repo.count_faces() == 5 and repo.count_embeddings(emb) == 5
    assert repo.embedding_owners(removed.embedding_ids) == {}
    assert repo.get_vectors(removed.embedding_ids) == {}
    assert not repo.image_exists(sha("GONE/0"))
    with gal.engine.connect() as c:  # nothing orphaned
        for t, col, ref in (("images", "subject_id", "subjects"), ("faces", "image_id", "images"),
                            ("embeddings", "face_id", "faces")):
            n = c.exec_driver_sql(
                f"SELECT count(*) FROM {t} WHERE {col} NOT IN (SELECT id FROM {ref})").scalar()
            assert n == 0
    assert repo.gallery_fingerprint() != fp_before

    probs = check_consistency(repo, vi)
    assert [p.kind for p in probs] == ["extra_ids"]
    assert set(probs[0].ids) == set(removed.embedding_ids)
    assert vi.remove(removed.embedding_ids) == 4
    assert check_consistency(repo, vi) == []

    cand = repo.get_query(uid).candidates[0]
    # a purged person can no longer be found in stored queries either: link, id and name are gone,
    # the rank, score and image hash stay
    assert cand.subject_id is None and cand.subject_external_id is None and cand.subject_name is None
    assert cand.rank == 1 and cand.image_sha256 is not None
    with pytest.raises(SubjectNotFoundError):
        repo.remove_subject("GONE")
