"""gallery/index.py: the FAISS index derived from the gallery (build, save, load, search,
consistency with the database)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gallery import (
    EmbedderMismatchError,
    GalleryError,
    IndexCorruptError,
    VectorIndex,
    check_consistency,
    load_or_build,
)
from gallery.index import sidecar_path
from gallery.records import EmbedderKey


@pytest.fixture
def gal(sqlite_gal):
    """What this file tests is the SQLite file's (or its index files'): the gallery is one."""
    return sqlite_gal


def brute_force(db_vecs, db_ids, q, k):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = qn @ db_vecs.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), db_ids[order]


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


@pytest.mark.parametrize("field,value", [("count", "abc"), ("nprobe", "x"), ("embedder", "dlib"), ("kind", 3)])
def test_a_sidecar_field_of_the_wrong_type_is_named(tmp_path, field, value):
    path = VectorIndex.build(np.arange(5), random_unit(5, KEY.dim), KEY).save(tmp_path / "g.faiss")
    side = sidecar_path(path)
    side.write_text(json.dumps({**json.loads(side.read_text()), field: value}))
    with pytest.raises(IndexCorruptError, match=f"field '{field}'"):
        VectorIndex.load(path)


def test_a_directory_at_the_index_path_is_a_clear_error(tmp_path):
    vi = VectorIndex.build(np.arange(5), random_unit(5, KEY.dim), KEY)
    (tmp_path / "g.faiss").mkdir()
    with pytest.raises(IndexCorruptError, match="is a directory"):
        VectorIndex.load(tmp_path / "g.faiss")
    with pytest.raises(IndexCorruptError, match="is a directory"):
        vi.save(tmp_path / "g.faiss")


def test_temporaries_of_a_killed_writer_are_removed_on_the_next_save(tmp_path):
    import os
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = [tmp_path / f".g.faiss.tmp-{dead}", tmp_path / f".g.faiss.json.tmp-{dead}"]
    live = tmp_path / f".g.faiss.tmp-{os.getpid()}-other"  # a writer still running: kept
    for p in (*stale, live):
        p.write_bytes(b"half an index")
    VectorIndex.build(np.arange(5), random_unit(5, KEY.dim), KEY).save(tmp_path / "g.faiss")
    assert not any(p.exists() for p in stale) and live.exists()


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


def test_rebuild_from_db_and_load_or_build(gal, repo, emb, fill, enroll, dim, monkeypatch):
    fill(repo, emb, 40)
    path = gal.path.with_suffix(".faiss")
    assert path == gal.path.with_name("gallery.faiss")
    vi = load_or_build(repo, path)
    assert path.exists() and sidecar_path(path).exists()
    assert vi.gallery_fingerprint == repo.gallery_fingerprint()
    assert check_consistency(repo, vi) == []

    ids, vecs = repo.iter_embeddings()
    q = np.random.default_rng(3).normal(size=(5, dim))
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


def test_consistency_check_finds_tampered_index(tmp_path, repo, emb, fill, dim):
    fill(repo, emb, 20)
    vi = VectorIndex.from_repository(repo)
    assert check_consistency(repo, vi) == []
    ids = vi.ids()

    vi.remove([ids[0]])                                   # missing from the index
    vi.add([10**9], random_unit(1, dim))                  # not in the DB
    vi.remove([ids[5]])
    vi.add([ids[5]], random_unit(1, dim, seed=7))         # vector replaced
    path = vi.save(tmp_path / "tampered.faiss")
    loaded = VectorIndex.load(path)                        # files agree with each other...
    problems = {p.kind: p for p in check_consistency(repo, loaded)}
    assert set(problems) == {"missing_ids", "extra_ids", "vector_mismatch"}  # ...not with the DB
    assert problems["missing_ids"].ids == (int(ids[0]),)
    assert problems["extra_ids"].ids == (10**9,)
    assert problems["vector_mismatch"].ids == (int(ids[5]),)
    assert str(ids[0]) in str(problems["missing_ids"])

    wrong = VectorIndex.build([1], random_unit(1, dim), ("arcface", "2.0", dim))
    assert [p.kind for p in check_consistency(repo, wrong)] == ["embedder_mismatch"]
