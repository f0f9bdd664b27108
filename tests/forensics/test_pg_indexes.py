"""The pgvector store of a PostgreSQL gallery (synthetic vectors, a real PostgreSQL 18 + pgvector
server): the plain space written by enrollment, its HNSW index, search in the database against
exact search, derived spaces, removal, rebuild, check, an empty gallery."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from sqlalchemy import event, text

from forensics.errors import ForensicsError
from forensics.faiss_indexes import FaissIndexes
from forensics.maintenance import remove_subject
from forensics.pg_indexes import PgIndexes
from forensics.probes import INDEX_PLAIN, INDEX_WHITENED
from forensics.stores import open_indexes
from forensics.whitening import fit_whitening
from gallery import pgvector
from gallery.db import open_gallery
from gallery.location import GalleryLocation
from gallery.records import FaceSpec, ImageSpec
from gallery.roles import EXAMINER, create_roles

D = 16
rng = np.random.default_rng(5)


def add(repo, emb, sid: str, n: int = 2):
    repo.add_enrollments([({"external_id": sid}, ImageSpec(sha256=f"{sid}-{j}".encode().hex().ljust(64, "0")[:64]),
                           [FaceSpec([0, 0, 1, 1], None, 1.0, None, rng.standard_normal(D), emb)]) for j in range(n)])


@pytest.fixture()
def pg(pg_url):
    g = open_gallery(pg_url, create=True)
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", D, "0" * 64)
    for s in range(40):
        add(repo, emb, f"S{s:02d}")
    yield open_indexes(g), repo, emb
    g.close()


def whitening():
    return fit_whitening(rng.standard_normal((300, D)), "test@1/16")


def stored(repo) -> tuple[np.ndarray, np.ndarray]:
    ids, vecs = repo.iter_embeddings()
    return ids, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def sql(ix, statement: str, **params):
    with ix.gallery.engine.begin() as con:
        res = con.execute(text(statement), params)
        return res.all() if res.returns_rows else []


def test_the_store_is_chosen_by_the_database(pg, tmp_path):
    ix, _, _ = pg
    assert isinstance(ix, PgIndexes) and ix.kind() == ("hnsw", None)
    assert isinstance(open_indexes(open_gallery(tmp_path / "g.db")), FaissIndexes)
    assert pgvector.PLAIN == INDEX_PLAIN  # the space enrollment writes is the index ranking opens


def test_enrollment_writes_the_plain_space_under_its_hnsw_index(pg):
    ix, repo, _ = pg
    # written by the enrollment batches themselves, before any index is opened
    (space_id, count), = sql(ix, "SELECT s.id, count(*) FROM vector_spaces s JOIN space_vectors v ON v.space_id = s.id "
                                 "WHERE s.name = 'plain' GROUP BY s.id")
    assert count == 80 == repo.count_embeddings()
    (indexdef,), = sql(ix, "SELECT indexdef FROM pg_indexes WHERE indexname = :n", n=f"space_vectors_hnsw_{space_id}")
    assert "USING hnsw" in indexdef and "vector_cosine_ops" in indexdef and f"(space_id = {space_id})" in indexdef
    ids, vecs = stored(repo)
    assert ix.plain().reconstruct(ids) == pytest.approx(vecs, abs=1e-6)
    assert sql(ix, "SELECT 1 FROM pg_extension WHERE extname = 'vector'")


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_search_in_the_database_equals_exact_search(pg, kind):
    """A small gallery: HNSW (ef_search >= 2k) finds the exact top k (recall 1), with the same scores."""
    ix, repo, _ = pg
    if kind == "flat":
        ix.rebuild("flat")
    index = ix.plain()
    assert index.kind == kind and index.ntotal == 80
    ids, vecs = stored(repo)
    q = rng.standard_normal((5, D)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    scores, found = index.search(q, 10)
    exact = q @ vecs.T
    order = np.argsort(-exact, axis=1)[:, :10]
    assert (found == ids[order]).all()
    assert scores == pytest.approx(np.take_along_axis(exact, order, 1), abs=1e-5)
    s_all, f_all = index.search(q[:1], 500)  # k beyond the gallery: all of it, exactly
    assert f_all.shape == (1, 80) and sorted(f_all[0]) == sorted(ids)
    assert index.contains([int(ids[0]), 10 ** 9]).tolist() == [True, False]
    with pytest.raises(KeyError):
        index.reconstruct([10 ** 9])


def test_the_hnsw_index_serves_the_search(pg):
    ix, repo, emb = pg
    for s in range(40, 300):
        add(repo, emb, f"S{s:03d}", n=4)
    sql(ix, "ANALYZE space_vectors")
    index = ix.plain()
    assert index.row.index_name in index.explain(20)  # the planner uses the space's HNSW index
    assert index.row.index_name not in index.explain(2000)  # beyond ef_search's limit: an exact scan


def test_derived_spaces_are_stored_the_same_way_and_filled_where_behind(pg):
    ix, repo, emb = pg
    w = whitening()
    white = ix.whitened(w)
    ids, vecs = stored(repo)
    assert white.space == w.space_id and white.ntotal == 80
    assert white.reconstruct(ids) == pytest.approx(w.apply(vecs), abs=1e-5)
    add(repo, emb, "LATE")
    assert ix.whitened(w).ntotal == 82  # only the two new faces computed
    other = fit_whitening(rng.standard_normal((300, D)), "test@1/16", alpha=0.5)
    assert ix.whitened(other).space == other.space_id  # another whitening: the space made anew
    assert [r[0] for r in sql(ix, "SELECT space FROM vector_spaces WHERE name = 'whitened'")] == [other.space_id]


def test_enrollment_keeps_the_whitened_space_current(pg):
    ix, repo, emb = pg
    w = whitening()
    ix.refresh(w)
    add(repo, emb, "NEW")
    ix.refresh(w)  # what `forensics enroll` does at its end
    (n,), = sql(ix, "SELECT count(*) FROM space_vectors v JOIN vector_spaces s ON s.id = v.space_id "
                    "WHERE s.name = 'whitened'")
    assert n == 82


def test_roundtrip_vectors_are_computed_once_per_face_and_resume(pg, monkeypatch):
    ix, repo, emb = pg
    import forensics.pg_indexes as mod

    computed, interrupt = [], [True]
    monkeypatch.setattr(mod, "decode_chip", lambda chips, eid: np.full((2, 2, 3), eid, np.uint8))

    def fake_vectors(embedder, inverter, chips, whitening):
        computed.append(len(chips))
        if len(computed) == 3 and interrupt:
            interrupt.clear()
            raise KeyboardInterrupt
        return rng.standard_normal((len(chips), D)).astype(np.float32)

    monkeypatch.setattr(mod, "roundtrip_vectors", fake_vectors)
    embedder = type("E", (), {"info": emb})()
    inverter = type("I", (), {"info": type("Info", (), {"sha256": "ab" * 32})()})()
    with pytest.raises(KeyboardInterrupt):
        ix.roundtrip(embedder, inverter, None, chunk=16)
    assert computed == [16, 16, 16]  # two chunks committed before the interruption
    computed.clear()
    index = ix.roundtrip(embedder, inverter, None, chunk=16)
    assert computed == [16, 16, 16] and index.ntotal == 80  # the 48 faces not yet computed and index.row.name == INDEX_ROUNDTRIP_RAW
    computed.clear()
    assert ix.roundtrip(embedder, inverter, None, chunk=16).ntotal == 80 and computed == []


def test_removal_leaves_nothing_of_the_subject_in_any_space(pg):
    ix, repo, _ = pg
    w = whitening()
    ix.whitened(w)
    removed = remove_subject(ix.gallery, "S03", operator="tester")
    gone = list(removed.embedding_ids)
    ix.purge(gone)
    for name in (INDEX_PLAIN, INDEX_WHITENED):
        index = ix.plain() if name == INDEX_PLAIN else ix.whitened(w)
        assert index.ntotal == 78 and not index.contains(gone).any()
        _, found = index.search(rng.standard_normal((3, D)), 78)
        assert not set(gone) & set(found.ravel().tolist())


def test_rebuild_keeps_its_kind_and_refuses_faiss_kinds(pg):
    ix, _, _ = pg
    w = whitening()
    assert ix.rebuild("flat", whitening=w).kind == "flat" and ix.kind() == ("flat", None)
    assert ix.whitened(w).kind == "flat" and ix.plain().ntotal == 80
    assert ix.rebuild().kind == "hnsw"  # the store's own default
    with pytest.raises(ForensicsError, match="--kind"):
        ix.rebuild("ivf")
    with pytest.raises(ForensicsError, match="--nprobe"):
        ix.rebuild("hnsw", nprobe=4)


def test_check_reports_missing_vectors_and_a_missing_index(pg):
    ix, repo, _ = pg
    w = whitening()
    ix.whitened(w)
    assert ix.check() == {"plain": [], "whitened": []}
    plain = ix.plain()
    (eid,) = plain.ids()[:1]
    sql(ix, "DELETE FROM space_vectors WHERE space_id = :s AND embedding_id = :e", s=plain.row.id, e=int(eid))
    sql(ix, f"DROP INDEX {ix.whitened(w).row.index_name}")
    found = ix.check()
    assert [p.kind for p in found["plain"]] == ["missing_ids"] and found["plain"][0].ids == (int(eid),)
    assert [p.kind for p in found["whitened"]] == ["missing_index"]
    ix.plain()  # fills the gap
    assert ix.check()["plain"] == []


def test_an_empty_gallery_is_a_clear_error(pg_url):
    with open_gallery(pg_url, create=True) as g:
        ix = open_indexes(g)
        with pytest.raises(ForensicsError, match="empty"):
            ix.plain()
        assert ix.check() == {}


def test_a_role_that_may_not_store_vectors_searches_without_sending_a_refused_write(pg, pg_url):
    """An examiner's search of a space that an enrollment left behind computes the missing vectors
    for itself and sends no write: a refused one logs `permission denied` on the server (which
    supervisors watch) and makes the driver warn on the terminal."""
    ix, repo, emb = pg
    w = whitening()
    ix.whitened(w)
    create_roles(ix.gallery)
    for s in range(40, 45):
        add(repo, emb, f"S{s:02d}")  # 10 faces the whitened space lacks
    owner = GalleryLocation.parse(pg_url)
    login = f"examiner_{owner.url.database}"
    with psycopg.connect(owner.url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as con:
        con.execute(f"CREATE ROLE {login} LOGIN IN ROLE {EXAMINER}")
    sent: list[str] = []
    with open_gallery(owner.url.set(username=login).render_as_string(hide_password=False), create=False) as g:
        event.listen(g.engine, "before_cursor_execute", lambda conn, cur, statement, *_: sent.append(statement))
        white = open_indexes(g).whitened(w)
        assert (white.stored, white.ntotal) == (80, 90)
    assert sent and not [st for st in sent if st.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(sql(ix, "SELECT 1 FROM space_vectors v JOIN vector_spaces s ON s.id = v.space_id "
                       "WHERE s.name = :n", n=INDEX_WHITENED)) == 80  # nothing stored by the examiner
