"""Tests of the gallery storage: schema/migrations, repository, FAISS index, consistency."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

import gallery.repository as repo_mod
from gallery import (
    DuplicateImageError,
    EmbedderMismatchError,
    EnrollmentError,
    FaceSpec,
    GalleryError,
    GalleryNotFoundError,
    GalleryRepository,
    GalleryVersionError,
    IndexCorruptError,
    NotAGalleryError,
    SubjectNotFoundError,
    VectorIndex,
    check_consistency,
    head_revision,
    load_or_build,
    open_gallery,
)
from gallery.db import known_revisions, make_engine, upgrade_to_head
from gallery.index import sidecar_path
from gallery.models import APPLICATION_ID, Base
from gallery.records import EmbedderKey

DIM = 16


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def file_sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def gal(db_path: Path):
    g = open_gallery(db_path)
    yield g
    g.close()


@pytest.fixture
def repo(gal) -> GalleryRepository:
    return gal.repository()


@pytest.fixture
def emb(repo):
    return repo.get_or_create_embedder("facenet-vggface2", "1.0", DIM, "a" * 64)


def face(vec, emb, i: int = 0):
    return FaceSpec(
        box=[10 + i, 20, 110, 140],
        landmarks=np.arange(10, dtype=float).reshape(5, 2),
        det_score=0.99,
        chip_png=b"\x89PNG fake chip %d" % i,
        vector=vec,
        embedder=emb,
    )


def enroll(repo, emb, ext: str, n_images: int = 1, n_faces: int = 1, rng=None, **subj):
    """Enroll ``n_images`` images of subject ``ext`` with ``n_faces`` random faces each."""
    rng = rng or np.random.default_rng(abs(hash(ext)) % 2**32)
    results = []
    for k in range(n_images):
        results.append(
            repo.add_enrollment(
                {"external_id": ext, **subj},
                sha256=sha(f"{ext}/{k}"),
                original_path=f"/data/{ext}_{k}.jpg",
                width=250,
                height=250,
                size_bytes=12345,
                source="test",
                faces=[face(rng.normal(size=DIM), emb, i) for i in range(n_faces)],
            )
        )
    return results


def fill(repo, emb, n_subjects: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n_subjects):
        enroll(repo, emb, f"S{i:04d}", rng=rng, name=f"Person {i}", sex="MF"[i % 2],
               birth_year=1960 + i % 40)


def brute_force(db_vecs, db_ids, q, k):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = qn @ db_vecs.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), db_ids[order]


# ----------------------------------------------------------------------------------------------
# Schema, migrations, opening
# ----------------------------------------------------------------------------------------------


def test_init_creates_schema_at_head_with_pragmas(gal, db_path):
    assert known_revisions() == ["0001", "0002"]
    assert gal.revision == head_revision() == "0002"
    with gal.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA application_id").scalar() == APPLICATION_ID
        tables = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"subjects", "images", "faces", "embeddings", "embedders", "queries", "query_inputs",
            "query_candidates", "audit_events", "gallery_meta", "alembic_version"} <= tables
    assert gal.get_meta("created_by")
    assert gal.integrity_check() == []
    # reopening is a no-op
    gal.close()
    with open_gallery(db_path, create=False) as g2:
        assert g2.revision == "0002"


def test_models_match_migrations(gal):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with gal.engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(mc, Base.metadata) == []


def test_upgrade_from_older_revision_keeps_data_and_backs_up(db_path):
    engine = make_engine(db_path)
    assert upgrade_to_head(engine, "0001") == "0001"
    with engine.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO subjects (external_id, meta, created_at) "
            "VALUES ('OLD-1', '{}', '2024-01-01T00:00:00.000000Z')"
        )
    engine.dispose()

    with pytest.raises(GalleryError, match="needs an upgrade"):
        open_gallery(db_path, upgrade=False)

    with open_gallery(db_path) as g:
        assert g.revision == "0002"
        repo = g.repository()
        assert repo.get_subject("OLD-1") is not None
        assert g.get_meta("last_upgrade")["from"] == "0001"
    backup = db_path.with_name(db_path.name + ".bak-0001")
    assert backup.exists()
    con = sqlite3.connect(backup)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    con.close()


def test_refuses_database_from_newer_version(gal, db_path):
    gal.close()
    con = sqlite3.connect(db_path)
    con.execute("UPDATE alembic_version SET version_num = '0099_future_feature'")
    con.commit()
    con.close()
    before = file_sha(db_path)
    with pytest.raises(GalleryVersionError) as ei:
        open_gallery(db_path)
    msg = str(ei.value)
    assert "newer version of forensics" in msg and "Upgrade forensics" in msg
    assert "0099_future_feature" in msg
    assert file_sha(db_path) == before  # untouched


def test_not_a_sqlite_file(tmp_path):
    p = tmp_path / "notes.db"
    p.write_text("this is not a database, just some text " * 10)
    with pytest.raises(NotAGalleryError, match="not a SQLite database"):
        open_gallery(p)
    assert p.read_text().startswith("this is not")


def test_other_applications_sqlite_db_is_refused_untouched(tmp_path):
    p = tmp_path / "other.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    before = file_sha(p)
    with pytest.raises(NotAGalleryError, match="not a forensics gallery"):
        open_gallery(p)
    assert file_sha(p) == before


def test_missing_file_without_create(tmp_path):
    p = tmp_path / "nope.db"
    with pytest.raises(GalleryNotFoundError):
        open_gallery(p, create=False)
    assert not p.exists()


def test_in_memory_gallery():
    with open_gallery(":memory:") as g:
        r = g.repository()
        e = r.get_or_create_embedder("m", "1", DIM)
        enroll(r, e, "A")
        assert r.count_embeddings(e) == 1


# ----------------------------------------------------------------------------------------------
# Enrollment
# ----------------------------------------------------------------------------------------------


def test_enrollment_roundtrip(repo, emb):
    res = enroll(repo, emb, "B-100", n_images=2, n_faces=2, name="Jane Roe", sex="F",
                 birth_year=1980, meta={"county": "X"})
    assert res[0].subject_created and not res[1].subject_created
    assert len(res[0].embedding_ids) == 2
    s = repo.get_subject("B-100")
    assert (s.name, s.sex, s.birth_year, s.meta) == ("Jane Roe", "F", 1980, {"county": "X"})
    assert (s.n_images, s.n_faces, s.n_embeddings) == (2, 4, 4)
    assert {i.sha256 for i in s.images} == {sha("B-100/0"), sha("B-100/1")}
    assert all(i.n_faces == 2 for i in s.images)
    assert repo.count_subjects() == 1 and repo.count_images() == 2
    assert repo.count_faces() == 4 and repo.count_embeddings(emb) == 4
    assert repo.image_exists(sha("B-100/0")) and not repo.image_exists(sha("zzz"))
    ids, vecs = repo.iter_embeddings(emb)
    assert ids.dtype == np.int64 and vecs.dtype == np.float32 and vecs.shape == (4, DIM)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    owners = repo.embedding_owners(ids.tolist() + [123456])
    assert set(owners) == set(ids.tolist())
    o = owners[int(ids[0])]
    assert (o.external_id, o.name, o.sex, o.birth_year) == ("B-100", "Jane Roe", "F", 1980)
    assert o.image_sha256 == sha("B-100/0") and o.embedding_id == ids[0]
    # upsert merges meta and keeps fields not given
    s2 = repo.upsert_subject("B-100", meta={"alias": "JR"})
    assert s2.name == "Jane Roe" and s2.meta == {"county": "X", "alias": "JR"}
    listed = repo.list_subjects(limit=10)
    assert [x.external_id for x in listed] == ["B-100"] and listed[0].n_faces == 4
    # batches reassemble to the same arrays
    parts = list(repo.iter_embedding_batches(emb, batch_size=3))
    assert [len(p[0]) for p in parts] == [3, 1]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), vecs)


def test_enrollment_with_tuples_and_image_spec(repo, emb):
    from gallery import ImageSpec

    v = np.ones(DIM)
    r = repo.add_enrollment(
        "T-1",
        ImageSpec(sha256=sha("t").upper(), original_path="t.jpg"),
        [([0, 0, 5, 5], None, 0.5, b"png", v, emb)],
    )
    assert r.image_sha256 == sha("t")  # stored lowercase
    got = repo.get_vectors(r.embedding_ids)[r.embedding_ids[0]]
    np.testing.assert_allclose(got, v / np.linalg.norm(v), rtol=1e-6)


def test_enrollment_is_atomic_on_invalid_face(repo, emb):
    bad = np.full(DIM, np.nan)
    with pytest.raises(EnrollmentError):
        repo.add_enrollment(
            {"external_id": "NEW-1", "name": "x"},
            sha256=sha("atomic"),
            faces=[face(np.ones(DIM), emb, 0), face(bad, emb, 1)],
        )
    assert repo.count_subjects() == 0
    assert repo.count_images() == 0
    assert repo.count_faces() == 0
    assert repo.count_embeddings() == 0
    assert not repo.image_exists(sha("atomic"))


def test_enrollment_is_atomic_on_unexpected_error(repo, emb, monkeypatch):
    enroll(repo, emb, "KEEP")
    real = repo_mod.vector_to_bytes
    calls = {"n": 0}

    def flaky(v):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(v)

    monkeypatch.setattr(repo_mod, "vector_to_bytes", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        repo.add_enrollment(
            "LOSE", sha256=sha("lose"),
            faces=[face(np.ones(DIM) * (i + 1) + i, emb, i) for i in range(4)],
        )
    assert calls["n"] == 3  # two faces had been written when it failed
    assert repo.get_subject("LOSE") is None
    assert repo.count_subjects() == 1 and repo.count_images() == 1
    assert repo.count_faces() == 1 and repo.count_embeddings() == 1


def test_session_mode_uses_savepoints(gal, emb):
    with gal.session() as s:
        r = GalleryRepository(s)
        enroll(r, emb, "OK-1")
        with pytest.raises(EnrollmentError):
            r.add_enrollment("BAD-1", sha256=sha("bad1"),
                             faces=[face(np.ones(DIM), emb), face(np.zeros(DIM), emb, 1)])
        assert r.count_images() == 1
    r2 = gal.repository()
    assert r2.get_subject("OK-1") is not None and r2.get_subject("BAD-1") is None
    # an exception out of the caller's transaction rolls everything back
    with pytest.raises(ZeroDivisionError):
        with gal.session() as s:
            enroll(GalleryRepository(s), emb, "OK-2")
            1 / 0
    assert r2.get_subject("OK-2") is None


def test_duplicate_sha256_refused(repo, emb):
    enroll(repo, emb, "D-1")
    with pytest.raises(DuplicateImageError) as ei:
        repo.add_enrollment("D-2", sha256=sha("D-1/0"), faces=[face(np.ones(DIM), emb)])
    assert ei.value.sha256 == sha("D-1/0") and "D-1" in str(ei.value)
    assert repo.get_subject("D-2") is None
    assert repo.count_images() == 1 and repo.count_embeddings() == 1


def test_batch_enrollment_one_commit_each_image_all_or_nothing(repo, emb):
    enroll(repo, emb, "P-1")

    def item(ext, key, vec):
        return ({"external_id": ext}, {"sha256": sha(key), "source": "batch"}, [face(vec, emb)])

    bad_face = face(np.ones(DIM + 1), emb)  # wrong dimension
    results = repo.add_enrollments([
        item("P-2", "p2", np.ones(DIM)),
        item("P-3", "P-1/0", np.ones(DIM)),  # duplicate of an enrolled image
        ({"external_id": "P-4"}, {"sha256": sha("p4")}, [bad_face]),
        ({"external_id": "P-5"}, {"sha256": "not-a-hash"}, []),
        item("P-6", "p6", np.ones(DIM)),
        item("P-7", "p6", np.ones(DIM)),  # duplicate within the batch
    ])
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["EnrollmentResult", "DuplicateImageError", "EnrollmentError", "EnrollmentError",
                     "EnrollmentResult", "DuplicateImageError"]
    # failed items left nothing behind (not even their subjects); the others are committed
    assert [repo.get_subject(x) is not None for x in ("P-2", "P-3", "P-4", "P-5", "P-6", "P-7")] == [
        True, False, False, False, True, False]
    assert repo.count_images() == 3 and repo.count_embeddings() == 3


def test_clean_batch_takes_one_flush_and_writes_what_image_by_image_would(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((5, DIM))

    def run(db, fast: bool):
        r = open_gallery(db).repository()
        e = r.get_or_create_embedder("dlib-resnet", "v1", DIM)
        r.add_enrollment("OLD", {"sha256": sha("old")}, [face(vecs[0], e)])
        if not fast:  # the per-image path, as for a batch holding a duplicate
            monkeypatch.setattr(r, "_enroll_batch", lambda s, prepared: (_ for _ in ()).throw(repo_mod._NotPlain()))
        items = [({"external_id": "NEW", "name": "A"}, {"sha256": sha("a")}, [face(vecs[1], e), face(vecs[2], e, 1)]),
                 ({"external_id": "NEW", "meta": {"k": 1}}, {"sha256": sha("b")}, [face(vecs[3], e)]),
                 ({"external_id": "OLD", "sex": "M"}, {"sha256": sha("c"), "n_faces_detected": 3}, [face(vecs[4], e)])]
        out = r.add_enrollments(items)
        monkeypatch.undo()
        subjects = [r.get_subject(x) for x in ("NEW", "OLD")]
        return out, [(x.name, x.sex, x.meta, x.n_images, x.n_faces) for x in subjects], r.iter_embeddings(e)

    calls = []
    orig = repo_mod.GalleryRepository._enroll_in
    monkeypatch.setattr(repo_mod.GalleryRepository, "_enroll_in", lambda *a: calls.append(1) or orig(*a))
    fast = run(tmp_path / "fast.db", True)
    assert len(calls) == 1  # only the first, single enrollment went image by image
    slow = run(tmp_path / "slow.db", False)
    assert fast[0] == slow[0]  # same ids, subject_created flags, face and embedding ids
    assert [r.subject_created for r in fast[0]] == [True, False, False]
    assert fast[1] == slow[1] == [("A", None, {"k": 1}, 2, 3), (None, "M", {}, 2, 2)]
    np.testing.assert_array_equal(fast[2][0], slow[2][0])
    np.testing.assert_array_equal(fast[2][1], slow[2][1])


def test_batch_enrollment_with_another_embedder_writes_nothing(repo, emb):
    enroll(repo, emb, "Q-1")
    other = repo.get_or_create_embedder("arcface", "2.0", DIM)
    with pytest.raises(EmbedderMismatchError):
        repo.add_enrollments([
            ("Q-2", {"sha256": sha("q2")}, [face(np.ones(DIM), emb)]),
            ("Q-3", {"sha256": sha("q3")}, [face(np.ones(DIM), other)]),
        ])
    assert repo.get_subject("Q-2") is None and repo.count_images() == 1


def test_bad_inputs_rejected(repo, emb):
    with pytest.raises(EnrollmentError):
        repo.add_enrollment("X", sha256="abc", faces=[])
    with pytest.raises(EnrollmentError):
        repo.add_enrollment("X", sha256=sha("x"), faces=[face(np.ones(DIM + 1), emb)])
    with pytest.raises(EnrollmentError):
        f = face(np.ones(DIM), emb)
        f.landmarks = [[0, 0]] * 4
        repo.add_enrollment("X", sha256=sha("x"), faces=[f])
    assert repo.count_subjects() == 0


# ----------------------------------------------------------------------------------------------
# Embedders
# ----------------------------------------------------------------------------------------------


def test_embedder_mixing_refused(repo, emb):
    assert repo.gallery_embedder() is None
    assert repo.ensure_embedder_compatible("anything", "9", 3) is None  # empty gallery
    enroll(repo, emb, "E-1")
    assert repo.gallery_embedder() == emb
    assert repo.ensure_embedder_compatible(emb.name, emb.version, DIM) == emb

    other = repo.get_or_create_embedder("arcface", "2.0", DIM)
    with pytest.raises(EmbedderMismatchError) as ei:
        repo.add_enrollment("E-2", sha256=sha("e2"), faces=[face(np.ones(DIM), other)])
    assert "facenet-vggface2@1.0" in str(ei.value) and "arcface@2.0" in str(ei.value)
    assert repo.get_subject("E-2") is None
    with pytest.raises(EmbedderMismatchError, match="never mixed"):
        repo.ensure_embedder_compatible("arcface", "2.0", DIM)
    with pytest.raises(EmbedderMismatchError):
        repo.ensure_embedder_compatible(emb.name, "1.1", DIM)
    with pytest.raises(EmbedderMismatchError):
        repo.ensure_embedder_compatible(emb.name, emb.version, DIM, weights_sha256="b" * 64)
    # same name/version registered with another dim or other weights
    with pytest.raises(EmbedderMismatchError):
        repo.get_or_create_embedder(emb.name, emb.version, DIM * 2)
    with pytest.raises(EmbedderMismatchError):
        repo.get_or_create_embedder(emb.name, emb.version, DIM, "c" * 64)
    assert repo.get_or_create_embedder(emb.name, emb.version, DIM, "a" * 64) == emb


# ----------------------------------------------------------------------------------------------
# Index
# ----------------------------------------------------------------------------------------------

KEY = EmbedderKey("facenet-vggface2", "1.0", 32)


def random_unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_matches_numpy_and_roundtrips(tmp_path):
    x = random_unit(500, KEY.dim)
    ids = np.arange(1000, 1500, dtype=np.int64)[::-1].copy()  # arbitrary, non-positional ids
    vi = VectorIndex.build(ids, x, KEY)
    q = np.random.default_rng(1).normal(size=(12, KEY.dim))
    s, i = vi.search(q, 10, embedder_key=KEY)
    bs, bi = brute_force(x, ids, q, 10)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, bs, atol=1e-5)
    assert vi.search(q, 10_000)[1].shape == (12, 500)  # k clipped to ntotal
    np.testing.assert_array_equal(vi.ids(), np.sort(ids))

    path = vi.save(tmp_path / "g.faiss")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["embedder"] == {"name": KEY.name, "version": KEY.version, "dim": KEY.dim}
    assert meta["kind"] == "flat" and meta["count"] == 500
    assert meta["ids_fingerprint"] == vi.ids_fingerprint()
    vi2 = VectorIndex.load(path, expected_embedder=KEY)
    s2, i2 = vi2.search(q, 10)
    np.testing.assert_array_equal(i2, i)
    np.testing.assert_allclose(s2, s)

    with pytest.raises(EmbedderMismatchError):
        vi2.search(q, 5, embedder_key=EmbedderKey("arcface", "2.0", KEY.dim))
    with pytest.raises(EmbedderMismatchError):
        VectorIndex.load(path, expected_embedder=("facenet-vggface2", "1.1", KEY.dim))
    with pytest.raises(EmbedderMismatchError):
        vi2.search(np.ones((1, KEY.dim + 1)), 5)

    # remove / add
    assert vi2.remove([1000, 1001, 99999]) == 2
    assert vi2.ntotal == 498 and 1000 not in vi2.ids()
    fresh = random_unit(1, KEY.dim, seed=42)
    vi2.add([7], fresh)
    assert vi2.search(fresh, 1)[1][0, 0] == 7
    with pytest.raises(ValueError):
        vi2.add([7], fresh)


def test_index_files_tampering_detected(tmp_path):
    vi = VectorIndex.build(np.arange(50), random_unit(50, KEY.dim), KEY)
    path = vi.save(tmp_path / "g.faiss")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="does not match its sidecar"):
        VectorIndex.load(path)
    vi.save(path)
    sidecar_path(path).unlink()
    with pytest.raises(IndexCorruptError, match="sidecar"):
        VectorIndex.load(path)


def clustered(n, d, n_clusters=40, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d))
    x = centers[rng.integers(0, n_clusters, n)] + 0.25 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_recall_and_persistence(tmp_path):
    n = 4000
    x = clustered(n, KEY.dim)
    ids = np.arange(n, dtype=np.int64) * 3 + 5
    vi = VectorIndex.build(ids, x, KEY, kind="ivf")
    assert vi.kind == "ivf" and 1 <= vi.nlist <= round(4 * np.sqrt(n))
    q = clustered(100, KEY.dim, seed=9)
    _, truth = brute_force(x, ids, q, 10)

    vi.nprobe = vi.nlist  # visiting every list is exhaustive
    _, got = vi.search(q, 10)
    np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(truth, axis=1))

    vi.nprobe = max(1, vi.nlist // 4)
    _, got = vi.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)])
    assert recall >= 0.9, recall

    path = vi.save(tmp_path / "ivf.faiss")
    vi2 = VectorIndex.load(path)
    assert (vi2.kind, vi2.nlist, vi2.nprobe) == ("ivf", vi.nlist, vi.nprobe)
    np.testing.assert_array_equal(vi2.search(q, 10)[1], got)
    np.testing.assert_array_equal(vi2.ids(), ids)
    np.testing.assert_allclose(vi2.reconstruct(ids[:3]), x[:3], atol=1e-6)
    assert vi2.remove(ids[:10]) == 10
    assert vi2.ntotal == n - 10 and not np.isin(ids[:10], vi2.ids()).any()
    with pytest.raises(GalleryError):
        VectorIndex.build(ids[:5], x[:5], KEY, kind="ivf", nlist=10)


def test_rebuild_from_db_and_load_or_build(gal, repo, emb, monkeypatch):
    fill(repo, emb, 40)
    path = gal.path.with_suffix(".faiss")
    assert path.name == "gallery.faiss"
    vi = load_or_build(repo, path)
    assert path.exists() and sidecar_path(path).exists()
    assert vi.gallery_fingerprint == repo.gallery_fingerprint()
    assert check_consistency(repo, vi) == []

    ids, vecs = repo.iter_embeddings()
    q = np.random.default_rng(3).normal(size=(5, DIM))
    s, i = vi.search(q, 7, embedder_key=emb.key)
    bs, bi = brute_force(vecs, ids, q, 7)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, bs, atol=1e-5)

    # current index is loaded, not rebuilt
    calls = []
    real = VectorIndex.from_repository.__func__

    def spy(cls, *a, **k):
        calls.append(1)
        return real(cls, *a, **k)

    monkeypatch.setattr(VectorIndex, "from_repository", classmethod(spy))
    load_or_build(repo, path)
    assert calls == []
    # after a new enrollment the index is stale and rebuilt
    enroll(repo, emb, "NEW")
    vi3 = load_or_build(repo, path)
    assert calls == [1] and vi3.ntotal == vi.ntotal + 1
    assert check_consistency(repo, vi3) == []
    # a corrupt index file is rebuilt, not an error
    path.write_bytes(b"garbage")
    assert load_or_build(repo, path).ntotal == vi3.ntotal and calls == [1, 1]


def test_consistency_check_finds_tampered_index(tmp_path, repo, emb):
    fill(repo, emb, 20)
    vi = VectorIndex.from_repository(repo)
    assert check_consistency(repo, vi) == []
    ids = vi.ids()

    vi.remove([ids[0]])                                   # missing from the index
    vi.add([10**9], random_unit(1, DIM))                  # not in the DB
    vi.remove([ids[5]])
    vi.add([ids[5]], random_unit(1, DIM, seed=7))         # vector replaced
    path = vi.save(tmp_path / "tampered.faiss")
    loaded = VectorIndex.load(path)                        # files agree with each other...
    problems = {p.kind: p for p in check_consistency(repo, loaded)}
    assert set(problems) == {"missing_ids", "extra_ids", "vector_mismatch"}  # ...not with the DB
    assert problems["missing_ids"].ids == (int(ids[0]),)
    assert problems["extra_ids"].ids == (10**9,)
    assert problems["vector_mismatch"].ids == (int(ids[5]),)
    assert str(ids[0]) in str(problems["missing_ids"])

    wrong = VectorIndex.build([1], random_unit(1, DIM), ("arcface", "2.0", DIM))
    assert [p.kind for p in check_consistency(repo, wrong)] == ["embedder_mismatch"]


def test_remove_subject_purges_db_and_index(gal, repo, emb):
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


def test_gallery_fingerprint_tracks_state(repo, emb):
    empty = repo.gallery_fingerprint()
    enroll(repo, emb, "F-1")
    one = repo.gallery_fingerprint()
    assert one != empty and one == repo.gallery_fingerprint() and len(one) == 64
    enroll(repo, emb, "F-2")
    two = repo.gallery_fingerprint()
    assert two != one
    repo.remove_subject("F-2")
    assert repo.gallery_fingerprint() == one


def test_query_storage(repo, emb):
    enroll(repo, emb, "Q-1", name="Quinn")
    uids = []
    for k, case in enumerate(["CASE-1", "CASE-2", "CASE-1"]):
        uids.append(
            repo.save_query(
                mode="sketch",
                case_id=case,
                operator="det. smith",
                params={"k": 20, "fusion": "max"},
                embedder=emb,
                inverter={"name": "pix2pix", "version": "3", "sha256": "d" * 64},
                gallery_size=1,
                gallery_fingerprint=repo.gallery_fingerprint(),
                timings={"embed": 0.01 * k},
                filters={"sex": "F"},
                created_at=f"2024-05-0{k + 1}T10:00:00Z",
                inputs=[{"sha256": sha(f"sketch{k}"), "original_path": f"s{k}.png",
                         "aligned_png": b"A", "synthesized_png": b"S",
                         "landmarks": np.zeros((5, 2)), "detection": {"score": np.float32(0.5)}}],
                candidates=[{"rank": 1, "score": 0.7, "subject_external_id": "Q-1",
                             "subject_name": "Quinn", "score_detail": {"fpir": 0.01}},
                            {"rank": 2, "score": 0.3, "subject_external_id": "NOPE"}],
            )
        )
    q = repo.get_query(uids[0])
    assert q.params == {"k": 20, "fusion": "max"} and q.embedder == emb
    assert q.inverter["name"] == "pix2pix" and q.filters == {"sex": "F"}
    assert q.inputs[0].landmarks == [[0.0, 0.0]] * 5 and q.inputs[0].detection == {"score": 0.5}
    assert q.inputs[0].synthesized_png == b"S"
    assert [c.rank for c in q.candidates] == [1, 2]
    assert q.candidates[0].subject_id is not None and q.candidates[1].subject_id is None
    assert q.candidates[0].score_detail == {"fpir": 0.01}
    assert q.tool_version
    listed = repo.list_queries()
    assert [x.query_uid for x in listed] == uids[::-1]  # newest first
    assert listed[0].top_external_id == "Q-1" and listed[0].n_candidates == 2
    assert [x.query_uid for x in repo.list_queries(case_id="CASE-1")] == [uids[2], uids[0]]
    assert repo.get_query("missing") is None
    assert repo.count_queries() == 3


def test_foreign_keys_enforced(gal):
    with pytest.raises(Exception):
        with gal.session() as s:
            s.execute(text(
                "INSERT INTO images (subject_id, sha256, n_faces, enrolled_at) "
                "VALUES (999, :h, 0, '2024-01-01T00:00:00.000000Z')"), {"h": sha("fk")})
