"""gallery/enrollment.py: one batch write path (a single image is a batch of one), all or
nothing per image, duplicates and invalid data refused."""

from __future__ import annotations

import numpy as np
import pytest

import gallery.enrollment as enrollment_mod
from gallery import DuplicateImageError, EmbedderMismatchError, EnrollmentError, GalleryRepository, ImageSpec


@pytest.fixture
def batch_calls(monkeypatch):
    """The sizes of the batches `insert_batch` was asked to write, in order."""
    calls: list[int] = []
    real = enrollment_mod.insert_batch

    def spy(s, batch):
        calls.append(len(batch))
        return real(s, batch)

    monkeypatch.setattr(enrollment_mod, "insert_batch", spy)
    return calls


def test_enrollment_roundtrip(repo, emb, enroll, sha, dim):
    res = enroll(repo, emb, "B-100", n_images=2, n_faces=2, name="Jane Roe", sex="F",
                 birth_year=1980, meta={"county": "X"})
    assert res[0].subject_created and not res[1].subject_created
    assert len(res[0].embedding_ids) == 2 and res[0].image_sha256 == sha("B-100/0")
    s = repo.get_subject("B-100")
    assert (s.name, s.sex, s.birth_year, s.meta) == ("Jane Roe", "F", 1980, {"county": "X"})
    assert (s.n_images, s.n_faces, s.n_embeddings) == (2, 4, 4)
    assert {i.sha256 for i in s.images} == {sha("B-100/0"), sha("B-100/1")}
    assert all(i.n_faces == 2 for i in s.images)
    assert repo.count_subjects() == 1 and repo.count_images() == 2
    assert repo.count_faces() == 4 and repo.count_embeddings(emb) == 4
    assert repo.image_exists(sha("B-100/0")) and not repo.image_exists(sha("zzz"))
    assert repo.image_exists(sha("B-100/1").upper())
    ids, vecs = repo.iter_embeddings(emb)
    assert list(ids) == [*res[0].embedding_ids, *res[1].embedding_ids]
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)


def test_enrollment_with_tuples_and_image_spec(repo, emb, sha, dim):
    v = np.ones(dim)
    r = repo.add_enrollment(
        "T-1",
        ImageSpec(sha256=sha("t").upper(), original_path="t.jpg"),
        [([0, 0, 5, 5], None, 0.5, b"png", v, emb)],
    )
    assert r.image_sha256 == sha("t")  # stored lowercase
    got = repo.get_vectors(r.embedding_ids)[r.embedding_ids[0]]
    np.testing.assert_allclose(got, v / np.linalg.norm(v), rtol=1e-6)
    # the embedder may be given once for tuples without one
    r2 = repo.add_enrollment("T-2", {"sha256": sha("t2")}, [([0, 0, 5, 5], None, 0.5, None, v)], embedder=emb)
    assert len(r2.embedding_ids) == 1


def test_enrollment_is_atomic_on_invalid_face(repo, emb, face, sha, dim):
    bad = np.full(dim, np.nan)
    with pytest.raises(EnrollmentError):
        repo.add_enrollment(
            {"external_id": "NEW-1", "name": "x"},
            sha256=sha("atomic"),
            faces=[face(np.ones(dim), emb, 0), face(bad, emb, 1)],
        )
    assert repo.count_subjects() == 0
    assert repo.count_images() == 0
    assert repo.count_faces() == 0
    assert repo.count_embeddings() == 0
    assert not repo.image_exists(sha("atomic"))


def test_enrollment_is_atomic_on_unexpected_error(repo, emb, enroll, face, sha, dim, monkeypatch):
    enroll(repo, emb, "KEEP")
    real = enrollment_mod._insert_returning
    tables: list[str] = []

    def flaky(s, model, rows):
        tables.append(model.__tablename__)
        if model.__tablename__ == "embeddings":
            raise RuntimeError("disk on fire")
        return real(s, model, rows)

    monkeypatch.setattr(enrollment_mod, "_insert_returning", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        repo.add_enrollment(
            "LOSE", sha256=sha("lose"),
            faces=[face(np.ones(dim) * (i + 1) + i, emb, i) for i in range(4)],
        )
    assert tables == ["images", "faces", "embeddings"]  # the image and its faces had been written
    assert repo.get_subject("LOSE") is None
    assert repo.count_subjects() == 1 and repo.count_images() == 1
    assert repo.count_faces() == 1 and repo.count_embeddings() == 1


def test_duplicate_sha256_refused(repo, emb, enroll, face, sha, dim):
    enroll(repo, emb, "D-1")
    with pytest.raises(DuplicateImageError) as ei:
        repo.add_enrollment("D-2", sha256=sha("D-1/0"), faces=[face(np.ones(dim), emb)])
    assert ei.value.sha256 == sha("D-1/0") and "D-1" in str(ei.value)
    assert repo.get_subject("D-2") is None
    assert repo.count_images() == 1 and repo.count_embeddings() == 1


def test_bad_inputs_rejected(repo, emb, face, sha, dim):
    with pytest.raises(EnrollmentError):
        repo.add_enrollment("X", sha256="abc", faces=[])
    with pytest.raises(EnrollmentError):
        repo.add_enrollment("X", sha256=sha("x"), faces=[face(np.ones(dim + 1), emb)])
    with pytest.raises(EnrollmentError):
        f = face(np.ones(dim), emb)
        f.landmarks = [[0, 0]] * 4
        repo.add_enrollment("X", sha256=sha("x"), faces=[f])
    with pytest.raises(EnrollmentError, match="non-empty"):
        repo.add_enrollment(" ", sha256=sha("x"), faces=[face(np.ones(dim), emb)])
    with pytest.raises(EnrollmentError, match="unknown embedder id 99"):
        repo.add_enrollment("X", sha256=sha("x"), faces=[face(np.ones(dim), 99)])
    with pytest.raises(TypeError):
        repo.add_enrollment("X", {"sha256": sha("x")}, sha256=sha("x"))
    assert repo.count_subjects() == 0


def test_single_enrollment_is_a_batch_of_one(repo, emb, face, sha, dim, batch_calls):
    repo.add_enrollment("ONE", sha256=sha("one"), faces=[face(np.ones(dim), emb)])
    assert batch_calls == [1]
    with pytest.raises(DuplicateImageError):
        repo.add_enrollment("ONE", sha256=sha("one"), faces=[face(np.ones(dim), emb)])
    assert batch_calls == [1, 1]  # refused by the same path, not retried


def test_clean_batch_is_written_in_one_go(repo, emb, face, sha, dim, batch_calls):
    items = [(f"C-{k}", {"sha256": sha(f"c{k}")}, [face(np.ones(dim) + k, emb)]) for k in range(5)]
    results = repo.add_enrollments(items)
    assert batch_calls == [5]
    assert [r.external_id for r in results] == [f"C-{k}" for k in range(5)]
    assert repo.count_images() == 5


def test_batch_with_a_refused_image_goes_image_by_image(repo, emb, enroll, face, sha, dim, batch_calls):
    enroll(repo, emb, "P-1")
    batch_calls.clear()
    items = [(f"R-{k}", {"sha256": sha(f"r{k}")}, [face(np.ones(dim), emb)]) for k in range(3)]
    items.append(("R-dup", {"sha256": sha("P-1/0")}, [face(np.ones(dim), emb)]))
    results = repo.add_enrollments(items)
    assert batch_calls == [4, 1, 1, 1, 1]
    assert [type(r).__name__ for r in results] == ["EnrollmentResult"] * 3 + ["DuplicateImageError"]


def test_batch_enrollment_one_commit_each_image_all_or_nothing(repo, emb, enroll, face, sha, dim):
    enroll(repo, emb, "P-1")

    def item(ext, key, vec):
        return ({"external_id": ext}, {"sha256": sha(key), "source": "batch"}, [face(vec, emb)])

    bad_face = face(np.ones(dim + 1), emb)  # wrong dimension
    results = repo.add_enrollments([
        item("P-2", "p2", np.ones(dim)),
        item("P-3", "P-1/0", np.ones(dim)),  # duplicate of an enrolled image
        ({"external_id": "P-4"}, {"sha256": sha("p4")}, [bad_face]),
        ({"external_id": "P-5"}, {"sha256": "not-a-hash"}, []),
        item("P-6", "p6", np.ones(dim)),
        item("P-7", "p6", np.ones(dim)),  # duplicate within the batch
    ])
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["EnrollmentResult", "DuplicateImageError", "EnrollmentError", "EnrollmentError",
                     "EnrollmentResult", "DuplicateImageError"]
    # failed items left nothing behind (not even their subjects); the others are committed
    assert [repo.get_subject(x) is not None for x in ("P-2", "P-3", "P-4", "P-5", "P-6", "P-7")] == [
        True, False, False, False, True, False]
    assert repo.count_images() == 3 and repo.count_embeddings() == 3


def test_batch_writes_what_image_by_image_would(tmp_path, face, sha, dim):
    from gallery import open_gallery

    vecs = np.random.default_rng(3).standard_normal((5, dim))

    def run(db, batched: bool):
        r = open_gallery(db).repository()
        e = r.get_or_create_embedder("dlib-resnet", "v1", dim)
        r.add_enrollment("OLD", {"sha256": sha("old")}, [face(vecs[0], e)])
        items = [({"external_id": "NEW", "name": "A"}, {"sha256": sha("a")}, [face(vecs[1], e), face(vecs[2], e, 1)]),
                 ({"external_id": "NEW", "meta": {"k": 1}}, {"sha256": sha("b")}, [face(vecs[3], e)]),
                 ({"external_id": "OLD", "sex": "M"}, {"sha256": sha("c"), "n_faces_detected": 3}, [face(vecs[4], e)])]
        out = r.add_enrollments(items) if batched else [r.add_enrollment(*item) for item in items]
        subjects = [r.get_subject(x) for x in ("NEW", "OLD")]
        images = [(i.sha256, i.n_faces) for x in subjects for i in x.images]
        return (out, [(x.name, x.sex, x.meta, x.n_images, x.n_faces) for x in subjects], images,
                r.iter_embeddings(e))

    batch = run(tmp_path / "batch.db", True)
    alone = run(tmp_path / "alone.db", False)
    assert batch[0] == alone[0]  # same ids, subject_created flags, face and embedding ids
    assert [r.subject_created for r in batch[0]] == [True, False, False]
    assert batch[1] == alone[1] == [("A", None, {"k": 1}, 2, 3), (None, "M", {}, 2, 2)]
    assert batch[2] == alone[2] and (sha("c"), 3) in batch[2]
    np.testing.assert_array_equal(batch[3][0], alone[3][0])
    np.testing.assert_array_equal(batch[3][1], alone[3][1])


def test_batch_enrollment_with_another_embedder_writes_nothing(repo, emb, enroll, face, sha, dim):
    enroll(repo, emb, "Q-1")
    other = repo.get_or_create_embedder("arcface", "2.0", dim)
    with pytest.raises(EmbedderMismatchError):
        repo.add_enrollments([
            ("Q-2", {"sha256": sha("q2")}, [face(np.ones(dim), emb)]),
            ("Q-3", {"sha256": sha("q3")}, [face(np.ones(dim), other)]),
        ])
    assert repo.get_subject("Q-2") is None and repo.count_images() == 1


def test_one_image_with_two_embedders_is_refused(repo, emb, face, sha, dim):
    other = repo.get_or_create_embedder("arcface", "2.0", dim)
    with pytest.raises(EmbedderMismatchError, match="several embedders"):
        repo.add_enrollment("M-1", sha256=sha("m1"), faces=[face(np.ones(dim), emb), face(np.ones(dim), other, 1)])
    assert repo.count_images() == 0


def test_enrollment_in_the_callers_session_uses_savepoints(gal, emb, enroll, face, sha, dim):
    with gal.session() as s:
        r = GalleryRepository(s)
        enroll(r, emb, "OK-1")
        with pytest.raises(EnrollmentError):
            r.add_enrollment("BAD-1", sha256=sha("bad1"),
                             faces=[face(np.ones(dim), emb), face(np.zeros(dim), emb, 1)])
        assert r.count_images() == 1
    r2 = gal.repository()
    assert r2.get_subject("OK-1") is not None and r2.get_subject("BAD-1") is None
    # an exception out of the caller's transaction rolls everything back
    with pytest.raises(ZeroDivisionError):
        with gal.session() as s:
            enroll(GalleryRepository(s), emb, "OK-2")
            1 / 0
    assert r2.get_subject("OK-2") is None


def test_known_images_in_chunks(repo, emb, enroll, sha):
    enroll(repo, emb, "K-1", n_images=3)
    asked = [sha(f"none/{k}") for k in range(2000)] + [sha("K-1/2").upper(), sha("K-1/0")]
    assert repo.known_images(asked) == {sha("K-1/2"), sha("K-1/0")}
